//! Write-back of applied state into sled, off the apply path.
//!
//! Applies only add to the overlay's active layer (in memory). A dedicated
//! thread seals that layer every [`INTERVAL`] (sooner once it holds
//! [`MAX_WRITES`] writes, as etcd's backend commits every 100 ms or 10k
//! writes, a bound in time and in size) and writes it into the state tree as one atomic sled batch, with
//! the applied log id the state machine staged in it. After `kill -9` the
//! tree therefore holds some prefix of the applies exactly, and openraft
//! re-applies the log after that point. Nothing here fsyncs on the way:
//! the log is what makes a write durable. Only a snapshot needs a durable
//! state, because the log behind a snapshot is purged: [`Writeback::freeze`]
//! writes everything back and syncs it to disk first.
//!
//! While frozen the thread writes nothing, so the tree stands still for a
//! snapshot to stream it (or to be replaced by an installed one) while
//! applies continue in memory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::codec::io;
use super::overlay;
use super::view::StateView;
use crate::types::StorageError;

/// How long applied writes may wait in memory before they go to sled. Half
/// of etcd's 100 ms: a write-back's sled inserts hold one of the cores while
/// requests wait for it, and at 100 ms a batch at 64 clients (about 2,000
/// inserts) showed in the p99 (43 ms against 31 ms at 50 ms, same throughput,
/// in three alternating runs on two cores; 25 ms cost throughput).
pub const INTERVAL: Duration = Duration::from_millis(50);
/// Writes in the active layer that call for a write-back at once.
pub const MAX_WRITES: usize = 20_000;

/// The thread; dropping this stops it after a last write-back (none while
/// the tree is frozen: see [`Shared::run`]).
pub struct Writeback {
    control: Control,
    thread: Option<thread::JoinHandle<()>>,
}

/// What the state machine and its snapshot builder ask of the thread.
#[derive(Clone)]
pub struct Control(Arc<Shared>);

struct Shared {
    view: Arc<StateView>,
    db: sled::Db,
    db_dir: PathBuf,
    ctl: Mutex<Ctl>,
    cond: Condvar,
}

#[derive(Default)]
struct Ctl {
    /// Holders of a [`Frozen`] guard; the thread writes nothing while any lives.
    frozen: usize,
    /// The thread is writing a sealed layer.
    busy: bool,
    /// An apply found the active layer full.
    nudged: bool,
    stop: bool,
    /// The first failure to write; every later apply reports it.
    failed: Option<String>,
}

/// Keeps the state tree unchanged while it lives.
pub struct Frozen {
    shared: Arc<Shared>,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let mut ctl = self.shared.lock();
        ctl.frozen -= 1;
        self.shared.cond.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Ctl> {
        self.ctl.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write the active layer into the tree, if there is one to write.
    fn write_back(&self) -> Result<(), StorageError> {
        let Some((tree, layer)) = self.view.write_overlay().seal() else { return Ok(()) };
        overlay::write_into(&tree, &layer)?;
        // On failure the sealed layer stays, so readers still see those writes.
        self.view.write_overlay().unseal();
        Ok(())
    }

    fn run(&self) {
        let mut due = Instant::now() + INTERVAL;
        let mut ctl = self.lock();
        loop {
            if ctl.stop {
                break;
            }
            let now = Instant::now();
            if ctl.frozen > 0 || ctl.failed.is_some() || (now < due && !ctl.nudged) {
                let wait = due.saturating_duration_since(now).max(Duration::from_millis(1));
                ctl = self.cond.wait_timeout(ctl, wait).unwrap_or_else(|p| p.into_inner()).0;
                continue;
            }
            ctl.busy = true;
            ctl.nudged = false;
            drop(ctl);
            let result = self.write_back();
            ctl = self.lock();
            ctl.busy = false;
            if let Err(e) = result {
                tracing::error!(error = %e, "writing applied state into the store");
                ctl.failed = Some(e.to_string());
            }
            self.cond.notify_all();
            due = Instant::now() + INTERVAL;
        }
        let frozen = ctl.frozen > 0;
        drop(ctl);
        if frozen {
            // A snapshot is streaming the tree (or an install replacing it):
            // a write now would put applies past the snapshot's applied id
            // into its file. The log re-applies them on the next start.
            tracing::info!("stopping during a snapshot: the last applies are left to the log");
            return;
        }
        // A clean stop leaves nothing to re-apply.
        let started = Instant::now();
        match self.write_back().and_then(|_| self.db.flush().map(|_| ()).map_err(io)) {
            Ok(()) => tracing::info!(took_ms = started.elapsed().as_millis() as u64, "state written back and flushed"),
            Err(e) => tracing::warn!(error = %e, "final write-back of the state"),
        }
    }
}

impl Writeback {
    /// Start the thread writing `view`'s overlay into `db` (opened at `db_dir`).
    pub fn start(view: Arc<StateView>, db: sled::Db, db_dir: PathBuf) -> Self {
        let shared = Arc::new(Shared { view, db, db_dir, ctl: Mutex::default(), cond: Condvar::new() });
        let worker = shared.clone();
        let thread = thread::Builder::new()
            .name("idem-state-writeback".into())
            .spawn(move || worker.run())
            .expect("spawning the state write-back thread");
        Writeback { control: Control(shared), thread: Some(thread) }
    }

