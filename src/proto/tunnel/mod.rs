//! Tunnels through forward proxies without I/O: what a client says to an HTTP
//! proxy (`CONNECT`, RFC 9110 §9.3.6, with optional Basic credentials) or to a
//! SOCKS5 proxy (RFC 1928, with optional username/password, RFC 1929) before the
//! tunnel carries its own bytes (a TLS ClientHello, the WebSocket request).
//!
//! [`TunnelHandshake`] is a state machine like the WebSocket handshakes: its
//! constructor writes the first bytes to send, [`read`](TunnelHandshake::read)
//! takes the bytes received so far, says how many it used and appends whatever
//! must be sent next. It never uses a byte past the proxy's last answer, so what
//! follows in the buffer belongs to the tunnel. Every answer is bounded: an HTTP
//! answer head at most [`MAX_HTTP_HEAD`] bytes, a SOCKS answer at most 262.
//!
//! ```
//! use silverback::proto::tunnel::{Credentials, SocksTarget, TunnelHandshake};
//!
//! let mut out = Vec::new();
//! let creds = Credentials::new("dev", "s3cret");
//! let mut hs = TunnelHandshake::socks5(SocksTarget::Name("example.com"), 443, Some(&creds), &mut out)?;
//! assert_eq!(out, [5, 2, 0, 2]); // greeting: no authentication, or username/password
//! out.clear();
//! // The proxy picks username/password; the client sends its credentials.
//! assert_eq!(hs.read(&[5, 2], &mut out)?.consumed, 2);
//! assert_eq!(out, b"\x01\x03dev\x06s3cret");
//! out.clear();
//! // Accepted; the client asks for example.com:443 by name.
//! hs.read(&[1, 0], &mut out)?;
//! assert_eq!(out, b"\x05\x01\x00\x03\x0bexample.com\x01\xbb");
//! // Succeeded: the tunnel is open, and the byte after the answer is the tunnel's.
//! let p = hs.read(&[5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90, 0x16], &mut Vec::new())?;
//! assert!(p.done && p.consumed == 10);
//! # Ok::<(), silverback::proto::tunnel::TunnelError>(())
//! ```

use alloc::{format, string::String, vec, vec::Vec};
use core::fmt;
use core::net::IpAddr;

/// The longest HTTP answer head to `CONNECT` a client reads.
pub const MAX_HTTP_HEAD: usize = 8 * 1024;

/// A user name and password for a proxy (HTTP Basic, or SOCKS5 username/password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// Credentials from a user name and a password.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password, not even in a log line.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Where a SOCKS5 proxy is asked to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocksTarget<'a> {
    /// An address the client resolved (`socks5://`).
    Ip(IpAddr),
    /// A name the proxy resolves (`socks5h://`; at most 255 bytes).
    Name(&'a str),
}

/// The step of a proxy handshake, for errors that say where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TunnelStep {
    /// The TCP connection to the proxy itself.
    Connect,
    /// Waiting for the HTTP proxy's answer to `CONNECT`.
    HttpConnect,
    /// Waiting for the SOCKS5 proxy's choice of authentication method.
    SocksGreeting,
    /// Waiting for the SOCKS5 proxy's verdict on the username and password.
    SocksAuth,
    /// Waiting for the SOCKS5 proxy's answer to the connect request.
    SocksConnect,
}

impl fmt::Display for TunnelStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TunnelStep::Connect => "connecting to the proxy",
            TunnelStep::HttpConnect => "HTTP CONNECT",
            TunnelStep::SocksGreeting => "SOCKS5 greeting",
            TunnelStep::SocksAuth => "SOCKS5 authentication",
            TunnelStep::SocksConnect => "SOCKS5 connect",
        })
    }
}

