//! The server: a listener and N loops, each on its own thread with its own handler.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpListener;

use crate::event::api::config::{LoopConfig, loop_setters};
use crate::event::api::handler::Handler;
use crate::event::api::prepared::Prepared;
use crate::event::api::publisher::Publisher;
use crate::event::conn::rates::IpTable;
use crate::event::conn::transport::ServerTls;
use crate::event::reactor::mailbox::{Command, WorkerHandle, new_loop};
use crate::event::reactor::worker::{ListenSock, Listener, Worker};

/// Listeners beyond the first a server can have.
const MAX_EXTRA_LISTENERS: usize = 15;

/// Configures a [`Server`].
///
/// ```no_run
/// use silverback::event::{Ctx, Handler, MessageRef, Server};
///
/// struct Echo;
/// impl Handler for Echo {
///     type Data = ();
///     fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
///         let _ = ctx.send(msg.kind, msg.data);
///     }
/// }
///
/// Server::builder().addr("127.0.0.1:22345").workers(2).build(|_| Echo)?.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ServerBuilder {
    addr: String,
    tls: ServerTls,
    extra: Vec<(String, ServerTls)>,
    /// Unix domain socket listeners.
    #[cfg(unix)]
    unix: Vec<(std::path::PathBuf, ServerTls)>,
    workers: usize,
    config: LoopConfig,
    reuseport: bool,
    /// Take listeners and connections over from an old process.
    #[cfg(feature = "handover")]
    resume: Option<std::path::PathBuf>,
}

impl ServerBuilder {
    /// Starts by taking over a running server's listening sockets and open
    /// connections (feature `handover`): [`build`](Self::build) listens on the Unix
    /// socket `path`, waits for the old process's
    /// [`ServerHandle::hand_over`], checks everything it receives, and returns
    /// once the old process has let go. The listeners are the old process's
    /// (the addresses given to this builder are not bound; TLS settings apply by
    /// position: [`addr`](Self::addr)'s to the old first listener, and so on);
    /// each connection comes back through
    /// [`Handler::on_resume`](crate::event::Handler::on_resume), spread over the
    /// loops. If anything fails before that, `build` returns the error and the
    /// old process keeps serving. See `docs/handover.md`.
    #[cfg(feature = "handover")]
    pub fn resume_from(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.resume = Some(path.into());
        self
    }

