//! Which forward proxy a client dials through: a proxy URL, or the environment
//! read the way curl reads it. The handshakes themselves are sans-IO in
//! [`crate::proto::tunnel`]; the dialers ([`Dialer`](crate::Dialer) and the
//! event loop's client) drive them.

use std::net::IpAddr;

use crate::proto::HandshakeError;
use crate::proto::tunnel::Credentials;
use crate::url::WsUrl;

/// The protocol a proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyScheme {
    /// An HTTP proxy: `CONNECT host:port` (`http://` proxy URLs, and URLs
    /// without a scheme, as curl takes them).
    Http,
    /// SOCKS5; the client resolves the target's name (`socks5://`).
    Socks5,
    /// SOCKS5; the proxy resolves the target's name (`socks5h://`), for devices
    /// whose own resolver cannot see the outside.
    Socks5h,
}

/// A forward proxy: where it is, what it speaks, and the credentials from its
/// URL.
///
/// ```
/// use silverback::{Proxy, ProxyScheme};
/// let p = Proxy::parse("socks5h://dev:p%40ss@gw.example:1080")?;
/// assert_eq!(p.scheme(), ProxyScheme::Socks5h);
/// assert_eq!((p.host(), p.port()), ("gw.example", 1080));
/// assert_eq!(p.credentials().unwrap().password, "p@ss");
/// // Like curl: no scheme means HTTP, no port means 1080.
/// let p = Proxy::parse("proxy.corp")?;
/// assert_eq!((p.scheme(), p.port()), (ProxyScheme::Http, 1080));
/// # Ok::<(), silverback::HandshakeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    scheme: ProxyScheme,
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

impl Proxy {
    /// Parses `[scheme://][user[:password]@]host[:port][/]` with `scheme` one of
    /// `http`, `socks5`, `socks5h` (percent-escapes in the user and password are
    /// decoded; IPv6 hosts in brackets).
    pub fn parse(url: &str) -> Result<Proxy, HandshakeError> {
        let bad = |why: &str| HandshakeError::InvalidUrl(format!("proxy {url:?}: {why}"));
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) => {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "http" => ProxyScheme::Http,
                    "socks5" => ProxyScheme::Socks5,
                    "socks5h" => ProxyScheme::Socks5h,
                    _ => return Err(bad("the scheme is not http, socks5 or socks5h")),
                };
                (scheme, rest)
            }
            None => (ProxyScheme::Http, url),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                let dec = |s: &str| {
                    crate::url::percent_decode(s).ok_or_else(|| bad("bad percent-escape"))
                };
                Some(Credentials::new(dec(user)?, dec(password)?))
            }
        };
        let (host, port) = crate::url::split_host_port(hostport).map_err(bad)?;
        let port = port.unwrap_or(1080);
        Ok(Proxy {
            scheme,
            host: host.to_owned(),
            port,
            credentials,
        })
    }

    /// The proxy the environment names for `url`, the way curl chooses: for
    /// `ws://` `http_proxy` (lowercase only, as curl, since `HTTP_PROXY` can be
    /// set by a CGI request's `Proxy:` header), for `wss://` `https_proxy` or
    /// `HTTPS_PROXY`; else `all_proxy` or `ALL_PROXY`; none when `no_proxy` (or
    /// `NO_PROXY`) matches the host (see [`no_proxy_matches`]). Loopback
    /// addresses are not exempt unless listed there, as in curl. `Ok(None)`: go
    /// direct; an error: the variable holds something that is not a proxy URL.
    pub fn from_env(url: &WsUrl) -> Result<Option<Proxy>, HandshakeError> {
        Self::from_vars(url, |k| std::env::var(k).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables (for tests,
    /// and for a configuration that is not the process environment).
    pub fn from_vars(
        url: &WsUrl,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, HandshakeError> {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
        };
        let no = get(&["no_proxy", "NO_PROXY"]);
        if no.is_some_and(|list| no_proxy_matches(&list, &url.host)) {
            return Ok(None);
        }
        let chosen = if url.secure {
            get(&["https_proxy", "HTTPS_PROXY"])
        } else {
            get(&["http_proxy"])
        }
        .or_else(|| get(&["all_proxy", "ALL_PROXY"]));
        chosen.map(|p| Proxy::parse(p.trim())).transpose()
    }

    /// A proxy given by its parts.
    pub fn new(scheme: ProxyScheme, host: impl Into<String>, port: u16) -> Proxy {
        Proxy {
            scheme,
            host: host.into(),
            port,
            credentials: None,
        }
    }

    /// The same proxy with these credentials (Basic for HTTP, RFC 1929 for SOCKS5).
    pub fn with_credentials(mut self, credentials: Credentials) -> Proxy {
        self.credentials = Some(credentials);
        self
    }

    /// The client's side of this proxy's handshake to `target` (its first
    /// bytes go to `out`); for `socks5://` the target's name is resolved here.
    pub(crate) fn tunnel_to(
        &self,
        target: &WsUrl,
        out: &mut Vec<u8>,
    ) -> crate::Result<crate::proto::tunnel::TunnelHandshake> {
        use crate::proto::tunnel::{SocksTarget, TunnelHandshake};
        use std::net::ToSocketAddrs;
        let (host, port, creds) = (target.host.as_str(), target.port, self.credentials());
        let socks = match self.scheme {
            ProxyScheme::Http => return Ok(TunnelHandshake::http_connect(host, port, creds, out)),
            ProxyScheme::Socks5h => SocksTarget::Name(host),
            ProxyScheme::Socks5 => {
                let addr = (host, port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| HandshakeError::InvalidUrl(format!("{host}: no address")))?;
                SocksTarget::Ip(addr.ip())
            }
        };
        Ok(TunnelHandshake::socks5(socks, port, creds, out).map_err(HandshakeError::Proxy)?)
    }

    /// What the proxy speaks.
    pub fn scheme(&self) -> ProxyScheme {
        self.scheme
    }

    /// The proxy's host name or address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The credentials the proxy URL carried.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }
}

/// An I/O error while a tunnel opens, as the error a caller sees: the proxy
/// closing or resetting the connection is [`TunnelError::Closed`], a timeout
/// [`TunnelError::Timeout`], both naming the step; anything else stays I/O.
pub(crate) fn tunnel_io_error(
    step: crate::proto::tunnel::TunnelStep,
    e: std::io::Error,
) -> crate::Error {
    use crate::proto::tunnel::TunnelError;
    use std::io::ErrorKind::*;
    let t = match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
            TunnelError::Closed(step)
        }
        WouldBlock | TimedOut => TunnelError::Timeout(step),
        _ => return crate::Error::Io(e),
    };
    crate::Error::Handshake(HandshakeError::Proxy(t))
}

