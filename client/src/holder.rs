//! The holder of a claim: [`Ctx`] (checkpoints, resume point, fencing), and
//! [`Hold`], the one way to hold a claim while work runs: heartbeat, then
//! complete, or release on failure, panic or cancellation.
//!
//! Shared by [`Client::once`](crate::Client::once) and the tower layer, whose
//! handlers find the `Ctx` in their request extensions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::error::Error;
use crate::proto::{Checkpoint, CheckpointRequest, CompleteRequest, Record};

/// Stage the heartbeat writes when the holder has no checkpoint yet: API.md's
/// heartbeat is a checkpoint, and it needs a stage. [`Ctx::resume_from`]
/// hides it, since it marks no progress.
pub const HEARTBEAT_STAGE: &str = "idem.heartbeat";

/// What the holder of a key may do while it works. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    ns: String,
    key: String,
    token: u64,
    attempt: u32,
    lease_ms: u64,
    resume: Option<Checkpoint>,
    /// The stage and data the heartbeat re-sends, so it never overwrites
    /// progress. The lock also orders checkpoints: a heartbeat cannot land
    /// an older stage after a newer one.
    last: Mutex<(String, Value)>,
    checkpointed: AtomicBool,
    fenced: watch::Sender<bool>,
}

impl Ctx {
    pub(crate) fn new(client: Client, ns: &str, key: &str, token: u64, record: &Record, lease: Duration) -> Ctx {
        let resume = record.checkpoint.clone().filter(|c| c.stage != HEARTBEAT_STAGE);
        let last =
            resume.as_ref().map_or((HEARTBEAT_STAGE.to_owned(), Value::Null), |c| (c.stage.clone(), c.data.clone()));
        Ctx {
            inner: Arc::new(Inner {
                client,
                ns: ns.to_owned(),
                key: key.to_owned(),
                token,
                attempt: record.attempt,
                lease_ms: lease.as_millis() as u64,
                resume,
                last: Mutex::new(last),
                checkpointed: AtomicBool::new(false),
                fenced: watch::channel(false).0,
            }),
        }
    }

    /// The fencing token of this claim.
    pub fn token(&self) -> u64 {
        self.inner.token
    }

    /// 1 for the first claim, +1 per takeover.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// The checkpoint an abandoned earlier attempt left: resume from it
    /// instead of redoing its side effects.
    pub fn resume_from(&self) -> Option<&Checkpoint> {
        self.inner.resume.as_ref()
    }

    /// Records progress (and extends the lease). After the first checkpoint a
    /// failure no longer releases the key by default: a side effect may have
    /// happened, so the next holder must resume, not start over.
    pub async fn checkpoint(&self, stage: &str, data: impl Serialize) -> Result<Record, Error> {
        let data = serde_json::to_value(data).map_err(|e| Error::BadRequest(format!("checkpoint data: {e}")))?;
        let mut last = self.inner.last.lock().await;
        let record = self.write(stage, data.clone()).await?;
        *last = (stage.to_owned(), data);
        self.inner.checkpointed.store(true, Ordering::SeqCst);
        Ok(record)
    }

    /// Whether this holder recorded any checkpoint.
    pub fn checkpointed(&self) -> bool {
        self.inner.checkpointed.load(Ordering::SeqCst)
    }

    /// True once a write was fenced: another holder took the key over, so
    /// this one must stop before its next side effect.
    pub fn is_fenced(&self) -> bool {
        *self.inner.fenced.borrow()
    }

    /// Resolves when the claim is fenced; `select!` on it to stop early.
    pub async fn fenced(&self) {
        let mut rx = self.inner.fenced.subscribe();
        // The sender lives in `self`, so the channel cannot close under us.
        let _ = rx.wait_for(|f| *f).await;
    }

