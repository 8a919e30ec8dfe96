//! Where [`apply`](super::apply) keeps records: a trait, so the same semantics run
//! over sled in the node and over plain maps in tests.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{RecordId, StoredRecord};

/// How expired records are found, once every replica sweeps by walking the
/// records (`Command::SweepRecords`): no expiry index, so a write is one key.
/// Absent from the tables until then, so a cluster that has not switched
/// keeps exactly the state earlier versions keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// The last record examined: the walk goes on after it, and wraps to the
    /// first record when it runs off the end.
    pub after: Option<RecordId>,
    /// Every entry of the expiry index kept before the switch has been removed.
    pub index_drained: bool,
}

/// Record storage, the expiry index of earlier versions, and the sweep's place.
/// The index is written only by `apply`, and only until the switch to
/// [`Sweep`]: `index` and `unindex` are its only writers.
pub trait Tables {
    fn get(&self, id: &RecordId) -> Option<StoredRecord>;
    /// Insert or replace.
    fn put(&mut self, id: &RecordId, record: StoredRecord);
    fn remove(&mut self, id: &RecordId);
    /// Add `id` to the expiry index at `at_ms`.
    fn index(&mut self, at_ms: u64, id: &RecordId);
    fn unindex(&mut self, at_ms: u64, id: &RecordId);
    /// Up to `limit` index entries with `at_ms <= clock_ms`, earliest first.
    fn expired(&self, clock_ms: u64, limit: usize) -> Vec<(u64, RecordId)>;
    /// Up to `limit` records after `after` (from the first if `None`), in
    /// key order, with their `expires_at_ms`.
    fn records_after(&self, after: Option<&RecordId>, limit: usize) -> Vec<(RecordId, u64)>;
    /// The sweep's state; `None` while expiry goes by the index.
    fn sweep(&self) -> Option<Sweep>;
    fn set_sweep(&mut self, sweep: &Sweep);
}

/// In-memory tables for tests and for checking determinism: ordered maps, so
/// [`MemTables::to_bytes`] is a canonical image of the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemTables {
    records: BTreeMap<RecordId, StoredRecord>,
    expiry: BTreeSet<(u64, RecordId)>,
    sweep: Option<Sweep>,
}

impl MemTables {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Entries in the expiry index.
    pub fn indexed(&self) -> usize {
        self.expiry.len()
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

    fn put(&mut self, id: &RecordId, record: StoredRecord) {
        self.records.insert(id.clone(), record);
    }

    fn remove(&mut self, id: &RecordId) {
        self.records.remove(id);
    }

    fn index(&mut self, at_ms: u64, id: &RecordId) {
        self.expiry.insert((at_ms, id.clone()));
    }

    fn unindex(&mut self, at_ms: u64, id: &RecordId) {
        self.expiry.remove(&(at_ms, id.clone()));
    }

    fn expired(&self, clock_ms: u64, limit: usize) -> Vec<(u64, RecordId)> {
        self.expiry.iter().take_while(|(at, _)| *at <= clock_ms).take(limit).cloned().collect()
    }

    fn records_after(&self, after: Option<&RecordId>, limit: usize) -> Vec<(RecordId, u64)> {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let range = self.records.range::<RecordId, _>((start, Bound::Unbounded));
        range.take(limit).map(|(id, r)| (id.clone(), r.expires_at_ms)).collect()
    }

    fn sweep(&self) -> Option<Sweep> {
        self.sweep.clone()
    }

    fn set_sweep(&mut self, sweep: &Sweep) {
        self.sweep = Some(sweep.clone());
    }
}
