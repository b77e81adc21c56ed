//! One loop on one thread: a `mio::Poll`, the connections it owns, and the run loop.
//!
//! Each iteration: poll (edge-triggered) → for each ready socket read until it is
//! drained (or a budget is spent) and run the input through the connection's phase
//! (handshake, plain HTTP, frames) → run commands from other threads → fire due
//! timers → run deferred cross-connection operations → flush every connection that
//! queued output, one write per connection per iteration (write coalescing).
//!
//! The rest of the loop lives beside this file, one concern each (see the
//! module's docs). Every callback reaches its connection through [`Worker::parts`],
//! the one place that splits the worker's borrows.

use std::io;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::error::Result;
use crate::proto::handshake::{ClientConfig, ServerConfig};

use crate::event::api::config::LoopConfig;
use crate::event::api::ctx::Ctx;
use crate::event::api::handler::Handler;
use crate::event::api::id::ConnId;
use crate::event::conn::Slot;
use crate::event::conn::transport::ServerTls;
use crate::event::reactor::core::LoopCore;
use crate::event::reactor::mailbox::{Command, WAKER, WorkerHandle};
use crate::event::reactor::slab::Slab;

/// Listener `i`'s token: `usize::MAX - 1` for the first, then downwards below the
/// waker's.
pub(crate) fn listener_token(i: usize) -> Token {
    match i {
        0 => Token(usize::MAX - 1),
        i => Token(usize::MAX - 2 - i),
    }
}

/// The listener a token belongs to.
fn listener_index(t: Token, n: usize) -> Option<usize> {
    (0..n).find(|&i| listener_token(i) == t)
}

/// A listening socket and how its connections are wrapped.
pub(crate) struct Listener {
    pub(crate) sock: ListenSock,
    pub(crate) tls: ServerTls,
}

/// A listening socket: TCP, or a Unix domain socket (its file is removed when
/// the listener is dropped).
pub(crate) enum ListenSock {
    Tcp(mio::net::TcpListener),
    #[cfg(unix)]
    Unix(mio::net::UnixListener, std::path::PathBuf),
}

impl ListenSock {
    /// The next connection and its peer's address
    /// ([`UNIX_PEER`](crate::event::conn::sock::UNIX_PEER) for a Unix socket).
    pub(crate) fn accept(
        &self,
    ) -> std::io::Result<(crate::event::conn::sock::Sock, std::net::SocketAddr)> {
        use crate::event::conn::sock::Sock;
        match self {
            ListenSock::Tcp(l) => l.accept().map(|(s, a)| (Sock::Tcp(s), a)),
            #[cfg(unix)]
            ListenSock::Unix(l, _) => l
                .accept()
                .map(|(s, _)| (Sock::Unix(s), crate::event::conn::sock::UNIX_PEER)),
        }
    }
}

