//! The prober's lenient frame reader (`proto::raw`) on arbitrary bytes: what a
//! server under test sends is read with it.
//! Oracle: never a panic or an allocation beyond the input; a frame read back
//! encodes to exactly the bytes it was read from (any opcode, RSV bits, mask and
//! length form survive the round trip); every strict prefix of them asks for more.
//!
//! Input: bytes from a peer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silverback::proto::raw::RawFrame;

fuzz_target!(|data: &[u8]| {
    let Some((f, n)) = RawFrame::parse(data) else {
        return;
    };
    assert!(n <= data.len());
    assert_eq!(f.encode(), &data[..n]);
    for i in [0, 1, n / 2, n.saturating_sub(1)] {
        if i < n {
            assert!(RawFrame::parse(&data[..i]).is_none());
        }
    }
});
