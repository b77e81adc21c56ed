//! The tutorial's echo with `NextReader`/`NextWriter` and `io.Copy`: each message is
//! streamed from the reader into a writer of the same kind, so a message of any
//! size passes through fixed buffers. Then ten dots, as in the first echo.
//!
//! ```text
//! cargo run --example stream_echo_blocking -- [--addr 0.0.0.0:22345]
//! ```

mod common;

use std::io;
use std::net::{TcpListener, TcpStream};
use std::thread;

use silverback::blocking::{ReadHalf, WriteHalf};
use silverback::{Error, Upgrader};

fn main() -> io::Result<()> {
    common::usage(
        "stream_echo_blocking [--addr HOST:PORT]   (default 0.0.0.0:22345, path /websocket)",
    );
    let addr = common::addr("0.0.0.0:22345");
    let listener = TcpListener::bind(&addr)?;
    println!(
        "stream echo (blocking) listening on ws://{}/websocket",
        listener.local_addr()?
    );
    let upgrader = Upgrader::new().check_origin(|_| true);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let upgrader = upgrader.clone();
        thread::spawn(move || {
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let pending = match upgrader.read_request(stream) {
                Ok(p) => p,
                Err(e) => return eprintln!("{peer}: handshake: {e}"),
            };
            if pending.request().path() != "/websocket" {
                let _ = pending.reject(404, "not found: try /websocket");
                return;
            }
            let conn = match pending.accept() {
                Ok(c) => c,
                Err(e) => return eprintln!("{peer}: upgrade: {e}"),
            };
            // One half reads while the other writes, as `io.Copy(w, r)` needs.
            let (mut rd, mut wr) = conn.split();
            loop {
                match echo_one(&mut rd, &mut wr) {
                    Ok(n) => println!("{peer}: echoed {n} bytes"),
                    Err(Error::Closed(f)) => break println!("{peer}: closed ({f})"),
                    Err(e) => break eprintln!("{peer}: {e}"),
                }
            }
        });
    }
    Ok(())
}

/// Streams one message back: `next_reader` → `io::copy` → `next_writer`, then dots.
fn echo_one(rd: &mut ReadHalf<TcpStream>, wr: &mut WriteHalf<TcpStream>) -> Result<u64, Error> {
    let mut reader = rd.next_reader()?;
    let kind = reader.kind();
    let mut writer = wr.next_writer(kind)?;
    let n = io::copy(&mut reader, &mut writer)?;
    writer.close()?;
    wr.write_message(kind, b"..........")?;
    Ok(n)
}
