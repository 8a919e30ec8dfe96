//! What a peer says of itself, asked for over the node-to-node connection,
//! so with TLS on the request carries this node's certificate and passes the
//! peer's mutual-TLS check: its figures for the status page (`api::status`)
//! and the features it supports (`crate::upgrade`).

use std::time::Duration;

use idem_client::proto::MemberFigures;
use serde::de::DeserializeOwned;

use crate::codec::decode;

use super::{paths, Peers};

/// Ask the peer at `addr` for its figures; why not, when it does not answer
/// them within `timeout`.
pub async fn figures(peers: &Peers, addr: &str, timeout: Duration) -> Result<MemberFigures, String> {
    ask(peers, addr, paths::STATUS, timeout).await
}

/// The features the peer at `addr` supports; why not known, when it does not
/// say (an earlier version answers 404).
pub async fn features(peers: &Peers, addr: &str, timeout: Duration) -> Result<Vec<String>, String> {
    ask(peers, addr, paths::FEATURES, timeout).await
}

async fn ask<T: DeserializeOwned>(peers: &Peers, addr: &str, path: &str, timeout: Duration) -> Result<T, String> {
    let resp = peers.http.get(peers.url(addr, path)).timeout(timeout).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("no answer within {} ms", timeout.as_millis())
        } else {
            e.to_string()
        }
    })?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("answered {status}: {}", String::from_utf8_lossy(&bytes)));
    }
    decode(&bytes).map_err(|e| format!("undecodable answer: {e}"))
}
