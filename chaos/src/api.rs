//! The HTTP client of the cluster under test: one request of the workload and
//! how its answer becomes an [`Outcome`], plus the few cluster calls the
//! nemesis needs (who leads, is everyone ready, the test-only clock offset).
//!
//! The classification is what the checker's soundness rests on: only an answer
//! the registry actually gave is definite; a timeout, a reset or a 5xx is
//! unknown (the write may still commit), and only a refused connection proves
//! the request had no effect. An answer that does not parse is recorded as a
//! definite failure, so a malformed reply shows up as a violation, not noise.

use std::path::Path;
use std::time::Duration;

use idem_client::proto::{
    CheckpointRequest, ClaimRequest, ClaimResponse, ClusterStatus, CompleteRequest, ErrorBody, Record, ReleaseRequest,
};
use reqwest::{Client, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::history::{Answer, Call, Outcome};

/// The namespace every workload key lives in.
pub const NAMESPACE: &str = "chaos";

/// Leases far longer than any run, so none expires and the model need not
/// know time (see `model`).
pub const LEASE_MS: u64 = 3_600_000;

/// Retention far longer than any run, so no record expires during it.
pub const RETENTION_MS: u64 = 86_400_000;

/// An HTTP client of the cluster's nodes.
#[derive(Clone)]
pub struct Api {
    http: Client,
    /// `http://host:port` of node 1, 2, ...
    nodes: Vec<String>,
}

impl Api {
    /// `timeout` bounds every request, short enough that faults produce
    /// unknowns. With `ca` the nodes are spoken to over https, trusting it;
    /// `token` goes with every request.
    pub fn new(nodes: &[String], timeout: Duration, ca: Option<&Path>, token: Option<&str>) -> anyhow::Result<Api> {
        let mut builder = Client::builder().timeout(timeout).connect_timeout(timeout);
        if let Some(ca) = ca {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?);
        }
        if let Some(token) = token {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
            builder = builder.default_headers(headers);
        }
        let scheme = if ca.is_some() { "https" } else { "http" };
        Ok(Api { http: builder.build()?, nodes: nodes.iter().map(|n| format!("{scheme}://{n}")).collect() })
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Base URL of node `node` (1-based).
    pub fn url(&self, node: u32, path: &str) -> String {
        format!("{}{path}", self.nodes[node as usize - 1])
    }

    /// Perform `call` on `key` through node `node` (1-based).
    pub async fn call(&self, node: u32, owner: &str, key: &str, call: &Call) -> Outcome {
        let path = |verb: &str| self.url(node, &format!("/v1/ns/{NAMESPACE}/keys/{key}{verb}"));
        let (method, url, body) = match call {
            Call::Claim { claim_id } => {
                let req = ClaimRequest {
                    lease_ms: Some(LEASE_MS),
                    retention_ms: Some(RETENTION_MS),
                    owner: Some(owner.to_owned()),
                    claim_id: Some(claim_id.clone()),
                    fingerprint: None,
                };
                (Method::POST, path("/claim"), json(&req))
            }
            Call::Checkpoint { token, stage } => {
                let req = CheckpointRequest { token: *token, stage: stage.clone(), data: Value::Null, lease_ms: None };
                (Method::POST, path("/checkpoint"), json(&req))
            }
            Call::Complete { token, result } => {
                let req = CompleteRequest { token: *token, result: Value::String(result.clone()), retention_ms: None };
                (Method::POST, path("/complete"), json(&req))
            }
            Call::Release { token } => (Method::POST, path("/release"), json(&ReleaseRequest { token: *token })),
            Call::Read => (Method::GET, path(""), None),
        };
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => return transport_failure(&e),
        };
        let status = resp.status();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return transport_failure(&e),
        };
        classify(matches!(call, Call::Claim { .. }), status, &bytes)
    }

    /// The leader, as the first node that knows one says.
    pub async fn leader(&self) -> Option<u32> {
        for node in 1..=self.nodes.len() as u32 {
            if let Some(leader) = self.status(node).await.and_then(|s| s.leader_id) {
                return Some(leader as u32);
            }
        }
        None
    }

    async fn status(&self, node: u32) -> Option<ClusterStatus> {
        let resp = self.http.get(self.url(node, "/v1/cluster")).send().await.ok()?;
        resp.json().await.ok()
    }

    /// Whether every node answers `/readyz` with 200: it knows a leader and has caught up.
    pub async fn all_ready(&self) -> bool {
        for node in 1..=self.nodes.len() as u32 {
            let ready = self.http.get(self.url(node, "/readyz")).send().await;
            if !ready.is_ok_and(|r| r.status().is_success()) {
                return false;
            }
        }
        true
    }

    /// Polls [`Api::all_ready`] until it holds or `timeout` passes; whether it held.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.all_ready().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// Shift node `node`'s wall clock by `offset_ms` (the node's `--test-hooks` endpoint).
    pub async fn set_clock_offset(&self, node: u32, offset_ms: i64) -> reqwest::Result<()> {
        let url = self.url(node, "/debug/clock-offset");
        self.http.post(url).json(&serde_json::json!({ "offset_ms": offset_ms })).send().await?.error_for_status()?;
        Ok(())
    }
}

