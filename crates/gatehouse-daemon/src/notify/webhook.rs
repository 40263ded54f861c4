//! The generic signed webhook: a JSON POST per new pause, signed with HMAC-SHA256 over
//! `TIMESTAMP.BODY` (`X-Gatehouse-Timestamp: <unix seconds>`, `X-Gatehouse-Signature:
//! v1=<hex>`). A receiver recomputes the signature with the shared secret, compares it in
//! constant time and rejects a timestamp outside its replay window (docs/APPROVALS.md).

use sha2::{Digest, Sha256};

pub const TIMESTAMP_HEADER: &str = "x-gatehouse-timestamp";
pub const SIGNATURE_HEADER: &str = "x-gatehouse-signature";

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0_u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The `X-Gatehouse-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let mac = hmac_sha256(secret, &message);
    format!(
        "v1={}",
        mac.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A receiver's check: the signature matches (constant time) and `timestamp` is within
/// `window_secs` of `now_secs`.
pub fn verify(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    given: &str,
    now_secs: i64,
    window_secs: i64,
) -> bool {
    use subtle::ConstantTimeEq;
    let expected = signature(secret, timestamp, body);
    (now_secs - timestamp).abs() <= window_secs
        && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signature_verifies_only_unchanged_and_in_its_window() {
        let sig = signature(b"s3cret", 1_000, b"{}");
        assert!(verify(b"s3cret", 1_000, b"{}", &sig, 1_100, 300));
        assert!(!verify(b"s3cret", 1_000, b"{ }", &sig, 1_100, 300));
        assert!(!verify(b"other", 1_000, b"{}", &sig, 1_100, 300));
        assert!(
            !verify(b"s3cret", 1_000, b"{}", &sig, 1_400, 300),
            "replayed late"
        );
    }
}
