//! One Raft group's view of the log in memory: its vote, committed and purged
//! ids, where each live entry sits on disk, and the newest entries themselves
//! (the cache). It never touches a file; the same methods serve a live change
//! and the replay of its record on open, so both always agree.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::state::GroupId;
use crate::types::{Entry, LogId, Vote};

/// A place in the log's byte stream: segment `seq`, byte `offset`.
/// Stream order is `(seq, offset)` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub seq: u64,
    pub offset: u64,
}

/// Where a record lies: its first byte and its length with the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub seq: u64,
    pub offset: u64,
    pub len: u32,
}

impl Loc {
    pub fn end(&self) -> Pos {
        Pos { seq: self.seq, offset: self.offset + u64::from(self.len) }
    }
}

/// What a group keeps besides entries; also the per-group part of a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMeta {
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
    pub purged: Option<LogId>,
}

struct Slot {
    log_id: LogId,
    loc: Loc,
    /// Present for the newest entries (the cache); boxed so an evicted slot stays small.
    entry: Option<Box<Entry>>,
}

/// An entry as a read finds it: in memory, or at a place on disk.
pub enum Found {
    Cached(Entry),
    OnDisk(LogId, Loc),
}

#[derive(Default)]
pub struct Group {
    pub meta: GroupMeta,
    /// Live entries in index order, without holes.
    slots: VecDeque<Slot>,
    /// Every slot from this index on holds its entry; those before do not.
    cached_from: u64,
    cached_bytes: u64,
    /// The last index a checkpoint reported when replay held no entries of
    /// this group: entries up to it lay in segments deleted after a purge that
    /// must cover them (`check_replayed` makes sure); the next one follows it.
    floor: Option<u64>,
}

/// One group's part of a checkpoint record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub group: GroupId,
    pub meta: GroupMeta,
    pub last: Option<LogId>,
}

impl Group {
    fn first_index(&self) -> Option<u64> {
        self.slots.front().map(|s| s.log_id.index)
    }

    fn position(&self, index: u64) -> Option<usize> {
        let first = self.first_index()?;
        let at = usize::try_from(index.checked_sub(first)?).ok()?;
        (at < self.slots.len()).then_some(at)
    }

    /// The last entry's id, or the purged id when every entry is gone.
    pub fn last_log_id(&self) -> Option<LogId> {
        self.slots.back().map(|s| s.log_id).or(self.meta.purged)
    }

    /// The only index the next entry may have, if the group has any history.
    pub fn expect_next(&self, index: u64) -> Result<(), String> {
        let purged = self.meta.purged.map(|p| p.index);
        match self.slots.back().map(|s| s.log_id.index).or(self.floor.max(purged)) {
            Some(last) if last + 1 != index => {
                Err(format!("entry {index} does not follow the last index {last}: the log would have a hole"))
            }
            _ => Ok(()),
        }
    }

    /// Add the next entry. It is cached: the newest entries always are.
    pub fn push(&mut self, log_id: LogId, loc: Loc, entry: Box<Entry>) -> Result<(), String> {
        self.expect_next(log_id.index)?;
        if self.slots.is_empty() {
            self.cached_from = log_id.index;
        }
        self.cached_bytes += u64::from(loc.len);
        self.slots.push_back(Slot { log_id, loc, entry: Some(entry) });
        Ok(())
    }

    /// This group's part of a checkpoint: its ids and its last log id.
    pub fn checkpoint(&self, group: GroupId) -> Checkpoint {
        Checkpoint { group, meta: self.meta.clone(), last: self.last_log_id() }
    }

    /// Take a checkpoint's ids, as replay meets it at the head of a segment.
    pub fn apply_checkpoint(&mut self, c: Checkpoint) {
        self.meta.vote = c.meta.vote;
        self.meta.committed = c.meta.committed;
        if let Some(purged) = c.meta.purged {
            self.purge(purged);
        }
        let last = c.last.map(|l| l.index);
        if self.slots.is_empty() && last > self.meta.purged.map(|p| p.index) {
            self.floor = last;
        }
    }

    /// After replay: no entry may be missing. Entries older than the first
    /// segment must have been purged, and the rest start right after the
    /// purged id, as a live log's always do.
    pub fn check_replayed(&mut self) -> Result<(), String> {
        if let Some(floor) = self.floor.take() {
            return Err(format!("entries up to index {floor} are in no segment, yet were never purged"));
        }
        match (self.meta.purged, self.first_index()) {
            (Some(p), Some(first)) if first != p.index + 1 => {
                Err(format!("entries {}..{first} are missing after the purged id {p}", p.index + 1))
            }
            _ => Ok(()),
        }
    }

    /// Drop entries from `index` on.
    pub fn truncate(&mut self, index: u64) {
        while self.slots.back().is_some_and(|s| s.log_id.index >= index) {
            if let Some(slot) = self.slots.pop_back() {
                self.forget(&slot);
            }
        }
        self.cached_from = self.cached_from.min(index);
        if self.floor.is_some_and(|f| f >= index) {
            self.floor = index.checked_sub(1);
        }
    }

    /// Drop entries up to `log_id`, and remember it as purged (never moving back).
    pub fn purge(&mut self, log_id: LogId) {
        if self.meta.purged.is_some_and(|p| p.index >= log_id.index) {
            return;
        }
        self.meta.purged = Some(log_id);
        if self.floor.is_some_and(|f| f <= log_id.index) {
            self.floor = None;
        }
        while self.slots.front().is_some_and(|s| s.log_id.index <= log_id.index) {
            if let Some(slot) = self.slots.pop_front() {
                self.forget(&slot);
            }
        }
        self.cached_from = self.cached_from.max(log_id.index + 1);
    }

    fn forget(&mut self, slot: &Slot) {
        if slot.entry.is_some() {
            self.cached_bytes -= u64::from(slot.loc.len);
        }
    }

    pub fn cached_bytes(&self) -> u64 {
        self.cached_bytes
    }

    /// Drop the oldest cached entry if it is on disk up to `durable`; false when none can go.
    pub fn evict_one(&mut self, durable: Pos) -> bool {
        let Some(at) = self.position(self.cached_from) else { return false };
        let slot = &mut self.slots[at];
        if slot.loc.end() > durable || slot.entry.is_none() {
            return false;
        }
        slot.entry = None;
        self.cached_bytes -= u64::from(slot.loc.len);
        self.cached_from += 1;
        true
    }

    /// The live entries with index in `start..end` (`end` None: to the last).
    pub fn find(&self, start: u64, end: Option<u64>) -> Vec<Found> {
        let (Some(first), Some(last)) = (self.first_index(), self.slots.back().map(|s| s.log_id.index)) else {
            return Vec::new();
        };
        let from = start.max(first);
        let stop = end.map_or(last + 1, |e| e.min(last + 1));
        if from >= stop {
            return Vec::new();
        }
        self.slots
            .range((from - first) as usize..(stop - first) as usize)
            .map(|s| match &s.entry {
                Some(e) => Found::Cached(Entry::clone(e)),
                None => Found::OnDisk(s.log_id, s.loc),
            })
            .collect()
    }
}
