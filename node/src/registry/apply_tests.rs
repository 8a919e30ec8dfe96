//! Unit and property tests of the registry semantics, over in-memory tables.

use proptest::prelude::*;

use super::super::strategies::arb_log;

use super::*;
use crate::registry::MemTables;

/// A replica in miniature: tables, meta and the next log index.
#[derive(Default)]
pub(super) struct Replica {
    pub(super) tables: MemTables,
    pub(super) meta: Meta,
    index: u64,
}

impl Replica {
    pub(super) fn run(&mut self, stamp_ms: u64, cmd: Command) -> Response {
        self.index += 1;
        apply(&mut self.tables, &mut self.meta, self.index, &Request { stamp_ms, cmd })
    }

    fn op(&mut self, stamp_ms: u64, op: Op) -> Outcome {
        self.run(stamp_ms, Command::Ops(vec![op])).outcomes.remove(0)
    }
}

fn id(key: &str) -> RecordId {
    RecordId::new("payments", key)
}

fn claim(key: &str, claim_id: Option<&str>, fingerprint: Option<&str>) -> Op {
    Op::Claim {
        id: id(key),
        lease_ms: 1_000,
        retention_ms: 10_000,
        fingerprint: fingerprint.map(str::to_owned),
        owner: Some("test".into()),
        claim_id: claim_id.map(str::to_owned),
    }
}

