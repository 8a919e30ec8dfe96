//! The client's one error enum and the one table from a wire answer to it.
//!
//! Callers match on variants, never on strings: `Fenced` means stop, `NotFound`
//! means the record is gone, `Unavailable` means the outcome is unknown and the
//! same call may be retried later.

use crate::proto::{ErrorBody, ErrorCode, Invalid};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key was claimed with another fingerprint (another payload).
    #[error("fingerprint mismatch: the key was used with another payload")]
    FingerprintMismatch,
    /// The token is not the current holder's, or the record is completed.
    #[error("fenced: the token no longer holds the key")]
    Fenced,
    /// No such record: absent, released or expired.
    #[error("not found")]
    NotFound,
    /// Refused before or by the server: malformed or out of bounds.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body is over the node's limit.
    #[error("request too large")]
    TooLarge,
    /// Tokens are on and this client sent none, or one the cluster does not know.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The token lacks the grant for this namespace or operation.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No leader or quorum, and the retry budget is spent. The outcome of a
    /// write is unknown: retrying the same call (same `claim_id`) is safe.
    #[error("registry unavailable: {0}")]
    Unavailable(String),
    /// No endpoint could be reached, and the retry budget is spent.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// An answer this client does not understand (a server bug or a proxy).
    #[error("unexpected answer {status}: {message}")]
    Unexpected { status: u16, message: String },
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::BadRequest(e.0)
    }
}

impl Error {
    /// Maps an error answer (status and body) to a variant: the one table.
    pub(crate) fn from_answer(status: u16, body: &[u8]) -> Error {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let Some(ErrorBody { error }) = parsed else {
            let message = String::from_utf8_lossy(body).chars().take(200).collect();
            return Error::Unexpected { status, message };
        };
        match error.code {
            ErrorCode::FingerprintMismatch => Error::FingerprintMismatch,
            ErrorCode::Fenced => Error::Fenced,
            ErrorCode::NotFound => Error::NotFound,
            ErrorCode::BadRequest => Error::BadRequest(error.message),
            ErrorCode::TooLarge => Error::TooLarge,
            ErrorCode::Unavailable => Error::Unavailable(error.message),
            ErrorCode::Unauthorized => Error::Unauthorized(error.message),
            ErrorCode::Forbidden => Error::Forbidden(error.message),
            ErrorCode::MethodNotAllowed | ErrorCode::Internal | ErrorCode::InProgress | ErrorCode::RequestTimeout => {
                Error::Unexpected { status, message: error.message }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str) -> Vec<u8> {
        format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#).into_bytes()
    }

    #[test]
    fn every_wire_code_maps_to_its_variant() {
        assert!(matches!(Error::from_answer(422, &body("fingerprint_mismatch")), Error::FingerprintMismatch));
        assert!(matches!(Error::from_answer(409, &body("fenced")), Error::Fenced));
        assert!(matches!(Error::from_answer(404, &body("not_found")), Error::NotFound));
        assert!(matches!(Error::from_answer(400, &body("bad_request")), Error::BadRequest(m) if m == "m"));
        assert!(matches!(Error::from_answer(413, &body("too_large")), Error::TooLarge));
        assert!(matches!(Error::from_answer(503, &body("unavailable")), Error::Unavailable(_)));
        assert!(matches!(Error::from_answer(401, &body("unauthorized")), Error::Unauthorized(_)));
        assert!(matches!(Error::from_answer(403, &body("forbidden")), Error::Forbidden(_)));
        assert!(matches!(Error::from_answer(500, &body("internal")), Error::Unexpected { status: 500, .. }));
        assert!(matches!(Error::from_answer(409, &body("in_progress")), Error::Unexpected { status: 409, .. }));
    }

    #[test]
    fn a_body_that_is_not_an_error_is_unexpected() {
        let e = Error::from_answer(502, b"<html>bad gateway</html>");
        assert!(matches!(e, Error::Unexpected { status: 502, message } if message.contains("bad gateway")));
    }
}
