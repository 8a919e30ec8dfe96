//! The registry state machine on sled (openraft's `RaftStateMachine`).
//!
//! Each `apply` call adds its records, the applied log id, the membership and
//! the registry meta to the overlay in memory as one layer of writes; the
//! write-back thread (`writeback`) moves them into sled in atomic batches, so
//! after `kill -9` the state and the point it reflects always agree and
//! nothing is applied twice. Nothing is flushed on apply: the log is durable,
//! and whatever the state lost is re-applied from it on restart. Snapshots are
//! streamed from the tree while the write-back is frozen, so applies go on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};

use super::codec::{encode, io, read_key};
use super::layout;
use super::old_index;
use super::pending::Pending;
use super::snapshot::{self, Header, SnapshotInfo};
use super::view::StateView;
use super::writeback::{sync_files, Control, Writeback};
use super::DurableWatch;
use crate::registry::{self, Command, Meta, Response};
use crate::types::{Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

pub struct StateMachineStore {
    db: sled::Db,
    root: sled::Tree,
    view: Arc<StateView>,
    writeback: Writeback,
    applied: Option<LogId>,
    membership: StoredMembership,
    meta: Meta,
    snapshot_dir: PathBuf,
    db_dir: PathBuf,
    /// The file a snapshot from the leader is being received into.
    incoming: Option<PathBuf>,
    /// Held while a snapshot is built from the tree, so an install cannot
    /// replace the tree under it.
    building: Arc<tokio::sync::Mutex<()>>,
    /// The log's durable end: a leader's entries are committed before its own
    /// fsync, and are applied only after it (`log/durable.rs`).
    log: DurableWatch,
}

/// The applied log id, membership and registry meta a state tree holds.
fn read_header(tree: &sled::Tree) -> Result<Header, StorageError> {
    Ok(Header {
        applied: read_key(tree, layout::APPLIED)?.flatten(),
        membership: read_key(tree, layout::MEMBERSHIP)?.unwrap_or_default(),
        meta: read_key(tree, layout::SM_META)?.unwrap_or_default(),
    })
}

impl StateMachineStore {
    /// Open the state machine in `db` (a sled database at `db_dir`), with
    /// snapshot files under `snapshot_dir`.
    pub(super) fn open(
        db: sled::Db,
        db_dir: PathBuf,
        snapshot_dir: PathBuf,
        log: DurableWatch,
    ) -> Result<Self, StorageError> {
        std::fs::create_dir_all(&snapshot_dir).map_err(io)?;
        let root = db.open_tree(layout::ROOT_TREE).map_err(io)?;
        let current: String = match read_key(&root, layout::CURRENT_SM)? {
            Some(name) => name,
            None => {
                let name = format!("{}0", layout::SM_TREE_PREFIX);
                root.insert(layout::CURRENT_SM, encode(&name)?).map_err(io)?;
                name
            }
        };
        // A crash during a snapshot install leaves a half-loaded tree behind.
        for name in db.tree_names() {
            if name.starts_with(layout::SM_TREE_PREFIX.as_bytes()) && name != current.as_bytes() {
                db.drop_tree(name).map_err(io)?;
            }
        }
        let tree = db.open_tree(&current).map_err(io)?;
        remove_stray_snapshot_files(&root, &snapshot_dir)?;
        let Header { applied, membership, meta } = read_header(&tree)?;
        old_index::remove(&tree)?;
        let view = Arc::new(StateView::new(tree, &meta, applied));
        let writeback = Writeback::start(view.clone(), db.clone(), db_dir.clone());
        Ok(StateMachineStore {
            db,
            root,
            view,
            writeback,
            applied,
            membership,
            meta,
            snapshot_dir,
            db_dir,
            incoming: None,
            building: Arc::default(),
            log,
        })
    }

    pub fn view(&self) -> Arc<StateView> {
        self.view.clone()
    }

    /// The write-back's controls: freezing it with `durable` makes the
    /// applied state durable in sled.
    pub fn writeback(&self) -> Control {
        self.writeback.control()
    }

    fn snapshot_path(&self, file: &str) -> PathBuf {
        self.snapshot_dir.join(file)
    }

    /// A name for a state tree other than the current one. A fresh database's
    /// first id is 0, which names the tree it starts with (`sm-0`): loading a
    /// snapshot into that very tree and then dropping it as the old one would
    /// lose the snapshot (a restore's first install does exactly this).
    fn fresh_tree_name(&self) -> Result<String, StorageError> {
        let current = self.view.read_overlay().tree().name();
        loop {
            let name = format!("{}{}", layout::SM_TREE_PREFIX, self.db.generate_id().map_err(io)?);
            if name.as_bytes() != &current[..] {
                return Ok(name);
            }
        }
    }

    fn current_snapshot(&self) -> Result<Option<SnapshotInfo>, StorageError> {
        read_key(&self.root, layout::CURRENT_SNAPSHOT)
    }
}

/// Make `info` the current snapshot and delete the file it replaces.
fn remember_snapshot(root: &sled::Tree, dir: &Path, info: &SnapshotInfo) -> Result<(), StorageError> {
    let previous: Option<SnapshotInfo> = read_key(root, layout::CURRENT_SNAPSHOT)?;
    root.insert(layout::CURRENT_SNAPSHOT, encode(info)?).map_err(io)?;
    if let Some(prev) = previous.filter(|p| p.file != info.file) {
        let _ = std::fs::remove_file(dir.join(&prev.file));
    }
    Ok(())
}

/// Delete every file in `dir` but the current snapshot's: what a crash left
/// of a transfer (`*.part`), of a build (`*.tmp`), or of an install that never
/// became current (`*.snap`); at a few hundred MiB each they are worth it.
fn remove_stray_snapshot_files(root: &sled::Tree, dir: &Path) -> Result<(), StorageError> {
    let current: Option<SnapshotInfo> = read_key(root, layout::CURRENT_SNAPSHOT)?;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if current.as_ref().is_none_or(|c| entry.file_name() != c.file.as_str()) {
            std::fs::remove_file(entry.path()).map_err(io)?;
        }
    }
    Ok(())
}

