//! Fuzzes the `POST /v1/check` body decoder the daemon uses (`decode_check_request`): any bytes
//! either decode or give an error of a known kind, never a panic; a body that decodes has no
//! duplicate key and re-encodes to JSON that decodes to the same request.
#![no_main]

use gatehouse_protocol::decode::{DecodeErrorKind, check_keys, decode_check_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode_check_request(data) {
        Ok(request) => {
            assert!(check_keys(data).is_ok());
            let again = serde_json::to_vec(&request).expect("a decoded request re-encodes");
            let decoded = decode_check_request(&again).expect("a re-encoded request decodes");
            assert_eq!(decoded, request);
        }
        Err(err) => {
            if err.kind == DecodeErrorKind::DuplicateKey {
                assert!(err.field.is_some(), "a duplicate key is named");
            }
            assert!(!err.message.is_empty());
        }
    }
});
