//! The status page, as etcd's and rqlite's are built: `GET /` is a static
//! page (`status.html`, compiled into the binary) that polls
//! `GET /v1/status` of the node that served it and draws the answer. It
//! needs nothing from outside the node: no CDN, no external script, style
//! or font, and its `Content-Security-Policy` forbids the browser to fetch
//! any.
//!
//! `/v1/status` names every member with its figures as that member reports
//! them itself: the serving node asks each peer at once, over the
//! node-to-node client (`crate::network::figures`, so mutual TLS holds when
//! it is on), and shows a peer that does not answer within
//! [`MEMBER_TIMEOUT`] as unreachable. So the page loaded from a follower
//! shows real terms and indexes for every member, not the follower's guess.
//! The rest (clock, drift, records, abandoned claims) is the serving node's
//! own [`NodeStatus`]; the outcome rates are summed over the members that
//! answered. As for `/metrics`, only admins may call it when tokens are on;
//! the page itself is open like `/healthz` and asks for a token on a 401 or 403.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use idem_client::proto::{MemberFigures, MemberReport, StatusReport};

use super::auth;
use super::error::ApiError;
use crate::app::{App, NodeStatus};
use crate::auth::Caller;
use crate::network;
use crate::rates;

/// How long the serving node waits for each member's figures; they are
/// asked concurrently, so a page refresh waits at most this long.
const MEMBER_TIMEOUT: Duration = Duration::from_millis(500);

const PAGE: &str = include_str!("status.html");

/// The page may run its own inline script and style and call back the node
/// that served it; nothing else, from anywhere.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";

/// `GET /`: the status page.
pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

/// What this node reports of itself to a peer serving the page (`/raft/status`).
pub fn figures(s: &NodeStatus) -> MemberFigures {
    MemberFigures {
        role: s.role,
        term: s.term,
        leader_id: s.leader,
        last_log_index: s.last_log_index,
        committed_index: s.committed_index,
        applied_index: s.applied_index,
        claims_per_second: s.claim_rates,
    }
}

/// `GET /v1/status`, for admins when tokens are on.
pub async fn report(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<StatusReport>, ApiError> {
    auth::admin(&caller)?;
    let own = app.status();
    let asks = own.members.iter().map(|m| {
        let (app, own) = (&app, &own);
        async move {
            let answer = if m.id == own.id {
                Ok(figures(own))
            } else {
                network::figures(&app.peers, &m.addr, MEMBER_TIMEOUT).await
            };
            let (figures, unreachable) = match answer {
                Ok(f) => (Some(f), None),
                Err(why) => (None, Some(why)),
            };
            MemberReport { id: m.id, addr: m.addr.clone(), voter: m.voter, figures, unreachable }
        }
    });
    let members = futures::future::join_all(asks).await;
    let claims_per_second = members.iter().filter_map(|m| m.figures.as_ref()).map(|f| f.claims_per_second).sum();
    Ok(Json(StatusReport {
        node_id: own.id,
        leader_id: own.leader,
        term: own.term,
        clock_ms: own.clock_ms,
        clock_drift_ms: own.clock_drift_ms,
        records: own.records,
        abandoned_claims: own.abandoned_claims,
        rate_window_ms: rates::WINDOW.as_millis() as u64,
        claims_per_second,
        members,
    }))
}
