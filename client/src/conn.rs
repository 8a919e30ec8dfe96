//! One keep-alive HTTP/1.1 connection for a caller that owns it and sends
//! one request at a time: hyper's connection-level client, driven in the
//! caller's own task, with no pool, no URL parsing per request and no
//! connection task to hand each request to. It is for hot paths that hold a
//! connection each: a node's Raft RPC to one peer (`idem-node`) and each
//! simulated client of the benchmark (`idem-bench`). [`crate::Client`] keeps
//! reqwest, whose pool serves many concurrent callers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use sync_wrapper::SyncWrapper;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsConnector;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// No connection could be made: the request was never sent.
    #[error("connecting to {0}: {1}")]
    Connect(String, String),
    /// The request may have been sent, but no whole answer came back.
    #[error("{0}")]
    Failed(String),
    /// No whole answer within the time given.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Where requests go and how: a peer's `host:port`, TLS for `https`, and the
/// headers every request carries (a bearer token).
#[derive(Clone)]
pub struct Endpoint {
    authority: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    headers: HeaderMap,
}

impl Endpoint {
    /// `base` is `http://host:port` or `https://host:port`; https needs `tls`.
    pub fn new(base: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Endpoint, String> {
        let uri: http::Uri = base.parse().map_err(|e| format!("{base}: {e}"))?;
        let authority = uri.authority().ok_or_else(|| format!("{base}: no host"))?;
        let tls = match (uri.scheme_str(), tls) {
            (Some("http"), _) => None,
            (Some("https"), Some(config)) => {
                let name = ServerName::try_from(authority.host().to_owned()).map_err(|e| format!("{base}: {e}"))?;
                Some((TlsConnector::from(config), name))
            }
            (Some("https"), None) => return Err(format!("{base}: https without TLS settings")),
            _ => return Err(format!("{base}: the scheme must be http or https")),
        };
        Ok(Endpoint { authority: authority.as_str().to_owned(), tls, headers: HeaderMap::new() })
    }

    /// Send `value` as `name` with every request.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Endpoint {
        self.headers.insert(name, value);
        self
    }
}

type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// A connection's sending half and the future that does its I/O. The
/// future is only ever used through `&mut`, so the wrapper makes the
/// connection `Sync` (openraft wants its network clients `Sync`).
struct Live {
    send: SendRequest<Full<Bytes>>,
    driver: SyncWrapper<Driver>,
}

/// The longest a connection attempt may take, whatever the request's time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// One connection to an endpoint, opened on first use and again after a failure.
pub struct Conn {
    endpoint: Endpoint,
    live: Option<Live>,
}

impl Conn {
    pub fn new(endpoint: Endpoint) -> Conn {
        Conn { endpoint, live: None }
    }

    /// POST `body` to `path` and read the whole answer, within `within`.
    pub async fn post(
        &mut self,
        path: &str,
        content_type: &'static str,
        body: Bytes,
        within: Duration,
    ) -> Result<(StatusCode, Bytes), ConnError> {
        let deadline = Instant::now() + within;
        let answer = match timeout_at(deadline, self.exchange(path, content_type, body, deadline)).await {
            Ok(answer) => answer,
            Err(_) => Err(ConnError::Timeout(within)),
        };
        if answer.is_err() {
            // Mid-exchange, the connection's state is unknown.
            self.live = None;
        }
        answer
    }

