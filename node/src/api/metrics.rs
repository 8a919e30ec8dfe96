//! What the API counts, and `GET /metrics`. Gauges that mirror Raft and
//! state-machine state are set from one [`NodeStatus`](crate::app::NodeStatus)
//! when `/metrics` is scraped, so the request path only bumps counters,
//! through handles registered once.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::Extension;
use metrics::{Counter, Histogram};

use super::auth;
use super::error::ApiError;
use crate::app::App;
use crate::auth::Caller;
use crate::registry::Outcome;
use crate::telemetry;

/// A request's counter and latency histogram.
#[derive(Clone)]
struct HttpHandles {
    requests: Counter,
    seconds: Histogram,
}

/// Handles by route template, then method and status: registered on first
/// use, then found without building label strings on every request.
type HttpTable = RwLock<HashMap<String, HashMap<(Method, u16), HttpHandles>>>;

fn http_handles(route: &str, method: &Method, status: u16) -> HttpHandles {
    static TABLE: OnceLock<HttpTable> = OnceLock::new();
    let table = TABLE.get_or_init(HttpTable::default);
    let key = (method.clone(), status);
    if let Some(h) = table.read().unwrap_or_else(|p| p.into_inner()).get(route).and_then(|m| m.get(&key)) {
        return h.clone();
    }
    let labels = [("route", route.to_owned()), ("method", method.to_string()), ("status", status.to_string())];
    let handles = HttpHandles {
        requests: metrics::counter!("idem_http_requests_total", &labels),
        seconds: metrics::histogram!("idem_http_request_duration_seconds", &labels),
    };
    let mut table = table.write().unwrap_or_else(|p| p.into_inner());
    table.entry(route.to_owned()).or_default().insert(key, handles.clone());
    handles
}

/// Count and time every request by route template and status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let start = Instant::now();
    let resp = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    let h = http_handles(route, &method, resp.status().as_u16());
    h.requests.increment(1);
    h.seconds.record(start.elapsed().as_secs_f64());
    resp
}

/// The counters of what claims decide, registered once.
struct OutcomeCounters {
    acquired: Counter,
    takeover: Counter,
    replayed: Counter,
    in_progress: Counter,
    fingerprint_mismatch: Counter,
    fenced: Counter,
}

fn outcome_counters() -> &'static OutcomeCounters {
    static COUNTERS: OnceLock<OutcomeCounters> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        let claims = |outcome: &'static str| metrics::counter!("idem_claims_total", "outcome" => outcome);
        OutcomeCounters {
            acquired: claims("acquired"),
            takeover: claims("takeover"),
            replayed: claims("replayed"),
            in_progress: claims("in_progress"),
            fingerprint_mismatch: claims("fingerprint_mismatch"),
            fenced: metrics::counter!("idem_fenced_total"),
        }
    })
}

/// Count what a claim decided, and fenced writes.
pub fn count(outcome: &Outcome) {
    let c = outcome_counters();
    let counter = match outcome {
        Outcome::Acquired { takeover: true, .. } => &c.takeover,
        Outcome::Acquired { takeover: false, .. } => &c.acquired,
        Outcome::Completed { .. } => &c.replayed,
        Outcome::InProgress { .. } => &c.in_progress,
        Outcome::FingerprintMismatch => &c.fingerprint_mismatch,
        Outcome::Fenced => &c.fenced,
        Outcome::NotFound | Outcome::Done { .. } => return,
    };
    counter.increment(1);
}

/// `GET /metrics`, for admins when tokens are on.
pub async fn render(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>) -> Result<String, ApiError> {
    auth::admin(&caller)?;
    let s = app.status();
    let gauge = |name: &'static str, v: u64| metrics::gauge!(name).set(v as f64);
    gauge("idem_raft_term", s.term);
    gauge("idem_raft_leader_id", s.leader.unwrap_or(0));
    gauge("idem_raft_is_leader", s.is_leader as u64);
    gauge("idem_raft_last_log_index", s.last_log_index.unwrap_or(0));
    gauge("idem_raft_committed_index", s.committed_index);
    gauge("idem_raft_applied_index", s.applied_index.unwrap_or(0));
    gauge("idem_raft_snapshot_index", s.snapshot_index.unwrap_or(0));
    gauge("idem_records_live", s.records);
    gauge("idem_records_expired_removed", s.expired_total);
    gauge("idem_clock_ms", s.clock_ms);
    Ok(telemetry::install_metrics().render())
}
