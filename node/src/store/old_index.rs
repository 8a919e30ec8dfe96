//! The in-progress index that earlier versions kept (`layout::OLD_IN_PROGRESS_PREFIX`
//! keys and `layout::OLD_INDEXED`; DESIGN.md): one sled key more per claim,
//! which measured at about a sixth of the write path's throughput and a
//! quarter of its p99, so that two listings could skip completed records.
//! Listings now walk the records. A tree that still holds the index, written
//! by an earlier version, has it removed once, when the store opens.
//!
//! Snapshots never carried the index, so nodes of either version install
//! each other's; and an earlier version started on a tree this one wrote
//! finds `OLD_INDEXED` absent, out of step, and rebuilds its index.

use std::time::Instant;

use super::codec::io;
use super::layout;
use crate::types::StorageError;

/// Keys removed per sled batch.
const BATCH: u64 = 10_000;

/// Remove every key of the old in-progress index from `tree`, and its
/// marker. Blocks: call it where sled may block (opening the store). A crash
/// half-way leaves keys nobody reads, removed on the next open.
pub fn remove(tree: &sled::Tree) -> Result<(), StorageError> {
    let started = Instant::now();
    let mut removed = 0u64;
    let mut batch = sled::Batch::default();
    for key in tree.scan_prefix([layout::OLD_IN_PROGRESS_PREFIX]).keys() {
        batch.remove(key.map_err(io)?);
        removed += 1;
        if removed.is_multiple_of(BATCH) {
            tree.apply_batch(std::mem::take(&mut batch)).map_err(io)?;
        }
    }
    batch.remove(layout::OLD_INDEXED);
    tree.apply_batch(batch).map_err(io)?;
    if removed > 0 {
        tracing::info!(removed, took = ?started.elapsed(), "removed the in-progress index an earlier version kept");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategies::stored;
    use crate::registry::{RecordId, RecordState};
    use crate::store::codec::encode;

    #[test]
    fn an_old_index_is_removed_and_the_records_stay() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("sm.0").unwrap();
        let record = layout::record_key(&RecordId::new("ns", "busy"));
        let value = encode(&stored(RecordState::InProgress, Some(77), 1_000)).unwrap();
        tree.insert(&record, value.clone()).unwrap();
        // More entries than one batch holds, as an earlier version leaves them.
        for i in 0..BATCH as u32 + 5 {
            let old = [&[layout::OLD_IN_PROGRESS_PREFIX][..], b"ns\0", &i.to_be_bytes()].concat();
            tree.insert(old, &77u64.to_be_bytes()).unwrap();
        }
        tree.insert(layout::OLD_INDEXED, encode(&None::<crate::types::LogId>).unwrap()).unwrap();
        remove(&tree).unwrap();
        let left: Vec<_> = tree.iter().keys().map(Result::unwrap).collect();
        assert_eq!(left, vec![sled::IVec::from(record.clone())], "only the record is left");
        assert_eq!(tree.get(&record).unwrap().unwrap(), value);
        remove(&tree).unwrap();
        assert_eq!(tree.len(), 1, "a tree without the index is left as it is");
    }
}