    /// Listen address. Default: `0.0.0.0:22345`.
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = addr.into();
        self
    }

    /// Serves `wss://` on [`addr`](Self::addr): the TLS handshake runs inside the
    /// loop from partial reads, within the same handshake timeout as the HTTP
    /// upgrade; `close_notify` goes out when a connection closes. Build the
    /// configuration with [`crate::tls::server_config`] (ALPN `http/1.1`) or bring a
    /// rustls one (a certificate resolver for several host names, say).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = ServerTls {
            config: Some(config),
        };
        self
    }

    /// Listens on one more address, plain `ws://` (up to 15 more). Its connections
    /// share the loops, handler and settings of the others.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.extra.push((addr.into(), ServerTls::default()));
        self
    }

    /// Listens on a Unix domain socket as well (plain `ws://`; a path that
    /// exists already is refused at [`build`](Self::build), and the file is
    /// removed when the server is dropped). Beside the TCP listeners, in one
    /// server; its connections report peer address `0.0.0.0:0` (and count as
    /// that one address for per-address limits) and never carry a PROXY header.
    /// Clients reach it with `ws+unix://` URLs
    /// ([`url::WsUrl`](crate::url::WsUrl)).
    #[cfg(unix)]
    pub fn listen_unix(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.unix.push((path.into(), ServerTls::default()));
        self
    }

    /// A Unix domain socket listener with TLS (`wss+unix://`).
    #[cfg(all(unix, feature = "tls"))]
    pub fn listen_unix_tls(
        mut self,
        path: impl Into<std::path::PathBuf>,
        config: Arc<rustls::ServerConfig>,
    ) -> Self {
        self.unix.push((
            path.into(),
            ServerTls {
                config: Some(config),
            },
        ));
        self
    }

    /// Listens on one more address with TLS (`wss://`); plain and TLS listeners
    /// run in one server (`.addr(":80").listen_tls(":443", cfg)`).
    #[cfg(feature = "tls")]
    pub fn listen_tls(
        mut self,
        addr: impl Into<String>,
        config: Arc<rustls::ServerConfig>,
    ) -> Self {
        self.extra.push((
            addr.into(),
            ServerTls {
                config: Some(config),
            },
        ));
        self
    }

    /// Each loop listens on every address itself (`SO_REUSEPORT`: the kernel
    /// spreads new connections over the loops by a hash of their addresses), in
    /// place of the default, where loop 0 accepts and hands sockets round-robin to
    /// the loops with room. No hand-off hop and no single acceptor; the kernel's
    /// spread ignores how loaded each loop is, and a loop at `max_connections`
    /// refuses with 503 rather than passing the connection on. Linux and the BSDs
    /// (feature `reuseport`, which adds `socket2`). Default: off.
    #[cfg(all(unix, feature = "reuseport"))]
    pub fn reuseport(mut self, on: bool) -> Self {
        self.reuseport = on;
        self
    }

    /// Number of loops (threads). The first accepts and hands sockets round-robin to
    /// the others (see `reuseport`, feature `reuseport`, for the alternative).
    /// Default: 1.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.clamp(1, 255);
        self
    }

    /// Reads a PROXY protocol header (version 1 or 2) from the balancers `p`
    /// trusts, before TLS and HTTP: see [`ProxyProtocol`](crate::event::ProxyProtocol). Default: off.
    pub fn proxy_protocol(mut self, p: crate::event::ProxyProtocol) -> Self {
        self.config.proxy_protocol = Some(p);
        self
    }

    /// At most `n` connections at once (handshaking or open) from one source
    /// address, over all loops; the next gets `503` with `Retry-After: 1` (see
    /// [`Limits`](crate::event::Limits)). Default: none.
    pub fn max_conns_per_ip(mut self, n: u32) -> Self {
        self.config.limits.max_conns_per_ip = Some(n);
        self
    }

    /// At most `n` new connections per second from one source address (a bucket
    /// holding one second's worth); beyond, `503` with `Retry-After: 1`. Default:
    /// none.
    pub fn max_handshakes_per_ip(mut self, n: u32) -> Self {
        self.config.limits.max_handshakes_per_ip = Some(n);
        self
    }

    /// At most `n` messages per second per connection; beyond,
    /// [`rate_policy`](Self::rate_policy) applies. Default: none.
    pub fn max_messages_per_sec(mut self, n: u32) -> Self {
        self.config.limits.max_messages_per_sec = Some(n);
        self
    }

    /// At most `n` payload bytes per second per connection; beyond,
    /// [`rate_policy`](Self::rate_policy) applies. Default: none.
    pub fn max_bytes_per_sec(mut self, n: u64) -> Self {
        self.config.limits.max_bytes_per_sec = Some(n);
        self
    }

    /// What a connection over its message or byte rate gets: closed with 1008, or
    /// throttled. Default: [`RatePolicy::Close`](crate::event::RatePolicy::Close).
    pub fn rate_policy(mut self, p: crate::event::RatePolicy) -> Self {
        self.config.limits.rate_policy = p;
        self
    }

    crate::settings::settings_setters!(server config.settings);
    loop_setters!();

    /// Binds the listener and prepares the loops. `factory(i)` creates loop `i`'s
    /// handler on that loop's thread.
    pub fn build<H, F>(self, factory: F) -> io::Result<Server<H>>
    where
        H: Handler,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        if self.extra.len() > MAX_EXTRA_LISTENERS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many listeners",
            ));
        }
        #[cfg(feature = "handover")]
        if let Some(path) = self.resume.clone() {
            return self.build_resumed(&path, factory);
        }
        // listeners[i]: loop i's. Without SO_REUSEPORT loop 0 holds them all.
        let per_loop = if self.reuseport { self.workers } else { 1 };
        let mut listeners: Vec<Vec<Listener>> = (0..self.workers).map(|_| Vec::new()).collect();
        let mut local_addrs = Vec::new();
        let all = std::iter::once((self.addr, self.tls)).chain(self.extra);
        for (addr, tls) in all {
            let mut addr = addr
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
            for own in listeners.iter_mut().take(per_loop) {
                let std_listener = bind(addr, self.reuseport)?;
                std_listener.set_nonblocking(true)?;
                // Port 0: the first bind chose the port the others share.
                addr = std_listener.local_addr()?;
                own.push(Listener {
                    sock: ListenSock::Tcp(TcpListener::from_std(std_listener)),
                    tls: tls.clone(),
                });
            }
            local_addrs.push(addr);
        }
        // Unix domain sockets: loop 0 accepts and hands connections out.
        #[cfg(unix)]
        for (path, tls) in self.unix {
            let l = mio::net::UnixListener::bind(&path).map_err(|e| {
                io::Error::new(e.kind(), format!("listen on {}: {e}", path.display()))
            })?;
            listeners[0].push(Listener {
                sock: ListenSock::Unix(l, path),
                tls,
            });
        }
        Server::assemble(
            listeners,
            Arc::new(factory),
            self.config,
            local_addrs,
            self.reuseport,
        )
    }

    /// [`build`](Self::build) from a handover: the old process's listeners and
    /// connections.
    #[cfg(feature = "handover")]
    fn build_resumed<H, F>(self, path: &std::path::Path, factory: F) -> io::Result<Server<H>>
    where
        H: Handler,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        use crate::event::api::handover::receive;
        let inbound = receive(path, |rec| {
            if rec.state.role != crate::proto::Role::Server {
                return Err("a client connection".into());
            }
            // (decode_conn checked the state itself.)
            Ok(())
        })?;
        let tls: Vec<ServerTls> = std::iter::once(self.tls)
            .chain(self.extra.into_iter().map(|(_, t)| t))
            .collect();
        #[cfg(unix)]
        let unix_tls: Vec<ServerTls> = self.unix.into_iter().map(|(_, t)| t).collect();
        let mut own = Vec::new();
        let mut local_addrs = Vec::new();
        let (mut tcp_i, mut unix_i) = (0, 0);
        for (rec, fd) in inbound.listeners {
            match rec.unix_path {
                None => {
                    let l = std::net::TcpListener::from(fd);
                    l.set_nonblocking(true)?;
                    local_addrs.push(l.local_addr()?);
                    own.push(Listener {
                        sock: ListenSock::Tcp(TcpListener::from_std(l)),
                        tls: tls.get(tcp_i).cloned().unwrap_or_default(),
                    });
                    tcp_i += 1;
                }
                Some(path) => {
                    let l = std::os::unix::net::UnixListener::from(fd);
                    l.set_nonblocking(true)?;
                    own.push(Listener {
                        sock: ListenSock::Unix(mio::net::UnixListener::from_std(l), path.into()),
                        tls: unix_tls.get(unix_i).cloned().unwrap_or_default(),
                    });
                    unix_i += 1;
                }
            }
        }
        if local_addrs.is_empty() {
            // Only Unix sockets: `local_addr` still answers something.
            local_addrs.push(SocketAddr::from(([0, 0, 0, 0], 0)));
        }
        let mut listeners: Vec<Vec<Listener>> = (0..self.workers).map(|_| Vec::new()).collect();
        listeners[0] = own;
        let mut resumed: Vec<Vec<_>> = (0..self.workers).map(|_| Vec::new()).collect();
        for (i, c) in inbound.conns.into_iter().enumerate() {
            resumed[i % self.workers].push(c);
        }
        let mut server = Server::assemble(
            listeners,
            Arc::new(factory),
            self.config,
            local_addrs,
            false,
        )?;
        server.resumed = resumed;
        Ok(server)
    }
}

