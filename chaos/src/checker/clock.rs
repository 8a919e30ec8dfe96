//! The replicated clock, judged from the stamps (`updated_at_ms`) that writes
//! answer with, against the workload's own monotonic clock.
//!
//! Every lease and retention is judged by the replicated clock, so two things
//! must hold whatever any node's wall clock says:
//! - it never goes back: a write invoked after another was acknowledged is
//!   stamped no earlier (else tokens and expiry could be judged out of order);
//! - it never runs fast: between two writes it advances no more than the real
//!   time that can have passed between them (else a lease granted at the first
//!   ends early, on every node's judgement, and a rival takes over while the
//!   holder still works: the double execution idem exists to prevent).
//!
//! Only answers stamped by the operation itself count: checkpoints, and claims
//! that acquired on their first attempt (a retry answers the record the first
//! attempt wrote).

use std::collections::HashSet;

use idem_client::proto::ClaimResponse;

use crate::history::{Answer, Call, Op, Outcome};

/// How much faster than real time the replicated clock may seem to run between
/// two writes: stamps are whole milliseconds and the leader's clock is not ours.
pub const FAST_TOLERANCE_MS: i64 = 250;

/// Writes whose answer carries the stamp of their own apply, with that stamp.
fn stamped_writes(ops: &[Op]) -> Vec<(&Op, i64)> {
    let mut claimed = HashSet::new();
    let mut stamped = Vec::new();
    for op in ops {
        let stamp = match (&op.call, &op.outcome) {
            (
                Call::Claim { claim_id },
                Outcome::Ok { answer: Answer::Claim(ClaimResponse::Acquired { record, .. }), .. },
            ) if !claimed.contains(claim_id.as_str()) => Some(record.updated_at_ms),
            (Call::Checkpoint { .. }, Outcome::Ok { answer: Answer::Record(r), .. }) => Some(r.updated_at_ms),
            _ => None,
        };
        if let Call::Claim { claim_id } = &op.call {
            claimed.insert(claim_id.as_str());
        }
        stamped.extend(stamp.map(|s| (op, s as i64)));
    }
    stamped
}

/// `(time, value, op)` sorted by time, each carrying the best value (by
/// `better`) among all items up to it; a binary search then gives the best
/// value of every item before a given time.
fn running_best(mut items: Vec<(u64, i64, &Op)>, better: fn(i64, i64) -> bool) -> Vec<(u64, i64, &Op)> {
    items.sort_by_key(|i| i.0);
    let mut best: Option<(i64, &Op)> = None;
    items
        .into_iter()
        .map(|(t, v, op)| {
            let (bv, bop) = match best {
                Some((b, o)) if !better(v, b) => (b, o),
                _ => (v, op),
            };
            best = Some((bv, bop));
            (t, bv, bop)
        })
        .collect()
}

fn describe(op: &Op) -> String {
    format!("{} {:?} [{:.3}s..{:.3}s]", op.key, op.call, op.invoke_us as f64 / 1e6, op.return_us as f64 / 1e6)
}

/// Violations as `(key, sentence)`: every backward step, and the worst fast run.
pub fn check(ops: &[Op]) -> Vec<(String, String)> {
    let stamped = stamped_writes(ops);
    let mut found = Vec::new();

    // Backwards: the latest stamp acknowledged before each write was invoked.
    let acked = running_best(stamped.iter().map(|&(op, s)| (op.return_us, s, op)).collect(), |a, b| a > b);
    for &(b, stamp) in &stamped {
        let before = acked.partition_point(|a| a.0 < b.invoke_us);
        if let Some(&(_, max, a)) = before.checked_sub(1).map(|i| &acked[i]) {
            if max > stamp {
                let what = format!("replicated clock went back {} ms: {} stamped {stamp}", max - stamp, describe(b));
                found.push((b.key.clone(), format!("{what}, after {} was acknowledged stamped {max}", describe(a))));
            }
        }
    }

    // Fast: stamp(b) - stamp(a) may not exceed b.return - a.invoke, i.e.
    // stamp(b) - b.return <= stamp(a) - a.invoke, for every a invoked before b returned.
    let ms = |us: u64| (us / 1000) as i64;
    let slack =
        running_best(stamped.iter().map(|&(op, s)| (op.invoke_us, s - ms(op.invoke_us), op)).collect(), |a, b| a < b);
    let mut worst: Option<(i64, &Op, &Op)> = None;
    let mut fast = 0;
    for &(b, stamp) in &stamped {
        let before = slack.partition_point(|a| a.0 <= b.return_us);
        if let Some(&(_, min, a)) = before.checked_sub(1).map(|i| &slack[i]) {
            let excess = stamp - ms(b.return_us) - min;
            if excess > FAST_TOLERANCE_MS {
                fast += 1;
                if !matches!(worst, Some((w, _, _)) if w >= excess) {
                    worst = Some((excess, a, b));
                }
            }
        }
    }
    if let Some((excess, a, b)) = worst {
        found.push((
            b.key.clone(),
            format!(
                "replicated clock ran {excess} ms ahead of real time between {} and {} ({fast} writes affected): \
                 a lease granted at the first ends {excess} ms early",
                describe(a),
                describe(b)
            ),
        ));
    }
    found
}
