//! One loop on one thread: a `mio::Poll`, the connections it owns, their timers,
//! and the channel other threads reach it through.
//!
//! Each iteration: poll (edge-triggered) → for each ready socket read until it is
//! drained (or a budget is spent) and run the frames through the decoder and the
//! handler → run commands from other threads → fire due timers → run deferred
//! cross-connection operations → flush every connection that queued output, one
//! write per connection per iteration (write coalescing).

use std::io::{self, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::error::{Error, HandshakeError, ProtocolError, Result};
use crate::proto::frame::OpCode;
use crate::proto::handshake::{
    ClientOffer, HeadLimits, Request, generate_key, parse_request, parse_response,
    write_accept_response, write_error_response, write_http_response, write_request,
};
use crate::proto::{CloseCode, Event, MessageKind, Role};
use crate::url::WsUrl;

use super::config::LoopConfig;
use super::conn::{Conn, ConnIo, Deferred, Phase, ReadState, UserTimer};
use super::ctx::{ConnId, Ctx, LoopCtx, Prepared, Sender, TimerId, new_alive, sender};
use super::handler::{Decision, Delivery, Handler, HttpRequest, HttpResponse, MessageRef};
use super::timer::{TimerKind, Timers};

pub(crate) const LISTENER: Token = Token(usize::MAX - 1);
pub(crate) const WAKER: Token = Token(usize::MAX - 2);

/// Reads per readiness event before yielding to other connections.
const READ_BUDGET: usize = 16;
/// Read buffers kept for reuse.
const POOL_MAX: usize = 256;

/// What other threads ask a loop to do.
pub(crate) enum Command {
    Send {
        id: ConnId,
        kind: MessageKind,
        data: Vec<u8>,
    },
    SendPrepared {
        id: ConnId,
        msg: Prepared,
    },
    Ping {
        id: ConnId,
        data: Vec<u8>,
    },
    Close {
        id: ConnId,
        code: CloseCode,
        reason: String,
    },
    Broadcast(Prepared),
    /// A socket accepted by another loop, handed over for load balancing.
    Adopt(TcpStream, SocketAddr),
    Shutdown {
        deadline: Instant,
    },
}

/// A loop's address for other threads: its channel, its waker, its load.
#[derive(Clone)]
pub(crate) struct WorkerHandle {
    pub(crate) index: usize,
    tx: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    wake_pending: Arc<AtomicBool>,
    pub(crate) live: Arc<AtomicUsize>,
}

impl WorkerHandle {
    pub(crate) fn post(&self, cmd: Command) -> Result<()> {
        self.tx.send(cmd).map_err(|_| Error::AlreadyClosed)?;
        // One wake-up per batch: the loop clears the flag before draining the channel.
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            self.waker.wake()?;
        }
        Ok(())
    }
}

/// Operations a callback asks for that touch other connections; run after it returns.
pub(crate) enum Op<D> {
    SendTo(ConnId, Prepared),
    Close(ConnId, CloseCode, String),
    Connect(usize, u32, WsUrl, D),
}

/// Loop state a connection's write path needs.
pub(crate) struct LoopShared {
    pub(crate) config: Arc<LoopConfig>,
    pub(crate) dirty: Vec<usize>,
    /// Scratch for compressing one message (shared by the loop's connections).
    #[cfg(feature = "deflate")]
    pub(crate) zbuf: Vec<u8>,
}

/// Loop state callbacks reach through their contexts.
pub(crate) struct LoopCore<D> {
    pub(crate) shared: LoopShared,
    pub(crate) now: Instant,
    pub(crate) timers: Timers,
    pub(crate) ops: Vec<Op<D>>,
    pub(crate) broadcasts: Vec<Prepared>,
    gens: Vec<u32>,
    free: Vec<usize>,
    pub(crate) live: usize,
    pub(crate) me: WorkerHandle,
    pub(crate) peers: Arc<[WorkerHandle]>,
    next_timer_id: u64,
}

impl<D> LoopCore<D> {
    fn alloc_slot(&mut self) -> (usize, u32) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.gens.push(0);
            self.gens.len() - 1
        });
        (slot, self.gens[slot])
    }

    fn release_slot(&mut self, slot: usize) {
        self.gens[slot] = self.gens[slot].wrapping_add(1) & 0xFF_FFFF;
        self.free.push(slot);
    }

    fn set_live(&mut self, live: usize) {
        self.live = live;
        self.me.live.store(live, Ordering::Relaxed);
    }

    pub(crate) fn send_to(&mut self, id: ConnId, msg: &Prepared) -> Result<()> {
        if id.worker() == self.me.index {
            self.ops.push(Op::SendTo(id, msg.clone()));
            Ok(())
        } else {
            let peer = self.peers.get(id.worker()).ok_or(Error::AlreadyClosed)?;
            peer.post(Command::SendPrepared {
                id,
                msg: msg.clone(),
            })
        }
    }

    pub(crate) fn close_conn(&mut self, id: ConnId, code: CloseCode, reason: &str) -> Result<()> {
        if !code.is_allowed_on_wire() {
            return Err(crate::error::UsageError::InvalidCloseCode(code.0).into());
        }
        if id.worker() == self.me.index {
            self.ops.push(Op::Close(id, code, reason.to_owned()));
            Ok(())
        } else {
            let peer = self.peers.get(id.worker()).ok_or(Error::AlreadyClosed)?;
            peer.post(Command::Close {
                id,
                code,
                reason: reason.to_owned(),
            })
        }
    }

    pub(crate) fn broadcast(&mut self, msg: &Prepared) {
        for p in self.peers.iter() {
            if p.index == self.me.index {
                self.broadcasts.push(msg.clone());
            } else {
                let _ = p.post(Command::Broadcast(msg.clone()));
            }
        }
    }

    pub(crate) fn connect(&mut self, url: &str, data: D) -> Result<ConnId> {
        let u = WsUrl::parse(url)?;
        if self.live >= self.shared.config.max_connections {
            return Err(Error::Io(io::Error::other("loop is at max_connections")));
        }
        let (slot, generation) = self.alloc_slot();
        self.set_live(self.live + 1);
        self.ops.push(Op::Connect(slot, generation, u, data));
        Ok(ConnId::new(self.me.index, slot, generation))
    }

    pub(crate) fn add_user_timer(
        &mut self,
        io: &mut ConnIo,
        after: Duration,
        period: Option<Duration>,
        token: u64,
    ) -> TimerId {
        self.next_timer_id += 1;
        let id = self.next_timer_id;
        io.user_timers.push(UserTimer { id, token, period });
        self.timers.add(
            self.now + after,
            io.id.slot(),
            io.id.generation(),
            TimerKind::User(id),
        );
        TimerId(id)
    }

    pub(crate) fn make_sender(&mut self, io: &mut ConnIo) -> Sender {
        let alive = io.alive.get_or_insert_with(new_alive).clone();
        sender(io.id, self.me.clone(), alive)
    }
}

