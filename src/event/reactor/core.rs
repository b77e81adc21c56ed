//! Loop state that callbacks reach through their contexts: the clock of the
//! iteration, the timer heap, slot bookkeeping, and operations on other
//! connections that run once the callback returns.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::proto::CloseCode;
use crate::url::WsUrl;

use crate::event::api::config::LoopConfig;
use crate::event::api::id::ConnId;
use crate::event::api::prepared::Prepared;
use crate::event::api::stats::Stats;
use crate::event::conn::shared::LoopShared;
use crate::event::reactor::mailbox::{Command, WorkerHandle};
use crate::event::reactor::timers::Timers;
use crate::event::reactor::topics::Topics;

/// Operations a callback asks for that touch other connections; run after it returns.
pub(crate) enum Op<D> {
    SendTo(ConnId, Prepared),
    Close(ConnId, CloseCode, String),
    Connect(usize, u32, WsUrl, D),
}

/// Loop state callbacks reach through their contexts.
pub(crate) struct LoopCore<D> {
    pub(crate) shared: LoopShared,
    pub(crate) now: Instant,
    pub(crate) timers: Timers,
    pub(crate) ops: Vec<Op<D>>,
    pub(crate) broadcasts: Vec<Prepared>,
    /// Publishes to this loop's subscribers, run after the callback.
    pub(crate) publishes: Vec<(Arc<str>, Prepared)>,
    /// Which connections of this loop subscribed to which topics.
    pub(crate) topics: Topics,
    /// A publish's recipients, copied out of [`Topics`] (kept for reuse).
    pub(crate) member_scratch: Vec<ConnId>,
    gens: Vec<u32>,
    free: Vec<usize>,
    /// Connections this loop holds: handshaking, answering plain HTTP, open.
    pub(crate) live: usize,
    /// Open WebSocket connections (`on_open` called, `on_close` not yet).
    pub(crate) open: usize,
    pub(crate) me: WorkerHandle,
    pub(crate) peers: Arc<[WorkerHandle]>,
    pub(crate) next_timer_id: u64,
    /// Numbers plain HTTP requests, so a late answer cannot reach a later request
    /// of the same keep-alive connection.
    pub(crate) next_http_seq: u32,
}

impl<D> LoopCore<D> {
    pub(crate) fn new(
        config: Arc<LoopConfig>,
        me: WorkerHandle,
        peers: Arc<[WorkerHandle]>,
    ) -> Self {
        LoopCore {
            shared: LoopShared {
                config,
                dirty: Vec::new(),
                scratch: Vec::new(),
                stats: Stats::default(),
                ips: None,
            },
            now: Instant::now(),
            timers: Timers::default(),
            ops: Vec::new(),
            broadcasts: Vec::new(),
            publishes: Vec::new(),
            topics: Topics::default(),
            member_scratch: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            live: 0,
            open: 0,
            me,
            peers,
            next_timer_id: 0,
            next_http_seq: 0,
        }
    }

    pub(crate) fn alloc_slot(&mut self) -> (usize, u32) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.gens.push(0);
            self.gens.len() - 1
        });
        (slot, self.gens[slot])
    }

    pub(crate) fn release_slot(&mut self, slot: usize) {
        // A connection's subscriptions end with it.
        self.topics.drop_slot(slot);
        self.gens[slot] = self.gens[slot].wrapping_add(1) & 0xFF_FFFF;
        self.free.push(slot);
    }

    /// This loop's counters now, gauges included.
    pub(crate) fn stats(&self) -> Stats {
        let mut s = self.shared.stats;
        s.connections = self.live as u64;
        s.open = self.open as u64;
        s.subscriptions = self.topics.count() as u64;
        s
    }

    /// Makes the counters visible to other threads.
    pub(crate) fn publish_stats(&self) {
        self.me.stats.publish(&self.stats());
    }

    /// The counters of every loop of this server (this one's live, the others' as
    /// last published).
    pub(crate) fn server_stats(&self) -> Stats {
        self.peers
            .iter()
            .map(|p| {
                if p.index == self.me.index {
                    self.stats()
                } else {
                    p.stats.read()
                }
            })
            .sum()
    }

    pub(crate) fn set_live(&mut self, live: usize) {
        self.live = live;
        self.me.live.store(live, Ordering::Relaxed);
    }

    /// One more (`true`) or one fewer open WebSocket connection.
    pub(crate) fn count_open(&mut self, opened: bool) {
        self.open = if opened {
            self.open + 1
        } else {
            self.open.saturating_sub(1)
        };
        self.me.open.store(self.open, Ordering::Relaxed);
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
        crate::proto::check_close(code, reason)?;
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

    /// Publishes `msg` to `topic`'s subscribers: this loop's after the callback,
    /// every other loop's through one mailbox post each.
    pub(crate) fn publish(&mut self, topic: &str, msg: &Prepared) {
        let topic: Arc<str> = Arc::from(topic);
        for p in self.peers.iter() {
            if p.index == self.me.index {
                self.publishes.push((topic.clone(), msg.clone()));
            } else {
                let _ = p.post(Command::Publish(topic.clone(), msg.clone()));
            }
        }
    }

    pub(crate) fn connect(&mut self, url: &str, data: D) -> Result<ConnId> {
        let u = WsUrl::parse(url)?;
        if u.secure {
            #[cfg(feature = "tls")]
            let ready = self.shared.config.tls_client.is_some();
            #[cfg(not(feature = "tls"))]
            let ready = false;
            if !ready {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "wss:// needs the `tls` feature and ClientBuilder::tls",
                )));
            }
        }
        if self.live >= self.shared.config.max_connections {
            return Err(Error::Io(io::Error::other("loop is at max_connections")));
        }
        let (slot, generation) = self.alloc_slot();
        self.set_live(self.live + 1);
        self.ops.push(Op::Connect(slot, generation, u, data));
        Ok(ConnId::new(self.me.index, slot, generation))
    }
}
