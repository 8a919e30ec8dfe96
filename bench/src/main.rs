//! `idem-bench`: N concurrent clients claim (and optionally complete) fresh
//! keys against a cluster for a fixed time, then print throughput and latency
//! percentiles. Each client keeps one keep-alive connection per node, as a
//! service would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use idem_client::proto::{ClaimRequest, ClaimResponse, CompleteRequest};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Workload {
    /// One claim per key.
    Claim,
    /// Claim then complete: two writes per key.
    ClaimComplete,
}

/// Load an idem cluster and report claims per second and latency.
#[derive(Debug, Parser)]
struct Args {
    /// Node URLs; client i talks to endpoint i mod N.
    #[arg(
        long,
        env = "IDEM_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003"
    )]
    endpoints: Vec<String>,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    #[arg(long, value_enum, default_value = "claim")]
    workload: Workload,
    /// Namespace to write into (a run id keeps runs apart).
    #[arg(long, default_value = "bench")]
    ns: String,
}

struct Tally {
    latency_us: Histogram<u64>,
    errors: u64,
}

async fn client(i: usize, args: Arc<Args>, stop: Arc<AtomicBool>) -> anyhow::Result<Tally> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(1).timeout(Duration::from_secs(10)).build()?;
    let base = &args.endpoints[i % args.endpoints.len()];
    let mut tally = Tally { latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?, errors: 0 };
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let url = format!("{base}/v1/ns/{}/keys/c{i}-{seq}", args.ns);
        let start = Instant::now();
        let claim = ClaimRequest { claim_id: Some(format!("{i}-{seq}")), ..Default::default() };
        let resp = http.post(format!("{url}/claim")).json(&claim).send().await;
        let ok = match resp {
            Ok(r) if r.status().as_u16() == 201 => match (args.workload, r.json::<ClaimResponse>().await?) {
                (Workload::Claim, _) => true,
                (Workload::ClaimComplete, ClaimResponse::Acquired { token, .. }) => {
                    let complete = CompleteRequest { token, result: seq.into(), retention_ms: None };
                    let done = http.post(format!("{url}/complete")).json(&complete).send().await;
                    matches!(done, Ok(r) if r.status().is_success())
                }
                (Workload::ClaimComplete, _) => false,
            },
            _ => false,
        };
        if ok {
            tally.latency_us.record(start.elapsed().as_micros().max(1) as u64)?;
        } else {
            tally.errors += 1;
        }
    }
    Ok(tally)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let stop = Arc::new(AtomicBool::new(false));
    eprintln!(
        "{} clients, {:?}, {:?} against {}",
        args.clients,
        args.duration,
        args.workload,
        args.endpoints.join(",")
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients).map(|i| tokio::spawn(client(i, args.clone(), stop.clone()))).collect();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    while started.elapsed() < args.duration {
        ticker.tick().await;
        eprint!("\r{:>4.0}s / {:?}", started.elapsed().as_secs_f64(), args.duration);
    }
    stop.store(true, Ordering::Relaxed);
    eprintln!();
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for t in tasks {
        let tally = t.await??;
        all.add(&tally.latency_us)?;
        errors += tally.errors;
    }
    let secs = started.elapsed().as_secs_f64();
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "ops={} errors={} ops_per_sec={:.0} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        all.len(),
        errors,
        all.len() as f64 / secs,
        ms(0.50),
        ms(0.90),
        ms(0.99),
        all.max() as f64 / 1000.0
    );
    Ok(())
}
