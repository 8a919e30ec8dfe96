//! The API's errors and their one mapping to HTTP: status, stable code of
//! API.md, and the `{"error": {...}}` body. Internal details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use idem_client::proto::{ErrorBody, ErrorCode, ErrorDetail};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no such record")]
    NotFound,
    #[error("request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// No leader or no quorum in time. The outcome of a write is unknown.
    #[error("{0}; the outcome is unknown, retry with the same claim_id")]
    Unavailable(String),
    #[error("the record's fingerprint differs from the one sent")]
    FingerprintMismatch,
    #[error("the token is not the current holder's, or the record is completed")]
    Fenced,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("internal error")]
    Internal(String),
}

/// Seconds a client should wait before retrying after a 503.
const UNAVAILABLE_RETRY_AFTER_S: u64 = 1;

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::TooLarge(_) => ErrorCode::TooLarge,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::FingerprintMismatch => ErrorCode::FingerprintMismatch,
            ApiError::Fenced => ErrorCode::Fenced,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::FingerprintMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Fenced => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn retry_after_s(&self) -> Option<u64> {
        matches!(self, ApiError::Unavailable(_)).then_some(UNAVAILABLE_RETRY_AFTER_S)
    }

    pub fn body(&self) -> ErrorBody {
        if let ApiError::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        ErrorBody { error: ErrorDetail { code: self.code(), message: self.to_string() } }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::types::StorageError> for ApiError {
    fn from(e: crate::types::StorageError) -> Self {
        ApiError::internal(e)
    }
}

/// Attach `Retry-After` (seconds) to a response.
pub fn with_retry_after(mut resp: Response, seconds: Option<u64>) -> Response {
    if let Some(s) = seconds {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.retry_after_s();
        with_retry_after((self.status(), Json(self.body())).into_response(), retry)
    }
}

/// Why a node could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Storage(#[from] crate::types::StorageError),
    #[error("raft: {0}")]
    Raft(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
