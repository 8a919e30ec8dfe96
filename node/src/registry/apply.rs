//! Applying one committed entry: advance the replicated clock, remove what has
//! expired (bounded), then decide each operation against the clock.

use serde::{Deserialize, Serialize};

use super::tables::Sweep;
use super::{Command, Op, Outcome, RecordId, RecordState, Request, Response, StoredCheckpoint, StoredRecord, Tables};

/// At most this many expired records are removed per applied entry by the
/// index, and at most this many records examined by a tick's walk, so one
/// entry never does unbounded work; idle leaders tick, so the backlog still drains.
pub const SWEEP_LIMIT: usize = 256;

/// Records the walk examines per operation of an entry: more than one, so the
/// walk goes round the store faster than operations can add to it, and an
/// expired record gives back its space within about half its retention.
pub const SWEEP_PER_OP: usize = 2;

/// The state machine's scalars, stored atomically with the records they describe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// `max` of every applied stamp: the only clock expiry is judged by.
    pub clock_ms: u64,
    /// Records present in the tables (live, or expired and not yet swept).
    pub records: u64,
    /// Records removed by expiry over the state machine's life.
    pub expired_total: u64,
}

/// Operations one entry may carry: an acquisition's token is the entry's index
/// times this plus the operation's position, so positions must stay below it.
pub const MAX_OPS_PER_ENTRY: usize = 1024;

/// The fencing token of the operation at `position` in the entry at `index`:
/// unique to that acquisition, and larger than any token of an earlier entry
/// (including tokens granted before entries carried positions, which were the
/// bare index). Below 2^53, as API.md requires, for the first 2^43 entries.
pub fn token(index: u64, position: usize) -> u64 {
    index * MAX_OPS_PER_ENTRY as u64 + position as u64
}

/// Apply the entry at log `index`.
pub fn apply(tables: &mut impl Tables, meta: &mut Meta, index: u64, req: &Request) -> Response {
    meta.clock_ms = meta.clock_ms.max(req.stamp_ms);
    let mut sweep = tables.sweep();
    match &mut sweep {
        None => sweep_index(tables, meta),
        Some(walk) => sweep_records(tables, meta, walk, examined(&req.cmd)),
    }
    if req.cmd == Command::SweepRecords && sweep.is_none() {
        let walk = Sweep::default();
        tables.set_sweep(&walk);
        sweep = Some(walk);
    }
    let mut ctx = Ctx { tables, meta, token: index, indexed: sweep.is_none() };
    let outcomes = match &req.cmd {
        Command::Ops(ops) => ops
            .iter()
            .enumerate()
            .map(|(position, op)| {
                ctx.token = token(index, position);
                ctx.op(op)
            })
            .collect(),
        Command::Tick | Command::SweepRecords => Vec::new(),
        // Entries written before tokens carried positions are applied exactly
        // as they were then, so a replica replaying an old log answers what
        // the old code answered: every acquisition takes the bare index.
        Command::Op(op) => vec![ctx.op(op)],
        Command::Batch(ops) => ops.iter().map(|op| ctx.op(op)).collect(),
    };
    Response { outcomes }
}

/// Records the walk examines while applying `cmd`.
fn examined(cmd: &Command) -> usize {
    match cmd {
        Command::Ops(ops) | Command::Batch(ops) => SWEEP_PER_OP * (ops.len() + 1),
        Command::Op(_) => SWEEP_PER_OP * 2,
        Command::Tick | Command::SweepRecords => SWEEP_LIMIT,
    }
}

/// Expiry by the index earlier versions kept: the earliest due entries.
fn sweep_index(tables: &mut impl Tables, meta: &mut Meta) {
    for (at, id) in tables.expired(meta.clock_ms, SWEEP_LIMIT) {
        tables.unindex(at, &id);
        tables.remove(&id);
        meta.records -= 1;
        meta.expired_total += 1;
    }
}

