//! The node's bincode codec (`crate::codec`) with errors in openraft's storage terms.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::types::StorageError;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    crate::codec::encode(value).map_err(|e| openraft::StorageIOError::write(&e).into())
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    crate::codec::decode(bytes).map_err(|e| openraft::StorageIOError::read(&e).into())
}

/// Map a sled or I/O failure to a storage error (reads and writes alike are fatal
/// to openraft, which stops the node rather than guess).
pub fn io<E: std::error::Error + 'static>(e: E) -> StorageError {
    openraft::StorageIOError::write(&e).into()
}
