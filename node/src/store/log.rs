//! The Raft log and vote on sled (openraft's `RaftLogStorage`, storage v2).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};

use super::codec::{decode, encode, io};
use super::flusher::Flusher;
use super::layout;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// Log entries in one tree, keyed by big-endian index; vote and markers in another.
/// Cheap to clone: clones share the trees and the flusher.
#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    flusher: Flusher,
    /// Index of the last committed entry this node learned, for `/readyz`.
    committed: Arc<AtomicU64>,
}

impl LogStore {
    pub(super) fn open(db: sled::Db) -> Result<Self, StorageError> {
        let log = db.open_tree(layout::LOG_TREE).map_err(io)?;
        let meta = db.open_tree(layout::RAFT_META_TREE).map_err(io)?;
        let flusher = Flusher::start(db.clone());
        let store = LogStore { db, log, meta, flusher, committed: Arc::default() };
        let committed: Option<LogId> = store.get_meta::<Option<LogId>>(layout::COMMITTED)?.flatten();
        store.committed.store(committed.map_or(0, |l| l.index), Ordering::Relaxed);
        Ok(store)
    }

    /// Shared handle to the committed index, updated as openraft reports it.
    pub fn committed_index(&self) -> Arc<AtomicU64> {
        self.committed.clone()
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        self.meta.get(key).map_err(io)?.map(|v| decode(&v)).transpose()
    }

    /// Write a marker and wait for it to be on disk, off the async runtime.
    async fn put_meta_durably<T: serde::Serialize>(&self, key: &'static [u8], value: &T) -> Result<(), StorageError> {
        let bytes = encode(value)?;
        let (meta, db) = (self.meta.clone(), self.db.clone());
        tokio::task::spawn_blocking(move || {
            meta.insert(key, bytes)?;
            db.flush().map(|_| ())
        })
        .await
        .map_err(io)?
        .map_err(io)
    }
}

fn index_range(range: impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(i) => *i,
        Bound::Excluded(i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(i) => i.checked_add(1),
        Bound::Excluded(i) => Some(*i),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_range(range);
        let iter = match end {
            Some(end) if end <= start => return Ok(Vec::new()),
            Some(end) => self.log.range(layout::log_key(start)..layout::log_key(end)),
            None => self.log.range(layout::log_key(start)..),
        };
        iter.map(|kv| decode(&kv.map_err(io)?.1)).collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.get_meta(layout::LAST_PURGED)?;
        let last = match self.log.last().map_err(io)? {
            Some((_, bytes)) => Some(decode::<Entry>(&bytes)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState { last_purged_log_id, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta_durably(layout::VOTE, vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta(layout::VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.committed.store(committed.map_or(0, |l| l.index), Ordering::Relaxed);
        // Not flushed: a lost committed marker only means re-learning it from the leader.
        self.meta.insert(layout::COMMITTED, encode(&committed)?).map_err(io)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(layout::COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&layout::log_key(entry.log_id.index), encode(&entry)?);
        }
        self.log.apply_batch(batch).map_err(io)?;
        self.flusher.after_flush(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for kv in self.log.range(layout::log_key(log_id.index)..) {
            batch.remove(kv.map_err(io)?.0);
        }
        self.log.apply_batch(batch).map_err(io)?;
        // Conflicting entries must not come back after a crash.
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush()).await.map_err(io)?.map_err(io)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The marker goes first so a crash mid-purge never shows a gap without it.
        self.meta.insert(layout::LAST_PURGED, encode(&log_id)?).map_err(io)?;
        let mut batch = sled::Batch::default();
        for kv in self.log.range(..=layout::log_key(log_id.index)) {
            batch.remove(kv.map_err(io)?.0);
        }
        self.log.apply_batch(batch).map_err(io)?;
        Ok(())
    }
}
