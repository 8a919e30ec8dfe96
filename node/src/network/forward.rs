//! A follower's operations go to the leader over the node-to-node connection,
//! bincode-encoded and batched by the follower's proposer, rather than as a
//! re-proxied HTTP request per client call.

use std::time::Duration;

use crate::codec::{decode, encode};
use crate::error::ConsensusError;
use crate::registry::{Op, Outcome};

use super::{paths, BINCODE};

/// What the leader answers: the outcomes in order, or why it proposed nothing.
pub type Forwarded = Result<Vec<Outcome>, ConsensusError>;

/// The operations never reached the leader (no connection), so they had no
/// effect and may be sent to another.
#[derive(Debug)]
pub struct Unsent(pub String);

/// Send `ops` to the leader at `addr` and wait up to `timeout` for its answer.
/// A failure after the request may have been delivered is `Ok(Err(Unavailable))`:
/// its outcome is unknown.
pub async fn forward(http: &reqwest::Client, addr: &str, ops: &[Op], timeout: Duration) -> Result<Forwarded, Unsent> {
    let unknown = |e: String| Ok(Err(ConsensusError::Unavailable(format!("forwarding to the leader failed: {e}"))));
    let body = match encode(&ops) {
        Ok(body) => body,
        Err(e) => return unknown(e.to_string()),
    };
    let sent = http
        .post(format!("http://{addr}{}", paths::FORWARD))
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
    let bytes = match resp.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return unknown(format!("the leader's answer was cut: {e}")),
    };
    if !status.is_success() {
        return unknown(format!("the leader answered {status}: {}", String::from_utf8_lossy(&bytes)));
    }
    decode(&bytes).or_else(|e| unknown(format!("undecodable answer: {e}")))
}
