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
use idem_client::proto::Role;
use metrics::{Counter, Histogram};

use super::auth;
use super::error::ApiError;
use crate::app::App;
use crate::auth::Caller;
use crate::rates::{self, Counted};
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

impl OutcomeCounters {
    fn of(&self, kind: Counted) -> &Counter {
        match kind {
            Counted::Acquired => &self.acquired,
            Counted::Takeover => &self.takeover,
            Counted::Replayed => &self.replayed,
            Counted::InProgress => &self.in_progress,
            Counted::FingerprintMismatch => &self.fingerprint_mismatch,
            Counted::Fenced => &self.fenced,
        }
    }
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

/// Count what a claim decided, and fenced writes, for `/metrics` and for
/// the status page's rates ([`rates`]).
pub fn count(outcome: &Outcome) {
    let kind = match outcome {
        Outcome::Acquired { takeover: true, .. } => Counted::Takeover,
        Outcome::Acquired { takeover: false, .. } => Counted::Acquired,
        Outcome::Completed { .. } => Counted::Replayed,
        Outcome::InProgress { .. } => Counted::InProgress,
        Outcome::FingerprintMismatch => Counted::FingerprintMismatch,
        Outcome::Fenced => Counted::Fenced,
        Outcome::NotFound | Outcome::Done { .. } => return,
    };
    outcome_counters().of(kind).increment(1);
    rates::record(kind);
}

/// `GET /metrics`, for admins when tokens are on.
pub async fn render(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>) -> Result<String, ApiError> {
    auth::admin(&caller)?;
    let s = app.status();
    let gauge = |name: &'static str, v: u64| metrics::gauge!(name).set(v as f64);
    gauge("idem_raft_term", s.term);
    gauge("idem_raft_leader_id", s.leader.unwrap_or(0));
    gauge("idem_raft_is_leader", (s.role == Role::Leader) as u64);
    gauge("idem_raft_last_log_index", s.last_log_index.unwrap_or(0));
    gauge("idem_raft_committed_index", s.committed_index);
    gauge("idem_raft_applied_index", s.applied_index.unwrap_or(0));
    gauge("idem_raft_snapshot_index", s.snapshot_index.unwrap_or(0));
    gauge("idem_raft_apply_lag_entries", s.committed_index.saturating_sub(s.applied_index.unwrap_or(0)));
    for m in s.members.iter().filter(|m| m.id != s.id) {
        // Every peer has a series on every node, 0 where this node does not
        // lead, so a former leader does not keep reporting stale lags.
        let lag = s.replication_lag.as_ref().and_then(|r| r.get(&m.id)).copied().unwrap_or(0);
        metrics::gauge!("idem_raft_replication_lag_entries", "peer" => m.id.to_string()).set(lag as f64);
    }
    gauge("idem_records_live", s.records);
    gauge("idem_records_expired_removed", s.expired_total);
    gauge("idem_claims_abandoned", s.abandoned_claims);
    gauge("idem_sweep_walks_records", u64::from(app.view.sweeps_records()));
    gauge("idem_clock_ms", s.clock_ms);
    metrics::gauge!("idem_clock_drift_seconds").set(s.clock_drift_ms.unwrap_or(0) as f64 / 1000.0);
    Ok(telemetry::install_metrics().render())
}

/// What a metric is, for its `# TYPE` line.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric a node exports, with its `# HELP` text. The README's
/// "Monitoring" list, `deploy/prometheus/alerts.yml` and
/// `deploy/grafana/idem.json` use these names.
const METRICS: &[(Kind, &str, &str)] = &[
    (
        Kind::Counter,
        "idem_claims_total",
        "Claims answered by this node, by outcome: acquired, takeover (an abandoned claim taken over), \
         replayed (completed: the stored result), in_progress (409: someone holds it), fingerprint_mismatch (422)",
    ),
    (Kind::Counter, "idem_fenced_total", "Checkpoints, completions and releases refused with a stale token"),
    (Kind::Counter, "idem_raft_leader_changes_total", "Leaderships this node learned of: a leader in a new term"),
    (Kind::Counter, "idem_snapshots_total", "State-machine snapshots built here or installed from the leader, by kind"),
    (Kind::Counter, "idem_log_fsyncs_total", "Durable writes of the Raft log: fdatasyncs, or direct O_DSYNC writes"),
    (Kind::Counter, "idem_http_requests_total", "HTTP requests by route template, method and status"),
    (Kind::Gauge, "idem_raft_term", "Current Raft term"),
    (Kind::Gauge, "idem_raft_leader_id", "Id of the leader this node knows of; 0 when it knows none"),
    (Kind::Gauge, "idem_raft_is_leader", "1 on the leader, 0 elsewhere"),
    (Kind::Gauge, "idem_raft_last_log_index", "Index of the last entry in this node's log"),
    (Kind::Gauge, "idem_raft_committed_index", "Highest committed index this node has learned"),
    (Kind::Gauge, "idem_raft_applied_index", "Index of the last entry applied to this node's state machine"),
    (Kind::Gauge, "idem_raft_snapshot_index", "Last index covered by this node's current snapshot"),
    (Kind::Gauge, "idem_raft_apply_lag_entries", "Entries committed but not yet applied on this node"),
    (
        Kind::Gauge,
        "idem_raft_replication_lag_entries",
        "On the leader: entries of its log a follower has not matched yet, by peer; 0 on other nodes",
    ),
    (Kind::Gauge, "idem_records_live", "Records stored (live, or expired and not yet swept)"),
    (Kind::Gauge, "idem_records_expired_removed", "Records removed by expiry over the state machine's life"),
    (
        Kind::Gauge,
        "idem_claims_abandoned",
        "Records in progress past their lease by the replicated clock, as of the last walk of the state (every few s)",
    ),
    (
        Kind::Gauge,
        "idem_sweep_walks_records",
        "1 once the cluster finds expired records by walking them and keeps no expiry index (every member upgraded)",
    ),
    (Kind::Gauge, "idem_clock_ms", "The replicated clock as of the last applied entry, ms since the Unix epoch"),
    (
        Kind::Gauge,
        "idem_clock_drift_seconds",
        "This node's wall clock minus the replicated clock it last applied; the replicated clock may lag by design",
    ),
    (
        Kind::Histogram,
        "idem_log_fsync_seconds",
        "Time of one durable write of the Raft log (an fdatasync, or a direct O_DSYNC write)",
    ),
    (Kind::Histogram, "idem_log_fsync_batch_size", "Log entries made durable by one durable write"),
    (Kind::Histogram, "idem_proposal_batch_ops", "Operations carried by one proposed entry"),
    (
        Kind::Histogram,
        "idem_snapshot_duration_seconds",
        "Time to build a snapshot here, or to install one from the leader, by kind",
    ),
    (Kind::Histogram, "idem_http_request_duration_seconds", "HTTP request latency by route"),
];

/// Describe every metric, and register those that events create, so that
/// `/metrics` names each one (with its help text) from the start, at zero,
/// rather than after its first event. Per-route HTTP series appear with
/// their first request.
pub fn register() {
    for &(kind, name, help) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
    // Taking a handle registers the series; adding 0 keeps any count.
    outcome_counters();
    metrics::counter!("idem_raft_leader_changes_total").increment(0);
    for kind in ["built", "installed"] {
        metrics::counter!("idem_snapshots_total", "kind" => kind).increment(0);
        let _ = metrics::histogram!("idem_snapshot_duration_seconds", "kind" => kind);
    }
}
