//! A loop's part of a handover to a new process (feature `handover`; the
//! coordinator is `crate::handover`).
//!
//! **Prepare**: the loop stops accepting (its listening sockets are duplicated for
//! the new process) and, from then on, takes out every open plain server
//! connection that is between messages: its state is saved, its socket
//! deregistered and moved out (no duplicate: a process near its descriptor limit
//! must not run out half-way), and the connection set aside with its slot (its id
//! stays reserved). A connection in the middle of a
//! message (received or sent) is served until it reaches the end of it, up to the
//! prepare deadline; then the loop reports what it set aside. **Commit**: the set
//! aside connections are let go without a word (the new process has their
//! sockets); what could not move (TLS sessions, messages still under way at the
//! deadline, closing handshakes) is closed with 1012 (Service Restart).
//! **Abort**: the sockets come back from the coordinator and everything set aside
//! goes back, exactly as it was: nothing was read or written meanwhile.
//!
//! The new process's loops **resume** the connections they are given: each is
//! rebuilt from its state, registered, given back its topics and user timers, and
//! `on_resume` is called with the application's saved data.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio::{Interest, Token};

use crate::event::api::ctx::Ctx;
use crate::event::api::handler::Handler;
use crate::event::api::id::ConnId;
use crate::event::conn::sock::Sock;
use crate::event::conn::transport::Transport;
use crate::event::conn::{ConnIo, Phase, ReadState, Slot, UserTimer};
use crate::event::reactor::timers::TimerKind;
use crate::event::reactor::worker::{ListenSock, Worker, listener_token};
use crate::handover::format::{ConnRecord, ListenerRecord, TimerRecord, encode_conn};
use crate::proto::{CloseCode, Connection, Randomness, Role};

/// What a loop is asked to do.
pub(crate) enum Step {
    /// Set connections aside until `deadline` and report them on `reply`.
    Prepare {
        deadline: Instant,
        reply: mpsc::Sender<LoopExport>,
    },
    /// The new process has them: let go.
    Commit,
    /// The handover failed: serve everything again, with the sockets this loop
    /// exported (in the order of its export).
    Abort(Vec<OwnedFd>),
}

/// What one loop hands over.
pub(crate) struct LoopExport {
    /// The loop's index.
    pub(crate) index: usize,
    pub(crate) listeners: Vec<(ListenerRecord, OwnedFd)>,
    /// Encoded [`ConnRecord`]s and their sockets.
    pub(crate) conns: Vec<(Vec<u8>, OwnedFd)>,
    /// Open connections that stay (closed with 1012 at commit).
    pub(crate) staying: usize,
    /// The loop could not take part (a listening socket could not be
    /// duplicated): the handover must be aborted.
    pub(crate) error: Option<String>,
}

/// A loop's handover in progress.
pub(crate) struct Handover<D> {
    deadline: Instant,
    /// `None` once the export was sent.
    reply: Option<mpsc::Sender<LoopExport>>,
    /// Connections set aside: slot, connection (without its socket), its user
    /// timers' deadlines, and whether its socket is a Unix one.
    held: Vec<Held<D>>,
    conns: Vec<(Vec<u8>, OwnedFd)>,
    listeners: Vec<(ListenerRecord, OwnedFd)>,
    error: Option<String>,
}

struct Held<D> {
    slot: usize,
    conn: Slot<D>,
    dues: Vec<Instant>,
    unix: bool,
}

/// Whether the connection can move now: open plain server connection, between
/// messages, nothing deferred, no message being assembled, transport healthy.
fn movable<D>(c: &Slot<D>) -> Option<bool> {
    let Phase::Open(conn) = &c.io.phase else {
        return None;
    };
    if c.io.role != Role::Server || c.io.is_dead() || !conn.state().is_open() {
        return None;
    }
    if !matches!(c.io.sock, Some(Transport::Plain(_))) || c.io.write_failed {
        // TLS: rustls cannot export a session's keys through its public API.
        return Some(false);
    }
    let rd_rest =
        c.rd.as_deref()
            .is_none_or(|rd| rd.msg.is_empty() && rd.delivery.is_none());
    Some(conn.is_at_rest() && rd_rest && c.io.deferred_bytes() == 0)
}

