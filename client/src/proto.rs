//! Wire types of the idem HTTP API (`shared/API.md`), defined once.
//!
//! The node and the client both use this module, so the two can never disagree on
//! a field name or a bound. It holds no I/O: the node depends on this crate with
//! default features off to get exactly this module.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bounds of API.md, in one place so the node and the client validate alike.
pub mod limits {
    /// Namespace length in bytes (the charset is checked separately).
    pub const NAMESPACE_MAX: usize = 64;
    /// Key length in bytes, UTF-8.
    pub const KEY_MAX: usize = 512;
    pub const LEASE_MS_MIN: u64 = 100;
    pub const LEASE_MS_MAX: u64 = 86_400_000;
    pub const LEASE_MS_DEFAULT: u64 = 30_000;
    pub const RETENTION_MS_MIN: u64 = 1_000;
    pub const RETENTION_MS_MAX: u64 = 2_592_000_000;
    pub const RETENTION_MS_DEFAULT: u64 = 86_400_000;
    pub const FINGERPRINT_MAX: usize = 256;
    pub const OWNER_MAX: usize = 128;
    pub const CLAIM_ID_MAX: usize = 128;
    /// A checkpoint stage is a short label; API.md leaves it open, we bound it like `owner`.
    pub const STAGE_MAX: usize = 128;
    pub const BATCH_MAX_OPS: usize = 1000;
    pub const WAIT_MS_MAX: u64 = 60_000;
    /// Records per page of `GET /v1/ns/{ns}/keys`.
    pub const LIST_LIMIT_DEFAULT: usize = 100;
    pub const LIST_LIMIT_MAX: usize = 1000;
}

/// Response header naming the leader (`host:port` as the cluster knows it) on
/// every client API answer, so a client can send its next calls there and
/// save a follower's hop.
pub const LEADER_HEADER: &str = "idem-leader";

/// The nodes of `scripts/cluster.sh start` with its default base port
/// (API.md): where the CLI and the project's tools look when given none.
pub const LOCAL_ENDPOINTS: &str = "http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003";

/// `in_progress` or `completed`; an absent record is a 404, never a third state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    InProgress,
    Completed,
}

/// The last progress step the holder recorded; survives a takeover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub stage: String,
    #[serde(default)]
    pub data: Value,
    pub at_ms: u64,
}

/// One idempotency record as every read and write answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub namespace: String,
    pub key: String,
    pub state: RecordState,
    pub token: u64,
    pub attempt: u32,
    pub claim_id: Option<String>,
    pub owner: Option<String>,
    pub fingerprint: Option<String>,
    pub checkpoint: Option<Checkpoint>,
    #[serde(default)]
    pub result: Value,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub lease_expires_at_ms: Option<u64>,
    pub expires_at_ms: u64,
}

/// Body of `POST .../claim`; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClaimRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<String>,
}

/// Body of `POST .../checkpoint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRequest {
    pub token: u64,
    pub stage: String,
    #[serde(default)]
    pub data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
}

/// Body of `POST .../complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompleteRequest {
    pub token: u64,
    #[serde(default)]
    pub result: Value,
    /// Defaults to the retention the claim asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
}

/// Body of `POST .../release`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub token: u64,
}

/// Answer of a claim (201, 200 or 409), tagged by `outcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ClaimResponse {
    Acquired { token: u64, takeover: bool, record: Record },
    Completed { record: Record },
    InProgress { record: Record },
}

/// Stable error codes of API.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    NotFound,
    TooLarge,
    Unavailable,
    FingerprintMismatch,
    Fenced,
    MethodNotAllowed,
    Internal,
    /// Tokens are on and the request has no valid bearer token (401).
    Unauthorized,
    /// The token lacks the grant, or a Raft RPC came without a peer certificate (403).
    Forbidden,
    /// The request's body did not arrive within the node's deadline (408).
    RequestTimeout,
    /// Answered (409) only by the client's `IdempotencyLayer`, when another
    /// request with the same key still runs. The node never sends it: its
    /// claim answers a live holder with `{"outcome":"in_progress"}` instead.
    InProgress,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::FingerprintMismatch => "fingerprint_mismatch",
            ErrorCode::Fenced => "fenced",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Internal => "internal",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::InProgress => "in_progress",
        }
    }
}

