//! The per-request flow of [`IdempotencyLayer`](super::IdempotencyLayer):
//! claim, then replay, refuse, or run the handler as the key's holder.
//!
//! The handler runs in its own task: a client that times out and hangs up
//! must not cancel a half-done side effect, since its retry will be answered
//! from what that run stores.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use futures::future::BoxFuture;
use http::{header, HeaderValue, Request, StatusCode};
use tower::{Service, ServiceExt};

use super::stored::{fingerprint, StoredResponse};
use super::Config;
use crate::error::Error;
use crate::holder::{Ctx, Hold, OnFailure};
use crate::keys::ClaimOutcome;
use crate::proto::{ClaimRequest, ErrorBody, ErrorCode, ErrorDetail, Record};

#[derive(Clone)]
pub struct IdempotencyService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> IdempotencyService<S> {
    pub(super) fn new(inner: S, config: Arc<Config>) -> Self {
        IdempotencyService { inner, config }
    }
}

impl<S> Service<Request<Body>> for IdempotencyService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The clone that was driven to readiness serves this call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move { Ok(handle(config, inner, req).await) })
    }
}

async fn handle<S>(config: Arc<Config>, inner: S, req: Request<Body>) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    if !config.methods.contains(req.method()) {
        return call(inner, req).await;
    }
    let key = match req.headers().get(&config.header).map(|v| v.to_str()) {
        None if !config.required => return call(inner, req).await,
        None => {
            return problem(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("{} header required", config.header),
            )
        }
        Some(Ok(k)) if !k.is_empty() => k.to_owned(),
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("{} must be visible ASCII", config.header),
            )
        }
    };
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, config.max_body_bytes).await else {
        return problem(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge, "body too large to fingerprint");
    };
    let scoped = (config.scope)(&parts, &key);
    let claim = ClaimRequest {
        lease_ms: Some(config.lease.as_millis() as u64),
        retention_ms: config.retention.map(|d| d.as_millis() as u64),
        fingerprint: Some(fingerprint(&parts.method, parts.uri.path(), &body)),
        ..Default::default()
    };
    match config.client.claim(&config.namespace, &scoped, claim).await {
        Ok(ClaimOutcome::Acquired { token, record, .. }) => {
            let ctx = Ctx::new(config.client.clone(), &config.namespace, &scoped, token, &record, config.lease);
            let mut req = Request::from_parts(parts, Body::from(body));
            req.extensions_mut().insert(ctx.clone());
            tokio::spawn(hold(config, inner, req, ctx)).await.unwrap_or_else(|_| {
                problem(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "the handler panicked")
            })
        }
        Ok(ClaimOutcome::Completed(record)) => replay(&record),
        Ok(ClaimOutcome::InProgress { retry_after, .. }) => {
            let mut resp =
                problem(StatusCode::CONFLICT, ErrorCode::InProgress, "a request with this key is in progress");
            set_retry_after(&mut resp, retry_after.unwrap_or_default());
            resp
        }
        Err(Error::FingerprintMismatch) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::FingerprintMismatch,
            "this key was used with another request payload",
        ),
        Err(Error::BadRequest(m)) => problem(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, &m),
        Err(e) => {
            let mut resp =
                problem(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, &format!("idempotency store: {e}"));
            set_retry_after(&mut resp, Duration::from_secs(1));
            resp
        }
    }
}

/// The holder's run: heartbeat, handler, then store the response or give
/// the key back. A 5xx, a panic or a cancelled task releases the key unless
/// the handler checkpointed: then a side effect may have happened and the
/// next holder must resume instead of starting over.
async fn hold<S>(config: Arc<Config>, inner: S, req: Request<Body>, ctx: Ctx) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    let held = Hold::start(&ctx, config.lease / 3, OnFailure::ReleaseBeforeCheckpoint);
    let resp = call(inner, req).await;
    if resp.status().is_server_error() && !config.store_server_errors {
        // Released before answering, so the caller's immediate retry runs.
        held.failed().await;
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "the handler's body failed");
    };
    let stored = StoredResponse::capture(&parts, &body, &config.stored_headers);
    // If completing fails the response still stands; the key stays held
    // until its lease ends and a retry then resumes from the checkpoints.
    let _ = held.complete(&stored, config.retention).await;
    Response::from_parts(parts, Body::from(body))
}

async fn call<S>(inner: S, req: Request<Body>) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    inner.oneshot(req).await.unwrap_or_else(|never| match never {})
}

fn replay(record: &Record) -> Response {
    match serde_json::from_value::<StoredResponse>(record.result.clone()).ok().and_then(|s| s.replay()) {
        Some(resp) => resp.map(Body::from),
        None => problem(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "the stored result is not a response"),
    }
}

fn set_retry_after(resp: &mut Response, after: Duration) {
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
}

/// An answer of the layer itself, in idem's error shape.
fn problem(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = ErrorBody { error: ErrorDetail { code, message: message.to_owned() } };
    let body = serde_json::to_vec(&body).expect("an error body is JSON");
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_layers_own_answers_have_idems_error_shape() {
        let resp = problem(StatusCode::CONFLICT, ErrorCode::InProgress, "busy");
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&body[..], br#"{"error":{"code":"in_progress","message":"busy"}}"#);
    }
}
