//! Checks written once against the harness, so the same scenario runs on a
//! fresh cluster, after restarts, and under faults.

use serde_json::{json, Value};

use crate::TestCluster;

/// `/v1/ns/{ns}/keys/{key}`, the key encoded as the client encodes it, and
/// unchecked, so a test can also send what API.md refuses.
pub use idem_client::path::key_path_unchecked as key_path;

/// What [`claim_complete_replay`] left behind: the key and its completed record.
#[derive(Debug, Clone)]
pub struct Completed {
    pub ns: String,
    pub key: String,
    pub token: u64,
    pub result: Value,
}

/// The life of one key, sent to node `via`: claim (201), a rival claim (409
/// with Retry-After), complete (200), replay (200 with the result). Panics on
/// any deviation from API.md. Each call retries 503s as a client would, so the
/// scenario also runs while leadership settles after a fault.
pub async fn claim_complete_replay(c: &TestCluster, via: u64, ns: &str, key: &str) -> Completed {
    let path = key_path(ns, key);
    let first = c
        .post_decided(via, &format!("{path}/claim"), json!({"claim_id": format!("{key}-a"), "fingerprint": "fp"}))
        .await;
    assert_eq!(first.status, 201, "claim: {:?}", first.body);
    assert_eq!(first.body["outcome"], "acquired");
    assert_eq!(first.body["takeover"], false);
    let token = first.token();
    assert_eq!(first.body["record"]["token"], token);

    let rival = c
        .post_decided(via, &format!("{path}/claim"), json!({"claim_id": format!("{key}-b"), "fingerprint": "fp"}))
        .await;
    assert_eq!(rival.status, 409, "rival: {:?}", rival.body);
    assert_eq!(rival.body["outcome"], "in_progress");
    let retry_after: u64 = crate::header(&rival.headers, "retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=30).contains(&retry_after), "Retry-After {retry_after}");

    let result = json!({"charge": format!("ch_{key}"), "amount": 1200});
    let done = c.post_decided(via, &format!("{path}/complete"), json!({"token": token, "result": result})).await;
    assert_eq!(done.status, 200, "complete: {:?}", done.body);
    assert_eq!(done.body["state"], "completed");
    assert_eq!(done.body["lease_expires_at_ms"], Value::Null);

    let replay = c
        .post_decided(via, &format!("{path}/claim"), json!({"claim_id": format!("{key}-c"), "fingerprint": "fp"}))
        .await;
    assert_eq!(replay.status, 200, "replay: {:?}", replay.body);
    assert_eq!(replay.body["outcome"], "completed");
    assert_eq!(replay.body["record"]["result"], result);
    Completed { ns: ns.into(), key: key.into(), token, result }
}

/// Every node, read linearizably and stale (once caught up), shows `done` as completed.
pub async fn assert_completed_everywhere(c: &TestCluster, done: &Completed) {
    let path = key_path(&done.ns, &done.key);
    for id in c.ids().into_iter().filter(|id| c.is_up(*id)) {
        let read = c.get(id, &path).await;
        assert_eq!(read.status, 200, "node {id} lost {}: {:?}", done.key, read.body);
        assert_eq!(read.body["state"], "completed");
        assert_eq!(read.body["token"], done.token);
        assert_eq!(read.body["result"], done.result);
    }
}
