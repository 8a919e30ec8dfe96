//! `GET /v1/admin/snapshot`: a backup, as `etcdctl snapshot save` takes one.
//! The leader confirms it leads, makes sure a snapshot holds everything
//! committed before the request (building one if the current one is older),
//! and streams it in the backup format of [`idem_client::backup`]: a header
//! with its length and SHA-256, then the snapshot file. Followers forward the
//! request and stream the leader's answer through.

use std::io::{Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::Extension;
use futures::StreamExt;
use idem_client::backup;
use tokio::io::AsyncReadExt;

use super::auth;
use super::error::ApiError;
use crate::app::App;
use crate::auth::Caller;

/// How long a snapshot may take to build: seconds per million records.
const BUILD_WAIT: Duration = Duration::from_secs(120);
/// How often to ask again for a build, in case the request met one already
/// under way from an earlier applied index (openraft then drops it).
const RETRIGGER: Duration = Duration::from_secs(2);
const CHUNK: usize = 256 * 1024;
/// How long a follower waits for the leader's whole backup: the build, then
/// the transfer of a file of a few hundred MiB per million records.
pub const TRANSFER_WAIT: Duration = Duration::from_secs(600);

pub async fn snapshot(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>) -> Result<Response, ApiError> {
    auth::admin(&caller)?;
    app.ensure_linearizable().await?;
    let target = app.status().applied_index.unwrap_or(0);
    let deadline = tokio::time::Instant::now() + BUILD_WAIT;
    let covers = |m: &crate::types::RaftMetrics| m.snapshot.is_some_and(|s| s.index >= target);
    while !covers(&app.raft.metrics().borrow()) {
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Unavailable(format!("no snapshot up to index {target} within {BUILD_WAIT:?}")));
        }
        app.raft.trigger().snapshot().await.map_err(ApiError::internal)?;
        let wait = app.raft.wait(Some(RETRIGGER)).metrics(covers, "a snapshot up to the read index").await;
        if let Err(openraft::metrics::WaitError::ShuttingDown) = wait {
            return Err(ApiError::Unavailable("the node is shutting down".into()));
        }
    }
    let snap = app
        .raft
        .get_snapshot()
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal("a snapshot was built but none is current"))?;
    tracing::info!(snapshot = %snap.meta.snapshot_id, index = target, "streaming a backup");
    // The open file stays readable even if a newer snapshot replaces it meanwhile.
    let mut file = snap.snapshot.into_std().await;
    let header = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        file.seek(SeekFrom::Start(0))?;
        let header = backup::header_of(&mut file)?;
        file.seek(SeekFrom::Start(0))?;
        Ok((header, file))
    })
    .await
    .map_err(ApiError::internal)?;
    let (header, file) = header.map_err(ApiError::internal)?;
    let head = futures::stream::once(async move { Ok(Bytes::copy_from_slice(&header.encode())) });
    let body = futures::stream::unfold(Some(tokio::fs::File::from_std(file)), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            // The client sees the stream cut short: its length check fails.
            Err(e) => Some((Err(e), None)),
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, backup::CONTENT_TYPE)
        .header(header::CONTENT_LENGTH, backup::HEADER_LEN as u64 + header.len)
        .body(Body::from_stream(head.chain(body)))
        .map_err(ApiError::internal)
}
