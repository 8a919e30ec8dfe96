//! The log on disk: what survives a reopen, how a torn tail and corruption are
//! told apart, segment rotation and deletion, the format marker, the import
//! from sled, and group commit. openraft's own suite runs in `suite_test.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, EntryPayload, RaftLogReader};
use tempfile::TempDir;

use super::format::{self, Frame, Kind};
use super::state::Change;
use super::{open, Durable, LogError, LogOptions, LogStore, Opening};
use crate::store::layout;
use crate::types::{Entry, LogId, NodeId, Vote};

const SMALL_SEGMENT: u64 = 256;

/// The node these tests' logs belong to, and the leader of their entries.
const ME: NodeId = 1;

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, ME), index)
}

fn entry(term: u64, index: u64) -> Entry {
    Entry { log_id: log_id(term, index), payload: EntryPayload::Blank }
}

/// A data dir with its sled database, opened once so the log can be reopened beside it.
struct Node {
    dir: TempDir,
    db: sled::Db,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path().join("db")).expect("sled");
        Node { dir, db }
    }

    fn open(&self) -> Result<LogStore, LogError> {
        self.open_with(&LogOptions { segment_bytes: SMALL_SEGMENT, cache_bytes: 256 })
    }

    fn open_with(&self, options: &LogOptions) -> Result<LogStore, LogError> {
        let opening = Opening { me: Some(ME), options, barrier: Arc::new(|| Ok(())), durable: Durable::default() };
        open(self.dir.path(), &self.db, opening)
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.path().join(layout::LOG_DIR)
    }

    fn segments(&self) -> Vec<PathBuf> {
        let mut names: Vec<PathBuf> = fs::read_dir(self.log_dir())
            .expect("log dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        names.sort();
        names
    }
}

/// Append `entries` and wait until they are durable.
async fn append(log: &LogStore, entries: impl IntoIterator<Item = Entry>) {
    let changes = entries.into_iter().map(|e| Change::Entry(Box::new(e))).collect();
    log.submit_durably(changes).await.expect("append");
}

/// Append entries 1..=n of term 1, one call each, close the log, and list its segments.
async fn write_and_close(node: &Node, n: u64) -> Vec<PathBuf> {
    let log = node.open().expect("open");
    for i in 1..=n {
        append(&log, [entry(1, i)]).await;
    }
    drop(log);
    node.segments()
}

async fn last_log_id(log: &mut LogStore) -> Option<LogId> {
    log.get_log_state().await.expect("state").last_log_id
}

async fn all_entries(log: &mut LogStore) -> Vec<Entry> {
    log.try_get_log_entries(0..).await.expect("read")
}

/// Offset, length and kind of every intact record of a segment, in order.
fn records(path: &Path) -> Vec<(usize, usize, Kind)> {
    let bytes = fs::read(path).expect("segment");
    let mut out = Vec::new();
    let mut off = format::SEGMENT_HEADER_LEN;
    while let Frame::Record { kind, len, .. } = format::parse_record(&bytes[off..]) {
        out.push((off, len, kind));
        off += len;
    }
    out
}

/// The indexes of the entries a segment holds.
fn entry_indexes(path: &Path) -> Vec<u64> {
    let bytes = fs::read(path).expect("segment");
    let payload = |off: usize, len: usize| &bytes[off + format::RECORD_HEADER_LEN..off + len];
    let decode = |off, len| crate::codec::decode::<Entry>(payload(off, len)).expect("entry").log_id.index;
    records(path).into_iter().filter(|r| r.2 == Kind::Entry).map(|(off, len, _)| decode(off, len)).collect()
}

fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(path).expect("read");
    edit(&mut bytes);
    fs::write(path, bytes).expect("write");
}

