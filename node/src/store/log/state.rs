//! The whole log in memory, behind one mutex: every group's index, the cursor
//! that decides where the next record goes, the segment files readers use,
//! and how far the writer has made the stream durable. A change is placed and
//! applied here and handed to the writer under the same lock, so records reach
//! disk in exactly the order memory saw them. Nothing here does file I/O.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::format::{self, Kind};
use super::index::{Checkpoint, Found, Group, GroupMeta, Loc, Pos};
use super::LogError;
use crate::types::{Entry, LogId, Vote};

/// Which Raft group a record belongs to. idem runs one group, 0; the format and
/// the index are per group so several could later share one log and one fsync.
pub type GroupId = u64;

/// The first segment a log ever has is at most this big: a new node then
/// zero-fills only a little before its first vote can be made durable.
const FIRST_SEGMENT_BYTES: u64 = 1 << 20;

/// The size segment `seq` is prepared with, given the configured size. The
/// cursor and the segment pipeline both follow it, so placement and files agree.
pub fn segment_size(seq: u64, segment_bytes: u64) -> u64 {
    if seq == 1 {
        segment_bytes.min(FIRST_SEGMENT_BYTES)
    } else {
        segment_bytes
    }
}

/// One record's meaning (a checkpoint aside, which is log-wide).
#[derive(Debug)]
pub enum Change {
    Entry(Box<Entry>),
    Vote(Vote),
    Committed(Option<LogId>),
    Truncate(LogId),
    Purge(LogId),
}

impl Change {
    fn kind(&self) -> Kind {
        match self {
            Change::Entry(_) => Kind::Entry,
            Change::Vote(_) => Kind::Vote,
            Change::Committed(_) => Kind::Committed,
            Change::Truncate(_) => Kind::Truncate,
            Change::Purge(_) => Kind::Purge,
        }
    }

    /// The change with its payload bytes, encoded before the lock is taken.
    pub fn encoded(self) -> Result<(Change, Vec<u8>), LogError> {
        let payload = match &self {
            Change::Entry(e) => crate::codec::encode(e)?,
            Change::Vote(v) => crate::codec::encode(v)?,
            Change::Committed(c) => crate::codec::encode(c)?,
            Change::Truncate(l) | Change::Purge(l) => crate::codec::encode(l)?,
        };
        Ok((self, payload))
    }

    pub fn decode(kind: Kind, payload: &[u8]) -> Result<Change, String> {
        let e = |e: bincode::error::DecodeError| e.to_string();
        Ok(match kind {
            Kind::Entry => Change::Entry(crate::codec::decode(payload).map_err(e)?),
            Kind::Vote => Change::Vote(crate::codec::decode(payload).map_err(e)?),
            Kind::Committed => Change::Committed(crate::codec::decode(payload).map_err(e)?),
            Kind::Truncate => Change::Truncate(crate::codec::decode(payload).map_err(e)?),
            Kind::Purge => Change::Purge(crate::codec::decode(payload).map_err(e)?),
            Kind::Checkpoint => return Err("a checkpoint where only a segment may start with one".into()),
        })
    }
}

/// What the writer must know of a record beyond its bytes.
#[derive(Debug, Clone, Copy)]
pub enum Effect {
    /// It holds entry `index` of `group`: the segment is needed until that is purged.
    Entry {
        group: GroupId,
        index: u64,
    },
    /// It purges `group` up to `index`: segments may be deleted once it is durable.
    Purge {
        group: GroupId,
        index: u64,
    },
    Other,
}

/// One step for the writer, in stream order.
#[derive(Debug)]
pub enum Op {
    /// Start segment `seq` and write `head` (its header and checkpoint) at offset 0.
    Open { seq: u64, head: Vec<u8> },
    /// Write one record at `at`, right where the previous op ended.
    Write { at: Pos, bytes: Vec<u8>, effect: Effect },
}

/// An entry as a reader gets it: ready, or to be read from a segment file.
pub enum Fetch {
    Ready(Entry),
    Read { file: Arc<File>, path: PathBuf, log_id: LogId, loc: Loc },
}

