//! Every row of API.md's tables, against three real nodes, sent through
//! followers as well as the leader.

use idem_tests::scenarios::{assert_completed_everywhere, claim_complete_replay, key_path};
use idem_tests::TestCluster;
use serde_json::{json, Value};

#[tokio::test]
async fn claim_outcomes_through_leader_and_followers() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let follower = c.follower().await;
    let via_leader = claim_complete_replay(&c, leader, "payments", "order-1").await;
    // Writes through a follower are forwarded to the leader.
    let via_follower = claim_complete_replay(&c, follower, "payments", "merchant_m1:charge:order/7 é").await;
    assert!(via_follower.token > via_leader.token, "tokens grow across the cluster");
    assert_completed_everywhere(&c, &via_leader).await;
    assert_completed_everywhere(&c, &via_follower).await;
}

#[tokio::test]
async fn retry_with_same_claim_id_and_fingerprint_mismatch() {
    let c = TestCluster::start(3).await;
    let f = c.follower().await;
    let path = key_path("orders", "o-1");
    let body = json!({"claim_id": "call-1", "fingerprint": "sha256:aa", "owner": "checkout-7", "lease_ms": 5000});
    let first = c.post(f, &format!("{path}/claim"), body.clone()).await;
    assert_eq!(first.status, 201);
    let retry = c.post(f, &format!("{path}/claim"), body).await;
    assert_eq!(retry.status, 201, "a retry of the same call: {:?}", retry.body);
    assert_eq!(retry.token(), first.token());
    assert_eq!(retry.body["record"]["owner"], "checkout-7");

    let other = c.post(f, &format!("{path}/claim"), json!({"claim_id": "call-2", "fingerprint": "sha256:bb"})).await;
    assert_eq!(other.status, 422);
    assert_eq!(other.code(), Some("fingerprint_mismatch"));
}

#[tokio::test]
async fn checkpoint_complete_release_fencing_and_not_found() {
    let c = TestCluster::start(3).await;
    let l = c.leader().await;
    let path = key_path("jobs", "j-1");
    let token = c.post(l, &format!("{path}/claim"), json!({})).await.token();

    let cp = c
        .post(
            l,
            &format!("{path}/checkpoint"),
            json!({"token": token, "stage": "payment_initiated", "data": {"psp_ref": "ch_1"}, "lease_ms": 60000}),
        )
        .await;
    assert_eq!(cp.status, 200, "{:?}", cp.body);
    assert_eq!(cp.body["checkpoint"]["stage"], "payment_initiated");
    assert_eq!(cp.body["checkpoint"]["data"]["psp_ref"], "ch_1");
    let lease = cp.body["lease_expires_at_ms"].as_u64().unwrap();
    assert!(lease >= cp.body["checkpoint"]["at_ms"].as_u64().unwrap() + 60000);

    for (op, body) in [
        ("checkpoint", json!({"token": token + 1, "stage": "x"})),
        ("complete", json!({"token": token + 1, "result": 1})),
        ("release", json!({"token": token + 1})),
    ] {
        let a = c.post(l, &format!("{path}/{op}"), body).await;
        assert_eq!((a.status.as_u16(), a.code()), (409, Some("fenced")), "{op} with a wrong token");
    }

    let done = c
        .post(l, &format!("{path}/complete"), json!({"token": token, "result": {"id": 9}, "retention_ms": 60000}))
        .await;
    assert_eq!(done.status, 200);
    let again = c.post(l, &format!("{path}/complete"), json!({"token": token, "result": {"id": 10}})).await;
    assert_eq!(again.status, 200, "repeating complete with the same token is a no-op");
    assert_eq!(again.body["result"]["id"], 9);
    let cp_after = c.post(l, &format!("{path}/checkpoint"), json!({"token": token, "stage": "late"})).await;
    assert_eq!(cp_after.code(), Some("fenced"), "a completed record takes no checkpoint");
    let rel_after = c.post(l, &format!("{path}/release"), json!({"token": token})).await;
    assert_eq!(rel_after.code(), Some("fenced"), "a completed record cannot be released");

    let absent = key_path("jobs", "nope");
    for (op, body) in [
        ("checkpoint", json!({"token": 1, "stage": "x"})),
        ("complete", json!({"token": 1})),
        ("release", json!({"token": 1})),
    ] {
        let a = c.post(l, &format!("{absent}/{op}"), body).await;
        assert_eq!((a.status.as_u16(), a.code()), (404, Some("not_found")), "{op} on an absent record");
    }

    // Release: the record becomes absent and a retry claims afresh.
    let rpath = key_path("jobs", "j-2");
    let t1 = c.post(l, &format!("{rpath}/claim"), json!({})).await.token();
    assert_eq!(c.post(l, &format!("{rpath}/release"), json!({"token": t1})).await.status, 200);
    assert_eq!(c.get(l, &rpath).await.status, 404);
    let t2 = c.post(l, &format!("{rpath}/claim"), json!({})).await;
    assert_eq!(t2.status, 201);
    assert!(t2.token() > t1);
}

