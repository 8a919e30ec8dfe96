//! How a registry [`Outcome`] answers over HTTP: status, body, `Retry-After`.
//! Single calls and batch results go through the same mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use idem_client::proto::ClaimResponse;
use serde_json::Value;

use super::error::{with_retry_after, ApiError};
use crate::registry::Outcome;

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after_s: Option<u64>,
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Reply { status: e.status(), body: to_value(&e.body()), retry_after_s: e.retry_after_s() }
    }
}

impl From<Outcome> for Reply {
    fn from(outcome: Outcome) -> Self {
        let ok = |status, body: Value| Reply { status, body, retry_after_s: None };
        match outcome {
            Outcome::Acquired { token, takeover, record } => {
                metrics::counter!("idem_claims_total", "outcome" => if takeover { "takeover" } else { "acquired" })
                    .increment(1);
                ok(StatusCode::CREATED, to_value(&ClaimResponse::Acquired { token, takeover, record }))
            }
            Outcome::Completed { record } => {
                metrics::counter!("idem_claims_total", "outcome" => "replayed").increment(1);
                ok(StatusCode::OK, to_value(&ClaimResponse::Completed { record }))
            }
            Outcome::InProgress { record, retry_after_ms } => {
                metrics::counter!("idem_claims_total", "outcome" => "in_progress").increment(1);
                Reply {
                    status: StatusCode::CONFLICT,
                    body: to_value(&ClaimResponse::InProgress { record }),
                    retry_after_s: Some(retry_after_ms.div_ceil(1000).max(1)),
                }
            }
            Outcome::FingerprintMismatch => {
                metrics::counter!("idem_claims_total", "outcome" => "fingerprint_mismatch").increment(1);
                ApiError::FingerprintMismatch.into()
            }
            Outcome::Fenced => {
                metrics::counter!("idem_fenced_total").increment(1);
                ApiError::Fenced.into()
            }
            Outcome::NotFound => ApiError::NotFound.into(),
            Outcome::Done { record } => ok(StatusCode::OK, to_value(&record)),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        with_retry_after((self.status, Json(self.body)).into_response(), self.retry_after_s)
    }
}
