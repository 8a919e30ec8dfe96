//! How the bench's HTTP clients are built: HTTP/1.1 keep-alive, trusting a
//! cluster's own CA and sending its bearer token when given (as `idem-client`
//! does for a secure cluster, API.md, Security).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;

/// What every client of one run shares: the CA to trust and the token to send.
#[derive(Clone, Default)]
pub struct Http {
    roots: Vec<reqwest::Certificate>,
    headers: HeaderMap,
}

impl Http {
    pub fn new(ca: Option<&Path>, token: Option<&str>) -> anyhow::Result<Http> {
        let mut http = Http::default();
        if let Some(path) = ca {
            let pem = std::fs::read(path).with_context(|| format!("reading the CA file {}", path.display()))?;
            http.roots = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} holds no usable certificate", path.display()))?;
        }
        if let Some(token) = token {
            let mut value = HeaderValue::try_from(format!("Bearer {token}")).context("the token is no header value")?;
            value.set_sensitive(true);
            http.headers.insert(AUTHORIZATION, value);
        }
        Ok(http)
    }

    /// A client that keeps one idle connection per host: each simulated
    /// client gets its own, so it holds one connection per node, as a
    /// service would.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            // Below a node's default --header-timeout (10 s), which also ends
            // idle connections: the leader's counters are read before and
            // after each run, 10 s apart by default, and reusing a connection
            // the node is closing at that moment fails the whole bench.
            .pool_idle_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .default_headers(self.headers.clone());
        for cert in &self.roots {
            b = b.add_root_certificate(cert.clone());
        }
        Ok(b.build()?)
    }
}

/// Sends a request and reads the whole answer (so the connection is reused),
/// or names what went wrong: no answer, or a status other than `want`.
pub async fn expect(req: reqwest::RequestBuilder, want: StatusCode) -> Result<Bytes, String> {
    let resp = req.send().await.map_err(|e| format!("no answer: {e}"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| format!("reading the answer: {e}"))?;
    if status == want {
        Ok(body)
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}
