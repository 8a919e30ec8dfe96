//! The API's errors and their one mapping to HTTP: each error's status and
//! stable code of API.md sit side by side in [`ApiError::table`], as etcd's
//! `toGRPCErrorMap` keeps them. Internal details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use idem_client::proto::{ErrorBody, ErrorCode, ErrorDetail};

use crate::error::ClusterError;
use crate::types::StorageError;

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
    #[error("a valid Authorization: Bearer token is required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("the request body did not arrive within {0:?}")]
    RequestTimeout(std::time::Duration),
    #[error("internal error")]
    Internal(String),
}

/// Seconds a client should wait before retrying after a 503.
const UNAVAILABLE_RETRY_AFTER_S: u64 = 1;

impl ApiError {
    /// The one table: every error's HTTP status and API.md code.
    fn table(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            ApiError::NotFound => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            ApiError::FingerprintMismatch => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::FingerprintMismatch),
            ApiError::Fenced => (StatusCode::CONFLICT, ErrorCode::Fenced),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, ErrorCode::RequestTimeout),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.table().0
    }

    pub fn retry_after_s(&self) -> Option<u64> {
        matches!(self, ApiError::Unavailable(_)).then_some(UNAVAILABLE_RETRY_AFTER_S)
    }

    pub fn body(&self) -> ErrorBody {
        if let ApiError::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        ErrorBody { error: ErrorDetail { code: self.table().1, message: self.to_string() } }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::internal(e)
    }
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Unavailable(m) => ApiError::Unavailable(m),
            ClusterError::Refused(m) => ApiError::BadRequest(m),
            ClusterError::Forbidden(m) => ApiError::Forbidden(m),
        }
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
        let unauthorized = matches!(self, ApiError::Unauthorized);
        let mut resp = with_retry_after((self.status(), Json(self.body())).into_response(), retry);
        if unauthorized {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_the_status_and_code_of_api_md() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400, "bad_request"),
            (ApiError::NotFound, 404, "not_found"),
            (ApiError::TooLarge(1), 413, "too_large"),
            (ApiError::Unavailable("x".into()), 503, "unavailable"),
            (ApiError::FingerprintMismatch, 422, "fingerprint_mismatch"),
            (ApiError::Fenced, 409, "fenced"),
            (ApiError::MethodNotAllowed, 405, "method_not_allowed"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::Forbidden("x".into()), 403, "forbidden"),
            (ApiError::RequestTimeout(std::time::Duration::from_secs(1)), 408, "request_timeout"),
            (ApiError::Internal("x".into()), 500, "internal"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            assert_eq!(err.body().error.code.as_str(), code, "{err:?}");
            assert_eq!(err.retry_after_s().is_some(), status == 503, "{err:?}");
        }
    }
}
