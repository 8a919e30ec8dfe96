//! File-level helpers shared by the writer, the preparer, recovery and reads:
//! zero-filling, directory syncs, and reading one entry back from a segment.
//! All of it blocks: callers are the log's own threads, `open`, or
//! `spawn_blocking`, never an async task directly.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::format::{self, Frame, Kind};
use super::index::Loc;
use super::LogError;
use crate::types::{Entry, LogId};

static ZEROS: [u8; 1 << 16] = [0; 1 << 16];

/// Overwrite `len` bytes at `offset` with zeros (not made durable here).
pub fn write_zeros(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let mut done = 0;
    while done < len {
        let n = (len - done).min(ZEROS.len() as u64);
        file.write_all_at(&ZEROS[..n as usize], offset + done)?;
        done += n;
    }
    Ok(())
}

/// Make a rename or a new name in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

fn corrupt(path: &Path, loc: Loc, reason: String) -> LogError {
    LogError::Corrupt { file: path.to_path_buf(), offset: loc.offset, reason }
}

/// Read entry `log_id` back from where the index says it lies, checking its
/// checksum and that it is the entry asked for.
pub fn read_entry(file: &File, path: &Path, log_id: LogId, loc: Loc) -> Result<Entry, LogError> {
    let mut buf = vec![0u8; loc.len as usize];
    file.read_exact_at(&mut buf, loc.offset)?;
    match format::parse_record(&buf) {
        Frame::Record { kind: Kind::Entry, payload, .. } => {
            let entry: Entry = crate::codec::decode(payload).map_err(|e| corrupt(path, loc, e.to_string()))?;
            if entry.log_id != log_id {
                return Err(corrupt(path, loc, format!("holds entry {} where {log_id} was written", entry.log_id)));
            }
            Ok(entry)
        }
        Frame::Record { kind, .. } => Err(corrupt(path, loc, format!("a {kind:?} record where entry {log_id} was"))),
        Frame::End => Err(corrupt(path, loc, format!("zeros where entry {log_id} was written"))),
        Frame::Damaged(reason) => Err(corrupt(path, loc, reason)),
    }
}
