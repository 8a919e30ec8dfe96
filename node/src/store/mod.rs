//! Durable storage of a node on one sled database: the Raft log and vote
//! ([`LogStore`]) and the registry state machine ([`StateMachineStore`]).
//! The on-disk layout is described in `DESIGN.md` beside this file.
//!
//! Nothing here flushes on the request path: log flushes run on the
//! [`flusher`] thread, which groups every append waiting at that moment into one
//! fsync, and votes and snapshot installs flush inside `spawn_blocking`.

mod codec;
mod flusher;
pub mod layout;
mod log;
mod overlay;
mod pending;
mod snapshot;
mod state_machine;
mod view;
mod writeback;

use std::path::Path;

pub use log::LogStore;
pub use state_machine::StateMachineStore;
pub use view::StateView;

use crate::types::StorageError;

/// Open (or create) the node's database under `data_dir` and both stores over it.
/// `cache_bytes` bounds sled's page cache.
pub fn open(data_dir: &Path, cache_bytes: u64) -> Result<(LogStore, StateMachineStore), StorageError> {
    std::fs::create_dir_all(data_dir).map_err(|e| openraft::StorageIOError::write(&e))?;
    let db = sled::Config::new()
        .path(data_dir.join("db"))
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(cache_bytes)
        // Durability comes from explicit flushes at the points Raft requires;
        // sled's own periodic flush would only add fsyncs.
        .flush_every_ms(None)
        .open()
        .map_err(|e| openraft::StorageIOError::write(&e))?;
    let log = LogStore::open(db.clone())?;
    let sm = StateMachineStore::open(db, data_dir.join("db"), data_dir.join("snapshots"))?;
    Ok((log, sm))
}

#[cfg(test)]
mod suite_test;
