//! Secure clusters (API.md, Security), with a CA, node certificates and
//! tokens made at test time by `idem-node certs` and `idem-node token`:
//! 401 without a token, 403 without the grant (for each op of a batch too),
//! Raft RPC only for peers, a SIGHUP reload, and writes going on when the
//! leader dies under TLS, through the library and the CLI.

use std::process::Command;
use std::time::Duration;

use idem_client::proto::{BatchOp, ClaimRequest, GetQuery, ListQuery};
use idem_client::{ClaimOutcome, Client, Error};
use idem_tests::scenarios::key_path;
use idem_tests::{header, workspace_artifact, Security, TestCluster};
use serde_json::json;

/// A secure three-node cluster with an admin token, `pay` (read and write on
/// `payments`) and `orders-ro` (read on every namespace starting `orders-`).
async fn secure_cluster() -> (TestCluster, Security, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tokens: &[(&str, &[&str])] =
        &[("admin", &[]), ("pay", &["payments=read,write"]), ("orders-ro", &["orders-*=read"])];
    let security = Security::make(dir.path(), tokens);
    let c = TestCluster::start_secured(3, &[], Some(security.clone())).await;
    (c, security, dir)
}

fn client(c: &TestCluster, s: &Security, token: &str) -> Client {
    Client::builder(c.urls()).ca_file(s.ca()).token(s.token(token)).build().unwrap()
}

#[tokio::test]
async fn tokens_gate_every_call_by_namespace_and_operation() {
    let (c, s, _dir) = secure_cluster().await;
    let f = c.follower().await;
    let (pay, orders_ro) = (client(&c, &s, "pay"), client(&c, &s, "orders-ro"));

    // No token, or one the cluster does not know: 401, with the scheme named.
    let anonymous = Client::builder(c.urls()).ca_file(s.ca()).build().unwrap();
    assert!(matches!(anonymous.claim("payments", "k", ClaimRequest::default()).await, Err(Error::Unauthorized(_))));
    let stranger = Client::builder(c.urls()).ca_file(s.ca()).token("idem_not-a-token").build().unwrap();
    assert!(matches!(stranger.get("payments", "k", &GetQuery::default()).await, Err(Error::Unauthorized(_))));
    let raw = c.api.client().post(format!("{}{}/claim", c.url(f), key_path("payments", "raw")));
    let answer = raw.header("authorization", "Bearer nope").send().await.unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!(header(answer.headers(), "www-authenticate").as_deref(), Some("Bearer"));

    // A grant covers its namespace and its operations only.
    let got = pay.claim("payments", "order-1", ClaimRequest::default()).await.unwrap();
    assert!(matches!(got, ClaimOutcome::Acquired { .. }), "{got:?}");
    assert!(matches!(pay.claim("orders-eu", "o1", ClaimRequest::default()).await, Err(Error::Forbidden(_))));
    assert!(matches!(pay.get("orders-eu", "o1", &GetQuery::default()).await, Err(Error::Forbidden(_))));
    assert!(matches!(pay.delete("payments", "order-1").await, Err(Error::Forbidden(_))), "no delete grant");
    assert_eq!(pay.get("payments", "order-1", &GetQuery::default()).await.unwrap().key, "order-1");
    assert!(matches!(orders_ro.get("orders-eu", "o1", &GetQuery::default()).await, Err(Error::NotFound)));
    assert!(matches!(orders_ro.claim("orders-eu", "o1", ClaimRequest::default()).await, Err(Error::Forbidden(_))));
    assert!(matches!(orders_ro.get("orders", "o1", &GetQuery::default()).await, Err(Error::Forbidden(_))));
    // Listing is a read of its namespace.
    let listed = pay.list_page("payments", &ListQuery::default()).await.unwrap();
    assert_eq!(listed.records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["order-1"]);
    assert!(matches!(pay.list_page("orders-eu", &ListQuery::default()).await, Err(Error::Forbidden(_))));
    assert!(orders_ro.list_page("orders-eu", &ListQuery::default()).await.unwrap().records.is_empty());

    // Each op of a batch is checked on its own.
    let claim = |ns: &str, key: &str| BatchOp::Claim { ns: ns.into(), key: key.into(), req: ClaimRequest::default() };
    let batch = pay.batch(vec![claim("payments", "b1"), claim("orders-eu", "b2"), claim("payments", "b3")]).await;
    let statuses: Vec<u16> = batch.unwrap().results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 403, 201]);

    // Admin alone changes membership and reads metrics; health stays open.
    assert!(matches!(pay.change_voters(vec![1, 2, 3]).await, Err(Error::Forbidden(_))));
    let metrics = |token: String| {
        c.api.client().get(format!("{}/metrics", c.url(f))).header("authorization", format!("Bearer {token}")).send()
    };
    assert_eq!(metrics(s.token("pay")).await.unwrap().status(), 403);
    assert_eq!(metrics(s.token("admin")).await.unwrap().status(), 200);
    let health = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(s.ca()).unwrap()).unwrap())
        .build()
        .unwrap();
    for path in ["/healthz", "/readyz"] {
        assert_eq!(health.get(format!("{}{path}", c.url(f))).send().await.unwrap().status(), 200, "{path}");
    }
}

