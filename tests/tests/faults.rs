//! Crashes, restarts, compaction and lost quorum, with real processes.

use std::time::{Duration, Instant};

use idem_tests::scenarios::{assert_completed_everywhere, claim_complete_replay, key_path, Completed};
use idem_tests::{header, TestCluster};
use serde_json::json;

/// Claim `key` through `via` until it is acquired, retrying 503s and transport
/// errors with the same claim_id; returns how long it took.
async fn claim_until_acquired(c: &TestCluster, via: u64, key: &str, within: Duration) -> Duration {
    let start = Instant::now();
    let url = format!("{}{}/claim", c.url(via), key_path("f", key));
    loop {
        let body = Some(json!({"claim_id": key}));
        match c.api.call(reqwest::Method::POST, &url, body).await {
            Ok(a) if a.status == 201 => return start.elapsed(),
            Ok(a) if a.status == 503 => assert!(header(&a.headers, "retry-after").is_some(), "503 without Retry-After"),
            Ok(a) => panic!("unexpected answer {}: {}", a.status, a.body),
            Err(_) => {}
        }
        assert!(start.elapsed() < within, "no successful write within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn writes_resume_after_the_leader_is_killed() {
    let mut c = TestCluster::start(3).await;
    let before = claim_complete_replay(&c, c.follower().await, "f", "before").await;
    let leader = c.leader().await;
    c.kill(leader);
    let survivor = c.ids().into_iter().find(|id| *id != leader).unwrap();
    // Sent at once: the survivor still names the dead leader, finds it
    // unreachable, and holds the write for the next leader instead of a 503.
    let start = Instant::now();
    let first = c.post(survivor, &format!("{}/claim", key_path("f", "during-election")), json!({})).await;
    assert_eq!(first.status, 201, "a write sent as the leader died: {:?}", first.body);
    let took = start.elapsed();
    eprintln!("writes resumed {took:?} after the leader was killed");
    // Typically under 2 s here (election timeout 0.5-1 s); the bound leaves room for a loaded CI machine.
    assert!(took < Duration::from_secs(8), "writes resumed only after {took:?}");
    assert_ne!(c.leader().await, leader);
    assert_completed_everywhere(&c, &before).await;

    c.restart(leader).await;
    c.wait_ready().await;
    let after = claim_complete_replay(&c, leader, "f", "after-restart").await;
    assert!(after.token > before.token);
    assert_completed_everywhere(&c, &before).await;
}

/// openraft restores a restarted leader as leader of its old term. Until a
/// quorum acknowledges it, it must not serve a linearizable read itself (it
/// would fail to confirm leadership): the read waits to learn the leader
/// elected meanwhile and is forwarded there.
#[tokio::test]
async fn a_restarted_leader_forwards_reads_to_its_successor() {
    let mut c = TestCluster::start(3).await;
    let leader = c.leader().await;
    c.kill(leader);
    let survivor = c.ids().into_iter().find(|id| *id != leader).unwrap();
    let done = claim_complete_replay(&c, survivor, "f", "while-down").await;
    c.restart(leader).await;
    let read = c.get(leader, &key_path("f", "while-down")).await;
    assert_eq!(read.status, 200, "read through the restarted leader: {}", read.body);
    assert_eq!(read.body["token"], done.token);
    assert_ne!(c.leader().await, leader);
}

#[tokio::test]
async fn full_cluster_crash_keeps_every_acknowledged_record() {
    let mut c = TestCluster::start(3).await;
    let mut acked: Vec<Completed> = Vec::new();
    for i in 0..10 {
        let via = c.ids()[i % 3];
        acked.push(claim_complete_replay(&c, via, "durable", &format!("k{i}")).await);
    }
    let in_flight = c.post(1, &format!("{}/claim", key_path("durable", "held")), json!({"lease_ms": 600000})).await;
    assert_eq!(in_flight.status, 201);
    let max_token = in_flight.token();

    for id in c.ids() {
        c.kill(id);
    }
    for id in c.ids() {
        c.restart(id).await;
    }
    c.leader().await;
    c.wait_ready().await;
    for done in &acked {
        assert_completed_everywhere(&c, done).await;
    }
    let held = c.get(2, &key_path("durable", "held")).await;
    assert_eq!((held.status.as_u16(), held.body["token"].as_u64()), (200, Some(max_token)));
    let rival = c.post(3, &format!("{}/claim", key_path("durable", "held")), json!({})).await;
    assert_eq!(rival.status, 409, "the live lease survived the crash");
    let next = c.post(3, &format!("{}/claim", key_path("durable", "new")), json!({})).await;
    assert!(next.token() > max_token, "tokens keep increasing across restarts");
}

#[tokio::test]
async fn sigterm_stops_a_node_gracefully_and_it_rejoins() {
    let mut c = TestCluster::start(3).await;
    let f = c.follower().await;
    assert!(c.terminate(f), "SIGTERM exits with status 0");
    let done = claim_complete_replay(&c, c.leader().await, "g", "while-down").await;
    c.restart(f).await;
    c.wait_ready().await;
    assert_completed_everywhere(&c, &done).await;
}

#[tokio::test]
async fn a_node_behind_the_compacted_log_catches_up_by_snapshot() {
    let mut c = TestCluster::start_with(3, &["--snapshot-threshold", "30", "--keep-logs", "0"]).await;
    let lagger = c.follower().await;
    c.kill(lagger);
    let via = c.ids().into_iter().find(|id| *id != lagger).unwrap();
    let mut acked = Vec::new();
    for i in 0..40 {
        acked.push(claim_complete_replay(&c, via, "snap", &format!("k{i}")).await);
    }
    let leader = c.leader().await;
    let metrics = c.api.client().get(format!("{}/metrics", c.url(leader))).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("idem_snapshots_total{kind=\"built\"}"), "the leader built a snapshot:\n{metrics}");

    c.restart(lagger).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let last = acked.last().unwrap();
    loop {
        let a = c.get(lagger, &format!("{}?consistency=stale", key_path("snap", &last.key))).await;
        if a.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the restarted node never caught up:\n{}", c.log_tail(lagger));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = c.api.client().get(format!("{}/metrics", c.url(lagger))).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("idem_snapshots_total{kind=\"installed\"}"), "caught up by snapshot:\n{metrics}");
    for done in &acked {
        let a = c.get(lagger, &format!("{}?consistency=stale", key_path("snap", &done.key))).await;
        assert_eq!((a.status.as_u16(), &a.body["result"]), (200, &done.result));
    }
    // And it serves as a full member afterwards, across another restart.
    c.kill(lagger);
    c.restart(lagger).await;
    c.wait_ready().await;
    claim_complete_replay(&c, lagger, "snap", "after").await;
}

#[tokio::test]
async fn without_quorum_writes_answer_503_and_recover() {
    let mut c = TestCluster::start_with(3, &["--request-timeout", "1s"]).await;
    let leader = c.leader().await;
    let others: Vec<u64> = c.ids().into_iter().filter(|id| *id != leader).collect();
    for id in &others {
        c.kill(*id);
    }
    let start = Instant::now();
    let a = c.post(leader, &format!("{}/claim", key_path("q", "k")), json!({"claim_id": "only"})).await;
    assert_eq!((a.status.as_u16(), a.code()), (503, Some("unavailable")), "{:?}", a.body);
    assert!(header(&a.headers, "retry-after").is_some());
    assert!(start.elapsed() < Duration::from_secs(5), "503 within the deadline, took {:?}", start.elapsed());
    let read = c.get(leader, &key_path("q", "k")).await;
    assert_eq!(read.status, 503, "no linearizable read without a quorum");

    for id in &others {
        c.restart(*id).await;
    }
    // The retry with the same claim_id is recognised whether or not the first landed.
    let took = claim_until_acquired(&c, leader, "k", Duration::from_secs(15)).await;
    assert!(took < Duration::from_secs(15));
}

#[tokio::test]
async fn membership_grows_by_learner_then_voter() {
    let mut c = TestCluster::start(3).await;
    let done = claim_complete_replay(&c, 1, "m", "before-join").await;
    let new = c.add_node().await;
    let f = c.follower().await;
    let added = c.post(f, "/v1/cluster/learners", json!({"id": new, "addr": c.addr(new)})).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    let voters = c.post(f, "/v1/cluster/voters", json!({"ids": [1, 2, 3, new]})).await;
    assert_eq!(voters.status, 200, "{:?}", voters.body);
    // The new voter learns the membership it is in once it applies it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.status(new).await.map_or(0, |s| s.members.iter().filter(|m| m.voter).count()) != 4 {
        assert!(Instant::now() < deadline, "node {new} never saw itself a voter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_completed_everywhere(&c, &done).await;
    let unknown = c.post(f, "/v1/cluster/voters", json!({"ids": [1, 2, 3, 99]})).await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (400, Some("bad_request")));
}

/// The promise itself: many callers race for each key through every node while
/// the leader is killed; exactly one claim_id ever acquires each key, and it is
/// the holder every node reports afterwards.
#[tokio::test]
async fn exactly_one_winner_per_key_while_the_leader_dies() {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::{Arc, Mutex};

    let mut c = TestCluster::start(3).await;
    let keys: Vec<String> = (0..20).map(|i| format!("race-{i}")).collect();
    let winners: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>> = Arc::default();
    let urls = c.urls();
    let mut tasks = Vec::new();
    for caller in 0..12 {
        let (api, urls, keys, winners) = (c.api.clone(), urls.clone(), keys.clone(), winners.clone());
        tasks.push(tokio::spawn(async move {
            for (k, key) in keys.iter().enumerate() {
                let claim_id = format!("caller-{caller}");
                let deadline = Instant::now() + Duration::from_secs(20);
                // Each attempt goes to another node; retries keep the claim_id.
                for attempt in 0.. {
                    let url = format!("{}{}/claim", urls[(caller + k + attempt) % urls.len()], key_path("race", key));
                    let body = Some(json!({"claim_id": claim_id, "lease_ms": 60000}));
                    match api.call(reqwest::Method::POST, &url, body).await {
                        Ok(a) if a.status == 201 => {
                            winners.lock().unwrap().entry(key.clone()).or_default().insert(claim_id.clone());
                            break;
                        }
                        Ok(a) if a.status == 409 => break,
                        Ok(a) => assert_eq!(a.status, 503, "unexpected {}", a.body),
                        Err(_) => {}
                    }
                    assert!(Instant::now() < deadline, "caller {caller} never got an answer for {key}");
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let leader = c.leader().await;
    c.kill(leader);
    for t in tasks {
        t.await.unwrap();
    }
    c.restart(leader).await;
    c.wait_ready().await;
    let winners = winners.lock().unwrap().clone();
    for key in &keys {
        let won = winners.get(key).cloned().unwrap_or_default();
        assert_eq!(won.len(), 1, "{key} acquired by {won:?}");
        let holder = won.into_iter().next().unwrap();
        for id in c.ids() {
            let read = c.get(id, &key_path("race", key)).await;
            assert_eq!(
                read.body["claim_id"],
                holder.as_str(),
                "node {id} disagrees on {key}: {} {}",
                read.status,
                read.body
            );
        }
    }
}

/// A follower that missed many full entries (1000-op batches) catches up by
/// log: each AppendEntries must fit in openraft's one-heartbeat deadline, or
/// it is resent forever and the follower never catches up.
#[tokio::test]
async fn a_follower_behind_by_many_full_entries_catches_up() {
    let mut c = TestCluster::start_with(3, &["--snapshot-threshold", "100000"]).await;
    let leader = c.leader().await;
    let behind = c.follower().await;
    c.kill(behind);
    let value = "v".repeat(40);
    for batch in 0..40 {
        let ops: Vec<_> = (0..1000)
            .map(|i| json!({"op": "claim", "ns": "far", "key": format!("k-{batch}-{i}-{value}"), "fingerprint": value}))
            .collect();
        let a = c.post_decided(leader, "/v1/batch", json!({ "ops": ops })).await;
        assert_eq!(a.status, 200, "batch {batch}: {}", a.body);
    }
    c.restart(behind).await;
    let target = c.status(leader).await.and_then(|s| s.applied_index).expect("leader's applied index");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let applied = c.status(behind).await.and_then(|s| s.applied_index).unwrap_or(0);
        if applied >= target {
            break;
        }
        assert!(Instant::now() < deadline, "the follower is stuck at {applied} of {target}:\n{}", c.log_tail(behind));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