/// Expiry by walking the records: the next `examine` after the cursor, the
/// expired among them removed. Every replica walks the same records at the
/// same entry, so states stay identical; an expired record is already absent
/// to every read, so the walk's pace bounds only how long its space is held.
/// Until the index of earlier versions is gone, each entry also removes up
/// to [`SWEEP_LIMIT`] of its entries.
fn sweep_records(tables: &mut impl Tables, meta: &mut Meta, walk: &mut Sweep, examine: usize) {
    let before = walk.clone();
    let mut seen = tables.records_after(walk.after.as_ref(), examine);
    for (id, at) in &seen {
        if *at <= meta.clock_ms {
            tables.remove(id);
            meta.records -= 1;
            meta.expired_total += 1;
        }
    }
    walk.after = if seen.len() < examine { None } else { seen.pop().map(|(id, _)| id) };
    if !walk.index_drained {
        let left = tables.expired(u64::MAX, SWEEP_LIMIT);
        for (at, id) in &left {
            tables.unindex(*at, id);
        }
        walk.index_drained = left.len() < SWEEP_LIMIT;
    }
    if *walk != before {
        tables.set_sweep(walk);
    }
}

struct Ctx<'a, T> {
    tables: &'a mut T,
    meta: &'a mut Meta,
    /// The token an acquisition by the operation being applied gets.
    token: u64,
    /// Expiry still goes by the index: writes keep it in step.
    indexed: bool,
}

