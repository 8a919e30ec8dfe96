//! Extractors that turn every malformed input into the API's JSON errors
//! (axum's own rejections answer plain text).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::http::request::Parts;
use axum::http::StatusCode;
use idem_client::proto::{validate_key, validate_namespace};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::registry::RecordId;

/// `{ns}` and `{key}` of the path, percent-decoded and validated.
pub struct RecordPath(pub RecordId);

impl<S: Send + Sync> FromRequestParts<S> for RecordPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((ns, key)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("bad path: {}", e.body_text())))?;
        validate_namespace(&ns).map_err(|e| ApiError::BadRequest(e.0))?;
        validate_key(&key).map_err(|e| ApiError::BadRequest(e.0))?;
        Ok(RecordPath(RecordId::new(ns, key)))
    }
}

/// Query string parsed into `T`, 400 on anything malformed.
pub struct QueryArgs<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| QueryArgs(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// A JSON body; an empty body reads as `{}` so all-optional bodies may be left out.
pub struct JsonBody<T>(pub T);

pub fn body_rejection(e: BytesRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(limit)
    } else {
        ApiError::BadRequest(format!("unreadable body: {}", e.body_text()))
    }
}

/// The body limit in force, set by `api::router` as a request extension.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| body_rejection(e, limit))?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(text)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))
    }
}

/// Reject over-limit bodies up front with the API's 413, whichever handler runs.
pub async fn limit_body(State(limit): State<usize>, mut req: Request, next: Next) -> axum::response::Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return axum::response::IntoResponse::into_response(ApiError::TooLarge(limit));
    }
    req.extensions_mut().insert(BodyLimit(limit));
    next.run(req).await
}