/// `{"error": {"code": ..., "message": ...}}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// One operation of `POST /v1/batch`, tagged by `op`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BatchOp {
    Claim {
        ns: String,
        key: String,
        #[serde(flatten)]
        req: ClaimRequest,
    },
    Checkpoint {
        ns: String,
        key: String,
        #[serde(flatten)]
        req: CheckpointRequest,
    },
    Complete {
        ns: String,
        key: String,
        #[serde(flatten)]
        req: CompleteRequest,
    },
    Release {
        ns: String,
        key: String,
        #[serde(flatten)]
        req: ReleaseRequest,
    },
    Delete {
        ns: String,
        key: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRequest {
    pub ops: Vec<BatchOp>,
}

/// What the single call would have answered: its status and JSON body. The
/// body type is open so a node can embed bodies it already serialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResult<B = Value> {
    pub status: u16,
    pub body: B,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResponse<B = Value> {
    pub results: Vec<BatchResult<B>>,
}

/// `GET /v1/cluster`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node_id: u64,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub clock_ms: u64,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
}

/// `POST /v1/cluster/learners`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddLearnerRequest {
    pub id: u64,
    pub addr: String,
}

/// `POST /v1/cluster/voters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeVotersRequest {
    pub ids: Vec<u64>,
}

/// `GET /v1/status`: what the status page at `/` shows. The node that
/// answers gathers every member's own figures (see [`MemberReport`]); the
/// rest is its own view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The node that answered.
    pub node_id: u64,
    /// The leader the answering node knows of.
    pub leader_id: Option<u64>,
    pub term: u64,
    /// The replicated clock as of the answering node's last applied entry.
    pub clock_ms: u64,
    /// The answering node's wall clock minus `clock_ms`; null before the
    /// replicated clock has a value.
    pub clock_drift_ms: Option<i64>,
    /// Records stored on the answering node (live, or expired and not yet swept).
    pub records: u64,
    /// Records in progress past their lease, as of the last count (every few s).
    pub abandoned_claims: u64,
    /// The span the per-second rates are averaged over.
    pub rate_window_ms: u64,
    /// Claim outcomes per second answered by the whole cluster: the sum over
    /// the members that answered.
    pub claims_per_second: ClaimRates,
    pub members: Vec<MemberReport>,
}

/// One member as the status page shows it: its figures as it reports them
/// itself, or why it did not answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberReport {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
    /// null when the member did not answer in time.
    pub figures: Option<MemberFigures>,
    /// Why the member's figures are missing; null when it answered.
    pub unreachable: Option<String>,
}

/// What a node reports of itself to a peer gathering a [`StatusReport`].
/// Also sent between nodes in bincode, so no field may be skipped when
/// serialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberFigures {
    pub role: Role,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub last_log_index: Option<u64>,
    pub committed_index: u64,
    pub applied_index: Option<u64>,
    pub claims_per_second: ClaimRates,
}

/// A node's part in Raft, as it sees itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Candidate,
    Follower,
    /// Receives the log but does not vote.
    Learner,
    /// Raft has stopped on this node.
    Shutdown,
}

/// Claims answered per second, by outcome, as `idem_claims_total` and
/// `idem_fenced_total` count them, averaged over a short window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimRates {
    pub acquired: f64,
    /// An abandoned claim taken over (counted apart from `acquired`).
    pub takeover: f64,
    /// Completed: the stored result replayed.
    pub replayed: f64,
    /// 409: someone else holds a live lease.
    pub in_progress: f64,
    pub fingerprint_mismatch: f64,
    /// Checkpoints, completions and releases refused with a stale token.
    pub fenced: f64,
}

impl std::ops::Add for ClaimRates {
    type Output = ClaimRates;

    fn add(self, o: ClaimRates) -> ClaimRates {
        ClaimRates {
            acquired: self.acquired + o.acquired,
            takeover: self.takeover + o.takeover,
            replayed: self.replayed + o.replayed,
            in_progress: self.in_progress + o.in_progress,
            fingerprint_mismatch: self.fingerprint_mismatch + o.fingerprint_mismatch,
            fenced: self.fenced + o.fenced,
        }
    }
}

impl std::iter::Sum for ClaimRates {
    fn sum<I: Iterator<Item = ClaimRates>>(iter: I) -> ClaimRates {
        iter.fold(ClaimRates::default(), |a, b| a + b)
    }
}

/// Read consistency of `GET .../keys/{key}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    #[default]
    Linearizable,
    Stale,
}

/// Query string of `GET .../keys/{key}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetQuery {
    pub consistency: Consistency,
    pub wait_ms: Option<u64>,
}

