//! What the API counts, and `GET /metrics`. Gauges that mirror Raft and
//! state-machine state are set from one [`NodeStatus`](crate::app::NodeStatus)
//! when `/metrics` is scraped, so the request path only bumps counters.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::App;
use crate::registry::Outcome;
use crate::telemetry;

/// Count and time every request by route template and status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("idem_http_requests_total", &labels).increment(1);
    metrics::histogram!("idem_http_request_duration_seconds", &labels).record(start.elapsed().as_secs_f64());
    resp
}

/// Count what a claim decided, and fenced writes.
pub fn count(outcome: &Outcome) {
    let claim = |outcome: &'static str| metrics::counter!("idem_claims_total", "outcome" => outcome).increment(1);
    match outcome {
        Outcome::Acquired { takeover: true, .. } => claim("takeover"),
        Outcome::Acquired { takeover: false, .. } => claim("acquired"),
        Outcome::Completed { .. } => claim("replayed"),
        Outcome::InProgress { .. } => claim("in_progress"),
        Outcome::FingerprintMismatch => claim("fingerprint_mismatch"),
        Outcome::Fenced => metrics::counter!("idem_fenced_total").increment(1),
        Outcome::NotFound | Outcome::Done { .. } => {}
    }
}

pub async fn render(State(app): State<Arc<App>>) -> String {
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
    telemetry::install_metrics().render()
}
