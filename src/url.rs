//! `ws://` URLs: just enough of RFC 3986 for the opening handshake.

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
}

impl WsUrl {
    /// Parses a `ws://` or `wss://` URL (whether a `wss://` URL can be dialled
    /// depends on the `tls` feature; the parser accepts both).
    pub fn parse(url: &str) -> Result<WsUrl, HandshakeError> {
        let bad = |why: &str| HandshakeError::InvalidUrl(format!("{url:?}: {why}"));
        let (rest, secure) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ws") => (rest, false),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("wss") => (rest, true),
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
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            match after {
                "" => (h, None),
                p => (
                    h,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = match port {
            None if secure => 443,
            None => 80,
            Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
        };
        Ok(WsUrl {
            host: host.to_owned(),
            port,
            secure,
            authority: authority.to_owned(),
            target,
        })
    }
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
        for bad in [
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
