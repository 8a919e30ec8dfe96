//! `GET /v1/ns/{ns}/keys`: a namespace's records a page at a time; the walk
//! itself is `store::listing`'s.
//!
//! The cursor is opaque to clients: the hex of the last key the walk
//! reached, so any later page goes on from exactly there, whatever the
//! filters, and a cursor that does not decode to a key is a 400.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use idem_client::proto::{validate_key, Consistency, ListPage, ListQuery, RecordState};

use super::auth;
use super::error::ApiError;
use super::extract::{NsPath, QueryArgs};
use super::reply::wire;
use crate::app::App;
use crate::auth::{Caller, Perm};
use crate::registry::{self, RecordId};
use crate::store::listing::Filter;

pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    NsPath(ns): NsPath,
    QueryArgs(query): QueryArgs<ListQuery>,
) -> Result<Json<ListPage>, ApiError> {
    query.validate().map_err(|e| ApiError::BadRequest(e.0))?;
    let limit = query.limit().map_err(|e| ApiError::BadRequest(e.0))?;
    let after = query.after.as_deref().map(decode_cursor).transpose()?;
    auth::allow(&caller, &ns, Perm::Read)?;
    if query.consistency == Consistency::Linearizable {
        app.ensure_linearizable().await?;
    }
    let filter = Filter {
        prefix: query.prefix.unwrap_or_default(),
        state: query.state.map(|s| match s {
            RecordState::InProgress => registry::RecordState::InProgress,
            RecordState::Completed => registry::RecordState::Completed,
        }),
        abandoned: query.abandoned,
    };
    let view = app.view.clone();
    let page = tokio::task::spawn_blocking(move || {
        let page = view.list(&ns, &filter, after.as_deref(), limit)?;
        let records = page.records.into_iter().map(|(key, rec)| wire(&RecordId::new(ns.clone(), key), &rec));
        Ok::<_, ApiError>(ListPage { records: records.collect(), next: page.next.as_deref().map(encode_cursor) })
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(page))
}

fn encode_cursor(key: &str) -> String {
    hex::encode(key)
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let bad = || ApiError::BadRequest("after: not a cursor this API returned".into());
    let key = String::from_utf8(hex::decode(cursor).map_err(|_| bad())?).map_err(|_| bad())?;
    validate_key(&key).map_err(|_| bad())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        for key in ["k", "a/b c?", "é\0x", &"k".repeat(512)] {
            assert_eq!(decode_cursor(&encode_cursor(key)).unwrap(), key);
        }
        for bad in ["", "zz", "abc", "ff", &"61".repeat(513)] {
            assert!(matches!(decode_cursor(bad), Err(ApiError::BadRequest(_))), "{bad:?} is refused");
        }
    }
}
