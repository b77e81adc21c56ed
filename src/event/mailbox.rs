//! How other threads reach a loop: a channel of commands plus a `mio::Waker`, and
//! the [`Sender`] handle built on it.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Poll, Token, Waker};

use crate::error::{Error, Result};
use crate::proto::{CloseCode, MessageKind};
use crate::proto::{check_close, check_control, check_message};

use super::id::ConnId;
use super::prepared::Prepared;
use super::stats::SharedStats;
use super::transport::ServerTls;

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
    /// The answer to a deferred plain HTTP request (request `seq` of connection `id`).
    HttpAnswer {
        id: ConnId,
        seq: u32,
        response: Box<super::response::HttpResponse>,
    },
    /// A socket accepted by another loop, handed over for load balancing.
    Adopt(TcpStream, SocketAddr, ServerTls),
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
    pub(crate) wake_pending: Arc<AtomicBool>,
    /// Connections the loop holds (handshaking, answering plain HTTP, open).
    pub(crate) live: Arc<AtomicUsize>,
    /// Open WebSocket connections.
    pub(crate) open: Arc<AtomicUsize>,
    /// The loop's counters as of its last iteration.
    pub(crate) stats: Arc<SharedStats>,
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
    };
    Ok((handle, poll, rx))
}

pub(crate) fn new_alive() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(true))
}

/// A handle to one connection usable from any thread: send to it, close it.
/// `Send + Sync + Clone`. Delivery goes through the loop's channel and waker. Once
/// the connection has ended every call returns [`Error::AlreadyClosed`]; a message
/// posted just as it ends is dropped.
///
/// Pushing from another thread (the tutorial's server push):
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use silverback::event::{Ctx, Handler, Sender, Server};
/// use silverback::Dialer;
///
/// struct Register(mpsc::Sender<Sender>);
/// impl Handler for Register {
///     type Data = ();
///     fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
///         let _ = self.0.send(ctx.sender()); // hand the connection to the pusher
///     }
/// }
///
/// let (tx, rx) = mpsc::channel();
/// let server = Server::builder().addr("127.0.0.1:0").build(move |_| Register(tx.clone()))?;
/// let addr = server.local_addr();
/// let (handle, _) = server.spawn()?;
/// let (mut c, _) = Dialer::new().dial(&format!("ws://{addr}/"))?;
/// let sender = rx.recv_timeout(Duration::from_secs(10))?;
/// std::thread::spawn(move || sender.send_text("news from another thread"));
/// assert_eq!(c.read_message()?.as_text(), Some("news from another thread"));
/// handle.shutdown(Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Sender {
    pub(crate) id: ConnId,
    pub(crate) worker: WorkerHandle,
    pub(crate) alive: Arc<AtomicBool>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("id", &self.id)
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Sender {
    /// The connection this sender targets.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// False once the connection has ended.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    fn post(&self, cmd: Command) -> Result<()> {
        if !self.is_alive() {
            return Err(Error::AlreadyClosed);
        }
        self.worker.post(cmd)
    }

    /// Sends a message (copied). Text must be UTF-8.
    pub fn send(&self, kind: MessageKind, data: &[u8]) -> Result<()> {
        check_message(kind, data)?;
        self.post(Command::Send {
            id: self.id,
            kind,
            data: data.to_vec(),
        })
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// Sends `value` as a JSON text message (the `json` feature). A value that cannot
    /// be serialized is [`Error::Json`] and nothing is sent.
    #[cfg(feature = "json")]
    pub fn send_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let text = crate::json::encode(value)?;
        self.post(Command::Send {
            id: self.id,
            kind: MessageKind::Text,
            data: text,
        })
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        self.send(MessageKind::Binary, data)
    }

    /// Sends a prepared message (no copy of the payload until the loop queues it).
    pub fn send_prepared(&self, msg: &Prepared) -> Result<()> {
        self.post(Command::SendPrepared {
            id: self.id,
            msg: msg.clone(),
        })
    }

    /// Sends a ping.
    pub fn ping(&self, data: &[u8]) -> Result<()> {
        check_control(data)?;
        self.post(Command::Ping {
            id: self.id,
            data: data.to_vec(),
        })
    }

    /// Starts the closing handshake with `code` and `reason`.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<()> {
        check_close(code, reason)?;
        self.post(Command::Close {
            id: self.id,
            code,
            reason: reason.to_owned(),
        })
    }
}
