//! The answer to a plain HTTP request of the HTTP hook: a plain value, sent by the
//! loop now or carried back by a [`Responder`](crate::event::Responder) later.

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

    /// The placeholder `on_http` returns after
    /// [`HttpRequest::defer`](crate::event::HttpRequest::defer): it is never
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
