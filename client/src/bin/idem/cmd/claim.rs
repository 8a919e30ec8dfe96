use std::time::Duration;

use idem_client::proto::ClaimRequest;
use idem_client::{ClaimOutcome, Client, Error};

use super::Target;
use crate::args::{duration, millis};
use crate::exit;
use crate::output::{summary, Output};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// How long the claim holds before it counts as abandoned.
    #[arg(long, value_parser = duration)]
    lease: Option<Duration>,
    /// How long the record lives.
    #[arg(long, value_parser = duration)]
    retention: Option<Duration>,
    /// Digest of the payload; a claim with another one exits 6.
    #[arg(long)]
    fingerprint: Option<String>,
    /// Who claims, for operators.
    #[arg(long)]
    owner: Option<String>,
    /// Id of this call; repeat it to retry the same claim (default: a new uuid).
    #[arg(long)]
    claim_id: Option<String>,
}

pub async fn run(client: &Client, out: &Output, a: Args) -> Result<u8, Error> {
    let req = ClaimRequest {
        lease_ms: a.lease.map(millis),
        retention_ms: a.retention.map(millis),
        fingerprint: a.fingerprint,
        owner: a.owner,
        claim_id: a.claim_id,
    };
    let outcome = client.claim(&a.target.ns, &a.target.key, req).await?;
    // The wire answer, with `token` at the top for every outcome.
    let mut json = serde_json::to_value(outcome.to_response()).expect("claim answers are JSON");
    json["token"] = outcome.record().token.into();
    out.print(&json, || match &outcome {
        ClaimOutcome::Acquired { token, takeover, record } => {
            format!("acquired token={token}{} ({})", if *takeover { " takeover" } else { "" }, summary(record))
        }
        ClaimOutcome::Completed(record) => format!("completed ({})", summary(record)),
        ClaimOutcome::InProgress { record, retry_after } => {
            format!("in progress, retry after {:?} ({})", retry_after.unwrap_or_default(), summary(record))
        }
    });
    Ok(match outcome {
        ClaimOutcome::InProgress { .. } => exit::IN_PROGRESS,
        _ => exit::OK,
    })
}
