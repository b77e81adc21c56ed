//! A minimal HTTP/1.1 client with keep-alive, for the load generator and the tests
//! (`Content-Length` bodies only, which is what our server sends).
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One kept-alive connection to a server.
pub struct HttpConn {
    addr: SocketAddr,
    sock: Option<TcpStream>,
    buf: Vec<u8>,
    timeout: Duration,
}

/// A response: status, whether the server keeps the connection, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub keep_alive: bool,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl HttpConn {
    pub fn new(addr: SocketAddr, timeout: Duration) -> HttpConn {
        HttpConn {
            addr,
            sock: None,
            buf: Vec::new(),
            timeout,
        }
    }

    /// True if the last answer left the connection open.
    pub fn is_connected(&self) -> bool {
        self.sock.is_some()
    }

    /// Sends one request and reads its answer, reconnecting first if the server
    /// closed the connection after the previous answer.
    pub fn request(&mut self, method: &str, target: &str, body: &[u8]) -> io::Result<Answer> {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        self.send_raw(&out)?;
        self.read_answer()
    }

    /// Writes raw bytes (one request, or several pipelined), connecting if needed.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.sock.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, self.timeout)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
            self.sock = Some(s);
            self.buf.clear();
        }
        let r = self.sock.as_mut().map_or(Ok(()), |s| s.write_all(bytes));
        if r.is_err() {
            self.sock = None;
        }
        r
    }

    /// Reads the next answer on the connection.
    pub fn read_answer(&mut self) -> io::Result<Answer> {
        let r = self.read_one();
        if !matches!(&r, Ok(a) if a.keep_alive) {
            self.sock = None;
        }
        r
    }

    fn read_one(&mut self) -> io::Result<Answer> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
        // Bounded: a head of at most 64 KiB, then the body by its length.
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let status: u16 = lines
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| bad("no status line"))?;
                let mut len = 0usize;
                let mut keep_alive = true;
                for l in lines {
                    let Some((n, v)) = l.split_once(':') else {
                        continue;
                    };
                    let v = v.trim();
                    if n.eq_ignore_ascii_case("content-length") {
                        len = v.parse().map_err(|_| bad("bad Content-Length"))?;
                    } else if n.eq_ignore_ascii_case("connection") {
                        keep_alive = !v.eq_ignore_ascii_case("close");
                    }
                }
                let total = end + 4 + len;
                while self.buf.len() < total {
                    self.fill()?;
                }
                let body = self.buf[end + 4..total].to_vec();
                self.buf.drain(..total);
                return Ok(Answer {
                    status,
                    keep_alive,
                    body,
                });
            }
            if self.buf.len() > 64 * 1024 {
                return Err(bad("head too large"));
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let sock = self
            .sock
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        let mut chunk = [0u8; 16 * 1024];
        let n = sock.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