#[tokio::test]
async fn reads_and_deletes() {
    let c = TestCluster::start(3).await;
    let l = c.leader().await;
    let f = c.follower().await;
    let path = key_path("reads", "r-1");
    let missing = c.get(f, &path).await;
    assert_eq!((missing.status.as_u16(), missing.code()), (404, Some("not_found")));

    let token = c.post(l, &format!("{path}/claim"), json!({})).await.token();
    // A linearizable read through a follower sees the write at once.
    let read = c.get(f, &path).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["token"], token);
    assert_eq!(read.body["state"], "in_progress");
    let explicit = c.get(f, &format!("{path}?consistency=linearizable")).await;
    assert_eq!(explicit.body["token"], token);
    // A stale read is answered locally; the follower has it soon after.
    let mut stale = c.get(f, &format!("{path}?consistency=stale")).await;
    for _ in 0..50 {
        if stale.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        stale = c.get(f, &format!("{path}?consistency=stale")).await;
    }
    assert_eq!(stale.body["token"], token);

    assert_eq!(c.delete(f, &path).await.status, 200);
    assert_eq!(c.get(l, &path).await.status, 404);
    let gone = c.delete(f, &path).await;
    assert_eq!((gone.status.as_u16(), gone.code()), (404, Some("not_found")));
}

#[tokio::test]
async fn batch_is_applied_in_order_with_per_op_results() {
    let c = TestCluster::start(3).await;
    let f = c.follower().await;
    let ops = json!({"ops": [
        {"op": "claim", "ns": "orders", "key": "m-1", "claim_id": "x"},
        {"op": "claim", "ns": "orders", "key": "m-1", "claim_id": "y"},
        {"op": "claim", "ns": "bad ns!", "key": "m-2"},
        {"op": "delete", "ns": "orders", "key": "absent"},
    ]});
    let a = c.post(f, "/v1/batch", ops).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let results = a.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["status"], 201);
    let token = results[0]["body"]["token"].as_u64().unwrap();
    assert_eq!(results[1]["status"], 409);
    assert_eq!(results[1]["body"]["outcome"], "in_progress");
    assert_eq!(results[2]["status"], 400);
    assert_eq!(results[2]["body"]["error"]["code"], "bad_request");
    assert_eq!(results[3]["status"], 404);

    let ops = json!({"ops": [
        {"op": "checkpoint", "ns": "orders", "key": "m-1", "token": token, "stage": "s1"},
        {"op": "complete", "ns": "orders", "key": "m-1", "token": token, "result": "done"},
        {"op": "release", "ns": "orders", "key": "m-1", "token": token},
    ]});
    let a = c.post(f, "/v1/batch", ops).await;
    let statuses: Vec<u64> =
        a.body["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 200, 409]);
    assert_eq!(c.get(f, &key_path("orders", "m-1")).await.body["result"], "done");

    let too_many: Vec<Value> = (0..1001).map(|i| json!({"op": "delete", "ns": "o", "key": format!("k{i}")})).collect();
    let a = c.post(f, "/v1/batch", json!({"ops": too_many})).await;
    assert_eq!((a.status.as_u16(), a.code()), (400, Some("bad_request")));
}

