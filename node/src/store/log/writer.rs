//! Group commit on a dedicated thread. Each job is a run of ops already placed
//! in the stream (see `state.rs`) and, when the caller waits for durability, a
//! completion. The thread takes every job waiting, writes their bytes with one
//! positioned write per segment touched, makes them durable with one
//! `fdatasync` (`File::sync_data`), or writes them durably in one call where
//! direct I/O is allowed (`direct.rs`), and only then completes every job. So
//! concurrent appends, votes and truncations share one fsync, and no async
//! task ever blocks on the disk.
//!
//! Rotation: the full segment is fdatasynced first, then the prepared file is
//! renamed into place and the directory fsynced, so a segment is complete on
//! disk before the next one exists (only the last segment can have a torn
//! tail). After a sync that covered a purge, segments holding only purged
//! entries are deleted, oldest first and never the open one: the checkpoint
//! at the head of each later segment carries vote, committed and purged ids.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::direct::{self, Direct};
use super::index::Pos;
use super::prepare::Preparer;
use super::segment::sync_dir;
use super::state::{lock, Effect, GroupId, LogState, Op};

/// Called once the job's records are durable, or with the error that stopped them.
pub type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

pub struct Job {
    pub ops: Vec<Op>,
    /// None: the records need not be durable yet (a committed id); they are
    /// written now and made durable by the next sync.
    pub done: Option<Done>,
}

/// What recovery found that the writer carries on from.
pub struct Resume {
    /// The open segment: its number and file, or None to start a new one.
    pub active: Option<(u64, Arc<File>)>,
    /// Where the next byte goes in the open segment, and its size.
    pub offset: u64,
    pub capacity: u64,
    /// Per segment, the highest entry index each group wrote into it.
    pub uses: BTreeMap<u64, BTreeMap<GroupId, u64>>,
    /// Per group, the highest purged index on disk.
    pub purged: BTreeMap<GroupId, u64>,
}

/// Jobs waiting for the thread, in the order their records were placed.
#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// A waiting job wants durability: the thread is woken for it.
    wanted: bool,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// The sending side; dropping it (with the last `LogStore` clone) stops the
/// thread after it has finished every job, and joins it.
pub struct WriterHandle {
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

impl WriterHandle {
    /// Queue `job`. Only a job that waits for durability wakes the thread: one
    /// that need not be durable yet (a committed id, once per entry on every
    /// node) goes to disk with the next one that does, or when the log
    /// closes, which saves a thread wake-up per entry.
    pub fn submit(&self, job: Job) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.closed {
            drop(queue);
            if let Some(done) = job.done {
                done(Err(io::Error::other("raft log writer stopped")));
            }
            return;
        }
        if job.done.is_some() && !queue.wanted {
            queue.wanted = true;
            self.shared.wake.notify_one();
        }
        queue.jobs.push(job);
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.closed = true;
        self.shared.wake.notify_one();
        drop(queue);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    /// Every job waiting, once one of them wants durability or the log
    /// closes; None once it is closed and nothing is left.
    fn next_jobs(&self) -> Option<Vec<Job>> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        while !queue.wanted && !queue.closed {
            queue = self.wake.wait(queue).unwrap_or_else(PoisonError::into_inner);
        }
        queue.wanted = false;
        let jobs = std::mem::take(&mut queue.jobs);
        (!jobs.is_empty() || !queue.closed).then_some(jobs)
    }
}

/// The metrics, registered once (not looked up by name per fsync).
struct Metrics {
    fsyncs: metrics::Counter,
    batch: metrics::Histogram,
    seconds: metrics::Histogram,
}

pub struct Writer {
    dir: PathBuf,
    state: Arc<Mutex<LogState>>,
    prepare: Preparer,
    active: Option<(u64, Arc<File>)>,
    /// Bytes placed but not yet written, and the offset in the open segment they start at.
    buf: Vec<u8>,
    buf_at: u64,
    /// The open segment's size.
    capacity: u64,
    uses: BTreeMap<u64, BTreeMap<GroupId, u64>>,
    purged: BTreeMap<GroupId, u64>,
    /// A purge was written since segments were last considered for deletion.
    purge_written: bool,
    /// After a failed write or sync the file's state is unknown: every later job fails.
    failed: Option<String>,
    /// Durable writes to the open segment in one call, where the file system allows.
    direct: Option<Direct>,
    metrics: Metrics,
}

