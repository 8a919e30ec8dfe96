//! `idem-traffic`: the client of the container tests (`deploy/docker/test.sh`)
//! and of the handover measurement. `write` claims and completes keys one
//! after another through `idem_client::Client`, as a service would, until
//! SIGTERM or SIGINT; it appends every acknowledged record to a file and ends
//! with one summary line: how many writes, how many failed after the client's
//! own retries, and the longest pause between two successful writes. `verify`
//! reads every record of that file from each endpoint on its own, with stale
//! reads (the node's own applied state), and fails on any record missing or
//! with another token or state.
//!
//! Exit codes: 0 all good; 1 a write failed or a record is wrong; 2 a usage or
//! I/O error.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use idem_client::proto::{ClaimRequest, CompleteRequest, Consistency, GetQuery, RecordState};
use idem_client::{ClaimOutcome, Client};
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(
    name = "idem-traffic",
    version,
    after_help = "Exit codes: 0 all good; 1 a write failed or a record is wrong; 2 a usage or I/O error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Claim and complete keys in a loop until SIGTERM or SIGINT.
    Write(WriteArgs),
    /// Check every record of a `write` file on every endpoint.
    Verify(VerifyArgs),
}

#[derive(Args)]
struct Common {
    /// Node URLs, comma-separated.
    #[arg(
        long,
        env = "IDEM_ENDPOINTS",
        value_delimiter = ',',
        default_value = idem_client::proto::LOCAL_ENDPOINTS
    )]
    endpoints: Vec<String>,

    /// The namespace the keys are written in.
    #[arg(long, env = "IDEM_TRAFFIC_NS", default_value = "traffic")]
    ns: String,

    /// The file of acknowledged records, one `key token state` per line.
    #[arg(long, env = "IDEM_TRAFFIC_RECORDS")]
    records: PathBuf,
}

#[derive(Args)]
struct WriteArgs {
    #[command(flatten)]
    common: Common,

    /// A prefix for the keys, so that runs against one cluster never collide.
    #[arg(long, env = "IDEM_TRAFFIC_PREFIX", default_value = "k")]
    prefix: String,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    common: Common,
}

/// Time since a write last succeeded, and the longest such gap so far.
struct Pauses {
    last_ok: Instant,
    longest: Duration,
}

/// A pause this long is reported on stderr when it ends, with the wall-clock
/// time, so that it can be set beside the events of the test that ran.
const REPORTED_PAUSE: Duration = Duration::from_secs(1);

impl Pauses {
    fn ok(&mut self) {
        let pause = self.last_ok.elapsed();
        if pause >= REPORTED_PAUSE {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            eprintln!(
                "idem-traffic: a pause of {} ms ended at unix time {:.3} s",
                pause.as_millis(),
                now.as_secs_f64()
            );
        }
        self.longest = self.longest.max(pause);
        self.last_ok = Instant::now();
    }
}

/// Claim then complete `key`; the record as acknowledged: its token and
/// whether the completion was acknowledged too.
async fn write_one(client: &Client, ns: &str, key: &str) -> Result<(u64, RecordState), String> {
    let claim = ClaimRequest { claim_id: Some(key.to_owned()), ..Default::default() };
    let token = match client.claim(ns, key, claim).await.map_err(|e| format!("claim {key}: {e}"))? {
        ClaimOutcome::Acquired { token, .. } => token,
        other => return Err(format!("claim {key}: not acquired: {:?}", other.record().state)),
    };
    let done = CompleteRequest { token, result: json!({"key": key}), retention_ms: None };
    match client.complete(ns, key, &done).await {
        Ok(_) => Ok((token, RecordState::Completed)),
        Err(e) => {
            eprintln!("idem-traffic: complete {key} (token {token}): {e}");
            Ok((token, RecordState::InProgress))
        }
    }
}

async fn write(args: WriteArgs) -> anyhow::Result<bool> {
    let client = Client::new(&args.common.endpoints).context("building the client")?;
    let mut out = OpenOptions::new().create(true).append(true).open(&args.common.records).context("records file")?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (mut writes, mut failures) = (0u64, 0u64);
    let mut pauses = Pauses { last_ok: Instant::now(), longest: Duration::ZERO };
    for i in 0u64.. {
        let key = format!("{}-{i}", args.prefix);
        let result = tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            r = write_one(&client, &args.common.ns, &key) => r,
        };
        match result {
            Ok((token, state)) => {
                writeln!(out, "{key} {token} {}", state_name(state))?;
                writes += 1;
                if state == RecordState::Completed {
                    pauses.ok();
                } else {
                    failures += 1;
                }
            }
            Err(e) => {
                eprintln!("idem-traffic: {e}");
                failures += 1;
            }
        }
    }
    out.flush()?;
    println!("writes={writes} failures={failures} longest_pause_ms={}", pauses.longest.as_millis());
    Ok(failures == 0)
}

fn state_name(state: RecordState) -> &'static str {
    match state {
        RecordState::Completed => "completed",
        RecordState::InProgress => "in_progress",
    }
}

async fn verify(args: VerifyArgs) -> anyhow::Result<bool> {
    let file = File::open(&args.common.records).context("records file")?;
    let mut expected = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [key, token, state] = parts[..] else { anyhow::bail!("bad line in the records file: {line:?}") };
        expected.push((key.to_owned(), token.parse::<u64>()?, state.to_owned()));
    }
    let query = GetQuery { consistency: Consistency::Stale, wait_ms: None };
    let mut wrong = 0usize;
    for endpoint in &args.common.endpoints {
        let client = Client::new([endpoint]).context("building the client")?;
        for (key, token, state) in &expected {
            let problem = match client.get(&args.common.ns, key, &query).await {
                // A completion whose answer was lost may or may not have happened.
                Ok(r) if r.token == *token && (state == "in_progress" || state_name(r.state) == state) => continue,
                Ok(r) => format!("token {} state {}, acknowledged {token} {state}", r.token, state_name(r.state)),
                Err(e) => e.to_string(),
            };
            wrong += 1;
            if wrong <= 10 {
                eprintln!("idem-traffic: {endpoint}: {key}: {problem}");
            }
        }
    }
    println!("records={} endpoints={} wrong={wrong}", expected.len(), args.common.endpoints.len());
    Ok(wrong == 0)
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Write(args) => write(args).await,
        Command::Verify(args) => verify(args).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("idem-traffic: {e:#}");
            ExitCode::from(2)
        }
    }
}
