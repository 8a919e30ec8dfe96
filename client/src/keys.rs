//! One method per key endpoint of API.md, with typed answers.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::client::Client;
use crate::error::Error;
use crate::path::key_path;
use crate::proto::{
    CheckpointRequest, ClaimRequest, ClaimResponse, CompleteRequest, Consistency, GetQuery, Record, ReleaseRequest,
};

/// What a claim decided.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    /// The caller holds the key; `token` fences every later write.
    /// `takeover` when an abandoned claim was taken over: look at
    /// `record.checkpoint` to resume rather than redo.
    Acquired { token: u64, takeover: bool, record: Record },
    /// Done earlier: replay `record.result`.
    Completed(Record),
    /// Someone else holds a live lease; try again after `retry_after`.
    InProgress { record: Record, retry_after: Option<Duration> },
}

impl ClaimOutcome {
    pub fn record(&self) -> &Record {
        match self {
            ClaimOutcome::Acquired { record, .. }
            | ClaimOutcome::Completed(record)
            | ClaimOutcome::InProgress { record, .. } => record,
        }
    }

    /// The wire form of the answer, for printing.
    pub fn to_response(&self) -> ClaimResponse {
        match self.clone() {
            ClaimOutcome::Acquired { token, takeover, record } => ClaimResponse::Acquired { token, takeover, record },
            ClaimOutcome::Completed(record) => ClaimResponse::Completed { record },
            ClaimOutcome::InProgress { record, .. } => ClaimResponse::InProgress { record },
        }
    }
}

impl Client {
    /// Claims `key`. Without a `claim_id` one (uuid v4) is generated here,
    /// once, and sent on every retry, so a claim whose answer was lost comes
    /// back as the same acquisition rather than a false "in progress".
    pub async fn claim(&self, ns: &str, key: &str, mut req: ClaimRequest) -> Result<ClaimOutcome, Error> {
        req.validate()?;
        req.claim_id.get_or_insert_with(|| uuid::Uuid::new_v4().to_string());
        let path = format!("{}/claim", key_path(ns, key)?);
        let answer = self.send(Method::POST, &path, Some(&req), Duration::ZERO).await?;
        let retry_after = answer.retry_after;
        Ok(match answer.decode::<ClaimResponse>(&[200, 201, 409])? {
            ClaimResponse::Acquired { token, takeover, record } => ClaimOutcome::Acquired { token, takeover, record },
            ClaimResponse::Completed { record } => ClaimOutcome::Completed(record),
            ClaimResponse::InProgress { record } => ClaimOutcome::InProgress { record, retry_after },
        })
    }

    /// Records progress; with `lease_ms` it is also a heartbeat.
    pub async fn checkpoint(&self, ns: &str, key: &str, req: &CheckpointRequest) -> Result<Record, Error> {
        req.validate()?;
        self.key_write(ns, key, "checkpoint", req).await
    }

    /// Stores the result; repeating it with the same token is a no-op.
    pub async fn complete(&self, ns: &str, key: &str, req: &CompleteRequest) -> Result<Record, Error> {
        req.validate()?;
        self.key_write(ns, key, "complete", req).await
    }

    /// Gives the key up so a retry claims afresh.
    pub async fn release(&self, ns: &str, key: &str, token: u64) -> Result<(), Error> {
        self.key_write::<Value, _>(ns, key, "release", &ReleaseRequest { token }).await.map(drop)
    }

    async fn key_write<T, B>(&self, ns: &str, key: &str, verb: &str, body: &B) -> Result<T, Error>
    where
        T: serde::de::DeserializeOwned,
        B: serde::Serialize,
    {
        let path = format!("{}/{verb}", key_path(ns, key)?);
        self.send(Method::POST, &path, Some(body), Duration::ZERO).await?.decode(&[200])
    }

    /// Reads a record. With `wait_ms`, an in-progress record is held until it
    /// is completed, released or expired, or the wait ends.
    pub async fn get(&self, ns: &str, key: &str, query: &GetQuery) -> Result<Record, Error> {
        query.validate()?;
        let mut path = key_path(ns, key)?;
        if query.consistency == Consistency::Stale {
            path.push_str("?consistency=stale");
        } else {
            path.push_str("?consistency=linearizable");
        }
        let wait = Duration::from_millis(query.wait_ms.unwrap_or(0));
        if let Some(ms) = query.wait_ms {
            path.push_str(&format!("&wait_ms={ms}"));
        }
        self.send::<()>(Method::GET, &path, None, wait).await?.decode(&[200])
    }

    /// Forgets a record whatever its state (operator use). A retry of a
    /// delete whose answer was lost answers `NotFound`.
    pub async fn delete(&self, ns: &str, key: &str) -> Result<(), Error> {
        let path = key_path(ns, key)?;
        self.send::<()>(Method::DELETE, &path, None, Duration::ZERO).await?.decode::<Value>(&[200]).map(drop)
    }
}
