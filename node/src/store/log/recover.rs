//! Opening the log: read every segment in order, check every checksum, and
//! replay each record into the in-memory index through the same
//! `LogState::apply` a live change takes.
//!
//! Damage is judged by where it is. Only the last segment can have been cut
//! by a crash (the writer syncs a segment before the next one exists), so its
//! first bad or zero header is the torn tail: replay stops there, and every
//! byte after it is zeroed and synced before anything new is written, so an
//! unacknowledged record left behind can never line up with a later one and
//! come back. Anywhere else, a bad record is corruption and opening fails
//! with the file and offset: nothing is ever skipped silently.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

use super::format::{self, Frame, Header, Kind};
use super::index::{Checkpoint, Loc};
use super::prepare::TMP_SUFFIX;
use super::segment::{open_rw, write_zeros};
use super::state::{Change, GroupId, LogState};
use super::writer::Resume;
use super::LogError;

pub struct Recovered {
    pub state: LogState,
    pub resume: Resume,
}

/// The writer's bookkeeping, rebuilt from the records as they are replayed.
#[derive(Default)]
struct Books {
    uses: BTreeMap<u64, BTreeMap<GroupId, u64>>,
    purged: BTreeMap<GroupId, u64>,
}

impl Books {
    fn purged(&mut self, group: GroupId, index: u64) {
        let p = self.purged.entry(group).or_default();
        *p = (*p).max(index);
    }
}

/// Replay the log in `dir` (which holds a valid `FORMAT` marker).
pub fn recover(dir: &Path, segment_bytes: u64, cache_bytes: u64) -> Result<Recovered, LogError> {
    let mut seqs = Vec::new();
    for item in fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(TMP_SUFFIX) {
            fs::remove_file(item.path())?;
        } else if let Some(seq) = format::parse_segment_name(&name) {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    let mut state = LogState::new(dir.to_path_buf(), segment_bytes, cache_bytes);
    if let Some(gap) = seqs.windows(2).find(|w| w[1] != w[0] + 1) {
        let reason = format!("segment missing: {} is followed by {}", format::segment_name(gap[0]), gap[1]);
        return Err(LogError::Corrupt { file: state.segment_path(gap[0] + 1), offset: 0, reason });
    }
    let mut books = Books::default();
    // The last segment that holds anything, with its bytes and where its records end.
    let mut tail: Option<(u64, Vec<u8>, u64)> = None;
    for (i, &seq) in seqs.iter().enumerate() {
        let path = state.segment_path(seq);
        let bytes = fs::read(&path)?;
        let last = i + 1 == seqs.len();
        match scan(&mut state, &mut books, seq, &path, &bytes, last)? {
            Some(end) => tail = Some((seq, bytes, end)),
            None => {
                tracing::warn!(segment = %path.display(), "removing a last raft log segment that was never completed");
                fs::remove_file(&path)?;
            }
        }
    }
    state.check_replayed().map_err(|reason| LogError::Corrupt {
        file: state.segment_path(seqs.first().copied().unwrap_or_default()),
        offset: 0,
        reason,
    })?;
    for &seq in books.uses.keys() {
        state.register(seq, Arc::new(File::open(state.segment_path(seq))?));
    }
    let active = match tail {
        Some((seq, bytes, end)) => {
            let path = state.segment_path(seq);
            let file = Arc::new(open_rw(&path)?);
            zero_stale(&file, &path, &bytes, end)?;
            state.register(seq, file.clone());
            let capacity = bytes.len() as u64;
            state.resume(seq, Some((end, capacity)));
            Some((seq, file, end, capacity))
        }
        None => {
            state.resume(seqs.first().map_or(0, |s| s.saturating_sub(1)), None);
            None
        }
    };
    let (offset, capacity) = active.as_ref().map_or((0, 0), |(_, _, end, capacity)| (*end, *capacity));
    let active = active.map(|(seq, file, _, _)| (seq, file));
    Ok(Recovered { state, resume: Resume { active, offset, capacity, uses: books.uses, purged: books.purged } })
}

/// Replay one segment; the offset its records end at, or None for a last
/// segment that never got its checkpoint (so nothing in it was acknowledged).
fn scan(
    state: &mut LogState,
    books: &mut Books,
    seq: u64,
    path: &Path,
    bytes: &[u8],
    last: bool,
) -> Result<Option<u64>, LogError> {
    let corrupt =
        |offset: usize, reason: String| LogError::Corrupt { file: path.to_path_buf(), offset: offset as u64, reason };
    match format::parse_segment_header(bytes) {
        Header::Valid { seq: s } if s == seq => {}
        Header::Valid { seq: s } => return Err(corrupt(0, format!("the header names segment {s}"))),
        Header::UnknownVersion(v) => {
            return Err(corrupt(0, format!("segment format version {v} is unknown to this idem-node")));
        }
        Header::Zero | Header::Damaged(_) if last => return Ok(None),
        Header::Zero => return Err(corrupt(0, "the header is zeros but a later segment exists".into())),
        Header::Damaged(reason) => return Err(corrupt(0, reason.into())),
    }
    let mut off = format::SEGMENT_HEADER_LEN;
    match format::parse_record(bytes.get(off..).unwrap_or_default()) {
        Frame::Record { kind: Kind::Checkpoint, payload, len, .. } => {
            let checkpoint: Vec<Checkpoint> =
                crate::codec::decode(payload).map_err(|e| corrupt(off, format!("checkpoint: {e}")))?;
            for c in &checkpoint {
                if let Some(p) = c.meta.purged {
                    books.purged(c.group, p.index);
                }
            }
            state.apply_checkpoint(checkpoint);
            off += len;
        }
        Frame::Record { kind, .. } => return Err(corrupt(off, format!("the segment starts with a {kind:?} record"))),
        _ if last => return Ok(None),
        Frame::End => return Err(corrupt(off, "the segment has no checkpoint".into())),
        Frame::Damaged(reason) => return Err(corrupt(off, reason)),
    }
    books.uses.entry(seq).or_default();
    loop {
        match format::parse_record(bytes.get(off..).unwrap_or_default()) {
            Frame::End => break,
            Frame::Damaged(reason) if last => {
                tracing::warn!(segment = %path.display(), offset = off, %reason, "raft log torn tail: replay stops here");
                break;
            }
            Frame::Damaged(reason) => return Err(corrupt(off, reason)),
            Frame::Record { kind, group, payload, len } => {
                let change = Change::decode(kind, payload).map_err(|r| corrupt(off, r))?;
                match &change {
                    Change::Entry(e) => {
                        let max = books.uses.entry(seq).or_default().entry(group).or_default();
                        *max = (*max).max(e.log_id.index);
                    }
                    Change::Purge(l) => books.purged(group, l.index),
                    _ => {}
                }
                let loc = Loc { seq, offset: off as u64, len: len as u32 };
                state.apply(group, change, loc).map_err(|r| corrupt(off, r))?;
                off += len;
            }
        }
    }
    Ok(Some(off as u64))
}

/// Zero and sync everything after the last record of the segment new records
/// go to, through its last non-zero byte: the remains of a torn write.
fn zero_stale(file: &File, path: &Path, bytes: &[u8], end: u64) -> Result<(), LogError> {
    let after = bytes.get(end as usize..).unwrap_or_default();
    if let Some(last) = after.iter().rposition(|b| *b != 0) {
        let len = last as u64 + 1;
        tracing::warn!(segment = %path.display(), offset = end, bytes = len, "zeroing the raft log's torn tail");
        write_zeros(file, end, len)?;
        file.sync_data()?;
    }
    Ok(())
}