fn complete(key: &str, token: u64) -> Op {
    Op::Complete { id: id(key), token, result_json: r#"{"ok":1}"#.into(), retention_ms: None }
}

fn checkpoint(key: &str, token: u64, lease_ms: Option<u64>) -> Op {
    Op::Checkpoint { id: id(key), token, stage: "charged".into(), data_json: r#"{"psp":"ch_1"}"#.into(), lease_ms }
}

fn acquired_token(outcome: &Outcome) -> u64 {
    match outcome {
        Outcome::Acquired { token, .. } => *token,
        other => panic!("expected acquired, got {other:?}"),
    }
}

#[test]
fn first_claim_acquires_with_a_token_from_the_entry_index() {
    let mut r = Replica::default();
    r.run(1_000, Command::Tick);
    match r.op(1_000, claim("k", Some("c1"), None)) {
        Outcome::Acquired { token: t, takeover, record } => {
            assert_eq!(t, token(2, 0));
            assert_eq!(record.token, t);
            assert!(!takeover);
            assert_eq!(record.attempt, 1);
            assert_eq!(record.state, RecordState::InProgress);
            assert_eq!(record.lease_expires_at_ms, Some(2_000));
            assert_eq!(record.expires_at_ms, 11_000);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.meta.records, 1);
}

#[test]
fn second_claim_is_in_progress_with_time_left() {
    let mut r = Replica::default();
    r.op(1_000, claim("k", Some("c1"), None));
    match r.op(1_400, claim("k", Some("c2"), None)) {
        Outcome::InProgress { retry_after_ms, record } => {
            assert_eq!(retry_after_ms, 600);
            assert_eq!(record.claim_id.as_deref(), Some("c1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn retry_with_same_claim_id_gets_the_same_token() {
    let mut r = Replica::default();
    let first = acquired_token(&r.op(1_000, claim("k", Some("c1"), None)));
    let again = acquired_token(&r.op(1_100, claim("k", Some("c1"), None)));
    assert_eq!(first, again);
    // A claim without claim_id is never taken as a retry.
    assert!(matches!(r.op(1_100, claim("k", None, None)), Outcome::InProgress { .. }));
}

#[test]
fn expired_lease_is_taken_over_keeping_the_checkpoint() {
    let mut r = Replica::default();
    let t1 = acquired_token(&r.op(1_000, claim("k", Some("c1"), None)));
    assert!(matches!(r.op(1_200, checkpoint("k", t1, None)), Outcome::Done { .. }));
    match r.op(2_000, claim("k", Some("c2"), None)) {
        Outcome::Acquired { token, takeover, record } => {
            assert!(takeover);
            assert!(token > t1);
            assert_eq!(record.attempt, 2);
            assert_eq!(record.checkpoint.expect("kept").stage, "charged");
        }
        other => panic!("{other:?}"),
    }
    // The old holder is fenced everywhere.
    assert_eq!(r.op(2_001, checkpoint("k", t1, None)), Outcome::Fenced);
    assert_eq!(r.op(2_001, complete("k", t1)), Outcome::Fenced);
    assert_eq!(r.op(2_001, Op::Release { id: id("k"), token: t1 }), Outcome::Fenced);
}

#[test]
fn checkpoint_with_lease_extends_it() {
    let mut r = Replica::default();
    let t = acquired_token(&r.op(1_000, claim("k", Some("c1"), None)));
    r.op(1_900, checkpoint("k", t, Some(5_000)));
    assert!(matches!(r.op(3_000, claim("k", Some("c2"), None)), Outcome::InProgress { .. }));
}

#[test]
fn complete_then_replay_and_idempotent_repeat() {
    let mut r = Replica::default();
    let t = acquired_token(&r.op(1_000, claim("k", Some("c1"), Some("fp"))));
    let done = r.op(1_500, complete("k", t));
    let Outcome::Done { record } = &done else { panic!("{done:?}") };
    assert_eq!(record.state, RecordState::Completed);
    assert_eq!(record.lease_expires_at_ms, None);
    assert_eq!(record.expires_at_ms, 11_500, "retention restarts at completion");
    assert_eq!(record.result_json.as_deref(), Some(r#"{"ok":1}"#));
    assert_eq!(r.op(1_600, complete("k", t)), done, "repeat is a no-op");
    assert_eq!(r.op(1_600, complete("k", t + 1)), Outcome::Fenced);
    assert!(matches!(r.op(1_700, claim("k", Some("c9"), Some("fp"))), Outcome::Completed { .. }));
    assert_eq!(r.op(1_700, checkpoint("k", t, None)), Outcome::Fenced, "completed records take no checkpoint");
}

#[test]
fn fingerprint_mismatch_is_refused() {
    let mut r = Replica::default();
    r.op(1_000, claim("k", Some("c1"), Some("sha256:a")));
    assert_eq!(r.op(1_100, claim("k", Some("c2"), Some("sha256:b"))), Outcome::FingerprintMismatch);
    assert_eq!(r.op(1_100, claim("k", Some("c2"), None)), Outcome::FingerprintMismatch);
    // No stored fingerprint: nothing to mismatch.
    r.op(1_000, claim("free", Some("c1"), None));
    assert!(matches!(r.op(1_100, claim("free", Some("c2"), Some("x"))), Outcome::InProgress { .. }));
}

#[test]
fn release_makes_the_key_claimable_afresh() {
    let mut r = Replica::default();
    let t = acquired_token(&r.op(1_000, claim("k", Some("c1"), None)));
    assert!(matches!(r.op(1_100, Op::Release { id: id("k"), token: t }), Outcome::Done { .. }));
    assert_eq!(r.meta.records, 0);
    assert_eq!(r.op(1_100, Op::Release { id: id("k"), token: t }), Outcome::NotFound);
    let t2 = acquired_token(&r.op(1_200, claim("k", Some("c2"), None)));
    assert!(t2 > t);
}

#[test]
fn delete_forgets_any_state() {
    let mut r = Replica::default();
    let t = acquired_token(&r.op(1_000, claim("k", None, None)));
    r.op(1_000, complete("k", t));
    assert!(matches!(r.op(1_000, Op::Delete { id: id("k") }), Outcome::Done { .. }));
    assert_eq!(r.op(1_000, Op::Delete { id: id("k") }), Outcome::NotFound);
    assert!(r.tables.is_empty());
}

#[test]
fn unknown_records_are_not_found() {
    let mut r = Replica::default();
    assert_eq!(r.op(1, checkpoint("nope", 1, None)), Outcome::NotFound);
    assert_eq!(r.op(1, complete("nope", 1)), Outcome::NotFound);
}

#[test]
fn retention_expiry_makes_records_absent_then_sweeps_them() {
    let mut r = Replica::default();
    let t = acquired_token(&r.op(1_000, claim("k", None, None)));
    r.op(1_000, complete("k", t)); // expires at 11_000
    assert_eq!(r.meta.records, 1);
    // The sweep runs first in every entry: at 11_000 the record is gone.
    r.run(11_000, Command::Tick);
    assert_eq!(r.meta.records, 0);
    assert_eq!(r.meta.expired_total, 1);
    assert!(r.tables.is_empty());
    let t2 = acquired_token(&r.op(11_001, claim("k", None, None)));
    assert!(t2 > t);
}

#[test]
fn a_lagging_stamp_never_moves_the_clock_back() {
    let mut r = Replica::default();
    r.run(5_000, Command::Tick);
    r.run(4_000, Command::Tick);
    assert_eq!(r.meta.clock_ms, 5_000);
    match r.op(3_000, claim("k", None, None)) {
        Outcome::Acquired { record, .. } => assert_eq!(record.created_at_ms, 5_000),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sweep_is_bounded_per_entry() {
    let mut r = Replica::default();
    let n = SWEEP_LIMIT as u64 + 10;
    let ops = (0..n).map(|i| claim(&format!("k{i}"), None, None)).collect();
    r.run(1_000, Command::Ops(ops));
    assert_eq!(r.meta.records, n);
    r.run(20_000, Command::Tick);
    assert_eq!(r.meta.records, 10, "only SWEEP_LIMIT removed by one entry");
    r.run(20_001, Command::Tick);
    assert_eq!(r.meta.records, 0);
}

#[test]
fn ops_apply_in_order_within_one_entry() {
    let mut r = Replica::default();
    let out = r.run(
        1_000,
        Command::Ops(vec![claim("a", Some("x"), None), claim("a", Some("y"), None), complete("a", token(1, 0))]),
    );
    assert_eq!(out.outcomes.len(), 3);
    assert_eq!(acquired_token(&out.outcomes[0]), token(1, 0));
    assert!(matches!(out.outcomes[1], Outcome::InProgress { .. }));
    assert!(matches!(&out.outcomes[2], Outcome::Done { record } if record.state == RecordState::Completed));
}

#[test]
fn two_acquisitions_in_one_entry_never_share_a_token() {
    let mut r = Replica::default();
    r.run(1_000, Command::Tick);
    let del = Op::Delete { id: id("k") };
    let out = r.run(1_000, Command::Ops(vec![claim("k", Some("c1"), None), del, claim("k", Some("c2"), None)]));
    let (first, second) = (acquired_token(&out.outcomes[0]), acquired_token(&out.outcomes[2]));
    assert_eq!((first, second), (token(2, 0), token(2, 2)));
    // The first holder's token no longer completes the second holder's claim.
    assert_eq!(r.op(1_100, complete("k", first)), Outcome::Fenced);
    assert!(matches!(r.op(1_100, complete("k", second)), Outcome::Done { .. }));
}

#[test]
fn entries_from_before_positions_keep_their_tokens_and_later_ones_are_larger() {
    let mut r = Replica::default();
    // An old log: a batch of claim, delete, claim handed the bare index to both.
    let del = Op::Delete { id: id("k") };
    let old = r.run(1_000, Command::Batch(vec![claim("k", Some("c1"), None), del, claim("k", Some("c2"), None)]));
    assert_eq!((acquired_token(&old.outcomes[0]), acquired_token(&old.outcomes[2])), (1, 1));
    let legacy = acquired_token(&r.run(1_000, Command::Op(claim("j", None, None))).outcomes[0]);
    assert_eq!(legacy, 2);
    // The first entry in the new form takes over with a token above both.
    r.run(1_000, Command::Ops(vec![Op::Delete { id: id("j") }]));
    assert!(acquired_token(&r.op(1_000, claim("j", None, None))) > legacy);
    assert!(token(3, 0) > 2 && token(1, MAX_OPS_PER_ENTRY - 1) < token(2, 0));
}

#[test]
fn after_the_switch_writes_keep_no_index_and_the_old_one_drains() {
    let mut r = Replica::default();
    let n = SWEEP_LIMIT + 10;
    r.run(1_000, Command::Ops((0..n).map(|i| claim(&format!("k{i}"), None, None)).collect()));
    assert_eq!(r.tables.indexed(), n);
    assert_eq!(r.tables.sweep(), None, "no sweep state before the switch");
    r.run(1_000, Command::SweepRecords);
    assert_eq!(r.tables.indexed(), n, "the switch's own entry swept by the index, before switching");
    let t = acquired_token(&r.op(1_000, claim("new", None, None)));
    assert_eq!(r.tables.indexed(), 10, "each entry after it drains SWEEP_LIMIT index entries");
    assert!(r.tables.sweep().is_some_and(|s| !s.index_drained));
    r.op(1_000, complete("new", t));
    assert_eq!(r.tables.indexed(), 0, "the rest drained, and the new record added none");
    assert!(r.tables.sweep().is_some_and(|s| s.index_drained));
    assert_eq!(r.meta.records, n as u64 + 1, "draining the index removed no record");
    // A second switch changes nothing.
    let before = r.tables.to_bytes();
    r.run(1_000, Command::SweepRecords);
    assert_eq!(r.tables.indexed(), 0);
    assert_eq!(r.tables.len(), n + 1);
    assert_ne!(before, r.tables.to_bytes(), "the tick-sized walk moved on");
}

#[test]
fn the_walk_removes_what_it_passes_that_has_expired_and_wraps_round() {
    let mut r = Replica::default();
    r.run(1_000, Command::SweepRecords);
    // Keys sort k000 < k001 < ...; the odd ones keep a longer retention.
    let ops = (0..40)
        .map(|i| {
            let retention_ms = if i % 2 == 0 { 5_000 } else { 60_000 };
            let mut op = claim(&format!("k{i:03}"), None, None);
            if let Op::Claim { retention_ms: r, .. } = &mut op {
                *r = retention_ms;
            }
            op
        })
        .collect();
    r.run(1_000, Command::Ops(ops));
    assert_eq!(r.tables.sweep().unwrap().after, None, "the claims' entry walked the store before them: empty");
    // At 10_000 the even keys have expired: an entry of one operation
    // examines four records, k000..k003.
    let t = acquired_token(&r.op(10_000, claim("zz", None, None)));
    assert_eq!(r.tables.sweep().unwrap().after, Some(id("k003")));
    assert_eq!(r.meta.expired_total, 2, "k000 and k002");
    assert_eq!(r.meta.records, 41 - 2);
    // An expired record not yet walked over is absent all the same.
    assert_eq!(r.op(10_000, complete("k020", 3)), Outcome::NotFound);
    assert_eq!(r.tables.sweep().unwrap().after, Some(id("k007")));
    assert_eq!(r.meta.expired_total, 4, "k004 and k006");
    // A tick examines SWEEP_LIMIT records: to the end, so the walk wraps.
    r.run(10_000, Command::Tick);
    assert_eq!(r.tables.sweep().unwrap().after, None, "ran off the end: starts again from the first");
    assert_eq!(r.meta.expired_total, 20, "every even key");
    r.run(10_000, Command::Tick);
    assert_eq!(r.meta.expired_total, 20, "nothing more on the way round again");
    assert_eq!(r.meta.records as usize, r.tables.len());
    assert_eq!(r.tables.len(), 21);
    assert!(matches!(r.op(10_000, complete("zz", t)), Outcome::Done { .. }));
}

proptest! {
    /// Switching to the walk changes no answer: an expired record is absent
    /// to every operation whether or not it has been swept, so a replica that
    /// switches (where the log says so) answers exactly as one that keeps the
    /// index, and holds the same live records.
    #[test]
    fn switching_the_sweep_changes_no_answer(log in arb_log()) {
        let mut walked = Replica::default();
        let mut indexed = Replica::default();
        for req in &log {
            let unswitched = match req.cmd {
                Command::SweepRecords => Command::Tick,
                ref cmd => cmd.clone(),
            };
            prop_assert_eq!(walked.run(req.stamp_ms, req.cmd.clone()), indexed.run(req.stamp_ms, unswitched));
        }
        let clock = walked.meta.clock_ms;
        prop_assert_eq!(clock, indexed.meta.clock_ms);
        let live = |r: &Replica| {
            let all = r.tables.records_after(None, usize::MAX);
            all.into_iter().filter(|(_, at)| *at > clock).map(|(id, _)| r.tables.get(&id)).collect::<Vec<_>>()
        };
        prop_assert_eq!(live(&walked), live(&indexed));
    }


    /// Replicas applying the same log end in byte-for-byte the same state and give
    /// the same answers, even when one of them restarts from a copy of its state
    /// (as after a snapshot install) part way through.
    #[test]
    fn replicas_applying_the_same_log_agree(log in arb_log(), cut in any::<prop::sample::Index>()) {
        let mut a = Replica::default();
        let mut b = Replica::default();
        let cut = cut.index(log.len());
        for (i, req) in log.iter().enumerate() {
            if i == cut {
                let image = b.tables.to_bytes();
                b = Replica { tables: b.tables.clone(), meta: b.meta, index: b.index };
                prop_assert_eq!(image, b.tables.to_bytes());
            }
            let ra = a.run(req.stamp_ms, req.cmd.clone());
            let rb = b.run(req.stamp_ms, req.cmd.clone());
            prop_assert_eq!(ra, rb);
        }
        prop_assert_eq!(a.tables.to_bytes(), b.tables.to_bytes());
        prop_assert_eq!(a.meta, b.meta);
        prop_assert_eq!(a.meta.records as usize, a.tables.len());
    }

    /// Every acquisition gets a token larger than any earlier one of its key,
    /// and none shares a token with another acquisition; a retry with the
    /// holder's claim_id answers the holder's token again.
    #[test]
    fn tokens_of_a_key_strictly_increase_and_are_never_shared(log in arb_log()) {
        let mut r = Replica::default();
        let mut last = std::collections::BTreeMap::new();
        let mut granted = std::collections::BTreeMap::new();
        for req in log {
            let (ops, positioned) = match &req.cmd {
                Command::Ops(ops) => (ops.clone(), true),
                Command::Op(op) => (vec![op.clone()], false),
                Command::Batch(ops) => (ops.clone(), false),
                Command::Tick | Command::SweepRecords => (Vec::new(), true),
            };
            for (op, outcome) in ops.iter().zip(r.run(req.stamp_ms, req.cmd).outcomes) {
                let Outcome::Acquired { token, .. } = outcome else { continue };
                let prev = last.insert(op.id().clone(), token).unwrap_or(0);
                if token == prev {
                    continue; // the holder's own retry
                }
                // Entries from before positions shared the index within a batch.
                prop_assert!(token > prev || !positioned, "token {} after {}", token, prev);
                if positioned {
                    let other = granted.insert(token, op.id().clone());
                    prop_assert!(other.is_none(), "token {} granted twice", token);
                }
            }
        }
    }
}
