//! Settings of an event loop (server or client), each with its default: the
//! endpoint's [`Settings`] (shared with the blocking layer) and what only a loop
//! has (connection count, output queues, the HTTP hook).

use std::sync::Arc;
use std::time::Duration;

use crate::proto::handshake::{ClientConfig, ServerConfig};
use crate::proto::proxy::IpNet;
use crate::proto::{CloseCode, ConnectionConfig};
use crate::settings::Settings;

/// What to do when a connection's queued output passes
/// [`LoopConfig::max_output_buffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    /// Stop reading from the peer until the queue drains to half the limit (default).
    /// The pause starts when a callback leaves the queue over the limit (so a handler
    /// answering one message is never cut off half-way); while paused, sends from
    /// timers, [`Sender`](crate::event::Sender)s and broadcasts fail with
    /// [`Error::Backpressure`](crate::Error::Backpressure). A peer that never reads
    /// costs at most the limit plus what one callback queues.
    Pause,
    /// Close the connection with this code (1008 or 1013 are usual).
    Close(CloseCode),
}

/// The PROXY protocol on a server's listeners
/// ([`ServerBuilder::proxy_protocol`](crate::event::ServerBuilder::proxy_protocol)):
/// which balancers may send a header (version 1 or 2, told apart by its first
/// bytes), and whether their connections must.
///
/// A connection from a trusted address that starts with a header is served as the
/// client the header names: the `peer` of
/// [`Handler::on_request`](crate::event::Handler::on_request),
/// [`Ctx::peer_addr`](crate::event::Ctx::peer_addr) and the log lines see that
/// address (a `LOCAL` or `UNKNOWN` header, a balancer's own health check, keeps
/// the socket's). A connection from any other address that starts like a header is
/// closed (a client must not choose its own address), as are a malformed header
/// and, when [`required`](Self::required), a trusted connection without one. Each
/// is counted in [`Stats::proxy_refused`](crate::event::Stats::proxy_refused). The
/// header comes before TLS on a `wss://` listener, as balancers send it. The
/// header is read within the handshake timeout and is bounded (107 bytes for
/// version 1, 16 + 65,535 for version 2); the loop peeks at it and consumes
/// exactly the header, so the client's bytes behind it are untouched.
///
/// ```
/// use silverback::event::{ProxyProtocol, Server};
/// # struct H; impl silverback::event::Handler for H { type Data = (); }
/// let server = Server::builder()
///     .addr("127.0.0.1:0")
///     .proxy_protocol(ProxyProtocol::trusting(["10.0.0.0/8".parse().unwrap()]).required(true))
///     .build(|_| H)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyProtocol {
    trusted: Vec<IpNet>,
    required: bool,
}

impl ProxyProtocol {
    /// Accepts PROXY headers from connections whose address is in one of `nets`
    /// (the balancers), and from no other.
    pub fn trusting(nets: impl IntoIterator<Item = IpNet>) -> Self {
        ProxyProtocol {
            trusted: nets.into_iter().collect(),
            required: false,
        }
    }

    /// Whether a connection from a trusted address must start with a header
    /// (`true`: one without is closed) or may come directly (`false`, the default).
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// Whether a connection from `ip` may send a header.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// Whether trusted connections must send a header.
    pub fn is_required(&self) -> bool {
        self.required
    }
}

