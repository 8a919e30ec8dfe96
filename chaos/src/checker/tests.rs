//! Hand-made histories: each kind of violation the checker exists to catch, and
//! valid histories (with lost answers) it must accept.

use idem_client::proto::{Checkpoint, ClaimResponse, Record, RecordState};
use serde_json::Value;

use super::*;
use crate::history::{Process, FINAL_PROCESS};

fn record(token: u64, claim_id: &str, result: Option<&str>) -> Record {
    Record {
        namespace: "chaos".into(),
        key: "k".into(),
        state: if result.is_some() { RecordState::Completed } else { RecordState::InProgress },
        token,
        attempt: 1,
        claim_id: Some(claim_id.into()),
        owner: None,
        fingerprint: None,
        checkpoint: None,
        result: result.map_or(Value::Null, |r| Value::String(r.into())),
        created_at_ms: 1,
        updated_at_ms: 1,
        lease_expires_at_ms: result.is_none().then_some(3_600_001),
        expires_at_ms: 86_400_001,
    }
}

fn ok_claim(status: u16, c: ClaimResponse) -> Outcome {
    Outcome::Ok { status, answer: Answer::Claim(c) }
}
fn acquired(token: u64, claim_id: &str) -> Outcome {
    ok_claim(201, ClaimResponse::Acquired { token, takeover: false, record: record(token, claim_id, None) })
}
fn busy(token: u64, claim_id: &str) -> Outcome {
    ok_claim(409, ClaimResponse::InProgress { record: record(token, claim_id, None) })
}
fn replayed(token: u64, claim_id: &str, result: &str) -> Outcome {
    ok_claim(200, ClaimResponse::Completed { record: record(token, claim_id, Some(result)) })
}
fn rec(token: u64, claim_id: &str, result: Option<&str>) -> Outcome {
    Outcome::Ok { status: 200, answer: Answer::Record(record(token, claim_id, result)) }
}
fn fail(status: u16, code: &str) -> Outcome {
    Outcome::Fail { status, code: code.into() }
}
fn unknown() -> Outcome {
    Outcome::Unknown { reason: "timeout".into() }
}

fn claim(claim_id: &str) -> Call {
    Call::Claim { claim_id: claim_id.into() }
}
fn complete(token: u64, result: &str) -> Call {
    Call::Complete { token, result: result.into() }
}

/// An operation of process `p` on key `k`, invoked and returned at the given µs.
fn op(p: Process, call: Call, invoke_us: u64, return_us: u64, outcome: Outcome) -> Op {
    Op { process: p, node: 1, key: "k".into(), call, invoke_us, return_us, outcome }
}

fn verdict(ops: Vec<Op>) -> KeyVerdict {
    let mut v = check(&History { ops, ..Default::default() }, DEFAULT_BUDGET);
    assert_eq!(v.len(), 1);
    v.pop().unwrap()
}

fn assert_passes(ops: Vec<Op>) {
    let v = verdict(ops);
    assert!(v.passed(), "{:?} {:?}\n{}", v.linearizability, v.violations, v.explanation.join("\n"));
}

/// Fails the search, and, when `invariant` is given, an invariant whose message contains it.
fn assert_caught(ops: Vec<Op>, invariant: Option<&str>) {
    let v = verdict(ops);
    assert!(matches!(v.linearizability, Linearizability::Violation(_)), "{:?}", v.linearizability);
    assert!(!v.explanation.is_empty());
    if let Some(needle) = invariant {
        assert!(v.violations.iter().any(|m| m.contains(needle)), "no `{needle}` in {:?}", v.violations);
    }
}

#[test]
fn contended_claims_one_wins_then_replays() {
    assert_passes(vec![
        op(1, claim("c1"), 0, 10, acquired(5, "c1")),
        op(2, claim("c2"), 2, 12, busy(5, "c1")),
        op(3, Call::Read, 3, 13, rec(5, "c1", None)),
        op(1, complete(5, "r1"), 20, 30, rec(5, "c1", Some("r1"))),
        op(2, claim("c3"), 25, 35, replayed(5, "c1", "r1")),
        op(1, complete(5, "r1"), 40, 50, rec(5, "c1", Some("r1"))),
        op(FINAL_PROCESS, Call::Read, 100, 110, rec(5, "c1", Some("r1"))),
    ]);
}