impl<H: Handler> Worker<H> {
    pub(crate) fn handover_command(&mut self, step: Step) {
        match step {
            Step::Prepare { deadline, reply } => {
                if self.handover.is_some() {
                    return;
                }
                let mut listeners = Vec::new();
                let mut error = None;
                for (i, l) in self.listeners.iter_mut().enumerate() {
                    let _ = self.poll.registry().deregister(&mut l.sock);
                    let (fd, unix_path) = match &l.sock {
                        ListenSock::Tcp(s) => (crate::handover::wire::dup(s), None),
                        ListenSock::Unix(s, path) => (
                            crate::handover::wire::dup(s),
                            Some(path.to_string_lossy().into_owned()),
                        ),
                    };
                    match fd {
                        Ok(fd) => listeners.push((
                            ListenerRecord {
                                index: i as u16,
                                unix_path,
                            },
                            fd,
                        )),
                        Err(e) => error = Some(format!("a listening socket: {e}")),
                    }
                }
                self.handover = Some(Box::new(Handover {
                    // Nothing is set aside if the loop cannot take part.
                    deadline: if error.is_some() {
                        self.core.now
                    } else {
                        deadline
                    },
                    reply: Some(reply),
                    held: Vec::new(),
                    conns: Vec::new(),
                    listeners,
                    error,
                }));
                self.handover_step();
            }
            Step::Commit => self.handover_commit(),
            Step::Abort(fds) => self.handover_abort(fds),
        }
    }

    /// Sets aside what can move now; reports once nothing else can, or at the
    /// deadline. Runs at the end of every iteration while preparing.
    pub(crate) fn handover_step(&mut self) {
        let Some(h) = self.handover.as_ref() else {
            return;
        };
        if h.reply.is_none() {
            return;
        }
        let deadline = h.deadline;
        let now = self.core.now;
        let mut waiting = 0;
        let mut staying = 0;
        let mut dues: Option<HashMap<(usize, u64), Instant>> = None;
        let failed = h.error.is_some();
        for slot in 0..self.slots.len() {
            let Some(c) = self.slots[slot].as_ref() else {
                continue;
            };
            match movable(c) {
                Some(true) if !failed => {
                    if c.io
                        .cold
                        .as_deref()
                        .is_some_and(|k| !k.user_timers.is_empty())
                        && dues.is_none()
                    {
                        dues = Some(self.user_timer_dues());
                    }
                    if !self.hold(slot, dues.as_ref()) {
                        staying += 1;
                    }
                }
                // Plain, in the middle of a message: waits for its end.
                Some(false) if matches!(c.io.sock, Some(Transport::Plain(_))) && !failed => {
                    waiting += 1;
                }
                Some(_) => staying += 1,
                None => {}
            }
        }
        if waiting > 0 && now < deadline {
            return;
        }
        let Some(h) = self.handover.as_mut() else {
            return;
        };
        let export = LoopExport {
            index: self.core.me.index,
            listeners: std::mem::take(&mut h.listeners),
            conns: std::mem::take(&mut h.conns),
            staying: staying + waiting,
            error: h.error.take(),
        };
        if let Some(reply) = h.reply.take() {
            let _ = reply.send(export);
        }
    }

    /// The deadline of every user timer in the heap, by slot and timer id.
    fn user_timer_dues(&self) -> HashMap<(usize, u64), Instant> {
        self.core
            .timers
            .entries()
            .filter_map(|e| match e.kind {
                TimerKind::User(id) => Some(((e.slot, id), e.at)),
                TimerKind::Conn => None,
            })
            .collect()
    }

