//! The event loop's plain-HTTP hook: connections kept alive between requests (and
//! pipelined requests answered in order), and requests deferred to another thread
//! and answered later while the loop keeps serving WebSocket traffic.

#[path = "../examples/common/http.rs"]
mod http;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use http::HttpConn;
use silverback::event::{
    Ctx, Handler, HttpRequest, HttpResponse, LoopCtx, MessageRef, Responder, Server, ServerHandle,
};
use silverback::{Dialer, MessageKind};

const T: Duration = Duration::from_secs(10);

/// `/n` answers the request count of the loop; `/slow?ms=N` is deferred to a
/// thread that answers after N ms; `/drop` is deferred and the responder dropped;
/// `/never` is deferred and never answered; `/close` asks to close. WebSocket
/// messages are echoed.
struct Hook {
    n: u32,
    parked: mpsc::Sender<Responder>,
}

impl Handler for Hook {
    type Data = ();
    fn on_http(&mut self, req: &HttpRequest<'_>, _: &mut LoopCtx<'_, ()>) -> HttpResponse {
        self.n += 1;
        match req.head.path() {
            "/n" => HttpResponse::text(
                200,
                format!("{} {}", self.n, String::from_utf8_lossy(req.body)),
            ),
            "/slow" => {
                let ms: u64 = req
                    .head
                    .query_param("ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let r = req.defer();
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(ms));
                    let _ = r.respond(HttpResponse::text(200, format!("slow {ms}")));
                });
                HttpResponse::deferred()
            }
            "/drop" => {
                drop(req.defer());
                HttpResponse::deferred()
            }
            "/never" => {
                let _ = self.parked.send(req.defer());
                HttpResponse::deferred()
            }
            "/close" => HttpResponse::text(200, "bye").header("Connection", "close"),
            _ => HttpResponse::text(404, "no"),
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let _ = ctx.send(msg.kind, msg.data);
    }
}

fn server(answer_timeout: Duration) -> (ServerHandle, mpsc::Receiver<Responder>) {
    let (tx, rx) = mpsc::channel();
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .http_answer_timeout(answer_timeout)
        .build(move |_| Hook {
            n: 0,
            parked: tx.clone(),
        })
        .unwrap();
    (server.spawn().unwrap().0, rx)
}

#[test]
fn http_11_connections_are_kept_alive_and_pipelined_requests_answered_in_order() {
    let (s, _parked) = server(T);
    let mut c = HttpConn::new(s.local_addr(), T);
    for i in 1..=5 {
        let a = c
            .request("POST", "/n", format!("req{i}").as_bytes())
            .unwrap();
        assert_eq!((a.status, a.text()), (200, format!("{i} req{i}")));
        assert!(a.keep_alive && c.is_connected(), "kept alive after {i}");
    }
    // Three requests in one write: three answers, in order, on the same connection.
    let mut pipelined = Vec::new();
    for i in 6..=8 {
        pipelined.extend_from_slice(
            format!(
                "POST /n HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n{}",
                i % 10
            )
            .as_bytes(),
        );
    }
    c.send_raw(&pipelined).unwrap();
    for i in 6..=8 {
        let a = c.read_answer().unwrap();
        assert_eq!(a.text(), format!("{i} {}", i % 10));
    }
    // The response asks to close: the connection closes after it.
    let a = c.request("GET", "/close", b"").unwrap();
    assert_eq!((a.status, a.keep_alive), (200, false));
    assert!(!c.is_connected());
    // The client asks to close, or speaks HTTP/1.0: closed after the answer.
    let mut raw = TcpStream::connect(s.local_addr()).unwrap();
    raw.write_all(b"GET /n HTTP/1.0\r\n\r\n").unwrap();
    let mut all = String::new();
    raw.set_read_timeout(Some(T)).unwrap();
    std::io::Read::read_to_string(&mut raw, &mut all).unwrap();
    assert!(
        all.starts_with("HTTP/1.1 200") && all.contains("Connection: close"),
        "{all}"
    );
}

#[test]
fn a_deferred_request_is_answered_later_while_the_loop_serves_websockets() {
    let (s, _parked) = server(T);
    let addr = s.local_addr();
    let (mut ws, _) = Dialer::new().dial(&format!("ws://{addr}/")).unwrap();
    ws.set_read_deadline(Some(Instant::now() + T));
    let slow = thread::spawn(move || {
        let mut c = HttpConn::new(addr, T);
        let started = Instant::now();
        let a = c.request("GET", "/slow?ms=600", b"").unwrap();
        // Kept alive after a deferred answer, too.
        let b = c.request("POST", "/n", b"after").unwrap();
        (a, b, started.elapsed())
    });
    // While the request waits for its worker, the loop echoes at once.
    thread::sleep(Duration::from_millis(100));
    for i in 0..5 {
        let t = Instant::now();
        ws.write_message(MessageKind::Text, format!("m{i}").as_bytes())
            .unwrap();
        assert_eq!(
            ws.read_message().unwrap().as_bytes(),
            format!("m{i}").as_bytes()
        );
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "echo took {:?}",
            t.elapsed()
        );
    }
    let (a, b, took) = slow.join().unwrap();
    assert_eq!((a.status, a.text()), (200, "slow 600".to_owned()));
    assert!(took >= Duration::from_millis(600));
    assert_eq!(b.status, 200);
    assert!(b.text().ends_with(" after"), "{b:?}");
}

#[test]
fn a_dropped_responder_answers_500_and_a_missing_answer_504() {
    let (s, parked) = server(Duration::from_millis(300));
    let mut c = HttpConn::new(s.local_addr(), T);
    let a = c.request("GET", "/drop", b"").unwrap();
    assert_eq!(a.status, 500);
    // No answer within the timeout: 504 from the loop.
    let t = Instant::now();
    let a = c.request("GET", "/never", b"").unwrap();
    assert_eq!(a.status, 504);
    assert!(t.elapsed() >= Duration::from_millis(300));
    // The late answer arrives after the 504: it must not be taken for the answer
    // of the next request on a connection.
    let late = parked.recv_timeout(T).unwrap();
    let mut c2 = HttpConn::new(s.local_addr(), T);
    let a = c2.request("POST", "/n", b"x").unwrap();
    late.respond(HttpResponse::text(200, "late")).unwrap();
    assert_eq!(a.status, 200);
    let b = c2.request("POST", "/n", b"y").unwrap();
    assert!(b.text().ends_with(" y"), "{b:?}");
}
