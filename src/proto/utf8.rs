//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! Fails as soon as the bytes seen so far can no longer be the prefix of valid UTF-8
//! (RFC 6455 §8.1 asks to fail the connection on invalid text; Autobahn 6.4.x checks
//! that it happens *before* the rest of the message arrives). A code point split
//! across pieces is fine. Bulk validation is `std::str::from_utf8`, which rejects
//! overlong forms, surrogates and values above U+10FFFF at the earliest byte that
//! proves them; only the (at most 3-byte) incomplete tail is carried between pieces.

/// Streaming UTF-8 validator. Feed pieces with [`feed`](Self::feed), then call
/// [`finish`](Self::finish) at the end of the message.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// Bytes of an incomplete code point carried over from the previous piece.
    partial: [u8; 4],
    partial_len: u8,
}

/// The input is not (a prefix of) valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Number of bytes of the sequence a leading byte starts (0 for an invalid lead).
#[inline]
fn seq_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// True if the bytes fed so far end on a code point boundary.
    pub fn is_complete(&self) -> bool {
        self.partial_len == 0
    }

    /// Validates the next piece. Fails as soon as the bytes fed so far cannot be the
    /// prefix of valid UTF-8. On failure the validator is left as it was before the
    /// call, so a writer that refuses the piece stays in step with what it holds.
    #[inline]
    pub fn feed(&mut self, input: &[u8]) -> Result<(), InvalidUtf8> {
        let before = (self.partial, self.partial_len);
        let r = self.feed_inner(input);
        if r.is_err() {
            (self.partial, self.partial_len) = before;
        }
        r
    }

    #[inline]
    fn feed_inner(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len != 0 {
            input = self.complete_partial(input)?;
            if self.partial_len != 0 {
                // The piece ended inside the carried code point.
                return Ok(());
            }
        }
        match core::str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) => {
                if e.error_len().is_some() {
                    return Err(InvalidUtf8);
                }
                // Unexpected end of input: the tail is a valid but incomplete prefix.
                let tail = &input[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Completes the carried code point with bytes from `input`; returns the rest.
    fn complete_partial<'a>(&mut self, input: &'a [u8]) -> Result<&'a [u8], InvalidUtf8> {
        let have = usize::from(self.partial_len);
        let need = seq_len(self.partial[0]) - have;
        let take = need.min(input.len());
        self.partial[have..have + take].copy_from_slice(&input[..take]);
        let now = have + take;
        match core::str::from_utf8(&self.partial[..now]) {
            Ok(_) => self.partial_len = 0,
            Err(e) if e.error_len().is_none() => self.partial_len = now as u8,
            Err(_) => return Err(InvalidUtf8),
        }
        Ok(&input[take..])
    }

    /// Ends the message: fails if it stopped in the middle of a code point. Resets the
    /// validator for the next message either way.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.is_complete();
        self.partial_len = 0;
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }

    /// Forgets any carried state (start of a new message).
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }
}

/// For bytes that are a valid UTF-8 prefix (as a validator accepted them), the number
/// of trailing bytes that belong to an incomplete code point (0 to 3). Writers cut
/// text fragments before them, so a message can always end on a code point.
pub fn incomplete_tail_len(buf: &[u8]) -> usize {
    for back in 1..=buf.len().min(4) {
        let b = buf[buf.len() - back];
        if b & 0xC0 != 0x80 {
            // The last lead byte: its sequence is incomplete if it runs past the end.
            let need = seq_len(b);
            return if need > back { back } else { 0 };
        }
    }
    0
}

#[cfg(test)]
mod tests {
    #[test]
    fn incomplete_tails() {
        use super::incomplete_tail_len as t;
        assert_eq!(t(b""), 0);
        assert_eq!(t(b"abc"), 0);
        assert_eq!(t("aé".as_bytes()), 0);
        assert_eq!(t(&"aé".as_bytes()[..2]), 1);
        assert_eq!(t(&"𝄞".as_bytes()[..3]), 3);
        assert_eq!(t(&"𝄞".as_bytes()[..1]), 1);
        assert_eq!(t("𝄞".as_bytes()), 0);
    }

    use super::*;

    fn validate_split(bytes: &[u8], splits: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut prev = 0;
        for &s in splits {
            v.feed(&bytes[prev..s])?;
            prev = s;
        }
        v.feed(&bytes[prev..])?;
        v.finish()
    }

    #[test]
    fn multibyte_split_at_every_point() {
        let text = "κόσμε 𝄞 ascii \u{10FFFF} €".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert_eq!(validate_split(text, &[i, j]), Ok(()), "splits {i} {j}");
            }
        }
    }

    #[test]
    fn a_failed_feed_changes_nothing() {
        // Found by fuzz/blocking_conn: 0x9D completes the carried 0xDE, then 0xFF fails.
        let mut v = Utf8Validator::new();
        v.feed(&[0xDE]).unwrap();
        assert_eq!(v.feed(&[0x9D, 0xFF]), Err(InvalidUtf8));
        assert!(
            !v.is_complete(),
            "still waiting for the second byte of 0xDE"
        );
        v.feed(&[0x9D]).unwrap();
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn fails_fast_on_invalid_prefix() {
        // Autobahn 6.4.1's first fragment: "κόσμε" followed by 0xF4 0x90 (> U+10FFFF).
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed("κόσμε".as_bytes()), Ok(()));
        assert_eq!(v.feed(&[0xf4]), Ok(()));
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
    }

    #[test]
    fn rejects_surrogates_overlongs_and_truncation() {
        for bad in [
            &[0xed, 0xa0, 0x80][..],
            &[0xc0, 0xaf],
            &[0xe0, 0x80, 0xaf],
            &[0xf8, 0x88, 0x80, 0x80, 0x80],
            &[0xff],
        ] {
            for split in 0..=bad.len() {
                assert_eq!(validate_split(bad, &[split]), Err(InvalidUtf8), "{bad:x?}");
            }
        }
        assert_eq!(validate_split(&[0xe2, 0x82], &[1]), Err(InvalidUtf8));
    }
}
