//! Settings of an event loop (server or client), each with its default.

use std::sync::Arc;
use std::time::Duration;

use crate::proto::handshake::{ClientConfig, HeadLimits, OriginCheck, ServerConfig};
use crate::proto::{CloseCode, ConnectionConfig};

/// What to do when a connection's queued output passes
/// [`LoopConfig::max_output_buffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    /// Stop reading from the peer until the queue drains to half the limit (default).
    /// The pause starts when a callback leaves the queue over the limit (so a handler
    /// answering one message is never cut off half-way); while paused, sends from
    /// timers, [`Sender`](super::Sender)s and broadcasts fail with
    /// [`Error::Backpressure`](crate::Error::Backpressure). A peer that never reads
    /// costs at most the limit plus what one callback queues.
    Pause,
    /// Close the connection with this code (1008 or 1013 are usual).
    Close(CloseCode),
}

/// Settings shared by every connection of a loop. Build with the setters of
/// [`ServerBuilder`](super::ServerBuilder) or [`ClientBuilder`](super::ClientBuilder).
#[derive(Clone)]
#[non_exhaustive]
pub struct LoopConfig {
    /// Largest number of connections (handshaking or open) per loop; a server answers
    /// 503 beyond it. Default: 100,000.
    pub max_connections: usize,
    /// Largest HTTP head (request or response) in bytes; 431 beyond. Default: 16 KiB.
    pub max_head_size: usize,
    /// Largest number of HTTP header fields; 431 beyond. Default: 64.
    pub max_headers: usize,
    /// Largest body of a plain HTTP request given to the HTTP hook; 413 beyond.
    /// Default: 64 KiB.
    pub max_http_body: usize,
    /// Largest incoming message; 1009 beyond. Default: 64 MiB.
    pub max_message_size: u64,
    /// Size of the read buffer a connection borrows from the loop's pool while it has
    /// unprocessed input (idle connections hold none). Frames up to this size are
    /// delivered from the buffer without a copy. Default: 64 KiB.
    pub read_buffer_size: usize,
    /// Fragment size of the streaming writer. Default: 16 KiB.
    pub write_buffer_size: usize,
    /// Queued output bytes per connection before back-pressure applies. Default: 4 MiB.
    pub max_output_buffer: usize,
    /// What back-pressure does. Default: [`Backpressure::Pause`].
    pub backpressure: Backpressure,
    /// Time allowed for the opening handshake (or a plain HTTP request; an idle
    /// kept-alive HTTP connection is closed after it). Default: 10 s.
    pub handshake_timeout: Duration,
    /// Keep plain HTTP connections open between requests when the client asks
    /// (HTTP/1.1 by default). Default: true.
    pub http_keep_alive: bool,
    /// How long a deferred HTTP request ([`HttpRequest::defer`](super::HttpRequest::defer))
    /// waits for its answer before the loop answers `504`. Default: 30 s.
    pub http_answer_timeout: Duration,
    /// Send a ping this often (`None`: never). Default: none.
    pub ping_interval: Option<Duration>,
    /// Fail a peer that has not answered a ping (or sent anything) within this time
    /// after it. Default: 10 s.
    pub pong_timeout: Duration,
    /// Close (1001) a connection that received nothing for this long (`None`: never).
    /// Default: none.
    pub idle_timeout: Option<Duration>,
    /// How long to wait for the peer's close frame (and, as a client, for the server's
    /// TCP close) after ours. Default: 5 s.
    pub close_timeout: Duration,
    /// Answer pings with pongs automatically (the handler is told either way).
    /// Default: true.
    pub auto_pong: bool,
    /// Subprotocols the server speaks (preference order) or the client offers.
    /// Default: none.
    pub subprotocols: Vec<String>,
    pub(crate) check_origin: Option<OriginCheck>,
    /// Extra headers: on every `101` (server) or every upgrade request (client).
    pub headers: Vec<(String, String)>,
    /// Set TCP_NODELAY on every connection. Default: true.
    pub nodelay: bool,
    /// permessage-deflate (RFC 7692): accepted (server) or offered (client) on these
    /// terms. Default: off.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::proto::deflate::DeflateConfig>,
    /// Client loops: the TLS configuration `wss://` URLs are dialled with (roots
    /// that verify servers; see [`crate::tls::client_config`]). Default: none, and a
    /// `wss://` connect fails.
    #[cfg(feature = "tls")]
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            max_connections: 100_000,
            max_head_size: 16 * 1024,
            max_headers: 64,
            max_http_body: 64 * 1024,
            max_message_size: crate::proto::DEFAULT_MAX_MESSAGE_SIZE,
            read_buffer_size: 64 * 1024,
            write_buffer_size: 16 * 1024,
            max_output_buffer: 4 << 20,
            backpressure: Backpressure::Pause,
            handshake_timeout: Duration::from_secs(10),
            http_keep_alive: true,
            http_answer_timeout: Duration::from_secs(30),
            ping_interval: None,
            pong_timeout: Duration::from_secs(10),
            idle_timeout: None,
            close_timeout: Duration::from_secs(5),
            auto_pong: true,
            subprotocols: Vec::new(),
            check_origin: None,
            headers: Vec::new(),
            nodelay: true,
            #[cfg(feature = "deflate")]
            deflate: None,
            #[cfg(feature = "tls")]
            tls_client: None,
        }
    }
}

