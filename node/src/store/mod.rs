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
mod log;
mod overlay;
mod pending;
mod restore;
mod snapshot;
mod state_machine;
mod view;
mod writeback;

use std::path::Path;
use std::sync::Arc;

pub use log::{LogOptions, LogStore, PurgeBarrier};
pub use restore::{restore, Restored};
pub use state_machine::StateMachineStore;
pub use view::StateView;

use crate::types::StorageError;

/// Open (or create) the node's storage under `data_dir` with the log's default
/// sizes. `cache_bytes` bounds sled's page cache.
pub fn open(data_dir: &Path, cache_bytes: u64) -> Result<(LogStore, StateMachineStore), StorageError> {
    open_with(data_dir, cache_bytes, &LogOptions::default())
}

/// [`open`] with the log's segment and cache sizes chosen (tests use small ones).
/// The log is opened after sled because a data dir from before `raft-log/`
/// existed has its log in sled, to be imported; and after the state machine,
/// whose write-back is its purge barrier.
pub fn open_with(
    data_dir: &Path,
    cache_bytes: u64,
    log_options: &LogOptions,
) -> Result<(LogStore, StateMachineStore), StorageError> {
    std::fs::create_dir_all(data_dir).map_err(|e| openraft::StorageIOError::write(&e))?;
    let db = sled::Config::new()
        .path(data_dir.join("db"))
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(cache_bytes)
        // The state is made durable where Raft needs it (before a snapshot
        // exists, when one is installed); sled's own periodic flush would
        // only add fsyncs.
        .flush_every_ms(None)
        .open()
        .map_err(|e| openraft::StorageIOError::write(&e))?;
    let sm = StateMachineStore::open(db.clone(), data_dir.join("db"), data_dir.join("snapshots"))?;
    // Purges follow snapshots, whose state is already durable; the barrier
    // makes sure of it whatever triggers a purge.
    let state = sm.writeback();
    let barrier: PurgeBarrier = Arc::new(move || state.freeze(true).map(drop).map_err(std::io::Error::other));
    let log = log::open(data_dir, &db, log_options, barrier)?;
    Ok((log, sm))
}

#[cfg(test)]
mod suite_test;