/// Query string of `GET /v1/ns/{ns}/keys`: one page of a namespace's live
/// records in key order (byte order of the UTF-8 key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    /// Only keys that start with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<RecordState>,
    /// Only claims in progress whose lease the replicated clock has run out:
    /// what a completer should finish or release.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub abandoned: bool,
    /// Records per page, 1 to [`limits::LIST_LIMIT_MAX`] (default [`limits::LIST_LIMIT_DEFAULT`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// The `next` of the previous page: the walk goes on after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    pub consistency: Consistency,
}

/// One page of a listing. `next` is null once the walk is over; otherwise
/// pass it as `after` for the next page (a page may hold fewer records than
/// asked, even none, when the node reached its bound on records examined).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListPage {
    pub records: Vec<Record>,
    pub next: Option<String>,
}

/// Why an input was refused; the message names the field and the bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}

pub fn validate_namespace(ns: &str) -> Result<(), Invalid> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if ns.is_empty() || ns.len() > limits::NAMESPACE_MAX || !ns.chars().all(ok_char) {
        return Err(invalid(format!("namespace must match ^[A-Za-z0-9._-]{{1,{}}}$", limits::NAMESPACE_MAX)));
    }
    Ok(())
}

pub fn validate_key(key: &str) -> Result<(), Invalid> {
    if key.is_empty() || key.len() > limits::KEY_MAX {
        return Err(invalid(format!("key must be 1 to {} bytes of UTF-8", limits::KEY_MAX)));
    }
    Ok(())
}

fn check_range(field: &str, v: Option<u64>, min: u64, max: u64) -> Result<(), Invalid> {
    match v {
        Some(v) if v < min || v > max => Err(invalid(format!("{field} must be within {min}..={max}"))),
        _ => Ok(()),
    }
}

fn check_len(field: &str, v: Option<&str>, max: usize) -> Result<(), Invalid> {
    match v {
        Some(s) if s.len() > max => Err(invalid(format!("{field} must be at most {max} bytes"))),
        _ => Ok(()),
    }
}

fn check_lease(v: Option<u64>) -> Result<(), Invalid> {
    check_range("lease_ms", v, limits::LEASE_MS_MIN, limits::LEASE_MS_MAX)
}

fn check_retention(v: Option<u64>) -> Result<(), Invalid> {
    check_range("retention_ms", v, limits::RETENTION_MS_MIN, limits::RETENTION_MS_MAX)
}

impl ClaimRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_lease(self.lease_ms)?;
        check_retention(self.retention_ms)?;
        check_len("fingerprint", self.fingerprint.as_deref(), limits::FINGERPRINT_MAX)?;
        check_len("owner", self.owner.as_deref(), limits::OWNER_MAX)?;
        check_len("claim_id", self.claim_id.as_deref(), limits::CLAIM_ID_MAX)
    }
}

impl CheckpointRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.stage.is_empty() {
            return Err(invalid("stage must not be empty"));
        }
        check_len("stage", Some(&self.stage), limits::STAGE_MAX)?;
        check_lease(self.lease_ms)
    }
}

impl CompleteRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_retention(self.retention_ms)
    }
}

impl GetQuery {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_range("wait_ms", self.wait_ms, 0, limits::WAIT_MS_MAX)
    }
}

impl ListQuery {
    /// The page size asked for, within its bounds.
    pub fn limit(&self) -> Result<usize, Invalid> {
        match self.limit {
            None => Ok(limits::LIST_LIMIT_DEFAULT),
            Some(n) if (1..=limits::LIST_LIMIT_MAX).contains(&n) => Ok(n),
            Some(_) => Err(invalid(format!("limit must be within 1..={}", limits::LIST_LIMIT_MAX))),
        }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        self.limit()?;
        if self.prefix.as_ref().is_some_and(|p| p.len() > limits::KEY_MAX) {
            return Err(invalid(format!("prefix must be at most {} bytes", limits::KEY_MAX)));
        }
        if self.abandoned && self.state == Some(RecordState::Completed) {
            return Err(invalid("abandoned claims are in progress: abandoned=true contradicts state=completed"));
        }
        Ok(())
    }
}

