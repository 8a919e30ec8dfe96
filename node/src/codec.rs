//! The one bincode configuration of everything a node writes in binary: log
//! entries, the state machine, snapshot files and Raft RPC bodies. They must
//! agree byte for byte, so they are encoded and decoded only through here.

use std::io::{Read, Write};

use bincode::error::{DecodeError, EncodeError};
use serde::de::DeserializeOwned;
use serde::Serialize;

const CONFIG: bincode::config::Configuration = bincode::config::standard();

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

/// How many bytes `value` encodes to, without encoding it anywhere.
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize, EncodeError> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, CONFIG)?;
    Ok(size.bytes_written)
}
