//! End to end: the `checkout` example (a pizza shop behind
//! `IdempotencyLayer`) on a real three-node cluster. Impatient clients send
//! the same orders many times at once while the registry's leader is killed;
//! every order is charged exactly once and every caller sees the same answer.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idem_tests::{workspace_artifact, TestCluster};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The example service as a process; killed on drop.
struct Shop {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Shop {
    async fn start(c: &TestCluster, charge_delay: &str) -> Shop {
        let bin = workspace_artifact(
            "CHECKOUT_BIN",
            "idem-client",
            &["--example", "checkout", "--features", "layer"],
            "examples/checkout",
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(bin)
            .env("IDEM_ENDPOINTS", c.urls().join(","))
            .env("CHECKOUT_LISTEN", format!("127.0.0.1:{port}"))
            .env("CHECKOUT_CHARGE_DELAY", charge_delay)
            .env("CHECKOUT_LEASE", "5s")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawning the checkout example");
        let shop = Shop { child, url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while shop.http.get(format!("{}/charges", shop.url)).send().await.is_err() {
            assert!(Instant::now() < deadline, "the checkout example did not serve");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shop
    }

    async fn charges(&self) -> BTreeMap<String, Vec<String>> {
        self.http.get(format!("{}/charges", self.url)).send().await.unwrap().json().await.unwrap()
    }

    fn order(&self, order: &str, key: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http.post(format!("{}/orders/{order}/checkout", self.url)).header("idempotency-key", key).json(body)
    }
}

/// What a caller finally got: status, whether it was a replay, body.
type Final = (StatusCode, bool, String);

#[derive(Default)]
struct Seen {
    timeouts: AtomicUsize,
    conflicts: AtomicUsize,
    unavailable: AtomicUsize,
}

/// Sends one order until it gets a final answer: an impatient client that
/// gives up after `timeout` (shorter than the charge) and retries with the
/// same key and body, as the Idempotency-Key header invites.
async fn until_final(shop: Arc<Shop>, order: String, body: Value, timeout: Duration, seen: Arc<Seen>) -> Final {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "{order}: no final answer in 60 s");
        match shop.order(&order, &format!("key-{order}"), &body).timeout(timeout).send().await {
            Err(_) => {
                seen.timeouts.fetch_add(1, Ordering::SeqCst);
            }
            Ok(r) if r.status() == StatusCode::CONFLICT => {
                assert!(r.headers().contains_key("retry-after"));
                seen.conflicts.fetch_add(1, Ordering::SeqCst);
            }
            Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => {
                seen.unavailable.fetch_add(1, Ordering::SeqCst);
            }
            Ok(r) => {
                let status = r.status();
                let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
                match r.text().await {
                    Ok(text) => return (status, replayed, text),
                    Err(_) => seen.timeouts.fetch_add(1, Ordering::SeqCst),
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn each_order_is_charged_once_while_callers_retry_and_the_leader_dies() {
    let mut c = TestCluster::start(3).await;
    let shop = Arc::new(Shop::start(&c, "1s").await);
    let seen = Arc::new(Seen::default());
    let mut tasks = Vec::new();
    for o in 0..6 {
        for _caller in 0..6 {
            let body = json!({"pizza": "margherita", "amount": 1000 + o});
            let (shop, seen) = (shop.clone(), seen.clone());
            let order = format!("o{o}");
            tasks.push(tokio::spawn(async move {
                let got = until_final(shop, order.clone(), body, Duration::from_millis(300), seen).await;
                (order, got)
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.kill(c.leader().await);

    let mut answers: BTreeMap<String, Vec<Final>> = BTreeMap::new();
    for t in tasks {
        let (order, got) = t.await.unwrap();
        answers.entry(order).or_default().push(got);
    }
    let charges = shop.charges().await;
    for (order, got) in &answers {
        assert_eq!(charges.get(order).map(Vec::len), Some(1), "{order} charged {:?}", charges.get(order));
        let first: Value = serde_json::from_str(&got[0].2).unwrap();
        assert_eq!(first["charge_id"], charges[order][0].as_str(), "{order}");
        assert!(got.iter().all(|g| g.2 == got[0].2), "{order}: answers differ: {got:?}");
        assert!(got.iter().all(|g| g.0 == StatusCode::CREATED));
    }
    let replays = answers.values().flatten().filter(|g| g.1).count();
    assert!(replays > 0, "some answers were replays");
    assert!(seen.timeouts.load(Ordering::SeqCst) > 0, "clients gave up before the charge ended");
    assert!(seen.conflicts.load(Ordering::SeqCst) > 0, "retries met the order in flight");
    eprintln!(
        "timeouts {} conflicts {} unavailable {} replays {replays}",
        seen.timeouts.load(Ordering::SeqCst),
        seen.conflicts.load(Ordering::SeqCst),
        seen.unavailable.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn in_flight_duplicates_get_409_and_a_changed_payload_422() {
    let mut c = TestCluster::start(3).await;
    let shop = Arc::new(Shop::start(&c, "1500ms").await);
    let body = json!({"pizza": "quattro formaggi", "amount": 1450});
    let first = {
        let (shop, body) = (shop.clone(), body.clone());
        tokio::spawn(async move { shop.order("o9", "k9", &body).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let dup = shop.order("o9", "k9", &body).send().await.unwrap();
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    let retry_after: u64 = dup.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(dup.json::<Value>().await.unwrap()["error"]["code"], "in_progress");

    let first = first.await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.text().await.unwrap();

    let replay = shop.order("o9", "k9", &body).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.headers()["content-type"], "application/json");
    assert_eq!(replay.text().await.unwrap(), first_body);

    let changed = json!({"pizza": "quattro formaggi", "amount": 1});
    let refused = shop.order("o9", "k9", &changed).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], "fingerprint_mismatch");

    let keyless = shop.http.post(format!("{}/orders/o9/checkout", shop.url)).json(&body).send().await.unwrap();
    assert_eq!(keyless.status(), StatusCode::BAD_REQUEST);
    assert_eq!(shop.charges().await["o9"].len(), 1);

    // Without a registry the handler never runs unprotected: 503, no charge.
    for id in c.ids() {
        c.kill(id);
    }
    let down = shop.order("o10", "k10", &body).send().await.unwrap();
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.headers().contains_key("retry-after"));
    assert!(!shop.charges().await.contains_key("o10"));
}
