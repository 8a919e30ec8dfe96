//! URL paths of API.md. Keys are arbitrary UTF-8, so every byte outside the
//! unreserved set (RFC 3986) is percent-encoded, `/` included: a key must stay
//! one path segment whatever it holds.
//!
//! Public so that tests and tools that speak raw HTTP address a record
//! exactly as the client does.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::proto::{validate_key, validate_namespace, Invalid};

const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// `/v1/ns/{ns}`, after checking the namespace against API.md's bounds.
pub fn ns_path(ns: &str) -> Result<String, Invalid> {
    validate_namespace(ns)?;
    Ok(format!("/v1/ns/{ns}"))
}

/// `/v1/ns/{ns}/keys/{key}`, after checking both against API.md's bounds so a
/// bad input fails here rather than as a round trip.
pub fn key_path(ns: &str, key: &str) -> Result<String, Invalid> {
    validate_namespace(ns)?;
    validate_key(key)?;
    Ok(key_path_unchecked(ns, key))
}

/// [`key_path`] without the bounds check, for tests that must send what
/// API.md refuses to see the node refuse it.
pub fn key_path_unchecked(ns: &str, key: &str) -> String {
    format!("/v1/ns/{ns}/keys/{}", encode_segment(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_bytes_stay_and_everything_else_is_encoded() {
        assert_eq!(encode_segment("Az09-._~"), "Az09-._~");
        assert_eq!(encode_segment("a/b c?d#e%f"), "a%2Fb%20c%3Fd%23e%25f");
        assert_eq!(encode_segment("m:charge+1"), "m%3Acharge%2B1");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn key_path_checks_bounds() {
        assert_eq!(key_path("pay", "o/7").unwrap(), "/v1/ns/pay/keys/o%2F7");
        assert!(key_path("pa/y", "k").is_err());
        assert!(key_path("pay", "").is_err());
        assert!(key_path("pay", &"k".repeat(513)).is_err());
        assert_eq!(key_path_unchecked("pay", &"k".repeat(513)), format!("/v1/ns/pay/keys/{}", "k".repeat(513)));
    }
}