#[test]
fn a_read_concurrent_with_a_completion_may_see_either_state() {
    for seen in [rec(5, "c1", None), rec(5, "c1", Some("r1"))] {
        assert_passes(vec![
            op(1, claim("c1"), 0, 10, acquired(5, "c1")),
            op(1, complete(5, "r1"), 20, 30, rec(5, "c1", Some("r1"))),
            op(2, Call::Read, 21, 29, seen),
            op(FINAL_PROCESS, Call::Read, 100, 110, rec(5, "c1", Some("r1"))),
        ]);
    }
}

#[test]
fn a_lost_claim_answer_then_a_retry_with_the_same_claim_id() {
    assert_passes(vec![
        op(1, claim("c1"), 0, 2000, unknown()),
        op(2, claim("c2"), 100, 110, busy(7, "c1")),
        op(1, claim("c1"), 2100, 2110, acquired(7, "c1")),
        op(1, Call::Release { token: 7 }, 2200, 2210, rec(7, "c1", None)),
        op(2, claim("c2"), 2300, 2310, acquired(9, "c2")),
    ]);
}

#[test]
fn a_lost_completion_may_have_taken_effect_or_not() {
    // It took effect: a later read shows it.
    assert_passes(vec![
        op(1, claim("c1"), 0, 10, acquired(5, "c1")),
        op(1, complete(5, "r1"), 20, 2020, unknown()),
        op(2, Call::Read, 3000, 3010, rec(5, "c1", Some("r1"))),
    ]);
    // It never took effect: the holder releases afterwards, and a new claim acquires.
    assert_passes(vec![
        op(1, claim("c1"), 0, 10, acquired(5, "c1")),
        op(1, complete(5, "r1"), 20, 2020, unknown()),
        op(1, Call::Release { token: 5 }, 3000, 3010, rec(5, "c1", None)),
        op(2, claim("c2"), 3100, 3110, acquired(8, "c2")),
        op(FINAL_PROCESS, Call::Read, 5000, 5010, rec(8, "c2", None)),
    ]);
}

#[test]
fn an_unseen_acquisition_is_revealed_by_a_read() {
    assert_passes(vec![
        op(1, claim("c1"), 0, 10, acquired(5, "c1")),
        op(1, Call::Release { token: 5 }, 20, 30, rec(5, "c1", None)),
        op(2, claim("c2"), 40, 2040, unknown()),
        op(3, Call::Read, 3000, 3010, rec(8, "c2", None)),
        op(3, Call::Release { token: 8 }, 3020, 3030, rec(8, "c2", None)),
    ]);
}

#[test]
fn checkpoints_are_fenced_for_other_tokens_and_kept_on_completion() {
    let mut staged = record(5, "c1", None);
    staged.checkpoint = Some(Checkpoint { stage: "s1".into(), data: Value::Null, at_ms: 2 });
    let mut done = record(5, "c1", Some("r1"));
    done.checkpoint = staged.checkpoint.clone();
    assert_passes(vec![
        op(1, claim("c1"), 0, 10, acquired(5, "c1")),
        op(
            1,
            Call::Checkpoint { token: 5, stage: "s1".into() },
            20,
            30,
            Outcome::Ok { status: 200, answer: Answer::Record(staged) },
        ),
        op(2, Call::Checkpoint { token: 4, stage: "s2".into() }, 40, 50, fail(409, "fenced")),
        op(1, complete(5, "r1"), 60, 70, Outcome::Ok { status: 200, answer: Answer::Record(done.clone()) }),
        op(2, Call::Release { token: 5 }, 80, 90, fail(409, "fenced")),
        op(FINAL_PROCESS, Call::Read, 100, 110, Outcome::Ok { status: 200, answer: Answer::Record(done) }),
    ]);
}

#[test]
fn catches_a_double_acquire() {
    assert_caught(
        vec![op(1, claim("c1"), 0, 10, acquired(5, "c1")), op(2, claim("c2"), 2, 12, acquired(6, "c2"))],
        None,
    );
}

#[test]
fn catches_a_lost_completion() {
    assert_caught(
        vec![
            op(1, claim("c1"), 0, 10, acquired(5, "c1")),
            op(1, complete(5, "r1"), 20, 30, rec(5, "c1", Some("r1"))),
            op(FINAL_PROCESS, Call::Read, 100, 110, fail(404, "not_found")),
        ],
        Some("acknowledged completion"),
    );
}

#[test]
fn catches_a_stale_read_after_a_completion() {
    assert_caught(
        vec![
            op(1, claim("c1"), 0, 10, acquired(5, "c1")),
            op(1, complete(5, "r1"), 20, 30, rec(5, "c1", Some("r1"))),
            op(2, Call::Read, 40, 50, rec(5, "c1", None)),
        ],
        None,
    );
}

