//! The monitoring files against a real node: every metric that
//! `deploy/prometheus/alerts.yml` and `deploy/grafana/idem.json` query must be
//! on `/metrics`, or an alert never fires and a panel stays empty. Also the
//! two gauges no event updates: abandoned claims and clock drift, and the
//! switch to sweeping expired records by walking them.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use idem_tests::scenarios::{claim_complete_replay, key_path};
use idem_tests::TestCluster;
use serde_json::{json, Value};

fn deploy_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `idem_*` metric names in PromQL expressions (histograms as their
/// `_bucket`, `_sum` or `_count` series); `up` and functions are not ours.
fn metric_names(exprs: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for expr in exprs {
        let idents = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        names.extend(idents.filter(|w| w.starts_with("idem_")).map(str::to_owned));
    }
    names
}

/// The `expr:` of every rule in an alert file: the text after the key, and
/// the lines of a block scalar (`>-`) indented below it.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((indent, rest)) = line.split_once("expr:") else { continue };
        if !indent.trim().is_empty() && indent.trim() != "-" {
            continue;
        }
        let mut expr = rest.to_owned();
        while let Some(next) = lines.peek() {
            let deeper = next.len() - next.trim_start().len() > indent.len();
            if !deeper || next.trim().is_empty() {
                break;
            }
            expr.push(' ');
            expr.push_str(next.trim());
            lines.next();
        }
        exprs.push(expr);
    }
    exprs
}

/// Every `"expr"` string anywhere in a dashboard's JSON model.
fn dashboard_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// The series names on a `/metrics` page.
fn exported(text: &str) -> BTreeSet<String> {
    let series = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    series.map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned()).collect()
}

async fn scrape(c: &TestCluster, id: u64) -> String {
    let resp = c.api.client().get(format!("{}/metrics", c.url(id))).send().await.expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    resp.text().await.expect("a metrics page")
}

/// The value of an unlabelled series.
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn every_metric_the_alerts_and_the_dashboard_use_is_exported() {
    let alerts = metric_names(rule_exprs(&deploy_file("prometheus/alerts.yml")));
    let dashboard: Value = serde_json::from_str(&deploy_file("grafana/idem.json")).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    let panels = metric_names(exprs);
    for (file, names, sample) in [
        ("alerts.yml", &alerts, "idem_log_fsync_seconds_bucket"),
        ("idem.json", &panels, "idem_http_request_duration_seconds_bucket"),
    ] {
        assert!(names.len() >= 8 && names.contains(sample), "{file}: too few names parsed: {names:?}");
    }

    let c = TestCluster::start(3).await;
    c.wait_ready().await;
    // Traffic on a follower, so its HTTP series exist too; every other
    // series must be there from the start.
    let f = c.follower().await;
    claim_complete_replay(&c, f, "mon", "k").await;
    for id in c.ids() {
        let have = exported(&scrape(&c, id).await);
        let missing: Vec<&String> = alerts.union(&panels).filter(|n| !have.contains(*n)).collect();
        assert!(missing.is_empty(), "node {id} exports none of {missing:?}; it has {have:?}");
    }
}

#[tokio::test]
async fn abandoned_claims_and_clock_drift_are_gauged() {
    let c = TestCluster::start(3).await;
    c.wait_ready().await;
    let l = c.leader().await;
    let path = key_path("mon", "left-behind");
    let claimed = c.post_decided(l, &format!("{path}/claim"), json!({"lease_ms": 100})).await;
    assert_eq!(claimed.status, 201, "{:?}", claimed.body);

    // The lease runs out with the replicated clock; each node's walk of its
    // state (a pass every few seconds) then counts the claim.
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in c.ids() {
        loop {
            let text = scrape(&c, id).await;
            if value(&text, "idem_claims_abandoned") == Some(1.0) {
                let drift = value(&text, "idem_clock_drift_seconds").expect("a drift gauge");
                assert!(drift.abs() < 5.0, "node {id}: a running cluster's clock drifts {drift} s");
                break;
            }
            assert!(Instant::now() < deadline, "node {id} never counted the abandoned claim:\n{text}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    let taken = c.post_decided(l, &format!("{path}/claim"), json!({})).await;
    assert_eq!(taken.body["takeover"], true, "{:?}", taken.body);
    let deadline = Instant::now() + Duration::from_secs(30);
    while value(&scrape(&c, l).await, "idem_claims_abandoned") != Some(0.0) {
        assert!(Instant::now() < deadline, "a taken-over claim is no longer abandoned");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A cluster of this version switches to finding expired records by walking
/// them (one sled key per record), every node shows it, and records past
/// their retention are then removed, not only hidden, by the idle leader's ticks.
#[tokio::test]
async fn every_node_switches_to_walking_the_records_and_the_walk_removes_expired_ones() {
    let c = TestCluster::start(3).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    for id in c.ids() {
        while value(&scrape(&c, id).await, "idem_sweep_walks_records") != Some(1.0) {
            assert!(Instant::now() < deadline, "node {id} never switched:\n{}", c.log_tail(id));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let l = c.leader().await;
    for i in 0..20 {
        let claimed =
            c.post(l, &format!("{}/claim", key_path("sweep", &format!("k{i}"))), json!({"retention_ms": 1000})).await;
        assert_eq!(claimed.status, 201, "{:?}", claimed.body);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for id in c.ids() {
        loop {
            let page = scrape(&c, id).await;
            let (live, removed) = (value(&page, "idem_records_live"), value(&page, "idem_records_expired_removed"));
            if (live, removed) == (Some(0.0), Some(20.0)) {
                break;
            }
            assert!(Instant::now() < deadline, "node {id}: {live:?} live, {removed:?} removed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
