//! [`Client::once`]: run a piece of work at most once per key, however often
//! it is called, and hand every caller the same output.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::Client;
use crate::error::Error;
use crate::holder::{Ctx, Hold, OnFailure};
use crate::keys::ClaimOutcome;
use crate::proto::{limits, ClaimRequest, GetQuery, Record};

#[derive(Debug, Clone)]
pub struct OnceOptions {
    /// Lease of the claim, renewed by the heartbeat (default 30 s).
    pub lease: Duration,
    /// Heartbeat period (default a third of the lease).
    pub heartbeat: Option<Duration>,
    /// Retention of the record (default: the server's, 24 h).
    pub retention: Option<Duration>,
    /// Digest of the input; a later call with another digest is refused.
    pub fingerprint: Option<String>,
    pub owner: Option<String>,
    /// How long to wait for another caller's run before giving up (default 60 s).
    pub wait: Duration,
    /// What to do with the claim when the closure fails, panics, or its call
    /// is dropped mid-run.
    pub on_failure: OnFailure,
}

impl Default for OnceOptions {
    fn default() -> Self {
        OnceOptions {
            lease: Duration::from_millis(limits::LEASE_MS_DEFAULT),
            heartbeat: None,
            retention: None,
            fingerprint: None,
            owner: None,
            wait: Duration::from_secs(60),
            on_failure: OnFailure::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OnceError<E> {
    /// The closure ran here and failed.
    #[error("the operation failed: {0}")]
    Failed(E),
    /// Another caller still held the key when the wait ended.
    #[error("still in progress elsewhere (token {})", .0.token)]
    StillInProgress(Box<Record>),
    /// The stored output does not decode as the closure's output type.
    #[error("stored output does not decode: {0}")]
    Decode(serde_json::Error),
    #[error(transparent)]
    Registry(#[from] Error),
}

impl Client {
    /// Runs `f` at most once for `(ns, key)` and returns its output, or the
    /// output stored by the caller that ran it. While `f` runs a heartbeat
    /// extends the lease; `f` gets a [`Ctx`] to checkpoint, to resume from an
    /// abandoned attempt, and to notice being fenced.
    pub async fn once<T, E, F, Fut>(&self, ns: &str, key: &str, opts: OnceOptions, f: F) -> Result<T, OnceError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(Ctx) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let deadline = Instant::now() + opts.wait;
        let req = ClaimRequest {
            lease_ms: Some(opts.lease.as_millis() as u64),
            retention_ms: opts.retention.map(|d| d.as_millis() as u64),
            fingerprint: opts.fingerprint.clone(),
            owner: opts.owner.clone(),
            // One logical call: every claim below, retries included, is the same call.
            claim_id: Some(uuid::Uuid::new_v4().to_string()),
        };
        loop {
            match self.claim(ns, key, req.clone()).await? {
                ClaimOutcome::Acquired { token, record, .. } => {
                    let ctx = Ctx::new(self.clone(), ns, key, token, &record, opts.lease);
                    return run(ctx, &opts, f).await;
                }
                ClaimOutcome::Completed(record) => {
                    return serde_json::from_value(record.result).map_err(OnceError::Decode)
                }
                ClaimOutcome::InProgress { record, retry_after } => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(OnceError::StillInProgress(Box::new(record)));
                    }
                    // Wait no longer than the holder's lease may last, so an
                    // abandoned claim is taken over soon after it expires.
                    let until_lease_ends = retry_after.unwrap_or(Duration::from_secs(1)).max(Duration::from_secs(1));
                    let wait = left.min(until_lease_ends).min(Duration::from_millis(limits::WAIT_MS_MAX));
                    let query = GetQuery { wait_ms: Some(wait.as_millis() as u64), ..Default::default() };
                    match self.get(ns, key, &query).await {
                        Ok(_) | Err(Error::NotFound) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }
}

/// The holder's side of [`Client::once`]: heartbeat, run, then complete or
/// release; if this future is dropped mid-run, the [`Hold`] releases.
async fn run<T, E, F, Fut>(ctx: Ctx, opts: &OnceOptions, f: F) -> Result<T, OnceError<E>>
where
    T: Serialize,
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let held = Hold::start(&ctx, opts.heartbeat.unwrap_or(opts.lease / 3), opts.on_failure);
    match f(ctx).await {
        Ok(output) => {
            held.complete(&output, opts.retention).await?;
            Ok(output)
        }
        Err(e) => {
            held.failed().await;
            Err(OnceError::Failed(e))
        }
    }
}
