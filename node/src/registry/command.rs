//! What a Raft entry carries (a stamped [`Request`]) and what applying it answers.
//!
//! JSON values from clients (`result`, checkpoint `data`) travel as JSON text:
//! the log is bincode, which cannot carry self-describing `serde_json::Value`s.

use serde::{Deserialize, Serialize};

use super::StoredRecord;

/// A record's address: namespace and key, validated by the API before proposal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordId {
    pub ns: String,
    pub key: String,
}

impl RecordId {
    pub fn new(ns: impl Into<String>, key: impl Into<String>) -> Self {
        RecordId { ns: ns.into(), key: key.into() }
    }
}

/// The application data of one Raft entry: the leader's stamp (`crate::clock`), which
/// drives the replicated clock, and the command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub stamp_ms: u64,
    pub cmd: Command,
}

/// The variants' order is part of the log format (bincode writes the index):
/// new variants go last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Written by earlier versions for one client operation; its acquisition
    /// took the entry's index as token. Never proposed any more.
    Op(Op),
    /// Written by earlier versions for `POST /v1/batch`; every acquisition in
    /// it took the entry's index as token. Never proposed any more.
    Batch(Vec<Op>),
    /// Proposed by an idle leader so the replicated clock advances without traffic.
    Tick,
    /// Operations applied in order: single calls and batches coalesced into
    /// one entry. Each acquisition's token is derived from the entry's index
    /// and its position ([`token`](super::token)), so no two share one.
    Ops(Vec<Op>),
    /// From this entry on, every replica finds expired records by walking
    /// the records ([`Sweep`](super::Sweep)) and keeps no expiry index.
    /// Proposed once, when every member runs a version that knows it
    /// (`crate::upgrade`): earlier versions cannot decode it.
    SweepRecords,
}

/// A registry operation with every default already resolved by the proposer,
/// so that applying it needs no configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    Claim {
        id: RecordId,
        lease_ms: u64,
        retention_ms: u64,
        fingerprint: Option<String>,
        owner: Option<String>,
        claim_id: Option<String>,
    },
    Checkpoint {
        id: RecordId,
        token: u64,
        stage: String,
        data_json: String,
        lease_ms: Option<u64>,
    },
    Complete {
        id: RecordId,
        token: u64,
        result_json: String,
        retention_ms: Option<u64>,
    },
    Release {
        id: RecordId,
        token: u64,
    },
    Delete {
        id: RecordId,
    },
}

impl Op {
    /// The record the operation addresses.
    pub fn id(&self) -> &RecordId {
        match self {
            Op::Claim { id, .. }
            | Op::Checkpoint { id, .. }
            | Op::Complete { id, .. }
            | Op::Release { id, .. }
            | Op::Delete { id } => id,
        }
    }
}

/// What one operation decided, with the record as stored. The API maps each
/// variant to a status in one place and builds the wire record there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Acquired {
        token: u64,
        takeover: bool,
        record: StoredRecord,
    },
    Completed {
        record: StoredRecord,
    },
    /// Someone else holds a live lease; `retry_after_ms` is what is left of it.
    InProgress {
        record: StoredRecord,
        retry_after_ms: u64,
    },
    FingerprintMismatch,
    Fenced,
    NotFound,
    /// Checkpoint, complete, release or delete succeeded; the record as it now is
    /// (or, for release and delete, as it was when it was removed).
    Done {
        record: StoredRecord,
    },
}

/// The outcomes of an entry, one per operation (none for a tick or a membership change).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub outcomes: Vec<Outcome>,
}
