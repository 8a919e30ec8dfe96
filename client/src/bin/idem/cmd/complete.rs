use std::time::Duration;

use idem_client::proto::CompleteRequest;
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
    /// The result later claims replay, as JSON.
    #[arg(long, value_parser = json)]
    result: Value,
    /// How long the completed record lives (default: the claim's).
    #[arg(long, value_parser = duration)]
    retention: Option<Duration>,
}

pub async fn run(client: &Client, out: &Output, a: Args) -> Result<u8, Error> {
    let req = CompleteRequest { token: a.held.token, result: a.result, retention_ms: a.retention.map(millis) };
    out.record(&client.complete(&a.held.target.ns, &a.held.target.key, &req).await?);
    Ok(exit::OK)
}
