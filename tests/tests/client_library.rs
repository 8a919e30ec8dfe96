//! The client library against a real cluster: every endpoint, typed answers
//! and errors, keys that need encoding, and retries across a killed leader.

use std::time::Duration;

use idem_client::proto::{
    BatchOp, CheckpointRequest, ClaimRequest, CompleteRequest, Consistency, GetQuery, RecordState,
};
use idem_client::{ClaimOutcome, Client, Error, RetryPolicy};
use idem_tests::TestCluster;
use serde_json::json;

fn claim_id(id: &str) -> ClaimRequest {
    ClaimRequest { claim_id: Some(id.into()), fingerprint: Some("fp".into()), ..Default::default() }
}

#[tokio::test]
async fn every_key_endpoint_with_typed_answers() {
    let c = TestCluster::start(3).await;
    let client = Client::new(c.urls()).unwrap();
    // A key that is not one path segment unless encoded.
    let key = "merchant/m1:charge?order=7#é 100%";

    let ClaimOutcome::Acquired { token, takeover, record } = client.claim("pay", key, claim_id("a")).await.unwrap()
    else {
        panic!("first claim acquires")
    };
    assert!(!takeover);
    assert_eq!((record.key.as_str(), record.token), (key, token));
    // The same claim_id again: the same call, the same token.
    let again = client.claim("pay", key, claim_id("a")).await.unwrap();
    assert!(matches!(again, ClaimOutcome::Acquired { token: t, .. } if t == token), "{again:?}");
    // Another caller: in progress, with a Retry-After.
    let rival = client.claim("pay", key, claim_id("b")).await.unwrap();
    assert!(
        matches!(&rival, ClaimOutcome::InProgress { retry_after: Some(_), record } if record.token == token),
        "{rival:?}"
    );
    let other = ClaimRequest { fingerprint: Some("other".into()), ..Default::default() };
    assert!(matches!(client.claim("pay", key, other).await, Err(Error::FingerprintMismatch)));

    let cp = CheckpointRequest { token, stage: "charged".into(), data: json!({"psp": "ch_1"}), lease_ms: Some(60_000) };
    let rec = client.checkpoint("pay", key, &cp).await.unwrap();
    assert_eq!(rec.checkpoint.unwrap().data, json!({"psp": "ch_1"}));
    let stale_token = CheckpointRequest { token: token + 1000, ..cp.clone() };
    assert!(matches!(client.checkpoint("pay", key, &stale_token).await, Err(Error::Fenced)));

    let done = CompleteRequest { token, result: json!({"ok": 1}), retention_ms: None };
    assert_eq!(client.complete("pay", key, &done).await.unwrap().state, RecordState::Completed);
    let replay = client.claim("pay", key, claim_id("c")).await.unwrap();
    assert!(matches!(&replay, ClaimOutcome::Completed(r) if r.result == json!({"ok": 1})), "{replay:?}");

    let stale = GetQuery { consistency: Consistency::Stale, wait_ms: None };
    assert_eq!(client.get("pay", key, &GetQuery::default()).await.unwrap().token, token);
    assert_eq!(client.get("pay", key, &stale).await.unwrap().state, RecordState::Completed);
    client.delete("pay", key).await.unwrap();
    assert!(matches!(client.get("pay", key, &GetQuery::default()).await, Err(Error::NotFound)));
    assert!(matches!(client.delete("pay", key).await, Err(Error::NotFound)));
}

