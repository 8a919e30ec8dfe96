//! Logs and metrics. Metrics go through the `metrics` facade into the
//! Prometheus exporter; gauges that mirror Raft and state-machine state are
//! refreshed when `/metrics` is scraped, so the hot path only bumps counters.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::App;
use crate::config::LogFormat;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process-wide Prometheus recorder (once; later calls reuse it).
pub fn install_metrics() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("idem_log_fsync_batch_size".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                    )
                })
                .expect("static bucket lists are valid")
                .install_recorder()
                .expect("the metrics recorder is installed once")
        })
        .clone()
}

pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

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

pub async fn render(State(app): State<Arc<App>>) -> String {
    let m = app.metrics();
    metrics::gauge!("idem_raft_term").set(m.current_term as f64);
    metrics::gauge!("idem_raft_leader_id").set(crate::app::known_leader(&m).map_or(0.0, |id| id as f64));
    metrics::gauge!("idem_raft_is_leader").set(if app.is_leader() { 1.0 } else { 0.0 });
    metrics::gauge!("idem_raft_last_log_index").set(m.last_log_index.unwrap_or(0) as f64);
    metrics::gauge!("idem_raft_committed_index").set(app.committed.load(Ordering::Relaxed) as f64);
    metrics::gauge!("idem_raft_applied_index").set(m.last_applied.map_or(0, |l| l.index) as f64);
    metrics::gauge!("idem_raft_snapshot_index").set(m.snapshot.map_or(0, |l| l.index) as f64);
    metrics::gauge!("idem_records_live").set(app.view.records() as f64);
    metrics::gauge!("idem_records_expired_removed").set(app.view.expired_total() as f64);
    metrics::gauge!("idem_clock_ms").set(app.view.clock_ms() as f64);
    install_metrics().render()
}