/// Why a tunnel through a proxy was not opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TunnelError {
    /// The HTTP proxy answered `CONNECT` with a status other than 2xx (407: it
    /// wants credentials, or others than those sent; 403: it forbids the target).
    HttpRefused {
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
    /// The SOCKS5 proxy accepts none of the authentication methods offered (it
    /// wants credentials and none were given).
    SocksNoAcceptableMethod,
    /// The SOCKS5 proxy refused the username and password (its status byte).
    SocksAuthRefused(u8),
    /// The SOCKS5 proxy answered the connect request with this reply code (see
    /// [`socks_reply_meaning`]).
    SocksRefused(u8),
    /// The proxy's answer is not what the protocol allows at this step.
    Malformed(TunnelStep, &'static str),
    /// The proxy closed the connection at this step.
    Closed(TunnelStep),
    /// The proxy did not answer within the handshake timeout at this step.
    Timeout(TunnelStep),
    /// What the client would send cannot be said in the protocol (a SOCKS5 name,
    /// user or password longer than 255 bytes, or empty).
    InvalidRequest(&'static str),
}

/// What RFC 1928 §6 says a SOCKS5 reply code means.
pub fn socks_reply_meaning(code: u8) -> &'static str {
    match code {
        0 => "succeeded",
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::HttpRefused { status, reason } => {
                write!(f, "proxy refused CONNECT: {status} {reason}")
            }
            TunnelError::SocksNoAcceptableMethod => f.write_str(
                "SOCKS5 greeting: the proxy accepts none of the offered authentication methods",
            ),
            TunnelError::SocksAuthRefused(s) => {
                write!(f, "SOCKS5 authentication: refused (status {s})")
            }
            TunnelError::SocksRefused(c) => {
                write!(f, "SOCKS5 connect: {} (reply {c})", socks_reply_meaning(*c))
            }
            TunnelError::Malformed(step, why) => write!(f, "{step}: malformed answer: {why}"),
            TunnelError::Closed(step) => write!(f, "{step}: the proxy closed the connection"),
            TunnelError::Timeout(step) => write!(f, "{step}: the proxy did not answer in time"),
            TunnelError::InvalidRequest(why) => write!(f, "proxy request: {why}"),
        }
    }
}

impl core::error::Error for TunnelError {}

/// What one [`TunnelHandshake::read`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input that belonged to the proxy's answers (drop them).
    pub consumed: usize,
    /// The tunnel is open: the bytes after `consumed` are the target's.
    pub done: bool,
}

#[derive(Debug)]
enum State {
    Http,
    SocksMethod {
        request: Vec<u8>,
        auth: Option<Vec<u8>>,
    },
    SocksAuth {
        request: Vec<u8>,
    },
    SocksReply,
    Done,
}

/// A client's side of a proxy handshake (see the [module docs](self)).
#[derive(Debug)]
pub struct TunnelHandshake {
    state: State,
}

