//! Client connections on a loop: one thread, many outgoing WebSockets.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::event::api::config::{LoopConfig, loop_setters};
use crate::event::api::handler::Handler;
use crate::event::api::id::ConnId;
use crate::event::reactor::mailbox::{Command, WorkerHandle, new_loop};
use crate::event::reactor::worker::Worker;

/// Configures a [`Client`].
#[derive(Debug, Default)]
pub struct ClientBuilder {
    config: LoopConfig,
}

impl ClientBuilder {
    crate::settings::settings_setters!(config.settings);
    loop_setters!();

    /// The TLS configuration `wss://` URLs are dialled with: SNI and the certificate
    /// check use the URL's host; build it with [`crate::tls::client_config`] from
    /// the roots you trust. Without it a `wss://` connect fails.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.config.tls_client = Some(config);
        self
    }

    /// Connects through this forward proxy (HTTP `CONNECT` or SOCKS5; it
    /// overrides the environment). The proxy's handshake runs on the loop from
    /// partial reads, within the handshake timeout; for `wss://` TLS runs inside
    /// the tunnel with SNI and certificate check against the URL's host. A
    /// refusal, a malformed answer or a stall reaches `on_error` as
    /// [`HandshakeError::Proxy`](crate::HandshakeError::Proxy) naming the step.
    pub fn proxy(mut self, proxy: crate::Proxy) -> Self {
        self.config.client_proxy = crate::ProxyChoice::Fixed(proxy);
        self
    }

    /// Chooses each connection's proxy from the environment, as curl does (see
    /// [`Proxy::from_env`](crate::Proxy::from_env)). Off by default.
    pub fn proxy_from_env(mut self) -> Self {
        self.config.client_proxy = crate::ProxyChoice::FromEnv;
        self
    }

    /// Reconnects every connection of this loop that ends without the
    /// application closing it (a server restart, a network loss, a failed
    /// attempt), after a random wait drawn from `backoff` (exponential, full
    /// jitter). A reconnecting connection keeps its [`ConnId`], its data and its
    /// [`Sender`](crate::event::Sender)s; each disconnection calls `on_close`
    /// (where [`Ctx::will_reconnect`](crate::event::Ctx::will_reconnect) says
    /// whether another attempt follows), each reconnection `on_open` again
    /// ([`Ctx::reconnects`](crate::event::Ctx::reconnects) counts them) so the
    /// application can resubscribe. Messages sent while away are queued up to
    /// [`offline_queue`](Self::offline_queue) bytes and go out after `on_open`.
    /// Closing it ([`Ctx::close`](crate::event::Ctx::close),
    /// [`Sender::close`](crate::event::Sender::close)) or shutting the loop down
    /// ends it for good, as does `backoff` giving up.
    pub fn reconnect(mut self, backoff: crate::Backoff) -> Self {
        self.config.reconnect = Some(backoff);
        self
    }

    /// Bytes queued per connection while it reconnects (default 256 KiB; 0:
    /// messages sent while away are refused). See
    /// [`LoopConfig::offline_queue`](crate::event::LoopConfig::offline_queue).
    pub fn offline_queue(mut self, bytes: usize) -> Self {
        self.config.offline_queue = bytes;
        self
    }

    /// Creates the loop with its handler.
    pub fn build<H: Handler>(self, handler: H) -> io::Result<Client<H>> {
        let (handle, poll, rx) = new_loop(0)?;
        let peers: Arc<[WorkerHandle]> = vec![handle.clone()].into();
        let worker = Worker::new(
            poll,
            rx,
            handle.clone(),
            peers,
            Arc::new(self.config),
            handler,
            Vec::new(),
        )?;
        Ok(Client { worker, handle })
    }
}

/// A loop of client connections: non-blocking connects, client handshakes, the same
/// [`Handler`] as a server. One thread can hold thousands of connections.
pub struct Client<H: Handler> {
    worker: Worker<H>,
    handle: WorkerHandle,
}

impl Client<crate::event::api::server::NoHandler> {
    /// A builder with the defaults of [`LoopConfig`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }
}

impl<H: Handler> Client<H> {
    /// Starts connecting to a `ws://` (or, with `ClientBuilder::tls` and the `tls` feature, `wss://`) URL; the outcome arrives as `on_open`, or as
    /// `on_error` then `on_close`. Callbacks can open more with
    /// [`LoopCtx::connect`](crate::event::LoopCtx::connect).
    pub fn connect(&mut self, url: &str, data: H::Data) -> Result<ConnId> {
        self.worker.connect(url, data)
    }

    /// Runs until no connection is left (or [`ClientHandle::shutdown`]).
    pub fn run(&mut self) -> io::Result<()> {
        self.worker.run(true)
    }

    /// The handler (to read results after `run`).
    pub fn handler(&self) -> &H {
        self.worker.handler()
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        self.worker.handler_mut()
    }

    /// A handle to stop the loop from another thread.
    pub fn handle(&self) -> ClientHandle {
        ClientHandle {
            handle: self.handle.clone(),
        }
    }
}

/// Stops a [`Client`] loop from another thread.
#[derive(Clone)]
pub struct ClientHandle {
    handle: WorkerHandle,
}

impl ClientHandle {
    /// The client loop's counters as of its last iteration.
    pub fn stats(&self) -> crate::event::Stats {
        self.handle.stats.read()
    }

    /// Sends close 1001 on every connection and lets `run` return once they are
    /// closed or `grace` has passed.
    pub fn shutdown(&self, grace: Duration) {
        let _ = self.handle.post(Command::Shutdown {
            deadline: Instant::now() + grace,
        });
    }
}