/// Settings shared by every connection of a loop. Build with the setters of
/// [`ServerBuilder`](crate::event::ServerBuilder) or [`ClientBuilder`](crate::event::ClientBuilder).
#[derive(Clone)]
#[non_exhaustive]
pub struct LoopConfig {
    /// What every endpoint has (buffers, limits, timeouts, subprotocols, headers,
    /// compression; see [`Settings`]), with the loop's defaults: 64 KiB read buffers
    /// lent from a pool only while input is pending, 16 KiB fragments, 10 s to shake
    /// hands.
    pub settings: Settings,
    /// Largest number of connections (handshaking or open) per loop; a server answers
    /// 503 beyond it. Default: 100,000.
    pub max_connections: usize,
    /// Largest body of a plain HTTP request given to the HTTP hook; 413 beyond.
    /// Default: 64 KiB.
    pub max_http_body: usize,
    /// Queued output bytes per connection before back-pressure applies. Default: 4 MiB.
    pub max_output_buffer: usize,
    /// What back-pressure does. Default: [`Backpressure::Pause`].
    pub backpressure: Backpressure,
    /// Keep plain HTTP connections open between requests when the client asks
    /// (HTTP/1.1 by default); an idle one closes after the handshake timeout.
    /// Default: true.
    pub http_keep_alive: bool,
    /// How long a deferred HTTP request ([`HttpRequest::defer`](crate::event::HttpRequest::defer))
    /// waits for its answer before the loop answers `504`. Default: 30 s.
    pub http_answer_timeout: Duration,
    /// Set TCP_NODELAY on every connection. Default: true.
    pub nodelay: bool,
    /// Servers: the PROXY protocol on every listener. Default: none (a connection
    /// that starts with a PROXY header is an ordinary bad request).
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Servers: limits per source address and per connection (all off by
    /// default; see [`Limits`](crate::event::Limits)).
    pub limits: crate::event::Limits,
    /// Client loops: the TLS configuration `wss://` URLs are dialled with (roots
    /// that verify servers; see [`crate::tls::client_config`]). Default: none, and a
    /// `wss://` connect fails.
    #[cfg(feature = "tls")]
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
    /// Client loops: the forward proxy connections go through. Default:
    /// [`ProxyChoice::Direct`](crate::ProxyChoice::Direct).
    pub client_proxy: crate::ProxyChoice,
    /// Client loops: reconnect each connection that ends without the
    /// application closing it, with this policy. Default: none.
    pub reconnect: Option<crate::Backoff>,
    /// Client loops with `reconnect`: bytes of messages from
    /// [`Sender`](crate::event::Sender)s and broadcasts queued while a connection
    /// is away, delivered once it is back (after `on_open`). Beyond it a message
    /// is refused: dropped and reported to `on_error` as
    /// [`Error::Backpressure`](crate::Error::Backpressure). 0 refuses every
    /// message sent while away. Default: 256 KiB.
    pub offline_queue: usize,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            settings: Settings::event_loop(),
            max_connections: 100_000,
            max_http_body: 64 * 1024,
            max_output_buffer: 4 << 20,
            backpressure: Backpressure::Pause,
            http_keep_alive: true,
            http_answer_timeout: Duration::from_secs(30),
            nodelay: true,
            proxy_protocol: None,
            limits: crate::event::Limits::default(),
            #[cfg(feature = "tls")]
            tls_client: None,
            client_proxy: crate::ProxyChoice::Direct,
            reconnect: None,
            offline_queue: 256 * 1024,
        }
    }
}

impl LoopConfig {
    /// The settings of each protocol connection of the loop.
    pub(crate) fn connection(&self) -> ConnectionConfig {
        self.settings.connection_config()
    }

    /// What the server side of the handshake accepts.
    pub(crate) fn server(&self, connection: Arc<ConnectionConfig>) -> ServerConfig {
        self.settings.server_config(connection)
    }

    /// What the client side of the handshake offers.
    pub(crate) fn client(&self, connection: Arc<ConnectionConfig>) -> ClientConfig {
        self.settings.client_config(connection)
    }
}

impl std::fmt::Debug for LoopConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopConfig")
            .field("settings", &self.settings)
            .field("max_connections", &self.max_connections)
            .field("max_output_buffer", &self.max_output_buffer)
            .field("backpressure", &self.backpressure)
            .finish_non_exhaustive()
    }
}

/// The setters only a loop has, shared by the server and client builders (beside
/// `settings_setters!`, which every endpoint has).
macro_rules! loop_setters {
    () => {
        /// Largest number of connections per loop (503 beyond, for a server).
        /// Default: 100,000.
        pub fn max_connections(mut self, n: usize) -> Self {
            self.config.max_connections = n;
            self
        }
        /// Largest body of a plain HTTP request (413 beyond). Default: 64 KiB.
        pub fn max_http_body(mut self, n: usize) -> Self {
            self.config.max_http_body = n;
            self
        }
        /// Queued output per connection before back-pressure. Default: 4 MiB.
        pub fn max_output_buffer(mut self, n: usize) -> Self {
            self.config.max_output_buffer = n;
            self
        }
        /// What back-pressure does. Default: pause reading.
        pub fn backpressure(mut self, b: $crate::event::Backpressure) -> Self {
            self.config.backpressure = b;
            self
        }
        /// Keep plain HTTP connections open between requests when the client asks.
        /// Default: true.
        pub fn http_keep_alive(mut self, on: bool) -> Self {
            self.config.http_keep_alive = on;
            self
        }
        /// How long a deferred HTTP request waits for its answer (504 after).
        /// Default: 30 s.
        pub fn http_answer_timeout(mut self, t: std::time::Duration) -> Self {
            self.config.http_answer_timeout = t;
            self
        }
        /// TCP_NODELAY on every connection. Default: true.
        pub fn nodelay(mut self, on: bool) -> Self {
            self.config.nodelay = on;
            self
        }
        /// Replaces the whole configuration.
        pub fn config(mut self, config: $crate::event::LoopConfig) -> Self {
            self.config = config;
            self
        }
    };
}

pub(crate) use loop_setters;