impl mio::event::Source for ListenSock {
    fn register(
        &mut self,
        r: &mio::Registry,
        t: mio::Token,
        i: mio::Interest,
    ) -> std::io::Result<()> {
        match self {
            ListenSock::Tcp(l) => l.register(r, t, i),
            #[cfg(unix)]
            ListenSock::Unix(l, _) => l.register(r, t, i),
        }
    }
    fn reregister(
        &mut self,
        r: &mio::Registry,
        t: mio::Token,
        i: mio::Interest,
    ) -> std::io::Result<()> {
        match self {
            ListenSock::Tcp(l) => l.reregister(r, t, i),
            #[cfg(unix)]
            ListenSock::Unix(l, _) => l.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &mio::Registry) -> std::io::Result<()> {
        match self {
            ListenSock::Tcp(l) => l.deregister(r),
            #[cfg(unix)]
            ListenSock::Unix(l, _) => l.deregister(r),
        }
    }
}

impl Drop for ListenSock {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let ListenSock::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Everything one loop owns.
pub(crate) struct Worker<H: Handler> {
    pub(crate) poll: Poll,
    /// Loop 0's listeners (plain and TLS); the other loops have none, unless
    /// each loop has its own (`SO_REUSEPORT`).
    pub(crate) listeners: Vec<Listener>,
    /// Accepted sockets stay on this loop (`SO_REUSEPORT`: the kernel spread
    /// them) instead of being handed round-robin to the loops.
    pub(crate) accept_here: bool,
    /// Next loop to hand an accepted socket to.
    pub(crate) rr: usize,
    pub(crate) rx: mpsc::Receiver<Command>,
    pub(crate) handler: H,
    pub(crate) slots: Slab<Slot<H::Data>>,
    pub(crate) core: LoopCore<H::Data>,
    /// Read buffers kept for reuse.
    pub(crate) pool: Vec<Vec<u8>>,
    /// Spare read states (see [`ReadState`](crate::event::conn::ReadState)); boxes, since
    /// a connection holds the allocation itself.
    #[allow(clippy::vec_box)]
    pub(crate) rd_spares: Vec<Box<crate::event::conn::ReadState>>,
    /// Connections to read again without waiting for an event (read budget spent,
    /// or back-pressure lifted).
    pub(crate) ready: Vec<usize>,
    pub(crate) shutdown: Option<Instant>,
    /// What the server side of the handshake accepts.
    pub(crate) server: Arc<ServerConfig>,
    /// What the client side of the handshake offers.
    pub(crate) client: Arc<ClientConfig>,
    /// Decompressed bytes of the message piece being delivered (shared by the
    /// loop's connections).
    pub(crate) inflated: Vec<u8>,
    /// When `output_queued` was last summed over the connections.
    pub(crate) queued_at: Option<Instant>,
    /// A handover to a new process in progress.
    #[cfg(feature = "handover")]
    pub(crate) handover: Option<Box<crate::event::reactor::handover::Handover<H::Data>>>,
}

/// One connection's slot with the loop state its event needs, borrowed apart from
/// the rest of the worker (see [`Worker::parts`]).
pub(crate) struct Parts<'w, H: Handler> {
    /// The connection.
    pub(crate) conn: &'w mut Slot<H::Data>,
    /// What every connection of the loop shares.
    pub(crate) core: &'w mut LoopCore<H::Data>,
    /// The user's callbacks.
    pub(crate) handler: &'w mut H,
    /// The loop's decompression scratch buffer.
    pub(crate) inflated: &'w mut Vec<u8>,
}

impl<H: Handler> Parts<'_, H> {
    /// Runs a handler callback with the connection's context.
    pub(crate) fn call<R>(&mut self, f: impl FnOnce(&mut H, &mut Ctx<'_, H::Data>) -> R) -> R {
        let mut ctx = Ctx {
            io: &mut self.conn.io,
            data: &mut self.conn.data,
            core: self.core,
        };
        f(self.handler, &mut ctx)
    }
}

pub(crate) fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

pub(crate) fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

impl<H: Handler> Worker<H> {
    pub(crate) fn new(
        poll: Poll,
        rx: mpsc::Receiver<Command>,
        me: WorkerHandle,
        peers: Arc<[WorkerHandle]>,
        config: Arc<LoopConfig>,
        handler: H,
        listeners: Vec<Listener>,
    ) -> io::Result<Self> {
        let mut listeners = listeners;
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(&mut l.sock, listener_token(i), Interest::READABLE)?;
        }
        let connection = Arc::new(config.connection());
        Ok(Worker {
            poll,
            listeners,
            accept_here: false,
            rr: 0,
            rx,
            handler,
            slots: Slab::new(),
            server: Arc::new(config.server(connection.clone())),
            client: Arc::new(config.client(connection)),
            core: LoopCore::new(config, me, peers),
            pool: Vec::new(),
            rd_spares: Vec::new(),
            ready: Vec::new(),
            shutdown: None,
            inflated: Vec::new(),
            queued_at: None,
            #[cfg(feature = "handover")]
            handover: None,
        })
    }

