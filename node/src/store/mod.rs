//! Durable storage of a node: the Raft log and vote in segment files of their
//! own ([`LogStore`], `<data-dir>/raft-log/`) and the registry state machine on
//! one sled database ([`StateMachineStore`], `<data-dir>/db`). The on-disk
//! layout is described in `DESIGN.md` beside this file.
//!
//! Nothing here syncs on the request path: the log's writer thread groups
//! every record waiting at that moment into one fdatasync, and votes and
//! snapshot installs wait for theirs off the async runtime.

mod codec;
pub mod layout;
pub mod listing;
mod log;
mod old_index;
mod overlay;
mod pending;
mod restore;
mod snapshot;
mod state_machine;
mod view;
mod writeback;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use log::{DurableWatch, LogOptions, LogStore, PurgeBarrier};
pub use restore::{restore, Restored};
pub use state_machine::StateMachineStore;
pub use view::StateView;

use crate::types::{NodeId, StorageError};
use log::Durable;

/// Open (or create) the storage of node `me` under `data_dir` with the log's
/// default sizes. `cache_bytes` bounds sled's page cache.
pub fn open(data_dir: &Path, me: NodeId, cache_bytes: u64) -> Result<(LogStore, StateMachineStore), StorageError> {
    open_with(data_dir, me, cache_bytes, &LogOptions::default())
}

/// [`open`] with the log's segment and cache sizes chosen (tests use small ones).
/// The log is opened after sled because a data dir from before `raft-log/`
/// existed has its log in sled, to be imported; and after the state machine,
/// whose write-back is its purge barrier.
pub fn open_with(
    data_dir: &Path,
    me: NodeId,
    cache_bytes: u64,
    log_options: &LogOptions,
) -> Result<(LogStore, StateMachineStore), StorageError> {
    std::fs::create_dir_all(data_dir).map_err(|e| openraft::StorageIOError::write(&e))?;
    let config = sled::Config::new()
        .path(data_dir.join("db"))
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(cache_bytes)
        // The state is made durable where Raft needs it (before a snapshot
        // exists, when one is installed); sled's own periodic flush would
        // only add fsyncs.
        .flush_every_ms(None);
    let db = open_sled(&config).map_err(|e| openraft::StorageIOError::write(&e))?;
    // The state machine applies an entry only once the log has it on disk.
    let durable = Durable::default();
    let sm = StateMachineStore::open(db.clone(), data_dir.join("db"), data_dir.join("snapshots"), durable.watch())?;
    // Purges follow snapshots, whose state is already durable; the barrier
    // makes sure of it whatever triggers a purge.
    let state = sm.writeback();
    let barrier: PurgeBarrier = Arc::new(move || state.freeze(true).map(drop).map_err(std::io::Error::other));
    let log = log::open(data_dir, &db, log::Opening { me: Some(me), options: log_options, barrier, durable })?;
    Ok((log, sm))
}

/// How long [`open_sled`] waits for a lock this process may still hold.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Open sled, waiting a little for its file lock. sled releases the lock
/// only when its background jobs (truncating and syncing a segment, writing
/// a sealed buffer) let go of the file, which can be after the last `Db` in
/// this process is dropped; a store reopened at once would be refused. A
/// second process on the same data dir is still refused, after the wait.
fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let started = Instant::now();
    loop {
        match config.open() {
            // sled reports a held lock as a formatted `Other` I/O error.
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock") && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod suite_test;

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> sled::Config {
        sled::Config::new().path(dir.join("db")).flush_every_ms(None)
    }

    #[test]
    fn a_lock_let_go_while_waiting_is_taken_and_one_held_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let held = open_sled(&config(dir.path())).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let reopened = open_sled(&config(dir.path())).expect("the lock is taken once let go");
        releaser.join().unwrap();

        let started = Instant::now();
        let refused = open_sled(&config(dir.path())).map(drop).expect_err("a held lock is refused");
        assert!(refused.to_string().contains("could not acquire lock"), "{refused}");
        assert!(started.elapsed() >= LOCK_WAIT, "refused only after the wait");
        drop(reopened);
    }
}
