//! # idem-node
//!
//! A node of idem, the replicated idempotency-key registry: openraft over sled,
//! the registry state machine, and the HTTP API of `shared/API.md`.
//!
//! # Layout
//! - [`registry`]: the pure semantics (claim, checkpoint, complete, ...), no I/O.
//! - [`store`]: the Raft log and the state machine on sled; snapshots.
//! - [`network`]: the Raft RPC client (HTTP + bincode, pooled connections).
//! - [`api`]: the HTTP routes: client API, forwarding, Raft RPC server, health.
//! - [`app`]: the running node as handlers see it; the one way to propose.
//! - [`proposer`]: group commit: concurrent operations coalesced into one entry.
//! - [`types`]: openraft's type configuration and aliases.
//! - [`codec`]: the one bincode configuration (log, state, snapshots, Raft RPC).
//! - [`serve`]: the HTTP server loop: TLS, connection cap, header deadline.
//! - [`signals`]: background counts for `/metrics` and `/v1/status`: leader changes,
//!   abandoned claims, samples of claim outcomes.
//! - [`rates`]: claim outcomes per second over a sliding window, for the status page.
//! - [`tls`], [`auth`]: TLS material and mutual TLS between nodes; bearer tokens and grants.
//! - [`certs`], [`restore`]: the one-shot commands `idem-node certs|token|restore`.
//! - [`handover`]: a stopping leader has a caught-up follower campaign first.
//! - [`config`], [`clock`], [`telemetry`], [`ticker`], [`error`].

// openraft's StorageError and the registry's refusals are returned by value:
// boxing them would add an allocation to every refused claim for no gain.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod app;
pub mod auth;
pub mod certs;
pub mod clock;
pub mod codec;
pub mod config;
pub mod error;
pub mod handover;
pub mod network;
pub mod proposer;
pub mod rates;
pub mod registry;
pub mod restore;
pub mod serve;
pub mod signals;
pub mod store;
pub mod telemetry;
pub mod ticker;
pub mod tls;
pub mod types;
pub mod upgrade;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use app::App;
use auth::Tokens;
use config::Config;
use error::NodeError;
use tls::Tls;
use types::{NodeAddr, Raft};

/// Entries per AppendEntries request (see [`raft_config`]).
const MAX_PAYLOAD_ENTRIES: u64 = 8;

fn raft_config(config: &Config) -> Result<openraft::Config, NodeError> {
    let ms = |d: Duration| d.as_millis() as u64;
    openraft::Config {
        cluster_name: "idem".into(),
        heartbeat_interval: ms(config.heartbeat),
        election_timeout_min: ms(config.election_timeout),
        election_timeout_max: ms(config.election_timeout) * 2,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_threshold),
        max_in_snapshot_log_to_keep: config.keep_logs,
        // openraft's rule: above the snapshot interval, else a follower that
        // fell behind by less than the log still held is counted as lagging.
        replication_lag_threshold: config.snapshot_threshold + config.keep_logs,
        install_snapshot_timeout: 10_000,
        snapshot_max_chunk_size: 1024 * 1024,
        // openraft sends an AppendEntries within one heartbeat interval or
        // gives up and resends it. Its default of 300 entries per request,
        // each up to MAX_OPS_PER_ENTRY operations, makes a request of tens of
        // MiB for a follower that fell behind under load: it never arrives in
        // time and the follower never catches up. A few entries per request
        // still carry thousands of operations.
        max_payload_entries: MAX_PAYLOAD_ENTRIES,
        ..Default::default()
    }
    .validate()
    .map_err(|e| NodeError::Config(e.to_string()))
}

/// Form the cluster from `--initial-cluster` unless the data directory already
/// holds one. Every initial member may call this with the same membership.
async fn initialize(raft: &Raft, config: &Config) -> Result<(), NodeError> {
    if raft.is_initialized().await.map_err(|e| NodeError::Raft(e.to_string()))? {
        tracing::info!("resuming the cluster found in the data directory");
        return Ok(());
    }
    let members = config.initial_members().map_err(NodeError::Config)?;
    if members.is_empty() {
        tracing::info!("no --initial-cluster: waiting to be added to a cluster");
        return Ok(());
    }
    let nodes: BTreeMap<_, _> = members.into_iter().map(|(id, addr)| (id, NodeAddr { addr })).collect();
    if !nodes.contains_key(&config.id) {
        return Err(NodeError::Config(format!("--initial-cluster does not list this node's id {}", config.id)));
    }
    match raft.initialize(nodes).await {
        Ok(()) => tracing::info!("initialized a new cluster"),
        Err(openraft::error::RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => {}
        Err(e) => return Err(NodeError::Raft(e.to_string())),
    }
    Ok(())
}

/// How long a pooled connection to a peer may idle: below the peers'
/// `--header-timeout` default, so a node reuses a connection before the
/// other side closes it for idleness rather than racing it.
const PEER_POOL_IDLE: Duration = Duration::from_secs(5);

/// The HTTP client a node speaks to its peers with: pooled, and with TLS
/// its own certificate and the cluster CA.
fn peer_client(tls: Option<&Tls>) -> Result<network::Peers, NodeError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .pool_idle_timeout(PEER_POOL_IDLE)
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        builder = builder.use_preconfigured_tls(tls.client.clone()).https_only(true);
    }
    let http = builder.build().map_err(|e| NodeError::Config(e.to_string()))?;
    Ok(network::Peers::new(http, tls.map(|t| Arc::new(t.client.clone()))))
}

