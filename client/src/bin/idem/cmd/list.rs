use futures::{StreamExt, TryStreamExt};
use idem_client::proto::{limits, Consistency, ListQuery, RecordState};
use idem_client::{Client, Error};

use crate::exit;
use crate::output::Output;

#[derive(Clone, Copy, clap::ValueEnum)]
enum State {
    InProgress,
    Completed,
}

#[derive(clap::Args)]
pub struct Args {
    /// Namespace, `^[A-Za-z0-9._-]{1,64}$`.
    ns: String,
    /// Only keys that start with this.
    #[arg(long)]
    prefix: Option<String>,
    /// Only records in this state.
    #[arg(long, value_enum)]
    state: Option<State>,
    /// Only claims in progress whose lease has run out (what a completer
    /// should finish or release).
    #[arg(long)]
    abandoned: bool,
    /// Print at most this many records (default: all, paging as it goes).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Read this node's applied state, no round trip to the leader.
    #[arg(long)]
    stale: bool,
}

/// One line per record, in key order; with `--json`, one JSON record per line.
pub async fn run(client: &Client, out: &Output, a: Args) -> Result<u8, Error> {
    let limit = a.limit.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let query = ListQuery {
        prefix: a.prefix,
        state: a.state.map(|s| match s {
            State::InProgress => RecordState::InProgress,
            State::Completed => RecordState::Completed,
        }),
        abandoned: a.abandoned,
        limit: Some(limit.min(limits::LIST_LIMIT_MAX)),
        after: None,
        consistency: if a.stale { Consistency::Stale } else { Consistency::Linearizable },
    };
    let mut records = client.list(&a.ns, query).take(limit);
    while let Some(record) = records.try_next().await? {
        out.record(&record);
    }
    Ok(exit::OK)
}
