//! `/healthz` (the process serves) and `/readyz` (knows a leader and has
//! applied up to the commit index it learned), as rqlite means them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::app::App;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(app): State<Arc<App>>) -> (StatusCode, Json<Value>) {
    let s = app.status();
    let ready = s.ready();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "ready": ready,
        "leader_id": s.leader,
        "applied_index": s.applied_index.unwrap_or(0),
        "committed_index": s.committed_index,
    });
    (status, Json(body))
}
