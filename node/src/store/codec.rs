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

/// The value stored under `key` in `tree`, decoded; `None` when absent.
pub fn read_key<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>, StorageError> {
    tree.get(key).map_err(io)?.map(|v| decode(&v)).transpose()
}

/// Map a sled or I/O failure to a storage error (reads and writes alike are fatal
/// to openraft, which stops the node rather than guess).
pub fn io<E: std::error::Error + 'static>(e: E) -> StorageError {
    openraft::StorageIOError::write(&e).into()
}
