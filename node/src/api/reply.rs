//! How a registry [`Outcome`] answers over HTTP: status, body, `Retry-After`,
//! and the wire form of a stored record. Single calls and batch results go
//! through the same mapping; only the node that answers builds the wire record.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use idem_client::proto::{self, Checkpoint, ClaimResponse, Record};
use serde_json::value::RawValue;
use serde_json::Value;

use super::error::{with_retry_after, ApiError};
use crate::registry::{Outcome, RecordId, RecordState, StoredRecord};

/// An answer with its body serialized once, whether it goes out alone or
/// inside a batch's results.
pub struct Reply {
    pub status: StatusCode,
    pub body: Box<RawValue>,
    pub retry_after_s: Option<u64>,
}

/// JSON of a wire type; serializing plain data to JSON cannot fail.
pub fn json<T: serde::Serialize>(v: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// JSON text the API wrote itself from a parsed value; it always parses back.
fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The record `id` as API.md shows it.
pub fn wire(id: &RecordId, rec: &StoredRecord) -> Record {
    Record {
        namespace: id.ns.clone(),
        key: id.key.clone(),
        state: match rec.state {
            RecordState::InProgress => proto::RecordState::InProgress,
            RecordState::Completed => proto::RecordState::Completed,
        },
        token: rec.token,
        attempt: rec.attempt,
        claim_id: rec.claim_id.clone(),
        owner: rec.owner.clone(),
        fingerprint: rec.fingerprint.clone(),
        checkpoint: rec.checkpoint.as_ref().map(|c| Checkpoint {
            stage: c.stage.clone(),
            data: parse_json(&c.data_json),
            at_ms: c.at_ms,
        }),
        result: rec.result_json.as_deref().map(parse_json).unwrap_or_default(),
        created_at_ms: rec.created_at_ms,
        updated_at_ms: rec.updated_at_ms,
        lease_expires_at_ms: rec.lease_expires_at_ms,
        expires_at_ms: rec.expires_at_ms,
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Reply { status: e.status(), body: json(&e.body()), retry_after_s: e.retry_after_s() }
    }
}

impl Reply {
    /// The answer to the operation on `id` that decided `outcome`.
    pub fn outcome(id: &RecordId, outcome: Outcome) -> Reply {
        let ok = |status, body| Reply { status, body, retry_after_s: None };
        match outcome {
            Outcome::Acquired { token, takeover, record } => {
                ok(StatusCode::CREATED, json(&ClaimResponse::Acquired { token, takeover, record: wire(id, &record) }))
            }
            Outcome::Completed { record } => {
                ok(StatusCode::OK, json(&ClaimResponse::Completed { record: wire(id, &record) }))
            }
            Outcome::InProgress { record, retry_after_ms } => Reply {
                status: StatusCode::CONFLICT,
                body: json(&ClaimResponse::InProgress { record: wire(id, &record) }),
                retry_after_s: Some(retry_after_ms.div_ceil(1000).max(1)),
            },
            Outcome::FingerprintMismatch => ApiError::FingerprintMismatch.into(),
            Outcome::Fenced => ApiError::Fenced.into(),
            Outcome::NotFound => ApiError::NotFound.into(),
            Outcome::Done { record } => ok(StatusCode::OK, json(&wire(id, &record))),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        with_retry_after(json_response(self.status, &self.body), self.retry_after_s)
    }
}

/// `body` as the answer, without serializing it again.
pub fn json_response(status: StatusCode, body: &RawValue) -> Response {
    let mut resp = (status, String::from(body.get())).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