impl LoopConfig {
    /// The settings of each protocol connection of the loop.
    pub(crate) fn connection(&self) -> ConnectionConfig {
        ConnectionConfig::default()
            .max_message_size(self.max_message_size)
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            .auto_pong(self.auto_pong)
            .heartbeat(self.ping_interval, self.pong_timeout)
            .idle_timeout(self.idle_timeout)
            .close_timeout(self.close_timeout)
    }

    fn limits(&self) -> HeadLimits {
        HeadLimits {
            max_size: self.max_head_size,
            max_headers: self.max_headers,
        }
    }

    /// What the server side of the handshake accepts.
    pub(crate) fn server(&self, connection: Arc<ConnectionConfig>) -> ServerConfig {
        ServerConfig {
            limits: self.limits(),
            timeout: Some(self.handshake_timeout),
            subprotocols: self.subprotocols.clone(),
            check_origin: self.check_origin.clone(),
            headers: self.headers.clone(),
            #[cfg(feature = "deflate")]
            deflate: self.deflate.clone(),
            connection,
        }
    }

    /// What the client side of the handshake offers.
    pub(crate) fn client(&self, connection: Arc<ConnectionConfig>) -> ClientConfig {
        ClientConfig {
            limits: self.limits(),
            timeout: Some(self.handshake_timeout),
            subprotocols: self.subprotocols.clone(),
            headers: self.headers.clone(),
            #[cfg(feature = "deflate")]
            deflate: self.deflate.clone(),
            connection,
        }
    }
}

impl std::fmt::Debug for LoopConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopConfig")
            .field("max_connections", &self.max_connections)
            .field("max_message_size", &self.max_message_size)
            .field("read_buffer_size", &self.read_buffer_size)
            .field("max_output_buffer", &self.max_output_buffer)
            .field("backpressure", &self.backpressure)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

/// Setters shared by the server and client builders.
macro_rules! config_setters {
    () => {
        /// Largest number of connections per loop (503 beyond, for a server).
        /// Default: 100,000.
        pub fn max_connections(mut self, n: usize) -> Self {
            self.config.max_connections = n;
            self
        }
        /// Largest HTTP head in bytes (431 beyond). Default: 16 KiB.
        pub fn max_head_size(mut self, n: usize) -> Self {
            self.config.max_head_size = n;
            self
        }
        /// Largest number of HTTP header fields (431 beyond). Default: 64.
        pub fn max_headers(mut self, n: usize) -> Self {
            self.config.max_headers = n;
            self
        }
        /// Largest incoming message (1009 beyond). Default: 64 MiB.
        pub fn max_message_size(mut self, n: u64) -> Self {
            self.config.max_message_size = n;
            self
        }
        /// Read buffer size (borrowed from a pool only while input is pending).
        /// Default: 64 KiB.
        pub fn read_buffer_size(mut self, n: usize) -> Self {
            self.config.read_buffer_size = n;
            self
        }
        /// Fragment size of the streaming writer. Default: 16 KiB.
        pub fn write_buffer_size(mut self, n: usize) -> Self {
            self.config.write_buffer_size = n;
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
        /// Time allowed for the opening handshake. Default: 10 s.
        pub fn handshake_timeout(mut self, t: std::time::Duration) -> Self {
            self.config.handshake_timeout = t;
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
        /// Heartbeat: ping every `interval`, fail a peer silent for `pong_timeout`
        /// after a ping. Default: off.
        pub fn heartbeat(
            mut self,
            interval: std::time::Duration,
            pong_timeout: std::time::Duration,
        ) -> Self {
            self.config.ping_interval = Some(interval);
            self.config.pong_timeout = pong_timeout;
            self
        }
        /// Close (1001) connections that receive nothing for `t`. Default: off.
        pub fn idle_timeout(mut self, t: Option<std::time::Duration>) -> Self {
            self.config.idle_timeout = t;
            self
        }
        /// Wait this long for the peer's close frame after ours. Default: 5 s.
        pub fn close_timeout(mut self, t: std::time::Duration) -> Self {
            self.config.close_timeout = t;
            self
        }
        /// Answer pings automatically. Default: true.
        pub fn auto_pong(mut self, on: bool) -> Self {
            self.config.auto_pong = on;
            self
        }
        /// Subprotocols spoken (server, in preference order) or offered (client).
        pub fn subprotocols<I, P>(mut self, protocols: I) -> Self
        where
            I: IntoIterator<Item = P>,
            P: Into<String>,
        {
            self.config.subprotocols = protocols.into_iter().map(Into::into).collect();
            self
        }
        /// Adds a header to every `101` (server) or upgrade request (client).
        pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.config.headers.push((name.into(), value.into()));
            self
        }
        /// TCP_NODELAY on every connection. Default: true.
        pub fn nodelay(mut self, on: bool) -> Self {
            self.config.nodelay = on;
            self
        }
        /// permessage-deflate (RFC 7692): accept it (server) or offer it (client) on
        /// the terms of `cfg`. Default: off.
        #[cfg(feature = "deflate")]
        pub fn deflate(mut self, cfg: $crate::proto::deflate::DeflateConfig) -> Self {
            self.config.deflate = Some(cfg);
            self
        }
        /// Replaces the whole configuration.
        pub fn config(mut self, config: $crate::event::LoopConfig) -> Self {
            self.config = config;
            self
        }
    };
}

pub(crate) use config_setters;
