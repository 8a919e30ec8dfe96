//! `idem`: the operator's CLI for an idem cluster. One file per subcommand
//! under `cmd/`, one printer (`output.rs`), one table of exit codes (`exit.rs`).

mod args;
mod cmd;
mod exit;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use idem_client::{Client, RetryPolicy};

use crate::output::Output;

#[derive(Parser)]
#[command(name = "idem", version, about = "Claim, complete and inspect idempotency keys in an idem cluster")]
#[command(after_help = exit::HELP)]
struct Cli {
    /// Base URLs of the nodes, comma-separated; any node serves any request.
    #[arg(
        long,
        env = "IDEM_ENDPOINTS",
        value_delimiter = ',',
        default_value = idem_client::proto::LOCAL_ENDPOINTS,
        global = true
    )]
    endpoints: Vec<String>,
    /// Print the server's JSON instead of a readable summary.
    #[arg(long, env = "IDEM_JSON", global = true)]
    json: bool,
    /// Total time for the command, retries across nodes included.
    #[arg(long, env = "IDEM_TIMEOUT", default_value = "20s", value_parser = args::duration, global = true)]
    timeout: Duration,
    /// PEM file of the CA to trust for https:// endpoints (a secure cluster's ca.pem).
    #[arg(long, env = "IDEM_CA", global = true)]
    ca: Option<PathBuf>,
    /// Bearer token for a cluster with tokens on (named apart from the
    /// commands' fencing `--token`).
    #[arg(long, env = "IDEM_TOKEN", global = true, hide_env_values = true)]
    auth_token: Option<String>,
    #[command(subcommand)]
    command: cmd::Command,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(cli.json);
    let policy = RetryPolicy { budget: cli.timeout, max_attempts: u32::MAX, ..RetryPolicy::default() };
    let mut builder =
        Client::builder(cli.endpoints).request_timeout(cli.timeout.min(Duration::from_secs(5))).retry_policy(policy);
    if let Some(ca) = cli.ca {
        builder = builder.ca_file(ca);
    }
    if let Some(token) = cli.auth_token {
        builder = builder.token(token);
    }
    let client = builder.build();
    let result = match client {
        Ok(client) => cli.command.run(&client, &out).await,
        Err(e) => Err(e),
    };
    ExitCode::from(match result {
        Ok(code) => code,
        Err(e) => out.error(&e),
    })
}