#[test]
fn catches_two_different_completions() {
    assert_caught(
        vec![
            op(1, claim("c1"), 0, 10, acquired(5, "c1")),
            op(1, complete(5, "r1"), 20, 30, rec(5, "c1", Some("r1"))),
            op(2, claim("c2"), 40, 50, replayed(5, "c1", "r2")),
        ],
        Some("completed more than once"),
    );
}

#[test]
fn catches_a_token_going_backwards() {
    assert_caught(
        vec![
            op(1, claim("c1"), 0, 10, acquired(9, "c1")),
            op(1, Call::Release { token: 9 }, 20, 30, rec(9, "c1", None)),
            op(2, claim("c2"), 40, 50, acquired(7, "c2")),
        ],
        Some("token went backwards"),
    );
}

#[test]
fn catches_a_read_of_a_state_never_written() {
    assert_caught(
        vec![op(1, claim("c1"), 0, 10, acquired(5, "c1")), op(2, Call::Read, 20, 30, rec(5, "c1", Some("ghost")))],
        Some("no client wrote"),
    );
}

#[test]
fn catches_a_takeover_of_a_live_lease() {
    assert_caught(
        vec![
            op(1, claim("c1"), 0, 10, acquired(5, "c1")),
            op(
                2,
                claim("c2"),
                20,
                30,
                ok_claim(201, ClaimResponse::Acquired { token: 6, takeover: true, record: record(6, "c2", None) }),
            ),
        ],
        None,
    );
}

#[test]
fn catches_a_token_shared_by_two_keys() {
    let mut other = op(2, claim("c2"), 0, 10, acquired(5, "c2"));
    other.key = "k2".into();
    let v = check(
        &History { ops: vec![op(1, claim("c1"), 0, 10, acquired(5, "c1")), other], ..Default::default() },
        DEFAULT_BUDGET,
    );
    assert!(v.iter().any(|k| k.violations.iter().any(|m| m.contains("also granted"))), "{v:?}");
}

/// A first-attempt acquisition of `key` stamped `at_ms`, between the given µs.
fn stamped_claim(key: &str, claim_id: &str, token: u64, at_ms: u64, invoke_us: u64, return_us: u64) -> Op {
    let mut r = record(token, claim_id, None);
    r.updated_at_ms = at_ms;
    let outcome = ok_claim(201, ClaimResponse::Acquired { token, takeover: false, record: r });
    Op { key: key.into(), ..op(1, claim(claim_id), invoke_us, return_us, outcome) }
}

fn clock_violations(ops: Vec<Op>) -> Vec<String> {
    check(&History { ops, ..Default::default() }, DEFAULT_BUDGET).into_iter().flat_map(|k| k.violations).collect()
}

#[test]
fn catches_the_replicated_clock_going_back() {
    let v = clock_violations(vec![
        stamped_claim("k", "c1", 5, 5_000, 0, 10_000),
        stamped_claim("k2", "c2", 9, 1_000, 20_000, 30_000),
    ]);
    assert!(v.iter().any(|m| m.contains("went back 4000 ms")), "{v:?}");
}

#[test]
fn catches_the_replicated_clock_running_fast() {
    // At most 1 s of real time passes between the two: a clock that moved 11 s
    // ran 10 s fast; one that moved 1 s kept time.
    for (later_ms, expected) in [(111_000, Some("ran 10000 ms ahead")), (101_000, None)] {
        let v = clock_violations(vec![
            stamped_claim("k", "c1", 5, 100_000, 0, 10_000),
            stamped_claim("k2", "c2", 9, later_ms, 500_000, 1_000_000),
        ]);
        match expected {
            Some(needle) => assert!(v.iter().any(|m| m.contains(needle)), "{v:?}"),
            None => assert!(v.is_empty(), "{v:?}"),
        }
    }
}

#[test]
fn many_lost_retries_stay_cheap_to_check() {
    let mut ops = vec![op(0, claim("c0"), 0, 10, acquired(5, "c0"))];
    for attempt in 0..5u64 {
        let t = 100 + attempt * 100;
        ops.push(op(0, Call::Release { token: 5 }, t, t + 1, unknown()));
        for p in 1..8 {
            ops.push(op(p, claim(&format!("c{p}")), t + u64::from(p), t + 20, unknown()));
        }
    }
    ops.push(op(FINAL_PROCESS, Call::Read, 1_000, 1_010, rec(9, "c3", None)));
    let v = check(&History { ops, ..Default::default() }, 20_000);
    assert!(v[0].passed(), "{:?}", v[0].linearizability);
}
