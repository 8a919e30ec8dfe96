//! `GET /v1/ns/{ns}/keys` against a real cluster: filters, paging from a
//! follower, a walk that stays exact while writes go on, abandoned claims
//! by the replicated clock, and bad input (`idem list`: tests/cli.rs).

use std::collections::BTreeSet;
use std::time::Duration;

use futures::TryStreamExt;
use idem_client::proto::{ClaimRequest, CompleteRequest, Consistency, ListQuery, RecordState};
use idem_client::{ClaimOutcome, Client};
use idem_tests::TestCluster;
use serde_json::{json, Value};

async fn claim(client: &Client, ns: &str, key: &str, lease_ms: u64) -> u64 {
    let req = ClaimRequest { lease_ms: Some(lease_ms), ..Default::default() };
    match client.claim(ns, key, req).await.unwrap() {
        ClaimOutcome::Acquired { token, .. } => token,
        other => panic!("{key} was not acquired: {other:?}"),
    }
}

async fn keys(client: &Client, ns: &str, query: ListQuery) -> Vec<String> {
    client.list(ns, query).map_ok(|r| r.key).try_collect().await.unwrap()
}

/// In `orders`: done-1..done-3 completed, gone-1 abandoned (lease 100 ms),
/// held-1 held for an hour; `other` holds a key of the same name.
async fn sample(c: &TestCluster, client: &Client) {
    for key in ["done-1", "done-2", "done-3"] {
        let token = claim(client, "orders", key, 60_000).await;
        let done = CompleteRequest { token, result: json!(key), retention_ms: None };
        client.complete("orders", key, &done).await.unwrap();
    }
    claim(client, "orders", "gone-1", 100).await;
    claim(client, "orders", "held-1", 3_600_000).await;
    claim(client, "other", "held-1", 100).await;
    // Abandoned is judged by the replicated clock: wait until it passed the lease.
    let clock = c.status(c.leader().await).await.unwrap().clock_ms;
    while c.status(c.leader().await).await.unwrap().clock_ms < clock + 300 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn filters_and_pages_from_a_follower() {
    let c = TestCluster::start(3).await;
    let follower = c.follower().await;
    let client = Client::new([c.url(follower)]).unwrap();
    sample(&c, &client).await;

    let all = ListQuery { limit: Some(2), ..Default::default() };
    assert_eq!(keys(&client, "orders", all).await, ["done-1", "done-2", "done-3", "gone-1", "held-1"]);
    let prefix = ListQuery { prefix: Some("done-".into()), ..Default::default() };
    assert_eq!(keys(&client, "orders", prefix).await, ["done-1", "done-2", "done-3"]);
    let busy = ListQuery { state: Some(RecordState::InProgress), ..Default::default() };
    assert_eq!(keys(&client, "orders", busy).await, ["gone-1", "held-1"]);
    let completed = ListQuery { state: Some(RecordState::Completed), ..Default::default() };
    assert_eq!(keys(&client, "orders", completed).await, ["done-1", "done-2", "done-3"]);
    let abandoned = ListQuery { abandoned: true, ..Default::default() };
    assert_eq!(keys(&client, "orders", abandoned.clone()).await, ["gone-1"]);
    assert_eq!(keys(&client, "other", abandoned).await, ["held-1"]);
    let stale = ListQuery { consistency: Consistency::Stale, ..Default::default() };
    assert_eq!(keys(&client, "nobody", stale).await, Vec::<String>::new());

    // One raw page: the wire form, and a cursor that goes on.
    let page = c.get(follower, "/v1/ns/orders/keys?limit=2&prefix=done-").await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    assert_eq!(page.body["records"][1]["key"], "done-2");
    assert_eq!(page.body["records"][0]["result"], "done-1");
    let next = page.body["next"].as_str().expect("a cursor").to_owned();
    let rest = c.get(follower, &format!("/v1/ns/orders/keys?limit=2&prefix=done-&after={next}")).await;
    assert_eq!(rest.body["records"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest.body["next"], Value::Null, "the walk is over");
}

#[tokio::test]
async fn a_paged_walk_lists_every_record_present_throughout_exactly_once_while_writes_go_on() {
    let c = TestCluster::start(3).await;
    let client = Client::new(c.urls()).unwrap();
    let steady: Vec<String> = (0..120).map(|i| format!("k{:03}", i * 2)).collect();
    let ops = steady.iter().map(|k| json!({"op": "claim", "ns": "walk", "key": k, "lease_ms": 60_000})).collect();
    assert_eq!(c.post(c.leader().await, "/v1/batch", json!({"ops": Value::Array(ops)})).await.status, 200);

    // Meanwhile: odd keys come and go between the steady (even) ones.
    let writer = {
        let client = client.clone();
        tokio::spawn(async move {
            for round in 0..4 {
                for i in (1..240).step_by(6) {
                    let key = format!("k{i:03}");
                    if round % 2 == 0 {
                        claim(&client, "walk", &key, 60_000).await;
                    } else {
                        client.delete("walk", &key).await.unwrap();
                    }
                }
            }
        })
    };
    let mut seen = Vec::new();
    let mut pages = client.list("walk", ListQuery { limit: Some(7), ..Default::default() });
    while let Some(record) = pages.try_next().await.unwrap() {
        seen.push(record.key);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.await.unwrap();
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no record listed twice: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in key order");
    for key in &steady {
        assert!(unique.contains(key), "{key} existed throughout and was skipped");
    }
}

#[tokio::test]
async fn bad_listing_input_is_a_400_with_a_code() {
    let c = TestCluster::start(1).await;
    for query in [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "state=done",
        "abandoned=maybe",
        "abandoned=true&state=completed",
        "after=zz",
        "after=6b",
        "consistency=eventual",
    ] {
        // `after=6b` is the cursor of key "k": valid, so it must pass.
        let a = c.get(1, &format!("/v1/ns/ns/keys?{query}")).await;
        if query == "after=6b" {
            assert_eq!(a.status, 200, "{query}: {:?}", a.body);
        } else {
            assert_eq!((a.status.as_u16(), a.code()), (400, Some("bad_request")), "{query}: {:?}", a.body);
        }
    }
    let a = c.get(1, "/v1/ns/bad%2Fns/keys").await;
    assert_eq!((a.status.as_u16(), a.code()), (400, Some("bad_request")));
    let a = c.get(1, &format!("/v1/ns/ns/keys?prefix={}", "p".repeat(513))).await;
    assert_eq!((a.status.as_u16(), a.code()), (400, Some("bad_request")));
    // A valid cursor past every key with the prefix ("z" after prefix "a"):
    // an empty last page, not a failure.
    let a = c.get(1, "/v1/ns/ns/keys?prefix=a&after=7a").await;
    assert_eq!((a.status.as_u16(), &a.body), (200, &serde_json::json!({"records": [], "next": null})));
}
