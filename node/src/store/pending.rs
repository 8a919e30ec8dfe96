//! The registry's [`Tables`] for one `apply` call: its writes collect in a
//! layer of their own over the [`Overlay`], and join the overlay together
//! with the applied log id once the call is done: the records and the expiry
//! index the registry asks for, and nothing else (each sled key a claim
//! writes costs the write path dearly: `old_index`).

use std::cell::RefCell;
use std::ops::Bound;

use super::codec::{decode, encode};
use super::layout;
use super::overlay::{Layer, Overlay};
use crate::registry::{RecordId, StoredRecord, Tables};
use crate::types::StorageError;

pub struct Pending<'a> {
    overlay: &'a Overlay,
    writes: Layer,
    /// The registry's trait is infallible; the first storage failure is kept
    /// here and reported by [`Pending::into_writes`], failing the apply.
    error: RefCell<Option<StorageError>>,
}

impl<'a> Pending<'a> {
    pub fn new(overlay: &'a Overlay) -> Self {
        Pending { overlay, writes: Layer::new(), error: RefCell::new(None) }
    }

    fn fail(&self, e: StorageError) {
        self.error.borrow_mut().get_or_insert(e);
    }

    /// Stage a metadata value with the records.
    pub fn put_raw(&mut self, key: &[u8], value: Vec<u8>) {
        self.writes.insert(key.to_vec(), Some(value));
    }

    pub fn into_writes(self) -> Result<Layer, StorageError> {
        match self.error.into_inner() {
            Some(e) => Err(e),
            None => Ok(self.writes),
        }
    }
}

impl Tables for Pending<'_> {
    fn get(&self, id: &RecordId) -> Option<StoredRecord> {
        let key = layout::record_key(id);
        match self.overlay.get(Some(&self.writes), &key).and_then(|v| v.map(|b| decode(&b)).transpose()) {
            Ok(rec) => rec,
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn put(&mut self, id: &RecordId, record: StoredRecord, old_expiry: Option<u64>) {
        if let Some(old) = old_expiry {
            self.writes.insert(layout::expiry_key(old, id), None);
        }
        self.writes.insert(layout::expiry_key(record.expires_at_ms, id), Some(Vec::new()));
        match encode(&record) {
            Ok(bytes) => {
                self.writes.insert(layout::record_key(id), Some(bytes));
            }
            Err(e) => self.fail(e),
        }
    }

    fn remove(&mut self, id: &RecordId, expiry: u64) {
        self.writes.insert(layout::expiry_key(expiry, id), None);
        self.writes.insert(layout::record_key(id), None);
    }

    fn expired(&self, clock_ms: u64, limit: usize) -> Vec<(u64, RecordId)> {
        let range = (Bound::Included(vec![layout::EXPIRY_PREFIX]), Bound::Excluded(layout::expiry_bound(clock_ms)));
        match self.overlay.scan(Some(&self.writes), range, limit) {
            Ok(due) => due.iter().filter_map(|(k, _)| layout::parse_expiry_key(k)).collect(),
            Err(e) => {
                self.fail(e);
                Vec::new()
            }
        }
    }
}
