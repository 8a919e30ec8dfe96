//! The snapshot file: a bincode header (applied log id, membership, registry
//! meta) followed by the state machine's records and expiry index as
//! length-prefixed key/value pairs. Written and read as streams, so a snapshot
//! of millions of records never sits in memory whole.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout;
use crate::registry::Meta;
use crate::types::{LogId, SnapshotMeta, StoredMembership};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub applied: Option<LogId>,
    pub membership: StoredMembership,
    pub meta: Meta,
}

/// The current snapshot as remembered in the root tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub meta: SnapshotMeta,
    pub file: String,
}

const BATCH: usize = 512;
const FLUSH_EVERY: usize = 64 * BATCH;

fn bincode_io<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Stream `header` and every record and index entry of `tree` into `path`,
/// through a temporary file renamed into place once synced.
pub fn write(tree: &sled::Tree, header: &Header, path: &Path) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::new(File::create(&tmp)?);
    crate::codec::encode_into(header, &mut out).map_err(bincode_io)?;
    for prefix in [layout::RECORD_PREFIX, layout::EXPIRY_PREFIX] {
        for kv in tree.scan_prefix([prefix]) {
            let (k, v) = kv.map_err(io::Error::other)?;
            for part in [&k[..], &v[..]] {
                out.write_all(&(part.len() as u32).to_le_bytes())?;
                out.write_all(part)?;
            }
        }
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn read_part(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
    input.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// Load a snapshot from the start of `file` into the empty `tree` in bounded
/// batches, and keep a durable copy of it at `path`; returns its header.
pub fn install(file: &mut File, tree: &sled::Tree, path: &Path) -> io::Result<Header> {
    file.seek(SeekFrom::Start(0))?;
    let tmp = path.with_extension("tmp");
    let mut copy = File::create(&tmp)?;
    io::copy(file, &mut copy)?;
    copy.sync_all()?;
    std::fs::rename(&tmp, path)?;
    file.seek(SeekFrom::Start(0))?;
    let mut input = BufReader::new(file);
    let header: Header = crate::codec::decode_from(&mut input).map_err(bincode_io)?;
    let mut batch = sled::Batch::default();
    let mut n = 0;
    while let Some(k) = read_part(&mut input)? {
        let v = read_part(&mut input)?.ok_or_else(|| bincode_io("snapshot ends inside a pair"))?;
        batch.insert(k, v);
        n += 1;
        if n % BATCH == 0 {
            tree.apply_batch(std::mem::take(&mut batch)).map_err(io::Error::other)?;
        }
        if n % FLUSH_EVERY == 0 {
            // Unflushed sled pages stay in memory; flushing as we go bounds it.
            tree.flush().map_err(io::Error::other)?;
        }
    }
    tree.apply_batch(batch).map_err(io::Error::other)?;
    Ok(header)
}
