//! Judging a history, key by key: the linearizability search of `linear`
//! against the registry `model`, and the direct `invariants`. Keys are
//! independent records, so checking them one at a time is exact and keeps each
//! search small (the workload rolls keys so that each sees a few dozen operations).

pub mod clock;
pub mod invariants;
pub mod linear;

use std::collections::BTreeMap;

use idem_client::proto::ClaimResponse;

use crate::history::{Answer, Call, History, Op, Outcome};
use crate::model::{Input, Output, Symbols};
use linear::{Entry, Linearizability};

/// States the search may explore per key before giving up as inconclusive.
pub const DEFAULT_BUDGET: usize = 2_000_000;

/// The verdict on one key.
#[derive(Debug, Clone)]
pub struct KeyVerdict {
    pub key: String,
    pub ops: usize,
    pub unknown: usize,
    pub linearizability: Linearizability,
    /// Broken invariants, one sentence each.
    pub violations: Vec<String>,
    /// For a non-linearizable key: the operations around where the search got stuck.
    pub explanation: Vec<String>,
}

impl KeyVerdict {
    pub fn passed(&self) -> bool {
        self.linearizability == Linearizability::Linearizable && self.violations.is_empty()
    }
}

/// Check every key of `history`, in key order.
pub fn check(history: &History, budget: usize) -> Vec<KeyVerdict> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        by_key.entry(&op.key).or_default().push(op);
    }
    let mut cross: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let across_keys = [invariants::tokens_unique_across_keys, clock::check];
    for (key, violation) in across_keys.iter().flat_map(|check| check(&history.ops)) {
        cross.entry(key).or_default().push(violation);
    }
    by_key
        .into_iter()
        .map(|(key, ops)| {
            let mut verdict = check_key(key, &ops, budget);
            verdict.violations.extend(cross.remove(key).unwrap_or_default());
            verdict
        })
        .collect()
}

fn check_key(key: &str, ops: &[&Op], budget: usize) -> KeyVerdict {
    let mut syms = Symbols::default();
    let entries: Vec<Entry> = ops.iter().enumerate().filter_map(|(i, op)| entry(i, op, &mut syms)).collect();
    let linearizability = linear::check(&entries, budget);
    let explanation = match &linearizability {
        Linearizability::Violation(stuck) => {
            const SHOWN: usize = 12;
            let skipped = stuck.prefix.len().saturating_sub(SHOWN);
            let mut lines = vec![format!(
                "linearizable prefix of {} ops (the last {} shown):",
                stuck.prefix.len(),
                stuck.prefix.len() - skipped
            )];
            lines.extend(stuck.prefix[skipped..].iter().map(|&i| format!("  {}", line(ops[i]))));
            lines.push(format!("model state then: {}; none of these fits next:", syms.describe(&stuck.state)));
            lines.extend(stuck.candidates.iter().map(|&i| format!("  {}", line(ops[i]))));
            lines
        }
        _ => Vec::new(),
    };
    KeyVerdict {
        key: key.to_owned(),
        ops: ops.len(),
        unknown: ops.iter().filter(|op| matches!(op.outcome, Outcome::Unknown { .. })).count(),
        linearizability,
        violations: invariants::check(ops),
        explanation,
    }
}

/// One operation of a report: who, where, what, when (ms), and how it ended.
pub fn line(op: &Op) -> String {
    format!(
        "p{} n{} {:?} [{:.3}s..{:.3}s] -> {}",
        op.process,
        op.node,
        op.call,
        op.invoke_us as f64 / 1e6,
        op.return_us as f64 / 1e6,
        invariants::describe(&op.outcome)
    )
}

/// The search's view of an operation; `None` for those that cannot matter: never
/// sent, or reads whose answer was lost.
fn entry(i: usize, op: &Op, syms: &mut Symbols) -> Option<Entry> {
    let output = match &op.outcome {
        Outcome::NotSent { .. } => return None,
        Outcome::Unknown { .. } if !op.call.is_write() => return None,
        Outcome::Unknown { .. } => Output::Unknown,
        Outcome::Ok { answer: Answer::Claim(c), .. } => match c {
            ClaimResponse::Acquired { token, takeover, record } => {
                Output::Acquired { token: *token, takeover: *takeover, view: syms.view(record) }
            }
            ClaimResponse::Completed { record } => Output::Replayed(syms.view(record)),
            ClaimResponse::InProgress { record } => Output::Busy(syms.view(record)),
        },
        Outcome::Ok { answer: Answer::Record(r), .. } => Output::Record(syms.view(r)),
        Outcome::Fail { code, .. } if code == "not_found" => Output::NotFound,
        Outcome::Fail { code, .. } if code == "fenced" => Output::Fenced,
        Outcome::Fail { status, code } => Output::Refused(format!("{status} {code}")),
    };
    let input = match &op.call {
        Call::Claim { claim_id } => Input::Claim { claim_id: syms.sym(claim_id) },
        Call::Checkpoint { token, stage } => Input::Checkpoint { token: *token, stage: syms.sym(stage) },
        Call::Complete { token, result } => Input::Complete { token: *token, result: syms.sym(result) },
        Call::Release { token } => Input::Release { token: *token },
        Call::Read => Input::Read,
    };
    let return_us = op.outcome.is_definite().then_some(op.return_us);
    Some(Entry { op: i, input, output, invoke_us: op.invoke_us, return_us })
}

#[cfg(test)]
mod tests;
