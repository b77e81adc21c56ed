//! Frame header decoding from arbitrary bytes: every length form, truncations.
//! Oracle: a decoded header re-encodes (minimal form) and decodes to itself; every
//! strict prefix of an encoding asks for more bytes.
//!
//! Input: the bytes of a header (and anything after it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use silverback::proto::{FrameHeader, MAX_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(Some((h, n))) = FrameHeader::decode(data) else {
        return;
    };
    assert!(n <= MAX_HEADER_LEN && n <= data.len());
    assert!(h.payload_len >> 63 == 0, "top bit of the length must be refused");
    assert!(h.rsv < 8);
    let mut out = [0u8; MAX_HEADER_LEN];
    let m = h.encode(&mut out);
    assert!(m <= n, "the minimal form is never longer than what was decoded");
    assert_eq!(m, h.encoded_len());
    assert_eq!(FrameHeader::decode(&out[..m]), Ok(Some((h, m))));
    for i in 0..m {
        assert_eq!(FrameHeader::decode(&out[..i]), Ok(None));
    }
});
