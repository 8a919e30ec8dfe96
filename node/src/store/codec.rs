//! bincode 2 encoding of everything stored, with errors in openraft's terms.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::types::StorageError;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| openraft::StorageIOError::write(&e).into())
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    bincode::serde::decode_from_slice(bytes, config())
        .map(|(v, _)| v)
        .map_err(|e| openraft::StorageIOError::read(&e).into())
}

/// Map a sled or I/O failure to a storage error (reads and writes alike are fatal
/// to openraft, which stops the node rather than guess).
pub fn io<E: std::error::Error + 'static>(e: E) -> StorageError {
    openraft::StorageIOError::write(&e).into()
}
