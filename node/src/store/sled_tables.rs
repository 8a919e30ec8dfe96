//! The registry's [`Tables`] over a sled tree, buffering every write of an
//! `apply` call so they land in one atomic batch with the applied log id.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::codec::{decode, encode};
use super::layout;
use crate::registry::{RecordId, StoredRecord, Tables};
use crate::types::StorageError;

/// Reads see the tree overlaid with this apply's pending writes.
pub struct SledTables<'a> {
    tree: &'a sled::Tree,
    /// `None` marks a removal.
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The registry's trait is infallible; the first storage failure is kept
    /// here and reported by [`SledTables::into_batch`], failing the apply.
    error: RefCell<Option<StorageError>>,
}

impl<'a> SledTables<'a> {
    pub fn new(tree: &'a sled::Tree) -> Self {
        SledTables { tree, pending: BTreeMap::new(), error: RefCell::new(None) }
    }

    fn fail(&self, e: StorageError) {
        self.error.borrow_mut().get_or_insert(e);
    }

    /// Stage a metadata value in the same batch as the records.
    pub fn put_raw(&mut self, key: &[u8], value: Vec<u8>) {
        self.pending.insert(key.to_vec(), Some(value));
    }

    pub fn into_batch(self) -> Result<sled::Batch, StorageError> {
        if let Some(e) = self.error.into_inner() {
            return Err(e);
        }
        let mut batch = sled::Batch::default();
        for (k, v) in self.pending {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        Ok(batch)
    }

    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match self.pending.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.tree.get(key).map_err(super::codec::io)?.map(|v| v.to_vec())),
        }
    }
}

impl Tables for SledTables<'_> {
    fn get(&self, id: &RecordId) -> Option<StoredRecord> {
        match self.read(&layout::record_key(id)).and_then(|v| v.map(|b| decode(&b)).transpose()) {
            Ok(rec) => rec,
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn put(&mut self, id: &RecordId, record: StoredRecord, old_expiry: Option<u64>) {
        if let Some(old) = old_expiry {
            self.pending.insert(layout::expiry_key(old, id), None);
        }
        self.pending.insert(layout::expiry_key(record.expires_at_ms, id), Some(Vec::new()));
        match encode(&record) {
            Ok(bytes) => {
                self.pending.insert(layout::record_key(id), Some(bytes));
            }
            Err(e) => self.fail(e),
        }
    }

    fn remove(&mut self, id: &RecordId, expiry: u64) {
        self.pending.insert(layout::expiry_key(expiry, id), None);
        self.pending.insert(layout::record_key(id), None);
    }

    fn expired(&self, clock_ms: u64, limit: usize) -> Vec<(u64, RecordId)> {
        let (lo, hi) = (vec![layout::EXPIRY_PREFIX], layout::expiry_bound(clock_ms));
        let mut due: Vec<Vec<u8>> =
            self.pending.range(lo.clone()..hi.clone()).filter(|(_, v)| v.is_some()).map(|(k, _)| k.clone()).collect();
        let from_tree = self
            .tree
            .range(lo..hi)
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !self.pending.contains_key(k.as_ref()))
            .take(limit)
            .map(|k| k.to_vec());
        due.extend(from_tree);
        due.sort();
        due.dedup();
        due.iter().take(limit).filter_map(|k| layout::parse_expiry_key(k)).collect()
    }
}
