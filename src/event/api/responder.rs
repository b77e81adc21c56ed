//! A plain HTTP request of the HTTP hook ([`HttpRequest`]), and answering it later,
//! from any thread: the [`Responder`] a handler gets from [`HttpRequest::defer`].
//!
//! The HTTP hook runs on the loop thread; work that may block (a database, another
//! service) must not run there, or every connection of the loop waits with it. The
//! handler defers the request, hands the `Responder` to a worker thread, and
//! returns; the loop keeps serving everyone else. The worker's answer comes back
//! through the loop's mailbox like a [`Sender`](crate::event::Sender)'s message.

use std::cell::Cell;
use std::net::SocketAddr;

use crate::error::Result;
use crate::proto::handshake::Request;

use crate::event::api::id::ConnId;
use crate::event::api::response::HttpResponse;
use crate::event::reactor::mailbox::{Command, WorkerHandle};

/// A plain HTTP request (not an upgrade) with its body.
///
/// Answer it by returning an [`HttpResponse`] from
/// [`on_http`](crate::event::Handler::on_http), or, for work that must not hold up the
/// loop (a database, another service), [`defer`](Self::defer) it and answer from
/// another thread. Connections are kept alive between requests as the client asks
/// (HTTP/1.1 by default), so a client can send many requests on one connection.
#[derive(Debug)]
pub struct HttpRequest<'a> {
    /// The request head.
    pub head: &'a Request,
    /// The body (by `Content-Length`, at most [`LoopConfig::max_http_body`](crate::event::LoopConfig::max_http_body)).
    pub body: &'a [u8],
    /// The client's address.
    pub peer: SocketAddr,
    pub(crate) id: ConnId,
    pub(crate) seq: u32,
    pub(crate) worker: WorkerHandle,
    pub(crate) deferred: Cell<bool>,
}

impl HttpRequest<'_> {
    /// Answers this request later, from any thread: the returned [`Responder`]
    /// carries the answer back to the loop. The response `on_http` returns is then
    /// not sent (return [`HttpResponse::deferred`]). The loop serves every other
    /// connection meanwhile; the request is answered `504` if no answer comes
    /// within [`LoopConfig::http_answer_timeout`](crate::event::LoopConfig::http_answer_timeout),
    /// `500` if the responder is dropped unanswered.
    ///
    /// ```
    /// use silverback::event::{Handler, HttpRequest, HttpResponse, LoopCtx, Server};
    ///
    /// struct Slow;
    /// impl Handler for Slow {
    ///     type Data = ();
    ///     fn on_http(&mut self, req: &HttpRequest<'_>, _: &mut LoopCtx<'_, ()>) -> HttpResponse {
    ///         let responder = req.defer();
    ///         std::thread::spawn(move || {
    ///             // ... a call that may take a while ...
    ///             let _ = responder.respond(HttpResponse::text(200, "done\n"));
    ///         });
    ///         HttpResponse::deferred()
    ///     }
    /// }
    ///
    /// let server = Server::builder().addr("127.0.0.1:0").build(|_| Slow)?;
    /// let addr = server.local_addr();
    /// let (handle, _) = server.spawn()?;
    /// let mut s = std::net::TcpStream::connect(addr)?;
    /// std::io::Write::write_all(&mut s, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    /// let mut answer = String::new();
    /// std::io::Read::read_to_string(&mut s, &mut answer)?;
    /// assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("done\n"));
    /// handle.shutdown(std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn defer(&self) -> Responder {
        self.deferred.set(true);
        responder(self.id, self.seq, &self.worker)
    }
}

/// The pending answer to one deferred HTTP request: [`respond`](Self::respond) once,
/// from any thread (`Send`). Dropped without an answer, it answers
/// `500 Internal Server Error` so the client is never left waiting; a request that
/// gets no answer within [`LoopConfig::http_answer_timeout`](crate::event::LoopConfig::http_answer_timeout)
/// is answered `504 Gateway Timeout` by the loop. An answer for a client that has
/// gone (or timed out) is dropped.
pub struct Responder {
    pub(crate) id: ConnId,
    /// Which request of the connection this answers (a keep-alive connection
    /// carries several, one after another).
    pub(crate) seq: u32,
    pub(crate) worker: WorkerHandle,
    pub(crate) answered: bool,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("id", &self.id)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// Sends the answer. Fails with [`Error::AlreadyClosed`](crate::Error::AlreadyClosed)
    /// only if the loop is gone.
    pub fn respond(mut self, response: HttpResponse) -> Result<()> {
        self.answered = true;
        self.post(response)
    }

    /// The connection the request came on.
    pub fn id(&self) -> ConnId {
        self.id
    }

    fn post(&self, response: HttpResponse) -> Result<()> {
        self.worker.post(Command::HttpAnswer {
            id: self.id,
            seq: self.seq,
            response: Box::new(response),
        })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.post(HttpResponse::text(
                500,
                "the request was dropped unanswered\n",
            ));
        }
    }
}

/// Makes the responder for a request (the loop's side of `HttpRequest::defer`).
pub(crate) fn responder(id: ConnId, seq: u32, worker: &WorkerHandle) -> Responder {
    Responder {
        id,
        seq,
        worker: worker.clone(),
        answered: false,
    }
}
