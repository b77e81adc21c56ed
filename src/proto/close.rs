//! Close codes and close frame payloads (RFC 6455 §5.5.1, §7.4).

use super::error::{ProtocolError, UsageError};

use super::close_code::{CloseCode, MAX_CLOSE_REASON};

/// Parses a received close payload. An empty payload gives `None` (no status); a
/// 1-byte payload, a code not allowed on the wire, or a reason that is not UTF-8 is
/// a protocol error (§5.5.1, §7.4.1).
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<(CloseCode, &str)>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_allowed_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = core::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some((code, reason)))
        }
    }
}

/// Encodes a close payload into `out` (cleared first). `None` gives an empty payload.
/// Refuses codes that may not be sent and reasons longer than 123 bytes.
pub fn encode_close_payload(
    close: Option<(CloseCode, &str)>,
    out: &mut [u8; 125],
) -> Result<usize, UsageError> {
    let Some((code, reason)) = close else {
        return Ok(0);
    };
    if !code.is_allowed_on_wire() {
        return Err(UsageError::InvalidCloseCode(code.0));
    }
    if reason.len() > MAX_CLOSE_REASON {
        return Err(UsageError::CloseReasonTooLong(reason.len()));
    }
    out[..2].copy_from_slice(&code.0.to_be_bytes());
    out[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
    Ok(2 + reason.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_rules() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ] {
            assert!(CloseCode(ok).is_allowed_on_wire(), "{ok}");
        }
        for ok in [3000, 3999, 4000, 4999] {
            assert!(CloseCode(ok).is_allowed_on_wire(), "{ok}");
        }
        // Autobahn 7.9.x's list plus the never-sent codes.
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(bad).is_allowed_on_wire(), "{bad}");
        }
    }

    #[test]
    fn payload_parsing() {
        assert_eq!(parse_close_payload(&[]), Ok(None));
        assert_eq!(
            parse_close_payload(&[0x03]),
            Err(ProtocolError::InvalidClosePayload)
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xe8, b'o', b'k']),
            Ok(Some((CloseCode::NORMAL, "ok")))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xed]),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xe8, 0xff]),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn payload_encoding() {
        let mut out = [0u8; 125];
        assert_eq!(encode_close_payload(None, &mut out), Ok(0));
        let n = encode_close_payload(Some((CloseCode::GOING_AWAY, "bye")), &mut out).unwrap();
        assert_eq!(&out[..n], &[0x03, 0xe9, b'b', b'y', b'e']);
        assert_eq!(
            encode_close_payload(Some((CloseCode::ABNORMAL, "")), &mut out),
            Err(UsageError::InvalidCloseCode(1006))
        );
        let long = "x".repeat(124);
        assert_eq!(
            encode_close_payload(Some((CloseCode::NORMAL, &long)), &mut out),
            Err(UsageError::CloseReasonTooLong(124))
        );
    }
}
