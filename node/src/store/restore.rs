//! Seeding an empty data directory from a backup (`idem-node restore`), as
//! `etcdutl snapshot restore` seeds a new member.
//!
//! The node is made to look as if it had snapshotted at the backup's applied
//! log id and purged its log up to there: the state machine holds the backup,
//! the log starts after it, and the vote is at the backup's term. Two things
//! follow. The next entry has a larger index than any the backup saw, so every
//! token handed out after a restore (derived from the entry index) is larger
//! than every restored one: fencing survives. And the cluster is already
//! initialized, with the membership of `--initial-cluster` written over the
//! backup's, so nodes restored from the same file with the same members elect
//! a leader among themselves and go on; a node added later gets the state by
//! snapshot as usual.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::Path;

use idem_client::backup::{self, BackupError};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::Membership;

use super::snapshot::Header;
use crate::types::{LogId, NodeAddr, NodeId, SnapshotMeta, StoredMembership, Vote};

/// What a restore put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The backup's applied log id: the new log starts after it.
    pub applied: LogId,
    /// The replicated clock as of the backup.
    pub clock_ms: u64,
}

/// Restore the backup at `from` into the empty `data_dir` for node `id` of a
/// cluster of `members`. Refuses, changing nothing, a data dir with data in it
/// and a backup that is truncated, corrupt or not a backup.
pub async fn restore(
    from: &Path,
    data_dir: &Path,
    id: NodeId,
    members: BTreeMap<NodeId, NodeAddr>,
    cache_bytes: u64,
) -> Result<Restored, String> {
    if !members.contains_key(&id) {
        return Err(format!("the members do not include this node's id {id}"));
    }
    if std::fs::read_dir(data_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} is not empty: restore seeds a new node only", data_dir.display()));
    }
    let backup_file = from.to_owned();
    let checked = tokio::task::spawn_blocking(move || -> Result<(), BackupError> {
        backup::verify(&mut BufReader::new(File::open(&backup_file)?)).map(drop)
    });
    checked.await.map_err(|e| e.to_string())?.map_err(|e| format!("{}: {e}", from.display()))?;

    std::fs::create_dir_all(data_dir).map_err(|e| format!("creating {}: {e}", data_dir.display()))?;
    let staged = data_dir.join("restore.snap");
    let (from_path, staged_path) = (from.to_owned(), staged.clone());
    let voters: BTreeSet<NodeId> = members.keys().copied().collect();
    let (meta, restored) =
        tokio::task::spawn_blocking(move || rewrite_membership(&from_path, &staged_path, voters, members))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{}: {e}", from.display()))?;

    let (mut log, mut sm) = super::open(data_dir, id, cache_bytes).map_err(|e| e.to_string())?;
    let file = tokio::fs::File::open(&staged).await.map_err(|e| e.to_string())?;
    sm.install_snapshot(&meta, Box::new(file)).await.map_err(|e| e.to_string())?;
    std::fs::remove_file(&staged).map_err(|e| e.to_string())?;
    log.purge(restored.applied).await.map_err(|e| e.to_string())?;
    log.save_committed(Some(restored.applied)).await.map_err(|e| e.to_string())?;
    // Durable, and written after the purge and the committed id by the same
    // writer: once the vote is on disk, so are they.
    log.save_vote(&Vote::new(restored.applied.leader_id.term, id)).await.map_err(|e| e.to_string())?;
    Ok(restored)
}

/// Copy the snapshot inside the backup at `from` to `to`, its header naming
/// the new members; returns the snapshot's meta for installing it.
fn rewrite_membership(
    from: &Path,
    to: &Path,
    voters: BTreeSet<NodeId>,
    nodes: BTreeMap<NodeId, NodeAddr>,
) -> io::Result<(SnapshotMeta, Restored)> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut input = BufReader::new(File::open(from)?);
    backup::Header::read_from(&mut input).map_err(|e| invalid(e.to_string()))?;
    let mut header: Header = crate::codec::decode_from(&mut input).map_err(|e| invalid(e.to_string()))?;
    let applied = header.applied.ok_or_else(|| invalid("the backup is of a cluster that applied nothing".into()))?;
    header.membership = StoredMembership::new(Some(applied), Membership::new(vec![voters], nodes));
    let mut out = BufWriter::new(File::create(to)?);
    crate::codec::encode_into(&header, &mut out).map_err(|e| invalid(e.to_string()))?;
    io::copy(&mut input, &mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let meta = SnapshotMeta {
        last_log_id: Some(applied),
        last_membership: header.membership,
        snapshot_id: format!("restored-{}-{}", applied.leader_id.term, applied.index),
    };
    Ok((meta, Restored { applied, clock_ms: header.meta.clock_ms }))
}
