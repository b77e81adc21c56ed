//! How other threads reach a loop: a channel of commands plus a `mio::Waker`
//! (the [`Sender`](crate::event::Sender) and [`Responder`](crate::event::Responder)
//! handles post on it).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use mio::{Poll, Token, Waker};

use crate::error::{Error, Result};
use crate::proto::{CloseCode, MessageKind};

use crate::event::api::id::ConnId;
use crate::event::api::prepared::Prepared;
use crate::event::api::stats::SharedStats;
use crate::event::conn::transport::ServerTls;

pub(crate) const WAKER: Token = Token(usize::MAX - 2);

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
    /// A message for this loop's subscribers of a topic.
    Publish(Arc<str>, Prepared),
    /// The answer to a deferred plain HTTP request (request `seq` of connection `id`).
    HttpAnswer {
        id: ConnId,
        seq: u32,
        response: Box<crate::event::api::response::HttpResponse>,
    },
    /// A socket accepted by another loop, handed over for load balancing.
    Adopt(crate::event::conn::sock::Sock, SocketAddr, ServerTls),
    Shutdown {
        deadline: Instant,
    },
    /// A step of a handover to a new process.
    #[cfg(feature = "handover")]
    HandOver(crate::event::reactor::handover::Step),
}

/// A loop's address for other threads: its channel, its waker, its load.
#[derive(Clone)]
pub(crate) struct WorkerHandle {
    pub(crate) index: usize,
    tx: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    pub(crate) wake_pending: Arc<AtomicBool>,
    /// Connections the loop holds (handshaking, answering plain HTTP, open).
    pub(crate) live: Arc<AtomicUsize>,
    /// Open WebSocket connections.
    pub(crate) open: Arc<AtomicUsize>,
    /// The loop's counters as of its last iteration.
    pub(crate) stats: Arc<SharedStats>,
    /// A handover of this server is under way (loop 0's flag counts): a second
    /// one waits for it to end.
    #[cfg(feature = "handover")]
    pub(crate) handing_over: Arc<std::sync::Mutex<()>>,
}

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
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
        open: Arc::new(AtomicUsize::new(0)),
        stats: Arc::default(),
        #[cfg(feature = "handover")]
        handing_over: Arc::default(),
    };
    Ok((handle, poll, rx))
}
