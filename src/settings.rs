//! One vocabulary of settings for every endpoint, whichever IO layer drives it, and
//! one builder implementation for all of them.
//!
//! The blocking [`Dialer`](crate::Dialer) and [`Upgrader`](crate::Upgrader) and the
//! event loop's [`ServerBuilder`](crate::event::ServerBuilder) and
//! [`ClientBuilder`](crate::event::ClientBuilder) each hold a [`Settings`] and get
//! the same setters from one macro (`settings_setters!`): a setting has one name and
//! one meaning everywhere, and only its default differs where the layers differ
//! (a blocking connection reads into a 4 KiB buffer of its own, the loop lends 64
//! KiB buffers from a pool). [`Settings`] turns itself into the protocol core's
//! configurations ([`ConnectionConfig`], [`ServerConfig`], [`ClientConfig`]).

use std::sync::Arc;
use std::time::Duration;

use crate::proto::ConnectionConfig;
use crate::proto::handshake::{ClientConfig, HeadLimits, OriginCheck, ServerConfig};

/// The settings of an endpoint's connections and handshakes. Build with the
/// setters of the endpoint ([`Dialer`](crate::Dialer), [`Upgrader`](crate::Upgrader),
/// [`ServerBuilder`](crate::event::ServerBuilder),
/// [`ClientBuilder`](crate::event::ClientBuilder)), or change fields and hand the
/// whole value to their `settings` setter. Each field's default is the blocking
/// layer's; the event loop's differences are noted.
#[derive(Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Read buffer size: data frames up to this size are delivered whole from the
    /// buffer (unmasked in place), larger ones stream through it. Default: 4096
    /// (at least 139); event loop: 64 KiB, lent from a pool only while input is
    /// pending.
    pub read_buffer_size: usize,
    /// Size of the fragments a streamed message (`next_writer`, `Ctx::writer`) goes
    /// out in. Default: 4096; event loop: 16 KiB.
    pub write_buffer_size: usize,
    /// Largest message accepted; a larger one is refused with 1009. Default: 64 MiB.
    pub max_message_size: u64,
    /// Largest HTTP head (request or response) in bytes; 431 beyond. Default: 16 KiB.
    pub max_head_size: usize,
    /// Largest number of HTTP header fields; 431 beyond. Default: 64.
    pub max_headers: usize,
    /// Time allowed for the opening handshake (`None`: none). Default: 10 s for a
    /// server, 45 s for a client (connect included, as gorilla's `DefaultDialer`).
    pub handshake_timeout: Option<Duration>,
    /// How long to wait for the peer's close frame after ours (and, as a client, for
    /// the server to close the connection after the closing handshake). Default: 5 s.
    pub close_timeout: Duration,
    /// Answer pings with pongs automatically. Default: true.
    pub auto_pong: bool,
    /// Heartbeat: send a ping this often (`None`: never). Default: none.
    pub ping_interval: Option<Duration>,
    /// Heartbeat: a peer that sends nothing at all within this time after our ping
    /// is gone. Default: 10 s.
    pub pong_timeout: Duration,
    /// Close (1001) a connection that received nothing for this long (`None`:
    /// never). Default: none.
    pub idle_timeout: Option<Duration>,
    /// Subprotocols spoken (server, in preference order) or offered (client).
    /// Default: none.
    pub subprotocols: Vec<String>,
    /// Headers added to every `101` (server) or upgrade request (client).
    pub headers: Vec<(String, String)>,
    /// permessage-deflate (RFC 7692): accepted (server) or offered (client) on these
    /// terms. Default: off.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::proto::deflate::DeflateConfig>,
    /// Servers: the origin policy (`None`: gorilla's same-origin rule).
    pub(crate) check_origin: Option<OriginCheck>,
}

