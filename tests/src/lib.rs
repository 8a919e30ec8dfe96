//! Test harness: a [`TestCluster`] of real `idem-node` processes on free
//! 127.0.0.1 ports, each with its own temporary data directory, and a small
//! HTTP helper ([`Api`]) for talking JSON to them.
//!
//! The node binary is `$IDEM_NODE_BIN` if set, else built once per test
//! process ([`workspace_artifact`]).

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use idem_client::proto::ClusterStatus;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

mod api;
mod artifact;
pub mod scenarios;
pub mod security;
pub use api::{Answer, Api};
pub use artifact::workspace_artifact;
pub use security::{RawConn, Security};

/// How long the harness waits for a cluster to elect a leader or a node to serve.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The `idem-node` binary the clusters run.
pub fn node_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_artifact("IDEM_NODE_BIN", "idem-node", &["--bin", "idem-node"], "idem-node")).clone()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

struct Node {
    port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A cluster of real node processes; every process is killed on drop.
pub struct TestCluster {
    nodes: Vec<Node>,
    initial_cluster: String,
    initial_size: usize,
    extra_args: Vec<String>,
    security: Option<Security>,
    _dir: tempfile::TempDir,
    pub api: Api,
}

impl TestCluster {
    /// `n` nodes with the default flags, started and with a leader elected.
    pub async fn start(n: usize) -> TestCluster {
        Self::start_with(n, &[]).await
    }

    /// As [`TestCluster::start`], with extra `idem-node` flags for every node
    /// (e.g. `["--snapshot-threshold", "50"]`). Secure when the environment
    /// says so ([`Security::from_env`]).
    pub async fn start_with(n: usize, extra_args: &[&str]) -> TestCluster {
        Self::start_secured(n, extra_args, Security::from_env()).await
    }

    /// A cluster with TLS, mutual TLS and tokens from `security` (or none);
    /// the harness's own calls use its admin token.
    pub async fn start_secured(n: usize, extra_args: &[&str], security: Option<Security>) -> TestCluster {
        Self::planned(n, extra_args, security).launch().await
    }

    /// `n` nodes seeded with `idem-node restore --from backup` (each must
    /// succeed), then started as a new cluster.
    pub async fn start_restored(n: usize, backup: &Path) -> TestCluster {
        let cluster = Self::planned(n, &[], Security::from_env());
        for id in cluster.ids() {
            let out = Command::new(node_binary())
                .args(["restore", "--id", &id.to_string(), "--initial-cluster", &cluster.initial_cluster])
                .arg("--from")
                .arg(backup)
                .arg("--data-dir")
                .arg(&cluster.node(id).data_dir)
                .output()
                .expect("running idem-node restore");
            assert!(out.status.success(), "restore of node {id} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        cluster.launch().await
    }

    /// Ports, data directories and flags for `n` nodes; nothing started.
    fn planned(n: usize, extra_args: &[&str], security: Option<Security>) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let nodes: Vec<Node> = (1..=n)
            .map(|i| Node {
                port: free_port(),
                data_dir: dir.path().join(format!("node-{i}")),
                log: dir.path().join(format!("node-{i}.log")),
                child: None,
            })
            .collect();
        let initial_cluster = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{}=127.0.0.1:{}", i + 1, n.port))
            .collect::<Vec<_>>()
            .join(",");
        TestCluster {
            nodes,
            initial_cluster,
            initial_size: n,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            api: Api::for_cluster(security.as_ref()),
            security,
            _dir: dir,
        }
    }

    /// Start every planned node and wait for a leader.
    async fn launch(mut self) -> TestCluster {
        for id in self.ids() {
            self.spawn(id);
        }
        self.leader().await;
        self
    }

    pub fn ids(&self) -> Vec<u64> {
        (1..=self.nodes.len() as u64).collect()
    }

    fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    pub fn addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.node(id).port)
    }

