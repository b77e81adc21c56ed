// Shared by the byte-oriented targets: a fixed-size config prefix, then raw input,
// so seed files are readable (prefix + an RFC frame or a real HTTP head).

/// Piece sizes for splitting input: a deterministic sequence from one seed byte
/// (0 means one piece).
pub fn pieces(seed: u8, len: usize) -> Vec<usize> {
    let mut cuts = Vec::new();
    if seed == 0 {
        return vec![len];
    }
    let mut x = u32::from(seed);
    let mut pos = 0;
    while pos < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let step = 1 + (x >> 16) as usize % (usize::from(seed) + 1);
        pos = (pos + step).min(len);
        cuts.push(pos);
    }
    cuts
}
