//! Writes to a connection's transport: as much as the socket takes now, never
//! blocking (a full socket leaves the rest queued for the next writable event).

use std::io;

use super::Outbox;
use super::transport::Transport;

/// One write; 0 when the socket is full (the loop is registered for WRITABLE and
/// resumes).
pub(super) fn write_some(sock: &mut Transport, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match sock.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

pub(super) fn flush_outbox(sock: &mut Transport, o: &mut Outbox) -> io::Result<()> {
    while o.pos < o.buf.len() {
        match write_some(sock, &o.buf[o.pos..])? {
            0 => return Ok(()),
            n => o.pos += n,
        }
    }
    Ok(())
}

/// One vectored write of `head` + `body`; returns how many bytes went out (0 on
/// WouldBlock or error: the queue takes over and `flush` reports any error).
pub(crate) fn write_through(sock: &mut Transport, head: &[u8], body: &[u8]) -> usize {
    let total = head.len() + body.len();
    let mut done = 0;
    while done < total {
        let r = if done < head.len() {
            sock.write_vectored(&[io::IoSlice::new(&head[done..]), io::IoSlice::new(body)])
        } else {
            sock.write(&body[done - head.len()..])
        };
        match r {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    done
}
