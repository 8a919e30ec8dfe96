//! `idem-chaos`: run the workload and nemeses against a cluster and check the
//! history (`run`), or check a recorded history again (`check`).

use std::fs::File;
use std::io::{stdout, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use idem_chaos::api::Api;
use idem_chaos::checker;
use idem_chaos::history::{Event, History};
use idem_chaos::journal::Journal;
use idem_chaos::nemesis::control::Control;
use idem_chaos::nemesis::{Nemeses, Nemesis, Schedule};
use idem_chaos::report;
use idem_chaos::workload::{self, Settings};
use tokio::time::Instant;

/// Fault testing of an idem cluster, checked for linearizability.
#[derive(Parser)]
#[command(
    name = "idem-chaos",
    version,
    after_help = "Exit codes: 0 every key passed; 1 a key failed (a violation, or a search that ran out of budget); 2 the run itself failed."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run clients and nemeses against a running cluster, heal, read every key back, check.
    Run(Box<RunArgs>),
    /// Check a recorded history again.
    Check(CheckArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Client addresses of the nodes, node 1 first (`10.77.0.1:7001,...`).
    #[arg(long, env = "CHAOS_NODES", value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    /// How long clients and nemeses run.
    #[arg(long, env = "CHAOS_DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Faults to inject: a list of kill, pause, partition, clock; or all, or none.
    #[arg(long, env = "CHAOS_NEMESIS", default_value = "all", value_parser = Nemesis::parse_list)]
    nemesis: std::vec::Vec<Nemesis>,
    /// The script that starts, kills, pauses and partitions nodes (scripts/chaos/ctl.sh).
    #[arg(long, env = "CHAOS_CTL", default_value = "scripts/chaos/ctl.sh")]
    ctl: PathBuf,
    /// Where the history is written, one JSON event per line.
    #[arg(long, env = "CHAOS_HISTORY", default_value = "history.jsonl")]
    history: PathBuf,
    /// Concurrent clients.
    #[arg(long, env = "CHAOS_CLIENTS", default_value_t = 8)]
    clients: u32,
    /// Per-request timeout; short, so that faults leave operations with unknown outcomes.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// How long each fault lasts (longer than an election).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// Calm between a heal and the next fault.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    quiet: Duration,
    /// Pause between a client's turns.
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    think: Duration,
    /// Keys contended at any moment.
    #[arg(long, default_value_t = 3)]
    window: u64,
    /// Turns after which the key window moves on by one key.
    #[arg(long, default_value_t = 6)]
    roll_every: u64,
    /// Attempts of a call whose outcome stays unknown.
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    /// Seed of the clients' and nemesis' choices (default: from the clock).
    #[arg(long, env = "CHAOS_SEED")]
    seed: Option<u64>,
    /// The cluster's CA (PEM): speak https to a secure cluster.
    #[arg(long, env = "IDEM_CA")]
    ca: Option<PathBuf>,
    /// Bearer token for a cluster with tokens on.
    #[arg(long, env = "IDEM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    check: CheckOpts,
}

#[derive(Args)]
struct CheckArgs {
    /// The history to check.
    history: PathBuf,
    #[command(flatten)]
    check: CheckOpts,
}

#[derive(Args)]
struct CheckOpts {
    /// States the linearizability search may explore per key.
    #[arg(long, default_value_t = checker::DEFAULT_BUDGET)]
    budget: usize,
    /// Also write one verdict line per key to this file.
    #[arg(long)]
    verdicts: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(args) => {
            tokio::runtime::Runtime::new().context("starting tokio").and_then(|rt| rt.block_on(run(*args)))
        }
        Cmd::Check(args) => File::open(&args.history)
            .with_context(|| format!("opening {}", args.history.display()))
            .and_then(|f| Ok(History::read(f)?))
            .and_then(|h| check(&h, &args.check)),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("idem-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Check and report; whether every key passed.
fn check(history: &History, opts: &CheckOpts) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    let verdicts = checker::check(history, opts.budget);
    if let Some(path) = &opts.verdicts {
        let mut out = BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?);
        report::print_verdicts(&mut out, &verdicts)?;
    }
    let passed = report::print(&mut stdout().lock(), history, &verdicts)?;
    println!("checked in {}", report::took(started.elapsed()));
    Ok(passed)
}

async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let api = Api::new(&args.nodes, args.timeout, args.ca.as_deref(), args.token.as_deref())?;
    if !api.wait_ready(Duration::from_secs(60)).await {
        bail!("the cluster at {} is not ready", args.nodes.join(","));
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("seed {seed}; {} clients for {}", args.clients, humantime::format_duration(args.duration));
    let (journal, writer) = Journal::create(&args.history)?;
    let deadline = Instant::now() + args.duration;

    let schedule = Schedule { nemeses: args.nemesis.clone(), quiet: args.quiet, hold: args.hold };
    let mut nemeses = Nemeses::new(api.clone(), Control::new(args.ctl.clone()), journal.clone(), seed);
    let nemesis = tokio::spawn(async move {
        let result = nemeses.run(&schedule, deadline).await;
        (nemeses, result)
    });
    let progress = tokio::spawn(progress(journal.clone(), deadline));
    let settings = Settings {
        clients: args.clients,
        window: args.window,
        roll_every: args.roll_every,
        attempts: args.attempts,
        read_share: 0.25,
        think: args.think,
        seed,
    };
    let keys = workload::run(&api, &journal, &settings, deadline).await;
    progress.abort();
    let _ = progress.await;

    let (nemeses, injected) = nemesis.await.context("the nemesis task")?;
    let healed = nemeses.heal_all(args.nemesis.contains(&Nemesis::Clock)).await;
    journal.record(Event::Healed { at_us: journal.now_us() });
    drop(nemeses);
    let injected = injected?;
    healed?;
    eprintln!("workload done, {injected} faults injected; healed, reading back {} keys", keys.len());
    if !api.wait_ready(Duration::from_secs(60)).await {
        eprintln!("warning: not every node is ready 60 s after healing; reading anyway");
    }
    workload::final_reads(&api, &journal, keys, 10, args.clients as usize).await;
    drop(journal);
    let history = writer.finish().context("writing the history")?;
    eprintln!("history in {}", args.history.display());
    check(&history, &args.check)
}

/// A line every five seconds while the workload runs.
async fn progress(journal: Arc<Journal>, deadline: Instant) {
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let c = journal.counts();
        eprintln!(
            "[{:7.1}s] {} ops, {} successful writes, {} unknown",
            journal.now_us() as f64 / 1e6,
            c.ops.load(Ordering::Relaxed),
            c.successful_writes.load(Ordering::Relaxed),
            c.unknown.load(Ordering::Relaxed)
        );
    }
}
