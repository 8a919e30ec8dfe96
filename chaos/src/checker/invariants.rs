//! Direct invariants over one key's raw operations. The linearizability search
//! implies most of them; they are checked separately because each names the
//! property a user cares about in one sentence, and keeps doing so even when the
//! search is inconclusive.
//!
//! They rely on the workload's shape (see `model`): nothing is deleted or
//! expires, so a completed key stays completed with one result for the rest of
//! the run; and a client never reuses a `claim_id` after its claim ended.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use idem_client::proto::{ClaimResponse, Record, RecordState};
use serde_json::Value;

use crate::history::{Answer, Call, Op, Outcome, FINAL_PROCESS};

/// Every invariant of one key; each string describes one violation.
pub fn check(ops: &[&Op]) -> Vec<String> {
    let mut found = Vec::new();
    one_result(ops, &mut found);
    completion_durable(ops, &mut found);
    tokens_increase(ops, &mut found);
    nothing_unwritten(ops, &mut found);
    found
}

/// The record an answer carries, if any.
fn record_of(op: &Op) -> Option<&Record> {
    match &op.outcome {
        Outcome::Ok { answer: Answer::Record(r), .. } => Some(r),
        Outcome::Ok { answer: Answer::Claim(c), .. } => Some(match c {
            ClaimResponse::Acquired { record, .. }
            | ClaimResponse::Completed { record }
            | ClaimResponse::InProgress { record } => record,
        }),
        _ => None,
    }
}

fn completed(r: &Record) -> Option<(u64, &Value)> {
    (r.state == RecordState::Completed).then_some((r.token, &r.result))
}

/// At most one successful completion: every completed record seen shows the
/// same token and result.
fn one_result(ops: &[&Op], found: &mut Vec<String>) {
    let seen: BTreeSet<String> = ops
        .iter()
        .filter_map(|op| record_of(op).and_then(completed))
        .map(|(token, result)| format!("token {token} result {result}"))
        .collect();
    if seen.len() > 1 {
        found.push(format!("completed more than once: {}", seen.into_iter().collect::<Vec<_>>().join("; ")));
    }
}

/// Every acknowledged completion is what the final read after healing shows.
fn completion_durable(ops: &[&Op], found: &mut Vec<String>) {
    let Some(acked) = ops
        .iter()
        .filter(|op| matches!(op.call, Call::Complete { .. }))
        .find_map(|op| record_of(op).and_then(completed))
    else {
        return;
    };
    let last_final = ops.iter().rev().find(|op| op.process == FINAL_PROCESS && op.outcome.is_definite());
    let shown = match last_final {
        None => "no final read answered".to_owned(),
        Some(op) => match record_of(op).and_then(completed) {
            Some(c) if c == acked => return,
            Some((token, result)) => format!("the final read shows token {token} result {result}"),
            None => format!("the final read answered {}", describe(&op.outcome)),
        },
    };
    found.push(format!("acknowledged completion (token {} result {}) lost: {shown}", acked.0, acked.1));
}

/// Acquisitions: one token per claim id, and a claim acquired after another
/// returned has a larger token.
fn tokens_increase(ops: &[&Op], found: &mut Vec<String>) {
    let acquired: Vec<(&Op, &str, u64)> = ops
        .iter()
        .filter_map(|op| match (&op.call, &op.outcome) {
            (
                Call::Claim { claim_id },
                Outcome::Ok { answer: Answer::Claim(ClaimResponse::Acquired { token, .. }), .. },
            ) => Some((*op, claim_id.as_str(), *token)),
            _ => None,
        })
        .collect();
    let mut token_of: BTreeMap<&str, u64> = BTreeMap::new();
    let mut claim_of: BTreeMap<u64, &str> = BTreeMap::new();
    for &(_, claim_id, token) in &acquired {
        if let Some(t) = token_of.insert(claim_id, token).filter(|t| *t != token) {
            found.push(format!("claim_id {claim_id} acquired with tokens {t} and {token}"));
        }
        if let Some(c) = claim_of.insert(token, claim_id).filter(|c| *c != claim_id) {
            found.push(format!("token {token} granted to two claims: {c} and {claim_id}"));
        }
    }
    for &(a, a_id, a_token) in &acquired {
        for &(b, b_id, b_token) in &acquired {
            if a_id != b_id && a.return_us < b.invoke_us && a_token >= b_token {
                found.push(format!(
                    "token went backwards: {a_id} got {a_token} (returned at {} us), then {b_id} got {b_token} (invoked at {} us)",
                    a.return_us, b.invoke_us
                ));
            }
        }
    }
}

