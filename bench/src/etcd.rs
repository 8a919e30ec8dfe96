//! etcd's side, through its JSON gateway (etcd 3.4, `/v3/...`): the same
//! linearizable create-if-absent with a lease that an idem claim is, as one
//! txn: if the key's `create_revision` is 0, put it with a 24 h lease.

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use idem_client::conn::Conn;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::http::{expect, json, post};
use crate::load::Op;

/// The txn for one key, every key on the same lease (granted once, up front).
pub struct Txn {
    /// Key prefix, like idem's namespace.
    pub ns: String,
    /// The lease id, a decimal string as the gateway writes 64-bit numbers.
    pub lease: String,
}

/// The gateway omits a false `succeeded`, as proto3 JSON does.
#[derive(Deserialize)]
struct TxnResponse {
    #[serde(default)]
    succeeded: bool,
}

impl Op for Txn {
    async fn write(&self, conn: &mut Conn, key: String) -> Result<(), String> {
        let key = B64.encode(format!("{}/{key}", self.ns));
        let txn = json!({
            "compare": [{"key": key, "result": "EQUAL", "target": "CREATE", "create_revision": "0"}],
            "success": [{"request_put": {"key": key, "value": B64.encode("1"), "lease": self.lease}}],
        });
        let body = post(conn, "/v3/kv/txn", json(&txn)?, StatusCode::OK).await?;
        match serde_json::from_slice::<TxnResponse>(&body) {
            Ok(TxnResponse { succeeded: true }) => Ok(()),
            _ => Err(format!("txn did not create the key: {}", String::from_utf8_lossy(&body))),
        }
    }
}

/// Grants the run's lease (24 h) and returns its id.
pub async fn grant_lease(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Grant {
        #[serde(rename = "ID")]
        id: String,
    }
    let body = expect(http.post(format!("{base}/v3/lease/grant")).json(&json!({"TTL": "86400"})), StatusCode::OK)
        .await
        .map_err(|e| anyhow::anyhow!("{base}/v3/lease/grant: {e}"))?;
    Ok(serde_json::from_slice::<Grant>(&body).context("lease grant answer")?.id)
}

/// The endpoint whose member id is the leader its own status names.
pub async fn leader(http: &reqwest::Client, endpoints: &[String]) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Header {
        member_id: String,
    }
    #[derive(Deserialize)]
    struct Status {
        header: Header,
        #[serde(default)]
        leader: String,
    }
    for e in endpoints {
        let Ok(body) = expect(http.post(format!("{e}/v3/maintenance/status")).json(&json!({})), StatusCode::OK).await
        else {
            continue;
        };
        let status: Status = serde_json::from_slice(&body).with_context(|| format!("{e}: status answer"))?;
        if status.leader == status.header.member_id {
            return Ok(e.clone());
        }
    }
    anyhow::bail!("no etcd endpoint is the leader: {}", endpoints.join(","))
}