/// Where the next record goes.
struct Cursor {
    seq: u64,
    offset: u64,
    capacity: u64,
    /// False until a segment is open (a new log, or a tail segment dropped on open).
    open: bool,
    /// The open segment holds only its header and checkpoint: it takes any
    /// record, even one larger than a segment (the file then grows).
    fresh: bool,
}

pub struct LogState {
    dir: PathBuf,
    groups: BTreeMap<GroupId, Group>,
    cursor: Cursor,
    /// Everything before this point of the stream is on disk.
    durable: Pos,
    cache_limit: u64,
    segment_bytes: u64,
    /// Every live segment, open for positioned reads (an unlinked one stays readable).
    files: BTreeMap<u64, Arc<File>>,
}

/// The state's lock; a panic that poisoned it may have left it half-changed, so
/// that is an error rather than something to read through.
pub fn lock(state: &Mutex<LogState>) -> Result<MutexGuard<'_, LogState>, LogError> {
    state.lock().map_err(|_| LogError::Io(io::Error::other("raft log state poisoned by an earlier panic")))
}

impl LogState {
    /// An empty log over `dir`; replay fills it, then [`LogState::resume`] sets the cursor.
    pub fn new(dir: PathBuf, segment_bytes: u64, cache_limit: u64) -> Self {
        LogState {
            dir,
            groups: BTreeMap::new(),
            cursor: Cursor { seq: 0, offset: 0, capacity: 0, open: false, fresh: false },
            // Replayed entries are all on disk, so the cache may evict as replay goes.
            durable: Pos { seq: u64::MAX, offset: u64::MAX },
            cache_limit,
            segment_bytes,
            files: BTreeMap::new(),
        }
    }

    /// Continue after segment `seq`: at `offset` inside it (whose file is
    /// `capacity` bytes), or, with no tail, in a new segment `seq + 1`.
    pub fn resume(&mut self, seq: u64, tail: Option<(u64, u64)>) {
        self.cursor = match tail {
            Some((offset, capacity)) => Cursor { seq, offset, capacity, open: true, fresh: false },
            None => Cursor { seq, offset: 0, capacity: 0, open: false, fresh: false },
        };
        self.durable = Pos { seq, offset: tail.map_or(u64::MAX, |(offset, _)| offset) };
    }