/// One clear warning when a node serves beyond loopback without TLS or tokens.
fn warn_if_exposed(config: &Config) {
    let ip = config.listen.ip();
    if ip.is_loopback() {
        return;
    }
    let missing: Vec<&str> = [(config.tls_cert.is_none(), "TLS"), (config.auth_file.is_none(), "tokens")]
        .into_iter()
        .filter_map(|(off, what)| off.then_some(what))
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            listen = %config.listen,
            "serving on a non-loopback address without {}: anyone who reaches this port can {}; \
             see the README's \"Running securely\"",
            missing.join(" or "),
            "call Raft RPC and read or change every record"
        );
    }
}

/// Reload the token file on every SIGHUP; a file that fails to parse leaves
/// the tokens in force.
fn reload_tokens_on_sighup(app: Arc<App>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(tokens) = &app.tokens else { continue };
            match tokens.reload() {
                Ok(n) => tracing::info!(tokens = n, "token file reloaded"),
                Err(e) => tracing::error!(error = %e, "token file not reloaded; the tokens in force stay"),
            }
        }
    }))
}

/// Run a node on `listener` until `shutdown` resolves, then stop gracefully:
/// hand leadership over if this node leads (still serving, since the
/// successor's vote request comes in on this port, and then until what was
/// submitted here is answered), finish in-flight requests, then shut Raft down.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    telemetry::install_metrics();
    api::register_metrics();
    let tls = match (&config.tls_cert, &config.tls_key, &config.tls_ca) {
        (Some(cert), Some(key), Some(ca)) => Some(Tls::load(cert, key, ca).map_err(NodeError::Config)?),
        (None, None, None) => None,
        _ => return Err(NodeError::Config("--tls-cert, --tls-key and --tls-ca go together".into())),
    };
    let tokens = config.auth_file.as_deref().map(Tokens::load).transpose().map_err(NodeError::Config)?;
    warn_if_exposed(&config);
    let (log, sm) = store::open(&config.data_dir, config.id, config.cache_mb * 1024 * 1024)?;
    let view = sm.view();
    let committed = log.committed_index();
    let peers = peer_client(tls.as_ref())?;
    let network = network::Network::new(peers.clone(), log.durable());
    let raft = Raft::new(config.id, Arc::new(raft_config(&config)?), network, log, sm)
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
    initialize(&raft, &config).await?;
    let limits = serve::Limits { max_connections: config.max_connections, header_timeout: config.header_timeout };
    let (proposer, queue) = proposer::Proposer::new();
    let app = Arc::new(App::new(config, raft.clone(), view, committed, peers, tokens, proposer));
    let proposals = tokio::spawn(proposer::run(app.clone(), queue));
    let ticker = tokio::spawn(ticker::run(app.clone()));
    let leader_changes = tokio::spawn(signals::count_leader_changes(app.clone()));
    let abandoned = tokio::spawn(signals::count_abandoned_claims(app.clone()));
    let claim_rates = tokio::spawn(signals::sample_claim_rates(app.clone()));
    let upgrade = tokio::spawn(upgrade::run(app.clone()));
    let reloads = reload_tokens_on_sighup(app.clone())?;
    tracing::info!(
        id = app.id,
        listen = %listener.local_addr()?,
        advertise = %app.config.advertise_addr(),
        tls = tls.is_some(),
        tokens = app.tokens.is_some(),
        "serving"
    );
    let stopping = {
        let app = app.clone();
        async move {
            shutdown.await;
            // Once the server stops taking connections a stopping node no
            // longer hears its leader while it drains; it must not campaign
            // for a term it will not serve (a leader that hands over would,
            // half a second later, win back the leadership it just gave).
            app.raft.runtime_config().elect(false);
            handover::hand_over(&app).await;
            handover::settle(&app).await;
        }
    };
    let served = serve::serve(listener, tls.map(|t| t.server), api::router(app.clone()), limits, stopping).await;
    ticker.abort();
    leader_changes.abort();
    abandoned.abort();
    claim_rates.abort();
    upgrade.abort();
    proposals.abort();
    reloads.abort();
    tracing::info!("shutting down raft");
    let raft_stop = std::time::Instant::now();
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft shutdown");
    }
    // A stop that outlasts a supervisor's grace period shows which part was slow:
    // this, or the state's last write-back when the stores drop.
    tracing::info!(took_ms = raft_stop.elapsed().as_millis() as u64, "raft stopped");
    served.map_err(NodeError::from)
}
