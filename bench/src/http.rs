//! How the bench talks HTTP: a reqwest client for finding leaders and
//! reading counters, and the load's own connections, both trusting a
//! cluster's own CA and sending its bearer token when given (as `idem-client`
//! does for a secure cluster, API.md, Security).
//!
//! The load generator shares the cores with the servers it measures, so
//! what it spends per request is taken from them. Each simulated client owns
//! one [`Conn`] (hyper's connection-level client, driven in its own task):
//! reqwest's pool, URL parsing and connection task cost about twice as much
//! CPU per claim (0.043-0.058 CPU s per 1,000 claims at 64 clients against
//! 0.026-0.027 on one 2-core VM).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use idem_client::conn::{Conn, Endpoint};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The longest one request may take, load or control.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What every client of one run shares: the TLS settings (the CA to trust)
/// and the token to send.
#[derive(Clone, Default)]
pub struct Http {
    tls: Option<Arc<rustls::ClientConfig>>,
    headers: HeaderMap,
}

/// TLS that trusts the certificates of the PEM file at `path` only.
fn tls_trusting(path: &Path) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(path).with_context(|| format!("reading the CA file {}", path.display()))?
    {
        roots.add(cert.with_context(|| format!("{} holds a bad certificate", path.display()))?)?;
    }
    anyhow::ensure!(!roots.is_empty(), "{} holds no certificate", path.display());
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Http {
    pub fn new(ca: Option<&Path>, token: Option<&str>) -> anyhow::Result<Http> {
        let mut http = Http::default();
        if let Some(path) = ca {
            http.tls = Some(Arc::new(tls_trusting(path)?));
        }
        if let Some(token) = token {
            let mut value = HeaderValue::try_from(format!("Bearer {token}")).context("the token is no header value")?;
            value.set_sensitive(true);
            http.headers.insert(AUTHORIZATION, value);
        }
        Ok(http)
    }

    /// The client for everything but the load: leaders, leases, counters.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            // Below a node's default --header-timeout (10 s), which also ends
            // idle connections: the leader's counters are read before and
            // after each run, 10 s apart by default, and reusing a connection
            // the node is closing at that moment fails the whole bench.
            .pool_idle_timeout(Duration::from_secs(5))
            .timeout(REQUEST_TIMEOUT)
            .default_headers(self.headers.clone());
        if let Some(tls) = &self.tls {
            b = b.use_preconfigured_tls((**tls).clone());
        }
        Ok(b.build()?)
    }

    /// The connection of one simulated client of the load, to `base`.
    pub fn conn(&self, base: &str) -> anyhow::Result<Conn> {
        let mut endpoint = Endpoint::new(base, self.tls.clone()).map_err(anyhow::Error::msg)?;
        for (name, value) in &self.headers {
            endpoint = endpoint.with_header(name.clone(), value.clone());
        }
        Ok(Conn::new(endpoint))
    }
}

/// A request body as JSON.
pub fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(v).map_err(|e| format!("encoding the request: {e}"))
}

/// The answer's body if its status is `want`, else the status and body as the error.
fn wanted(status: StatusCode, want: StatusCode, body: Bytes) -> Result<Bytes, String> {
    if status == want {
        Ok(body)
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

/// POST `body` as JSON over `conn` and read the whole answer, or name what
/// went wrong: no answer, or a status other than `want`.
pub async fn post(conn: &mut Conn, path: &str, body: Vec<u8>, want: StatusCode) -> Result<Bytes, String> {
    let (status, body) = conn
        .post(path, "application/json", body.into(), REQUEST_TIMEOUT)
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    wanted(status, want, body)
}

/// Sends a request and reads the whole answer (so the connection is reused),
/// or names what went wrong: no answer, or a status other than `want`.
pub async fn expect(req: reqwest::RequestBuilder, want: StatusCode) -> Result<Bytes, String> {
    let resp = req.send().await.map_err(|e| format!("no answer: {e}"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| format!("reading the answer: {e}"))?;
    wanted(status, want, body)
}
