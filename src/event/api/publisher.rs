//! Publishing to topics from any thread.

use std::sync::Arc;

use crate::error::{Error, Result};

use crate::event::api::prepared::Prepared;
use crate::event::reactor::mailbox::{Command, WorkerHandle};

/// Publishes to topics from any thread: one mailbox post per loop per publish,
/// whatever the number of subscribers (each loop then copies the frame, encoded
/// once, into its subscribers' output queues). Cheap to clone; `Send` and `Sync`.
/// Get one from [`ServerHandle::publisher`](crate::event::ServerHandle::publisher)
/// or [`LoopCtx::publisher`](crate::event::LoopCtx::publisher).
///
/// ```
/// use std::time::Duration;
/// use silverback::event::{Ctx, Handler, Prepared, Server};
/// use silverback::Dialer;
///
/// /// Every connection subscribes to the topic named by its path.
/// struct Rooms;
/// impl Handler for Rooms {
///     type Data = String;
///     fn on_request(
///         &mut self,
///         req: &silverback::proto::handshake::Request,
///         room: &mut String,
///         _: std::net::SocketAddr,
///     ) -> silverback::event::Decision {
///         *room = req.path().trim_start_matches('/').to_owned();
///         silverback::event::Decision::accept()
///     }
///     fn on_open(&mut self, ctx: &mut Ctx<'_, String>) {
///         let room = ctx.data().clone();
///         ctx.subscribe(&room).unwrap();
///         ctx.send_text("joined").unwrap();
///     }
/// }
///
/// let server = Server::builder().addr("127.0.0.1:0").build(|_| Rooms)?;
/// let addr = server.local_addr();
/// let (handle, _) = server.spawn()?;
/// let (mut a, _) = Dialer::new().dial(&format!("ws://{addr}/lobby"))?;
/// let (mut b, _) = Dialer::new().dial(&format!("ws://{addr}/kitchen"))?;
/// assert_eq!(a.read_message()?.as_text(), Some("joined"));
/// assert_eq!(b.read_message()?.as_text(), Some("joined"));
///
/// let publisher = handle.publisher();
/// std::thread::spawn(move || publisher.publish("kitchen", &Prepared::text("soup is ready")))
///     .join()
///     .unwrap()?;
/// assert_eq!(b.read_message()?.as_text(), Some("soup is ready"));
/// handle.shutdown(Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Publisher {
    pub(crate) loops: Arc<[WorkerHandle]>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("loops", &self.loops.len())
            .finish()
    }
}

impl Publisher {
    /// Publishes `msg` to every subscriber of `topic` on every loop. Never blocks:
    /// each subscriber's back-pressure applies to it alone
    /// ([`Backpressure`](crate::event::Backpressure)). Fails with
    /// [`Error::AlreadyClosed`] once every loop has stopped.
    pub fn publish(&self, topic: &str, msg: &Prepared) -> Result<()> {
        let topic: Arc<str> = Arc::from(topic);
        let mut posted = false;
        for h in self.loops.iter() {
            posted |= h.post(Command::Publish(topic.clone(), msg.clone())).is_ok();
        }
        if posted {
            Ok(())
        } else {
            Err(Error::AlreadyClosed)
        }
    }
}
