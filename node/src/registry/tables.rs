//! Where [`apply`](super::apply) keeps records: a trait, so the same semantics run
//! over sled in the node and over plain maps in tests.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{RecordId, StoredRecord};

/// Record storage with an expiry index. Implementations keep the index in step
/// with the records: `put` moves the entry from `old_expiry` to the new record's.
/// They may keep indexes of their own from what `put` and `remove` are given
/// (the node's store indexes the records in progress, for listings).
pub trait Tables {
    fn get(&self, id: &RecordId) -> Option<StoredRecord>;
    /// Insert or replace; `old_expiry` is the replaced record's `expires_at_ms`.
    fn put(&mut self, id: &RecordId, record: StoredRecord, old_expiry: Option<u64>);
    fn remove(&mut self, id: &RecordId, expiry: u64);
    /// Up to `limit` records with `expires_at_ms <= clock_ms`, earliest first.
    fn expired(&self, clock_ms: u64, limit: usize) -> Vec<(u64, RecordId)>;
}

/// In-memory tables for tests and for checking determinism: ordered maps, so
/// [`MemTables::to_bytes`] is a canonical image of the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemTables {
    records: BTreeMap<RecordId, StoredRecord>,
    expiry: BTreeSet<(u64, RecordId)>,
}

impl MemTables {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A canonical byte image, equal for equal states.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::codec::encode(self).expect("maps of plain data encode")
    }
}

impl Tables for MemTables {
    fn get(&self, id: &RecordId) -> Option<StoredRecord> {
        self.records.get(id).cloned()
    }

    fn put(&mut self, id: &RecordId, record: StoredRecord, old_expiry: Option<u64>) {
        if let Some(old) = old_expiry {
            self.expiry.remove(&(old, id.clone()));
        }
        self.expiry.insert((record.expires_at_ms, id.clone()));
        self.records.insert(id.clone(), record);
    }

    fn remove(&mut self, id: &RecordId, expiry: u64) {
        self.expiry.remove(&(expiry, id.clone()));
        self.records.remove(id);
    }

    fn expired(&self, clock_ms: u64, limit: usize) -> Vec<(u64, RecordId)> {
        self.expiry.iter().take_while(|(at, _)| *at <= clock_ms).take(limit).cloned().collect()
    }
}
