//! Test-only hooks, routed only with `--test-hooks`: skew this node's wall
//! clock to show the replicated clock absorbs it.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::JsonBody;
use crate::app::App;

#[derive(Deserialize)]
pub struct ClockOffset {
    offset_ms: i64,
}

pub async fn clock_offset(State(app): State<Arc<App>>, JsonBody(req): JsonBody<ClockOffset>) -> Json<Value> {
    app.clock.set_offset_ms(req.offset_ms);
    tracing::warn!(offset_ms = req.offset_ms, "test hook: wall clock skewed");
    Json(json!({"offset_ms": req.offset_ms, "now_ms": app.clock.now_ms()}))
}