/// A listening socket on `addr`, with `SO_REUSEPORT` when asked.
fn bind(addr: SocketAddr, reuseport: bool) -> io::Result<std::net::TcpListener> {
    #[cfg(all(unix, feature = "reuseport"))]
    if reuseport {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        return Ok(s.into());
    }
    let _ = reuseport;
    std::net::TcpListener::bind(addr)
}

type Factory<H> = Arc<dyn Fn(usize) -> H + Send + Sync>;

/// A WebSocket server on the event loop. [`run`](Self::run) blocks until
/// [`ServerHandle::shutdown`]; [`spawn`](Self::spawn) runs it on background threads.
pub struct Server<H: Handler> {
    /// Each loop's listeners (all of them loop 0's without `SO_REUSEPORT`).
    listeners: Vec<Vec<Listener>>,
    handles: Arc<[WorkerHandle]>,
    parts: Vec<(mio::Poll, std::sync::mpsc::Receiver<Command>)>,
    factory: Factory<H>,
    config: Arc<LoopConfig>,
    local_addrs: Arc<[SocketAddr]>,
    /// Connections and handshake rates per source address, over all loops.
    ips: Arc<IpTable>,
    /// Each loop accepts on its own listeners.
    reuseport: bool,
    /// Connections a handover brought, per loop.
    #[cfg(feature = "handover")]
    resumed: Vec<Vec<(crate::handover::format::ConnRecord, std::os::fd::OwnedFd)>>,
}