/// The snapshot `info` names, opened from `dir` for openraft to stream.
async fn open_snapshot(dir: &Path, info: SnapshotInfo) -> Result<Snapshot, StorageError> {
    let file = tokio::fs::File::open(dir.join(&info.file)).await.map_err(io)?;
    Ok(Snapshot { meta: info.meta, snapshot: Box::new(file) })
}

/// Builds a snapshot from the state tree while applies continue: the
/// write-back is frozen with everything applied so far in the tree (synced),
/// the tree is streamed to a file, and the write-back resumes.
pub struct SnapshotBuilder {
    db: sled::Db,
    root: sled::Tree,
    view: Arc<StateView>,
    writeback: Control,
    dir: PathBuf,
    building: Arc<tokio::sync::Mutex<()>>,
}

impl SnapshotBuilder {
    async fn build(&mut self) -> Result<SnapshotInfo, StorageError> {
        let started = std::time::Instant::now();
        let _building = self.building.clone().lock_owned().await;
        let writeback = self.writeback.clone();
        let frozen = tokio::task::spawn_blocking(move || writeback.freeze(true)).await.map_err(io)??;
        let tree = self.view.read_overlay().tree().clone();
        let header = read_header(&tree)?;
        let snapshot_id = match header.applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, self.db.generate_id().map_err(io)?),
            None => format!("empty-{}", self.db.generate_id().map_err(io)?),
        };
        let meta = SnapshotMeta {
            last_log_id: header.applied,
            last_membership: header.membership.clone(),
            snapshot_id: snapshot_id.clone(),
        };
        let info = SnapshotInfo { meta, file: format!("{snapshot_id}.snap") };
        let path = self.dir.join(&info.file);
        let control = self.writeback.clone();
        tokio::task::spawn_blocking(move || snapshot::write(&tree, &header, &path, || control.stopping()))
            .await
            .map_err(io)?
            .map_err(io)?;
        drop(frozen);
        remember_snapshot(&self.root, &self.dir, &info)?;
        metrics::counter!("idem_snapshots_total", "kind" => "built").increment(1);
        metrics::histogram!("idem_snapshot_duration_seconds", "kind" => "built")
            .record(started.elapsed().as_secs_f64());
        Ok(info)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let built = self.build().await;
        if let Err(e) = &built {
            tracing::error!(error = %e, "building a snapshot");
        }
        open_snapshot(&self.dir, built?).await
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let writeback = self.writeback.control();
        if let Some(e) = writeback.failure() {
            return Err(e);
        }
        let entries: Vec<Entry> = entries.into_iter().collect();
        if let Some(last) = entries.last() {
            self.log.settled(last.log_id.index).await.map_err(io)?;
        }
        let view = self.view.clone();
        let mut responses = Vec::new();
        let mut stamped = false;
        let mut switched = false;
        let writes = {
            let overlay = view.read_overlay();
            let mut tables = Pending::new(&overlay);
            for entry in entries {
                self.applied = Some(entry.log_id);
                let response = match entry.payload {
                    EntryPayload::Blank => Response::default(),
                    EntryPayload::Normal(req) => {
                        stamped = true;
                        switched |= req.cmd == Command::SweepRecords;
                        registry::apply(&mut tables, &mut self.meta, entry.log_id.index, &req)
                    }
                    EntryPayload::Membership(m) => {
                        self.membership = StoredMembership::new(Some(entry.log_id), m);
                        Response::default()
                    }
                };
                responses.push(response);
            }
            // The applied point travels with the writes, into sled in the same batch.
            tables.put_raw(layout::APPLIED, encode(&self.applied)?);
            tables.put_raw(layout::MEMBERSHIP, encode(&self.membership)?);
            tables.put_raw(layout::SM_META, encode(&self.meta)?);
            tables.into_writes()?
        };
        let active = {
            let mut overlay = view.write_overlay();
            overlay.merge(writes);
            overlay.active_len()
        };
        writeback.nudge_if_full(active);
        if switched {
            self.view.set_sweeps_records(true);
        }
        self.view.publish(&self.meta, self.applied);
        // Only stamped entries grant leases at the clock they leave; a blank
        // or membership entry (a new term, a fresh cluster at clock 0) says
        // nothing about how current the clock is.
        if stamped {
            self.view.observe(self.meta.clock_ms);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            root: self.root.clone(),
            view: self.view.clone(),
            writeback: self.writeback.control(),
            dir: self.snapshot_dir.clone(),
            building: self.building.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.snapshot_path(&format!("incoming-{}.part", self.db.generate_id().map_err(io)?));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(io)?;
        if let Some(stale) = self.incoming.replace(path) {
            let _ = std::fs::remove_file(stale);
        }
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let started = std::time::Instant::now();
        let mut file = snapshot.into_std().await;
        // Usually the very file `file` is; then it becomes the snapshot's copy.
        let received = self.incoming.take();
        let info = SnapshotInfo { meta: meta.clone(), file: format!("{}.snap", meta.snapshot_id) };
        let final_path = self.snapshot_path(&info.file);
        let name = self.fresh_tree_name()?;
        let (db, db_dir, root, writeback) =
            (self.db.clone(), self.db_dir.clone(), self.root.clone(), self.writeback.control());
        // No snapshot is being streamed from the tree this replaces.
        let _building = self.building.clone().lock_owned().await;
        // Load into a fresh tree, then switch the root pointer: a crash at any
        // point leaves either the old state or the new one, never a mix. The
        // write-back is frozen meanwhile: what it would write belongs to the
        // state this snapshot replaces.
        let (tree, header, frozen) = tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
            let frozen = writeback.freeze(false)?;
            let tree = db.open_tree(&name).map_err(io)?;
            let header = snapshot::install(&mut file, received.as_deref(), &tree, &final_path, || writeback.stopping())
                .map_err(io)?;
            if let Some(part) = received.filter(|p| p.exists()) {
                // Not renamed into place: a leftover of a restarted transfer.
                let _ = std::fs::remove_file(part);
            }
            let mut batch = sled::Batch::default();
            batch.insert(layout::APPLIED, encode(&header.applied)?);
            batch.insert(layout::MEMBERSHIP, encode(&header.membership)?);
            batch.insert(layout::SM_META, encode(&header.meta)?);
            tree.apply_batch(batch).map_err(io)?;
            db.flush().map_err(io)?;
            sync_files(&db_dir).map_err(io)?;
            root.insert(layout::CURRENT_SM, encode(&name)?).map_err(io)?;
            db.flush().map_err(io)?;
            sync_files(&db_dir).map_err(io)?;
            Ok((tree, header, frozen))
        })
        .await
        .map_err(io)??;
        let walks = tree.contains_key(layout::SWEEP).map_err(io)?;
        let old = self.view.write_overlay().reset(tree);
        self.view.set_sweeps_records(walks);
        drop(frozen);
        self.db.drop_tree(old.name()).map_err(io)?;
        remember_snapshot(&self.root, &self.snapshot_dir, &info)?;
        self.applied = header.applied;
        self.membership = header.membership;
        self.meta = header.meta;
        self.view.publish(&self.meta, self.applied);
        metrics::counter!("idem_snapshots_total", "kind" => "installed").increment(1);
        metrics::histogram!("idem_snapshot_duration_seconds", "kind" => "installed")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        match self.current_snapshot()? {
            Some(info) => Ok(Some(open_snapshot(&self.snapshot_dir, info).await?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
#[path = "state_machine_tests.rs"]
mod tests;