    /// Publishes the loop's counters; every 100 ms it also sums the output queued
    /// over the connections (a walk over the slots, too dear for every iteration).
    fn publish_stats(&mut self) {
        let now = self.core.now;
        if self
            .queued_at
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_millis(100))
        {
            self.queued_at = Some(now);
            let queued: usize = (0..self.slots.len())
                .filter_map(|i| self.slots[i].as_ref())
                .map(|c| c.io.buffered())
                .sum();
            self.core.shared.stats.output_queued = queued as u64;
        }
        self.core.publish_stats();
    }

    pub(crate) fn handler(&self) -> &H {
        &self.handler
    }

    pub(crate) fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    pub(crate) fn config(&self) -> &LoopConfig {
        &self.core.shared.config
    }

    /// Queues a client connection before the loop runs.
    pub(crate) fn connect(&mut self, url: &str, data: H::Data) -> Result<ConnId> {
        self.core.now = Instant::now();
        let id = self.core.connect(url, data)?;
        self.run_ops();
        Ok(id)
    }

    /// Runs until shutdown (or, with `until_idle`, until no connection is left).
    pub(crate) fn run(&mut self, until_idle: bool) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            // Before blocking: a client whose connections all failed already (a
            // name that does not resolve, a missing Unix socket: failures found
            // while `connect` ran) has nothing left to wait for.
            if until_idle && self.core.live == 0 && self.core.ops.is_empty() {
                return Ok(());
            }
            let timeout = if !self.ready.is_empty() {
                Some(Duration::ZERO)
            } else {
                let next = self.core.timers.next_deadline();
                let next = match (next, self.shutdown) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                next.map(|t| t.saturating_duration_since(Instant::now()))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if interrupted(&e) {
                    continue;
                }
                return Err(e);
            }
            self.core.now = Instant::now();
            for ev in events.iter() {
                let token = ev.token();
                if let Some(i) = listener_index(token, self.listeners.len()) {
                    self.accept_all(i);
                    continue;
                }
                match token {
                    WAKER => self.drain_commands(),
                    Token(slot) => {
                        let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        let writable = ev.is_writable() || ev.is_error();
                        // With the peer's FIN already reported, a short read does not
                        // mean "drained": the EOF is still to be read, and no further
                        // edge will announce it.
                        let hup = ev.is_read_closed() || ev.is_error();
                        self.conn_event(slot, readable, writable, hup);
                    }
                }
            }
            for slot in std::mem::take(&mut self.ready) {
                self.conn_event(slot, true, false, false);
            }
            self.fire_timers();
            self.compact_timers();
            self.run_ops();
            self.flush_dirty();
            #[cfg(feature = "handover")]
            self.handover_step();
            self.publish_stats();
            if let Some(deadline) = self.shutdown {
                if self.core.live == 0 {
                    return Ok(());
                }
                if self.core.now >= deadline {
                    for slot in 0..self.slots.len() {
                        if let Some(p) = self.parts(slot) {
                            p.conn.io.kill(&mut p.core.shared);
                            self.finalize(slot);
                        }
                    }
                    return Ok(());
                }
            }
            if until_idle && self.core.live == 0 && self.core.ops.is_empty() {
                return Ok(());
            }
        }
    }

    /// The connection in `slot`, if there is one, with the loop state its event
    /// needs: the one place that splits the worker's borrows.
    pub(crate) fn parts(&mut self, slot: usize) -> Option<Parts<'_, H>> {
        let Worker {
            slots,
            core,
            handler,
            inflated,
            ..
        } = self;
        let conn = slots.get_mut(slot)?.as_mut()?;
        Some(Parts {
            conn,
            core,
            handler,
            inflated,
        })
    }

    /// Runs a handler callback with the context of the connection in `slot`.
    pub(crate) fn call(&mut self, slot: usize, f: impl FnOnce(&mut H, &mut Ctx<'_, H::Data>)) {
        if let Some(mut p) = self.parts(slot) {
            p.call(f);
        }
    }

    pub(crate) fn report_error(&mut self, slot: usize, err: &crate::Error) {
        self.call(slot, |h, ctx| h.on_error(ctx, err));
    }

    pub(crate) fn insert(&mut self, slot: usize, conn: Slot<H::Data>) {
        self.slots.ensure(slot);
        self.slots[slot] = Some(conn);
    }

    /// The slot of connection `id`, if it is still alive.
    pub(crate) fn live_slot(&self, id: ConnId) -> Option<usize> {
        let slot = id.slot();
        match self.slots.get(slot) {
            Some(Some(c)) if c.io.id == id => Some(slot),
            _ => None,
        }
    }
}
