//! The run's one clock and the history file it is written to while it runs.
//!
//! Clients and the nemesis stamp events with [`Journal::now_us`], a single
//! monotonic clock, so their times are comparable. Events go through a channel
//! to one writer thread: recording never blocks a client on disk, and the file
//! is flushed when the run ends, so the history is whole even if the check fails.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::history::{Event, History, Outcome, Recorder};

pub struct Journal {
    start: Instant,
    tx: Sender<Event>,
    counts: Counts,
}

/// Running totals, for the progress lines printed while the run goes on.
#[derive(Debug, Default)]
pub struct Counts {
    pub ops: AtomicU64,
    pub successful_writes: AtomicU64,
    pub unknown: AtomicU64,
}

/// The writer thread; [`Writer::finish`] waits for every recorded event to be on disk.
pub struct Writer {
    thread: JoinHandle<io::Result<History>>,
}

impl Journal {
    /// Start recording into `path` (truncated).
    pub fn create(path: &Path) -> io::Result<(Arc<Journal>, Writer)> {
        let file = File::create(path)?;
        let (tx, rx) = channel::<Event>();
        let thread = std::thread::spawn(move || {
            let mut out = Recorder::new(file);
            let mut history = History::default();
            for event in rx {
                out.record(&event)?;
                history.push(event);
            }
            out.flush()?;
            Ok(history)
        });
        Ok((Arc::new(Journal { start: Instant::now(), tx, counts: Counts::default() }), Writer { thread }))
    }

    /// Microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    pub fn record(&self, event: Event) {
        if let Event::Op(op) = &event {
            let bump = |c: &AtomicU64, yes: bool| c.fetch_add(u64::from(yes), Ordering::Relaxed);
            bump(&self.counts.ops, true);
            bump(&self.counts.successful_writes, op.is_successful_write());
            bump(&self.counts.unknown, matches!(op.outcome, Outcome::Unknown { .. }));
        }
        // The writer only stops once every journal is dropped, so this cannot fail
        // unless it already failed on disk, which `Writer::finish` reports.
        let _ = self.tx.send(event);
    }
}

impl Writer {
    /// Wait until every journal is dropped and the file is flushed; the whole history.
    pub fn finish(self) -> io::Result<History> {
        self.thread.join().map_err(|_| io::Error::other("history writer panicked"))?
    }
}
