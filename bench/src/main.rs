//! `idem-bench`: N concurrent clients write one fresh key per request to one
//! system (idem, or etcd for comparison) for a fixed time, then print
//! throughput and latency percentiles; `idem-bench table` turns the CSV of
//! several runs into markdown and `idem-bench plot` into an SVG. `scripts/bench.sh` starts the clusters and
//! alternates the runs.
//!
//! # Layout
//! - `load.rs`: the clients' loop, the same for every system, and its tally.
//! - `idem.rs`: idem's claim, its leader, and the leader's own counters.
//! - `etcd.rs`: etcd's equivalent (a create-if-absent txn with a lease) and its leader.
//! - `http.rs`: HTTP clients (a CA, a bearer token) and one request's check.
//! - `cpu.rs`: CPU seconds of the servers and of the bench, from `/proc`.
//! - `report.rs`: one run's summary and CSV row; the markdown tables.
//! - `plot.rs`: the SVG of a comparison.

mod cpu;
mod etcd;
mod http;
mod idem;
mod load;
mod plot;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::http::Http;
use crate::idem::{Counters, Workload};
use crate::load::{Load, Op, Tally};
use crate::report::Summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// idem: `POST /v1/ns/{ns}/keys/{key}/claim`.
    Idem,
    /// etcd 3.4 through its JSON gateway: a txn that puts the key with a lease if absent.
    Etcd,
}

/// Load a cluster and report claims per second and latency.
#[derive(Debug, Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: Args,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the markdown tables of a results CSV written with --csv.
    Table { csv: PathBuf },
    /// Plot a results CSV as SVG: claims/s and p99 against concurrency, per system.
    Plot { csv: PathBuf, out: PathBuf },
}

#[derive(Debug, clap::Args)]
struct Args {
    #[arg(long, value_enum, default_value = "idem")]
    target: Target,
    /// Node URLs; client i talks to endpoint i mod N (or all to the leader with --leader).
    #[arg(
        long,
        env = "IDEM_ENDPOINTS",
        value_delimiter = ',',
        default_value = idem_client::proto::LOCAL_ENDPOINTS
    )]
    endpoints: Vec<String>,
    /// Ask the endpoints who leads and send every request there. (idem's
    /// leader's counters are read before and after every run regardless.)
    #[arg(long)]
    leader: bool,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// idem only.
    #[arg(long, value_enum, default_value = "claim")]
    workload: Workload,
    /// Namespace (idem) or key prefix (etcd) to write into.
    #[arg(long, default_value = "bench")]
    ns: String,
    /// A PEM file of the CA to trust for https:// endpoints.
    #[arg(long, env = "IDEM_CA")]
    ca: Option<PathBuf>,
    /// The bearer token (for a secure cluster's /v1 and /metrics, an admin token).
    #[arg(long, env = "IDEM_TOKEN", hide_env_values = true, conflicts_with = "token_file")]
    token: Option<String>,
    /// A file holding the bearer token.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The system's name in the summary and the CSV (default: the target's).
    #[arg(long, value_parser = label)]
    label: Option<String>,
    /// Append the run's figures to this CSV file.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// The server processes (the cluster's nodes), whose CPU time over the
    /// run is reported per 1,000 claims beside the bench's own.
    #[arg(long, value_delimiter = ',')]
    server_pids: Vec<u32>,
    /// Fail when more than this fraction of requests fails.
    #[arg(long, default_value_t = 0.001)]
    max_error_rate: f64,
}

/// A label goes into CSV cells and table headers.
fn label(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        Ok(s.to_owned())
    } else {
        Err("letters, digits, '-', '_' and '.' only".into())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Table { csv }) => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            print!("{}", report::table(&csv, cores)?)
        }
        Some(Cmd::Plot { csv, out }) => plot::plot(&csv, &out)?,
        None => bench(cli.run).await?,
    }
    Ok(())
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?.trim().to_owned(),
        ),
        None => args.token.clone(),
    };
    let http = Http::new(args.ca.as_deref(), token.as_deref())?;
    let control = http.client()?;
    let label = args.label.clone().unwrap_or_else(|| format!("{:?}", args.target).to_lowercase());
    let mut load = Load {
        bases: args.endpoints.clone(),
        clients: args.clients,
        duration: args.duration,
        label,
        server_pids: args.server_pids.clone(),
    };
    let (tally, leader) = match args.target {
        Target::Idem => {
            // The leader's counters say how it wrote, wherever the claims are sent.
            let leader = idem::leader(&control, &args.endpoints).await?;
            if args.leader {
                load.bases = vec![leader.clone()];
            }
            let before = Counters::read(&control, &leader).await?;
            let tally = run(idem::Claim { ns: args.ns.clone(), workload: args.workload }, &load, &http).await?;
            (tally, Some(Counters::read(&control, &leader).await?.since(before)))
        }
        Target::Etcd => {
            anyhow::ensure!(matches!(args.workload, Workload::Claim), "etcd runs the claim workload only");
            if args.leader {
                load.bases = vec![etcd::leader(&control, &args.endpoints).await?];
            }
            let lease = etcd::grant_lease(&control, &load.bases[0]).await?;
            (run(etcd::Txn { ns: args.ns.clone(), lease }, &load, &http).await?, None)
        }
    };
    let summary = Summary::new(load.label, args.clients, &tally, leader);
    println!("{}", summary.line());
    if let Some(path) = &args.csv {
        summary.append_csv(path)?;
    }
    check(&summary, &tally, args.max_error_rate)
}

async fn run<O: Op>(op: O, load: &Load, http: &Http) -> anyhow::Result<Tally> {
    eprintln!("{} clients for {:?} against {}", load.clients, load.duration, load.bases.join(","));
    load::run(Arc::new(op), load, http).await
}

/// A run that wrote nothing, or failed more than the allowed fraction, fails loudly.
fn check(s: &Summary, tally: &Tally, max_error_rate: f64) -> anyhow::Result<()> {
    let first = tally.first_error.as_deref().unwrap_or("none");
    anyhow::ensure!(s.ops > 0, "{} c={}: no write succeeded (first error: {first})", s.label, s.clients);
    let rate = s.errors as f64 / (s.ops + s.errors) as f64;
    anyhow::ensure!(
        rate <= max_error_rate,
        "{} c={}: {} of {} requests failed, above --max-error-rate {max_error_rate} (first error: {first})",
        s.label,
        s.clients,
        s.errors,
        s.ops + s.errors
    );
    Ok(())
}
