//! Fuzz target of [`apply`](super::apply): arbitrary sequences of entries
//! over a small key space. It reaches what the property tests beside it
//! (`apply_tests.rs`) do not: tokens aimed at the current holder, so
//! checkpoint, complete and release succeed and not only get fenced; leases,
//! retentions and stamps at their extremes (`u64::MAX`, where every addition
//! must saturate); expiry backlogs past [`SWEEP_LIMIT`], by the index and
//! by the walk that replaces it (`Command::SweepRecords`). Invariants: no
//! panic; every new acquisition's token is larger than every token granted
//! before it (a retry answers its own again); a second replica applying the
//! same entries as the log stores them (bincode) answers and ends the same.

use std::collections::BTreeMap;

use bolero::TypeGenerator;

use super::tests::Replica;
use super::*;
use crate::registry::SWEEP_LIMIT;

#[derive(Debug, TypeGenerator)]
enum Span {
    Short(u16),
    Long(u32),
    Max,
}

impl Span {
    fn ms(&self) -> u64 {
        match self {
            Span::Short(ms) => u64::from(*ms),
            Span::Long(ms) => u64::from(*ms) * 1_000,
            Span::Max => u64::MAX,
        }
    }
}

/// Which token an operation presents.
#[derive(Debug, TypeGenerator)]
enum TokenPick {
    /// The key's latest acquisition: the holder's, unless it lost the key.
    Latest,
    /// An earlier acquisition's, of any key: a stale or foreign holder.
    Earlier(u8),
    Any(u64),
}

#[derive(Debug, TypeGenerator)]
enum Step {
    Claim { key: u8, lease: Span, retention: Span, fingerprint: Option<bool>, claim_id: Option<bool> },
    Checkpoint { key: u8, token: TokenPick, lease: Option<Span> },
    Complete { key: u8, token: TokenPick, retention: Option<Span> },
    Release { key: u8, token: TokenPick },
    Delete { key: u8 },
}

#[derive(Debug, TypeGenerator)]
enum Advance {
    Ms(u16),
    Back(u16),
    Seconds(u32),
    ToTheEnd,
}

#[derive(Debug, TypeGenerator)]
enum Body {
    Ops(Vec<Step>),
    Tick,
    /// The switch to sweeping by walking the records, at any point of the run.
    SweepRecords,
    /// Claims of many distinct keys at once, so later sweeps meet a backlog.
    Mass {
        keys: u16,
        retention: Span,
    },
}

/// What the run remembers to aim tokens: each key's latest, and all granted.
#[derive(Default)]
struct Tokens {
    latest: BTreeMap<RecordId, u64>,
    granted: Vec<u64>,
}

impl Tokens {
    fn pick(&self, id: &RecordId, pick: &TokenPick) -> u64 {
        match pick {
            TokenPick::Latest => self.latest.get(id).copied().unwrap_or(0),
            TokenPick::Earlier(i) if !self.granted.is_empty() => self.granted[usize::from(*i) % self.granted.len()],
            TokenPick::Earlier(_) => 0,
            TokenPick::Any(t) => *t,
        }
    }

    /// Record an acquisition; a new one must top every token granted so far.
    fn acquired(&mut self, id: &RecordId, token: u64) {
        if self.latest.get(id) == Some(&token) {
            return; // the holder's retry, answered its own token
        }
        let max = self.granted.iter().max().copied().unwrap_or(0);
        assert!(token > max, "token {token} for {id:?} after {max} was granted");
        self.latest.insert(id.clone(), token);
        self.granted.push(token);
    }
}

fn key(k: u8) -> RecordId {
    RecordId::new("payments", format!("k{}", k % 4))
}

fn text(flag: &Option<bool>, yes: &str, no: &str) -> Option<String> {
    flag.map(|f| if f { yes } else { no }.to_owned())
}

fn op(step: &Step, tokens: &Tokens) -> Op {
    match step {
        Step::Claim { key: k, lease, retention, fingerprint, claim_id } => Op::Claim {
            id: key(*k),
            lease_ms: lease.ms(),
            retention_ms: retention.ms(),
            fingerprint: text(fingerprint, "f1", "f2"),
            owner: None,
            claim_id: text(claim_id, "c1", "c2"),
        },
        Step::Checkpoint { key: k, token, lease } => Op::Checkpoint {
            id: key(*k),
            token: tokens.pick(&key(*k), token),
            stage: "s".into(),
            data_json: "{}".into(),
            lease_ms: lease.as_ref().map(Span::ms),
        },
        Step::Complete { key: k, token, retention } => Op::Complete {
            id: key(*k),
            token: tokens.pick(&key(*k), token),
            result_json: "1".into(),
            retention_ms: retention.as_ref().map(Span::ms),
        },
        Step::Release { key: k, token } => Op::Release { id: key(*k), token: tokens.pick(&key(*k), token) },
        Step::Delete { key: k } => Op::Delete { id: key(*k) },
    }
}

fn command(body: &Body, tokens: &Tokens) -> Command {
    match body {
        Body::Ops(steps) => Command::Ops(steps.iter().take(MAX_OPS_PER_ENTRY).map(|s| op(s, tokens)).collect()),
        Body::Tick => Command::Tick,
        Body::SweepRecords => Command::SweepRecords,
        Body::Mass { keys, retention } => Command::Ops(
            (0..usize::from(*keys) % (2 * SWEEP_LIMIT + 1))
                .map(|i| Op::Claim {
                    id: RecordId::new("bulk", i.to_string()),
                    lease_ms: 100,
                    retention_ms: retention.ms(),
                    fingerprint: None,
                    owner: None,
                    claim_id: None,
                })
                .collect(),
        ),
    }
}

#[test]
fn arbitrary_entries_keep_tokens_growing_and_replicas_equal() {
    bolero::check!().with_type::<Vec<(Advance, Body)>>().for_each(|entries| {
        let mut a = Replica::default();
        let mut b = Replica::default();
        let mut tokens = Tokens::default();
        let mut stamp = 1_700_000_000_000u64;
        for (advance, body) in entries {
            stamp = match advance {
                Advance::Ms(ms) => stamp.saturating_add(u64::from(*ms)),
                Advance::Back(ms) => stamp.saturating_sub(u64::from(*ms)),
                Advance::Seconds(s) => stamp.saturating_add(u64::from(*s) * 1_000),
                Advance::ToTheEnd => u64::MAX,
            };
            let cmd = command(body, &tokens);
            let logged: Request = crate::codec::decode(
                &crate::codec::encode(&Request { stamp_ms: stamp, cmd: cmd.clone() }).expect("a request encodes"),
            )
            .expect("a logged request decodes");
            let answer = a.run(stamp, cmd.clone());
            assert_eq!(answer, b.run(logged.stamp_ms, logged.cmd), "replicas answered differently");
            let Command::Ops(ops) = &cmd else { continue };
            assert_eq!(answer.outcomes.len(), ops.len());
            for (op, outcome) in ops.iter().zip(&answer.outcomes) {
                if let Outcome::Acquired { token, .. } = outcome {
                    tokens.acquired(op.id(), *token);
                }
            }
        }
        assert_eq!(a.tables.to_bytes(), b.tables.to_bytes());
        assert_eq!(a.meta, b.meta);
        assert_eq!(a.meta.records as usize, a.tables.len());
    });
}
