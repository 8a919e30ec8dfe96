//! The load's connections: one keep-alive HTTP/1.1 connection per simulated
//! client, on hyper's connection-level client, driven inside the client's own
//! task. The load generator shares the cores with the servers it measures,
//! so what it spends per request is taken from them: reqwest's pool, URL
//! parsing and separate connection task cost about 59 µs of CPU per claim at
//! 64 clients, as much as three quarters of the leader's own cost.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where requests go and how: the parts of a base URL, the TLS settings for
/// `https`, and the headers every request carries (a bearer token).
#[derive(Clone)]
pub struct Endpoint {
    authority: String,
    tls: Option<(TlsConnector, rustls_pki_types::ServerName<'static>)>,
    headers: HeaderMap,
}

/// As long as a whole request may take, as with the control client.
const TIMEOUT: Duration = Duration::from_secs(10);

impl Endpoint {
    /// `base` is `http://host:port` or `https://host:port`; `tls` is required for https.
    pub fn new(base: &str, tls: Option<Arc<rustls::ClientConfig>>, headers: HeaderMap) -> anyhow::Result<Endpoint> {
        let uri: hyper::Uri = base.parse()?;
        let authority = uri.authority().ok_or_else(|| anyhow::anyhow!("{base}: no host"))?;
        let tls = match uri.scheme_str() {
            Some("http") => None,
            Some("https") => {
                let config = tls.ok_or_else(|| anyhow::anyhow!("{base}: https wants a CA (--ca)"))?;
                let name = rustls_pki_types::ServerName::try_from(authority.host().to_owned())?;
                Some((TlsConnector::from(config), name))
            }
            _ => anyhow::bail!("{base}: the scheme must be http or https"),
        };
        Ok(Endpoint { authority: authority.as_str().to_owned(), tls, headers })
    }
}

type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// A connection's sending half and the future that does its I/O.
struct Live {
    send: SendRequest<Full<Bytes>>,
    driver: Driver,
}

/// One client's connection, opened on first use and again after a failure.
pub struct Conn {
    endpoint: Endpoint,
    live: Option<Live>,
}

impl Conn {
    pub fn new(endpoint: Endpoint) -> Conn {
        Conn { endpoint, live: None }
    }
}

async fn open(endpoint: &Endpoint) -> Result<Live, String> {
    let tcp = TcpStream::connect(&endpoint.authority).await.map_err(|e| format!("connecting: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| format!("connecting: {e}"))?;
    let (send, driver): (_, Driver) = match &endpoint.tls {
        None => {
            let (send, conn) = http1::handshake(TokioIo::new(tcp)).await.map_err(|e| e.to_string())?;
            (send, Box::pin(conn))
        }
        Some((connector, name)) => {
            let tls = connector.connect(name.clone(), tcp).await.map_err(|e| format!("TLS: {e}"))?;
            let (send, conn) = http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
            (send, Box::pin(conn))
        }
    };
    Ok(Live { send, driver })
}

impl Conn {
    /// POST `body` as JSON to `path` and read the whole answer, or name what
    /// went wrong: no answer, or a status other than `want`.
    pub async fn post(&mut self, path: &str, body: Vec<u8>, want: StatusCode) -> Result<Bytes, String> {
        match tokio::time::timeout(TIMEOUT, self.exchange(path, body)).await {
            Ok(Ok((status, body))) if status == want => Ok(body),
            Ok(Ok((status, body))) => Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
            Ok(Err(e)) => {
                self.live = None;
                Err(format!("no answer: {e}"))
            }
            Err(_) => {
                self.live = None;
                Err(format!("no answer within {TIMEOUT:?}"))
            }
        }
    }

    async fn exchange(&mut self, path: &str, body: Vec<u8>) -> Result<(StatusCode, Bytes), String> {
        if self.live.is_none() {
            self.live = Some(open(&self.endpoint).await?);
        }
        let mut req = Request::post(path)
            .header(HOST, &self.endpoint.authority)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        req.headers_mut().extend(self.endpoint.headers.clone());
        let Some(Live { send, driver }) = self.live.as_mut() else { return Err("no connection".into()) };
        // The connection takes the next request once it has read the last answer.
        drive(driver, send.ready()).await?.map_err(|e| e.to_string())?;
        let resp = drive(driver, send.send_request(req)).await?.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = drive(driver, resp.into_body().collect()).await?.map_err(|e| e.to_string())?;
        Ok((status, body.to_bytes()))
    }
}

/// Run `work` while the connection does its I/O; the connection ending first
/// (closed by the server, or failed) is an error.
async fn drive<T>(driver: &mut Driver, work: impl Future<Output = T>) -> Result<T, String> {
    tokio::select! {
        biased;
        out = work => Ok(out),
        ended = driver => Err(match ended {
            Ok(()) => "the server closed the connection".to_owned(),
            Err(e) => e.to_string(),
        }),
    }
}
