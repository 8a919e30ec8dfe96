//! The read model: what the API reads between applies, the state machine's
//! data (the [`Overlay`]) and the scalars published after each apply. Only
//! the state machine and its write-back write it; handlers share it through `App`.

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use tokio::sync::watch;

use super::codec::decode;
use super::layout;
use super::listing::{candidate, Filter};
use super::overlay::Overlay;
use crate::clock::Observed;
use crate::registry::{Meta, RecordId, StoredRecord};
use crate::types::{LogId, StorageError};

/// The state's keys and values in order.
#[cfg(test)]
pub(crate) type TreeBytes = super::overlay::Pairs;

/// One step of the abandoned-claims walk ([`StateView::abandoned_after`]).
#[derive(Debug, PartialEq)]
pub struct WalkStep {
    /// Abandoned claims among the entries seen.
    pub abandoned: u64,
    /// Records seen: fewer than asked for means the walk is over.
    pub seen: usize,
    /// The last record key seen, where the next step starts after.
    pub last: Option<Vec<u8>>,
}

pub struct StateView {
    overlay: RwLock<Overlay>,
    clock_ms: AtomicU64,
    /// `clock_ms` and when this process last applied stamped entries that
    /// left it there; `None` until it applies one (a restart knows no such
    /// moment, and a snapshot's clock is older than its install).
    observed: Mutex<Option<Observed>>,
    records: AtomicU64,
    expired_total: AtomicU64,
    /// The state machine finds expired records by walking them (`m.sweep`).
    walks: AtomicBool,
    applied: watch::Sender<u64>,
}

impl StateView {
    pub(super) fn new(tree: sled::Tree, meta: &Meta, applied: Option<LogId>) -> Self {
        let walks = AtomicBool::new(tree.contains_key(layout::SWEEP).unwrap_or(false));
        let view = StateView {
            overlay: RwLock::new(Overlay::new(tree)),
            clock_ms: AtomicU64::new(meta.clock_ms),
            observed: Mutex::new(None),
            records: AtomicU64::new(0),
            expired_total: AtomicU64::new(0),
            walks,
            applied: watch::Sender::new(0),
        };
        view.publish(meta, applied);
        view
    }

    pub(super) fn read_overlay(&self) -> RwLockReadGuard<'_, Overlay> {
        self.overlay.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write_overlay(&self) -> RwLockWriteGuard<'_, Overlay> {
        self.overlay.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The replicated clock as of the last applied entry.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms.load(Ordering::Acquire)
    }

    /// The replicated clock after the latest apply, and when that was.
    ///
    /// The latest apply, not the first to reach the value: while the clock
    /// stands still (a leader stamping behind it), every write still grants
    /// leases from that value, so time must be counted from the last of them.
    pub fn observed(&self) -> Option<Observed> {
        *self.observed.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    pub fn expired_total(&self) -> u64 {
        self.expired_total.load(Ordering::Relaxed)
    }

    /// Whether expiry goes by walking the records (`Command::SweepRecords`
    /// applied), no longer by an index.
    pub fn sweeps_records(&self) -> bool {
        self.walks.load(Ordering::Acquire)
    }

    pub(super) fn set_sweeps_records(&self, walks: bool) {
        self.walks.store(walks, Ordering::Release);
    }

    /// Wakes on every applied entry; the value is the applied index.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// The record if it is live by the replicated clock: an expired record not
    /// yet swept is already absent.
    pub fn get(&self, id: &RecordId) -> Result<Option<StoredRecord>, StorageError> {
        let clock = self.clock_ms();
        let bytes = self.read_overlay().get(None, &layout::record_key(id))?;
        let rec: Option<StoredRecord> = bytes.map(|v| decode(&v)).transpose()?;
        Ok(rec.filter(|r| r.is_live(clock)))
    }

    /// Up to `limit` records after the record key `after` (or from the
    /// first), counting the abandoned claims among them: one step of a walk
    /// over every record (`signals`' abandoned claims), by the rule of an
    /// `abandoned=true` listing, which decodes only claims in progress whole.
    pub fn abandoned_after(&self, after: Option<&[u8]>, limit: usize) -> Result<WalkStep, StorageError> {
        let start = after.map_or(Bound::Included(vec![layout::RECORD_PREFIX]), |k| Bound::Excluded(k.to_vec()));
        let range = (start, Bound::Excluded(vec![layout::RECORD_PREFIX + 1]));
        let clock = self.clock_ms();
        let records = self.read_overlay().scan(None, range, limit)?;
        let wanted = Filter { abandoned: true, ..Filter::default() };
        let mut abandoned = 0;
        for (_, value) in &records {
            abandoned += u64::from(candidate(value, &wanted, clock)?.is_some());
        }
        Ok(WalkStep { abandoned, seen: records.len(), last: records.into_iter().next_back().map(|(k, _)| k) })
    }

    /// Every key and value of the state, for byte-for-byte comparisons in tests.
    #[cfg(test)]
    pub(crate) fn dump(&self) -> TreeBytes {
        let all = (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded);
        self.read_overlay().scan(None, all, usize::MAX).expect("readable state")
    }

    /// Note that stamped entries were applied just now, leaving the clock at `clock_ms`.
    pub(super) fn observe(&self, clock_ms: u64) {
        *self.observed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Observed { clock_ms, at: Instant::now() });
    }

    pub(super) fn publish(&self, meta: &Meta, applied: Option<LogId>) {
        self.clock_ms.store(meta.clock_ms, Ordering::Release);
        self.records.store(meta.records, Ordering::Relaxed);
        self.expired_total.store(meta.expired_total, Ordering::Relaxed);
        self.applied.send_replace(applied.map_or(0, |l| l.index));
    }
}
