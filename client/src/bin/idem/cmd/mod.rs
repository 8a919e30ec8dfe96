//! One module per subcommand; each `run` returns the exit code of a decided
//! answer, or the error whose code `exit.rs` picks.

mod checkpoint;
mod claim;
mod cluster;
mod complete;
mod delete;
mod get;
mod list;
mod release;
mod snapshot;

use idem_client::{Client, Error};

use crate::output::Output;

/// The record a key subcommand addresses.
#[derive(clap::Args)]
pub struct Target {
    /// Namespace, `^[A-Za-z0-9._-]{1,64}$`.
    pub ns: String,
    /// Key, any UTF-8 of 1 to 512 bytes (percent-encoded for you).
    pub key: String,
}

/// A record and the token of the claim that holds it.
#[derive(clap::Args)]
pub struct Held {
    #[command(flatten)]
    pub target: Target,
    /// The fencing token of the claim.
    #[arg(long)]
    pub token: u64,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Claim a key: exit 0 when acquired or completed (replay), 3 in progress.
    Claim(claim::Args),
    /// Record progress as the holder; with --lease also a heartbeat.
    Checkpoint(checkpoint::Args),
    /// Store the result as the holder.
    Complete(complete::Args),
    /// Give the key up as the holder, so a retry claims afresh.
    Release(release::Args),
    /// Read a record.
    Get(get::Args),
    /// List a namespace's records in key order (all pages).
    List(list::Args),
    /// Forget a record whatever its state (operator use).
    Delete(Target),
    /// Cluster status and membership.
    #[command(subcommand)]
    Cluster(cluster::Command),
    /// Backups of the whole registry.
    #[command(subcommand)]
    Snapshot(snapshot::Command),
}

impl Command {
    pub async fn run(self, client: &Client, out: &Output) -> Result<u8, Error> {
        match self {
            Command::Claim(a) => claim::run(client, out, a).await,
            Command::Checkpoint(a) => checkpoint::run(client, out, a).await,
            Command::Complete(a) => complete::run(client, out, a).await,
            Command::Release(a) => release::run(client, out, a).await,
            Command::Get(a) => get::run(client, out, a).await,
            Command::List(a) => list::run(client, out, a).await,
            Command::Delete(t) => delete::run(client, out, t).await,
            Command::Cluster(c) => cluster::run(client, out, c).await,
            Command::Snapshot(c) => snapshot::run(client, out, c).await,
        }
    }
}
