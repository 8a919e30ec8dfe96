//! The segment pipeline (as etcd's WAL file pipeline): a background thread
//! has the next segment ready before it is needed, created as
//! `prepare-<n>.tmp`, zero-filled to its full size and fsynced, so that the
//! writer's rotation is a rename and its fdatasyncs only ever overwrite zeros
//! already on disk (no block allocation, no size change: the cheap kind of
//! fdatasync). Recovery removes any `*.tmp` file: an unfinished or unused
//! segment holds nothing.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;

use super::segment::write_zeros;

pub const TMP_SUFFIX: &str = ".tmp";
/// Zeros are synced every this many bytes, so the preparer never has much
/// unwritten data in flight for the writer's fdatasync to wait behind.
const CHUNK: u64 = 1 << 20;

/// A zero-filled segment file, still under its temporary name.
pub struct Prepared {
    pub file: File,
    pub path: PathBuf,
    pub len: u64,
}

#[derive(Default)]
struct Slot {
    ready: Option<io::Result<Prepared>>,
    wanted: bool,
}

impl Slot {
    /// A segment is wanted and none is ready.
    fn due(&self) -> bool {
        self.wanted && self.ready.is_none()
    }
}

struct Shared {
    slot: Mutex<Slot>,
    wake: Condvar,
    stop: AtomicBool,
}

/// Hands out ready segment files; dropping it stops (and joins) the thread.
pub struct Preparer {
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Preparer {
    /// Prepare segments of `size(seq)` bytes for `first_seq` and the ones after it.
    pub fn start(dir: PathBuf, first_seq: u64, size: impl Fn(u64) -> u64 + Send + 'static) -> io::Result<Self> {
        let shared = Arc::new(Shared { slot: Mutex::default(), wake: Condvar::new(), stop: AtomicBool::new(false) });
        let theirs = shared.clone();
        let thread = thread::Builder::new().name("idem-log-prepare".into()).spawn(move || {
            let s = &*theirs;
            for n in 0u64.. {
                let mut slot = s.slot.lock().unwrap_or_else(PoisonError::into_inner);
                while !slot.due() && !s.stop.load(Ordering::Relaxed) {
                    slot = s.wake.wait(slot).unwrap_or_else(PoisonError::into_inner);
                }
                drop(slot);
                if s.stop.load(Ordering::Relaxed) {
                    return;
                }
                let prepared = prepare(&dir, n, size(first_seq + n), &s.stop);
                let mut slot = s.slot.lock().unwrap_or_else(PoisonError::into_inner);
                slot.ready = Some(prepared);
                slot.wanted = false;
                s.wake.notify_all();
            }
        })?;
        Ok(Preparer { shared, thread: Some(thread) })
    }

    /// Start preparing the next segment now, if it is not ready or under way.
    /// The writer asks once its segment is half full, so a restart or an idle
    /// node does not write a segment of zeros it may not need for a long time.
    pub fn want(&self) {
        let mut slot = self.shared.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.wanted && slot.ready.is_none() {
            slot.wanted = true;
            self.shared.wake.notify_all();
        }
    }

    /// The next zero-filled segment file and its temporary path, waiting for
    /// it only if the pipeline has fallen behind.
    pub fn take(&self) -> io::Result<Prepared> {
        let mut slot = self.shared.slot.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(ready) = slot.ready.take() {
                return ready;
            }
            slot.wanted = true;
            self.shared.wake.notify_all();
            slot = self.shared.wake.wait(slot).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        drop(self.shared.slot.lock().unwrap_or_else(PoisonError::into_inner));
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Write a whole segment of zeros and fsync it (data and size), so later
/// writes into it change neither. Gives up early once `stop` is set.
fn prepare(dir: &Path, n: u64, len: u64, stop: &AtomicBool) -> io::Result<Prepared> {
    let path = dir.join(format!("prepare-{n}{TMP_SUFFIX}"));
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
    let mut done = 0;
    while done < len {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "the log is closing"));
        }
        let chunk = CHUNK.min(len - done);
        write_zeros(&file, done, chunk)?;
        file.sync_data()?;
        done += chunk;
    }
    file.sync_all()?;
    Ok(Prepared { file, path, len })
}
