//! Extractors that turn every malformed input into the API's JSON errors
//! (axum's own rejections answer plain text).

use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use idem_client::proto::{validate_key, validate_namespace};
use serde::de::DeserializeOwned;

use super::error::ApiError;
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

/// `{ns}` of the path, validated.
pub struct NsPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for NsPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(ns) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("bad path: {}", e.body_text())))?;
        validate_namespace(&ns).map_err(|e| ApiError::BadRequest(e.0))?;
        Ok(NsPath(ns))
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
/// Every body of the API is a JSON object: anything else is a 400, although
/// serde would read a struct from an array of its fields (`[null, null]`).
pub struct JsonBody<T>(pub T);

pub fn body_rejection(e: BytesRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(limit)
    } else {
        ApiError::BadRequest(format!("unreadable body: {}", e.body_text()))
    }
}

/// The body limit in force, set by [`read_body`] as a request extension.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

/// How much body a route takes, and how long a client has to send it.
#[derive(Clone, Copy)]
pub struct BodyRules {
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| body_rejection(e, limit))?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        // JSON that starts with `{` is an object, if it parses at all.
        if text.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::BadRequest("the body must be a JSON object".into()));
        }
        serde_json::from_slice(text)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))
    }
}

/// How long an over-limit body is read and dropped before the 413 goes out.
const LINGER: Duration = Duration::from_secs(5);

/// Read the body of every request here, bounded in size and in time, so an
/// over-limit body gets the API's 413 whichever handler runs and however it
/// is framed (at once when `Content-Length` declares too much, else as soon
/// as the limit is passed), and a body that trickles in too slowly a 408.
/// The handler then sees the body in memory; a refusal is the answer to send.
pub async fn read_body(rules: BodyRules, req: Request) -> Result<Request, Response> {
    let limit = rules.max_bytes;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let (parts, body) = req.into_parts();
    let mut chunks = body.into_data_stream();
    let within = match declared {
        Some(n) if n > limit => Err(ApiError::TooLarge(limit)),
        _ => match tokio::time::timeout(rules.timeout, collect(&mut chunks, limit, declared.unwrap_or(0))).await {
            Ok(collected) => collected,
            Err(_) => Err(ApiError::RequestTimeout(rules.timeout)),
        },
    };
    match within {
        Ok(bytes) => {
            let mut req = Request::from_parts(parts, Body::from(bytes));
            req.extensions_mut().insert(BodyLimit(limit));
            Ok(req)
        }
        Err(e) => {
            if matches!(e, ApiError::TooLarge(_)) {
                discard(&mut chunks, limit.saturating_mul(16)).await;
            }
            Err(e.into_response())
        }
    }
}

/// The whole body if it is at most `limit` bytes.
async fn collect(chunks: &mut BodyDataStream, limit: usize, size_hint: usize) -> Result<Bytes, ApiError> {
    let mut body = Vec::with_capacity(size_hint.min(limit));
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("unreadable body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

/// Read and drop up to `cap` more bytes of a rejected body, for at most
/// [`LINGER`], as nginx's lingering close does. Answering while the client is
/// still sending and then closing with unread data makes the kernel reset the
/// connection, and the client sees a broken pipe instead of the 413. The caps
/// keep a hostile sender from holding the node's time; chunks are dropped as read.
async fn discard(chunks: &mut BodyDataStream, cap: usize) {
    let mut read = 0usize;
    let drain = async {
        while let Some(Ok(chunk)) = chunks.next().await {
            read += chunk.len();
            if read >= cap {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

#[cfg(test)]
mod tests {
    use axum::http::Uri;
    use axum::routing::get;
    use axum::{Json, Router};
    use bolero::TypeGenerator;
    use idem_client::path::{key_path, key_path_unchecked};
    use idem_client::proto::{ErrorBody, ErrorCode};
    use tower::ServiceExt;

    use super::*;

    /// Random text is almost never a valid namespace, so valid ones are picked.
    #[derive(Debug, TypeGenerator)]
    enum Ns {
        Valid(u8),
        Any(String),
    }

    impl Ns {
        fn text(&self) -> String {
            const VALID: [&str; 4] =
                ["payments", "a", "Orders.v2_eu-1", "n123456789012345678901234567890123456789012345678901234567890123"];
            match self {
                Ns::Valid(i) => VALID[usize::from(*i) % VALID.len()].to_owned(),
                Ns::Any(ns) => ns.clone(),
            }
        }
    }

    #[derive(Debug, TypeGenerator)]
    enum PathInput {
        /// A namespace and key as a caller has them.
        Text { ns: Ns, key: String },
        /// Any bytes as the key, each percent-encoded: `%FF` and all.
        RawKey { ns: Ns, key: Vec<u8> },
    }

    /// The status and body [`RecordPath`] answers for `path`.
    async fn answer(path: &str) -> (StatusCode, Bytes) {
        let echo = Router::new().route("/v1/ns/{ns}/keys/{key}", get(|RecordPath(id): RecordPath| async { Json(id) }));
        let req = Request::get(path).body(Body::empty()).expect("a request");
        let resp = echo.oneshot(req).await.expect("infallible");
        let status = resp.status();
        (status, axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("a body"))
    }

    fn assert_refused(path: &str, status: StatusCode, body: &[u8]) {
        // 404: the path did not even match the route (a `/` in the namespace).
        assert!(matches!(status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND), "{path}: {status}");
        if status == StatusCode::BAD_REQUEST {
            let body: ErrorBody = serde_json::from_slice(body).expect("an API error body");
            assert_eq!(body.error.code, ErrorCode::BadRequest, "{path}");
        }
    }

    /// Fuzz target: whatever the path holds, the extractor never panics and
    /// refuses with `bad_request`; a valid namespace and key that
    /// `idem_client::path` encoded decode to exactly themselves.
    #[test]
    fn record_paths_decode_to_what_the_client_encoded() {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        bolero::check!().with_type::<PathInput>().for_each(|input| {
            let (path, expected) = match input {
                PathInput::Text { ns, key } => match key_path(&ns.text(), key) {
                    Ok(path) => (path, Some(RecordId::new(ns.text(), key))),
                    Err(_) => (key_path_unchecked(&ns.text(), key), None),
                },
                PathInput::RawKey { ns, key } => {
                    let ns = ns.text();
                    let encoded: String = key.iter().map(|b| format!("%{b:02X}")).collect();
                    let text = String::from_utf8(key.clone()).ok();
                    let valid = text.as_deref().is_some_and(|k| key_path(&ns, k).is_ok());
                    (format!("/v1/ns/{ns}/keys/{encoded}"), text.filter(|_| valid).map(|k| RecordId::new(&ns, k)))
                }
            };
            if path.parse::<Uri>().is_err() {
                return; // no HTTP request can carry it
            }
            let (status, body) = rt.block_on(answer(&path));
            match expected {
                Some(id) => {
                    assert_eq!(status, StatusCode::OK, "{path}");
                    assert_eq!(serde_json::from_slice::<RecordId>(&body).expect("the echoed id"), id, "{path}");
                }
                None => assert_refused(&path, status, &body),
            }
        });
    }
}