#[tokio::test]
async fn release_wait_and_local_validation() {
    let c = TestCluster::start(3).await;
    let client = Client::new(c.urls()).unwrap();
    let ClaimOutcome::Acquired { token, .. } = client.claim("w", "k", ClaimRequest::default()).await.unwrap() else {
        panic!("acquired")
    };
    // A waiting read returns as soon as the holder completes.
    let waiter = {
        let client = client.clone();
        tokio::spawn(
            async move { client.get("w", "k", &GetQuery { wait_ms: Some(10_000), ..Default::default() }).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.complete("w", "k", &CompleteRequest { token, result: json!(1), retention_ms: None }).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("wait ended").unwrap().unwrap();
    assert_eq!(waited.state, RecordState::Completed);

    let ClaimOutcome::Acquired { token, .. } = client.claim("w", "r", ClaimRequest::default()).await.unwrap() else {
        panic!("acquired")
    };
    assert!(matches!(client.release("w", "r", token + 1).await, Err(Error::Fenced)));
    client.release("w", "r", token).await.unwrap();
    assert!(matches!(client.release("w", "r", token).await, Err(Error::NotFound)));
    assert!(matches!(client.claim("w", "r", ClaimRequest::default()).await, Ok(ClaimOutcome::Acquired { .. })));

    // Refused before any round trip.
    assert!(matches!(client.claim("bad/ns", "k", ClaimRequest::default()).await, Err(Error::BadRequest(_))));
    assert!(matches!(client.claim("w", &"k".repeat(513), ClaimRequest::default()).await, Err(Error::BadRequest(_))));
    let short = ClaimRequest { lease_ms: Some(5), ..Default::default() };
    assert!(matches!(client.claim("w", "k2", short).await, Err(Error::BadRequest(m)) if m.contains("lease_ms")));
}

#[tokio::test]
async fn batch_and_cluster_calls() {
    let mut c = TestCluster::start(3).await;
    let client = Client::new(c.urls()).unwrap();
    let ops = vec![
        BatchOp::Claim { ns: "b".into(), key: "x/1".into(), req: ClaimRequest::default() },
        BatchOp::Claim { ns: "b".into(), key: "x/1".into(), req: ClaimRequest::default() },
        BatchOp::Delete { ns: "b".into(), key: "none".into() },
    ];
    let statuses: Vec<u16> = client.batch(ops).await.unwrap().results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 409, 404]);

    let status = client.cluster_status().await.unwrap();
    assert_eq!(status.members.len(), 3);
    assert_eq!(status.leader_id, Some(c.leader().await));
    let new = c.add_node().await;
    let after = client.add_learner(new, &c.addr(new)).await.unwrap();
    assert!(after.members.iter().any(|m| m.id == new && !m.voter), "{after:?}");
    let after = client.change_voters(vec![1, 2, 3, new]).await.unwrap();
    assert_eq!(after.members.iter().filter(|m| m.voter).count(), 4, "{after:?}");
    assert!(matches!(client.change_voters(vec![1, 2, 99]).await, Err(Error::BadRequest(_))));
}

#[tokio::test]
async fn calls_ride_out_a_killed_leader_and_dead_endpoints() {
    let mut c = TestCluster::start(3).await;
    let leader = c.leader().await;
    // The leader first, and a dead endpoint in the list: the client moves on.
    let mut endpoints = vec![c.url(leader), "http://127.0.0.1:1".to_owned()];
    endpoints.extend(c.ids().into_iter().filter(|id| *id != leader).map(|id| c.url(id)));
    let client = Client::builder(endpoints).request_timeout(Duration::from_secs(2)).build().unwrap();
    assert!(matches!(client.claim("f", "before", ClaimRequest::default()).await, Ok(ClaimOutcome::Acquired { .. })));
    assert_eq!(client.current_endpoint(), c.url(leader));

    c.kill(leader);
    let keys: Vec<String> = (0..5).map(|i| format!("after-{i}")).collect();
    for key in &keys {
        let got = client.claim("f", key, claim_id(key)).await;
        assert!(matches!(got, Ok(ClaimOutcome::Acquired { .. })), "{key}: {got:?}");
    }
    assert_ne!(client.current_endpoint(), c.url(leader), "the client remembers a live node");

    // Every endpoint dead: a transport error once the budget is spent.
    let policy = RetryPolicy { budget: Duration::from_secs(1), ..RetryPolicy::default() };
    let dead = Client::builder(["http://127.0.0.1:1"]).retry_policy(policy).build().unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(dead.cluster_status().await, Err(Error::Transport(_))));
    assert!(started.elapsed() < Duration::from_secs(3), "gave up after {:?}", started.elapsed());
}

#[tokio::test]
async fn without_quorum_the_client_reports_unavailable() {
    let mut c = TestCluster::start_with(3, &["--request-timeout", "500ms"]).await;
    let leader = c.leader().await;
    for id in c.ids().into_iter().filter(|id| *id != leader) {
        c.kill(id);
    }
    let policy = RetryPolicy { max_attempts: 2, ..RetryPolicy::default() };
    let client = Client::builder([c.url(leader)]).retry_policy(policy).build().unwrap();
    let got = client.claim("q", "k", ClaimRequest::default()).await;
    assert!(matches!(got, Err(Error::Unavailable(_))), "{got:?}");
}

#[tokio::test]
async fn the_client_follows_the_leader_each_answer_names() {
    let c = TestCluster::start(3).await;
    let (leader, follower) = (c.leader().await, c.follower().await);
    // The follower first: answers name the leader, whose address the client knows.
    let mut urls = vec![c.url(follower)];
    urls.extend(c.ids().into_iter().filter(|id| *id != follower).map(|id| c.url(id)));
    let client = Client::new(urls).unwrap();
    assert_eq!(client.current_endpoint(), c.url(follower));
    let answer = c.post(follower, "/v1/ns/lead/keys/k1/claim", json!({})).await;
    assert_eq!(idem_tests::header(&answer.headers, "idem-leader"), Some(c.addr(leader)));
    client.claim("lead", "k2", ClaimRequest::default()).await.unwrap();
    assert_eq!(client.current_endpoint(), c.url(leader), "the next call goes to the leader directly");
    // A client that does not know the leader's address stays where it was.
    let lone = Client::new([c.url(follower)]).unwrap();
    lone.claim("lead", "k3", ClaimRequest::default()).await.unwrap();
    assert_eq!(lone.current_endpoint(), c.url(follower));
}