    /// `http://127.0.0.1:PORT` of node `id` (ids start at 1), `https` when secure.
    pub fn url(&self, id: u64) -> String {
        let scheme = if self.security.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr(id))
    }

    /// A raw connection to node `id`, over TLS when the cluster is secure,
    /// for tests that must control the bytes of a request.
    pub async fn connect(&self, id: u64) -> Box<dyn RawConn> {
        let tcp = tokio::net::TcpStream::connect(self.addr(id)).await.expect("connect");
        let Some(security) = &self.security else { return Box::new(tcp) };
        Box::new(security.wrap(tcp).await)
    }

    /// The `Authorization` header line the harness's own calls send, if any.
    pub fn auth_header(&self) -> String {
        self.security.as_ref().map_or(String::new(), |s| format!("Authorization: Bearer {}\r\n", s.token("admin")))
    }

    /// The material the cluster runs with, when secure.
    pub fn security(&self) -> Option<&Security> {
        self.security.as_ref()
    }

    pub fn urls(&self) -> Vec<String> {
        self.ids().into_iter().map(|id| self.url(id)).collect()
    }

    pub fn is_up(&self, id: u64) -> bool {
        self.node(id).child.is_some()
    }

    /// Start one more node that is in no cluster yet (for membership changes);
    /// returns its id.
    pub async fn add_node(&mut self) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let dir = self._dir.path();
        self.nodes.push(Node {
            port: free_port(),
            data_dir: dir.join(format!("node-{id}")),
            log: dir.join(format!("node-{id}.log")),
            child: None,
        });
        self.spawn(id);
        self.wait_serving(id).await;
        id
    }

    fn spawn(&mut self, id: u64) {
        let initial = if id as usize <= self.initial_size { self.initial_cluster.clone() } else { String::new() };
        let (addr, mut extra) = (self.addr(id), self.extra_args.clone());
        if let Some(security) = &self.security {
            assert!(id <= security::NODES, "secure test clusters have certificates for {} nodes", security::NODES);
            extra.extend(security.node_args(id));
        }
        let node = self.node_mut(id);
        let log = File::options().create(true).append(true).open(&node.log).expect("node log file");
        let child = Command::new(node_binary())
            .args(["--id", &id.to_string(), "--listen", &addr, "--advertise", &addr])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--log", "info,openraft=warn"])
            .args(if initial.is_empty() { vec![] } else { vec!["--initial-cluster".to_owned(), initial] })
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawning idem-node");
        node.child = Some(child);
    }

    fn signal(&self, id: u64, sig: &str) {
        let pid = self.node(id).child.as_ref().expect("node is running").id();
        let ok = Command::new("kill").args([sig, &pid.to_string()]).status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "kill {sig} {pid} failed");
    }

    /// SIGKILL node `id`: no clean shutdown.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.node_mut(id).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM node `id` and wait for it to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self, id: u64) -> bool {
        self.signal(id, "-TERM");
        let mut child = self.node_mut(id).child.take().expect("running");
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for node") {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start node `id` again on its port with its data directory.
    pub async fn restart(&mut self, id: u64) {
        assert!(!self.is_up(id), "node {id} is still running");
        self.spawn(id);
        self.wait_serving(id).await;
    }

    /// SIGHUP node `id`: it reloads its token file.
    pub fn hangup(&self, id: u64) {
        self.signal(id, "-HUP");
    }

    pub fn pause(&self, id: u64) {
        self.signal(id, "-STOP");
    }

    pub fn resume(&self, id: u64) {
        self.signal(id, "-CONT");
    }

    async fn wait_serving(&self, id: u64) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while Instant::now() < deadline {
            if self.api.call(Method::GET, &format!("{}/healthz", self.url(id)), None).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("node {id} did not serve within {SETTLE_TIMEOUT:?}:\n{}", self.log_tail(id));
    }

    pub async fn status(&self, id: u64) -> Option<ClusterStatus> {
        let a = self.api.call(Method::GET, &format!("{}/v1/cluster", self.url(id)), None).await.ok()?;
        serde_json::from_value(a.body).ok()
    }

    /// The leader that itself and a majority of running nodes report, waiting
    /// for one. (A node not yet in the cluster knows no leader.)
    pub async fn leader(&self) -> u64 {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while Instant::now() < deadline {
            let mut seen = Vec::new();
            for id in self.ids().into_iter().filter(|id| self.is_up(*id)) {
                seen.push((id, self.status(id).await.and_then(|s| s.leader_id)));
            }
            let agreed = seen.iter().filter_map(|(_, l)| *l).find(|l| {
                let votes = seen.iter().filter(|(_, s)| *s == Some(*l)).count();
                votes * 2 > seen.len() && seen.iter().any(|(id, s)| id == l && *s == Some(*l))
            });
            if let Some(leader) = agreed {
                return leader;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no agreed leader within {SETTLE_TIMEOUT:?}:\n{}", self.logs());
    }

    /// Some running node that is not the leader.
    pub async fn follower(&self) -> u64 {
        let leader = self.leader().await;
        self.ids().into_iter().find(|id| *id != leader && self.is_up(*id)).expect("a running follower")
    }

    /// Wait until every running node answers `/readyz` with 200.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        for id in self.ids().into_iter().filter(|id| self.is_up(*id)) {
            loop {
                let url = format!("{}/readyz", self.url(id));
                if matches!(self.api.call(Method::GET, &url, None).await, Ok(a) if a.status == StatusCode::OK) {
                    break;
                }
                assert!(Instant::now() < deadline, "node {id} not ready:\n{}", self.log_tail(id));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    pub fn log_tail(&self, id: u64) -> String {
        let text = std::fs::read_to_string(&self.node(id).log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn logs(&self) -> String {
        self.ids()
            .into_iter()
            .map(|id| format!("--- node {id} ---\n{}", self.log_tail(id)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// POST JSON to `path` on node `id`.
    pub async fn post(&self, id: u64, path: &str, body: Value) -> Answer {
        self.api.must(Method::POST, &format!("{}{path}", self.url(id)), Some(body)).await
    }

    /// POST like a well-behaved client: retry a 503 (or a lost answer) with the
    /// same body, as API.md allows for every write, until a decided answer.
    pub async fn post_decided(&self, id: u64, path: &str, body: Value) -> Answer {
        let url = format!("{}{path}", self.url(id));
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            match self.api.call(Method::POST, &url, Some(body.clone())).await {
                Ok(a) if a.status != StatusCode::SERVICE_UNAVAILABLE => return a,
                other if Instant::now() > deadline => panic!("POST {url}: no decided answer: {other:?}"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn get(&self, id: u64, path: &str) -> Answer {
        self.api.must(Method::GET, &format!("{}{path}", self.url(id)), None).await
    }

    pub async fn delete(&self, id: u64, path: &str) -> Answer {
        self.api.must(Method::DELETE, &format!("{}{path}", self.url(id)), None).await
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Headers of an answer, for `Retry-After` checks.
pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}
