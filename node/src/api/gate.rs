//! What every request of a route group passes before its handler, as one
//! middleware per group rather than a stack of them: each `from_fn` layer
//! costs a boxed future and a clone of the service behind it per request,
//! and the client API is the leader's hot path.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::extract::{read_body, BodyRules};
use super::{auth, forward};
use crate::app::App;

/// What a group's gate needs: the node, and the body limits of its routes.
#[derive(Clone)]
pub struct Gate {
    pub app: Arc<App>,
    pub body: BodyRules,
}

/// The client API: the body is read within its limits, the caller resolved
/// (401 without a known token), the request sent on to the leader when it
/// must be served there, and the answer names the leader.
pub async fn client(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let mut req = match read_body(gate.body, req).await {
        Ok(req) => req,
        Err(refused) => return refused,
    };
    match auth::caller(&gate.app, &req) {
        Ok(caller) => req.extensions_mut().insert(caller),
        Err(e) => return e.into_response(),
    };
    let mut resp = forward::to_leader(&gate.app, req, next).await;
    forward::name_leader(&gate.app, &mut resp);
    resp
}

/// Raft RPC: the body is read within its limits and the caller must be a peer node.
pub async fn peer(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let req = match read_body(gate.body, req).await {
        Ok(req) => req,
        Err(refused) => return refused,
    };
    if let Err(e) = auth::peers_only(&gate.app, &req) {
        return e.into_response();
    }
    next.run(req).await
}