/// No answer shows a claim id, checkpoint stage or result that no client sent
/// to this key (with that token, for stages and results).
fn nothing_unwritten(ops: &[&Op], found: &mut Vec<String>) {
    let mut claim_ids = BTreeSet::new();
    let mut stages: BTreeSet<(u64, &str)> = BTreeSet::new();
    let mut results: BTreeSet<(u64, &str)> = BTreeSet::new();
    for op in ops {
        match &op.call {
            Call::Claim { claim_id } => {
                claim_ids.insert(claim_id.as_str());
            }
            Call::Checkpoint { token, stage } => {
                stages.insert((*token, stage));
            }
            Call::Complete { token, result } => {
                results.insert((*token, result));
            }
            Call::Release { .. } | Call::Read => {}
        }
    }
    for op in ops {
        let Some(r) = record_of(op) else { continue };
        if let Some(c) = r.claim_id.as_deref().filter(|c| !claim_ids.contains(c)) {
            found.push(format!("a read shows claim_id {c} that no client sent"));
        }
        if let Some(cp) = r.checkpoint.as_ref().filter(|cp| !stages.contains(&(r.token, cp.stage.as_str()))) {
            found.push(format!("a read shows stage {} for token {} that no client wrote", cp.stage, r.token));
        }
        match &r.result {
            Value::Null => {}
            Value::String(s) if results.contains(&(r.token, s.as_str())) => {}
            other => found.push(format!("a read shows result {other} for token {} that no client wrote", r.token)),
        }
    }
}

/// Tokens are Raft log indexes, so two keys never share one (the workload sends
/// no batches, the one way two grants could share an entry).
pub fn tokens_unique_across_keys(ops: &[Op]) -> Vec<(String, String)> {
    let mut key_of: HashMap<u64, &str> = HashMap::new();
    let mut found = Vec::new();
    for op in ops {
        if let Outcome::Ok { answer: Answer::Claim(ClaimResponse::Acquired { token, .. }), .. } = &op.outcome {
            if let Some(other) = key_of.insert(*token, &op.key).filter(|k| *k != op.key) {
                found.push((op.key.clone(), format!("token {token} was also granted on key {other}")));
            }
        }
    }
    found
}

/// A short description of an outcome for a report line.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok { status, answer: Answer::Claim(c) } => match c {
            ClaimResponse::Acquired { token, takeover, .. } => {
                format!("{status} acquired token {token} takeover {takeover}")
            }
            ClaimResponse::Completed { record } => {
                format!("{status} completed token {} result {}", record.token, record.result)
            }
            ClaimResponse::InProgress { record } => {
                format!("{status} in_progress token {} claim_id {:?}", record.token, record.claim_id)
            }
        },
        Outcome::Ok { status, answer: Answer::Record(r) } => format!(
            "{status} {:?} token {} claim_id {:?} stage {:?} result {}",
            r.state,
            r.token,
            r.claim_id,
            r.checkpoint.as_ref().map(|c| &c.stage),
            r.result
        ),
        Outcome::Fail { status, code } => format!("{status} {code}"),
        Outcome::Unknown { reason } => format!("unknown ({reason})"),
        Outcome::NotSent { reason } => format!("not sent ({reason})"),
    }
}
