//! The server side of a connection before it opens: the request head through
//! [`ServerHandshake`] (checks, the handler's decision, the `101`), and plain HTTP
//! requests on the same port for the handler's HTTP hook.

use crate::error::HandshakeError;
use crate::proto::handshake::{Request, ServerHandshake, write_http_answer, write_http_response};

use crate::event::api::ctx::LoopCtx;
use crate::event::api::handler::Handler;
use crate::event::api::id::ConnId;
use crate::event::api::responder::HttpRequest;
use crate::event::api::response::HttpResponse;
use crate::event::api::types::Decision;
use crate::event::conn::{Outbox, Phase, write_through};
use crate::event::reactor::worker::{Parts, Worker};

/// What the request head turned out to be.
enum Head {
    NeedMore,
    Bad(HandshakeError),
    Plain(Request, usize),
    Upgrade(Request, usize),
}

impl<H: Handler> Worker<H> {
    /// Answers with a plain HTTP response (or a refusal) and closes once it is sent.
    fn http_answer(&mut self, slot: usize, bytes: Vec<u8>) {
        if let Some(Parts { conn: c, core, .. }) = self.parts(slot) {
            c.io.answer(&mut core.shared, bytes, false);
            c.discard_pending();
        }
    }

    fn http_error(&mut self, slot: usize, e: &HandshakeError) {
        let status = match e.status() {
            0 => 400,
            s => s,
        };
        self.core.shared.stats.refuse(status);
        if let Some(c) = self.slots.get(slot).and_then(Option::as_ref) {
            crate::logging::info!("{}: refused {} ({status}): {e}", c.io.id, c.io.peer());
        }
        let mut out = Vec::new();
        ServerHandshake::reject(e, &mut out);
        self.http_answer(slot, out);
    }

    /// Reads the request head. Returns true if the phase changed and processing
    /// should continue with the rest of the input.
    pub(crate) fn server_handshake(&mut self, slot: usize) -> bool {
        let head = {
            let Some(c) = self.slots[slot].as_ref() else {
                return false;
            };
            let Phase::Request(hs) = &c.io.phase else {
                return false;
            };
            match hs.parse(c.pending()) {
                Ok(None) => Head::NeedMore,
                Err(e) => Head::Bad(e),
                Ok(Some((req, n))) if !req.is_websocket_upgrade() => Head::Plain(req, n),
                Ok(Some((req, n))) => match hs.check(&req) {
                    Ok(()) => Head::Upgrade(req, n),
                    Err(e) => Head::Bad(e),
                },
            }
        };
        match head {
            Head::NeedMore => false,
            Head::Bad(e) => {
                self.http_error(slot, &e);
                false
            }
            Head::Plain(req, n) => self.plain_http(slot, req, n),
            Head::Upgrade(req, n) => self.decide(slot, req, n),
        }
    }

    /// The handler accepts or refuses a valid upgrade request.
    fn decide(&mut self, slot: usize, req: Request, head_len: usize) -> bool {
        let Some(Parts {
            conn: c,
            core,
            handler,
            ..
        }) = self.parts(slot)
        else {
            return false;
        };
        match handler.on_request(&req, &mut c.data, c.io.peer()) {
            Decision::Reject { status, body } => {
                core.shared.stats.refuse(status);
                crate::logging::info!(
                    "{}: refused {} ({status}) by the handler",
                    c.io.id,
                    c.io.peer()
                );
                let mut out = Vec::new();
                ServerHandshake::refuse(status, &body, &mut out);
                self.http_answer(slot, out);
                false
            }
            Decision::Accept { protocol, headers } => {
                let phase = std::mem::replace(
                    &mut c.io.phase,
                    Phase::Answer {
                        out: Outbox::default(),
                        deadline: None,
                        keep_alive: false,
                    },
                );
                let Phase::Request(hs) = phase else {
                    c.io.phase = phase;
                    return false;
                };
                let protocol = protocol.or_else(|| hs.select_protocol(&req).map(str::to_owned));
                // The 101 goes out at once from the loop's scratch buffer; only what
                // the socket does not take is queued in the connection, so an idle
                // connection holds no transmit buffer.
                let response = &mut core.shared.scratch;
                response.clear();
                let mut conn =
                    hs.accept_into(&req, protocol.as_deref(), &headers, core.now, response);
                let written =
                    c.io.sock
                        .as_mut()
                        .map_or(0, |s| write_through(s, response, &[]));
                if written < response.len() {
                    conn.requeue_front(&response[written..]);
                    c.io.mark_dirty(&mut core.shared);
                }
                c.io.phase = Phase::Open(conn);
                c.consume(head_len);
                self.open(slot);
                true
            }
        }
    }

