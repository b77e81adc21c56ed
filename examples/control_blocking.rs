//! The tutorial's control messages, on the blocking API: `WriteControl` with a
//! write deadline, and ping, pong and close handlers.
//!
//! ```text
//! cargo run --example control_blocking -- [--addr 0.0.0.0:22345] [--ping SECS]
//! ```
//!
//! At `ws://HOST:PORT/websocket`, per connection:
//! - a ticker thread sends a ping (`write_control(Ping, ..., deadline)`) every
//!   `--ping` seconds (default 5), and the pong handler prints each answer;
//! - the ping handler prints the client's pings and answers with a pong;
//! - the close handler prints the client's close code and reason and answers it;
//! - text commands: `ping` sends a ping now (payload `ping`), `close` sends a close
//!   frame with `write_control` (1000, `bye`) and then waits for the client's answer;
//!   anything else is echoed back.
//!
//! From a browser console, Python `websockets`, Node `ws` or `websocat`, send `close`
//! and the client sees code 1000 with reason `bye`.

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use silverback::blocking::{default_close_handler, default_ping_handler};
use silverback::{CloseCode, Error, Message, OpCode, Upgrader};

/// How long one control frame may take to be written.
const WRITE_WAIT: Duration = Duration::from_secs(1);

fn main() -> std::io::Result<()> {
    common::usage(
        "control_blocking [--addr HOST:PORT] [--ping SECS]   (default 0.0.0.0:22345, ping 5 s)",
    );
    let addr = common::addr("0.0.0.0:22345");
    let every = common::flag_value("--ping")
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(Duration::from_secs(5), Duration::from_secs_f64);
    let listener = TcpListener::bind(&addr)?;
    println!(
        "control (blocking) listening on ws://{}/websocket",
        listener.local_addr()?
    );
    let upgrader = Upgrader::new().check_origin(|_| true);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
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
            let (mut rd, wr) = conn.split();
            let wr = Arc::new(Mutex::new(wr));

            let p = peer.clone();
            rd.set_ping_handler(move |data, ctl| {
                println!("{p}: ping {:?}", String::from_utf8_lossy(data));
                default_ping_handler(data, ctl)
            });
            let p = peer.clone();
            rd.set_pong_handler(move |data, _| {
                println!("{p}: pong {:?}", String::from_utf8_lossy(data));
                Ok(())
            });
            let p = peer.clone();
            rd.set_close_handler(move |code, reason, ctl| {
                println!("{p}: close {code} {reason:?}");
                default_close_handler(code, reason, ctl)
            });

            // The ticker: a ping every `every`, each with its own write deadline.
            let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
            let ticker = {
                let wr = Arc::clone(&wr);
                thread::spawn(move || {
                    let mut n = 0u64;
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                        stop_rx.recv_timeout(every)
                    {
                        n += 1;
                        let payload = format!("tick {n}");
                        let deadline = Some(Instant::now() + WRITE_WAIT);
                        let mut w = wr.lock().unwrap_or_else(|e| e.into_inner());
                        if w.write_control(OpCode::Ping, payload.as_bytes(), deadline)
                            .is_err()
                        {
                            break;
                        }
                    }
                })
            };

            loop {
                let msg = match rd.read_message() {
                    Ok(m) => m,
                    Err(Error::Closed(f)) => break println!("{peer}: closed ({f})"),
                    Err(e) => break eprintln!("{peer}: read: {e}"),
                };
                let mut w = wr.lock().unwrap_or_else(|e| e.into_inner());
                let deadline = Some(Instant::now() + WRITE_WAIT);
                let res = match &msg {
                    Message::Text(t) if t == "ping" => {
                        w.write_control(OpCode::Ping, b"ping", deadline)
                    }
                    Message::Text(t) if t == "close" => {
                        // FormatCloseMessage + WriteControl: code 1000, reason "bye".
                        let mut payload = CloseCode::NORMAL.0.to_be_bytes().to_vec();
                        payload.extend_from_slice(b"bye");
                        w.write_control(OpCode::Close, &payload, deadline)
                    }
                    _ => w.send(&msg),
                };
                if let Err(e) = res {
                    break eprintln!("{peer}: write: {e}");
                }
            }
            let _ = stop_tx.send(());
            let _ = ticker.join();
        });
    }
    Ok(())
}
