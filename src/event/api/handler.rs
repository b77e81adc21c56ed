//! The callbacks an application implements to run on the loop.

use std::net::SocketAddr;

use crate::error::Error;
use crate::proto::handshake::Request;
use crate::proto::{CloseCode, MessageKind};

use crate::event::api::ctx::{Ctx, LoopCtx};
use crate::event::api::responder::HttpRequest;
use crate::event::api::response::HttpResponse;
use crate::event::api::types::{Decision, Delivery, MessageRef};

/// The application's side of a loop: one handler per loop thread, called for every
/// connection of that loop. Per-connection state lives in [`Handler::Data`], reached
/// with [`Ctx::data`]. Every method has a default, so a handler implements only what
/// it needs.
///
/// Order of calls for a server connection: [`on_request`](Self::on_request) →
/// [`on_open`](Self::on_open) → messages, pings, timers… →
/// [`on_close`](Self::on_close) exactly once. For a client connection `on_close` is
/// also called when it fails before opening (after [`on_error`](Self::on_error)).
///
/// Which connections get `on_close`:
/// * server side: exactly those that got `on_open`. A plain HTTP request (the HTTP
///   hook), a handshake abandoned or timed out, and an upgrade refused (by a check or
///   by `on_request`) never opened, so they get neither.
/// * client side: every connection started with `connect`, once: after `on_open`
///   when it opened, or after `on_error` when the connect or the handshake failed
///   (code [`CloseCode::ABNORMAL`]).
///
/// A chat room: every message goes to everyone, with per-connection data (a name)
/// and a greeting on open; a client on this thread checks it.
///
/// ```
/// use std::time::Duration;
/// use silverback::event::{Ctx, Handler, MessageRef, Prepared, Server};
/// use silverback::{CloseCode, Dialer, MessageKind};
///
/// struct Room;
/// impl Handler for Room {
///     type Data = String; // the member's name
///     fn on_open(&mut self, ctx: &mut Ctx<'_, String>) {
///         *ctx.data() = format!("guest-{}", ctx.id());
///         let _ = ctx.send_text("welcome");
///     }
///     fn on_message(&mut self, ctx: &mut Ctx<'_, String>, msg: MessageRef<'_>) {
///         let line = format!("{}: {}", ctx.data(), String::from_utf8_lossy(msg.data));
///         ctx.broadcast(&Prepared::text(&line));
///     }
///     fn on_close(&mut self, ctx: &mut Ctx<'_, String>, code: CloseCode, _reason: &str) {
///         println!("{} left ({code})", ctx.data());
///     }
/// }
///
/// let server = Server::builder().addr("127.0.0.1:0").build(|_| Room)?;
/// let addr = server.local_addr();
/// let (handle, thread) = server.spawn()?;
/// let (mut c, _) = Dialer::new().dial(&format!("ws://{addr}/"))?;
/// assert_eq!(c.read_message()?.as_bytes(), b"welcome");
/// c.write_message(MessageKind::Text, b"hi")?;
/// assert!(c.read_message()?.as_text().unwrap().ends_with(": hi"));
/// c.close(CloseCode::NORMAL, "")?;
/// handle.shutdown(Duration::from_secs(1));
/// thread.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[allow(unused_variables)]
pub trait Handler: 'static {
    /// Per-connection data, created with `Default` for accepted connections (and
    /// filled in by `on_request`), given to `connect` for client ones.
    type Data: Default + 'static;

    /// An upgrade request passed validation and the origin check: accept it (fill in
    /// `data`, pick a subprotocol) or refuse it. Default: accept.
    fn on_request(&mut self, req: &Request, data: &mut Self::Data, peer: SocketAddr) -> Decision {
        Decision::accept()
    }

    /// A plain HTTP request on the same port (a health check, a test page, the push
    /// service's endpoints). Default: 426 Upgrade Required.
    fn on_http(&mut self, req: &HttpRequest<'_>, lp: &mut LoopCtx<'_, Self::Data>) -> HttpResponse {
        HttpResponse::upgrade_required()
    }

    /// The connection is open (101 sent or received).
    fn on_open(&mut self, ctx: &mut Ctx<'_, Self::Data>) {}

    /// A message starts; choose how it is delivered. Default: [`Delivery::Whole`].
    fn on_message_start(&mut self, ctx: &mut Ctx<'_, Self::Data>, kind: MessageKind) -> Delivery {
        Delivery::Whole
    }

    /// A whole message ([`Delivery::Whole`]).
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self::Data>, msg: MessageRef<'_>) {}

    /// A piece of a streamed message ([`Delivery::Stream`]), in order.
    fn on_chunk(&mut self, ctx: &mut Ctx<'_, Self::Data>, data: &[u8]) {}

    /// The end of a streamed message.
    fn on_message_end(&mut self, ctx: &mut Ctx<'_, Self::Data>) {}

    /// A ping arrived (already answered if `auto_pong` is on).
    fn on_ping(&mut self, ctx: &mut Ctx<'_, Self::Data>, data: &[u8]) {}

    /// A pong arrived.
    fn on_pong(&mut self, ctx: &mut Ctx<'_, Self::Data>, data: &[u8]) {}

    /// The connection ended: the peer's close code and reason, the code we sent if we
    /// closed or failed it and the peer never answered, or [`CloseCode::ABNORMAL`]
    /// (1006) if it ended without a close frame. Called once, for the connections
    /// listed in the trait's documentation.
    fn on_close(&mut self, ctx: &mut Ctx<'_, Self::Data>, code: CloseCode, reason: &str) {}

    /// A timer set with [`Ctx::set_timer`] or [`Ctx::set_interval`] fired.
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self::Data>, token: u64) {}

    /// The output queue, having reached half of `max_output_buffer`, drained below it:
    /// a streaming sender may continue.
    fn on_drain(&mut self, ctx: &mut Ctx<'_, Self::Data>) {}

    /// Something went wrong on this connection (a protocol violation by the peer, an
    /// I/O error, a message dropped for back-pressure). `on_close` follows if the
    /// connection ends.
    fn on_error(&mut self, ctx: &mut Ctx<'_, Self::Data>, err: &Error) {}

    /// A handover ([`ServerHandle::hand_over`](crate::event::ServerHandle::hand_over))
    /// is moving this open connection to a new process: return what the new
    /// process's [`on_resume`](Self::on_resume) needs to rebuild its
    /// [`Data`](Self::Data) (a user id, say). The connection's protocol state,
    /// topics and timers move by themselves. It gets no `on_close` here: it lives
    /// on over there (unless the handover fails, and then it stays here, as it
    /// was). Default: nothing (the new process starts from `Data::default()`).
    #[cfg(feature = "handover")]
    fn on_hand_over(&mut self, ctx: &mut Ctx<'_, Self::Data>) -> Vec<u8> {
        Vec::new()
    }

    /// A connection handed over by the old process is open on this one (in
    /// place of `on_open`): `saved` is what the old process's
    /// [`on_hand_over`](Self::on_hand_over) returned. Called before any of its
    /// input is read. Default: nothing.
    #[cfg(feature = "handover")]
    fn on_resume(&mut self, ctx: &mut Ctx<'_, Self::Data>, saved: &[u8]) {}
}