    /// The connection is a WebSocket now: `on_open`.
    pub(crate) fn open(&mut self, slot: usize) {
        let Some(mut p) = self.parts(slot) else {
            return;
        };
        p.core.count_open(true);
        let now = p.core.now;
        let session = p.conn.io.cold.as_mut().and_then(|c| c.session.as_mut());
        let reconnecting = session.is_some();
        if let Some(s) = session {
            s.opened_at = Some(now);
            if s.ever_opened {
                s.reconnects += 1;
            }
            s.ever_opened = true;
        }
        p.call(|h, ctx| h.on_open(ctx));
        if reconnecting {
            // What was sent while away goes out behind what `on_open` sent
            // (a resubscription first).
            p.conn.io.after_message(&mut p.core.shared);
            p.conn.io.mark_dirty(&mut p.core.shared);
        }
    }

    /// A plain HTTP request: wait for its body, then ask the handler.
    fn plain_http(&mut self, slot: usize, req: Request, head_len: usize) -> bool {
        let body_len = match req
            .header("Content-Length")
            .map(|v| v.trim().parse::<usize>())
        {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                let e = HandshakeError::MalformedHttp("bad Content-Length".into());
                self.http_error(slot, &e);
                return false;
            }
        };
        if req.header("Transfer-Encoding").is_some() {
            let mut out = Vec::new();
            write_http_response(411, &[], b"chunked bodies are not supported\n", &mut out);
            self.http_answer(slot, out);
            return false;
        }
        if body_len > self.config().max_http_body {
            let mut out = Vec::new();
            write_http_response(413, &[], b"body too large\n", &mut out);
            self.http_answer(slot, out);
            return false;
        }
        if let Some(c) = self.slots[slot].as_mut() {
            let deadline = c.io.next_deadline();
            c.io.phase = Phase::HttpBody {
                head: Box::new(req),
                head_len,
                body_len,
                deadline,
            };
        }
        true
    }

    /// The body of a plain HTTP request has arrived: the handler answers it, now or
    /// (deferred) later from another thread.
    pub(crate) fn http_body(&mut self, slot: usize) -> bool {
        let Some(Parts {
            conn: c,
            core,
            handler,
            ..
        }) = self.parts(slot)
        else {
            return false;
        };
        let Phase::HttpBody {
            head,
            head_len,
            body_len,
            ..
        } = &c.io.phase
        else {
            return false;
        };
        let (head_len, body_len) = (*head_len, *body_len);
        let pending = c.pending();
        if pending.len() < head_len + body_len {
            return false;
        }
        core.next_http_seq = core.next_http_seq.wrapping_add(1);
        let seq = core.next_http_seq;
        let req = HttpRequest {
            head,
            body: &pending[head_len..head_len + body_len],
            peer: c.io.peer(),
            id: c.io.id,
            seq,
            worker: core.me.clone(),
            deferred: Default::default(),
        };
        let wants_keep_alive = head.wants_keep_alive() && core.shared.config.http_keep_alive;
        let resp = handler.on_http(&req, &mut LoopCtx { core });
        let deferred = req.deferred.get();
        // The request is consumed; what follows it is the client's next request.
        c.consume(head_len + body_len);
        if deferred {
            // The clock is read here, not taken from the iteration: the request
            // may have arrived after the iteration began (a keep-alive client's
            // next request, read in the same iteration that answered the last),
            // and its answer is owed a full `http_answer_timeout` from then. (Seen
            // under qemu, where an iteration lasts long enough to matter.)
            let deadline = std::time::Instant::now() + core.shared.config.http_answer_timeout;
            c.io.phase = Phase::Deferred {
                seq,
                keep_alive: wants_keep_alive,
                deadline,
            };
            return false;
        }
        self.send_http(slot, &resp, wants_keep_alive);
        false
    }

    /// Writes a response to a plain HTTP request; the connection stays open for the
    /// next request if the client asked for that and the response does not refuse it.
    pub(crate) fn send_http(&mut self, slot: usize, resp: &HttpResponse, wants_keep_alive: bool) {
        let keep_alive = wants_keep_alive
            && !resp.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close")
            });
        let headers: Vec<(&str, &str)> = resp
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("connection"))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let mut out = Vec::with_capacity(128 + resp.body.len());
        write_http_answer(resp.status, &headers, &resp.body, keep_alive, &mut out);
        if let Some(Parts { conn: c, core, .. }) = self.parts(slot) {
            c.io.answer(&mut core.shared, out, keep_alive);
            if !keep_alive {
                c.discard_pending();
            }
        }
    }

    /// The answer to a deferred request arrived from its [`Responder`](crate::event::Responder)
    /// (or the loop gave up waiting: 504). An answer for a request no longer waited
    /// for (the client went, or it timed out) is dropped.
    pub(crate) fn deferred_answer(&mut self, id: ConnId, seq: u32, resp: &HttpResponse) {
        let Some(slot) = self.live_slot(id) else {
            return;
        };
        let keep_alive = match self.slots[slot].as_ref().map(|c| &c.io.phase) {
            Some(Phase::Deferred {
                seq: s, keep_alive, ..
            }) if *s == seq => *keep_alive,
            _ => return,
        };
        self.send_http(slot, resp, keep_alive);
        self.finalize(slot);
    }
}
