//! Command-line flags, each also an `IDEM_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::types::NodeId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// A node of idem, the replicated idempotency-key registry.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "idem-node",
    version,
    about,
    after_help = "Other commands: `idem-node certs --help` (a CA and node certificates), \
                  `idem-node token --help` (a bearer token and its token-file entry), \
                  `idem-node restore --help` (seed a new node from a backup)."
)]
pub struct Config {
    /// This node's id, unique in the cluster (1, 2, 3, ...), or the name of a
    /// Kubernetes StatefulSet pod, `NAME-ORDINAL`, which is id ORDINAL+1 (pods
    /// count from 0, ids from 1), so a pod takes its id from its own name.
    #[arg(long, env = "IDEM_ID", value_parser = parse_id)]
    pub id: NodeId,

    /// Address to bind the HTTP port on (client API and Raft RPC).
    #[arg(long, env = "IDEM_LISTEN", default_value = "127.0.0.1:7001")]
    pub listen: SocketAddr,

    /// Address other nodes and forwarded clients reach this node at; defaults to --listen.
    #[arg(long, env = "IDEM_ADVERTISE")]
    pub advertise: Option<String>,

    /// Directory of this node's database and snapshots.
    #[arg(long, env = "IDEM_DATA_DIR", default_value = "./data/node")]
    pub data_dir: PathBuf,

    /// Members of a new cluster, `1=host:port,2=host:port,...`. Used only when the
    /// data directory holds no cluster yet; a restarted node ignores it.
    #[arg(long, env = "IDEM_INITIAL_CLUSTER")]
    pub initial_cluster: Option<String>,

    /// Log output: `human` for people, `json` for machines.
    #[arg(long, env = "IDEM_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax (e.g. `info`, `idem_node=debug,openraft=warn`).
    #[arg(long, env = "IDEM_LOG", default_value = "info,openraft=warn")]
    pub log: String,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "IDEM_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Deadline for a request to reach a quorum (or the leader) before 503.
    #[arg(long, env = "IDEM_REQUEST_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Leader heartbeat interval.
    #[arg(long, env = "IDEM_HEARTBEAT", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub heartbeat: Duration,

    /// Minimum election timeout (the maximum is twice this).
    #[arg(long, env = "IDEM_ELECTION_TIMEOUT", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub election_timeout: Duration,

    /// An idle leader proposes a tick after this long, so the replicated clock advances.
    #[arg(long, env = "IDEM_TICK_INTERVAL", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub tick_interval: Duration,

    /// Threads that serve requests and run Raft (the async runtime's
    /// workers); by default one per core. Nodes that share a machine (a
    /// local cluster, the benchmark) do better splitting its cores than each
    /// taking all of them: on 2 cores with 3 nodes, one each cut the p50 at
    /// one client by about 8% at the same throughput.
    #[arg(long, env = "IDEM_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,

    /// Size of the storage engine's page cache, in MiB.
    #[arg(long, env = "IDEM_CACHE_MB", default_value_t = 256)]
    pub cache_mb: u64,

    /// Build a snapshot (and compact the log) after this many applied entries.
    #[arg(long, env = "IDEM_SNAPSHOT_THRESHOLD", default_value_t = 20_000)]
    pub snapshot_threshold: u64,

    /// Log entries kept behind a snapshot, so slightly lagging followers catch up without one.
    #[arg(long, env = "IDEM_KEEP_LOGS", default_value_t = 1_000)]
    pub keep_logs: u64,

    /// Enable test-only endpoints (`POST /debug/clock-offset`). Never in production.
    #[arg(long, env = "IDEM_TEST_HOOKS", default_value_t = false)]
    pub test_hooks: bool,

    /// PEM certificate chain: serve HTTPS on the port, and present it to peers.
    /// Needs --tls-key and --tls-ca.
    #[arg(long, env = "IDEM_TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "IDEM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM certificate of the cluster's CA: peers must present a certificate
    /// it signed to call Raft RPC or forward requests; peers are trusted only
    /// through it.
    #[arg(long, env = "IDEM_TLS_CA", requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,

    /// Token file (API.md, Security): every /v1 call then needs a bearer token
    /// with the grant for what it does. SIGHUP reloads it.
    #[arg(long, env = "IDEM_AUTH_FILE")]
    pub auth_file: Option<PathBuf>,

    /// Connections served at once; further ones are closed at once (and logged).
    #[arg(long, env = "IDEM_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Time a client has to send a request's headers (and to finish a TLS
    /// handshake); also how long a connection may sit idle between requests.
    #[arg(long, env = "IDEM_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// Time a client has to send a request's body once its headers are in.
    #[arg(long, env = "IDEM_BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,
}

fn parse_id(s: &str) -> Result<NodeId, String> {
    if let Ok(id) = s.parse() {
        return Ok(id);
    }
    let ordinal = s.rsplit_once('-').and_then(|(_, n)| n.parse::<NodeId>().ok());
    ordinal.and_then(|n| n.checked_add(1)).ok_or_else(|| format!("`{s}` is neither an id nor a name like `idem-0`"))
}

impl Config {
    /// Whether the node serves (and talks to its peers) over TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some()
    }

    pub fn advertise_addr(&self) -> String {
        self.advertise.clone().unwrap_or_else(|| self.listen.to_string())
    }

    /// Parse `--initial-cluster` into `(id, address)` pairs.
    pub fn initial_members(&self) -> Result<Vec<(NodeId, String)>, String> {
        self.initial_cluster.as_deref().map_or(Ok(Vec::new()), parse_members)
    }
}

/// Parse `1=host:port,2=host:port,...` into `(id, address)` pairs.
pub fn parse_members(spec: &str) -> Result<Vec<(NodeId, String)>, String> {
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|part| {
            let (id, addr) = part.split_once('=').ok_or_else(|| format!("`{part}` is not id=host:port"))?;
            let id = id.trim().parse().map_err(|_| format!("`{id}` is not a node id"))?;
            Ok((id, addr.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_cluster_parses_and_rejects_garbage() {
        let mut c = Config::parse_from(["idem-node", "--id", "1", "--initial-cluster", "1=a:1, 2=b:2"]);
        assert_eq!(c.initial_members().unwrap(), vec![(1, "a:1".into()), (2, "b:2".into())]);
        c.initial_cluster = Some("1=a:1,x".into());
        assert!(c.initial_members().is_err());
        c.initial_cluster = Some("one=a:1".into());
        assert!(c.initial_members().is_err());
    }

    #[test]
    fn a_statefulset_pod_name_is_its_ordinal_plus_one() {
        let id = |s: &str| Config::try_parse_from(["idem-node", "--id", s]).map(|c| c.id);
        assert_eq!(id("7").unwrap(), 7);
        assert_eq!(id("idem-0").unwrap(), 1);
        assert_eq!(id("my-idem-12").unwrap(), 13);
        assert!(id("idem").is_err() && id("idem-x").is_err());
    }

    #[test]
    fn durations_are_human() {
        let c = Config::parse_from(["idem-node", "--id", "2", "--request-timeout", "1500ms"]);
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
        assert_eq!(c.advertise_addr(), "127.0.0.1:7001");
    }

    #[test]
    fn worker_threads_default_to_the_runtime_and_must_be_positive() {
        let threads = |extra: &[&str]| {
            Config::try_parse_from(["idem-node", "--id", "1"].iter().chain(extra)).map(|c| c.worker_threads)
        };
        assert_eq!(threads(&[]).unwrap(), None);
        assert_eq!(threads(&["--worker-threads", "1"]).unwrap(), Some(1));
        assert!(threads(&["--worker-threads", "0"]).is_err());
    }
}
