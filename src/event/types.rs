//! Plain values passed between the loop and the application: the answer to an
//! upgrade request, how a message is delivered, a received message, and the plain
//! HTTP request and response of the HTTP hook.

use std::cell::Cell;
use std::net::SocketAddr;

use crate::proto::MessageKind;
use crate::proto::handshake::Request;

use super::id::ConnId;
use super::mailbox::WorkerHandle;
use super::responder::{Responder, responder};

/// The answer to an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Accept. `protocol: None` negotiates from the configured subprotocols;
    /// `headers` are added to the `101`.
    Accept {
        /// The subprotocol to select, or `None` to negotiate from the configuration.
        protocol: Option<String>,
        /// Extra response headers.
        headers: Vec<(String, String)>,
    },
    /// Refuse with an HTTP status and a plain-text body.
    Reject {
        /// HTTP status (400-599).
        status: u16,
        /// Response body.
        body: String,
    },
}

impl Decision {
    /// Accept with the configured subprotocol negotiation.
    pub fn accept() -> Decision {
        Decision::Accept {
            protocol: None,
            headers: Vec::new(),
        }
    }

    /// Refuse with `status` and `reason`.
    pub fn reject(status: u16, reason: impl Into<String>) -> Decision {
        Decision::Reject {
            status,
            body: reason.into(),
        }
    }
}

/// How a message is handed to the handler, chosen when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Collect the whole message and call [`Handler::on_message`](super::Handler::on_message) (a message that
    /// arrived in one frame is passed straight from the read buffer, no copy).
    Whole,
    /// Call [`Handler::on_chunk`](super::Handler::on_chunk) with each piece as it arrives and
    /// [`Handler::on_message_end`](super::Handler::on_message_end) at the end: any size in bounded memory.
    Stream,
}

/// A received message, borrowed from the loop's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRef<'a> {
    /// Text or binary.
    pub kind: MessageKind,
    /// The payload.
    pub data: &'a [u8],
}

impl<'a> MessageRef<'a> {
    /// The payload of a text message as `&str`. Text was validated as UTF-8 while it
    /// arrived; for a binary message this is `None` unless its bytes happen to be UTF-8.
    pub fn text(&self) -> Option<&'a str> {
        std::str::from_utf8(self.data).ok()
    }

    /// Parses the payload as JSON (gorilla's `ReadJSON`; the `json` feature). A
    /// payload that is not the JSON expected is [`Error::Json`](crate::Error::Json)
    /// for the handler to answer as it likes; the connection stays open.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Deserialize<'a>>(&self) -> crate::Result<T> {
        crate::json::decode(self.data)
    }
}

/// A plain HTTP request (not an upgrade) with its body.
///
/// Answer it by returning an [`HttpResponse`] from
/// [`on_http`](super::Handler::on_http), or, for work that must not hold up the
/// loop (a database, another service), [`defer`](Self::defer) it and answer from
/// another thread. Connections are kept alive between requests as the client asks
/// (HTTP/1.1 by default), so a client can send many requests on one connection.
#[derive(Debug)]
pub struct HttpRequest<'a> {
    /// The request head.
    pub head: &'a Request,
    /// The body (by `Content-Length`, at most [`LoopConfig::max_http_body`](super::LoopConfig::max_http_body)).
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
    /// within [`LoopConfig::http_answer_timeout`](super::LoopConfig::http_answer_timeout),
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

/// A response to a plain HTTP request. The connection stays open for the client's
/// next request if it asked for that (HTTP/1.1 unless `Connection: close`) and the
/// response has no `Connection: close` header of its own; otherwise it closes once
/// the response is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header fields (`Content-Length` and `Connection` are added).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a body of the given content type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// `text/plain; charset=utf-8`.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body.into())
    }

    /// `application/json`.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "application/json", body.into())
    }

    /// `text/html; charset=utf-8`.
    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/html; charset=utf-8", body.into())
    }

    /// The default answer to a request that is not a WebSocket upgrade: 426 with
    /// `Upgrade: websocket`.
    pub fn upgrade_required() -> Self {
        let mut r = Self::text(426, "this endpoint speaks WebSocket only\n");
        r.headers.push(("Upgrade".into(), "websocket".into()));
        r.headers
            .push(("Sec-WebSocket-Version".into(), "13".into()));
        r
    }

    /// The placeholder `on_http` returns after [`HttpRequest::defer`]: it is never
    /// sent (the responder's answer is).
    pub fn deferred() -> Self {
        Self::text(500, "deferred\n")
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}