impl Server<NoHandler> {
    /// A builder with the defaults of [`LoopConfig`].
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            addr: "0.0.0.0:22345".into(),
            tls: ServerTls::default(),
            extra: Vec::new(),
            #[cfg(unix)]
            unix: Vec::new(),
            workers: 1,
            config: LoopConfig::default(),
            reuseport: false,
            #[cfg(feature = "handover")]
            resume: None,
        }
    }
}

/// Placeholder handler type for [`Server::builder`].
#[derive(Debug)]
pub struct NoHandler;

impl Handler for NoHandler {
    type Data = ();
}

impl<H: Handler> Server<H> {
    /// A server of one loop per entry of `listeners` (each loop's own).
    fn assemble(
        listeners: Vec<Vec<Listener>>,
        factory: Factory<H>,
        config: LoopConfig,
        local_addrs: Vec<SocketAddr>,
        reuseport: bool,
    ) -> io::Result<Server<H>> {
        let mut handles = Vec::new();
        let mut parts = Vec::new();
        for i in 0..listeners.len() {
            let (h, poll, rx) = new_loop(i)?;
            handles.push(h);
            parts.push((poll, rx));
        }
        Ok(Server {
            listeners,
            handles: handles.into(),
            parts,
            factory,
            config: Arc::new(config),
            local_addrs: local_addrs.into(),
            ips: Arc::default(),
            reuseport,
            #[cfg(feature = "handover")]
            resumed: Vec::new(),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// Every bound address: [`addr`](ServerBuilder::addr)'s first, then those of
    /// [`listen`](ServerBuilder::listen) (and `listen_tls`) in the order given.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// A handle for other threads: shutdown, broadcast.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            handles: self.handles.clone(),
            local_addrs: self.local_addrs.clone(),
        }
    }

    /// Runs the loops: loop 0 on this thread, the others on new threads. Returns after
    /// a graceful shutdown, once every loop has finished.
    pub fn run(mut self) -> io::Result<()> {
        let mut threads = Vec::new();
        let mut parts = std::mem::take(&mut self.parts).into_iter().enumerate();
        let first = parts.next();
        for (i, (poll, rx)) in parts {
            let me = self.handles[i].clone();
            let peers = self.handles.clone();
            let config = self.config.clone();
            let factory = self.factory.clone();
            let ips = self.ips.clone();
            let own = std::mem::take(&mut self.listeners[i]);
            let reuseport = self.reuseport;
            #[cfg(feature = "handover")]
            let resumed = self
                .resumed
                .get_mut(i)
                .map(std::mem::take)
                .unwrap_or_default();
            threads.push(
                thread::Builder::new()
                    .name(format!("silverback-loop-{i}"))
                    .spawn(move || {
                        let mut w = Worker::new(poll, rx, me, peers, config, factory(i), own)?;
                        w.accept_here = reuseport;
                        w.core.shared.ips = Some(ips);
                        #[cfg(feature = "handover")]
                        w.resume(resumed);
                        w.run(false)
                    })?,
            );
        }
        let mut result = Ok(());
        if let Some((i, (poll, rx))) = first {
            let mut w = Worker::new(
                poll,
                rx,
                self.handles[i].clone(),
                self.handles.clone(),
                self.config.clone(),
                (self.factory)(i),
                std::mem::take(&mut self.listeners[i]),
            )?;
            w.accept_here = self.reuseport;
            w.core.shared.ips = Some(self.ips.clone());
            #[cfg(feature = "handover")]
            w.resume(
                self.resumed
                    .get_mut(i)
                    .map(std::mem::take)
                    .unwrap_or_default(),
            );
            result = w.run(false);
            if result.is_err() {
                // Take the other loops down with this one.
                self.handle().shutdown(Duration::ZERO);
            }
        }
        for t in threads {
            match t.join() {
                Ok(r) => result = result.and(r),
                Err(_) => result = result.and(Err(io::Error::other("a loop thread panicked"))),
            }
        }
        result
    }

    /// Runs the server on background threads; returns a handle and the join handle of
    /// the thread running loop 0.
    pub fn spawn(self) -> io::Result<(ServerHandle, thread::JoinHandle<io::Result<()>>)> {
        let handle = self.handle();
        let t = thread::Builder::new()
            .name("silverback-loop-0".into())
            .spawn(move || self.run())?;
        Ok((handle, t))
    }
}

/// Controls a running server from any thread.
#[derive(Clone)]
pub struct ServerHandle {
    handles: Arc<[WorkerHandle]>,
    local_addrs: Arc<[SocketAddr]>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addrs", &self.local_addrs)
            .finish()
    }
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// Every bound address (see [`Server::local_addrs`]).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Graceful shutdown: stop accepting, send close 1001 to every open connection,
    /// and let `run` return once all are closed or `grace` has passed (then the rest
    /// are dropped).
    pub fn shutdown(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        for h in self.handles.iter() {
            let _ = h.post(Command::Shutdown { deadline });
        }
    }

