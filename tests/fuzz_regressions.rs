//! Every input a fuzz target crashed on, as a test (the raw inputs are also kept in
//! fuzz/regressions/TARGET and replayed by fuzz/run.sh).

mod support;

use std::io::Write;

use silverback::Settings;
use silverback::{Conn, Error, MessageKind, Role, UsageError};
use support::*;

/// blocking_conn, 2026-11-25: a streamed text message that stopped inside a code
/// point (a lone 0xC9 lead byte, with a 0-byte write buffer) was sent as-is, so the
/// peer got invalid UTF-8. Now text fragments end on code points and `close` drops
/// an incomplete tail and reports it; the wire is always valid.
#[test]
fn text_stream_ending_inside_a_code_point_stays_valid_on_the_wire() {
    for (pieces, expect) in [
        (&[&[0xC9u8][..]][..], &b""[..]),
        (&[&[61u8, 201][..]][..], &b"="[..]),
        (&[&b"a"[..], &"é".as_bytes()[..1], &b""[..]][..], &b"a"[..]),
        (
            &[&"aé".as_bytes()[..2], &"é".as_bytes()[1..], &[0xF0u8][..]][..],
            "aé".as_bytes(),
        ),
    ] {
        for write_buffer in [0, 1, 2, 3, 5, 4096] {
            let mut cfg = Settings::default();
            cfg.write_buffer_size = write_buffer;
            let mut conn =
                Conn::from_raw(MemStream::new(Vec::new()), Role::Client, &cfg, &[], None);
            let mut w = conn.next_writer(MessageKind::Text).unwrap();
            for p in pieces {
                w.write_all(p).unwrap();
            }
            let r = w.close();
            assert!(
                matches!(r, Err(Error::Usage(UsageError::InvalidUtf8))),
                "{pieces:?} with buffer {write_buffer}: {r:?}"
            );
            let out = std::mem::take(&mut conn.get_mut().out);
            let mut dec = silverback::proto::Decoder::new(Role::Server);
            let (events, err) = drive(&mut dec, &out, &[]);
            assert!(
                err.is_none(),
                "{pieces:?} with buffer {write_buffer}: {err:?}"
            );
            assert_eq!(assemble(&events), vec![Msg::Text(expect.to_vec())]);
        }
    }
}

/// blocking_conn, 2026-11-25 (10-minute run): a text stream got `[0xDE]`, then a
/// refused write `[0x9D, 0xFF]`; the validator had consumed 0x9D before failing, so
/// it thought the code point complete and the lone 0xDE went out on close. A failed
/// feed now leaves the validator unchanged.
#[test]
fn a_refused_text_write_does_not_desynchronise_the_validator() {
    for role in [Role::Server, Role::Client] {
        let mut cfg = Settings::default();
        cfg.write_buffer_size = 0;
        let mut conn = Conn::from_raw(MemStream::new(Vec::new()), role, &cfg, &[], None);
        let mut w = conn.next_writer(MessageKind::Text).unwrap();
        w.write_all(&[0xDE]).unwrap();
        assert!(w.write_all(&[0x9D, 0xFF]).is_err());
        assert!(matches!(
            w.close(),
            Err(Error::Usage(UsageError::InvalidUtf8))
        ));
        let out = std::mem::take(&mut conn.get_mut().out);
        let peer = if role == Role::Server {
            Role::Client
        } else {
            Role::Server
        };
        let mut dec = silverback::proto::Decoder::new(peer);
        let (events, err) = drive(&mut dec, &out, &[]);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(assemble(&events), vec![Msg::Text(Vec::new())]);
    }
}
