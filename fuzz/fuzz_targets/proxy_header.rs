//! The PROXY protocol parser (`proto::proxy`) on arbitrary input. Oracles: no
//! panic; a header never takes more bytes than it was given nor more than the
//! protocol's bound (107 for version 1, 16 + 65,535 for version 2); the verdict on
//! the whole input agrees with the verdict on every prefix (a prefix of a parsed
//! header is incomplete; a prefix of a refused input is refused or incomplete,
//! never parsed differently); a parsed header parses the same with any bytes after
//! it; `detect` agrees with `parse` on whether input can start a header; a header
//! with IP addresses reports both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silverback::proto::proxy::{Detect, Parsed, V1_MAX, V2_MAX, detect, parse};

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    match detect(data) {
        Detect::NotProxy => assert!(whole.is_err()),
        Detect::Undecided => assert_eq!(whole, Ok(Parsed::Incomplete { need: None })),
        Detect::Proxy => {}
    }
    if let Ok(Parsed::Done(h, used)) = whole {
        assert!(used <= data.len());
        let bound = if h.version == 1 { V1_MAX } else { V2_MAX };
        assert!(used <= bound, "header of {used} bytes");
        assert_eq!(h.source().is_some(), h.destination().is_some());
        // The bytes after the header do not matter.
        assert_eq!(parse(&data[..used]), whole);
        let mut more = data[..used].to_vec();
        more.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(parse(&more), whole);
        for i in 0..used {
            assert!(
                matches!(parse(&data[..i]), Ok(Parsed::Incomplete { .. })),
                "prefix {i} of a {used}-byte header"
            );
        }
    }
    if let Ok(Parsed::Incomplete { need: Some(n) }) = whole {
        assert!(n > data.len() && n <= V2_MAX);
    }
    // A prefix never parses to a header the whole input does not start with.
    for i in [data.len() / 2, data.len().saturating_sub(1)] {
        if let Ok(Parsed::Done(h, used)) = parse(&data[..i]) {
            assert_eq!(whole, Ok(Parsed::Done(h, used)));
        }
    }
});
