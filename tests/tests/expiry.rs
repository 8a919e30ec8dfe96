//! Time-driven behaviour, all judged by the replicated clock: lease takeover,
//! retention expiry, and `wait_ms` long-polls.

use std::time::{Duration, Instant};

use idem_tests::scenarios::key_path;
use idem_tests::TestCluster;
use serde_json::json;

#[tokio::test]
async fn abandoned_lease_is_taken_over_and_the_old_holder_is_fenced() {
    let c = TestCluster::start(3).await;
    let f = c.follower().await;
    let path = key_path("pay", "takeover");
    // A lease long enough that a loaded machine still checkpoints and
    // claims again within it.
    let t1 = c.post(f, &format!("{path}/claim"), json!({"lease_ms": 1500, "claim_id": "a"})).await.token();
    c.post(
        f,
        &format!("{path}/checkpoint"),
        json!({"token": t1, "stage": "payment_initiated", "data": {"psp": "ch_1"}}),
    )
    .await;
    let early = c.post(f, &format!("{path}/claim"), json!({"claim_id": "b"})).await;
    assert_eq!(early.status, 409, "the lease is still live");

    // No traffic: the idle leader's ticks advance the clock past the lease.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let taken = c.post(f, &format!("{path}/claim"), json!({"claim_id": "b", "lease_ms": 5000})).await;
    assert_eq!(taken.status, 201, "{:?}", taken.body);
    assert_eq!(taken.body["takeover"], true);
    let t2 = taken.token();
    assert!(t2 > t1);
    assert_eq!(taken.body["record"]["attempt"], 2);
    assert_eq!(taken.body["record"]["checkpoint"]["stage"], "payment_initiated", "the checkpoint survives");

    let stale = c.post(f, &format!("{path}/complete"), json!({"token": t1, "result": "late"})).await;
    assert_eq!((stale.status.as_u16(), stale.code()), (409, Some("fenced")));
    let ok = c.post(f, &format!("{path}/complete"), json!({"token": t2, "result": "ok"})).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn records_expire_at_the_end_of_retention() {
    let c = TestCluster::start(3).await;
    let l = c.leader().await;
    let path = key_path("pay", "short-lived");
    let t = c.post(l, &format!("{path}/claim"), json!({"retention_ms": 1000})).await.token();
    let done = c.post(l, &format!("{path}/complete"), json!({"token": t, "result": 1, "retention_ms": 1000})).await;
    let expires = done.body["expires_at_ms"].as_u64().unwrap();
    assert_eq!(expires, done.body["updated_at_ms"].as_u64().unwrap() + 1000);
    assert_eq!(c.get(l, &path).await.status, 200);

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let everywhere: Vec<u16> = {
            let mut v = Vec::new();
            for id in c.ids() {
                v.push(c.get(id, &format!("{path}?consistency=stale")).await.status.as_u16());
            }
            v
        };
        if everywhere.iter().all(|s| *s == 404) {
            break;
        }
        assert!(Instant::now() < deadline, "still present after retention: {everywhere:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Absent to claims too: a new claim starts afresh.
    let again = c.post(l, &format!("{path}/claim"), json!({})).await;
    assert_eq!((again.status.as_u16(), again.body["record"]["attempt"].as_u64()), (201, Some(1)));
    let s = c.status(l).await.unwrap();
    assert!(s.clock_ms >= expires);
}

#[tokio::test]
async fn wait_ms_holds_until_completion_or_timeout() {
    let c = TestCluster::start(3).await;
    let f = c.follower().await;
    let path = key_path("pay", "waited");
    let t = c.post(f, &format!("{path}/claim"), json!({})).await.token();

    // Times out: answers the in-progress record after about wait_ms.
    let start = Instant::now();
    let timed_out = c.get(f, &format!("{path}?wait_ms=400")).await;
    let took = start.elapsed();
    assert_eq!(timed_out.body["state"], "in_progress");
    assert!(took >= Duration::from_millis(380) && took < Duration::from_secs(3), "took {took:?}");

    // Completed meanwhile: answers as soon as it is.
    let waiter = {
        let (api, url) = (c.api.clone(), format!("{}{path}?wait_ms=10000&consistency=stale", c.url(f)));
        tokio::spawn(async move {
            let start = Instant::now();
            (api.must(reqwest::Method::GET, &url, None).await, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.post(c.leader().await, &format!("{path}/complete"), json!({"token": t, "result": "r"})).await;
    let (answer, took) = waiter.await.unwrap();
    assert_eq!(answer.body["state"], "completed");
    assert_eq!(answer.body["result"], "r");
    assert!(took < Duration::from_secs(3), "woke late: {took:?}");

    // Released meanwhile: the waiter learns it is absent.
    let rpath = key_path("pay", "released");
    let t = c.post(f, &format!("{rpath}/claim"), json!({})).await.token();
    let waiter = {
        let (api, url) = (c.api.clone(), format!("{}{rpath}?wait_ms=10000", c.url(f)));
        tokio::spawn(async move { api.must(reqwest::Method::GET, &url, None).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.post(f, &format!("{rpath}/release"), json!({"token": t})).await;
    assert_eq!(waiter.await.unwrap().status, 404);
}

#[tokio::test]
async fn a_wall_clock_jump_on_the_leader_ends_no_lease_early() {
    let c = TestCluster::start_with(3, &["--test-hooks"]).await;
    let l = c.leader().await;
    let path = key_path("pay", "skewed");
    let t1 = c.post(l, &format!("{path}/claim"), json!({"lease_ms": 5000})).await.token();
    let clock_before = c.status(l).await.unwrap().clock_ms;
    for offset in [3_600_000i64, -3_600_000] {
        let hook = c.post(l, "/debug/clock-offset", json!({"offset_ms": offset})).await;
        assert_eq!(hook.status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rival = c.post(c.follower().await, &format!("{path}/claim"), json!({})).await;
        assert_eq!(rival.status, 409, "offset {offset}: the lease must still hold: {:?}", rival.body);
        let clock = c.status(l).await.unwrap().clock_ms;
        assert!(clock >= clock_before && clock < clock_before + 60_000, "replicated clock moved to {clock}");
    }
    let next = c.post(l, &format!("{}/claim", key_path("pay", "after-skew")), json!({})).await;
    assert!(next.token() > t1, "tokens keep increasing");
}

#[tokio::test]
async fn a_new_leader_with_a_fast_wall_clock_ends_no_lease_early() {
    let mut c = TestCluster::start_with(3, &["--test-hooks"]).await;
    let old = c.leader().await;
    let path = key_path("pay", "elected-skewed");
    let t1 = c.post(old, &format!("{path}/claim"), json!({"lease_ms": 20_000})).await.token();
    let clock_before = c.status(old).await.unwrap().clock_ms;
    for id in c.ids().into_iter().filter(|&id| id != old) {
        assert_eq!(c.post(id, "/debug/clock-offset", json!({"offset_ms": 3_600_000})).await.status, 200);
    }
    c.kill(old);
    let new = c.leader().await;
    assert_ne!(new, old);
    let rival = c.post(new, &format!("{path}/claim"), json!({})).await;
    assert_eq!(rival.status, 409, "the lease must outlive the election: {:?}", rival.body);
    let clock = c.status(new).await.unwrap().clock_ms;
    assert!(clock >= clock_before && clock < clock_before + 60_000, "replicated clock jumped to {clock}");
    let next = c.post(new, &format!("{}/claim", key_path("pay", "after-election")), json!({})).await;
    assert!(next.token() > t1, "tokens keep increasing");
}
