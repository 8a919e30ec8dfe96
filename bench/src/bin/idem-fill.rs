//! `idem-fill`: load N live records into a cluster as fast as it takes them,
//! through `POST /v1/batch` (full batches, many in flight) against the leader,
//! so state-size measurements (`scripts/scale.sh`) start from a known count.
//! Progress (records, records/s, elapsed) goes to stderr every second.
//!
//! Each record is a claim with a claim id, so a batch retried after a timeout
//! or a 503 is recognised op by op and never counts a record twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use idem_client::proto::{limits, BatchOp, BatchRequest, BatchResponse, ClaimRequest, ClusterStatus};

/// Load N records into an idem cluster through /v1/batch.
#[derive(Debug, Parser)]
struct Args {
    /// Any node's URL; the fill finds the leader from its /v1/cluster and writes there.
    #[arg(long, env = "IDEM_ENDPOINT", default_value = "http://127.0.0.1:7001")]
    endpoint: String,
    /// Records to create.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Number of the first record, so a second fill adds records instead of replaying.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Claims per batch (the API's limit is 1000).
    #[arg(long, default_value_t = limits::BATCH_MAX_OPS as u64)]
    batch: u64,
    /// Batches in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Namespace the records go into.
    #[arg(long, default_value = "fill")]
    ns: String,
    /// Bearer token, for a cluster with tokens on.
    #[arg(long, env = "IDEM_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// One record as a service would claim it: a compound key, a SHA-256
/// fingerprint, an owner and a claim id, so its size is that of a real one.
fn claim(ns: &str, i: u64) -> BatchOp {
    BatchOp::Claim {
        ns: ns.to_owned(),
        key: format!("merchant_{}:charge:order_{i}", i % 977),
        req: ClaimRequest {
            fingerprint: Some(format!("sha256:{i:064x}")),
            owner: Some("idem-fill".into()),
            claim_id: Some(format!("fill-{i}")),
            ..Default::default()
        },
    }
}

/// The leader's URL, with the scheme of `endpoint`.
async fn leader_url(http: &reqwest::Client, args: &Args) -> anyhow::Result<String> {
    let scheme = args.endpoint.split_once("://").map_or("http", |(s, _)| s);
    for _ in 0..50 {
        let status: ClusterStatus = authed(http.get(format!("{}/v1/cluster", args.endpoint)), args)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let leader = status.leader_id.and_then(|id| status.members.into_iter().find(|m| m.id == id));
        if let Some(m) = leader {
            return Ok(format!("{scheme}://{}", m.addr));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{} knows no leader", args.endpoint)
}

fn authed(req: reqwest::RequestBuilder, args: &Args) -> reqwest::RequestBuilder {
    match &args.token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// Send records `from..to` as one batch until every op is answered, retrying
/// the whole batch on a transport error or a 5xx (claim ids make it safe).
async fn send_batch(http: &reqwest::Client, url: &str, args: &Args, from: u64, to: u64) -> anyhow::Result<()> {
    let body = BatchRequest { ops: (from..to).map(|i| claim(&args.ns, i)).collect() };
    let mut backoff = Duration::from_millis(50);
    for attempt in 1..=20 {
        match authed(http.post(url), args).json(&body).send().await {
            Ok(r) if r.status().is_success() => {
                let answer: BatchResponse = r.json().await.context("reading a batch answer")?;
                // 201: acquired now; 200: a retried batch finding its record done.
                if let Some(bad) = answer.results.iter().find(|r| r.status != 201 && r.status != 200) {
                    bail!("records {from}..{to}: an op answered {}: {}", bad.status, bad.body);
                }
                return Ok(());
            }
            Ok(r) if r.status().is_server_error() => {
                eprintln!("records {from}..{to}: {} (attempt {attempt}), retrying", r.status());
            }
            Ok(r) => bail!("records {from}..{to}: {} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => eprintln!("records {from}..{to}: {e} (attempt {attempt}), retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    bail!("records {from}..{to}: gave up after 20 attempts")
}

fn progress(done: u64, total: u64, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "fill: {done}/{total} records ({:.1}%), {:.0} records/s, {secs:.1}s elapsed",
        100.0 * done as f64 / total.max(1) as f64,
        done as f64 / secs.max(1e-9)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if args.batch == 0 || args.batch > limits::BATCH_MAX_OPS as u64 {
        bail!("--batch must be 1..={}", limits::BATCH_MAX_OPS);
    }
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let url = format!("{}/v1/batch", leader_url(&http, &args).await?);
    eprintln!(
        "fill: {} records into namespace {} via {url}, {} batches in flight",
        args.records, args.ns, args.concurrency
    );
    let next = Arc::new(AtomicU64::new(args.start));
    let done = Arc::new(AtomicU64::new(0));
    let end = args.start + args.records;
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (http, url, args, next, done) = (http.clone(), url.clone(), args.clone(), next.clone(), done.clone());
        workers.spawn(async move {
            loop {
                let from = next.fetch_add(args.batch, Ordering::Relaxed);
                if from >= end {
                    return anyhow::Ok(());
                }
                let to = (from + args.batch).min(end);
                send_batch(&http, &url, &args, from, to).await?;
                done.fetch_add(to - from, Ordering::Relaxed);
            }
        });
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(result) => result??,
                None => break,
            },
            _ = tick.tick() => progress(done.load(Ordering::Relaxed), args.records, start),
        }
    }
    progress(done.load(Ordering::Relaxed), args.records, start);
    println!(
        "filled {} records in {:.1}s ({:.0} records/s)",
        args.records,
        start.elapsed().as_secs_f64(),
        args.records as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}