impl Writer {
    /// Register the metrics now, on the caller's thread, so they reach the
    /// recorder the caller sees.
    pub fn new(dir: PathBuf, state: Arc<Mutex<LogState>>, prepare: Preparer, resume: Resume) -> Self {
        let metrics = Metrics {
            fsyncs: metrics::counter!("idem_log_fsyncs_total"),
            batch: metrics::histogram!("idem_log_fsync_batch_size"),
            seconds: metrics::histogram!("idem_log_fsync_seconds"),
        };
        let Resume { active, offset, capacity, uses, purged } = resume;
        let mut writer = Writer {
            dir,
            state,
            prepare,
            active,
            buf: Vec::new(),
            buf_at: offset,
            capacity,
            uses,
            purged,
            purge_written: false,
            failed: None,
            metrics,
            direct: None,
        };
        writer.prepare_if_due();
        writer.direct = writer.open_direct();
        writer
    }

    /// Direct writes to the open segment, if it and the file system allow them.
    fn open_direct(&self) -> Option<Direct> {
        let (seq, file) = self.active.as_ref()?;
        let path = lock(&self.state).ok()?.segment_path(*seq);
        match Direct::open(&path, file, self.buf_at, self.capacity) {
            Ok(direct) => direct,
            Err(e) => {
                tracing::warn!(segment = %path.display(), error = %e, "no direct writes to this raft log segment; writing through the page cache");
                None
            }
        }
    }

    /// Have the next segment prepared once the open one is half full (or absent).
    fn prepare_if_due(&self) {
        if self.active.is_none() || self.buf_at > self.capacity / 2 {
            self.prepare.want();
        }
    }

    pub fn spawn(mut self) -> io::Result<WriterHandle> {
        let shared = Arc::new(Shared { queue: Mutex::default(), wake: Condvar::new() });
        let theirs = shared.clone();
        let thread = thread::Builder::new().name("idem-log-writer".into()).spawn(move || {
            // Ends once the handle is dropped and the queue is drained.
            while let Some(jobs) = theirs.next_jobs() {
                let result = self.commit(&jobs);
                for done in jobs.into_iter().filter_map(|j| j.done) {
                    done(result.as_ref().map(|_| ()).map_err(|e| io::Error::new(e.kind(), e.to_string())));
                }
            }
        })?;
        Ok(WriterHandle { shared, thread: Some(thread) })
    }

    fn commit(&mut self, jobs: &[Job]) -> io::Result<()> {
        if let Some(e) = &self.failed {
            return Err(io::Error::other(format!("raft log writer failed earlier: {e}")));
        }
        let result = self.write_and_sync(jobs);
        if let Err(e) = &result {
            tracing::error!(error = %e, "raft log write failed; the log refuses every later write");
            self.failed = Some(e.to_string());
        }
        result
    }

    fn write_and_sync(&mut self, jobs: &[Job]) -> io::Result<()> {
        let mut entries = 0usize;
        for op in jobs.iter().flat_map(|j| &j.ops) {
            match op {
                Op::Open { seq, head } => {
                    self.rotate(*seq)?;
                    self.buf.extend_from_slice(head);
                }
                Op::Write { at, bytes, effect } => {
                    let next = Pos { seq: self.active_seq(), offset: self.buf_at + self.buf.len() as u64 };
                    if *at != next {
                        return Err(io::Error::other(format!(
                            "raft log writer out of step: {at:?} placed, {next:?} next"
                        )));
                    }
                    self.buf.extend_from_slice(bytes);
                    match *effect {
                        Effect::Entry { group, index } => {
                            entries += 1;
                            let max = self.uses.entry(at.seq).or_default().entry(group).or_default();
                            *max = (*max).max(index);
                        }
                        Effect::Purge { group, index } => {
                            let p = self.purged.entry(group).or_default();
                            *p = (*p).max(index);
                            self.purge_written = true;
                        }
                        Effect::Other => {}
                    }
                }
            }
        }
        let direct = self.flush_buf()?;
        self.prepare_if_due();
        if !jobs.iter().any(|j| j.done.is_some()) {
            return Ok(());
        }
        if let Some((seq, file)) = self.active.clone() {
            self.sync(&file, direct)?;
            if entries > 0 {
                self.metrics.batch.record(entries as f64);
            }
            lock(&self.state).map_err(io::Error::other)?.mark_durable(Pos { seq, offset: self.buf_at });
        }
        if std::mem::take(&mut self.purge_written) {
            self.delete_purged_segments();
        }
        Ok(())
    }

