//! proptest strategies for registry logs, shared by the registry's and the
//! sled store's property tests, and a plain record for unit tests.

use proptest::prelude::*;

use super::{Command, Op, RecordId, RecordState, Request, StoredRecord};

fn id(key: &str) -> RecordId {
    RecordId::new("payments", key)
}

/// One generated operation over a small key space so that operations collide.
pub fn arb_op() -> impl Strategy<Value = Op> {
    let key = prop::sample::select(vec!["a", "b", "c"]).prop_map(id);
    let cid = prop::option::of(prop::sample::select(vec!["c1", "c2"]).prop_map(String::from));
    let fp = prop::option::of(prop::sample::select(vec!["f1", "f2"]).prop_map(String::from));
    // Tokens near the ones the first entries grant, old form and new.
    let token = prop_oneof![0u64..10, (1u64..40).prop_map(|i| i * 1024), (1u64..40).prop_map(|i| i * 1024 + 1)];
    prop_oneof![
        (key.clone(), 100u64..3_000, 1_000u64..8_000, fp, cid).prop_map(
            |(id, lease_ms, retention_ms, fingerprint, claim_id)| {
                Op::Claim { id, lease_ms, retention_ms, fingerprint, owner: None, claim_id }
            }
        ),
        (key.clone(), token.clone(), prop::option::of(100u64..3_000)).prop_map(|(id, token, lease_ms)| {
            Op::Checkpoint { id, token, stage: "s".into(), data_json: "1".into(), lease_ms }
        }),
        (key.clone(), token.clone(), prop::option::of(1_000u64..8_000)).prop_map(|(id, token, retention_ms)| {
            Op::Complete { id, token, result_json: "true".into(), retention_ms }
        }),
        (key.clone(), token).prop_map(|(id, token)| Op::Release { id, token }),
        key.prop_map(|id| Op::Delete { id }),
    ]
}

/// A log as a node may hold it: a few entries in the form earlier versions
/// wrote, then entries as proposed today. Stamps wander, sometimes
/// backwards, as leaders with skewed clocks would.
pub fn arb_log() -> impl Strategy<Value = Vec<Request>> {
    let legacy = prop_oneof![
        3 => arb_op().prop_map(Command::Op),
        1 => prop::collection::vec(arb_op(), 0..5).prop_map(Command::Batch),
        1 => Just(Command::Tick),
    ];
    let current = prop_oneof![
        6 => prop::collection::vec(arb_op(), 1..2).prop_map(Command::Ops),
        2 => prop::collection::vec(arb_op(), 0..6).prop_map(Command::Ops),
        1 => Just(Command::Tick),
        1 => Just(Command::SweepRecords),
    ];
    let stamp = || 0u64..20_000;
    (prop::collection::vec((legacy, stamp()), 0..8), prop::collection::vec((current, stamp()), 1..120))
        .prop_map(|(old, new)| old.into_iter().chain(new).map(|(cmd, stamp_ms)| Request { stamp_ms, cmd }).collect())
}

/// A stored record in `state`, its lease ending at `lease_end`, its
/// retention at `expires`; everything else empty.
pub fn stored(state: RecordState, lease_end: Option<u64>, expires: u64) -> StoredRecord {
    StoredRecord {
        state,
        token: 1,
        attempt: 1,
        claim_id: None,
        owner: None,
        fingerprint: None,
        checkpoint: None,
        result_json: None,
        created_at_ms: 0,
        updated_at_ms: 0,
        lease_expires_at_ms: lease_end,
        expires_at_ms: expires,
        retention_ms: expires,
    }
}