#[tokio::test]
async fn vote_committed_purged_and_entries_survive_reopen_after_old_segments_go() {
    let node = Node::new();
    let mut log = node.open().expect("open");
    let vote = Vote::new_committed(3, 2);
    log.save_vote(&vote).await.expect("vote");
    for i in 1..=100 {
        append(&log, [entry(3, i)]).await;
        if i == 30 {
            // Later checkpoints then carry a purged id far behind their segment's first entry.
            log.purge(log_id(3, 10)).await.expect("purge");
        }
    }
    log.save_committed(Some(log_id(3, 90))).await.expect("committed");
    let before = node.segments();
    assert!(before.len() > 4, "small segments rotate: {before:?}");
    log.purge(log_id(3, 60)).await.expect("purge");
    append(&log, [entry(3, 101)]).await;
    let after = node.segments();
    assert!(!after.contains(&before[0]), "the segment with the vote and entry 1 is deleted");
    assert!(after.len() < before.len());
    drop(log);

    let mut log = node.open().expect("reopen");
    assert_eq!(log.read_vote().await.expect("vote"), Some(vote), "the vote lives on in a checkpoint");
    assert_eq!(log.read_committed().await.expect("committed"), Some(log_id(3, 90)));
    assert_eq!(log.committed_index().load(std::sync::atomic::Ordering::Relaxed), 90);
    let state = log.get_log_state().await.expect("state");
    assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(log_id(3, 60)), Some(log_id(3, 101))));
    let expected: Vec<Entry> = (61..=101).map(|i| entry(3, i)).collect();
    assert_eq!(all_entries(&mut log).await, expected, "read back from disk: the cache holds a few only");
}

#[tokio::test]
async fn a_truncation_survives_reopen_and_appends_continue_after_it() {
    let node = Node::new();
    let mut log = node.open().expect("open");
    append(&log, (1..=40).map(|i| entry(1, i))).await;
    log.truncate(log_id(1, 11)).await.expect("truncate");
    append(&log, (11..=15).map(|i| entry(2, i))).await;
    drop(log);
    let mut log = node.open().expect("reopen");
    let expected: Vec<Entry> = (1..=10).map(|i| entry(1, i)).chain((11..=15).map(|i| entry(2, i))).collect();
    assert_eq!(all_entries(&mut log).await, expected);
    append(&log, [entry(2, 16)]).await;
    assert!(log.submit_durably(vec![Change::Entry(Box::new(entry(2, 18)))]).await.is_err(), "a hole is refused");
}

#[tokio::test]
async fn a_record_cut_by_a_crash_is_the_end_of_the_log() {
    let node = Node::new();
    let last = write_and_close(&node, 5).await.pop().expect("a segment");
    let (off, len, kind) = *records(&last).last().expect("records");
    assert_eq!(kind, Kind::Entry);
    fs::OpenOptions::new().write(true).open(&last).and_then(|f| f.set_len((off + len / 2) as u64)).expect("cut");

    let mut log = node.open().expect("a torn tail is not corruption");
    assert_eq!(last_log_id(&mut log).await, Some(log_id(1, 4)));
    append(&log, [entry(2, 5)]).await;
    drop(log);
    let mut log = node.open().expect("reopen");
    assert_eq!(all_entries(&mut log).await.last(), Some(&entry(2, 5)));
}

#[tokio::test]
async fn garbage_after_the_last_record_is_ignored_and_zeroed() {
    let node = Node::new();
    let last = write_and_close(&node, 3).await.pop().expect("a segment");
    let (off, len, _) = *records(&last).last().expect("records");
    let end = off + len;
    rewrite(&last, |b| b[end..end + 100].iter_mut().enumerate().for_each(|(i, x)| *x = (i * 7 + 1) as u8));

    let mut log = node.open().expect("garbage at the tail is a torn write");
    assert!(fs::read(&last).expect("read")[end..].iter().all(|b| *b == 0), "the stale tail was zeroed");
    assert_eq!(all_entries(&mut log).await, (1..=3).map(|i| entry(1, i)).collect::<Vec<_>>());
}

/// The case zeroing exists for: after a torn record, an intact but
/// unacknowledged record behind it must not return once the same bytes are
/// written again in front of it.
#[tokio::test]
async fn an_unacknowledged_record_behind_a_torn_one_never_comes_back() {
    let node = Node::new();
    let last = write_and_close(&node, 3).await.pop().expect("a segment");
    let entries: Vec<(usize, usize, Kind)> = records(&last).into_iter().filter(|r| r.2 == Kind::Entry).collect();
    let (off2, len2, _) = entries[1];
    rewrite(&last, |b| b[off2 + len2 - 1] ^= 0xff);

    let mut log = node.open().expect("open");
    assert_eq!(last_log_id(&mut log).await, Some(log_id(1, 1)));
    append(&log, [entry(1, 2)]).await;
    drop(log);
    let mut log = node.open().expect("reopen");
    assert_eq!(last_log_id(&mut log).await, Some(log_id(1, 2)), "entry 3 stays gone");
}