    async fn exchange(
        &mut self,
        path: &str,
        content_type: &'static str,
        body: Bytes,
        deadline: Instant,
    ) -> Result<(StatusCode, Bytes), ConnError> {
        let failed = |e: hyper::Error| ConnError::Failed(e.to_string());
        let mut req = Request::post(path)
            .header(HOST, &self.endpoint.authority)
            .header(CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .map_err(|e| ConnError::Failed(e.to_string()))?;
        req.headers_mut().extend(self.endpoint.headers.clone());
        let reused = self.live.is_some();
        let Live { send, driver } = self.ready(deadline).await?;
        let resp = match drive(driver.get_mut(), send.try_send_request(req)).await {
            Ok(resp) => resp,
            // A kept-alive connection the peer closed before the request went
            // out: the request had no effect, so it goes once more on a new one.
            Err(mut e) if reused && e.message().is_some() => {
                self.live = None;
                let req = e.take_message().ok_or_else(|| failed(e.into_error()))?;
                let Live { send, driver } = self.ready(deadline).await?;
                drive(driver.get_mut(), send.send_request(req)).await.map_err(failed)?
            }
            Err(e) => return Err(failed(e.into_error())),
        };
        let Some(Live { driver, .. }) = self.live.as_mut() else {
            return Err(ConnError::Failed("no connection".into()));
        };
        let status = resp.status();
        let body = drive(driver.get_mut(), resp.into_body().collect()).await.map_err(failed)?;
        Ok((status, body.to_bytes()))
    }

    /// The connection, ready for a request: the open one if it is still up
    /// (a peer that closed an idle connection is seen here, before anything
    /// is sent on it), else a new one.
    async fn ready(&mut self, deadline: Instant) -> Result<&mut Live, ConnError> {
        if let Some(live) = &mut self.live {
            let up = tokio::select! {
                biased;
                _ = live.driver.get_mut() => false,
                ready = live.send.ready() => ready.is_ok(),
            };
            if !up {
                self.live = None;
            }
        }
        if self.live.is_none() {
            let connect = timeout_at(deadline.min(Instant::now() + CONNECT_TIMEOUT), open(&self.endpoint));
            let live = connect.await.map_err(|_| {
                ConnError::Connect(self.endpoint.authority.clone(), format!("no connection within {CONNECT_TIMEOUT:?}"))
            })??;
            self.live = Some(live);
        }
        self.live.as_mut().ok_or_else(|| ConnError::Failed("no connection".into()))
    }
}

async fn open(endpoint: &Endpoint) -> Result<Live, ConnError> {
    let refused = |e: String| ConnError::Connect(endpoint.authority.clone(), e);
    let tcp = TcpStream::connect(&endpoint.authority).await.map_err(|e| refused(e.to_string()))?;
    tcp.set_nodelay(true).map_err(|e| refused(e.to_string()))?;
    let (send, driver): (_, Driver) = match &endpoint.tls {
        None => {
            let (send, conn) = http1::handshake(TokioIo::new(tcp)).await.map_err(|e| refused(e.to_string()))?;
            (send, Box::pin(conn))
        }
        Some((connector, name)) => {
            let tls = connector.connect(name.clone(), tcp).await.map_err(|e| refused(format!("TLS: {e}")))?;
            let (send, conn) = http1::handshake(TokioIo::new(tls)).await.map_err(|e| refused(e.to_string()))?;
            (send, Box::pin(conn))
        }
    };
    Ok(Live { send, driver: SyncWrapper::new(driver) })
}

/// Run `work` while the connection does its I/O. If the connection ends
/// first (the peer closed it, or it failed), what it read before is still
/// delivered: it is dropped, which ends whatever still waits on it with
/// hyper's error, and `work` finishes with what it got.
async fn drive<T>(driver: &mut Driver, work: impl Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    tokio::select! {
        biased;
        out = &mut work => return out,
        _ = &mut *driver => {}
    }
    *driver = Box::pin(std::future::pending());
    work.await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server that answers each request on a connection with its count on
    /// that connection, then closes after `per_conn` answers.
    async fn server(per_conn: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for n in 1..=per_conn {
                        let mut seen = Vec::new();
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            match sock.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(k) => seen.extend_from_slice(&buf[..k]),
                            }
                        }
                        let body = n.to_string();
                        let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                        if sock.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        format!("http://{addr}")
    }

    async fn post(conn: &mut Conn) -> Result<(StatusCode, Bytes), ConnError> {
        conn.post("/x", "text/plain", Bytes::new(), Duration::from_secs(2)).await
    }

    #[tokio::test]
    async fn requests_share_one_connection() {
        let mut conn = Conn::new(Endpoint::new(&server(10).await, None).expect("an endpoint"));
        for n in 1..=3 {
            let (status, body) = post(&mut conn).await.expect("an answer");
            assert_eq!((status, body), (StatusCode::OK, Bytes::from(n.to_string())));
        }
    }

    #[tokio::test]
    async fn a_connection_the_peer_closed_is_replaced_before_sending() {
        let mut conn = Conn::new(Endpoint::new(&server(1).await, None).expect("an endpoint"));
        for _ in 0..3 {
            let (_, body) = post(&mut conn).await.expect("an answer on a new connection");
            assert_eq!(body, Bytes::from("1"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn no_listener_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        drop(listener);
        let mut conn = Conn::new(Endpoint::new(&format!("http://{addr}"), None).expect("an endpoint"));
        assert!(matches!(post(&mut conn).await, Err(ConnError::Connect(..))));
    }

    #[test]
    fn https_wants_tls_settings() {
        assert!(Endpoint::new("https://127.0.0.1:1", None).is_err());
        assert!(Endpoint::new("ftp://127.0.0.1:1", None).is_err());
    }
}
