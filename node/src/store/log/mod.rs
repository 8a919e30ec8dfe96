//! The Raft log and vote in segment files of their own, made for Raft
//! (openraft's `RaftLogStorage`, storage v2), in `<data-dir>/raft-log/`.
//! `DESIGN.md` beside the store gives the file format and the reasoning.
//!
//! `append` places the records and updates the in-memory index and cache
//! before it returns (so the entries are readable at once), then hands the
//! bytes to the writer thread, which reports them persisted after the one
//! `fdatasync` they share with everything else waiting. A leader's own
//! operations are reported persisted at once and made durable beside
//! replication (`durable.rs` says why that is safe). Votes and truncations
//! return only once durable. Nothing here does file I/O on the async runtime:
//! reads of entries no longer cached go through `spawn_blocking`.
//!
//! # Layout
//! - `format.rs`: the bytes (marker, segment header, record frame, CRC)
//! - `index.rs`: one group's entries, ids and cache in memory
//! - `state.rs`: all groups, where the next record goes, what is durable
//! - `durable.rs`: the durable end, for what a leader's commit makes visible
//! - `writer.rs`: the group-commit thread; `prepare.rs`: the segment pipeline
//! - `recover.rs`: replay on open, torn tail versus corruption
//! - `migrate.rs`: importing the log sled kept before this format existed
//! - `segment.rs`: file helpers the others share

mod direct;
mod durable;
mod error;
mod format;
mod index;
mod migrate;
mod prepare;
mod recover;
mod segment;
mod state;
mod writer;

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{EntryPayload, LogState as RaftLogState, OptionalSend, RaftLogReader};

pub use durable::{Durable, DurableWatch};
pub use error::LogError;
use prepare::Preparer;
use recover::Recovered;
use state::{lock, segment_size, Change, Fetch, GroupId, LogState};
use writer::{Done, Job, Writer, WriterHandle};

/// Segments a whole number of these long are written directly (`direct.rs`).
#[cfg(test)]
pub use direct::BLOCK as DIRECT_BLOCK;

use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote};

/// The group idem's one Raft group uses.
const GROUP: GroupId = 0;

/// Sizes of the log; the defaults suit a node, tests use small segments.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Each segment file is pre-allocated (zero-filled) to this size.
    pub segment_bytes: u64,
    /// The newest entries up to this many (encoded) bytes are kept in memory.
    pub cache_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { segment_bytes: 64 << 20, cache_bytes: 64 << 20 }
    }
}

/// Makes the state machine's applied point durable. The log runs it before it
/// records a purge: an entry may leave the log only once the state that
/// includes it survives a crash (openraft re-applies from the applied point).
pub type PurgeBarrier = Arc<dyn Fn() -> io::Result<()> + Send + Sync>;

/// Where the log opens and what it reports to: the node it belongs to (its
/// own entries as leader are acknowledged before their fsync) and the
/// durable end the state machine and network wait on.
pub struct Opening<'a> {
    /// None for a log no leader proposes to (the import's staging copy).
    pub me: Option<NodeId>,
    pub options: &'a LogOptions,
    pub barrier: PurgeBarrier,
    pub durable: Durable,
}

/// Open the log in `<data_dir>/raft-log`, first importing it from `db` if the
/// data dir was written when sled held the log.
pub fn open(data_dir: &Path, db: &sled::Db, opening: Opening<'_>) -> Result<LogStore, LogError> {
    let dir = migrate::ensure_log_dir(data_dir, db, opening.options)?;
    LogStore::open_dir(&dir, opening)
}

/// One group's handle on the log. Cheap to clone: clones share the index and
/// the writer, which stops once the last clone is gone.
#[derive(Clone)]
pub struct LogStore {
    group: GroupId,
    inner: Arc<Inner>,
    /// Index of the last committed entry this node learned, for `/readyz`.
    committed: Arc<AtomicU64>,
}

/// Dropped with the last clone: the writer writes every queued job, then stops.
struct Inner {
    writer: WriterHandle,
    state: Arc<Mutex<LogState>>,
    barrier: PurgeBarrier,
    me: Option<NodeId>,
    durable: Durable,
}

impl LogStore {
    fn open_dir(dir: &Path, opening: Opening<'_>) -> Result<Self, LogError> {
        let Opening { me, options, barrier, durable } = opening;
        let Recovered { state, resume } = recover::recover(dir, options.segment_bytes, options.cache_bytes)?;
        let committed = state.meta(GROUP).committed.map_or(0, |l| l.index);
        let last = state.group(GROUP).and_then(|g| g.last_log_id());
        let segment_bytes = options.segment_bytes;
        let prepare =
            Preparer::start(dir.to_path_buf(), state.next_seq(), move |seq| segment_size(seq, segment_bytes))?;
        let state = Arc::new(Mutex::new(state));
        let writer = Writer::new(dir.to_path_buf(), state.clone(), prepare, resume).spawn()?;
        let inner = Arc::new(Inner { writer, state, barrier, me, durable });
        let log = LogStore { group: GROUP, inner, committed: Arc::new(committed.into()) };
        // What was read back may have been written and never synced (a leader
        // killed before its fsync leaves it in the page cache): sync it
        // before anything counts it as durable.
        log.sync_blocking()?;
        log.inner.durable.set(last);
        Ok(log)
    }