/// Everything one loop owns.
pub(crate) struct Worker<H: Handler> {
    poll: Poll,
    listener: Option<TcpListener>,
    rr: usize,
    rx: mpsc::Receiver<Command>,
    handler: H,
    slots: super::slab::Slab<Conn<H::Data>>,
    core: LoopCore<H::Data>,
    pool: Vec<Vec<u8>>,
    ready: Vec<usize>,
    shutdown: Option<Instant>,
}

/// Creates a loop's poll, waker and channel; returns the handle others use and the
/// parts the loop thread needs.
pub(crate) fn new_loop(index: usize) -> io::Result<(WorkerHandle, Poll, mpsc::Receiver<Command>)> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = mpsc::channel();
    let handle = WorkerHandle {
        index,
        tx,
        waker,
        wake_pending: Arc::new(AtomicBool::new(false)),
        live: Arc::new(AtomicUsize::new(0)),
    };
    Ok((handle, poll, rx))
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(e: &io::Error) -> bool {
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
        listener: Option<TcpListener>,
    ) -> io::Result<Self> {
        let mut listener = listener;
        if let Some(l) = listener.as_mut() {
            poll.registry().register(l, LISTENER, Interest::READABLE)?;
        }
        Ok(Worker {
            poll,
            listener,
            rr: 0,
            rx,
            handler,
            slots: super::slab::Slab::new(),
            core: LoopCore {
                shared: LoopShared {
                    config,
                    dirty: Vec::new(),
                    #[cfg(feature = "deflate")]
                    zbuf: Vec::new(),
                },
                now: Instant::now(),
                timers: Timers::default(),
                ops: Vec::new(),
                broadcasts: Vec::new(),
                gens: Vec::new(),
                free: Vec::new(),
                live: 0,
                me,
                peers,
                next_timer_id: 0,
            },
            pool: Vec::new(),
            ready: Vec::new(),
            shutdown: None,
        })
    }

    pub(crate) fn handler(&self) -> &H {
        &self.handler
    }

    pub(crate) fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Pooled read buffers: the read buffer size plus room for a frame header, so a
    /// frame of exactly `read_buffer_size` that arrives into an empty buffer is
    /// delivered in place (no compaction), and at least one whole HTTP head.
    fn buffer_size(&self) -> usize {
        let c = self.config();
        (c.read_buffer_size + crate::proto::frame::MAX_HEADER_LEN).max(c.max_head_size + 1)
    }

    fn config(&self) -> &LoopConfig {
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
                match ev.token() {
                    LISTENER => self.accept_all(),
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
            self.run_ops();
            self.flush_dirty();
            if let Some(deadline) = self.shutdown {
                if self.core.live == 0 {
                    return Ok(());
                }
                if self.core.now >= deadline {
                    for slot in 0..self.slots.len() {
                        if let Some(c) = self.slots[slot].as_mut() {
                            c.io.kill = true;
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

    // ---- accepting ----

    fn accept_all(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((sock, peer)) => self.distribute(sock, peer),
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => {}
                // Out of descriptors and the like: stop for now; the next connection
                // attempt wakes us again.
                Err(_) => return,
            }
        }
    }

    fn distribute(&mut self, sock: TcpStream, peer: SocketAddr) {
        let n = self.core.peers.len();
        let max = self.config().max_connections;
        for i in 0..n {
            let target = (self.rr + i) % n;
            let handle = &self.core.peers[target];
            if handle.live.load(Ordering::Relaxed) < max {
                self.rr = (target + 1) % n;
                if target == self.core.me.index {
                    self.adopt(sock, peer);
                } else {
                    // Counted now so the next accept sees the load.
                    handle.live.fetch_add(1, Ordering::Relaxed);
                    let _ = handle.post(Command::Adopt(sock, peer));
                }
                return;
            }
        }
        refuse_full(sock);
    }

    fn adopt(&mut self, mut sock: TcpStream, peer: SocketAddr) {
        if self.core.live >= self.config().max_connections || self.shutdown.is_some() {
            refuse_full(sock);
            return;
        }
        if self.config().nodelay {
            let _ = sock.set_nodelay(true);
        }
        let (slot, generation) = self.core.alloc_slot();
        if self
            .poll
            .registry()
            .register(
                &mut sock,
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.core.release_slot(slot);
            return;
        }
        let id = ConnId::new(self.core.me.index, slot, generation);
        let cfg = &self.core.shared.config;
        let conn = Conn {
            io: ConnIo::new(
                Some(sock),
                id,
                peer,
                Role::Server,
                Phase::ServerHandshake,
                self.core.now,
            ),
            rd: ReadState::new(Role::Server, cfg.max_message_size, cfg.read_buffer_size),
            data: H::Data::default(),
        };
        let deadline = self.core.now + cfg.handshake_timeout;
        self.insert(slot, conn);
        self.core.set_live(self.core.live + 1);
        self.core
            .timers
            .add(deadline, slot, generation, TimerKind::Handshake);
    }

    fn insert(&mut self, slot: usize, conn: Conn<H::Data>) {
        self.slots.ensure(slot);
        self.slots[slot] = Some(conn);
    }

    // ---- commands from other threads ----

    fn drain_commands(&mut self) {
        self.core.me.wake_pending.store(false, Ordering::Release);
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Send { id, kind, data } => {
                    self.deliver(id, Deferred::Owned(kind, data));
                }
                Command::SendPrepared { id, msg } => self.deliver(id, Deferred::Prepared(msg)),
                Command::Ping { id, data } => {
                    if let Some(slot) = self.live_slot(id) {
                        let Worker { slots, core, .. } = self;
                        if let Some(c) = slots[slot].as_mut() {
                            let _ = c.io.send_control(&mut core.shared, OpCode::Ping, &data);
                        }
                    }
                }
                Command::Close { id, code, reason } => {
                    if let Some(slot) = self.live_slot(id) {
                        let Worker { slots, core, .. } = self;
                        if let Some(c) = slots[slot].as_mut() {
                            let _ = c.io.start_close(&mut core.shared, code, &reason);
                        }
                        self.finalize(slot);
                    }
                }
                // Applied now, so it keeps its place among this channel's commands.
                Command::Broadcast(msg) => self.broadcast_now(&msg),
                Command::Adopt(sock, peer) => {
                    // The acceptor counted this socket already; adopt() counts it again.
                    self.core.me.live.fetch_sub(1, Ordering::Relaxed);
                    self.adopt(sock, peer);
                }
                Command::Shutdown { deadline } => self.begin_shutdown(deadline),
            }
        }
    }

    fn live_slot(&self, id: ConnId) -> Option<usize> {
        let slot = id.slot();
        match self.slots.get(slot) {
            Some(Some(c)) if c.io.id == id => Some(slot),
            _ => None,
        }
    }

    fn deliver(&mut self, id: ConnId, d: Deferred) {
        let Some(slot) = self.live_slot(id) else {
            return;
        };
        let Worker { slots, core, .. } = self;
        let Some(c) = slots[slot].as_mut() else {
            return;
        };
        if let Err(e) = c.io.deliver(&mut core.shared, d)
            && !matches!(e, Error::AlreadyClosed)
        {
            self.call(slot, |h, ctx| h.on_error(ctx, &e));
        }
    }

    fn begin_shutdown(&mut self, deadline: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(deadline);
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        for slot in 0..self.slots.len() {
            let Worker { slots, core, .. } = self;
            let Some(c) = slots[slot].as_mut() else {
                continue;
            };
            if c.io.is_open() {
                let _ = c.io.start_close(
                    &mut core.shared,
                    CloseCode::GOING_AWAY,
                    "server shutting down",
                );
            } else {
                c.io.kill = true;
            }
            self.finalize(slot);
        }
    }

    // ---- one connection's readiness ----

    fn conn_event(&mut self, slot: usize, readable: bool, writable: bool, hup: bool) {
        let Some(c) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if writable {
            if matches!(c.io.phase, Phase::ClientConnecting { .. }) {
                self.finish_connect(slot);
            } else if let Err(e) = c.io.flush() {
                self.io_failed(slot, e);
            }
        }
        if readable {
            self.read_conn(slot, hup);
        }
        self.finalize(slot);
    }

    fn take_buffer(&mut self, size: usize) -> Vec<u8> {
        match self.pool.pop() {
            Some(b) if b.len() == size => b,
            _ => vec![0u8; size],
        }
    }

    fn read_conn(&mut self, slot: usize, hup: bool) {
        let size = self.buffer_size();
        for round in 0..READ_BUDGET {
            let needs_buffer = match self.slots[slot].as_ref() {
                Some(c) if !c.io.paused && !c.io.kill && !c.io.read_eof => c.rd.buf.is_empty(),
                _ => return,
            };
            if matches!(
                self.slots[slot].as_ref().map(|c| &c.io.phase),
                Some(Phase::ClientConnecting { .. } | Phase::HttpDone)
            ) {
                self.discard_input(slot);
                return;
            }
            if needs_buffer {
                let b = self.take_buffer(size);
                if let Some(c) = self.slots[slot].as_mut() {
                    c.rd.buf = b;
                }
            }
            let Some(c) = self.slots[slot].as_mut() else {
                return;
            };
            let rd = &mut c.rd;
            if rd.end == rd.buf.len() {
                if rd.start > 0 {
                    rd.buf.copy_within(rd.start..rd.end, 0);
                    rd.end -= rd.start;
                    rd.start = 0;
                } else {
                    // Only an HTTP body larger than the buffer gets here; grow for it.
                    let n = rd.buf.len() * 2;
                    rd.buf.resize(n, 0);
                }
            }
            let space = rd.buf.len() - rd.end;
            let Some(sock) = c.io.sock.as_mut() else {
                return;
            };
            match sock.read(&mut rd.buf[rd.end..]) {
                Ok(0) => {
                    c.io.read_eof = true;
                    self.on_eof(slot);
                    return;
                }
                Ok(n) => {
                    rd.end += n;
                    c.io.last_rx = self.core.now;
                    c.io.ping_sent = None;
                    self.process(slot);
                    if n < space && !hup {
                        // A short read drained the socket: the next edge will tell us
                        // when more arrives.
                        break;
                    }
                    if round + 1 == READ_BUDGET {
                        self.ready.push(slot);
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(e) if interrupted(&e) => {}
                Err(e) => {
                    self.io_failed(slot, e);
                    return;
                }
            }
        }
        self.release_buffer(slot);
    }

    /// Reads and drops input we no longer care about (after an HTTP answer).
    fn discard_input(&mut self, slot: usize) {
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        let Some(sock) = c.io.sock.as_mut() else {
            return;
        };
        let mut scratch = [0u8; 4096];
        for _ in 0..READ_BUDGET {
            match sock.read(&mut scratch) {
                Ok(0) => {
                    c.io.read_eof = true;
                    c.io.kill = true;
                    return;
                }
                Ok(_) => {}
                Err(e) if interrupted(&e) => {}
                Err(_) => return,
            }
        }
    }

    /// Gives the read buffer back to the pool when nothing is pending.
    fn release_buffer(&mut self, slot: usize) {
        let size = self.buffer_size();
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        if c.rd.start == c.rd.end && !c.rd.buf.is_empty() {
            c.rd.start = 0;
            c.rd.end = 0;
            let b = std::mem::take(&mut c.rd.buf);
            if b.len() == size && self.pool.len() < POOL_MAX {
                self.pool.push(b);
            }
        }
    }

    fn on_eof(&mut self, slot: usize) {
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        // Frames that arrived with the FIN are still processed.
        if c.rd.start < c.rd.end {
            self.process(slot);
        }
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        if c.io.end.is_none() {
            c.io.end = Some((CloseCode::ABNORMAL, String::new()));
            if !c.io.opened && c.io.role == Role::Client {
                let err = Error::Handshake(HandshakeError::ConnectionClosed);
                self.report_error(slot, &err);
            }
        }
        if let Some(c) = self.slots[slot].as_mut() {
            c.io.kill = true;
        }
    }

    fn io_failed(&mut self, slot: usize, e: io::Error) {
        let err = Error::Io(e);
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        let report = c.io.opened || c.io.role == Role::Client;
        if c.io.end.is_none() {
            c.io.end = Some((CloseCode::ABNORMAL, String::new()));
        }
        c.io.kill = true;
        if report {
            self.report_error(slot, &err);
        }
    }

    fn report_error(&mut self, slot: usize, err: &Error) {
        self.call(slot, |h, ctx| h.on_error(ctx, err));
    }

    /// Runs a handler callback with the context of the connection in `slot`.
    fn call(&mut self, slot: usize, f: impl FnOnce(&mut H, &mut Ctx<'_, H::Data>)) {
        let Worker {
            slots,
            core,
            handler,
            ..
        } = self;
        if let Some(c) = slots.get_mut(slot).and_then(Option::as_mut) {
            let mut ctx = Ctx {
                io: &mut c.io,
                data: &mut c.data,
                core,
            };
            f(handler, &mut ctx);
        }
    }

    // ---- input processing by phase ----

    fn process(&mut self, slot: usize) {
        loop {
            let Some(c) = self.slots[slot].as_ref() else {
                return;
            };
            if c.io.kill || c.rd.start == c.rd.end && !matches!(c.io.phase, Phase::HttpBody { .. })
            {
                return;
            }
            match c.io.phase {
                Phase::ServerHandshake => {
                    if !self.server_handshake(slot) {
                        return;
                    }
                }
                Phase::HttpBody { .. } => {
                    if !self.http_body(slot) {
                        return;
                    }
                }
                Phase::ClientHandshake { .. } => {
                    if !self.client_handshake(slot) {
                        return;
                    }
                }
                Phase::Open => {
                    self.frames(slot);
                    return;
                }
                Phase::HttpDone | Phase::ClientConnecting { .. } => return,
            }
        }
    }

    fn limits(&self) -> HeadLimits {
        HeadLimits {
            max_size: self.config().max_head_size,
            max_headers: self.config().max_headers,
        }
    }

    /// Answers a plain HTTP status and closes after sending it.
    fn http_answer(&mut self, slot: usize, bytes: &[u8]) {
        let Worker { slots, core, .. } = self;
        if let Some(c) = slots[slot].as_mut() {
            c.io.queue_raw(&mut core.shared, bytes);
            c.io.phase = Phase::HttpDone;
            c.io.close_after_flush = true;
            c.rd.start = c.rd.end;
        }
    }

    fn http_error(&mut self, slot: usize, e: &HandshakeError) {
        let mut out = Vec::new();
        write_error_response(e, &mut out);
        self.http_answer(slot, &out);
    }

    /// Returns true if the phase changed and processing should continue.
    fn server_handshake(&mut self, slot: usize) -> bool {
        let limits = self.limits();
        let Some(c) = self.slots[slot].as_mut() else {
            return false;
        };
        let (req, head_len) = match parse_request(c.rd.pending(), &limits) {
            Ok(None) => return false,
            Err(e) => {
                self.http_error(slot, &e);
                return false;
            }
            Ok(Some(r)) => r,
        };
        if !req.is_websocket_upgrade() {
            return self.plain_http(slot, req, head_len);
        }
        let check = req.validate_upgrade().and_then(|()| {
            let allowed = match &self.core.shared.config.check_origin {
                Some(f) => f(&req),
                None => req.same_origin(),
            };
            if allowed {
                Ok(())
            } else {
                Err(HandshakeError::OriginRefused)
            }
        });
        if let Err(e) = check {
            self.http_error(slot, &e);
            return false;
        }
        let Worker {
            slots,
            core,
            handler,
            ..
        } = self;
        let Some(c) = slots[slot].as_mut() else {
            return false;
        };
        let decision = handler.on_request(&req, &mut c.data, c.io.peer);
        match decision {
            Decision::Reject { status, body } => {
                let mut out = Vec::new();
                write_http_response(
                    status,
                    &[("Content-Type", "text/plain; charset=utf-8")],
                    body.as_bytes(),
                    &mut out,
                );
                self.http_answer(slot, &out);
                false
            }
            Decision::Accept { protocol, headers } => {
                let cfg = core.shared.config.clone();
                let protocol =
                    protocol.or_else(|| req.select_protocol(&cfg.subprotocols).map(str::to_owned));
                let mut all = cfg.headers.clone();
                all.extend(headers);
                let mut out = Vec::with_capacity(256);
                #[cfg(feature = "deflate")]
                let negotiated = cfg.deflate.as_ref().and_then(|dc| {
                    crate::proto::deflate::server_accept(
                        req.headers().get_all("Sec-WebSocket-Extensions"),
                        dc,
                    )
                });
                #[cfg(feature = "deflate")]
                let extensions = negotiated.as_ref().map(|(_, a)| a.as_str());
                #[cfg(not(feature = "deflate"))]
                let extensions = None;
                write_accept_response(
                    req.key().unwrap_or_default(),
                    protocol.as_deref(),
                    extensions,
                    &all,
                    &mut out,
                );
                #[cfg(feature = "deflate")]
                if let (Some((params, _)), Some(dc)) = (negotiated, cfg.deflate.as_ref()) {
                    enable_deflate(c, &params, dc);
                }
                c.io.queue_raw(&mut core.shared, &out);
                c.io.subprotocol = protocol;
                c.rd.start += head_len;
                self.open(slot);
                true
            }
        }
    }

    /// A plain HTTP request: wait for its body, then ask the handler.
    fn plain_http(&mut self, slot: usize, req: Request, head_len: usize) -> bool {
        let body_len = match req
            .header("Content-Length")
            .map(|v| v.trim().parse::<usize>())
        {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                self.http_error(
                    slot,
                    &HandshakeError::MalformedHttp("bad Content-Length".into()),
                );
                return false;
            }
        };
        if req.header("Transfer-Encoding").is_some() {
            let mut out = Vec::new();
            write_http_response(411, &[], b"chunked bodies are not supported\n", &mut out);
            self.http_answer(slot, &out);
            return false;
        }
        if body_len > self.config().max_http_body {
            let mut out = Vec::new();
            write_http_response(413, &[], b"body too large\n", &mut out);
            self.http_answer(slot, &out);
            return false;
        }
        if let Some(c) = self.slots[slot].as_mut() {
            c.io.phase = Phase::HttpBody {
                head: Box::new(req),
                head_len,
                body_len,
            };
        }
        true
    }

    fn http_body(&mut self, slot: usize) -> bool {
        let Worker {
            slots,
            core,
            handler,
            ..
        } = self;
        let Some(c) = slots[slot].as_mut() else {
            return false;
        };
        let Phase::HttpBody {
            head,
            head_len,
            body_len,
        } = &c.io.phase
        else {
            return false;
        };
        let pending = &c.rd.buf[c.rd.start..c.rd.end];
        if pending.len() < head_len + body_len {
            return false;
        }
        let req = HttpRequest {
            head,
            body: &pending[*head_len..head_len + body_len],
            peer: c.io.peer,
        };
        let mut lp = LoopCtx { core };
        let resp: HttpResponse = handler.on_http(&req, &mut lp);
        let headers: Vec<(&str, &str)> = resp
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let mut out = Vec::with_capacity(128 + resp.body.len());
        write_http_response(resp.status, &headers, &resp.body, &mut out);
        self.http_answer(slot, &out);
        false
    }

    fn client_handshake(&mut self, slot: usize) -> bool {
        let limits = self.limits();
        let cfg = self.core.shared.config.clone();
        let Some(c) = self.slots[slot].as_mut() else {
            return false;
        };
        let Phase::ClientHandshake { key } = &c.io.phase else {
            return false;
        };
        #[cfg(feature = "deflate")]
        let offered = cfg.deflate.is_some();
        #[cfg(not(feature = "deflate"))]
        let offered = false;
        let parsed = parse_response(c.rd.pending(), &limits, key, &cfg.subprotocols, offered);
        #[cfg(feature = "deflate")]
        let parsed = parsed.and_then(|r| match (r, cfg.deflate.as_ref()) {
            (Some((resp, n)), Some(dc)) => {
                if let Some(params) =
                    crate::proto::deflate::client_check_response(resp.extensions(), dc)?
                {
                    enable_deflate(c, &params, dc);
                }
                Ok(Some((resp, n)))
            }
            (r, _) => Ok(r),
        });
        match parsed {
            Ok(None) => false,
            Ok(Some((resp, n))) => {
                c.io.subprotocol = resp.protocol().map(str::to_owned);
                c.rd.start += n;
                self.open(slot);
                true
            }
            Err(e) => {
                c.io.end = Some((CloseCode::ABNORMAL, String::new()));
                c.io.kill = true;
                self.report_error(slot, &Error::Handshake(e));
                false
            }
        }
    }

    /// The connection becomes a WebSocket: timers, then `on_open`.
    fn open(&mut self, slot: usize) {
        let cfg = self.core.shared.config.clone();
        let now = self.core.now;
        let Worker {
            slots,
            core,
            handler,
            ..
        } = self;
        let Some(c) = slots[slot].as_mut() else {
            return;
        };
        c.io.phase = Phase::Open;
        c.io.opened = true;
        c.io.last_rx = now;
        c.io.last_ping = now;
        let (s, g) = (c.io.id.slot(), c.io.id.generation());
        if let Some(i) = cfg.ping_interval {
            core.timers.add(now + i, s, g, TimerKind::Heartbeat);
        }
        if let Some(i) = cfg.idle_timeout {
            core.timers.add(now + i, s, g, TimerKind::Idle);
        }
        let mut ctx = Ctx {
            io: &mut c.io,
            data: &mut c.data,
            core,
        };
        handler.on_open(&mut ctx);
    }

    /// Runs buffered frames through the decoder and the handler.
    fn frames(&mut self, slot: usize) {
        let Worker {
            slots,
            core,
            handler,
            ..
        } = self;
        let Some(c) = slots[slot].as_mut() else {
            return;
        };
        let Conn { io, rd, data } = c;
        if let Some(limit) = io.read_limit.take() {
            rd.dec.set_max_message_size(limit);
            #[cfg(feature = "deflate")]
            if let Some(inf) = rd.inflater.as_mut() {
                inf.set_limit(limit);
            }
        }
        loop {
            if io.kill || io.paused || io.close_after_flush {
                return;
            }
            let (n, ev) = match rd.dec.decode(&mut rd.buf[rd.start..rd.end]) {
                Ok(r) => r,
                Err(e) => {
                    // RFC 6455 §7.1.7: fail the connection with the matching code.
                    let code = e.close_code().unwrap_or(CloseCode::PROTOCOL_ERROR);
                    let _ = io.start_close(&mut core.shared, code, "");
                    io.end = Some((code, String::new()));
                    io.close_after_flush = true;
                    let mut ctx = Ctx { io, data, core };
                    handler.on_error(&mut ctx, &e);
                    rd.start = rd.end;
                    return;
                }
            };
            let Some(ev) = ev else {
                rd.start += n;
                return;
            };
            let closing = io.enc.is_close_sent();
            let mut ctx = Ctx { io, data, core };
            match ev {
                Event::Data(d) => {
                    if closing {
                        // After our close, data is discarded (RFC 6455 §5.5.1).
                    } else {
                        if d.first {
                            let mode = handler.on_message_start(&mut ctx, d.kind);
                            rd.delivery = Some((d.kind, mode));
                        }
                        if let Some((kind, mode)) = rd.delivery {
                            if d.compressed {
                                #[cfg(feature = "deflate")]
                                let res = match rd.inflater.as_mut() {
                                    Some(inf) => {
                                        let msg = &mut rd.msg;
                                        inf.push(&d, &mut |piece| {
                                            deliver_piece(
                                                handler, &mut ctx, msg, piece, false, mode, kind,
                                            );
                                            Ok(())
                                        })
                                    }
                                    None => Err(ProtocolError::InvalidCompressedData.into()),
                                };
                                #[cfg(not(feature = "deflate"))]
                                let res: Result<()> =
                                    Err(ProtocolError::InvalidCompressedData.into());
                                if let Err(e) = res {
                                    // 1007 for data that does not inflate, 1009 past the limit.
                                    let code = e.close_code().unwrap_or(CloseCode::PROTOCOL_ERROR);
                                    let _ = ctx.io.start_close(&mut ctx.core.shared, code, "");
                                    ctx.io.end = Some((code, String::new()));
                                    ctx.io.close_after_flush = true;
                                    handler.on_error(&mut ctx, &e);
                                    rd.start = rd.end;
                                    rd.delivery = None;
                                    rd.msg = Vec::new();
                                    return;
                                }
                                if d.last {
                                    end_message(handler, &mut ctx, &mut rd.msg, mode, kind);
                                }
                            } else if d.first && d.last && mode == Delivery::Whole {
                                // Arrived whole: straight from the read buffer, no copy.
                                handler.on_message(
                                    &mut ctx,
                                    MessageRef {
                                        kind,
                                        data: d.payload,
                                    },
                                );
                            } else {
                                deliver_piece(
                                    handler,
                                    &mut ctx,
                                    &mut rd.msg,
                                    d.payload,
                                    d.last,
                                    mode,
                                    kind,
                                );
                            }
                        }
                    }
                    if d.last {
                        rd.delivery = None;
                    }
                    // Back-pressure takes effect as soon as a callback passes the limit,
                    // not after the rest of the buffered input.
                    ctx.io.apply_backpressure(&mut ctx.core.shared);
                }
                Event::Ping(p) => {
                    if ctx.core.shared.config.auto_pong && !closing {
                        let _ = ctx.io.send_control(&mut ctx.core.shared, OpCode::Pong, p);
                    }
                    handler.on_ping(&mut ctx, p);
                }
                Event::Pong(p) => handler.on_pong(&mut ctx, p),
                Event::Close(close) => {
                    let (code, reason) = match close {
                        Some((c, r)) => (c, r.to_owned()),
                        None => (CloseCode::NO_STATUS, String::new()),
                    };
                    if !closing {
                        // Echo the code (RFC 6455 §5.5.1), empty for an empty close.
                        let _ = ctx.io.start_close(&mut ctx.core.shared, code, "");
                    }
                    ctx.io.end = Some((code, reason));
                    if ctx.io.role == Role::Server {
                        // §7.1.1: the server closes the TCP connection first.
                        ctx.io.close_after_flush = true;
                    } else {
                        // The client waits (bounded) for the server's TCP close.
                        ctx.io.arm_close_timer = true;
                    }
                    // Nothing after a close frame matters.
                    rd.start = rd.end;
                    rd.msg = Vec::new();
                    return;
                }
            }
            rd.start += n;
        }
    }

    // ---- finishing an event for a connection ----

    fn finalize(&mut self, slot: usize) {
        let Worker {
            slots,
            core,
            handler,
            ready,
            ..
        } = self;
        let Some(c) = slots[slot].as_mut() else {
            return;
        };
        if !c.io.kill && !c.io.out_is_empty() {
            let flushed = c.io.flush();
            if flushed.is_ok() && c.io.out_is_empty() {
                c.io.dirty = false;
            }
            if let Err(e) = flushed {
                c.io.kill = true;
                if c.io.end.is_none() {
                    c.io.end = Some((CloseCode::ABNORMAL, String::new()));
                }
                let mut ctx = Ctx {
                    io: &mut c.io,
                    data: &mut c.data,
                    core,
                };
                handler.on_error(&mut ctx, &Error::Io(e));
            }
        }
        if c.io.arm_close_timer {
            c.io.arm_close_timer = false;
            let at = core.now + core.shared.config.close_timeout;
            core.timers
                .add(at, slot, c.io.id.generation(), TimerKind::Close);
        }
        if c.io.is_open() {
            c.io.apply_backpressure(&mut core.shared);
            let low = core.shared.config.max_output_buffer / 2;
            if c.io.buffered() < low {
                if c.io.paused {
                    c.io.paused = false;
                    ready.push(slot);
                }
                if c.io.drain_wanted {
                    c.io.drain_wanted = false;
                    let mut ctx = Ctx {
                        io: &mut c.io,
                        data: &mut c.data,
                        core,
                    };
                    handler.on_drain(&mut ctx);
                    if !c.io.out_is_empty() {
                        let _ = c.io.flush();
                    }
                }
            }
        }
        if c.io.kill || (c.io.close_after_flush && c.io.out_is_empty()) {
            self.teardown(slot);
        }
    }

    fn flush_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.core.shared.dirty);
        for &slot in &dirty {
            // Connections already flushed in their own event were unmarked there.
            if let Some(c) = self.slots.get_mut(slot).and_then(Option::as_mut)
                && c.io.dirty
            {
                c.io.dirty = false;
                self.finalize(slot);
            }
        }
        let mut dirty = dirty;
        dirty.clear();
        if self.core.shared.dirty.is_empty() {
            self.core.shared.dirty = dirty;
        }
    }

    fn teardown(&mut self, slot: usize) {
        let Some(mut c) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if let Some(mut sock) = c.io.sock.take() {
            let _ = self.poll.registry().deregister(&mut sock);
            if c.io.role == Role::Server {
                let _ = sock.shutdown(std::net::Shutdown::Both);
            }
        }
        if let Some(a) = c.io.alive.take() {
            a.store(false, Ordering::Release);
        }
        c.io.kill = true;
        self.core.release_slot(slot);
        self.core.set_live(self.core.live.saturating_sub(1));
        if c.io.opened || c.io.role == Role::Client {
            let (code, reason) =
                c.io.end
                    .take()
                    .unwrap_or((CloseCode::ABNORMAL, String::new()));
            let mut ctx = Ctx {
                io: &mut c.io,
                data: &mut c.data,
                core: &mut self.core,
            };
            self.handler.on_close(&mut ctx, code, &reason);
        }
        let size = self.buffer_size();
        let buf = std::mem::take(&mut c.rd.buf);
        if buf.len() == size && self.pool.len() < POOL_MAX {
            self.pool.push(buf);
        }
    }

    // ---- timers ----

    fn fire_timers(&mut self) {
        let now = self.core.now;
        while let Some(e) = self.core.timers.pop_due(now) {
            let slot = e.slot;
            let Some(c) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if c.io.id.generation() != e.generation {
                continue;
            }
            let cfg = self.core.shared.config.clone();
            match e.kind {
                TimerKind::Handshake => {
                    if !c.io.opened {
                        c.io.kill = true;
                        if c.io.role == Role::Client {
                            c.io.end = Some((CloseCode::ABNORMAL, String::new()));
                            self.report_error(slot, &Error::Handshake(HandshakeError::Timeout));
                        }
                    }
                }
                TimerKind::Heartbeat => self.heartbeat(slot, &cfg),
                TimerKind::Idle => {
                    if let Some(idle) = cfg.idle_timeout
                        && c.io.is_open()
                    {
                        let due = c.io.last_rx + idle;
                        if now >= due {
                            let _ = c.io.start_close(
                                &mut self.core.shared,
                                CloseCode::GOING_AWAY,
                                "idle timeout",
                            );
                        } else {
                            self.core
                                .timers
                                .add(due, slot, e.generation, TimerKind::Idle);
                        }
                    }
                }
                TimerKind::Close => {
                    c.io.kill = true;
                }
                TimerKind::User(id) => {
                    let Some(pos) = c.io.user_timers.iter().position(|t| t.id == id) else {
                        continue;
                    };
                    let token = c.io.user_timers[pos].token;
                    match c.io.user_timers[pos].period {
                        Some(p) => {
                            self.core
                                .timers
                                .add(now + p, slot, e.generation, TimerKind::User(id))
                        }
                        None => {
                            c.io.user_timers.swap_remove(pos);
                        }
                    }
                    let open = self.slots[slot].as_ref().is_some_and(|c| c.io.is_open());
                    if open {
                        self.call(slot, |h, ctx| h.on_timer(ctx, token));
                    }
                }
            }
            self.finalize(slot);
        }
    }

    fn heartbeat(&mut self, slot: usize, cfg: &LoopConfig) {
        let now = self.core.now;
        let Some(interval) = cfg.ping_interval else {
            return;
        };
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        if !c.io.is_open() || c.io.enc.is_close_sent() {
            return;
        }
        if let Some(sent) = c.io.ping_sent
            && now >= sent + cfg.pong_timeout
        {
            // Nothing at all from the peer since our ping: it is gone.
            c.io.end = Some((CloseCode::ABNORMAL, "pong timeout".into()));
            c.io.kill = true;
            self.report_error(slot, &Error::Timeout);
            return;
        }
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        if c.io.ping_sent.is_none() && now >= c.io.last_ping + interval {
            let _ = c.io.send_control(&mut self.core.shared, OpCode::Ping, b"");
            c.io.ping_sent = Some(now);
            c.io.last_ping = now;
        }
        let mut next = c.io.last_ping + interval;
        if let Some(sent) = c.io.ping_sent {
            next = next.min(sent + cfg.pong_timeout);
        }
        let generation = c.io.id.generation();
        self.core.timers.add(
            next.max(now + Duration::from_millis(1)),
            slot,
            generation,
            TimerKind::Heartbeat,
        );
    }

    // ---- deferred operations ----

    fn run_ops(&mut self) {
        while !self.core.ops.is_empty() || !self.core.broadcasts.is_empty() {
            for op in std::mem::take(&mut self.core.ops) {
                match op {
                    Op::SendTo(id, msg) => self.deliver(id, Deferred::Prepared(msg)),
                    Op::Close(id, code, reason) => {
                        if let Some(slot) = self.live_slot(id) {
                            let Worker { slots, core, .. } = self;
                            if let Some(c) = slots[slot].as_mut() {
                                let _ = c.io.start_close(&mut core.shared, code, &reason);
                            }
                            self.finalize(slot);
                        }
                    }
                    Op::Connect(slot, generation, url, data) => {
                        self.start_connect(slot, generation, url, data)
                    }
                }
            }
            for msg in std::mem::take(&mut self.core.broadcasts) {
                self.broadcast_now(&msg);
            }
        }
    }

    /// Queues `msg` on every open connection of this loop.
    fn broadcast_now(&mut self, msg: &Prepared) {
        for slot in 0..self.slots.len() {
            let id = match self.slots[slot].as_ref() {
                Some(c) if c.io.is_open() && !c.io.enc.is_close_sent() => c.io.id,
                _ => continue,
            };
            self.deliver(id, Deferred::Prepared(msg.clone()));
        }
    }

    fn start_connect(&mut self, slot: usize, generation: u32, url: WsUrl, data: H::Data) {
        let id = ConnId::new(self.core.me.index, slot, generation);
        let cfg = self.core.shared.config.clone();
        let addr = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .and_then(|mut a| a.next().ok_or_else(|| io::Error::other("no address")));
        let sock = addr.and_then(|a| {
            let mut s = TcpStream::connect(a)?;
            self.poll.registry().register(
                &mut s,
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok((s, a))
        });
        let key = generate_key();
        let mut request = Vec::with_capacity(256);
        #[cfg(feature = "deflate")]
        let offer = cfg
            .deflate
            .as_ref()
            .map(crate::proto::deflate::client_offer);
        #[cfg(not(feature = "deflate"))]
        let offer: Option<String> = None;
        write_request(
            &ClientOffer {
                host: &url.authority,
                target: &url.target,
                key: &key,
                protocols: &cfg.subprotocols,
                extensions: offer.as_deref(),
                extra: &cfg.headers,
            },
            &mut request,
        );
        let (sock, peer, failed) = match sock {
            Ok((s, a)) => (Some(s), a, None),
            Err(e) => (None, SocketAddr::from(([0, 0, 0, 0], 0)), Some(e)),
        };
        let conn = Conn {
            io: ConnIo::new(
                sock,
                id,
                peer,
                Role::Client,
                Phase::ClientConnecting { request, key },
                self.core.now,
            ),
            rd: ReadState::new(Role::Client, cfg.max_message_size, cfg.read_buffer_size),
            data,
        };
        self.insert(slot, conn);
        if let Some(e) = failed {
            self.io_failed(slot, e);
            self.finalize(slot);
            return;
        }
        self.core.timers.add(
            self.core.now + cfg.handshake_timeout,
            slot,
            generation,
            TimerKind::Handshake,
        );
    }

    fn finish_connect(&mut self, slot: usize) {
        let Worker { slots, core, .. } = self;
        let Some(c) = slots[slot].as_mut() else {
            return;
        };
        let Some(sock) = c.io.sock.as_ref() else {
            return;
        };
        if let Ok(Some(e)) | Err(e) = sock.take_error() {
            self.io_failed(slot, e);
            return;
        }
        match sock.peer_addr() {
            Ok(peer) => {
                if core.shared.config.nodelay {
                    let _ = sock.set_nodelay(true);
                }
                c.io.peer = peer;
                let phase = std::mem::replace(&mut c.io.phase, Phase::Open);
                if let Phase::ClientConnecting { request, key } = phase {
                    c.io.phase = Phase::ClientHandshake { key };
                    c.io.queue_raw(&mut core.shared, &request);
                    if let Err(e) = c.io.flush() {
                        self.io_failed(slot, e);
                    }
                }
            }
            // Spurious wake-up: still connecting.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
            Err(e) => self.io_failed(slot, e),
        }
    }
}

/// Feeds one piece of a message to the handler in its chosen delivery mode.
fn deliver_piece<H: Handler>(
    handler: &mut H,
    ctx: &mut Ctx<'_, H::Data>,
    msg: &mut Vec<u8>,
    piece: &[u8],
    last: bool,
    mode: Delivery,
    kind: MessageKind,
) {
    match mode {
        Delivery::Stream => handler.on_chunk(ctx, piece),
        Delivery::Whole => msg.extend_from_slice(piece),
    }
    if last {
        end_message(handler, ctx, msg, mode, kind);
    }
}

/// Ends a message: the whole message, or the end of a stream.
fn end_message<H: Handler>(
    handler: &mut H,
    ctx: &mut Ctx<'_, H::Data>,
    msg: &mut Vec<u8>,
    mode: Delivery,
    kind: MessageKind,
) {
    match mode {
        Delivery::Stream => handler.on_message_end(ctx),
        Delivery::Whole => {
            handler.on_message(ctx, MessageRef { kind, data: msg });
            if msg.capacity() > 1 << 20 {
                *msg = Vec::new();
            } else {
                msg.clear();
            }
        }
    }
}

/// Turns on permessage-deflate for a connection with negotiated `params`.
#[cfg(feature = "deflate")]
fn enable_deflate<D>(
    c: &mut Conn<D>,
    params: &crate::proto::deflate::DeflateParams,
    cfg: &crate::proto::deflate::DeflateConfig,
) {
    let role = c.io.role;
    c.io.deflater = Some(Box::new(crate::proto::deflate::MessageDeflater::new(
        params, role, cfg,
    )));
    c.rd.dec.set_rsv1_allowed(true);
    c.rd.inflater = Some(Box::new(crate::proto::deflate::MessageInflater::new(
        params,
        role,
        c.rd.dec.max_message_size(),
    )));
}

/// Best-effort 503 for a connection we cannot take.
fn refuse_full(mut sock: TcpStream) {
    use std::io::Write;
    let mut out = Vec::new();
    write_http_response(503, &[("Retry-After", "1")], b"server full\n", &mut out);
    let _ = sock.write(&out);
}