    pub fn control(&self) -> Control {
        self.control.clone()
    }
}

impl Control {
    /// Ask for a write-back now: the active layer holds `len` writes.
    pub fn nudge_if_full(&self, len: usize) {
        if len >= MAX_WRITES {
            self.0.lock().nudged = true;
            self.0.cond.notify_all();
        }
    }

    /// The store is closing (the node is stopping): long work on the tree,
    /// such as streaming or loading a snapshot, should give up with [`stopped`].
    pub fn stopping(&self) -> bool {
        self.0.lock().stop
    }

    /// The write-back failure that makes this store unusable, if any.
    pub fn failure(&self) -> Option<StorageError> {
        let failed = self.0.lock().failed.clone()?;
        Some(io(std::io::Error::other(failed)))
    }

    /// Stop writing back (waiting out a write in progress) until the guard
    /// drops. With `durable`, everything applied so far is first written
    /// into the tree and synced to disk, so the tree holds exactly the
    /// applied state, durably; unless the tree is frozen already, when it
    /// stays as it is (and durable). Refused once the store is closing.
    /// Blocks: call it off the async runtime.
    pub fn freeze(&self, durable: bool) -> Result<Frozen, StorageError> {
        let shared = &self.0;
        let mut ctl = shared.lock();
        // Once the thread has decided on its last write-back, nothing may
        // count on the tree standing still.
        if ctl.stop {
            return Err(io(stopped()));
        }
        ctl.frozen += 1;
        // Under another freeze the tree must not change (a snapshot may be
        // streaming it), and it is already durable: a durable freeze wrote
        // and synced it, an install synced the tree it loaded.
        let alone = ctl.frozen == 1;
        let frozen = Frozen { shared: shared.clone() };
        while ctl.busy {
            ctl = shared.cond.wait(ctl).unwrap_or_else(|p| p.into_inner());
        }
        drop(ctl);
        if durable && alone {
            shared.write_back()?;
            shared.db.flush().map_err(io)?;
            sync_files(&shared.db_dir).map_err(io)?;
        }
        Ok(frozen)
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.control.0.lock().stop = true;
        self.control.0.cond.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The error of work given up because the store is closing.
pub fn stopped() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Interrupted, "the node is stopping")
}

/// fsync every file of the sled database at `dir`, and the directories.
/// Also used after a snapshot is loaded into a fresh tree.
/// sled's own flush uses `sync_file_range`, which neither flushes the
/// device's cache nor covers the blob files it writes for large values.
pub fn sync_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let synced = if path.is_dir() { sync_files(&path) } else { File::open(&path).and_then(|f| f.sync_all()) };
        match synced {
            // sled removes files it no longer needs (old blobs, snapshots of its own) as it likes.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    File::open(dir)?.sync_all()
}
