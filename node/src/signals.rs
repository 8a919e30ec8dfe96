//! What `/metrics` and `/v1/status` must report but a request cannot see by
//! itself: leader changes that happen between two scrapes, abandoned claims,
//! which no event marks (a lease runs out as the replicated clock moves), and
//! claim outcomes per second, which need counts from the past. All run in
//! the background and leave their figures where [`App::status`] reads them;
//! none ever proposes or writes anything.

use std::sync::Arc;
use std::time::Duration;

use crate::app::{known_leader_of, App};
use crate::rates;

/// Records read per step of the abandoned-claims walk, and the least pause
/// between steps. Completed records are passed over after reading their
/// state alone (`codec::record_state`); claims in progress are decoded.
const WALK_STEP: usize = 1000;
const WALK_PAUSE: Duration = Duration::from_millis(25);
/// Each pause is also at least this many times the step before it, so the
/// walk takes about a fiftieth of one core at most, however large the state
/// or busy the machine: a pass over a million records takes a minute or two.
const WALK_PAUSE_PER_STEP: u32 = 49;
/// The least time between the starts of two passes: small states are not
/// walked over and over.
const PASS_EVERY: Duration = Duration::from_secs(5);

/// Count every new leadership this node learns of: a leader known in a term
/// above the last one counted (a term has at most one leader, so
/// re-electing the same node counts too).
pub async fn count_leader_changes(app: Arc<App>) {
    let changes = metrics::counter!("idem_raft_leader_changes_total");
    let mut rx = app.raft.server_metrics();
    let mut counted_term = None;
    loop {
        let (leader, term) = {
            let m = rx.borrow_and_update();
            (known_leader_of(m.id, m.current_leader, m.state), m.vote.leader_id().term)
        };
        if leader.is_some() && counted_term < Some(term) {
            counted_term = Some(term);
            changes.increment(1);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Sample the claim outcomes counted so far every [`rates::SAMPLE_EVERY`],
/// for the rates of [`App::status`] (see [`crate::rates`]).
pub async fn sample_claim_rates(app: Arc<App>) {
    let mut every = tokio::time::interval(rates::SAMPLE_EVERY);
    loop {
        every.tick().await;
        app.claim_rates.sample();
    }
}

/// Walk every record in bounded steps, again and again, counting the
/// abandoned claims (in progress, lease run out by the replicated clock); each
/// finished pass publishes its count ([`App::set_abandoned_claims`]).
///
/// A walk rather than counts kept by `apply`: a lease runs out with the
/// clock, not with an entry, so exact counts would need an index ordered by
/// lease end, rewritten on every heartbeat. The gauge is a health signal; a figure up to one pass old is
/// enough, and the cost stays off the apply and scrape paths.
pub async fn count_abandoned_claims(app: Arc<App>) {
    loop {
        let started = tokio::time::Instant::now();
        match walk(&app).await {
            Ok(n) => app.set_abandoned_claims(n),
            Err(e) => tracing::warn!(error = %e, "counting abandoned claims"),
        }
        tokio::time::sleep_until(started + PASS_EVERY).await;
    }
}

async fn walk(app: &Arc<App>) -> Result<u64, String> {
    let mut after: Option<Vec<u8>> = None;
    let mut abandoned = 0;
    loop {
        let began = tokio::time::Instant::now();
        let view = app.view.clone();
        let cursor = after.take();
        let step = tokio::task::spawn_blocking(move || view.abandoned_after(cursor.as_deref(), WALK_STEP));
        let step = step.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        abandoned += step.abandoned;
        if step.seen < WALK_STEP {
            return Ok(abandoned);
        }
        after = step.last;
        tokio::time::sleep(WALK_PAUSE.max(began.elapsed() * WALK_PAUSE_PER_STEP)).await;
    }
}