fn json<T: serde::Serialize>(v: &T) -> Option<Value> {
    Some(serde_json::to_value(v).expect("request bodies always serialize"))
}

fn transport_failure(e: &reqwest::Error) -> Outcome {
    if e.is_connect() {
        Outcome::NotSent { reason: format!("connect: {e}") }
    } else if e.is_timeout() {
        Outcome::Unknown { reason: "timeout".into() }
    } else {
        Outcome::Unknown { reason: e.to_string() }
    }
}

/// The outcome an HTTP answer stands for.
fn classify(claim: bool, status: StatusCode, body: &[u8]) -> Outcome {
    let code = status.as_u16();
    let parsed = |answer: Result<Answer, serde_json::Error>| match answer {
        Ok(answer) => Outcome::Ok { status: code, answer },
        Err(e) => Outcome::Fail { status: code, code: format!("unparseable answer: {e}") },
    };
    if status.is_server_error() {
        return Outcome::Unknown { reason: format!("{code} {}", error_code(body)) };
    }
    if claim && matches!(code, 200 | 201 | 409) {
        return parsed(decode::<ClaimResponse>(body).map(Answer::Claim));
    }
    if status.is_success() {
        return parsed(decode::<Record>(body).map(Answer::Record));
    }
    Outcome::Fail { status: code, code: error_code(body) }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

/// The stable error code of an error body, or a description of what came instead.
fn error_code(body: &[u8]) -> String {
    match decode::<ErrorBody>(body) {
        Ok(e) => e.error.code.as_str().to_owned(),
        Err(_) => format!("unparseable error body: {}", String::from_utf8_lossy(&body[..body.len().min(120)])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_as_the_checker_needs() {
        let fenced = br#"{"error":{"code":"fenced","message":"x"}}"#;
        assert_eq!(classify(false, StatusCode::CONFLICT, fenced), Outcome::Fail { status: 409, code: "fenced".into() });
        let busy = classify(
            true,
            StatusCode::CONFLICT,
            br#"{"outcome":"in_progress","record":{"namespace":"n","key":"k","state":"in_progress","token":3,
                "attempt":1,"claim_id":"c","owner":null,"fingerprint":null,"checkpoint":null,"result":null,
                "created_at_ms":1,"updated_at_ms":1,"lease_expires_at_ms":2,"expires_at_ms":9}}"#,
        );
        assert!(matches!(busy, Outcome::Ok { status: 409, answer: Answer::Claim(ClaimResponse::InProgress { .. }) }));
        let unavailable = br#"{"error":{"code":"unavailable","message":"no leader"}}"#;
        assert!(matches!(classify(true, StatusCode::SERVICE_UNAVAILABLE, unavailable), Outcome::Unknown { .. }));
        assert!(matches!(classify(false, StatusCode::OK, b"garbage"), Outcome::Fail { status: 200, .. }));
    }
}
