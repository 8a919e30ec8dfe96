//! The in-progress index (`layout::IN_PROGRESS_PREFIX`): kept by every apply
//! (`pending`), built while a snapshot's records load (snapshots carry only
//! records and the expiry index, a format older nodes read), and rebuilt from
//! the records when a state tree is found without it in step, which is what
//! a version before the index leaves on disk. `layout::INDEXED` tells: every
//! apply writes it equal to the applied log id, in the same batch.

use std::time::Instant;

use super::codec::{decode, encode, io, read_key};
use super::layout;
use crate::registry::{RecordState, StoredRecord};
use crate::types::{LogId, StorageError};

/// Keys written or removed per sled batch while rebuilding.
const BATCH: usize = 10_000;

/// Rebuild the index of `tree` unless it is in step with `applied`.
/// Blocks: call it where sled may block (opening, installing a snapshot).
pub fn ensure(tree: &sled::Tree, applied: Option<LogId>) -> Result<(), StorageError> {
    let indexed: Option<Option<LogId>> = read_key(tree, layout::INDEXED)?;
    if indexed == Some(applied) {
        return Ok(());
    }
    let started = Instant::now();
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    let flush = |batch: &mut sled::Batch, pending: &mut usize, force: bool| -> Result<(), StorageError> {
        if *pending >= BATCH || (force && *pending > 0) {
            tree.apply_batch(std::mem::take(batch)).map_err(io)?;
            *pending = 0;
        }
        Ok(())
    };
    for kv in tree.scan_prefix([layout::IN_PROGRESS_PREFIX]) {
        batch.remove(kv.map_err(io)?.0);
        pending += 1;
        flush(&mut batch, &mut pending, false)?;
    }
    let (mut records, mut in_progress) = (0u64, 0u64);
    for kv in tree.scan_prefix([layout::RECORD_PREFIX]) {
        let (key, value) = kv.map_err(io)?;
        records += 1;
        let Some((index_key, lease_end)) = entry(&key, &value)? else { continue };
        batch.insert(index_key, lease_end.to_vec());
        in_progress += 1;
        pending += 1;
        flush(&mut batch, &mut pending, false)?;
    }
    batch.insert(layout::INDEXED, encode(&applied)?);
    pending += 1;
    flush(&mut batch, &mut pending, true)?;
    // A fresh store has nothing to index; only a state with records is news.
    if records > 0 {
        tracing::info!(records, in_progress, took = ?started.elapsed(), "indexed the claims in progress of a state from before the index");
    }
    Ok(())
}

/// An in-progress index entry: its key, and the lease end (big-endian).
pub type Entry = (Vec<u8>, [u8; 8]);

/// The index entry of the record stored under `record_key` as `value`,
/// when it is in progress.
pub fn entry(record_key: &[u8], value: &[u8]) -> Result<Option<Entry>, StorageError> {
    let record: StoredRecord = decode(value)?;
    let (RecordState::InProgress, Some(lease_end)) = (record.state, record.lease_expires_at_ms) else {
        return Ok(None);
    };
    Ok(Some((layout::swap_prefix(record_key, layout::IN_PROGRESS_PREFIX), lease_end.to_be_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategies::stored;
    use crate::registry::RecordId;

    #[test]
    fn a_tree_without_the_index_in_step_is_indexed_once() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("sm.0").unwrap();
        let id = |k: &str| RecordId::new("ns", k);
        tree.insert(
            layout::record_key(&id("busy")),
            encode(&stored(RecordState::InProgress, Some(77), 1_000)).unwrap(),
        )
        .unwrap();
        tree.insert(layout::record_key(&id("done")), encode(&stored(RecordState::Completed, None, 1_000)).unwrap())
            .unwrap();
        // A stale entry, as an older version that once installed an indexed
        // snapshot leaves behind after applying more.
        tree.insert(layout::in_progress_key(&id("done")), &77u64.to_be_bytes()).unwrap();
        let applied = None;
        ensure(&tree, applied).unwrap();
        let index: Vec<_> = tree.scan_prefix([layout::IN_PROGRESS_PREFIX]).map(Result::unwrap).collect();
        assert_eq!(index.len(), 1);
        assert_eq!(index[0].0, layout::in_progress_key(&id("busy")));
        assert_eq!(layout::be_u64(&index[0].1), 77);
        // In step now: a second call changes nothing, even a planted entry.
        tree.insert(layout::in_progress_key(&id("planted")), &1u64.to_be_bytes()).unwrap();
        ensure(&tree, applied).unwrap();
        assert!(tree.contains_key(layout::in_progress_key(&id("planted"))).unwrap());
    }
}