/// Replay may start at a segment whose checkpoint follows entries that a
/// truncation in that very segment then cuts back into the deleted ones.
#[tokio::test]
async fn a_truncation_reaching_into_deleted_segments_replays() {
    let node = Node::new();
    let mut log = node.open().expect("open");
    append(&log, (1..=30).map(|i| entry(1, i))).await;
    let open_segment = node.segments().pop().expect("a segment");
    let last_before = entry_indexes(&open_segment)[0] - 1;
    log.truncate(log_id(1, last_before - 1)).await.expect("truncate");
    append(&log, (last_before - 1..=40).map(|i| entry(2, i))).await;
    log.purge(log_id(2, last_before + 2)).await.expect("purge");
    append(&log, [entry(2, 41)]).await;
    assert_eq!(node.segments().first(), Some(&open_segment), "replay will start at its checkpoint");
    drop(log);
    let mut log = node.open().expect("reopen");
    let expected: Vec<Entry> = (last_before + 3..=41).map(|i| entry(2, i)).collect();
    assert_eq!(all_entries(&mut log).await, expected);
}

#[tokio::test]
async fn a_bad_record_in_an_older_segment_refuses_to_open() {
    let node = Node::new();
    let first = write_and_close(&node, 60).await.remove(0);
    let (off, _, _) = records(&first)[3];
    rewrite(&first, |b| b[off + 8] ^= 0x01);
    match node.open().err() {
        Some(LogError::Corrupt { file, offset, .. }) => assert_eq!((file, offset), (first, off as u64)),
        other => panic!("expected corruption naming the file and offset, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_segment_refuses_to_open_even_the_oldest() {
    let node = Node::new();
    let segments = write_and_close(&node, 60).await;
    fs::remove_file(&segments[2]).expect("remove");
    assert!(matches!(node.open().err(), Some(LogError::Corrupt { .. })), "a gap in the numbers");
    fs::remove_file(&segments[0]).expect("remove");
    fs::remove_file(&segments[1]).expect("remove");
    let err = node.open().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("never purged"), "entries older than every segment were not purged: {err}");
}

#[tokio::test]
async fn purge_deletes_only_segments_whose_entries_are_all_purged() {
    let node = Node::new();
    let mut log = node.open().expect("open");
    append(&log, (1..=30).map(|i| entry(1, i))).await;
    let before = node.segments();
    let keep = before.iter().position(|p| entry_indexes(p).iter().any(|i| *i > 20)).expect("entries after 20");
    assert!(keep > 0, "entries 1..=20 fill at least one segment");
    log.purge(log_id(1, 20)).await.expect("purge");
    append(&log, [entry(1, 31)]).await;
    assert_eq!(node.segments().first(), Some(&before[keep]), "exactly the segments before it are gone");
    let first = log.try_get_log_entries(0..).await.expect("read").first().map(|e| e.log_id);
    assert_eq!(first, Some(log_id(1, 21)));
}

#[tokio::test]
async fn an_unknown_or_missing_format_marker_is_refused() {
    let node = Node::new();
    drop(node.open().expect("open"));
    fs::write(node.log_dir().join(format::MARKER_FILE), "idem-raft-log 2\n").expect("write");
    assert!(matches!(node.open().err(), Some(LogError::UnknownFormat { .. })));
    fs::remove_file(node.log_dir().join(format::MARKER_FILE)).expect("remove");
    assert!(node.open().is_err(), "a log dir without its marker is not guessed at");
}

/// Write a log the way sled held it before `raft-log/` existed.
fn write_legacy(db: &sled::Db, vote: Vote, committed: LogId, purged: LogId, entries: &[Entry]) {
    let meta = db.open_tree(layout::RAFT_META_TREE).expect("tree");
    meta.insert(layout::VOTE, crate::codec::encode(&vote).expect("encode")).expect("insert");
    meta.insert(layout::COMMITTED, crate::codec::encode(&Some(committed)).expect("encode")).expect("insert");
    meta.insert(layout::LAST_PURGED, crate::codec::encode(&purged).expect("encode")).expect("insert");
    let log = db.open_tree(layout::LOG_TREE).expect("tree");
    for e in entries {
        log.insert(layout::log_key(e.log_id.index), crate::codec::encode(e).expect("encode")).expect("insert");
    }
    db.flush().expect("flush");
}

fn has_legacy_trees(db: &sled::Db) -> bool {
    db.tree_names().iter().any(|n| n == layout::LOG_TREE.as_bytes() || n == layout::RAFT_META_TREE.as_bytes())
}

#[tokio::test]
async fn a_sled_log_is_imported_once_then_its_trees_dropped() {
    let node = Node::new();
    let vote = Vote::new_committed(4, 3);
    // Entries 1..=5 outlived their purge: the old purge wrote the marker first.
    let entries: Vec<Entry> = (1..=50).map(|i| entry(4, i)).collect();
    write_legacy(&node.db, vote, log_id(4, 45), log_id(4, 5), &entries);
    // A crash during an earlier import left a half-built staging dir.
    fs::create_dir(node.dir.path().join("raft-log.importing")).expect("staging");
    fs::write(node.dir.path().join("raft-log.importing").join(format::segment_name(1)), b"half").expect("junk");

    for round in ["import", "reopen"] {
        let mut log = node.open().expect(round);
        assert!(!has_legacy_trees(&node.db), "{round}: sled's log trees are dropped");
        assert!(!node.dir.path().join("raft-log.importing").exists());
        assert_eq!(log.read_vote().await.expect("vote"), Some(vote), "{round}");
        assert_eq!(log.read_committed().await.expect("committed"), Some(log_id(4, 45)), "{round}");
        let state = log.get_log_state().await.expect("state");
        assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(log_id(4, 5)), Some(log_id(4, 50))));
        assert_eq!(all_entries(&mut log).await, entries[5..].to_vec(), "{round}: imported once, in order");
    }
}

