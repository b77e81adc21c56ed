//! Properties of the protocol core's decoder and encoder (proptest): round trips
//! between the roles through arbitrary chunking, and arbitrary input never panics.
//! (In this crate so that the main crate's examples do not build proptest.)

#[path = "../../tests/support/mod.rs"]
mod support;

use proptest::prelude::*;
use silverback::proto::CloseCode;
use silverback::proto::{Decoder, Encoder, OpCode, Role};
use support::*;

// ---- Properties ----

#[derive(Debug, Clone)]
enum Item {
    Message {
        text: bool,
        fragments: Vec<Vec<u8>>,
        pings: Vec<usize>,
    },
    Ping(Vec<u8>),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        (
            any::<bool>(),
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..5),
            prop::collection::vec(0usize..5, 0..3)
        )
            .prop_map(|(text, fragments, pings)| {
                if text {
                    // Turn arbitrary bytes into valid UTF-8 text, then re-split it at
                    // the same byte lengths so code points straddle fragments.
                    let joined: String = fragments
                        .iter()
                        .flatten()
                        .map(|b| char::from_u32(u32::from(*b) * 97).unwrap_or('é'))
                        .collect();
                    let bytes = joined.into_bytes();
                    let mut out = Vec::new();
                    let mut pos = 0;
                    for f in &fragments {
                        let end = (pos + f.len()).min(bytes.len());
                        out.push(bytes[pos..end].to_vec());
                        pos = end;
                    }
                    out.last_mut().unwrap().extend_from_slice(&bytes[pos..]);
                    Item::Message {
                        text: true,
                        fragments: out,
                        pings,
                    }
                } else {
                    Item::Message {
                        text: false,
                        fragments,
                        pings,
                    }
                }
            }),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Item::Ping),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever an encoder in one role writes, a decoder in the other role reads back
    /// unchanged, under any chunking and any whole-frame limit.
    #[test]
    fn encode_decode_round_trip(
        items in prop::collection::vec(item(), 0..8),
        client_sends in any::<bool>(),
        chunks in prop::collection::vec(1usize..200, 1..6),
        whole_max in 0usize..400,
    ) {
        let (tx_role, rx_role) = if client_sends { (Role::Client, Role::Server) } else { (Role::Server, Role::Client) };
        let mut enc = Encoder::new(tx_role);
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for it in &items {
            match it {
                Item::Ping(p) => {
                    enc.encode(OpCode::Ping, true, p, &mut wire).unwrap();
                    expected.push(Msg::Ping(p.clone()));
                }
                Item::Message { text, fragments, pings } => {
                    let n = fragments.len();
                    let mut all = Vec::new();
                    for (i, f) in fragments.iter().enumerate() {
                        let op = if i > 0 { OpCode::Continuation } else if *text { OpCode::Text } else { OpCode::Binary };
                        enc.encode(op, i + 1 == n, f, &mut wire).unwrap();
                        all.extend_from_slice(f);
                        if pings.contains(&i) && i + 1 < n {
                            enc.encode(OpCode::Pong, true, b"mid", &mut wire).unwrap();
                            expected.push(Msg::Pong(b"mid".to_vec()));
                        }
                    }
                    expected.push(if *text { Msg::Text(all) } else { Msg::Binary(all) });
                }
            }
        }
        enc.encode_close(Some((CloseCode::NORMAL, "bye")), &mut wire).unwrap();
        expected.push(Msg::Close(Some((1000, "bye".into()))));

        let mut dec = Decoder::new(rx_role);
        dec.set_whole_frame_max(whole_max);
        let (events, err) = drive(&mut dec, &wire, &chunks);
        prop_assert!(err.is_none(), "{:?}", err);
        // Pongs interleaved mid-message come out before the message completes.
        let mut got = assemble(&events);
        let mut want = expected.clone();
        got.sort_by_key(|m| format!("{m:?}"));
        want.sort_by_key(|m| format!("{m:?}"));
        prop_assert_eq!(got, want);
    }

    /// Arbitrary bytes never panic either decoder, and once it fails it stays failed.
    #[test]
    fn arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600), chunk in 1usize..64, server in any::<bool>()) {
        let mut d = Decoder::new(if server { Role::Server } else { Role::Client });
        d.set_max_message_size(256);
        let (events, err) = drive(&mut d, &bytes, &[chunk]);
        for e in &events {
            if let Ev::Data { payload, .. } = e {
                prop_assert!(payload.len() <= 256);
            }
        }
        if err.is_some() {
            prop_assert!(d.is_failed());
        }
    }
}
