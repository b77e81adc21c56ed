//! The `json` feature: gorilla's WriteJSON / ReadJSON in both IO layers. A value
//! that cannot be serialized is an error before anything is sent; a message that
//! is not the JSON expected is an error for the caller, and the connection stays
//! open.
#![cfg(feature = "json")]

mod support;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use silverback::event::{Ctx, Handler, MessageRef, Prepared, Server};
use silverback::{Conn, Dialer, Error, Message, MessageKind, Upgrader};
use support::serve;

const T: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    title: String,
    tags: Vec<String>,
}

fn note() -> Note {
    Note {
        title: "héllo".into(),
        tags: vec!["a".into(), "b".into()],
    }
}

/// A map with non-string keys: serde_json refuses to serialize it.
fn unserializable() -> HashMap<(u8, u8), u8> {
    HashMap::from([((1, 2), 3)])
}

fn pair() -> (Conn<std::net::TcpStream>, mpsc::Receiver<Vec<Message>>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = serve(move |s| {
        let mut conn = Upgrader::new().upgrade(s).unwrap();
        conn.set_read_deadline(Some(Instant::now() + T));
        let mut got = Vec::new();
        while let Ok(m) = conn.read_message() {
            got.push(m.clone());
            let _ = conn.send(&m);
        }
        tx.lock().unwrap().send(got).unwrap();
    });
    let (mut c, _) = Dialer::new().dial(&format!("ws://{addr}/")).unwrap();
    c.set_read_deadline(Some(Instant::now() + T));
    (c, rx)
}

#[test]
fn blocking_write_json_and_read_json_round_trip() {
    let (mut c, done) = pair();
    c.write_json(&note()).unwrap();
    let back: Note = c.read_json().unwrap();
    assert_eq!(back, note());
    // Message::json reads the same payload.
    c.write_json(&[1, 2, 3]).unwrap();
    let m = c.read_message().unwrap();
    assert_eq!(m.kind(), MessageKind::Text);
    assert_eq!(m.json::<Vec<u32>>().unwrap(), vec![1, 2, 3]);
    c.close(silverback::CloseCode::NORMAL, "").unwrap();
    let got = done.recv_timeout(T).unwrap();
    assert_eq!(
        got[0],
        Message::Text(r#"{"title":"héllo","tags":["a","b"]}"#.into())
    );
}

#[test]
fn a_value_that_cannot_be_serialized_sends_nothing() {
    let (mut c, done) = pair();
    let r = c.write_json(&unserializable());
    assert!(matches!(r, Err(Error::Json(_))), "{r:?}");
    assert!(!r.unwrap_err().is_terminal());
    c.write_json(&"after").unwrap();
    assert_eq!(c.read_json::<String>().unwrap(), "after");
    c.close(silverback::CloseCode::NORMAL, "").unwrap();
    let got = done.recv_timeout(T).unwrap();
    assert_eq!(
        got,
        vec![Message::Text("\"after\"".into())],
        "only the second"
    );
}

#[test]
fn malformed_json_from_the_peer_is_an_error_and_the_connection_stays_open() {
    let (mut c, _done) = pair();
    c.write_message(MessageKind::Text, b"{not json").unwrap();
    let r = c.read_json::<Note>();
    assert!(matches!(r, Err(Error::Json(_))), "{r:?}");
    // Valid JSON of the wrong shape is the same kind of error.
    c.write_message(MessageKind::Text, b"[1, 2]").unwrap();
    assert!(matches!(c.read_json::<Note>(), Err(Error::Json(_))));
    // The connection is still fine.
    c.write_json(&note()).unwrap();
    assert_eq!(c.read_json::<Note>().unwrap(), note());
}

struct JsonEcho;

impl Handler for JsonEcho {
    type Data = ();
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        match msg.json::<Note>() {
            Ok(mut n) => {
                n.tags.push("seen".into());
                ctx.send_json(&n).unwrap();
                // The sender and a prepared message, from the same callback.
                ctx.sender().send_json(&"via sender").unwrap();
                ctx.send_prepared(&Prepared::json(&42).unwrap()).unwrap();
            }
            Err(e) => {
                assert!(matches!(e, Error::Json(_)));
                assert!(ctx.send_json(&unserializable()).is_err());
                ctx.send_json(&"not a note").unwrap();
            }
        }
    }
}

#[test]
fn event_loop_send_json_message_json_sender_and_prepared() {
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .build(|_| JsonEcho)
        .unwrap();
    let addr = server.local_addr();
    let (handle, _) = server.spawn().unwrap();
    let (mut c, _) = Dialer::new().dial(&format!("ws://{addr}/")).unwrap();
    c.set_read_deadline(Some(Instant::now() + T));
    c.write_json(&note()).unwrap();
    let mut back: Note = c.read_json().unwrap();
    assert_eq!(back.tags.pop().as_deref(), Some("seen"));
    assert_eq!(back, note());
    let mut rest = vec![c.read_message().unwrap(), c.read_message().unwrap()];
    rest.sort_by_key(|m| m.as_bytes().to_vec());
    assert_eq!(
        rest,
        vec![
            Message::Text("\"via sender\"".into()),
            Message::Text("42".into())
        ]
    );
    // Malformed JSON reaches the handler as an error; the connection stays open.
    c.write_message(MessageKind::Text, b"{oops").unwrap();
    assert_eq!(c.read_json::<String>().unwrap(), "not a note");
    c.write_json(&note()).unwrap();
    assert!(c.read_json::<Note>().is_ok());
    handle.shutdown(Duration::ZERO);
}
