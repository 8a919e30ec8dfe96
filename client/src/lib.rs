//! Client side of idem: the wire types the node shares, and, behind
//! features, what a service or an operator links:
//!
//! | feature | adds | pulls in |
//! |---|---|---|
//! | (none) | [`proto`] and [`backup`]; what the node uses | serde, sha2 |
//! | `http` (default) | [`Client`], [`Client::once`], [`Ctx`] | reqwest, tokio |
//! | `layer` | [`IdempotencyLayer`] (implies `http`) | axum, tower |
//! | `cli` | the `idem` binary (implies `http`) | clap, humantime |
//! | `conn` | [`conn::Conn`], one owned HTTP/1.1 connection (node, bench) | hyper, rustls |
//!
//! # Layout
//!
//! - [`proto`]: request and response bodies of `shared/API.md`, no I/O. The
//!   node depends on this crate with default features off for this alone.
//! - [`backup`]: the backup file's header and checksum, shared with the node.
//! - `error`: the one [`Error`] enum and the one table from wire answers to it.
//! - `retry`: [`RetryPolicy`], capped exponential backoff with jitter.
//! - [`path`]: URL paths, with keys percent-encoded byte by byte; public for
//!   tests that speak raw HTTP.
//! - `client`: [`Client`], its builder and the transport loop (endpoint
//!   rotation, retries, `Retry-After`).
//! - `keys`, `list`, `batch`, `cluster`: one method per endpoint, typed
//!   answers ([`ClaimOutcome`]); [`Client::list`] pages by itself.
//! - `holder`: [`Ctx`], what the holder of a claim may do, and `Hold`, the one
//!   way to hold a claim while work runs (heartbeat, then complete, or release
//!   as [`OnFailure`] says, also on panic or cancellation).
//! - `once`: [`Client::once`], run a closure at most once per key, under a `Hold`.
//! - `layer` (feature `layer`): [`IdempotencyLayer`], the `Idempotency-Key`
//!   tower layer for axum.
//! - [`conn`] (feature `conn`): one HTTP/1.1 connection owned by one caller,
//!   for the node's Raft RPC and the benchmark.
//! - `src/bin/idem/` (feature `cli`): the `idem` CLI, one file per subcommand.
pub mod backup;
pub mod proto;

#[cfg(feature = "http")]
mod batch;
#[cfg(feature = "http")]
mod client;
#[cfg(feature = "http")]
mod cluster;
#[cfg(feature = "conn")]
pub mod conn;
#[cfg(feature = "http")]
mod error;
#[cfg(feature = "http")]
mod holder;
#[cfg(feature = "http")]
mod keys;
#[cfg(feature = "layer")]
pub mod layer;
#[cfg(feature = "http")]
mod list;
#[cfg(feature = "http")]
mod once;
#[cfg(feature = "http")]
pub mod path;
#[cfg(feature = "http")]
mod retry;

#[cfg(feature = "http")]
pub use client::{Builder, Client};
#[cfg(feature = "http")]
pub use error::Error;
#[cfg(feature = "http")]
pub use holder::{Ctx, OnFailure};
#[cfg(feature = "http")]
pub use keys::ClaimOutcome;
#[cfg(feature = "layer")]
pub use layer::IdempotencyLayer;
#[cfg(feature = "http")]
pub use once::{OnceError, OnceOptions};
#[cfg(feature = "http")]
pub use retry::RetryPolicy;
