//! Word-at-a-time masking, differential against the byte loop, for every key,
//! offset, alignment and split.
//!
//! Input: `[key; 4, offset, start, split]` then the payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silverback::proto::{apply_mask, apply_mask_naive};

fuzz_target!(|data: &[u8]| {
    let [k0, k1, k2, k3, offset, start, split, payload @ ..] = data else {
        return;
    };
    let key = [*k0, *k1, *k2, *k3];
    let offset = usize::from(*offset);
    let start = usize::from(*start).min(payload.len());
    let mut fast = payload.to_vec();
    let mut slow = payload.to_vec();
    apply_mask(&mut fast[start..], key, offset);
    apply_mask_naive(&mut slow[start..], key, offset);
    assert_eq!(fast, slow);
    let mut parts = payload.to_vec();
    let body = &mut parts[start..];
    let split = usize::from(*split).min(body.len());
    let (a, b) = body.split_at_mut(split);
    apply_mask(a, key, offset);
    apply_mask(b, key, offset + split);
    assert_eq!(parts, slow);
});
