//! The segment pipeline (as etcd's WAL file pipeline): a background thread
//! keeps the next segment ready, created as `prepare-<n>.tmp`, zero-filled to
//! its full size and fsynced, so that the writer's rotation is a rename and
//! its fdatasyncs only ever overwrite zeros already on disk (no block
//! allocation, no size change: the cheap kind of fdatasync). Recovery removes
//! any `*.tmp` file: an unfinished or unused segment holds nothing.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;

use super::segment::write_zeros;

pub const TMP_SUFFIX: &str = ".tmp";

#[derive(Default)]
struct Slot {
    ready: Option<io::Result<(File, PathBuf)>>,
    stop: bool,
}

/// Hands out ready segment files; dropping it stops (and joins) the thread.
pub struct Preparer {
    shared: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Preparer {
    pub fn start(dir: PathBuf, segment_bytes: u64) -> io::Result<Self> {
        let shared = Arc::new((Mutex::new(Slot::default()), Condvar::new()));
        let theirs = shared.clone();
        let thread = thread::Builder::new().name("idem-log-prepare".into()).spawn(move || {
            let (slot, wake) = &*theirs;
            for n in 0u64.. {
                let prepared = prepare(&dir, n, segment_bytes);
                let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
                s.ready = Some(prepared);
                wake.notify_all();
                while s.ready.is_some() && !s.stop {
                    s = wake.wait(s).unwrap_or_else(PoisonError::into_inner);
                }
                if s.stop {
                    return;
                }
            }
        })?;
        Ok(Preparer { shared, thread: Some(thread) })
    }

    /// The next zero-filled segment file and its temporary path, waiting for
    /// it only if the pipeline has fallen behind.
    pub fn take(&self) -> io::Result<(File, PathBuf)> {
        let (slot, wake) = &*self.shared;
        let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(ready) = s.ready.take() {
                wake.notify_all();
                return ready;
            }
            s = wake.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        let (slot, wake) = &*self.shared;
        slot.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Write a whole segment of zeros and fsync it (data and size), so later
/// writes into it change neither.
fn prepare(dir: &Path, n: u64, segment_bytes: u64) -> io::Result<(File, PathBuf)> {
    let path = dir.join(format!("prepare-{n}{TMP_SUFFIX}"));
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
    write_zeros(&file, 0, segment_bytes)?;
    file.sync_all()?;
    Ok((file, path))
}
