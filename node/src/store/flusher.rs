//! Group commit for the Raft log. `append` writes entries into sled's memory and
//! hands its completion callback here; a dedicated thread takes every callback
//! waiting, makes one `flush` (fsync) and only then reports them persisted. Many
//! concurrent proposals thus share one fsync, and no async task ever blocks on disk.

use std::io;
use std::sync::{mpsc, Arc};
use std::thread;

use openraft::storage::LogFlushed;

use crate::types::TypeConfig;

#[derive(Clone)]
pub struct Flusher {
    inner: Arc<Inner>,
}

/// Dropped with the last clone: closes the queue and joins the thread, so the
/// database is released (and can be reopened) once the store is gone.
struct Inner {
    tx: Option<mpsc::Sender<LogFlushed<TypeConfig>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Flusher {
    pub fn start(db: sled::Db) -> Self {
        let (tx, rx) = mpsc::channel::<LogFlushed<TypeConfig>>();
        let thread = thread::Builder::new()
            .name("idem-log-flush".into())
            .spawn(move || {
                // Ends when every sender (every LogStore clone) is dropped.
                while let Ok(first) = rx.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(rx.try_iter());
                    let result = db.flush().map(|_| ()).map_err(io::Error::other);
                    metrics::counter!("idem_log_fsyncs_total").increment(1);
                    metrics::histogram!("idem_log_fsync_batch_size").record(waiting.len() as f64);
                    for callback in waiting {
                        callback
                            .log_io_completed(result.as_ref().map(|_| ()).map_err(|e| io::Error::other(e.to_string())));
                    }
                }
            })
            .expect("spawning the log flush thread");
        Flusher { inner: Arc::new(Inner { tx: Some(tx), thread: Some(thread) }) }
    }

    /// Report `callback` once everything written before this call is on disk.
    pub fn after_flush(&self, callback: LogFlushed<TypeConfig>) {
        let sent = match &self.inner.tx {
            Some(tx) => tx.send(callback).map_err(|mpsc::SendError(cb)| cb),
            None => Err(callback),
        };
        if let Err(callback) = sent {
            callback.log_io_completed(Err(io::Error::other("log flusher stopped")));
        }
    }
}
