//! Followers proxy linearizable reads, membership changes and backups to the leader,
//! one hop, within the request deadline, so a client may call any node.
//! Writes to records are not proxied: the follower validates them and its
//! proposer sends the operations to the leader in bincode (`App::replicate`).
//! Stale reads and cluster status are answered where they arrive.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use idem_client::backup;
use idem_client::proto::{Consistency, GetQuery, LEADER_HEADER};

use super::error::ApiError;
use super::extract::BodyLimit;
use crate::app::App;

/// Name the leader in a client API answer ([`LEADER_HEADER`]).
pub fn name_leader(app: &App, resp: &mut Response) {
    if let Some(v) = app.leader_addr().and_then(|addr| HeaderValue::try_from(addr).ok()) {
        resp.headers_mut().insert(LEADER_HEADER, v);
    }
}

/// Marks a forwarded request so the receiver never forwards it again.
pub const FORWARDED_BY: &str = "x-idem-forwarded-by";

fn query(req: &Request) -> GetQuery {
    axum::extract::Query::<GetQuery>::try_from_uri(req.uri()).map(|q| q.0).unwrap_or_default()
}

/// Whether the request must be served by the leader. A request a peer
/// forwarded is served here; only a peer may say it forwarded one.
fn needs_leader(app: &App, req: &Request) -> bool {
    if req.headers().contains_key(FORWARDED_BY) && super::auth::from_peer(app, req) {
        return false;
    }
    let path = req.uri().path();
    match *req.method() {
        Method::GET => {
            (path.starts_with("/v1/ns/") && query(req).consistency == Consistency::Linearizable)
                || path.starts_with("/v1/admin/")
        }
        _ => path.starts_with("/v1/cluster/"),
    }
}

/// Serve `req` here (`next`), or on the leader when it must be served there.
pub async fn to_leader(app: &App, req: Request, next: Next) -> Response {
    if !needs_leader(app, &req) {
        return next.run(req).await;
    }
    let deadline = Instant::now() + app.config.request_timeout;
    let mut leader = app.leader(app.config.request_timeout, None).await;
    if leader.as_ref().is_some_and(|(id, _)| *id == app.id) {
        return next.run(req).await;
    }
    let wait = Duration::from_millis(query(&req).wait_ms.unwrap_or(0));
    let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return ApiError::TooLarge(limit).into_response();
    };
    // A leader that just died refuses connections until the survivors elect
    // another; such a request never arrived, so it is sent once more to the
    // new leader (or served here) rather than failed while a leader exists.
    let mut retried = false;
    loop {
        let Some((id, addr)) = leader else {
            return ApiError::Unavailable("no leader is known".into()).into_response();
        };
        if id == app.id {
            return next.run(Request::from_parts(parts, Body::from(body))).await;
        }
        match proxy(app, &addr, &parts, body.clone(), wait).await {
            Err(Failed::Unreached(_)) if !retried => {
                retried = true;
                leader = app.leader(deadline.saturating_duration_since(Instant::now()), Some(id)).await;
            }
            Err(Failed::Unreached(e) | Failed::Other(e)) => return e.into_response(),
            Ok(resp) => return resp,
        }
    }
}

enum Failed {
    /// No connection to the leader: the request was not delivered.
    Unreached(ApiError),
    Other(ApiError),
}

async fn proxy(app: &App, leader: &str, parts: &Parts, body: Bytes, wait: Duration) -> Result<Response, Failed> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = app
        .peers
        .http
        .request(parts.method.clone(), app.peers.url(leader, path))
        .header(FORWARDED_BY, app.id.to_string())
        .timeout(if path.starts_with("/v1/admin/") {
            super::admin::TRANSFER_WAIT
        } else {
            app.config.request_timeout + wait
        })
        .body(body);
    // The leader checks the caller's token again.
    for name in [header::CONTENT_TYPE, header::AUTHORIZATION] {
        if let Some(v) = parts.headers.get(&name) {
            out = out.header(name, v.clone());
        }
    }
    let resp = out.send().await.map_err(|e| {
        let err = ApiError::Unavailable(format!("forwarding to the leader failed: {e}"));
        if e.is_connect() {
            Failed::Unreached(err)
        } else {
            Failed::Other(err)
        }
    })?;
    let mut builder = Response::builder().status(resp.status());
    for name in [header::CONTENT_TYPE, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = resp.headers().get(&name) {
            builder = builder.header(name, v.clone());
        }
    }
    if resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v == backup::CONTENT_TYPE) {
        // A backup may be gigabytes: passed through as it comes, with its
        // length, so a cut shows as a short body (the client checks it).
        if let Some(len) = resp.headers().get(header::CONTENT_LENGTH) {
            builder = builder.header(header::CONTENT_LENGTH, len.clone());
        }
        let chunks = futures::stream::unfold(resp, |mut resp| async move {
            resp.chunk().await.transpose().map(|chunk| (chunk, resp))
        });
        return builder.body(Body::from_stream(chunks)).map_err(|e| Failed::Other(ApiError::internal(e)));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Failed::Other(ApiError::Unavailable(format!("the leader's answer was cut: {e}"))))?;
    builder.body(Body::from(bytes)).map_err(|e| Failed::Other(ApiError::internal(e)))
}