impl<T: Tables> Ctx<'_, T> {
    fn clock(&self) -> u64 {
        self.meta.clock_ms
    }

    fn op(&mut self, op: &Op) -> Outcome {
        match op {
            Op::Claim { id, lease_ms, retention_ms, fingerprint, owner, claim_id } => {
                self.claim(id, *lease_ms, *retention_ms, fingerprint, owner, claim_id)
            }
            Op::Checkpoint { id, token, stage, data_json, lease_ms } => {
                self.checkpoint(id, *token, stage, data_json, *lease_ms)
            }
            Op::Complete { id, token, result_json, retention_ms } => {
                self.complete(id, *token, result_json, *retention_ms)
            }
            Op::Release { id, token } => self.release(id, *token),
            Op::Delete { id } => self.delete(id),
        }
    }

    /// The stored record and whether it is live. An expired record not yet swept
    /// is absent to every operation, but its index entry must still be moved.
    fn lookup(&self, id: &RecordId) -> (Option<StoredRecord>, Option<u64>) {
        let stored = self.tables.get(id);
        let old_expiry = stored.as_ref().map(|r| r.expires_at_ms);
        (stored.filter(|r| r.is_live(self.clock())), old_expiry)
    }

    fn store(&mut self, id: &RecordId, record: StoredRecord, old_expiry: Option<u64>) {
        if old_expiry.is_none() {
            self.meta.records += 1;
        }
        if self.indexed {
            if let Some(old) = old_expiry {
                self.tables.unindex(old, id);
            }
            self.tables.index(record.expires_at_ms, id);
        }
        self.tables.put(id, record);
    }

    fn forget(&mut self, id: &RecordId, record: &StoredRecord) {
        if self.indexed {
            self.tables.unindex(record.expires_at_ms, id);
        }
        self.tables.remove(id);
        self.meta.records -= 1;
    }

    fn claim(
        &mut self,
        id: &RecordId,
        lease_ms: u64,
        retention_ms: u64,
        fingerprint: &Option<String>,
        owner: &Option<String>,
        claim_id: &Option<String>,
    ) -> Outcome {
        let now = self.clock();
        let (live, old_expiry) = self.lookup(id);
        let Some(mut rec) = live else {
            let rec = StoredRecord {
                state: RecordState::InProgress,
                token: self.token,
                attempt: 1,
                claim_id: claim_id.clone(),
                owner: owner.clone(),
                fingerprint: fingerprint.clone(),
                checkpoint: None,
                result_json: None,
                created_at_ms: now,
                updated_at_ms: now,
                lease_expires_at_ms: Some(now.saturating_add(lease_ms)),
                expires_at_ms: now.saturating_add(retention_ms),
                retention_ms,
            };
            self.store(id, rec.clone(), old_expiry);
            return Outcome::Acquired { token: self.token, takeover: false, record: rec };
        };
        if rec.fingerprint.is_some() && rec.fingerprint != *fingerprint {
            return Outcome::FingerprintMismatch;
        }
        if rec.state == RecordState::Completed {
            return Outcome::Completed { record: rec };
        }
        if claim_id.is_some() && rec.claim_id == *claim_id {
            // A retry of the call that holds the key: the same answer again.
            return Outcome::Acquired { token: rec.token, takeover: rec.attempt > 1, record: rec };
        }
        let lease_end = rec.lease_expires_at_ms.unwrap_or(0);
        if now < lease_end {
            return Outcome::InProgress { record: rec, retry_after_ms: lease_end - now };
        }
        // Abandoned: take over, keeping the checkpoint so the new holder resumes.
        rec.token = self.token;
        rec.attempt += 1;
        rec.claim_id = claim_id.clone();
        rec.owner = owner.clone();
        if fingerprint.is_some() {
            rec.fingerprint = fingerprint.clone();
        }
        rec.updated_at_ms = now;
        rec.lease_expires_at_ms = Some(now.saturating_add(lease_ms));
        rec.expires_at_ms = now.saturating_add(retention_ms);
        rec.retention_ms = retention_ms;
        self.store(id, rec.clone(), old_expiry);
        Outcome::Acquired { token: self.token, takeover: true, record: rec }
    }

    /// The live, in-progress record held by `token`, or the outcome that refuses.
    fn held(&self, id: &RecordId, token: u64) -> Result<StoredRecord, Outcome> {
        match self.lookup(id).0 {
            None => Err(Outcome::NotFound),
            Some(rec) if rec.state == RecordState::Completed || rec.token != token => Err(Outcome::Fenced),
            Some(rec) => Ok(rec),
        }
    }

    fn checkpoint(
        &mut self,
        id: &RecordId,
        token: u64,
        stage: &str,
        data_json: &str,
        lease_ms: Option<u64>,
    ) -> Outcome {
        let mut rec = match self.held(id, token) {
            Ok(rec) => rec,
            Err(refused) => return refused,
        };
        let now = self.clock();
        rec.checkpoint =
            Some(StoredCheckpoint { stage: stage.to_owned(), data_json: data_json.to_owned(), at_ms: now });
        if let Some(lease_ms) = lease_ms {
            rec.lease_expires_at_ms = Some(now.saturating_add(lease_ms));
        }
        rec.updated_at_ms = now;
        let old_expiry = Some(rec.expires_at_ms);
        self.store(id, rec.clone(), old_expiry);
        Outcome::Done { record: rec }
    }

    fn complete(&mut self, id: &RecordId, token: u64, result_json: &str, retention_ms: Option<u64>) -> Outcome {
        if let Some(rec) = self.lookup(id).0 {
            if rec.state == RecordState::Completed && rec.token == token {
                // A repeated completion by the same holder changes nothing.
                return Outcome::Done { record: rec };
            }
        }
        let mut rec = match self.held(id, token) {
            Ok(rec) => rec,
            Err(refused) => return refused,
        };
        let now = self.clock();
        let old_expiry = Some(rec.expires_at_ms);
        rec.state = RecordState::Completed;
        rec.result_json = Some(result_json.to_owned());
        rec.lease_expires_at_ms = None;
        rec.updated_at_ms = now;
        rec.retention_ms = retention_ms.unwrap_or(rec.retention_ms);
        rec.expires_at_ms = now.saturating_add(rec.retention_ms);
        self.store(id, rec.clone(), old_expiry);
        Outcome::Done { record: rec }
    }

    fn release(&mut self, id: &RecordId, token: u64) -> Outcome {
        match self.held(id, token) {
            Ok(rec) => {
                self.forget(id, &rec);
                Outcome::Done { record: rec }
            }
            Err(refused) => refused,
        }
    }

    fn delete(&mut self, id: &RecordId) -> Outcome {
        match self.lookup(id).0 {
            Some(rec) => {
                self.forget(id, &rec);
                Outcome::Done { record: rec }
            }
            None => Outcome::NotFound,
        }
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "apply_fuzz.rs"]
mod fuzz;