#[tokio::test]
async fn a_crash_after_the_import_but_before_the_drop_only_drops() {
    let node = Node::new();
    let entries: Vec<Entry> = (1..=3).map(|i| entry(1, i)).collect();
    write_legacy(&node.db, Vote::new(1, 1), log_id(1, 2), log_id(0, 0), &entries);
    drop(node.open().expect("import"));
    // As if the process died before sled's drop reached disk: the old trees are back.
    write_legacy(&node.db, Vote::new(1, 1), log_id(1, 2), log_id(0, 0), &[entry(1, 1), entry(1, 2)]);
    let mut log = node.open().expect("reopen");
    assert!(!has_legacy_trees(&node.db));
    assert_eq!(all_entries(&mut log).await, entries, "nothing imported twice");
}

/// Group commit, measured: appends queued while the writer syncs share its next
/// fsync. Prints what it saw (`cargo test -- --nocapture`).
#[test]
fn appends_waiting_together_share_fsyncs() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    const N: u64 = 1000;
    let node = Node::new();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let options = LogOptions { segment_bytes: 1 << 20, cache_bytes: 1 << 20 };
    // The writer registers its metrics while opening, on this thread's recorder.
    let log = metrics::with_local_recorder(&recorder, || node.open_with(&options)).expect("open");
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 1..=N {
        let tx = tx.clone();
        let done: super::Done = Box::new(move |r| tx.send(r).expect("test waits"));
        log.submit(vec![Change::Entry(Box::new(entry(1, i)))], Some(done)).expect("append");
    }
    for _ in 1..=N {
        rx.recv().expect("every append completes").expect("and is durable");
    }
    let (mut fsyncs, mut batches) = (0, Vec::new());
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        match (key.key().name(), value) {
            ("idem_log_fsyncs_total", DebugValue::Counter(n)) => fsyncs = n,
            ("idem_log_fsync_batch_size", DebugValue::Histogram(v)) => batches = v.iter().map(|x| x.0 as u64).collect(),
            _ => {}
        }
    }
    eprintln!("{N} appends, {fsyncs} fsyncs, entries per fsync: {batches:?}");
    assert_eq!(batches.iter().sum::<u64>(), N, "every entry is counted in exactly one batch");
    assert_eq!(fsyncs, batches.len() as u64, "one fsync per batch (the segment never rotates)");
    assert!(fsyncs < N / 2, "appends queued behind an fsync share the next one");
}

/// What `idem-node restore` writes into an empty log: purged up to the
/// backup's applied id, committed there, a vote at its term. All must come
/// back on reopen, or openraft looks for entries that never existed.
#[tokio::test]
async fn a_purge_of_an_empty_log_survives_a_reopen() {
    let node = Node::new();
    let mut log = node.open().expect("open");
    log.purge(log_id(3, 13)).await.expect("purge");
    log.save_committed(Some(log_id(3, 13))).await.expect("committed");
    log.save_vote(&Vote::new(3, 1)).await.expect("vote");
    drop(log);
    let mut log = node.open().expect("reopen");
    let state = log.get_log_state().await.expect("state");
    assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(log_id(3, 13)), Some(log_id(3, 13))));
    assert_eq!(log.read_committed().await.expect("committed"), Some(log_id(3, 13)));
    assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new(3, 1)));
}