/// How a client picks its forward proxy ([`Dialer::proxy`](crate::Dialer::proxy),
/// [`ClientBuilder::proxy`](crate::event::ClientBuilder::proxy)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyChoice {
    /// No proxy: connect to the target (the default).
    #[default]
    Direct,
    /// Always this proxy (it overrides the environment).
    Fixed(Proxy),
    /// The proxy the environment names for each URL ([`Proxy::from_env`]).
    FromEnv,
}

impl ProxyChoice {
    /// The proxy for `url` (`None`: direct).
    pub fn for_url(&self, url: &WsUrl) -> Result<Option<Proxy>, HandshakeError> {
        if url.unix.is_some() {
            // A local socket: never through a proxy.
            return Ok(None);
        }
        match self {
            ProxyChoice::Direct => Ok(None),
            ProxyChoice::Fixed(p) => Ok(Some(p.clone())),
            ProxyChoice::FromEnv => Proxy::from_env(url),
        }
    }
}

/// Whether a `no_proxy` list exempts `host`, with curl's rules: entries separated
/// by commas (or spaces), compared without case; `*` alone exempts every host; a
/// name exempts itself and its subdomains (`example.com` and `.example.com` both
/// exempt `example.com` and `a.example.com`, never `notexample.com`); an IP
/// address exempts itself; `address/bits` a CIDR range (IPv4 or IPv6). Only the
/// URL's host is compared, never an address it resolves to.
///
/// ```
/// use silverback::no_proxy_matches;
/// assert!(no_proxy_matches("localhost, .corp.example, 10.0.0.0/8", "build.corp.example"));
/// assert!(no_proxy_matches("localhost, .corp.example, 10.0.0.0/8", "10.1.2.3"));
/// assert!(!no_proxy_matches("localhost, .corp.example, 10.0.0.0/8", "127.0.0.1"));
/// ```
pub fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let ip: Option<IpAddr> = host.parse().ok();
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.trim_start_matches('[').trim_end_matches(']');
            if let Some(ip) = ip {
                if let Some((net, bits)) = entry.split_once('/') {
                    return match (net.parse::<IpAddr>(), bits.parse::<u8>()) {
                        (Ok(net), Ok(bits)) => in_cidr(ip, net, bits),
                        _ => false,
                    };
                }
                return entry.parse::<IpAddr>() == Ok(ip);
            }
            let entry = entry.strip_prefix('.').unwrap_or(entry);
            let entry = entry
                .strip_suffix('.')
                .unwrap_or(entry)
                .to_ascii_lowercase();
            host == entry
                || (host.len() > entry.len()
                    && host.ends_with(&entry)
                    && host.as_bytes()[host.len() - entry.len() - 1] == b'.')
        })
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn chosen(url: &str, vars: &[(&str, &str)]) -> Option<String> {
        Proxy::from_vars(&WsUrl::parse(url).unwrap(), env(vars))
            .unwrap()
            .map(|p| format!("{:?} {}:{}", p.scheme(), p.host(), p.port()))
    }

    #[test]
    fn parses_proxy_urls() {
        let p = Proxy::parse("http://u:p%3Aw@[::1]:3128/").unwrap();
        assert_eq!(
            (p.scheme(), p.host(), p.port()),
            (ProxyScheme::Http, "::1", 3128)
        );
        assert_eq!(p.credentials(), Some(&Credentials::new("u", "p:w")));
        let p = Proxy::parse("SOCKS5://10.0.0.1").unwrap();
        assert_eq!(
            (p.scheme(), p.port(), p.credentials()),
            (ProxyScheme::Socks5, 1080, None)
        );
        assert_eq!(
            Proxy::parse("socks5h://user@h:1")
                .unwrap()
                .credentials()
                .unwrap()
                .password,
            ""
        );
        for bad in [
            "ftp://h",
            "http://",
            "http://h:99999",
            "http://h/path",
            "http://u:%zz@h",
            "http://[::1",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_like_curl() {
        let vars = [
            ("http_proxy", "http://web:3128"),
            ("HTTP_PROXY", "http://ignored:1"),
            ("HTTPS_PROXY", "http://secure:3129"),
            ("ALL_PROXY", "socks5h://all:1080"),
        ];
        assert_eq!(
            chosen("ws://a.example/", &vars).as_deref(),
            Some("Http web:3128")
        );
        assert_eq!(
            chosen("wss://a.example/", &vars).as_deref(),
            Some("Http secure:3129")
        );
        // Only the uppercase HTTP_PROXY: curl ignores it; ALL_PROXY applies.
        let vars = [
            ("HTTP_PROXY", "http://ignored:1"),
            ("all_proxy", "socks5://all:9"),
        ];
        assert_eq!(chosen("ws://a/", &vars).as_deref(), Some("Socks5 all:9"));
        assert_eq!(chosen("ws://a/", &[]), None);
        // An empty variable is no proxy.
        assert_eq!(chosen("ws://a/", &[("http_proxy", "")]), None);
        // Loopback is not exempt unless listed.
        let vars = [("http_proxy", "web:3128")];
        assert!(chosen("ws://127.0.0.1:9/", &vars).is_some());
        let vars = [("http_proxy", "web:3128"), ("NO_PROXY", "127.0.0.0/8")];
        assert_eq!(chosen("ws://127.0.0.1:9/", &vars), None);
        let vars = [("https_proxy", "::nonsense::")];
        assert!(Proxy::from_vars(&WsUrl::parse("wss://a/").unwrap(), env(&vars)).is_err());
    }

    #[test]
    fn no_proxy_rules() {
        let list = "localhost,.internal.example, example.org 192.168.0.0/16,::1,fd00::/8";
        for (host, exempt) in [
            ("localhost", true),
            ("LOCALHOST.", true),
            ("api.internal.example", true),
            ("internal.example", true),
            ("notinternal.example", false),
            ("www.example.org", true),
            ("example.org.evil", false),
            ("192.168.4.5", true),
            ("192.169.0.1", false),
            ("::1", true),
            ("[::1]", true),
            ("fd12::3", true),
            ("fe80::1", false),
            ("127.0.0.1", false),
        ] {
            assert_eq!(no_proxy_matches(list, host), exempt, "{host}");
        }
        assert!(no_proxy_matches("*", "anything"));
        assert!(no_proxy_matches("10.0.0.0/0", "1.2.3.4"));
        assert!(!no_proxy_matches("10.0.0.0/33", "10.0.0.1"));
    }
}