    fn active_seq(&self) -> u64 {
        self.active.as_ref().map_or(0, |(seq, _)| *seq)
    }

    /// Write the buffered bytes where they were placed in the open segment:
    /// with a direct write, durable on return (and then how long it took),
    /// or into the page cache for the next `fdatasync`.
    fn flush_buf(&mut self) -> io::Result<Option<Duration>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let Some((_, file)) = &self.active else {
            return Err(io::Error::other("raft log writer has bytes but no open segment"));
        };
        let started = Instant::now();
        let direct = match self.direct.as_mut().map(|d| d.write(&self.buf, self.buf_at)) {
            Some(Ok(())) => Some(started.elapsed()),
            Some(Err(e)) if direct::unsupported(&e) => {
                tracing::warn!(error = %e, "direct writes to the raft log refused; writing through the page cache");
                self.direct = None;
                file.write_all_at(&self.buf, self.buf_at)?;
                None
            }
            Some(Err(e)) => return Err(e),
            None => {
                file.write_all_at(&self.buf, self.buf_at)?;
                None
            }
        };
        self.buf_at += self.buf.len() as u64;
        self.buf.clear();
        Ok(direct)
    }

    /// Make what is written durable: nothing left to do after a direct write
    /// (`direct`: how long it took), else one `fdatasync`. Either counts as
    /// one sync in the metrics.
    fn sync(&self, file: &File, direct: Option<Duration>) -> io::Result<()> {
        let took = match direct {
            Some(took) => took,
            None => {
                let started = Instant::now();
                file.sync_data()?;
                started.elapsed()
            }
        };
        self.metrics.seconds.record(took.as_secs_f64());
        self.metrics.fsyncs.increment(1);
        Ok(())
    }

    /// Finish the open segment durably, then make the prepared file segment `seq`.
    fn rotate(&mut self, seq: u64) -> io::Result<()> {
        let direct = self.flush_buf()?;
        if let Some((_, file)) = self.active.clone() {
            self.sync(&file, direct)?;
        }
        let prepared = self.prepare.take()?;
        let path = lock(&self.state).map_err(io::Error::other)?.segment_path(seq);
        std::fs::rename(&prepared.path, &path)?;
        sync_dir(&self.dir)?;
        let file = Arc::new(prepared.file);
        lock(&self.state).map_err(io::Error::other)?.register(seq, file.clone());
        self.active = Some((seq, file));
        self.buf_at = 0;
        self.capacity = prepared.len;
        self.uses.entry(seq).or_default();
        self.direct = self.open_direct();
        Ok(())
    }

    /// Delete, oldest first, every segment before the open one whose entries
    /// are all purged. Runs only after a sync, so the purge records and the
    /// open segment's checkpoint are on disk before any file goes. A file that
    /// will not go is left for the next purge: it costs disk, not correctness.
    fn delete_purged_segments(&mut self) {
        let active = self.active_seq();
        while let Some((&seq, uses)) = self.uses.first_key_value() {
            let needed = uses.iter().any(|(g, max)| self.purged.get(g) < Some(max));
            if seq >= active || needed {
                return;
            }
            let Ok(mut state) = lock(&self.state) else { return };
            let path = state.segment_path(seq);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    tracing::warn!(segment = %path.display(), error = %e, "could not delete a purged raft log segment");
                    return;
                }
                _ => tracing::debug!(segment = %path.display(), "deleted a fully purged raft log segment"),
            }
            state.unregister(seq);
            self.uses.remove(&seq);
        }
    }
}