impl BatchOp {
    /// The namespace and key the operation addresses.
    pub fn target(&self) -> (&str, &str) {
        match self {
            BatchOp::Claim { ns, key, .. }
            | BatchOp::Checkpoint { ns, key, .. }
            | BatchOp::Complete { ns, key, .. }
            | BatchOp::Release { ns, key, .. }
            | BatchOp::Delete { ns, key } => (ns, key),
        }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        let (ns, key) = self.target();
        validate_namespace(ns)?;
        validate_key(key)?;
        match self {
            BatchOp::Claim { req, .. } => req.validate(),
            BatchOp::Checkpoint { req, .. } => req.validate(),
            BatchOp::Complete { req, .. } => req.validate(),
            BatchOp::Release { .. } | BatchOp::Delete { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_charset_and_length() {
        assert!(validate_namespace("payments.v2_eu-1").is_ok());
        assert!(validate_namespace("").is_err());
        assert!(validate_namespace("a/b").is_err());
        assert!(validate_namespace("é").is_err());
        assert!(validate_namespace(&"a".repeat(64)).is_ok());
        assert!(validate_namespace(&"a".repeat(65)).is_err());
    }

    #[test]
    fn key_length_is_in_bytes() {
        assert!(validate_key("k").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key(&"é".repeat(256)).is_ok());
        assert!(validate_key(&"é".repeat(257)).is_err());
    }

    #[test]
    fn list_query_bounds() {
        let q = |s: &str| serde_urlencoded::from_str::<ListQuery>(s).expect("a parseable query");
        assert_eq!(q("").limit(), Ok(limits::LIST_LIMIT_DEFAULT));
        assert_eq!(q("limit=1000&state=in_progress&abandoned=true").validate(), Ok(()));
        for bad in ["limit=0", "limit=1001", "abandoned=true&state=completed"] {
            assert!(q(bad).validate().is_err(), "{bad} is refused");
        }
        assert!(q(&format!("prefix={}", "k".repeat(513))).validate().is_err());
        assert!(serde_urlencoded::from_str::<ListQuery>("state=done").is_err(), "an unknown state");
    }

    #[test]
    fn claim_bounds() {
        let ok = ClaimRequest { lease_ms: Some(100), retention_ms: Some(1000), ..Default::default() };
        assert!(ok.validate().is_ok());
        for bad in [
            ClaimRequest { lease_ms: Some(99), ..Default::default() },
            ClaimRequest { lease_ms: Some(86_400_001), ..Default::default() },
            ClaimRequest { retention_ms: Some(999), ..Default::default() },
            ClaimRequest { retention_ms: Some(2_592_000_001), ..Default::default() },
            ClaimRequest { fingerprint: Some("f".repeat(257)), ..Default::default() },
            ClaimRequest { owner: Some("o".repeat(129)), ..Default::default() },
            ClaimRequest { claim_id: Some("c".repeat(129)), ..Default::default() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn batch_op_wire_shape() {
        let op: BatchOp =
            serde_json::from_str(r#"{"op":"claim","ns":"orders","key":"m-1","lease_ms":500,"claim_id":"c1"}"#).unwrap();
        match &op {
            BatchOp::Claim { ns, key, req } => {
                assert_eq!((ns.as_str(), key.as_str()), ("orders", "m-1"));
                assert_eq!(req.lease_ms, Some(500));
                assert_eq!(req.claim_id.as_deref(), Some("c1"));
            }
            other => panic!("parsed as {other:?}"),
        }
        let op: BatchOp =
            serde_json::from_str(r#"{"op":"complete","ns":"o","key":"k","token":7,"result":{"id":1}}"#).unwrap();
        assert!(matches!(op, BatchOp::Complete { req: CompleteRequest { token: 7, .. }, .. }));
    }

    #[test]
    fn error_codes_serialise_as_their_str() {
        use ErrorCode::*;
        for code in [
            BadRequest,
            NotFound,
            TooLarge,
            Unavailable,
            FingerprintMismatch,
            Fenced,
            MethodNotAllowed,
            Internal,
            Unauthorized,
            Forbidden,
            RequestTimeout,
            InProgress,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str(), "{code:?}");
        }
    }

    #[test]
    fn claim_response_is_tagged_by_outcome() {
        let json = r#"{"outcome":"in_progress","record":{"namespace":"n","key":"k","state":"in_progress",
            "token":3,"attempt":1,"claim_id":null,"owner":null,"fingerprint":null,"checkpoint":null,
            "result":null,"created_at_ms":1,"updated_at_ms":1,"lease_expires_at_ms":2,"expires_at_ms":9}}"#;
        let r: ClaimResponse = serde_json::from_str(json).unwrap();
        assert!(matches!(r, ClaimResponse::InProgress { record } if record.token == 3));
    }
}