#[tokio::test]
async fn raft_rpc_and_forwarding_are_for_peers_only() {
    let (c, s, _dir) = secure_cluster().await;
    let l = c.leader().await;
    // A client of the cluster, with the admin token even: no peer certificate.
    for path in ["/raft/vote", "/raft/append", "/raft/snapshot", "/raft/forward"] {
        let a = c.post(l, path, json!({})).await;
        assert_eq!((a.status.as_u16(), a.code()), (403, Some("forbidden")), "{path}");
    }
    // Clear text to a TLS port gets no HTTP answer at all.
    let plain = reqwest::Client::new().post(format!("http://{}/raft/vote", c.addr(l))).send().await;
    assert!(plain.map_or(true, |r| !r.status().is_success()));
    // A certificate from another CA is no peer's.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Security::make(other_dir.path(), &[]);
    let pem =
        [std::fs::read(other.dir.join("node-1.pem")).unwrap(), std::fs::read(other.dir.join("node-1.key")).unwrap()]
            .concat();
    let impostor = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(s.ca()).unwrap()).unwrap())
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let forged = impostor.post(format!("{}/raft/vote", c.url(l))).body("x").send().await;
    assert!(forged.map_or(true, |r| r.status() == 403), "a foreign certificate must not pass");
    // The real peers still replicate: writes through a follower commit.
    let f = c.follower().await;
    assert_eq!(c.post(f, &format!("{}/claim", key_path("payments", "peer-ok")), json!({})).await.status, 201);
}

#[tokio::test]
async fn a_sighup_reloads_the_token_file() {
    let (c, s, _dir) = secure_cluster().await;
    let pay = client(&c, &s, "pay");
    assert!(pay.claim("payments", "before", ClaimRequest::default()).await.is_ok());
    let file = s.dir.join("tokens.json");
    let original = std::fs::read_to_string(&file).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&original).unwrap();
    doc["tokens"].as_array_mut().unwrap().retain(|t| t["name"] != "pay");
    std::fs::write(&file, doc.to_string()).unwrap();
    for id in c.ids() {
        c.hangup(id);
    }
    let revoked = async {
        loop {
            if let Err(Error::Unauthorized(_)) = pay.claim("payments", "after", ClaimRequest::default()).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), revoked).await.expect("the removed token stops working");
    // A file that does not parse keeps the tokens in force.
    std::fs::write(&file, "{ not json").unwrap();
    for id in c.ids() {
        c.hangup(id);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(client(&c, &s, "admin").claim("payments", "still", ClaimRequest::default()).await.is_ok());
    assert!(matches!(pay.claim("payments", "after", ClaimRequest::default()).await, Err(Error::Unauthorized(_))));
}

#[tokio::test]
async fn writes_go_on_when_the_leader_dies_under_tls_through_library_and_cli() {
    let (mut c, s, _dir) = secure_cluster().await;
    let pay = client(&c, &s, "pay");
    for i in 0..5 {
        assert!(pay.claim("payments", &format!("a{i}"), ClaimRequest::default()).await.is_ok());
    }
    let leader = c.leader().await;
    c.kill(leader);
    for i in 0..5 {
        let got = pay.claim("payments", &format!("b{i}"), ClaimRequest::default()).await;
        assert!(matches!(got, Ok(ClaimOutcome::Acquired { .. })), "after the leader died: {got:?}");
    }
    // The CLI reads IDEM_CA and IDEM_TOKEN.
    let cli = workspace_artifact("IDEM_CLI_BIN", "idem-client", &["--bin", "idem", "--features", "cli"], "idem");
    let live: Vec<String> = c.ids().into_iter().filter(|id| c.is_up(*id)).map(|id| c.url(id)).collect();
    let run = |token: &str, args: &[&str]| {
        Command::new(&cli)
            .args(args)
            .env("IDEM_ENDPOINTS", live.join(","))
            .env("IDEM_CA", s.ca())
            .env("IDEM_TOKEN", token)
            .output()
            .expect("running idem")
    };
    let ok = run(&s.token("pay"), &["--json", "claim", "payments", "cli-1"]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let denied = run(&s.token("pay"), &["claim", "orders-eu", "cli-2"]);
    assert_eq!(denied.status.code(), Some(7), "forbidden exits 7: {}", String::from_utf8_lossy(&denied.stderr));
    let nobody = run("", &["get", "payments", "cli-1"]);
    assert_eq!(nobody.status.code(), Some(7), "unauthorized exits 7");
}
