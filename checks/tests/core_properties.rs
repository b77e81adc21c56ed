//! Property tests of the core's building blocks against simple references.

use proptest::prelude::*;
use silverback::proto::Utf8Validator;
use silverback::proto::{FrameHeader, OpCode};
use silverback::proto::{apply_mask, apply_mask_naive};

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any header encodes and decodes back to itself, and every truncation of it asks
    /// for more bytes.
    #[test]
    fn header_round_trip(
        fin in any::<bool>(),
        rsv in 0u8..8,
        op in opcode(),
        mask in proptest::option::of(any::<[u8; 4]>()),
        len in prop_oneof![0u64..=125, 126u64..=0xFFFF, 0x1_0000u64..=(u64::MAX >> 1)],
    ) {
        let h = FrameHeader { fin, rsv, opcode: op, mask, payload_len: len };
        let mut out = [0u8; 14];
        let n = h.encode(&mut out);
        prop_assert_eq!(FrameHeader::decode(&out[..n]), Ok(Some((h, n))));
        for i in 0..n {
            prop_assert_eq!(FrameHeader::decode(&out[..i]), Ok(None));
        }
    }

    /// Word-at-a-time masking equals the byte loop for every key, offset and length.
    #[test]
    fn mask_matches_reference(
        data in prop::collection::vec(any::<u8>(), 0..1000),
        key in any::<[u8; 4]>(),
        offset in 0usize..16,
        start in 0usize..40,
    ) {
        let start = start.min(data.len());
        let mut fast = data.clone();
        let mut slow = data.clone();
        // An unaligned sub-slice exercises every alignment.
        apply_mask(&mut fast[start..], key, offset);
        apply_mask_naive(&mut slow[start..], key, offset);
        prop_assert_eq!(fast, slow);
    }

    /// The streaming validator agrees with `std::str::from_utf8` under any split.
    #[test]
    fn utf8_agrees_with_std(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            any::<String>().prop_map(String::into_bytes),
            (any::<String>(), any::<u8>(), 0usize..64).prop_map(|(s, b, i)| {
                let mut v = s.into_bytes();
                let i = i.min(v.len());
                v.insert(i, b);
                v
            }),
        ],
        cuts in prop::collection::vec(0usize..64, 0..6),
    ) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort_unstable();
        let mut v = Utf8Validator::new();
        let mut prev = 0;
        let mut ok = true;
        for &c in cuts.iter().chain(std::iter::once(&data.len())) {
            if v.feed(&data[prev..c]).is_err() {
                ok = false;
                // Fail-fast: the prefix so far really cannot be valid UTF-8.
                let prefix = &data[..c];
                let err = std::str::from_utf8(prefix).unwrap_err();
                prop_assert!(err.error_len().is_some());
                break;
            }
            prev = c;
        }
        if ok {
            ok = v.finish().is_ok();
        }
        prop_assert_eq!(ok, std::str::from_utf8(&data).is_ok());
    }
}