/// POST `size` bytes of spaces with chunked encoding over a raw connection
/// to node `id`, sending all of it before reading; returns the raw answer.
async fn chunked_post(c: &TestCluster, id: u64, path: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = c.connect(id).await;
    let (addr, auth) = (c.addr(id), c.auth_header());
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.expect("send head");
    let chunk = [format!("{:x}\r\n", 64 * 1024).into_bytes(), vec![b' '; 64 * 1024], b"\r\n".to_vec()].concat();
    for _ in 0..size / (64 * 1024) {
        conn.write_all(&chunk).await.expect("the node must read the whole body before answering");
    }
    conn.write_all(b"0\r\n\r\n").await.expect("send the last chunk");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.expect("read the answer");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn bad_input_gets_4xx_and_the_node_keeps_serving() {
    let c = TestCluster::start(3).await;
    let f = c.follower().await;
    let url = |p: &str| format!("{}{p}", c.url(f));
    let http = c.api.client();
    let claim = format!("{}/claim", key_path("ns", "k"));

    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (http.post(url(&claim)).body("{not json"), 400, "bad_request"),
        (http.post(url(&claim)).body(r#"{"lease_ms": "soon"}"#), 400, "bad_request"),
        (http.post(url(&claim)).json(&json!({"lease_ms": 99})), 400, "bad_request"),
        (http.post(url(&claim)).json(&json!({"lease_ms": 86_400_001})), 400, "bad_request"),
        (http.post(url(&claim)).json(&json!({"retention_ms": 999})), 400, "bad_request"),
        (http.post(url(&claim)).json(&json!({"retention_ms": 2_592_000_001u64})), 400, "bad_request"),
        (http.post(url(&claim)).json(&json!({"fingerprint": "f".repeat(257)})), 400, "bad_request"),
        (http.post(url(&claim)).json(&json!({"owner": "o".repeat(129)})), 400, "bad_request"),
        (http.post(url(&claim)).json(&json!({"claim_id": "c".repeat(129)})), 400, "bad_request"),
        (http.post(url("/v1/ns/bad%20ns/keys/k/claim")), 400, "bad_request"),
        (http.post(url(&format!("/v1/ns/{}/keys/k/claim", "n".repeat(65)))), 400, "bad_request"),
        (http.post(url(&format!("{}/claim", key_path("ns", &"k".repeat(513))))), 400, "bad_request"),
        (http.post(url("/v1/ns/ns/keys/%FF%FE/claim")), 400, "bad_request"),
        (
            http.post(url(&format!("{}/checkpoint", key_path("ns", "k")))).json(&json!({"stage": "s"})),
            400,
            "bad_request",
        ),
        (http.get(url(&format!("{}?wait_ms=60001", key_path("ns", "k")))), 400, "bad_request"),
        (http.get(url(&format!("{}?consistency=eventual", key_path("ns", "k")))), 400, "bad_request"),
        (http.post(url(&claim)).body(vec![b' '; 1024 * 1024 + 1]), 413, "too_large"),
        (
            http.post(url("/v1/batch")).body(format!(r#"{{"ops":[], "pad":"{}"}}"#, "x".repeat(2 * 1024 * 1024))),
            413,
            "too_large",
        ),
        (http.get(url("/v1/nothing/here")), 404, "not_found"),
    ];
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        let resp = req.send().await.expect("answer");
        let got = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (got, body.pointer("/error/code").and_then(Value::as_str)),
            (status, Some(code)),
            "case {i}: {body}"
        );
    }
    // No length up front: the node reads to the limit, then drains the rest,
    // so even a client that reads only once it has sent everything gets the 413.
    let answer = chunked_post(&c, f, "/v1/batch", 8 * 1024 * 1024).await;
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("too_large"), "{answer}");
    // Still serving, nothing lost or half-written.
    claim_complete_replay(&c, f, "ns", "k").await;
    assert_eq!(c.get(f, "/healthz").await.status, 200);
}

/// Found by schemathesis: serde reads a struct from an array of its fields,
/// so `[null, null]` claimed the key as `{}` would. Every body is an object.
#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused() {
    let c = TestCluster::start(3).await;
    let f = c.follower().await;
    let http = c.api.client();
    let path = key_path("arrays", "k");
    for (route, body) in [
        ("/claim", "[null, null]"),
        ("/claim", " [] "),
        ("/claim", "null"),
        ("/claim", "7"),
        ("/claim", r#""{}""#),
        ("/checkpoint", r#"[1, "stage"]"#),
        ("/complete", "[1]"),
        ("/release", "[1]"),
    ] {
        let resp = http.post(format!("{}{path}{route}", c.url(f))).body(body).send().await.expect("answer");
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!((status, answer.pointer("/error/code")), (400, Some(&json!("bad_request"))), "{route} {body}");
    }
    let batch = http.post(format!("{}/v1/batch", c.url(f))).body(r#"[[]]"#).send().await.expect("answer");
    assert_eq!(batch.status().as_u16(), 400);
    assert_eq!(c.get(f, &path).await.status, 404, "no array body claimed the key");
}

#[tokio::test]
async fn cluster_health_and_metrics() {
    let c = TestCluster::start(3).await;
    c.wait_ready().await;
    let l = c.leader().await;
    claim_complete_replay(&c, l, "m", "k").await;
    let s = c.status(c.follower().await).await.expect("status");
    assert_eq!(s.leader_id, Some(l));
    assert_eq!(s.members.len(), 3);
    assert!(s.members.iter().all(|m| m.voter));
    assert!(s.clock_ms > 1_600_000_000_000, "the replicated clock is wall-clock ms");
    assert!(s.applied_index.unwrap() > 0 && s.committed_index.unwrap() > 0);

    let text = c.api.client().get(format!("{}/metrics", c.url(l))).send().await.unwrap().text().await.unwrap();
    for needle in [
        "idem_claims_total{outcome=\"acquired\"} 1",
        "idem_claims_total{outcome=\"in_progress\"} 1",
        "idem_claims_total{outcome=\"replayed\"} 1",
        "idem_records_live 1",
        "idem_http_requests_total{",
        "idem_http_request_duration_seconds_bucket{",
        "idem_raft_term ",
        "idem_raft_is_leader 1",
        "idem_raft_committed_index ",
        "idem_raft_applied_index ",
        "idem_log_fsyncs_total ",
    ] {
        assert!(text.contains(needle), "metrics lack `{needle}`:\n{text}");
    }
}
