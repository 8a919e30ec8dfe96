//! The load itself, the same for every system: N clients, each with one
//! request in flight and its own keep-alive connection, write one fresh key
//! per request for a fixed time; latencies go to an HDR histogram, and the
//! CPU time of the servers and of the bench over exactly that window is read.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use idem_client::conn::Conn;

use crate::cpu::Usage;
use crate::http::Http;

/// One write of a fresh key to the system under test.
pub trait Op: Send + Sync + 'static {
    /// Writes `key` over `conn`; `Err` says why it failed.
    fn write(&self, conn: &mut Conn, key: String) -> impl Future<Output = Result<(), String>> + Send;
}

/// What to run: client i talks to `bases[i % len]`.
pub struct Load {
    pub bases: Vec<String>,
    pub clients: usize,
    pub duration: Duration,
    /// Shown in the progress line.
    pub label: String,
    /// The servers whose CPU time over the run is read (may be none).
    pub server_pids: Vec<u32>,
}

/// What the clients saw.
pub struct Tally {
    pub latency_us: Histogram<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// CPU used from the first client's start to the last one's end.
    pub cpu: Usage,
}

impl Tally {
    fn new() -> anyhow::Result<Tally> {
        Ok(Tally {
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            errors: 0,
            first_error: None,
            seconds: 0.0,
            cpu: Usage::default(),
        })
    }

    fn add(&mut self, other: Tally) -> anyhow::Result<()> {
        self.latency_us.add(&other.latency_us)?;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        Ok(())
    }
}

/// Runs the load and merges every client's tally. Progress (elapsed time,
/// writes so far) goes to stderr once a second. CPU is read after the clients
/// are built and before their tallies are merged, so neither setting up (TLS
/// roots for hundreds of clients) nor adding up counts as the load's cost.
pub async fn run<O: Op>(op: Arc<O>, load: &Load, http: &Http) -> anyhow::Result<Tally> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    // Keys are fresh across runs against the same cluster too.
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    // Every client is built before any starts, so the clock starts with all.
    let clients =
        (0..load.clients).map(|i| http.conn(&load.bases[i % load.bases.len()])).collect::<anyhow::Result<Vec<_>>>()?;
    let cpu_before = Usage::read(&load.server_pids)?;
    let mut tasks = Vec::with_capacity(load.clients);
    for (i, mut conn) in clients.into_iter().enumerate() {
        let (op, stop, done) = (op.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new()?;
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let start = Instant::now();
                match op.write(&mut conn, format!("{run}-c{i}-{seq}")).await {
                    Ok(()) => {
                        tally.latency_us.record(start.elapsed().as_micros().max(1) as u64)?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert(e);
                    }
                }
            }
            anyhow::Ok(tally)
        }));
    }
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    while started.elapsed() < load.duration {
        tokio::time::timeout(load.duration.saturating_sub(started.elapsed()), ticker.tick()).await.ok();
        eprint!(
            "\r  {} c={}: {:>3.0}s / {}s, {} writes",
            load.label,
            load.clients,
            started.elapsed().as_secs_f64(),
            load.duration.as_secs(),
            done.load(Ordering::Relaxed)
        );
        std::io::stderr().flush().ok();
    }
    stop.store(true, Ordering::Relaxed);
    eprintln!();
    let mut tallies = Vec::with_capacity(tasks.len());
    for t in tasks {
        tallies.push(t.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = Usage::read(&load.server_pids)?.since(cpu_before);
    let mut all = Tally { seconds, cpu, ..Tally::new()? };
    for t in tallies {
        all.add(t)?;
    }
    Ok(all)
}
