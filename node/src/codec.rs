//! The one bincode configuration of everything a node writes in binary: log
//! entries, the state machine, snapshot files and Raft RPC bodies. They must
//! agree byte for byte, so they are encoded and decoded only through here.
//!
//! Decoding is bounded ([`MAX_DECODE_BYTES`]): bincode reads a string's
//! length and allocates that much before it reads the bytes, so without a
//! limit a forged length prefix of 2^60 in a 13-byte Raft RPC body makes the
//! allocator fail, and a failed allocation aborts the process.

use std::io::{Read, Write};

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use bincode::error::{DecodeError, EncodeError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The most one decode may take in, counted as bincode counts it: each
/// primitive's in-memory size, and each string's length *before* the string
/// is allocated, so an impossible length fails at once. The same number
/// bounds the body of the `/raft` routes: a message, log entry or state
/// larger than this could not be replicated anyway. The limit is not part of
/// the encoding: bytes written before it existed read the same.
pub const MAX_DECODE_BYTES: usize = 256 * 1024 * 1024;

const CONFIG: Configuration<LittleEndian, Varint, Limit<MAX_DECODE_BYTES>> =
    config::standard().with_limit::<MAX_DECODE_BYTES>();

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    bincode::serde::encode_to_vec(value, CONFIG)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    bincode::serde::decode_from_slice(bytes, CONFIG).map(|(v, _)| v)
}

pub fn encode_into<T: Serialize>(value: &T, out: &mut impl Write) -> Result<usize, EncodeError> {
    bincode::serde::encode_into_std_write(value, out, CONFIG)
}

pub fn decode_from<T: DeserializeOwned>(input: &mut impl Read) -> Result<T, DecodeError> {
    bincode::serde::decode_from_std_read(input, CONFIG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Group;

    /// bincode's standard varint: marker 253, then a little-endian u64.
    fn length_prefix(len: u64) -> Vec<u8> {
        let mut bytes = vec![253];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes
    }

    #[test]
    fn a_string_claiming_2_pow_60_bytes_fails_without_allocating() {
        let err = decode::<String>(&length_prefix(1 << 60)).unwrap_err();
        assert!(matches!(err, DecodeError::LimitExceeded), "{err:?}");
    }

    /// The exact `/raft/forward` body that aborted a node: one group, no
    /// caller, one claim whose namespace claims 2^60 bytes.
    #[test]
    fn a_forward_body_with_a_2_pow_60_namespace_is_refused() {
        let mut body = vec![1, 0, 1, 0];
        body.extend(length_prefix(1 << 60));
        let err = decode::<Vec<Group>>(&body).unwrap_err();
        assert!(matches!(err, DecodeError::LimitExceeded), "{err:?}");
    }

    /// Just over the limit is refused as a limit, not read as a short input.
    #[test]
    fn a_length_one_past_the_limit_is_refused() {
        let err = decode::<String>(&length_prefix(MAX_DECODE_BYTES as u64 + 1)).unwrap_err();
        assert!(matches!(err, DecodeError::LimitExceeded), "{err:?}");
    }
}
