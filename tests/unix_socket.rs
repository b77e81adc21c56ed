//! Unix domain sockets in the event loop: one server listening on TCP and on a
//! socket file, reached by the loop's client (`ws+unix://`) and the blocking
//! `Dialer::dial_unix`; the file refused when it exists and removed when the
//! server ends; `wss+unix://` with the `tls` feature.
#![cfg(unix)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use silverback::event::{Client, Ctx, Handler, MessageRef, Server};
use silverback::{CloseCode, Dialer, Message, MessageKind};
use support::Greeter;

fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sb-{}-{name}.sock", std::process::id()))
}

/// `ws+unix://` (or `wss+unix://`) for `path`, request target `/chat`.
fn unix_url(scheme: &str, path: &Path) -> String {
    let encoded = path
        .to_str()
        .unwrap()
        .replace('%', "%25")
        .replace('/', "%2F");
    format!("{scheme}://{encoded}/chat")
}

/// What a loop client saw: the greeting and the echo, per URL.
#[derive(Default)]
struct Seen(Vec<(usize, String)>);

struct Probe(Arc<Mutex<Seen>>);
impl Handler for Probe {
    type Data = usize;
    fn on_open(&mut self, ctx: &mut Ctx<'_, usize>) {
        let _ = ctx.send_text("over the socket");
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, usize>, msg: MessageRef<'_>) {
        let text = String::from_utf8_lossy(msg.data).into_owned();
        let done = text == "over the socket";
        self.0.lock().unwrap().0.push((*ctx.data(), text));
        if done {
            let _ = ctx.close(CloseCode::NORMAL, "");
        }
    }
}

fn loop_client(b: silverback::event::ClientBuilder, urls: &[String]) -> Vec<(usize, String)> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut c = b.build(Probe(seen.clone())).unwrap();
    for (i, u) in urls.iter().enumerate() {
        c.connect(u, i).unwrap();
    }
    let guard = c.handle();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        guard.shutdown(Duration::ZERO);
    });
    c.run().unwrap();
    drop(watchdog);
    let mut v = std::mem::take(&mut seen.lock().unwrap().0);
    v.sort();
    v
}

#[test]
fn one_server_on_tcp_and_a_unix_socket() {
    let path = socket_path("plain");
    let _ = std::fs::remove_file(&path);
    let (h, _) = Server::builder()
        .addr("127.0.0.1:0")
        .listen_unix(&path)
        .build(|_| Greeter)
        .unwrap()
        .spawn()
        .unwrap();
    assert!(path.exists());
    let tcp = format!("ws://{}/chat", h.local_addr());
    let unix = unix_url("ws+unix", &path);
    let seen = loop_client(Client::builder(), &[tcp, unix.clone()]);
    assert_eq!(seen.len(), 4, "{seen:?}");
    // Over TCP the greeting names a loopback address; over the socket 0.0.0.0:0.
    assert!(seen[0].1.starts_with("127.0.0.1:"), "{seen:?}");
    assert_eq!(seen[1], (0, "over the socket".into()));
    assert_eq!(seen[2], (1, "0.0.0.0:0".into()));
    assert_eq!(seen[3], (1, "over the socket".into()));

    // The blocking client too; dial() refuses the URL and points to dial_unix.
    let (mut c, _) = Dialer::new().dial_unix(&unix).unwrap();
    assert_eq!(c.read_message().unwrap(), Message::Text("0.0.0.0:0".into()));
    c.write_message(MessageKind::Binary, &[1, 2, 3]).unwrap();
    assert_eq!(c.read_message().unwrap(), Message::Binary(vec![1, 2, 3]));
    let e = Dialer::new().dial(&unix).unwrap_err();
    assert!(e.to_string().contains("dial_unix"), "{e}");

    // A second server cannot take the same path while it exists.
    let taken = Server::builder()
        .addr("127.0.0.1:0")
        .listen_unix(&path)
        .build(|_| Greeter);
    assert!(taken.is_err());
    // The file goes with the server.
    h.shutdown(Duration::ZERO);
    support::until(|| !path.exists(), "the socket file was removed");
}

#[test]
fn a_missing_socket_is_an_error_for_the_client() {
    let path = socket_path("missing");
    let _ = std::fs::remove_file(&path);
    let url = unix_url("ws+unix", &path);
    assert!(Dialer::new().dial_unix(&url).is_err());
    struct Errors(Arc<Mutex<Vec<String>>>);
    impl Handler for Errors {
        type Data = ();
        fn on_error(&mut self, _ctx: &mut Ctx<'_, ()>, err: &silverback::Error) {
            self.0.lock().unwrap().push(err.to_string());
        }
    }
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut c = Client::builder().build(Errors(errors.clone())).unwrap();
    c.connect(&url, ()).unwrap();
    c.run().unwrap();
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("No such file"), "{errors:?}");
}

#[cfg(feature = "tls")]
#[test]
fn wss_over_a_unix_socket() {
    use silverback::tls;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let server_cfg = tls::server_config(cert.as_bytes(), key.as_bytes()).unwrap();
    let client_cfg = tls::client_config(tls::roots_from_pem(cert.as_bytes()).unwrap());
    let path = socket_path("tls");
    let _ = std::fs::remove_file(&path);
    let (h, _) = Server::builder()
        .addr("127.0.0.1:0")
        .listen_unix_tls(&path, server_cfg)
        .build(|_| Greeter)
        .unwrap()
        .spawn()
        .unwrap();
    let seen = loop_client(
        Client::builder().tls(client_cfg),
        &[unix_url("wss+unix", &path)],
    );
    assert_eq!(
        seen,
        [(0, "0.0.0.0:0".into()), (0, "over the socket".into())]
    );
    h.shutdown(Duration::ZERO);
}

#[test]
fn the_echo_example_listens_on_a_unix_socket_too() {
    let path = socket_path("echo");
    let _ = std::fs::remove_file(&path);
    let (_echo, _) = support::run_example("echo", &["--quiet", "--unix", path.to_str().unwrap()]);
    support::until(|| path.exists(), "echo made its socket file");
    let url = unix_url("ws+unix", &path).replace("/chat", "/websocket");
    let (mut c, _) = Dialer::new().dial_unix(&url).unwrap();
    c.write_message(MessageKind::Text, b"local").unwrap();
    assert_eq!(c.read_message().unwrap(), Message::Text("local".into()));
    assert_eq!(
        c.read_message().unwrap(),
        Message::Text("..........".into())
    );
}