    /// The number the next segment opened will have.
    pub fn next_seq(&self) -> u64 {
        self.cursor.seq + 1
    }

    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(&id)
    }

    pub fn meta(&self, id: GroupId) -> GroupMeta {
        self.groups.get(&id).map(|g| g.meta.clone()).unwrap_or_default()
    }

    /// Apply one record's meaning, found at `loc`: the one path for a live
    /// change and for the replay of its record, so they cannot disagree.
    pub fn apply(&mut self, group: GroupId, change: Change, loc: Loc) -> Result<(), String> {
        let g = self.groups.entry(group).or_default();
        match change {
            Change::Entry(e) => g.push(e.log_id, loc, e)?,
            Change::Vote(v) => g.meta.vote = Some(v),
            Change::Committed(c) => g.meta.committed = c,
            Change::Truncate(l) => g.truncate(l.index),
            Change::Purge(l) => g.purge(l),
        }
        self.evict();
        Ok(())
    }

    pub fn apply_checkpoint(&mut self, checkpoint: Vec<Checkpoint>) {
        for c in checkpoint {
            self.groups.entry(c.group).or_default().apply_checkpoint(c);
        }
    }

    /// End replay: every group's entries must start right after its purged id.
    pub fn check_replayed(&mut self) -> Result<(), String> {
        for (id, g) in &mut self.groups {
            g.check_replayed().map_err(|e| format!("group {id}: {e}"))?;
        }
        Ok(())
    }

    /// Place `changes` of `group` in the stream and apply them; the ops write them.
    /// Entries are checked for holes first, so a refused append changes nothing.
    /// An entry at or below the purged id is dropped: the log already says it
    /// is gone (openraft appends one only in its storage suite).
    pub fn change(&mut self, group: GroupId, mut changes: Vec<(Change, Vec<u8>)>) -> Result<Vec<Op>, LogError> {
        let g = self.groups.entry(group).or_default();
        if let Some(purged) = g.meta.purged {
            changes.retain(|(c, _)| !matches!(c, Change::Entry(e) if e.log_id.index <= purged.index));
        }
        let mut next: Option<u64> = None;
        for (change, payload) in &changes {
            if payload.len() > format::MAX_PAYLOAD_LEN {
                return Err(LogError::Order(format!(
                    "a {:?} record of {} bytes is too large",
                    change.kind(),
                    payload.len()
                )));
            }
            if let Change::Entry(e) = change {
                match next {
                    None => g.expect_next(e.log_id.index).map_err(LogError::Order)?,
                    Some(n) if n != e.log_id.index => {
                        return Err(LogError::Order(format!("appended entries skip from {n} to {}", e.log_id.index)));
                    }
                    Some(_) => {}
                }
                next = Some(e.log_id.index + 1);
            }
        }
        let mut ops = Vec::with_capacity(changes.len() + 1);
        for (change, payload) in changes {
            let effect = match &change {
                Change::Entry(e) => Effect::Entry { group, index: e.log_id.index },
                Change::Purge(l) => Effect::Purge { group, index: l.index },
                _ => Effect::Other,
            };
            let loc = self.place(&mut ops, format::record(change.kind(), group, &payload), effect)?;
            self.apply(group, change, loc).map_err(LogError::Order)?;
        }
        Ok(ops)
    }

    /// Decide where `bytes` go, opening the next segment when they do not fit.
    fn place(&mut self, ops: &mut Vec<Op>, bytes: Vec<u8>, effect: Effect) -> Result<Loc, LogError> {
        let len = bytes.len() as u64;
        let c = &self.cursor;
        if !c.open || (!c.fresh && c.offset + len > c.capacity) {
            let seq = c.seq + 1;
            let checkpoint: Vec<Checkpoint> = self.groups.iter().map(|(id, g)| g.checkpoint(*id)).collect();
            let mut head = format::segment_header(seq).to_vec();
            head.extend(format::record(Kind::Checkpoint, 0, &crate::codec::encode(&checkpoint)?));
            let offset = head.len() as u64;
            ops.push(Op::Open { seq, head });
            let capacity = segment_size(seq, self.segment_bytes);
            self.cursor = Cursor { seq, offset, capacity, open: true, fresh: true };
        }
        let c = &mut self.cursor;
        let loc = Loc { seq: c.seq, offset: c.offset, len: bytes.len() as u32 };
        ops.push(Op::Write { at: Pos { seq: c.seq, offset: c.offset }, bytes, effect });
        c.offset += len;
        c.fresh = false;
        Ok(loc)
    }

    /// Drop the oldest cached entries that are on disk until the cache fits.
    fn evict(&mut self) {
        let mut total: u64 = self.groups.values().map(Group::cached_bytes).sum();
        for g in self.groups.values_mut() {
            while total > self.cache_limit {
                let before = g.cached_bytes();
                if !g.evict_one(self.durable) {
                    break;
                }
                total -= before - g.cached_bytes();
            }
        }
    }

    /// The writer made the stream durable up to `pos`: those entries may leave the cache.
    pub fn mark_durable(&mut self, pos: Pos) {
        self.durable = pos;
        self.evict();
    }

    pub fn register(&mut self, seq: u64, file: Arc<File>) {
        self.files.insert(seq, file);
    }

    pub fn unregister(&mut self, seq: u64) {
        self.files.remove(&seq);
    }

    pub fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format::segment_name(seq))
    }

    /// The live entries of `group` with index in `start..end`, cached or to read.
    pub fn fetch(&self, group: GroupId, start: u64, end: Option<u64>) -> Result<Vec<Fetch>, LogError> {
        let Some(g) = self.groups.get(&group) else { return Ok(Vec::new()) };
        g.find(start, end)
            .into_iter()
            .map(|found| match found {
                Found::Cached(e) => Ok(Fetch::Ready(e)),
                Found::OnDisk(log_id, loc) => match self.files.get(&loc.seq) {
                    Some(file) => Ok(Fetch::Read { file: file.clone(), path: self.segment_path(loc.seq), log_id, loc }),
                    None => Err(LogError::Io(io::Error::other(format!(
                        "entry {log_id} lies in segment {} which is not open",
                        loc.seq
                    )))),
                },
            })
            .collect()
    }
}
