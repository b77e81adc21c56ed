//! Answering a plain HTTP request later, from any thread: the [`Responder`] a
//! handler gets from [`HttpRequest::defer`](super::HttpRequest::defer).
//!
//! The HTTP hook runs on the loop thread; work that may block (a database, another
//! service) must not run there, or every connection of the loop waits with it. The
//! handler defers the request, hands the `Responder` to a worker thread, and
//! returns; the loop keeps serving everyone else. The worker's answer comes back
//! through the loop's mailbox like a [`Sender`](super::Sender)'s message.

use crate::error::Result;

use super::id::ConnId;
use super::mailbox::{Command, WorkerHandle};
use super::types::HttpResponse;

/// The pending answer to one deferred HTTP request: [`respond`](Self::respond) once,
/// from any thread (`Send`). Dropped without an answer, it answers
/// `500 Internal Server Error` so the client is never left waiting; a request that
/// gets no answer within [`LoopConfig::http_answer_timeout`](super::LoopConfig::http_answer_timeout)
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