    async fn write(&self, stage: &str, data: Value) -> Result<Record, Error> {
        let req = CheckpointRequest {
            token: self.inner.token,
            stage: stage.to_owned(),
            data,
            lease_ms: Some(self.inner.lease_ms),
        };
        let answer = self.inner.client.checkpoint(&self.inner.ns, &self.inner.key, &req).await;
        if matches!(answer, Err(Error::Fenced | Error::NotFound)) {
            self.inner.fenced.send_replace(true);
        }
        answer
    }

    /// Re-sends the last checkpoint with the lease; false once fenced.
    async fn beat(&self) -> bool {
        let last = self.inner.last.lock().await;
        let _ = self.write(&last.0, last.1.clone()).await;
        !self.is_fenced()
    }

    /// Heartbeats every `every` until the task is aborted.
    fn heartbeat(&self, every: Duration) -> JoinHandle<()> {
        let ctx = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if !ctx.beat().await {
                    return;
                }
            }
        })
    }

    /// Gives the key back. Best effort: if it fails, the lease expires anyway.
    async fn release(&self) {
        let _ = self.inner.client.release(&self.inner.ns, &self.inner.key, self.inner.token).await;
    }
}

/// What to do with the claim when the work fails or never finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Release if no checkpoint was recorded (nothing happened yet, a retry
    /// may start over); else leave it to expire so the next holder resumes.
    #[default]
    ReleaseBeforeCheckpoint,
    /// Always release: the work's failures never leave side effects.
    Release,
    /// Never release: the key stays held until its lease expires.
    LeaveToExpire,
}

impl OnFailure {
    fn releases(self, checkpointed: bool) -> bool {
        match self {
            OnFailure::ReleaseBeforeCheckpoint => !checkpointed,
            OnFailure::Release => true,
            OnFailure::LeaveToExpire => false,
        }
    }
}

/// A claim held while its work runs: the lease is heartbeated until the work
/// ends with [`Hold::complete`] or [`Hold::failed`]. Dropped before either
/// (a panic, a cancelled future), it stops the heartbeat, since nobody uses
/// the lease any more, and gives the key back in the background as its
/// [`OnFailure`] says, so a retry need not wait for the lease to end.
pub(crate) struct Hold {
    ctx: Ctx,
    heartbeat: JoinHandle<()>,
    /// `None` once the work has ended and its outcome was handled.
    on_failure: Option<OnFailure>,
}

impl Hold {
    /// Starts heartbeating `ctx`'s lease every `every`.
    pub(crate) fn start(ctx: &Ctx, every: Duration, on_failure: OnFailure) -> Hold {
        Hold { ctx: ctx.clone(), heartbeat: ctx.heartbeat(every), on_failure: Some(on_failure) }
    }

    /// Ends the hold: stops the heartbeat and says whether to give the key
    /// back. Only the first call may say yes, so the outcome is handled once.
    fn settle(&mut self) -> bool {
        self.heartbeat.abort();
        self.on_failure.take().is_some_and(|p| p.releases(self.ctx.checkpointed()))
    }

    /// The work succeeded: store `output` as the key's result. From here the
    /// key is never released, even if storing fails or this future is
    /// dropped: the side effect happened, and the next holder must resume.
    pub(crate) async fn complete(
        mut self,
        output: &impl Serialize,
        retention: Option<Duration>,
    ) -> Result<Record, Error> {
        self.settle();
        let result = serde_json::to_value(output).map_err(|e| Error::BadRequest(format!("output: {e}")))?;
        let req =
            CompleteRequest { token: self.ctx.token(), result, retention_ms: retention.map(|d| d.as_millis() as u64) };
        self.ctx.inner.client.complete(&self.ctx.inner.ns, &self.ctx.inner.key, &req).await
    }

    /// The work failed: release the key if the policy says so, before this
    /// returns, so a retry right after claims afresh.
    pub(crate) async fn failed(mut self) {
        if self.settle() {
            self.ctx.release().await;
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // Outside a runtime nothing can be sent; the lease then ends by itself.
        if let (true, Ok(rt)) = (self.settle(), tokio::runtime::Handle::try_current()) {
            let ctx = self.ctx.clone();
            rt.spawn(async move { ctx.release().await });
        }
    }
}
