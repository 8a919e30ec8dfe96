use std::time::Duration;

use idem_client::proto::{Consistency, GetQuery};
use idem_client::{Client, Error};

use super::Target;
use crate::args::{duration, millis};
use crate::exit;
use crate::output::Output;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// Read this node's applied state, no round trip to the leader.
    #[arg(long)]
    stale: bool,
    /// While in progress, wait up to this long for completion (max 60s).
    #[arg(long, value_parser = duration)]
    wait: Option<Duration>,
}

pub async fn run(client: &Client, out: &Output, a: Args) -> Result<u8, Error> {
    let query = GetQuery {
        consistency: if a.stale { Consistency::Stale } else { Consistency::Linearizable },
        wait_ms: a.wait.map(millis),
    };
    out.record(&client.get(&a.target.ns, &a.target.key, &query).await?);
    Ok(exit::OK)
}
