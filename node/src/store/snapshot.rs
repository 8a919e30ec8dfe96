//! The snapshot file: a bincode header (applied log id, membership, registry
//! meta) followed by the state machine's records, its expiry index, and once
//! the cluster sweeps by walking the records, the sweep's place (`m.sweep`),
//! as length-prefixed key/value pairs. Written and read as streams, so a
//! snapshot of millions of records never sits in memory whole. Until the
//! switch the file is exactly what earlier versions write and read; after
//! it, an earlier version refuses it (a pair it does not know), loudly.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout;
use super::writeback::stopped;
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

/// Read buffer of a snapshot load: big reads, few syscalls.
const READ_BUF: usize = 1 << 20;

fn bincode_io<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Pairs written or loaded between two looks at whether the node is stopping.
const STOP_CHECK_EVERY: usize = 4096;

/// `Interrupted` when the `pairs`-th pair is one to look at and the node is stopping.
fn give_up_if_stopping(pairs: usize, stopping: &impl Fn() -> bool) -> io::Result<()> {
    if pairs.is_multiple_of(STOP_CHECK_EVERY) && stopping() {
        return Err(stopped());
    }
    Ok(())
}

/// Stream `header` and every record and expiry entry of `tree` into `path`,
/// through a temporary file renamed into place once synced. Gives up with
/// `Interrupted`, leaving no file, once `stopping` says so: a build of
/// millions of records takes seconds, and a stopping node would otherwise
/// wait for it to finish a snapshot it will never use.
pub fn write(tree: &sled::Tree, header: &Header, path: &Path, stopping: impl Fn() -> bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let written = write_pairs(tree, header, &tmp, stopping);
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let file = written?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn write_pairs(tree: &sled::Tree, header: &Header, tmp: &Path, stopping: impl Fn() -> bool) -> io::Result<File> {
    let mut out = BufWriter::new(File::create(tmp)?);
    crate::codec::encode_into(header, &mut out).map_err(bincode_io)?;
    let mut pairs = 0usize;
    for prefix in [layout::RECORD_PREFIX, layout::EXPIRY_PREFIX] {
        for kv in tree.scan_prefix([prefix]) {
            pairs += 1;
            give_up_if_stopping(pairs, &stopping)?;
            let (k, v) = kv.map_err(io::Error::other)?;
            for part in [&k[..], &v[..]] {
                out.write_all(&(part.len() as u32).to_le_bytes())?;
                out.write_all(part)?;
            }
        }
    }
    if let Some(sweep) = tree.get(layout::SWEEP).map_err(io::Error::other)? {
        for part in [layout::SWEEP, &sweep[..]] {
            out.write_all(&(part.len() as u32).to_le_bytes())?;
            out.write_all(part)?;
        }
    }
    out.into_inner().map_err(|e| e.into_error())
}

/// The next length-prefixed part (a key or a value), `None` at the end.
///
/// A snapshot comes from a peer, and a damaged or hostile one may declare
/// any length up to 4 GiB: no stored key or value is longer than the codec's
/// decode limit, so a longer one is refused, and the buffer grows with the
/// bytes actually read rather than with the declared length.
fn read_part(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let Some(len) = read_len(input)? else { return Ok(None) };
    if len > crate::codec::MAX_DECODE_BYTES {
        return Err(bincode_io(format!("snapshot holds a part of {len} bytes, over the decode limit")));
    }
    let mut buf = Vec::with_capacity(len.min(READ_BUF));
    input.take(len as u64).read_to_end(&mut buf)?;
    if buf.len() < len {
        return Err(bincode_io("snapshot ends inside a part"));
    }
    Ok(Some(buf))
}

/// The next length prefix, `None` at the end of the file.
fn read_len(input: &mut impl Read) -> io::Result<Option<usize>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => Ok(Some(u32::from_le_bytes(len) as usize)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Load a snapshot (the file `file`) into the empty `tree`, and keep a
/// durable copy of it at `path`; returns its header. When `file` is
/// `received`, a file in the same directory as `path`, it is renamed into
/// place instead of copied: a snapshot is hundreds of MiB, and a copy is a
/// second write of all of it on the catch-up path.
///
/// The tree is fresh and nobody reads it until the caller makes it current,
/// so the pairs go in with plain inserts (no atomic batches, no flushes on
/// the way: the caller syncs the database once at the end), the record range
/// and the expiry range on a thread each, since sled's inserts are what a
/// load spends its time on and distinct key ranges do not contend. Gives up
/// with `Interrupted` once `stopping` says so (the caller's tree is then half
/// loaded; the store drops such a tree when it opens).
pub fn install(
    file: &mut File,
    received: Option<&Path>,
    tree: &sled::Tree,
    path: &Path,
    stopping: impl Fn() -> bool + Sync,
) -> io::Result<Header> {
    match received.filter(|r| same_file(file, r)) {
        Some(received) => {
            file.sync_all()?;
            std::fs::rename(received, path)?;
        }
        None => {
            let tmp = path.with_extension("tmp");
            let mut copy = File::create(&tmp)?;
            file.seek(SeekFrom::Start(0))?;
            io::copy(file, &mut copy)?;
            copy.sync_all()?;
            std::fs::rename(&tmp, path)?;
        }
    }
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    let mut input = BufReader::with_capacity(READ_BUF, File::open(path)?);
    let header: Header = crate::codec::decode_from(&mut input).map_err(bincode_io)?;
    let records = skip_pairs(&mut input, layout::RECORD_PREFIX)?;
    let expiries = skip_pairs(&mut input, layout::EXPIRY_PREFIX)?;
    let sweep = read_part(&mut input)?
        .map(|k| match (k == layout::SWEEP, read_part(&mut input)?) {
            (true, Some(v)) if read_len(&mut input)?.is_none() => Ok(v),
            _ => Err(bincode_io("snapshot holds pairs out of order")),
        })
        .transpose()?;
    // Two threads, each with about half of the pairs: the records and the
    // index each when the index is as large, else the records split in two.
    let total = records.pairs + expiries.pairs;
    let split = match records.offsets.iter().find(|(pairs, _)| *pairs >= total / 2) {
        Some(&(_, at)) if expiries.pairs < records.pairs => at,
        _ => records.end,
    };
    std::thread::scope(|s| {
        let stopping = &stopping;
        let loads = [
            s.spawn(move || load_range(path, records.start, split, tree, stopping)),
            s.spawn(move || load_range(path, split, expiries.end, tree, stopping)),
        ];
        loads.into_iter().try_for_each(|t| t.join().unwrap_or_else(|_| Err(io::Error::other("snapshot load panicked"))))
    })?;
    if let Some(sweep) = sweep {
        tree.insert(layout::SWEEP, sweep).map_err(io::Error::other)?;
    }
    Ok(header)
}

fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Where a run of pairs whose keys share a prefix lies in the file.
struct Run {
    start: u64,
    end: u64,
    pairs: u64,
    /// Every `OFFSET_EVERY`-th pair's number and offset: where a load may split.
    offsets: Vec<(u64, u64)>,
}

const OFFSET_EVERY: u64 = 1024;

/// Skip the pairs at `input`'s position whose keys start with `prefix`,
/// leaving `input` at the first pair that does not (or at the end).
fn skip_pairs(input: &mut BufReader<File>, prefix: u8) -> io::Result<Run> {
    let start = input.stream_position()?;
    let mut run = Run { start, end: start, pairs: 0, offsets: Vec::new() };
    let mut first = [0u8; 1];
    while let Some(klen) = read_len(input)? {
        if klen == 0 {
            return Err(bincode_io("snapshot holds an empty key"));
        }
        input.read_exact(&mut first)?;
        if first[0] != prefix {
            input.seek_relative(-5)?;
            break;
        }
        if run.pairs.is_multiple_of(OFFSET_EVERY) {
            run.offsets.push((run.pairs, run.end));
        }
        input.seek_relative(klen as i64 - 1)?;
        let vlen = read_len(input)?.ok_or_else(|| bincode_io("snapshot ends inside a pair"))?;
        input.seek_relative(vlen as i64)?;
        run.end += 8 + klen as u64 + vlen as u64;
        run.pairs += 1;
    }
    Ok(run)
}

/// Insert the pairs between byte offsets `from` and `to` of the snapshot at
/// `path` into `tree`: records and expiry entries, as [`skip_pairs`] found them.
fn load_range(path: &Path, from: u64, to: u64, tree: &sled::Tree, stopping: &impl Fn() -> bool) -> io::Result<()> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut input = BufReader::with_capacity(READ_BUF, file);
    let mut at = from;
    let mut pairs = 0usize;
    while at < to {
        pairs += 1;
        give_up_if_stopping(pairs, stopping)?;
        let Some(k) = read_part(&mut input)? else { break };
        let v = read_part(&mut input)?.ok_or_else(|| bincode_io("snapshot ends inside a pair"))?;
        if !matches!(k.first(), Some(&layout::RECORD_PREFIX | &layout::EXPIRY_PREFIX)) {
            return Err(bincode_io("snapshot pairs out of order"));
        }
        at += 8 + (k.len() + v.len()) as u64;
        tree.insert(k, v).map_err(io::Error::other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(declared: u32, body: &[u8]) -> Vec<u8> {
        let mut out = declared.to_le_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn a_part_is_read_whole_and_a_bad_length_is_refused_without_allocating_it() {
        assert_eq!(read_part(&mut &part(3, b"abc")[..]).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_part(&mut &[][..]).unwrap(), None, "the end of the file");
        let huge = read_part(&mut &part(u32::MAX, b"abc")[..]).unwrap_err();
        assert_eq!(huge.kind(), io::ErrorKind::InvalidData);
        // Under the limit but past the end: an error, and only the bytes there were read.
        let short = read_part(&mut &part(100_000_000, b"abc")[..]).unwrap_err();
        assert!(short.to_string().contains("ends inside a part"), "{short}");
    }

    /// A tree of enough pairs that a load or a build looks at `stopping`.
    fn pairs_tree(db: &sled::Db, name: &str) -> sled::Tree {
        let tree = db.open_tree(name).unwrap();
        for i in 0..(STOP_CHECK_EVERY as u32 * 2) {
            tree.insert([&[layout::EXPIRY_PREFIX][..], &i.to_be_bytes()].concat(), &b"v"[..]).unwrap();
        }
        tree
    }

    fn empty_header() -> Header {
        Header { applied: None, membership: Default::default(), meta: Default::default() }
    }

    #[test]
    fn a_build_gives_up_when_the_node_stops_and_leaves_no_file() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = pairs_tree(&db, "sm.0");
        let header = empty_header();
        let dir = tempfile::tempdir().unwrap();
        let files = || std::fs::read_dir(dir.path()).unwrap().count();

        let stopped = write(&tree, &header, &dir.path().join("a.snap"), || true).unwrap_err();
        assert_eq!(stopped.kind(), io::ErrorKind::Interrupted);
        assert_eq!(files(), 0, "neither the snapshot nor its temporary file is left");

        write(&tree, &header, &dir.path().join("b.snap"), || false).unwrap();
        assert!(dir.path().join("b.snap").exists());
        assert_eq!(files(), 1);
    }

    #[test]
    fn an_install_gives_up_when_the_node_stops() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let source = pairs_tree(&db, "sm.0");
        let dir = tempfile::tempdir().unwrap();
        let built = dir.path().join("built.snap");
        write(&source, &empty_header(), &built, || false).unwrap();

        let half = db.open_tree("sm.1").unwrap();
        let mut file = File::open(&built).unwrap();
        let stopped = install(&mut file, None, &half, &dir.path().join("a.snap"), || true).unwrap_err();
        assert_eq!(stopped.kind(), io::ErrorKind::Interrupted);
        assert!(half.len() < source.len(), "the load stopped part way: {} of {}", half.len(), source.len());

        let whole = db.open_tree("sm.2").unwrap();
        install(&mut file, None, &whole, &dir.path().join("b.snap"), || false).unwrap();
        let loaded = whole.scan_prefix([layout::EXPIRY_PREFIX]).count();
        assert_eq!(loaded, source.len());
    }

    #[test]
    fn a_snapshot_after_the_switch_carries_the_sweep_and_loads_whole() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let source = db.open_tree("sm.0").unwrap();
        let n = STOP_CHECK_EVERY as u32 * 3;
        for i in 0..n {
            source.insert([&[layout::RECORD_PREFIX][..], &i.to_be_bytes()].concat(), &b"record"[..]).unwrap();
        }
        source.insert([layout::EXPIRY_PREFIX, 0], &b""[..]).unwrap(); // a last entry of the old index
        source.insert(layout::SWEEP, &b"place"[..]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let built = dir.path().join("built.snap");
        write(&source, &empty_header(), &built, || false).unwrap();

        let loaded = db.open_tree("sm.1").unwrap();
        install(&mut File::open(&built).unwrap(), None, &loaded, &dir.path().join("a.snap"), || false).unwrap();
        let pairs = |t: &sled::Tree| t.iter().map(|kv| kv.unwrap()).collect::<Vec<_>>();
        assert_eq!(loaded.len(), n as usize + 2);
        assert_eq!(pairs(&loaded), pairs(&source));

        // Anything after the sweep's pair is refused, as is a pair out of place.
        let mut bytes = std::fs::read(&built).unwrap();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.push(layout::RECORD_PREFIX);
        let damaged = dir.path().join("damaged.snap");
        std::fs::write(&damaged, &bytes).unwrap();
        let refused = db.open_tree("sm.2").unwrap();
        let e = install(&mut File::open(&damaged).unwrap(), None, &refused, &dir.path().join("b.snap"), || false);
        assert!(e.unwrap_err().to_string().contains("out of order"));
    }
}
