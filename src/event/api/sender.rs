//! A handle to one connection for any thread: the [`Sender`], posting to the
//! connection's loop through its mailbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::proto::{CloseCode, MessageKind, check_close, check_control, check_message};

use crate::event::api::id::ConnId;
use crate::event::api::prepared::Prepared;
use crate::event::reactor::mailbox::{Command, WorkerHandle};

/// The liveness flag a connection's senders share.
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
