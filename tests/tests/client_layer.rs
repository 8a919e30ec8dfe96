//! `IdempotencyLayer` options against a real cluster, in process: what is
//! guarded, what a failure does to the key, and how keys are scoped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use idem_client::layer::Principal;
use idem_client::{Client, IdempotencyLayer};
use idem_tests::TestCluster;
use tower::ServiceExt;

/// A handler that counts its runs and fails (500, or a panic) on the runs
/// listed in `fail`.
#[derive(Clone, Default)]
struct Counter {
    runs: Arc<AtomicUsize>,
    fail: Arc<Vec<(usize, &'static str)>>,
}

async fn handler(State(c): State<Counter>) -> (StatusCode, String) {
    let n = c.runs.fetch_add(1, Ordering::SeqCst) + 1;
    match c.fail.iter().find(|(run, _)| *run == n).map(|(_, how)| *how) {
        Some("panic") => panic!("run {n} panics"),
        Some(_) => (StatusCode::INTERNAL_SERVER_ERROR, format!("run {n} failed")),
        None => (StatusCode::CREATED, format!("run {n}")),
    }
}

/// Sets the principal from `x-user`, as an auth layer would.
async fn auth(mut req: Request, next: Next) -> Response {
    if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        let user = Principal(user.to_owned());
        req.extensions_mut().insert(user);
    }
    next.run(req).await
}

fn app(layer: IdempotencyLayer, counter: &Counter) -> Router {
    Router::new()
        .route("/op", post(handler).get(handler))
        .layer(layer)
        .layer(middleware::from_fn(auth))
        .with_state(counter.clone())
}

async fn send(app: &Router, method: Method, key: Option<&str>, user: Option<&str>) -> (StatusCode, bool, String) {
    let mut req = Request::builder().method(method).uri("/op");
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    if let Some(user) = user {
        req = req.header("x-user", user);
    }
    let resp = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let replayed = resp.headers().contains_key("idempotent-replayed");
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, replayed, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn failures_release_the_key_unless_told_to_store_them() {
    let c = TestCluster::start(3).await;
    let client = Client::new(c.urls()).unwrap();
    let counter = Counter { fail: Arc::new(vec![(1, "500"), (2, "panic")]), ..Default::default() };
    let app = app(IdempotencyLayer::new(client.clone(), "layer"), &counter);
    let k = Some("k1");
    assert_eq!(send(&app, Method::POST, k, None).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    // Released before the answer, so the retry runs at once (and panics).
    assert_eq!(send(&app, Method::POST, k, None).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The panic's release runs in the background: until it lands, 409.
    let mut third = send(&app, Method::POST, k, None).await;
    for _ in 0..50 {
        if third.0 != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        third = send(&app, Method::POST, k, None).await;
    }
    assert_eq!(third, (StatusCode::CREATED, false, "run 3".into()));
    assert_eq!(send(&app, Method::POST, k, None).await, (StatusCode::CREATED, true, "run 3".into()));

    let counter = Counter { fail: Arc::new(vec![(1, "500")]), ..Default::default() };
    let app = self::app(IdempotencyLayer::new(client, "layer").store_server_errors(true), &counter);
    let k = Some("k2");
    assert_eq!(send(&app, Method::POST, k, None).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    let replay = send(&app, Method::POST, k, None).await;
    assert_eq!(replay, (StatusCode::INTERNAL_SERVER_ERROR, true, "run 1 failed".into()));
    assert_eq!(counter.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn methods_required_keys_and_principal_scopes() {
    let c = TestCluster::start(3).await;
    let client = Client::new(c.urls()).unwrap();
    let counter = Counter::default();
    let app = app(IdempotencyLayer::new(client.clone(), "layer"), &counter);
    // GET is not guarded, and an optional key may be absent: both run each time.
    assert_eq!(send(&app, Method::GET, Some("g"), None).await.2, "run 1");
    assert_eq!(send(&app, Method::GET, Some("g"), None).await.2, "run 2");
    assert_eq!(send(&app, Method::POST, None, None).await.2, "run 3");
    assert_eq!(send(&app, Method::POST, None, None).await.2, "run 4");
    // The same key for two principals is two keys; for one principal, one.
    assert_eq!(send(&app, Method::POST, Some("k"), Some("alice")).await.2, "run 5");
    assert_eq!(send(&app, Method::POST, Some("k"), Some("bob")).await.2, "run 6");
    assert_eq!(send(&app, Method::POST, Some("k"), Some("alice")).await, (StatusCode::CREATED, true, "run 5".into()));
    assert_eq!(send(&app, Method::POST, Some("k"), None).await.2, "run 7");

    let strict = self::app(IdempotencyLayer::new(client, "layer").required(true).methods([Method::GET]), &counter);
    assert_eq!(send(&strict, Method::GET, None, None).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(send(&strict, Method::GET, Some("g2"), None).await.2, "run 8");
    assert_eq!(send(&strict, Method::GET, Some("g2"), None).await, (StatusCode::CREATED, true, "run 8".into()));
    assert_eq!(send(&strict, Method::POST, None, None).await.2, "run 9");
}