    /// Whether `entries` are operations this node proposed as the leader of
    /// their term: only the leader's saved vote names itself, and a follower
    /// is never sent entries of a term whose leader it is.
    fn own_operations(&self, entries: &[Entry]) -> Result<bool, LogError> {
        let Some(first) = entries.first() else { return Ok(false) };
        let vote = lock(&self.inner.state)?.meta(self.group).vote;
        let leads =
            vote.is_some_and(|v| Some(v.leader_id.node_id) == self.inner.me && v.leader_id == first.log_id.leader_id);
        Ok(leads && entries.iter().all(|e| matches!(e.payload, EntryPayload::Normal(_))))
    }

    /// Shared handle to the committed index, updated as openraft reports it.
    pub fn committed_index(&self) -> Arc<AtomicU64> {
        self.committed.clone()
    }

    /// The durable end of the log, for the Raft network to clamp commits by.
    pub fn durable(&self) -> DurableWatch {
        self.inner.durable.watch()
    }

    /// Apply `changes` in memory and queue their records, under one lock so
    /// the writer receives records in the order memory applied them.
    fn submit(&self, changes: Vec<Change>, done: Option<Done>) -> Result<(), LogError> {
        let encoded = changes.into_iter().map(Change::encoded).collect::<Result<Vec<_>, _>>()?;
        let mut state = lock(&self.inner.state)?;
        let ops = state.change(self.group, encoded)?;
        self.inner.writer.submit(Job { ops, done });
        Ok(())
    }

    /// Submit `changes` and wait, without blocking the runtime, until they are durable.
    async fn submit_durably(&self, changes: Vec<Change>) -> Result<(), LogError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(
            changes,
            Some(Box::new(move |r| {
                let _ = tx.send(r);
            })),
        )?;
        rx.await.map_err(io::Error::other)??;
        Ok(())
    }

    /// Block this thread until everything submitted so far is durable: for
    /// the import, which runs before the node serves anything.
    fn sync_blocking(&self) -> Result<(), LogError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let done: Done = Box::new(move |r| {
            let _ = tx.send(r);
        });
        self.inner.writer.submit(Job { ops: Vec::new(), done: Some(done) });
        rx.recv().map_err(io::Error::other)??;
        Ok(())
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

fn resolve(fetch: Fetch) -> Result<Entry, LogError> {
    match fetch {
        Fetch::Ready(entry) => Ok(entry),
        Fetch::Read { file, path, log_id, loc } => segment::read_entry(&file, &path, log_id, loc),
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_range(range);
        let fetches = lock(&self.inner.state)?.fetch(self.group, start, end)?;
        if fetches.iter().all(|f| matches!(f, Fetch::Ready(_))) {
            return Ok(fetches.into_iter().map(resolve).collect::<Result<_, _>>()?);
        }
        let read = tokio::task::spawn_blocking(move || fetches.into_iter().map(resolve).collect::<Result<_, _>>());
        Ok(read.await.map_err(|e| LogError::Io(io::Error::other(e)))??)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<RaftLogState<TypeConfig>, StorageError> {
        let state = lock(&self.inner.state)?;
        let last_log_id = state.group(self.group).and_then(|g| g.last_log_id());
        Ok(RaftLogState { last_purged_log_id: state.meta(self.group).purged, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        Ok(self.submit_durably(vec![Change::Vote(*vote)]).await?)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(lock(&self.inner.state)?.meta(self.group).vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.committed.store(committed.map_or(0, |l| l.index), Ordering::Relaxed);
        // Not waited for: a lost committed id is relearned from the leader.
        Ok(self.submit(vec![Change::Committed(committed)], None)?)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(lock(&self.inner.state)?.meta(self.group).committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let last = entries.last().map(|e| e.log_id);
        let early = self.own_operations(&entries)?;
        let durable = self.inner.durable.clone();
        let changes = entries.into_iter().map(|e| Change::Entry(Box::new(e))).collect();
        let (now, later) = if early { (Some(callback), None) } else { (None, Some(callback)) };
        let done: Done = Box::new(move |r: io::Result<()>| {
            match &r {
                Ok(()) => durable.set(last),
                Err(e) => durable.fail(e),
            }
            if let Some(callback) = later {
                callback.log_io_completed(r);
            }
        });
        self.submit(changes, Some(done))?;
        // Placed and readable: replication may read them from here on.
        if let Some(callback) = now {
            self.inner.durable.acked_early(last.map_or(0, |l| l.index));
            callback.log_io_completed(Ok(()));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Durable before returning: conflicting entries must never come back after a crash.
        self.submit_durably(vec![Change::Truncate(log_id)]).await?;
        // Every append before it is durable too (the writer keeps order), and
        // openraft appends nothing while it waits for a truncation.
        let last = lock(&self.inner.state)?.group(self.group).and_then(|g| g.last_log_id());
        self.inner.durable.truncated(last);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let barrier = self.inner.barrier.clone();
        let flushed = tokio::task::spawn_blocking(move || barrier()).await.map_err(io::Error::other);
        flushed.and_then(|r| r).map_err(LogError::Io)?;
        // Not waited for: losing it only brings back entries the state already
        // holds. The writer deletes a segment only after a sync has made the
        // purge durable.
        Ok(self.submit(vec![Change::Purge(log_id)], None)?)
    }
}

#[cfg(test)]
mod tests;