    /// Saves the connection in `slot`, moves its socket out and sets it aside.
    /// False if it could not be (it stays served and is closed at commit).
    fn hold(&mut self, slot: usize, dues: Option<&HashMap<(usize, u64), Instant>>) -> bool {
        let now = self.core.now;
        let Some(mut p) = self.parts(slot) else {
            return false;
        };
        let Some(Ok(state)) = p.conn.io.conn().map(|c| c.save(now)) else {
            return false;
        };
        let unix = match p.conn.io.sock.as_ref() {
            Some(Transport::Plain(Sock::Tcp(_))) => false,
            Some(Transport::Plain(_)) => true,
            _ => return false,
        };
        let data = p.call(|h, ctx| h.on_hand_over(ctx));
        let topics = p.core.topics.of_slot(slot).map(str::to_owned).collect();
        let user: Vec<(UserTimer, Instant)> = p
            .conn
            .io
            .cold
            .as_deref()
            .map(|k| {
                k.user_timers
                    .iter()
                    .map(|t| {
                        let due = dues
                            .and_then(|d| d.get(&(slot, t.id)).copied())
                            .unwrap_or(now);
                        (
                            UserTimer {
                                id: t.id,
                                token: t.token,
                                period: t.period,
                            },
                            due,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let record = ConnRecord {
            peer: p.conn.io.peer(),
            unix,
            state,
            topics,
            timers: user
                .iter()
                .map(|(t, due)| TimerRecord {
                    token: t.token,
                    period: t.period,
                    remaining: due.saturating_duration_since(now),
                })
                .collect(),
            input: p.conn.pending().to_vec(),
            data,
        };
        let bytes = encode_conn(&record);
        let Some(mut c) = self.slots[slot].take() else {
            return false;
        };
        let fd = match c.io.sock.take() {
            Some(Transport::Plain(mut s)) => {
                let _ = self.poll.registry().deregister(&mut s);
                OwnedFd::from(s)
            }
            other => {
                c.io.sock = other;
                self.slots[slot] = Some(c);
                return false;
            }
        };
        // Its timer entries find no connection while it is away.
        c.io.timer_at = None;
        let Some(h) = self.handover.as_mut() else {
            return false;
        };
        h.conns.push((bytes, fd));
        h.held.push(Held {
            slot,
            conn: c,
            dues: user.into_iter().map(|(_, due)| due).collect(),
            unix,
        });
        true
    }

    /// The new process has everything: let go of it.
    fn handover_commit(&mut self) {
        let Some(mut h) = self.handover.take() else {
            return;
        };
        // The sockets went to the coordinator, which closes them once the new
        // process has its own.
        for Held { slot, mut conn, .. } in std::mem::take(&mut h.held) {
            if let Some(a) = conn.io.cold.as_mut().and_then(|k| k.alive.take()) {
                a.store(false, std::sync::atomic::Ordering::Release);
            }
            self.release_ip(&conn.io);
            self.core.release_slot(slot);
            self.core.set_live(self.core.live.saturating_sub(1));
            self.core.count_open(false);
            self.core.shared.stats.handed_over += 1;
        }
        // The listeners are the new process's now (a Unix socket's file too).
        for mut l in std::mem::take(&mut self.listeners) {
            if let ListenSock::Unix(_, path) = &mut l.sock {
                *path = std::path::PathBuf::new();
            }
        }
        // What could not move is told to reconnect.
        for slot in 0..self.slots.len() {
            if let Some(p) = self.parts(slot)
                && p.conn.io.is_open()
            {
                let _ = p.conn.io.close(
                    &mut p.core.shared,
                    p.core.now,
                    CloseCode::SERVICE_RESTART,
                    "service restart",
                );
                self.finalize(slot);
            }
        }
    }

    /// The handover failed: everything set aside is served again, as it was, with
    /// the sockets the coordinator gives back (`fds`, in export order; before the
    /// export was sent, the loop still holds them).
    fn handover_abort(&mut self, fds: Vec<OwnedFd>) {
        let Some(mut h) = self.handover.take() else {
            return;
        };
        let mut fds = fds.into_iter();
        let mut kept = std::mem::take(&mut h.conns).into_iter().map(|(_, fd)| fd);
        for (i, l) in self.listeners.iter_mut().enumerate() {
            let _ =
                self.poll
                    .registry()
                    .register(&mut l.sock, listener_token(i), Interest::READABLE);
        }
        for Held {
            slot,
            conn: mut c,
            dues,
            unix,
        } in std::mem::take(&mut h.held)
        {
            let Some(fd) = kept.next().or_else(|| fds.next()) else {
                // Its socket was lost with the coordinator: it ends here.
                self.core.release_slot(slot);
                self.core.set_live(self.core.live.saturating_sub(1));
                self.core.count_open(false);
                continue;
            };
            let sock = if unix {
                Sock::Unix(mio::net::UnixStream::from(fd))
            } else {
                Sock::Tcp(mio::net::TcpStream::from(fd))
            };
            let mut t = Transport::Plain(sock);
            let _ = self.poll.registry().register(
                t.sock(),
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            );
            c.io.sock = Some(t);
            let generation = c.io.id.generation();
            if let Some(k) = c.io.cold.as_deref() {
                for (t, due) in k.user_timers.iter().zip(dues) {
                    self.core
                        .timers
                        .add(due, slot, generation, TimerKind::User(t.id));
                }
            }
            self.insert(slot, c);
            self.arm_timer(slot);
            self.ready.push(slot);
        }
    }

    /// Takes in connections a handover brought (the new process, before it runs).
    pub(crate) fn resume(&mut self, conns: Vec<(ConnRecord, OwnedFd)>) {
        self.core.now = Instant::now();
        for (rec, fd) in conns {
            if let Err(e) = self.resume_one(rec, fd) {
                crate::logging::info!("handover: a connection could not resume: {e}");
                let _ = e;
            }
        }
        self.run_ops();
        self.flush_dirty();
    }

    fn resume_one(&mut self, rec: ConnRecord, fd: OwnedFd) -> std::io::Result<()> {
        let now = self.core.now;
        let sock = if rec.unix {
            let s = std::os::unix::net::UnixStream::from(fd);
            s.set_nonblocking(true)?;
            Sock::Unix(mio::net::UnixStream::from_std(s))
        } else {
            let s = std::net::TcpStream::from(fd);
            s.set_nonblocking(true)?;
            Sock::Tcp(mio::net::TcpStream::from_std(s))
        };
        let conn = restore(&rec, &self.server, now)?;
        let (slot, generation) = self.core.alloc_slot();
        let mut transport = Transport::Plain(sock);
        if let Err(e) = self.poll.registry().register(
            transport.sock(),
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.core.release_slot(slot);
            return Err(e);
        }
        let id = ConnId::new(self.core.me.index, slot, generation);
        let mut io = ConnIo::new(
            Some(transport),
            id,
            rec.peer,
            Role::Server,
            Phase::Open(conn),
        );
        let rd = (!rec.input.is_empty()).then(|| {
            let size = self.buffer_size().max(rec.input.len() * 2);
            let mut buf = vec![0; size];
            buf[..rec.input.len()].copy_from_slice(&rec.input);
            Box::new(ReadState {
                buf,
                start: 0,
                end: rec.input.len(),
                ..ReadState::default()
            })
        });
        for t in &rec.timers {
            self.core.next_timer_id += 1;
            let tid = self.core.next_timer_id;
            io.cold().user_timers.push(UserTimer {
                id: tid,
                token: t.token,
                period: t.period,
            });
            self.core
                .timers
                .add(now + t.remaining, slot, generation, TimerKind::User(tid));
        }
        self.insert(
            slot,
            Slot {
                io,
                rd,
                data: H::Data::default(),
            },
        );
        self.core.set_live(self.core.live + 1);
        self.core.count_open(true);
        self.core.shared.stats.resumed += 1;
        for t in &rec.topics {
            self.core.topics.subscribe(id, t);
        }
        self.admit_resumed(slot);
        if let Some(mut p) = self.parts(slot) {
            let data = &rec.data;
            p.call(|h, ctx: &mut Ctx<'_, H::Data>| h.on_resume(ctx, data));
            p.conn.io.mark_dirty(&mut p.core.shared);
        }
        self.arm_timer(slot);
        self.ready.push(slot);
        Ok(())
    }
}

/// The protocol connection of a record, under this server's settings.
fn restore(
    rec: &ConnRecord,
    server: &crate::proto::handshake::ServerConfig,
    now: Instant,
) -> std::io::Result<Connection> {
    let bad =
        |e: crate::proto::SnapshotError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    #[cfg(feature = "deflate")]
    if let Some(cfg) = server.deflate.as_ref() {
        return Connection::restore_compressed(
            &rec.state,
            server.connection.clone(),
            Randomness::thread(),
            cfg,
            now,
        )
        .map_err(bad);
    }
    Connection::restore(
        &rec.state,
        server.connection.clone(),
        Randomness::thread(),
        now,
    )
    .map_err(bad)
}

/// How long a loop waits for its connections to reach the end of a message, by
/// default.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(1);
