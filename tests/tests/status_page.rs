//! The status page (`GET /`) and the figures it polls (`GET /v1/status`):
//! loaded from a follower, every member is named with the figures it reports
//! itself, over mutual TLS when security is on; a member that is down shows
//! as unreachable; the page has no external assets; tokens gate the figures
//! as they gate `/metrics`. The page in a real browser is
//! `scripts/status-page-test.sh`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use idem_client::proto::{MemberFigures, Role, StatusReport};
use idem_tests::scenarios::claim_complete_replay;
use idem_tests::{Security, TestCluster, SETTLE_TIMEOUT};
use reqwest::{Method, StatusCode};

async fn report(c: &TestCluster, id: u64) -> StatusReport {
    let a = c.get(id, "/v1/status").await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    serde_json::from_value(a.body.clone()).unwrap_or_else(|e| panic!("{e}: {}", a.body))
}

/// Wait until node `id`'s report satisfies `done`, and return it.
async fn report_until(c: &TestCluster, id: u64, what: &str, done: impl Fn(&StatusReport) -> bool) -> StatusReport {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let r = report(c, id).await;
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "node {id} never reported {what}: {r:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn figures(r: &StatusReport, id: u64) -> &MemberFigures {
    let m = r.members.iter().find(|m| m.id == id).unwrap_or_else(|| panic!("member {id} missing: {r:#?}"));
    m.figures.as_ref().unwrap_or_else(|| panic!("member {id} unreachable: {:?}", m.unreachable))
}

#[tokio::test]
async fn a_follower_reports_every_member_as_it_reports_itself() {
    let mut c = TestCluster::start(3).await;
    c.wait_ready().await;
    let (leader, f) = (c.leader().await, c.follower().await);
    claim_complete_replay(&c, f, "status", "k").await;
    let committed = c.status(leader).await.and_then(|s| s.committed_index).expect("the leader's commit index");

    let r = report_until(&c, f, "every member caught up", |r| {
        r.members.iter().all(|m| m.figures.as_ref().is_some_and(|x| x.applied_index >= Some(committed)))
    })
    .await;
    assert_eq!((r.node_id, r.leader_id), (f, Some(leader)));
    assert_eq!(r.members.iter().map(|m| m.id).collect::<BTreeSet<_>>(), BTreeSet::from([1, 2, 3]));
    for m in &r.members {
        let x = figures(&r, m.id);
        // Each member's own role: a follower that copied its own figures
        // would show three followers.
        let role = if m.id == leader { Role::Leader } else { Role::Follower };
        assert_eq!((x.role, x.leader_id, x.term), (role, Some(leader), r.term), "member {}: {x:?}", m.id);
        assert!(m.voter && m.addr == c.addr(m.id), "{m:?}");
        assert!(x.applied_index <= x.last_log_index && x.applied_index <= Some(x.committed_index), "{x:?}");
    }
    assert!(r.clock_ms > 0 && r.clock_drift_ms.is_some_and(|d| d.abs() < 5_000), "clock {r:?}");
    assert!(r.records >= 1, "{r:?}");
    // The scenario's claims were answered by the follower: one acquired,
    // one in progress, one replayed, within the rate window.
    let rates = figures(&r, f).claims_per_second;
    assert!(rates.acquired > 0.0 && rates.in_progress > 0.0 && rates.replayed > 0.0, "{rates:?}");
    assert!(r.claims_per_second.acquired >= rates.acquired, "the cluster's rate sums the members': {r:?}");

    // A member that is down is named, unreachable, and does not delay the answer long.
    let other = c.ids().into_iter().find(|id| *id != leader && *id != f).expect("a third node");
    c.kill(other);
    let started = Instant::now();
    let r = report(&c, f).await;
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    let down = r.members.iter().find(|m| m.id == other).expect("the killed member is still named");
    assert!(down.figures.is_none() && down.unreachable.is_some(), "{down:?}");
    assert_eq!(figures(&r, leader).role, Role::Leader);
}

#[tokio::test]
async fn the_page_is_self_contained_html() {
    let c = TestCluster::start(1).await;
    let resp = c.api.client().get(format!("{}/", c.url(1))).send().await.expect("GET /");
    assert_eq!(resp.status(), StatusCode::OK);
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(header("content-type").starts_with("text/html"), "{:?}", resp.headers());
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "CSP {csp:?}");
    let html = resp.text().await.expect("a page");
    assert!(html.starts_with("<!doctype html>") && html.contains("fetch(\"/v1/status\""), "{html}");
    for external in ["http://", "https://", "//cdn", "src=\"//", "href=\"//"] {
        assert!(!html.contains(external), "the page refers to {external}...");
    }
}

/// With TLS, mutual TLS and tokens: the page is open, its figures are for
/// admins, and the serving node gathers them from its peers over mutual TLS.
#[tokio::test]
async fn tokens_gate_the_figures_not_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = Security::make(dir.path(), &[("admin", &[]), ("demo", &["demo=read,write"])]);
    let c = TestCluster::start_secured(3, &[], Some(s.clone())).await;
    c.wait_ready().await;
    let f = c.follower().await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(s.ca()).unwrap()).unwrap();
    let plain = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    let url = |path: &str| format!("{}{path}", c.url(f));

    assert_eq!(plain.get(url("/")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(plain.get(url("/v1/status")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let demo = plain.get(url("/v1/status")).bearer_auth(s.token("demo")).send().await.unwrap();
    assert_eq!(demo.status(), StatusCode::FORBIDDEN);

    let r = report(&c, f).await;
    assert!(r.members.iter().all(|m| m.figures.is_some()), "peers refused the serving node: {r:#?}");
    // The peer RPC behind it is for peers only: a client without a node
    // certificate is refused even with the admin token.
    let rpc = c.api.call(Method::GET, &url("/raft/status"), None).await.unwrap();
    assert_eq!(rpc.status, StatusCode::FORBIDDEN);
}
