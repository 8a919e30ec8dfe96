//! A peer's own figures for the status page (`api::status`), asked for over
//! the node-to-node connection, so with TLS on the request carries this
//! node's certificate and passes the peer's mutual-TLS check.

use std::time::Duration;

use idem_client::proto::MemberFigures;

use crate::codec::decode;

use super::{paths, Peers};

/// Ask the peer at `addr` for its figures; why not, when it does not answer
/// them within `timeout`.
pub async fn figures(peers: &Peers, addr: &str, timeout: Duration) -> Result<MemberFigures, String> {
    let resp = peers.http.get(peers.url(addr, paths::STATUS)).timeout(timeout).send().await.map_err(|e| {
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