    /// Hands this server's listening sockets and open connections to a new
    /// process waiting on the Unix socket `path` (started with
    /// [`ServerBuilder::resume_from`]), and returns once it owns them (feature
    /// `handover`). The loops stop accepting; each open connection moves at the
    /// end of the message it is in (received or sent), waiting up to one second
    /// (see [`hand_over_within`](Self::hand_over_within)); bytes queued for it and
    /// received but unread move with it, as do its protocol state
    /// (permessage-deflate windows included), topics, timers and what
    /// [`Handler::on_hand_over`](crate::event::Handler::on_hand_over) saves.
    /// Connections that cannot move (TLS: rustls does not export session keys;
    /// a message still under way at the deadline) are closed with 1012 (Service
    /// Restart) once the new process owns the rest. Then this server serves only
    /// what is left (handshakes under way, closing connections): call
    /// [`shutdown`](Self::shutdown) and exit.
    ///
    /// On any failure (nobody on `path`, a refusal, a new process that dies or
    /// hangs), the error is returned and the server serves on as before: nothing
    /// was read from or written to a connection meanwhile.
    #[cfg(feature = "handover")]
    pub fn hand_over(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> io::Result<crate::event::HandoverReport> {
        self.hand_over_within(path, crate::event::reactor::handover::DEFAULT_WAIT)
    }

    /// [`hand_over`](Self::hand_over), waiting up to `wait` for connections in the
    /// middle of a message.
    #[cfg(feature = "handover")]
    pub fn hand_over_within(
        &self,
        path: impl AsRef<std::path::Path>,
        wait: Duration,
    ) -> io::Result<crate::event::HandoverReport> {
        crate::event::api::handover::hand_over(&self.handles, path.as_ref(), wait)
    }

    /// Sends a prepared message to every open connection of every loop.
    pub fn broadcast(&self, msg: &Prepared) {
        for h in self.handles.iter() {
            let _ = h.post(Command::Broadcast(msg.clone()));
        }
    }

    /// Publishes `msg` to every subscriber of `topic` on every loop (see
    /// [`Publisher`]); a no-op once the server has stopped.
    pub fn publish(&self, topic: &str, msg: &Prepared) {
        let _ = self.publisher().publish(topic, msg);
    }

    /// A handle that publishes to topics from any thread.
    pub fn publisher(&self) -> Publisher {
        Publisher {
            loops: self.handles.clone(),
        }
    }

    /// Every connection the server holds, over all loops: open WebSockets,
    /// handshakes in progress and plain HTTP requests being answered. See
    /// [`open_connections`](Self::open_connections) for connected clients.
    pub fn connections(&self) -> usize {
        self.handles
            .iter()
            .map(|h| h.live.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    /// The server's counters: the sum over its loops, each as of its last
    /// iteration (see [`Stats`](crate::event::Stats); [`Stats::prometheus`](crate::event::Stats::prometheus)
    /// formats them for a `/metrics` page).
    pub fn stats(&self) -> crate::event::Stats {
        self.handles.iter().map(|h| h.stats.read()).sum()
    }

    /// Each loop's counters, in loop order.
    pub fn loop_stats(&self) -> Vec<crate::event::Stats> {
        self.handles.iter().map(|h| h.stats.read()).collect()
    }

    /// Open WebSocket connections over all loops (those that got `on_open` and have
    /// not yet got `on_close`).
    pub fn open_connections(&self) -> usize {
        self.handles
            .iter()
            .map(|h| h.open.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }
}
