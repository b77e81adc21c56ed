//! `ws://` URLs: just enough of RFC 3986 for the opening handshake, and
//! `ws+unix://` for a server on a Unix domain socket.

use crate::error::HandshakeError;

/// A parsed `ws://` or `wss://host[:port][/path][?query]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// Host name or address to connect to (IPv6 without brackets).
    pub host: String,
    /// Port (80 for `ws://`, 443 for `wss://` when the URL gives none).
    pub port: u16,
    /// `wss://`: the connection runs over TLS (feature `tls`).
    pub secure: bool,
    /// Value of the `Host` header (`host[:port]` as written in the URL).
    pub authority: String,
    /// Request target: path and query, at least `/`.
    pub target: String,
    /// `ws+unix://` and `wss+unix://`: the Unix domain socket to connect to
    /// (the URL's authority, percent-decoded: `ws+unix://%2Frun%2Fapp.sock/feed`
    /// is `/run/app.sock`, request target `/feed`, `Host: localhost`).
    pub unix: Option<std::path::PathBuf>,
}

impl WsUrl {
    /// Parses a `ws://` or `wss://` URL (whether a `wss://` URL can be dialled
    /// depends on the `tls` feature; the parser accepts both).
    pub fn parse(url: &str) -> Result<WsUrl, HandshakeError> {
        let bad = |why: &str| HandshakeError::InvalidUrl(format!("{url:?}: {why}"));
        let (rest, secure, unix) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ws") => (rest, false, false),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("wss") => (rest, true, false),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ws+unix") => (rest, false, true),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("wss+unix") => (rest, true, true),
            _ => return Err(bad("expected ws:// or wss://")),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        let target = match target.chars().next() {
            None => "/".to_owned(),
            Some('?') => format!("/{target}"),
            _ => target.to_owned(),
        };
        if unix {
            let path = percent_decode(authority).ok_or_else(|| bad("bad percent-escape"))?;
            if path.is_empty() {
                return Err(bad("no socket path (ws+unix://%2Fpath%2Fto.sock/target)"));
            }
            return Ok(WsUrl {
                host: "localhost".to_owned(),
                port: if secure { 443 } else { 80 },
                secure,
                authority: "localhost".to_owned(),
                target,
                unix: Some(path.into()),
            });
        }
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let (host, port) = split_host_port(authority).map_err(bad)?;
        let port = port.unwrap_or(if secure { 443 } else { 80 });
        Ok(WsUrl {
            host: host.to_owned(),
            port,
            secure,
            authority: authority.to_owned(),
            target,
            unix: None,
        })
    }
}

/// `host[:port]` or `[v6][:port]` (URLs and proxy URLs): the host (IPv6
/// without brackets, never empty) and the port if given.
pub(crate) fn split_host_port(s: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed '['")?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or("junk after ']'")?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("empty host");
    }
    let port = port
        .map(|p| p.parse::<u16>().map_err(|_| "invalid port"))
        .transpose()?;
    Ok((host, port))
}

/// `%XX` escapes decoded; `None` for a malformed escape or bytes that are not
/// UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let u = WsUrl::parse("ws://localhost:22345/websocket?x=1#frag").unwrap();
        assert_eq!(
            (
                u.host.as_str(),
                u.port,
                u.authority.as_str(),
                u.target.as_str()
            ),
            ("localhost", 22345, "localhost:22345", "/websocket?x=1")
        );
        let u = WsUrl::parse("WS://[::1]:9/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        let u = WsUrl::parse("ws://example.com?q").unwrap();
        assert_eq!((u.port, u.target.as_str(), u.secure), (80, "/?q", false));
        let u = WsUrl::parse("wss://example.com/chat").unwrap();
        assert_eq!(
            (u.port, u.secure, u.authority.as_str()),
            (443, true, "example.com")
        );
        let u = WsUrl::parse("WSS://example.com:8443").unwrap();
        assert_eq!((u.port, u.secure), (8443, true));
        let u = WsUrl::parse("ws+unix://%2Frun%2Fapp.sock/feed?x").unwrap();
        assert_eq!(
            u.unix.as_deref(),
            Some(std::path::Path::new("/run/app.sock"))
        );
        assert_eq!(
            (u.authority.as_str(), u.target.as_str()),
            ("localhost", "/feed?x")
        );
        assert!(WsUrl::parse("wss+unix://%2Fs").unwrap().secure);
        for bad in [
            "ws+unix:///x",
            "ws+unix://%zz/",
            "http://x",
            "https://x",
            "ws://",
            "ws://h:99999",
            "ws://u@h",
            "ws://[::1",
        ] {
            assert!(WsUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
