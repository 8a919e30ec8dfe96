//! [`Client`]: endpoints, timeouts, retries and headers, and the one transport
//! loop every call goes through.
//!
//! Any node serves any request (followers forward to the leader), so the
//! client needs no leader discovery to be correct. To save the follower's hop
//! it follows the leader each answer names (`idem-leader`) when that node is
//! one of its endpoints; otherwise it keeps using the endpoint that last
//! answered. It moves to the next one on a connection error, a timeout or a
//! 503, and never retries a decided answer (2xx, 4xx).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;

use crate::error::Error;
use crate::proto::LEADER_HEADER;
use crate::retry::{parse_retry_after, RetryPolicy};

/// A decided answer: status, `Retry-After` if any, raw body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    /// The leader the answering node named (`host:port`).
    pub leader: Option<String>,
    pub body: bytes::Bytes,
}

impl Answer {
    /// The body as `T` when the status is one of `ok`, else the mapped error.
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(self, ok: &[u16]) -> Result<T, Error> {
        if !ok.contains(&self.status.as_u16()) {
            return Err(Error::from_answer(self.status.as_u16(), &self.body));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Unexpected { status: self.status.as_u16(), message: format!("undecodable body: {e}") })
    }
}

/// A handle on an idem cluster; cheap to clone, share it.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoints: Vec<String>,
    /// Each endpoint's `host:port`, to recognise the leader a node names.
    authorities: Vec<String>,
    /// Index of the endpoint that answered last; the next call starts there.
    current: AtomicUsize,
    policy: RetryPolicy,
    request_timeout: Duration,
}

/// Configures a [`Client`]; see [`Client::builder`].
pub struct Builder {
    endpoints: Vec<String>,
    connect_timeout: Duration,
    request_timeout: Duration,
    policy: RetryPolicy,
    headers: HeaderMap,
    ca_file: Option<PathBuf>,
    token: Option<String>,
}

/// The environment variables a client reads, as the CLI does (API.md, Security).
pub const CA_ENV: &str = "IDEM_CA";
pub const TOKEN_ENV: &str = "IDEM_TOKEN";

impl Builder {
    /// Time to establish a TCP connection to one endpoint (default 1 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Time for one attempt on one endpoint (default 5 s, a little over the
    /// node's default request deadline). A `get` with `wait` gets this on top.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// A header sent with every request (for an auth proxy in front of idem).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        let name = HeaderName::try_from(name).map_err(|e| Error::BadRequest(format!("header name: {e}")))?;
        let value = HeaderValue::try_from(value).map_err(|e| Error::BadRequest(format!("header value: {e}")))?;
        self.headers.insert(name, value);
        Ok(self)
    }

    /// `Authorization: Bearer <token>` on every request (for an auth proxy
    /// in front of idem; for idem's own tokens, [`Builder::token`]).
    pub fn bearer_auth(self, token: &str) -> Result<Self, Error> {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// The cluster's bearer token (API.md, Security). Default: `$IDEM_TOKEN`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// A PEM file of the CA to trust for `https://` endpoints, beside the
    /// usual roots (a cluster made with `idem-node certs` has its own CA).
    /// Default: `$IDEM_CA`.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    pub fn build(mut self) -> Result<Client, Error> {
        if self.endpoints.is_empty() {
            return Err(Error::BadRequest("at least one endpoint is needed".into()));
        }
        if let Some(token) = self.token.take() {
            self = self.bearer_auth(&token)?;
        }
        let mut http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            // Below a node's default --header-timeout (10 s), which also ends
            // idle connections: reuse one before the node closes it.
            .pool_idle_timeout(Duration::from_secs(5))
            .default_headers(self.headers);
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Error::BadRequest(format!("reading the CA file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::BadRequest(format!("{} holds no usable certificate: {e}", path.display())))?;
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build()?;
        let endpoints: Vec<String> = self.endpoints.into_iter().map(|e| e.trim_end_matches('/').to_owned()).collect();
        let authorities = endpoints.iter().map(|e| authority(e).to_owned()).collect();
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                endpoints,
                authorities,
                current: AtomicUsize::new(0),
                policy: self.policy,
                request_timeout: self.request_timeout,
            }),
        })
    }
}

impl Client {
    /// Endpoints are base URLs of nodes, e.g. `http://10.0.0.1:7000` or
    /// `https://...`. The CA file and token default to `$IDEM_CA` and
    /// `$IDEM_TOKEN`, as for the CLI.
    pub fn builder<I, S>(endpoints: I) -> Builder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Builder {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            policy: RetryPolicy::default(),
            headers: HeaderMap::new(),
            ca_file: env(CA_ENV).map(PathBuf::from),
            token: env(TOKEN_ENV),
        }
    }

    /// A client with the defaults of [`Builder`].
    pub fn new<I, S>(endpoints: I) -> Result<Client, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::builder(endpoints).build()
    }

    /// The endpoint the next call starts with (the last that answered).
    pub fn current_endpoint(&self) -> &str {
        &self.inner.endpoints[self.inner.current.load(Ordering::Relaxed)]
    }

    /// Sends one logical call, retrying as [`RetryPolicy`] says, and returns
    /// the first decided answer. `extra` lengthens the per-attempt timeout
    /// (a long-poll's wait).
    pub(crate) async fn send<B: Serialize>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&B>,
        extra: Duration,
    ) -> Result<Answer, Error> {
        let inner = &*self.inner;
        let started = Instant::now();
        let mut at = inner.current.load(Ordering::Relaxed);
        let mut retry = 0;
        loop {
            let url = format!("{}{path_and_query}", inner.endpoints[at]);
            let mut req = inner.http.request(method.clone(), url).timeout(inner.request_timeout + extra);
            if let Some(body) = body {
                req = req.json(body);
            }
            let (err, retry_after) = match attempt(req).await {
                Ok(a) if a.status != StatusCode::SERVICE_UNAVAILABLE => {
                    let leader = a.leader.as_deref().and_then(|l| inner.authorities.iter().position(|e| e == l));
                    inner.current.store(leader.unwrap_or(at), Ordering::Relaxed);
                    return Ok(a);
                }
                Ok(a) => (Error::from_answer(a.status.as_u16(), &a.body), a.retry_after),
                Err(e) if e.is_builder() => return Err(e.into()),
                Err(e) => (Error::Transport(e), None),
            };
            let wait = inner.policy.backoff(retry, retry_after, &mut rand::thread_rng());
            retry += 1;
            if retry >= inner.policy.max_attempts || started.elapsed() + wait > inner.policy.budget {
                return Err(err);
            }
            at = (at + 1) % inner.endpoints.len();
            tokio::time::sleep(wait).await;
        }
    }
}

/// One HTTP exchange, body read in full so a connection dropped mid-answer is
/// a transport error (retried) rather than a half answer.
async fn attempt(req: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status();
    let retry_after = parse_retry_after(resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()));
    let leader = resp.headers().get(LEADER_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = resp.bytes().await?;
    Ok(Answer { status, retry_after, leader, body })
}

/// `host:port` of a base URL such as `http://10.0.0.1:7000`.
fn authority(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_recognised_by_host_and_port() {
        assert_eq!(authority("http://10.0.0.1:7000"), "10.0.0.1:7000");
        assert_eq!(authority("https://idem-2.internal:7000/"), "idem-2.internal:7000");
        assert_eq!(authority("127.0.0.1:7001"), "127.0.0.1:7001");
    }
}
