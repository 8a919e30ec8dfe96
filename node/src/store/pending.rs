//! The registry's [`Tables`] for one `apply` call: its writes collect in a
//! layer of their own over the [`Overlay`], and join the overlay together
//! with the applied log id once the call is done: the records, the expiry
//! index while the registry still keeps one, the sweep's place, and nothing
//! else (each sled key a claim writes costs the write path dearly: `DESIGN.md`).

use std::cell::RefCell;
use std::ops::Bound;

use super::codec::{decode, encode, record_expiry};
use super::layout;
use super::overlay::{Layer, Overlay};
use crate::registry::{RecordId, StoredRecord, Sweep, Tables};
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

impl Pending<'_> {
    fn read<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Option<T> {
        match self.overlay.get(Some(&self.writes), key).and_then(|v| v.map(|b| decode(&b)).transpose()) {
            Ok(value) => value,
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }
}

impl Tables for Pending<'_> {
    fn get(&self, id: &RecordId) -> Option<StoredRecord> {
        self.read(&layout::record_key(id))
    }

    fn put(&mut self, id: &RecordId, record: StoredRecord) {
        match encode(&record) {
            Ok(bytes) => {
                self.writes.insert(layout::record_key(id), Some(bytes));
            }
            Err(e) => self.fail(e),
        }
    }

    fn remove(&mut self, id: &RecordId) {
        self.writes.insert(layout::record_key(id), None);
    }

    fn index(&mut self, at_ms: u64, id: &RecordId) {
        self.writes.insert(layout::expiry_key(at_ms, id), Some(Vec::new()));
    }

    fn unindex(&mut self, at_ms: u64, id: &RecordId) {
        self.writes.insert(layout::expiry_key(at_ms, id), None);
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

    fn records_after(&self, after: Option<&RecordId>, limit: usize) -> Vec<(RecordId, u64)> {
        let start =
            after.map_or(Bound::Included(vec![layout::RECORD_PREFIX]), |id| Bound::Excluded(layout::record_key(id)));
        let range = (start, Bound::Excluded(vec![layout::RECORD_PREFIX + 1]));
        let seen = self.overlay.scan(Some(&self.writes), range, limit).and_then(|pairs| {
            pairs
                .iter()
                .filter_map(|(k, v)| Some((layout::parse_id_key(k)?, v)))
                .map(|(id, v)| Ok((id, record_expiry(v)?)))
                .collect()
        });
        seen.unwrap_or_else(|e| {
            self.fail(e);
            Vec::new()
        })
    }

    fn sweep(&self) -> Option<Sweep> {
        self.read(layout::SWEEP)
    }

    fn set_sweep(&mut self, sweep: &Sweep) {
        match encode(sweep) {
            Ok(bytes) => self.put_raw(layout::SWEEP, bytes),
            Err(e) => self.fail(e),
        }
    }
}