impl TunnelHandshake {
    /// `CONNECT host:port` to an HTTP proxy, with `Proxy-Authorization: Basic`
    /// when `credentials` are given; the request goes to `out`.
    pub fn http_connect(
        host: &str,
        port: u16,
        credentials: Option<&Credentials>,
        out: &mut Vec<u8>,
    ) -> TunnelHandshake {
        use base64::Engine as _;
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        out.extend_from_slice(
            format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").as_bytes(),
        );
        if let Some(c) = credentials {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.user, c.password));
            out.extend_from_slice(format!("Proxy-Authorization: Basic {token}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        TunnelHandshake { state: State::Http }
    }

    /// A SOCKS5 connect to `target:port`, offering username/password
    /// authentication when `credentials` are given; the greeting goes to `out`.
    pub fn socks5(
        target: SocksTarget<'_>,
        port: u16,
        credentials: Option<&Credentials>,
        out: &mut Vec<u8>,
    ) -> Result<TunnelHandshake, TunnelError> {
        let mut request = vec![5, 1, 0];
        match target {
            SocksTarget::Ip(IpAddr::V4(a)) => {
                request.push(1);
                request.extend_from_slice(&a.octets());
            }
            SocksTarget::Ip(IpAddr::V6(a)) => {
                request.push(4);
                request.extend_from_slice(&a.octets());
            }
            SocksTarget::Name(n) => {
                let len = short_len(n, "the host name is empty or longer than 255 bytes")?;
                request.extend_from_slice(&[3, len]);
                request.extend_from_slice(n.as_bytes());
            }
        }
        request.extend_from_slice(&port.to_be_bytes());
        let auth = match credentials {
            None => None,
            Some(c) => {
                let u = short_len(&c.user, "the user name is empty or longer than 255 bytes")?;
                let p = short_len(
                    &c.password,
                    "the password is empty or longer than 255 bytes",
                )?;
                let mut a = vec![1, u];
                a.extend_from_slice(c.user.as_bytes());
                a.push(p);
                a.extend_from_slice(c.password.as_bytes());
                Some(a)
            }
        };
        out.extend_from_slice(if auth.is_some() {
            &[5, 2, 0, 2]
        } else {
            &[5, 1, 0]
        });
        Ok(TunnelHandshake {
            state: State::SocksMethod { request, auth },
        })
    }

    /// The step the handshake waits in (for a driver's timeout or EOF error).
    pub fn step(&self) -> TunnelStep {
        match self.state {
            State::Http => TunnelStep::HttpConnect,
            State::SocksMethod { .. } => TunnelStep::SocksGreeting,
            State::SocksAuth { .. } => TunnelStep::SocksAuth,
            State::SocksReply | State::Done => TunnelStep::SocksConnect,
        }
    }

    /// Whether the tunnel is open.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Takes the bytes received and not yet consumed; appends to `out` what must
    /// be sent next. Call again with more bytes until [`Progress::done`].
    pub fn read(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Progress, TunnelError> {
        let mut consumed = 0;
        loop {
            let rest = &input[consumed..];
            let used = match &mut self.state {
                State::Done => {
                    return Ok(Progress {
                        consumed,
                        done: true,
                    });
                }
                State::Http => match http_answer(rest)? {
                    None => 0,
                    Some(n) => {
                        self.state = State::Done;
                        n
                    }
                },
                State::SocksMethod { request, auth } => {
                    let [v, m, ..] = *rest else { break };
                    if v != 5 {
                        return Err(TunnelError::Malformed(
                            TunnelStep::SocksGreeting,
                            "not SOCKS version 5",
                        ));
                    }
                    let request = core::mem::take(request);
                    match (m, auth.take()) {
                        (0, _) => {
                            out.extend_from_slice(&request);
                            self.state = State::SocksReply;
                        }
                        (2, Some(a)) => {
                            out.extend_from_slice(&a);
                            self.state = State::SocksAuth { request };
                        }
                        (0xff, _) => return Err(TunnelError::SocksNoAcceptableMethod),
                        _ => {
                            return Err(TunnelError::Malformed(
                                TunnelStep::SocksGreeting,
                                "a method that was not offered",
                            ));
                        }
                    }
                    2
                }
                State::SocksAuth { request } => {
                    let [v, status, ..] = *rest else { break };
                    if v != 1 {
                        return Err(TunnelError::Malformed(
                            TunnelStep::SocksAuth,
                            "not username/password version 1",
                        ));
                    }
                    if status != 0 {
                        return Err(TunnelError::SocksAuthRefused(status));
                    }
                    out.extend_from_slice(&core::mem::take(request));
                    self.state = State::SocksReply;
                    2
                }
                State::SocksReply => {
                    let [v, rep, rsv, atyp, ..] = *rest else {
                        break;
                    };
                    if v != 5 || rsv != 0 {
                        return Err(TunnelError::Malformed(
                            TunnelStep::SocksConnect,
                            "not a SOCKS5 reply",
                        ));
                    }
                    if rep != 0 {
                        return Err(TunnelError::SocksRefused(rep));
                    }
                    let addr = match atyp {
                        1 => 4,
                        4 => 16,
                        3 => match rest.get(4) {
                            Some(&n) => 1 + n as usize,
                            None => break,
                        },
                        _ => {
                            return Err(TunnelError::Malformed(
                                TunnelStep::SocksConnect,
                                "unknown address type",
                            ));
                        }
                    };
                    let len = 4 + addr + 2;
                    if rest.len() < len {
                        break;
                    }
                    self.state = State::Done;
                    len
                }
            };
            if used == 0 {
                break;
            }
            consumed += used;
        }
        Ok(Progress {
            consumed,
            done: self.is_done(),
        })
    }
}

fn short_len(s: &str, why: &'static str) -> Result<u8, TunnelError> {
    match u8::try_from(s.len()) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(TunnelError::InvalidRequest(why)),
    }
}

/// The length of a complete 2xx answer head, `None` for more bytes.
fn http_answer(input: &[u8]) -> Result<Option<usize>, TunnelError> {
    let bad = |why| TunnelError::Malformed(TunnelStep::HttpConnect, why);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    // Only the bound is looked at, so the verdict does not depend on how the
    // answer arrived (all at once, or in pieces).
    let input = &input[..input.len().min(MAX_HTTP_HEAD)];
    match resp.parse(input) {
        Ok(httparse::Status::Partial) if input.len() >= MAX_HTTP_HEAD => {
            Err(bad("answer head too large"))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(n)) => {
            let status = resp.code.unwrap_or(0);
            if (200..300).contains(&status) {
                Ok(Some(n))
            } else {
                Err(TunnelError::HttpRefused {
                    status,
                    reason: resp.reason.unwrap_or("").chars().take(128).collect(),
                })
            }
        }
        Err(httparse::Error::TooManyHeaders) => Err(bad("too many header lines")),
        Err(_) => Err(bad("not an HTTP answer")),
    }
}

#[cfg(test)]
mod tests;
