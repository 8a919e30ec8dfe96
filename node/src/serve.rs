//! The node's HTTP server: accept, TLS when configured, HTTP/1.1, with the
//! limits a hostile client must not get around.
//!
//! - At most `--max-connections` connections at once; past that a new
//!   connection is closed at once and the node says so in its log (once per
//!   [`REFUSAL_LOG_EVERY`]), so a flood cannot exhaust file descriptors.
//! - A client must finish a request's headers within `--header-timeout`
//!   (this also ends connections idle that long between requests) and a TLS
//!   handshake within the same time: half a request held open forever
//!   (slow-loris) costs the node nothing after that. The body's own deadline
//!   is the API's (`api::extract::read_body`).
//! - Each request is marked with whether its connection presented a peer
//!   certificate ([`PeerCert`]), which the API checks for Raft RPC.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::tls::PeerCert;

/// How often the node logs that it refuses connections over the limit.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// How long in-flight requests may finish after a shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Serve `router` on `listener` until `shutdown` resolves, then let
/// in-flight requests finish (for at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let started = Instant::now();
    let last_refusal_log = AtomicU64::new(0);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or the like: back off, don't spin.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let now = started.elapsed().as_secs();
            let last = last_refusal_log.load(Ordering::Relaxed);
            if last == 0 || now >= last + REFUSAL_LOG_EVERY.as_secs() {
                last_refusal_log.store(now.max(1), Ordering::Relaxed);
                tracing::warn!(
                    limit = limits.max_connections,
                    %remote,
                    "connection limit reached: refusing new connections (--max-connections)"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, acceptor, watcher) = (router.clone(), acceptor.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                None => connection(stream, PeerCert(false), router, limits, watcher).await,
                Some(acceptor) => match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let peer = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                        connection(tls, PeerCert(peer), router, limits, watcher).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still running after {DRAIN:?}; closing their connections");
    }
    Ok(())
}

/// Serve one connection's requests, each marked with `peer`.
async fn connection<S>(stream: S, peer: PeerCert, router: Router, limits: Limits, watcher: Watcher)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(peer);
        router.clone().oneshot(req)
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
