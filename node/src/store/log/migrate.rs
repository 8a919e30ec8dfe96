//! Creating the log directory, and importing the log of a data dir written
//! when sled held it (trees `log` and `raft_meta`, see `layout.rs`).
//!
//! Crash-safe by construction: the new log is built in `raft-log.importing/`,
//! synced, marked with `FORMAT`, and only then renamed to `raft-log/` (the
//! commit point); sled's trees are dropped after that. A crash before the
//! rename leaves sled untouched and the staging dir is rebuilt from scratch
//! on the next start; a crash after it finds `raft-log/` complete and only
//! drops the trees again. Nothing is lost or imported twice.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::format;
use super::segment::sync_dir;
use super::state::Change;
use super::{Durable, LogError, LogOptions, LogStore, Opening};
use crate::store::layout;
use crate::types::{Entry, LogId, Vote};

const STAGING: &str = "raft-log.importing";
/// Entries per submission while importing, to bound what waits in memory.
const IMPORT_CHUNK: usize = 1024;

/// The log directory under `data_dir`, created (and imported into) if absent.
/// Refuses a directory whose `FORMAT` marker is missing or unknown.
pub fn ensure_log_dir(data_dir: &Path, db: &sled::Db, options: &LogOptions) -> Result<PathBuf, LogError> {
    let dir = data_dir.join(layout::LOG_DIR);
    if !dir.try_exists()? {
        let staging = data_dir.join(STAGING);
        if staging.try_exists()? {
            fs::remove_dir_all(&staging)?;
        }
        fs::create_dir(&staging)?;
        format::write_marker(&staging)?;
        import(db, &staging, options)?;
        sync_dir(&staging)?;
        fs::rename(&staging, &dir)?;
        sync_dir(data_dir)?;
    }
    format::check_marker(&dir)?;
    drop_legacy(db)?;
    Ok(dir)
}

fn legacy_trees_exist(db: &sled::Db) -> bool {
    db.tree_names().iter().any(|n| n == layout::LOG_TREE.as_bytes() || n == layout::RAFT_META_TREE.as_bytes())
}

fn read<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>, LogError> {
    let Some(bytes) = tree.get(key)? else { return Ok(None) };
    let value = crate::codec::decode(&bytes)
        .map_err(|e| LogError::Legacy(format!("{:?} in raft_meta: {e}", String::from_utf8_lossy(key))))?;
    Ok(Some(value))
}

/// Copy sled's vote, committed and purged ids and live entries into a new log
/// in `staging`, and wait until all of it is durable.
fn import(db: &sled::Db, staging: &Path, options: &LogOptions) -> Result<(), LogError> {
    if !legacy_trees_exist(db) {
        return Ok(());
    }
    let (log, meta) = (db.open_tree(layout::LOG_TREE)?, db.open_tree(layout::RAFT_META_TREE)?);
    // Nothing is applied from the staged log, so its purge needs no barrier,
    // and nothing is appended through Raft, so no node is its leader.
    let opening = Opening { me: None, options, barrier: Arc::new(|| Ok(())), durable: Durable::default() };
    let store = LogStore::open_dir(staging, opening)?;
    let vote: Option<Vote> = read(&meta, layout::VOTE)?;
    let committed: Option<LogId> = read::<Option<LogId>>(&meta, layout::COMMITTED)?.flatten();
    let purged: Option<LogId> = read(&meta, layout::LAST_PURGED)?;
    let marks = [vote.map(Change::Vote), purged.map(Change::Purge), committed.map(|c| Change::Committed(Some(c)))];
    store.submit(marks.into_iter().flatten().collect(), None)?;
    let mut chunk = Vec::with_capacity(IMPORT_CHUNK);
    let mut imported = 0usize;
    for kv in log.iter() {
        let (key, value) = kv?;
        let entry: Entry = crate::codec::decode(&value)
            .map_err(|e| LogError::Legacy(format!("the entry under key {key:?} does not decode: {e}")))?;
        if key.as_ref() != layout::log_key(entry.log_id.index) {
            return Err(LogError::Legacy(format!("key {key:?} holds entry {}", entry.log_id)));
        }
        // The old purge wrote its marker before removing entries; a crash
        // between the two left entries it had already purged.
        if purged.is_some_and(|p| entry.log_id.index <= p.index) {
            continue;
        }
        chunk.push(Change::Entry(Box::new(entry)));
        imported += 1;
        if chunk.len() == IMPORT_CHUNK {
            store.submit(std::mem::take(&mut chunk), None)?;
        }
    }
    store.submit(chunk, None)?;
    store.sync_blocking()?;
    tracing::info!(entries = imported, ?vote, ?purged, "imported the raft log from sled");
    Ok(())
}

/// Drop sled's log trees once the new log holds them (again, if a crash
/// interrupted the first drop).
fn drop_legacy(db: &sled::Db) -> Result<(), LogError> {
    if !legacy_trees_exist(db) {
        return Ok(());
    }
    db.drop_tree(layout::LOG_TREE)?;
    db.drop_tree(layout::RAFT_META_TREE)?;
    db.flush()?;
    tracing::info!("dropped sled's old raft log trees");
    Ok(())
}
