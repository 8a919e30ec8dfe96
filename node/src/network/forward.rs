//! A follower's operations go to the leader over the node-to-node connection,
//! bincode-encoded and batched by the follower's proposer, rather than as a
//! re-proxied HTTP request per client call.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::TokenDigest;
use crate::codec::{decode, encode};
use crate::error::ClusterError;
use crate::registry::{Op, Outcome};

use super::{paths, Peers, BINCODE};

/// One request's operations and who sent them (the digest of the caller's
/// token, when tokens are on), so the leader can check the caller again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub caller: Option<TokenDigest>,
    pub ops: Vec<Op>,
}

/// What the leader answers: each group's outcomes in order or why it was
/// refused, or why it proposed nothing at all.
pub type Forwarded = Result<Vec<Result<Vec<Outcome>, ClusterError>>, ClusterError>;

/// The operations never reached the leader (no connection), so they had no
/// effect and may be sent to another.
#[derive(Debug)]
pub struct Unsent(pub String);

/// Send `groups` to the leader at `addr` and wait up to `timeout` for its
/// answer. A failure after the request may have been delivered is
/// `Ok(Err(Unavailable))`: its outcome is unknown.
pub async fn forward(peers: &Peers, addr: &str, groups: &[Group], timeout: Duration) -> Result<Forwarded, Unsent> {
    let unknown = |e: String| Ok(Err(ClusterError::Unavailable(format!("forwarding to the leader failed: {e}"))));
    let body = match encode(&groups) {
        Ok(body) => body,
        Err(e) => return unknown(e.to_string()),
    };
    let sent = peers
        .http
        .post(peers.url(addr, paths::FORWARD))
        .header(reqwest::header::CONTENT_TYPE, BINCODE)
        .timeout(timeout)
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(resp) => resp,
        Err(e) if e.is_connect() => return Err(Unsent(e.to_string())),
        Err(e) => return unknown(e.to_string()),
    };
    let status = resp.status();
    if status == reqwest::StatusCode::MISDIRECTED_REQUEST {
        // A leader handing over refuses before it looks at the operations.
        return Err(Unsent(format!("node at {addr} is handing leadership over")));
    }
    let bytes = match resp.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return unknown(format!("the leader's answer was cut: {e}")),
    };
    if !status.is_success() {
        return unknown(format!("the leader answered {status}: {}", String::from_utf8_lossy(&bytes)));
    }
    decode(&bytes).or_else(|e| unknown(format!("undecodable answer: {e}")))
}