fn operation(term: u64, leader: NodeId, index: u64) -> Entry {
    let req = crate::registry::Request { stamp_ms: index, cmd: crate::registry::Command::Tick };
    Entry { log_id: LogId::new(CommittedLeaderId::new(term, leader), index), payload: EntryPayload::Normal(req) }
}

#[tokio::test]
async fn only_the_leaders_own_operations_are_acknowledged_before_their_fsync() {
    let node = Node::new();
    let mut log = node.open().expect("open");
    assert!(!log.own_operations(&[operation(2, ME, 1)]).unwrap(), "no vote yet: not a leader");
    log.save_vote(&Vote::new_committed(2, ME)).await.expect("vote");
    assert!(log.own_operations(&[operation(2, ME, 1), operation(2, ME, 2)]).unwrap(), "its own, as leader");
    assert!(!log.own_operations(&[]).unwrap());
    assert!(!log.own_operations(&[operation(2, ME, 1), entry(2, 2)]).unwrap(), "a blank entry waits for its fsync");
    assert!(!log.own_operations(&[operation(1, ME, 1)]).unwrap(), "its own from an earlier term");
    log.save_vote(&Vote::new_committed(3, 2)).await.expect("vote");
    assert!(!log.own_operations(&[operation(3, 2, 1)]).unwrap(), "a follower of node 2");
}

#[tokio::test]
async fn the_durable_end_follows_appends_truncations_and_reopens() {
    let node = Node::new();
    let mut log = node.open().expect("open");
    let mut durable = log.durable();
    let far = Some(log_id(9, 100));

    log.save_vote(&Vote::new_committed(1, ME)).await.expect("vote");
    log.blocking_append((1..=3).map(|i| operation(1, ME, i))).await.expect("append as leader");
    durable.settled(3).await.expect("the early entries reach the disk");
    assert_eq!(durable.clamp(far), Some(log_id(1, 3)));

    log.save_vote(&Vote::new_committed(2, 2)).await.expect("vote");
    log.blocking_append((4..=6).map(|i| operation(2, 2, i))).await.expect("append as follower");
    let leader_2 = |i| Some(LogId::new(CommittedLeaderId::new(2, 2), i));
    assert_eq!(durable.clamp(far), leader_2(6), "a follower's append is durable when it is acknowledged");

    log.truncate(leader_2(5).unwrap()).await.expect("truncate");
    assert_eq!(durable.clamp(far), leader_2(4), "the truncated entries are no longer the durable end");
    drop((log, durable));

    let log = node.open().expect("reopen");
    assert_eq!(log.durable().clamp(far), leader_2(4), "what was read back is durable");
}

/// The kinds of the records in the log's segments, in order.
fn kinds(node: &Node) -> Vec<Kind> {
    node.segments().iter().flat_map(|p| records(p)).map(|r| r.2).collect()
}

#[tokio::test]
async fn a_committed_id_goes_to_disk_with_the_next_durable_write_or_on_close() {
    let node = Node::new();
    let mut log = node.open_with(&LogOptions { segment_bytes: 1 << 20, cache_bytes: 256 }).expect("open");
    append(&log, [entry(1, 1)]).await;
    log.save_committed(Some(log_id(1, 1))).await.expect("committed");
    // Nothing wakes the writer for it: it waits in the queue.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!kinds(&node).contains(&Kind::Committed), "{:?}", kinds(&node));
    append(&log, [entry(1, 2)]).await;
    let written = kinds(&node);
    let committed = written.iter().position(|k| *k == Kind::Committed).expect("written with the next append");
    assert_eq!(written[committed + 1..], [Kind::Entry], "in the order it was placed: {written:?}");
    log.save_committed(Some(log_id(1, 2))).await.expect("committed");
    drop(log);
    assert_eq!(kinds(&node).iter().filter(|k| **k == Kind::Committed).count(), 2, "the last one on close");
    let mut log = node.open().expect("reopen");
    assert_eq!(log.read_committed().await.expect("committed"), Some(log_id(1, 2)));
}