impl Default for Settings {
    /// The blocking server's defaults.
    fn default() -> Self {
        Settings {
            read_buffer_size: 4096,
            write_buffer_size: 4096,
            max_message_size: crate::proto::DEFAULT_MAX_MESSAGE_SIZE,
            max_head_size: 16 * 1024,
            max_headers: 64,
            handshake_timeout: Some(Duration::from_secs(10)),
            close_timeout: Duration::from_secs(5),
            auto_pong: true,
            ping_interval: None,
            pong_timeout: Duration::from_secs(10),
            idle_timeout: None,
            subprotocols: Vec::new(),
            headers: Vec::new(),
            #[cfg(feature = "deflate")]
            deflate: None,
            check_origin: None,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("read_buffer_size", &self.read_buffer_size)
            .field("write_buffer_size", &self.write_buffer_size)
            .field("max_message_size", &self.max_message_size)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("subprotocols", &self.subprotocols)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// A blocking client's defaults (45 s to connect and shake hands).
    pub(crate) fn client() -> Settings {
        Settings {
            handshake_timeout: Some(Duration::from_secs(45)),
            ..Settings::default()
        }
    }

    /// The event loop's defaults (pooled 64 KiB read buffers, 16 KiB fragments).
    pub(crate) fn event_loop() -> Settings {
        Settings {
            read_buffer_size: 64 * 1024,
            write_buffer_size: 16 * 1024,
            ..Settings::default()
        }
    }

    /// The settings of each protocol connection.
    pub fn connection_config(&self) -> ConnectionConfig {
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

    /// What the server side of the handshake accepts, opening connections with
    /// `connection`.
    pub fn server_config(&self, connection: Arc<ConnectionConfig>) -> ServerConfig {
        let mut s = ServerConfig::default()
            .limits(self.limits())
            .timeout(self.handshake_timeout)
            .subprotocols(self.subprotocols.iter().cloned());
        s.check_origin = self.check_origin.clone();
        s.headers = self.headers.clone();
        #[cfg(feature = "deflate")]
        {
            s.deflate = self.deflate.clone();
        }
        s.connection = connection;
        s
    }

    /// What the client side of the handshake offers, opening connections with
    /// `connection`.
    pub fn client_config(&self, connection: Arc<ConnectionConfig>) -> ClientConfig {
        let mut c = ClientConfig::default()
            .limits(self.limits())
            .timeout(self.handshake_timeout)
            .subprotocols(self.subprotocols.iter().cloned());
        c.headers = self.headers.clone();
        #[cfg(feature = "deflate")]
        {
            c.deflate = self.deflate.clone();
        }
        c.connection = connection;
        c
    }
}

/// The setters every endpoint builder has, over the [`Settings`] it holds at
/// `self.$($field).+`; `server` adds the origin policy.
macro_rules! settings_setters {
    ($($field:ident).+) => {
        /// Replaces every setting at once (see [`Settings`](crate::Settings)).
        pub fn settings(mut self, settings: $crate::Settings) -> Self {
            self.$($field).+ = settings;
            self
        }
        /// Read buffer size: frames up to it are delivered whole. Default: 4096
        /// (blocking), 64 KiB (event loop).
        pub fn read_buffer_size(mut self, n: usize) -> Self {
            self.$($field).+.read_buffer_size = n;
            self
        }
        /// Fragment size of streamed messages. Default: 4096 (blocking), 16 KiB
        /// (event loop).
        pub fn write_buffer_size(mut self, n: usize) -> Self {
            self.$($field).+.write_buffer_size = n;
            self
        }
        /// Largest message accepted (1009 beyond). Default: 64 MiB.
        pub fn max_message_size(mut self, n: u64) -> Self {
            self.$($field).+.max_message_size = n;
            self
        }
        /// Largest HTTP head in bytes (431 beyond). Default: 16 KiB.
        pub fn max_head_size(mut self, n: usize) -> Self {
            self.$($field).+.max_head_size = n;
            self
        }
        /// Largest number of HTTP header fields (431 beyond). Default: 64.
        pub fn max_headers(mut self, n: usize) -> Self {
            self.$($field).+.max_headers = n;
            self
        }
        /// Time allowed for the opening handshake (`None`: unbounded). Default: 10 s
        /// (servers), 45 s (clients, connect included).
        pub fn handshake_timeout(mut self, t: impl Into<Option<std::time::Duration>>) -> Self {
            self.$($field).+.handshake_timeout = t.into();
            self
        }
        /// Wait this long for the peer's close frame after ours. Default: 5 s.
        pub fn close_timeout(mut self, t: std::time::Duration) -> Self {
            self.$($field).+.close_timeout = t;
            self
        }
        /// Answer pings automatically. Default: true.
        pub fn auto_pong(mut self, on: bool) -> Self {
            self.$($field).+.auto_pong = on;
            self
        }
        /// Heartbeat: ping every `interval`, drop a peer silent for `pong_timeout`
        /// after a ping. Default: off.
        pub fn heartbeat(
            mut self,
            interval: std::time::Duration,
            pong_timeout: std::time::Duration,
        ) -> Self {
            self.$($field).+.ping_interval = Some(interval);
            self.$($field).+.pong_timeout = pong_timeout;
            self
        }
        /// Close (1001) connections that receive nothing for `t`. Default: off.
        pub fn idle_timeout(mut self, t: Option<std::time::Duration>) -> Self {
            self.$($field).+.idle_timeout = t;
            self
        }
        /// Subprotocols spoken (server, in preference order) or offered (client).
        /// Default: none.
        pub fn subprotocols<I, P>(mut self, protocols: I) -> Self
        where
            I: IntoIterator<Item = P>,
            P: Into<String>,
        {
            self.$($field).+.subprotocols = protocols.into_iter().map(Into::into).collect();
            self
        }
        /// Adds a header to every `101` (server) or upgrade request (client).
        pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.$($field).+.headers.push((name.into(), value.into()));
            self
        }
        /// permessage-deflate (RFC 7692): accept it (server) or offer it (client) on
        /// the terms of `cfg`. Default: off.
        #[cfg(feature = "deflate")]
        pub fn deflate(mut self, cfg: $crate::proto::deflate::DeflateConfig) -> Self {
            self.$($field).+.deflate = Some(cfg);
            self
        }
    };
    (server $($field:ident).+) => {
        $crate::settings::settings_setters!($($field).+);
        /// Replaces the origin check: `f` returns true to let a request through (403
        /// otherwise). Default: gorilla's rule, [`Request::same_origin`] (no
        /// `Origin`, or one whose host is the `Host` header).
        ///
        /// [`Request::same_origin`]: crate::proto::handshake::Request::same_origin
        pub fn check_origin(
            mut self,
            f: impl Fn(&$crate::proto::handshake::Request) -> bool + Send + Sync + 'static,
        ) -> Self {
            self.$($field).+.check_origin = Some(std::sync::Arc::new(f));
            self
        }
    };
}

pub(crate) use settings_setters;
