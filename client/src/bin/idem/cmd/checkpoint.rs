use std::time::Duration;

use idem_client::proto::CheckpointRequest;
use idem_client::{Client, Error};
use serde_json::Value;

use super::Held;
use crate::args::{duration, json, millis};
use crate::exit;
use crate::output::Output;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    held: Held,
    /// A short label of the step reached.
    #[arg(long)]
    stage: String,
    /// JSON the next holder needs to resume.
    #[arg(long, value_parser = json)]
    data: Option<Value>,
    /// Extend the lease by this much (a heartbeat).
    #[arg(long, value_parser = duration)]
    lease: Option<Duration>,
}

pub async fn run(client: &Client, out: &Output, a: Args) -> Result<u8, Error> {
    let req = CheckpointRequest {
        token: a.held.token,
        stage: a.stage,
        data: a.data.unwrap_or(Value::Null),
        lease_ms: a.lease.map(millis),
    };
    out.record(&client.checkpoint(&a.held.target.ns, &a.held.target.key, &req).await?);
    Ok(exit::OK)
}
