//! Who may call what (API.md, Security): the bearer token of every `/v1`
//! request is resolved to a [`Caller`] here (by [`super::gate`]), and handlers check the grant
//! their operation needs with [`allow`] and [`admin`]. Raft RPC and requests
//! forwarded between nodes are for peers only: with TLS on, they must come
//! on a connection that presented a certificate of the cluster CA.

use axum::extract::Request;
use axum::http::header;

use super::error::ApiError;
use crate::app::App;
use crate::auth::{Caller, Perm};
use crate::tls::PeerCert;

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The caller of a client API request; 401 when tokens are on and the
/// request has none the file knows.
pub fn caller(app: &App, req: &Request) -> Result<Caller, ApiError> {
    match &app.tokens {
        None => Ok(Caller::Open),
        Some(tokens) => {
            bearer(req).and_then(|t| tokens.authenticate(t)).map(Caller::Token).ok_or(ApiError::Unauthorized)
        }
    }
}

/// Whether the request came from a peer node: on a connection with a
/// certificate of the cluster CA, or from anyone when TLS is off.
pub fn from_peer(app: &App, req: &Request) -> bool {
    !app.config.tls_enabled() || req.extensions().get::<PeerCert>().is_some_and(|p| p.0)
}

/// Raft RPC from anything but a peer node is refused.
pub fn peers_only(app: &App, req: &Request) -> Result<(), ApiError> {
    if !from_peer(app, req) {
        return Err(ApiError::Forbidden("only peer nodes, with a certificate of the cluster CA, may call this".into()));
    }
    Ok(())
}

fn verb(perm: Perm) -> &'static str {
    match perm {
        Perm::Read => "read",
        Perm::Write => "write",
        Perm::Delete => "delete",
    }
}

/// The caller may do `perm` in namespace `ns`, or 403.
pub fn allow(caller: &Caller, ns: &str, perm: Perm) -> Result<(), ApiError> {
    if caller.allows(ns, perm) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!("token {:?} has no {} grant on namespace {ns:?}", caller.name(), verb(perm))))
}

/// The caller is an admin, or 403.
pub fn admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!("token {:?} is not an admin token", caller.name())))
}
