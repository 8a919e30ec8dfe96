//! The node's bincode codec (`crate::codec`) with errors in openraft's storage terms.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::registry::{RecordState, StoredRecord};
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

/// The state of the record stored as `value`, read from its first field
/// alone: walks that look for claims in progress (listings, the abandoned
/// claims gauge) pass over completed records, whose results may be
/// kilobytes of JSON, without decoding the rest of them.
pub fn record_state(value: &[u8]) -> Result<RecordState, StorageError> {
    decode(value)
}

/// When the record stored as `value` expires: what the sweep's walk reads of
/// each record it passes.
pub fn record_expiry(value: &[u8]) -> Result<u64, StorageError> {
    decode::<StoredRecord>(value).map(|r| r.expires_at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategies::stored;

    #[test]
    fn a_record_state_is_read_from_the_record_alone() {
        let busy = stored(RecordState::InProgress, Some(7), 9);
        // A token of 1 is the encoding of `Completed`: were the state not the
        // record's first field, the busy record would read as completed.
        assert_eq!(busy.token, 1);
        let done = StoredRecord { state: RecordState::Completed, result_json: Some("[1]".into()), ..busy.clone() };
        for record in [busy, done] {
            assert_eq!(record_state(&encode(&record).unwrap()).unwrap(), record.state);
        }
        assert!(record_state(&[]).is_err(), "an empty value is no record");
    }
}
