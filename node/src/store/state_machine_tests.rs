//! The sled state machine: snapshot round trips and restart consistency.

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, RaftSnapshotBuilder};

use proptest::prelude::*;

use super::StateMachineStore;
use crate::registry::strategies::arb_log;
use crate::registry::{Command, Op, RecordId, Request, Response};
use crate::store::layout;
use crate::store::open;
use crate::store::view::TreeBytes;
use crate::store::LogStore;
use crate::types::{Entry, LogId, Snapshot};

const TEST_CACHE: u64 = 32 * 1024 * 1024;

fn entry_at(index: u64, stamp_ms: u64, cmd: Command) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Request { stamp_ms, cmd }),
    }
}

fn entry(index: u64, cmd: Command) -> Entry {
    entry_at(index, 1_000 + index, cmd)
}

fn claim(key: String, retention_ms: u64) -> Op {
    Op::Claim {
        id: RecordId::new("ns", key),
        lease_ms: 1_000,
        retention_ms,
        fingerprint: None,
        owner: None,
        claim_id: None,
    }
}

/// Apply `n` claims in batches of 100, a tenth of them short-lived.
async fn fill(sm: &mut StateMachineStore, n: u64) -> u64 {
    let mut index = 0;
    for chunk in 0..n / 100 {
        index += 1;
        let ops = (0..100).map(|i| claim(format!("k{}", chunk * 100 + i), if i % 10 == 0 { 1_000 } else { 600_000 }));
        sm.apply([entry(index, Command::Ops(ops.collect()))]).await.unwrap();
    }
    index
}

fn ids(n: u64) -> impl Iterator<Item = RecordId> {
    (0..n).map(|i| RecordId::new("ns", format!("k{i}")))
}

/// A store of its own filled with `n` claims (with `tick`, its clock then
/// moved on so the short-lived tenth expires), and a snapshot built from it.
struct Source {
    sm: StateMachineStore,
    /// The last index applied before the snapshot.
    last: u64,
    built: Snapshot,
    _log: LogStore,
    _dir: tempfile::TempDir,
}

async fn source(n: u64, tick: bool) -> Source {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
    let mut last = fill(&mut sm, n).await;
    if tick {
        last += 1;
        sm.apply([entry_at(last, 100_000, Command::Tick)]).await.unwrap();
    }
    let built = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    Source { sm, last, built, _log: log, _dir: dir }
}

#[tokio::test]
async fn the_clock_is_observed_at_every_stamped_apply_and_not_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
    assert!(sm.view().observed().is_none());
    let blank = Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), 1), payload: EntryPayload::Blank };
    sm.apply([blank]).await.unwrap();
    assert!(sm.view().observed().is_none(), "a blank entry carries no stamp");
    sm.apply([entry_at(2, 5_000, Command::Tick)]).await.unwrap();
    let first = sm.view().observed().expect("observed after an apply");
    assert_eq!(first.clock_ms, 5_000);
    std::thread::sleep(std::time::Duration::from_millis(20));
    // A leader stamping behind the clock leaves it standing; leases granted
    // now count from 5 000 too, so the observation moves to now.
    sm.apply([entry_at(3, 4_000, Command::Tick)]).await.unwrap();
    let second = sm.view().observed().unwrap();
    assert_eq!(second.clock_ms, 5_000);
    assert!(second.at >= first.at + std::time::Duration::from_millis(20), "{first:?} then {second:?}");
    drop((sm, _log));
    let (_log, sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
    assert_eq!(sm.view().clock_ms(), 5_000);
    assert!(sm.view().observed().is_none(), "a restart cannot know how long it was down");
}

/// The first byte of every key of the state `sm` holds.
fn key_kinds(sm: &StateMachineStore) -> std::collections::BTreeSet<u8> {
    sm.view().dump().iter().map(|(k, _)| k[0]).collect()
}

#[tokio::test]
async fn applies_write_records_and_expiry_entries_only_and_an_old_index_goes_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
    fill(&mut sm, 200).await;
    let kinds = [layout::RECORD_PREFIX, layout::EXPIRY_PREFIX, layout::APPLIED[0]];
    assert_eq!(key_kinds(&sm), kinds.into(), "records, their expiry entries and the m. keys");
    // The in-progress index an earlier version kept, in the current tree.
    let tree = sm.db.open_tree(format!("{}0", layout::SM_TREE_PREFIX)).unwrap();
    tree.insert([&[layout::OLD_IN_PROGRESS_PREFIX][..], b"ns\0k1"].concat(), &1u64.to_be_bytes()).unwrap();
    assert!(key_kinds(&sm).contains(&layout::OLD_IN_PROGRESS_PREFIX));
    drop((sm, log, tree));
    let (_log, sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
    assert_eq!(key_kinds(&sm), kinds.into());
}

#[tokio::test]
async fn after_the_switch_a_claim_writes_one_key_and_the_switch_travels_in_snapshots_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
    let mut last = fill(&mut sm, 200).await;
    assert!(!sm.view().sweeps_records());
    last += 1;
    sm.apply([entry(last, Command::SweepRecords)]).await.unwrap();
    assert!(sm.view().sweeps_records());
    last += 1;
    sm.apply([entry(last, Command::Ops(vec![claim("after".into(), 600_000)]))]).await.unwrap();
    let kinds = [layout::RECORD_PREFIX, layout::APPLIED[0]];
    assert_eq!(key_kinds(&sm), kinds.into(), "the index drained by the entry after the switch, none added");
    assert_eq!(sm.view().dump().iter().filter(|(k, _)| k[0] == layout::RECORD_PREFIX).count(), 201);

    let mut built = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let (_log_b, mut b) = open(dir_b.path(), 1, TEST_CACHE).unwrap();
    let mut data = b.begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut built.snapshot, &mut *data).await.unwrap();
    b.install_snapshot(&built.meta, data).await.unwrap();
    assert!(b.view().sweeps_records(), "an installed replica walks the records too");
    assert_eq!(b.view().dump(), sm.view().dump());

    drop((sm, log));
    let (_log, sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
    assert!(sm.view().sweeps_records(), "and so does a restarted one");
}

#[tokio::test]
async fn snapshot_installs_the_same_state_and_survives_reopen() {
    // The clock moved on so the short-lived tenth expires (and partly sweeps).
    let Source { sm: mut a, last, mut built, _log, _dir } = source(5_000, true).await;
    let dir_b = tempfile::tempdir().unwrap();

    {
        let (_log_b, mut b) = open(dir_b.path(), 1, TEST_CACHE).unwrap();
        let mut data = b.begin_receiving_snapshot().await.unwrap();
        tokio::io::copy(&mut built.snapshot, &mut *data).await.unwrap();
        b.install_snapshot(&built.meta, data).await.unwrap();
        assert_eq!(b.applied_state().await.unwrap(), a.applied_state().await.unwrap());
        let current = b.get_current_snapshot().await.unwrap().expect("installed snapshot is current");
        assert_eq!(current.meta, built.meta);
    }
    // Reopened from disk, the installed state is what `a` holds.
    let (_log_b, mut b) = open(dir_b.path(), 1, TEST_CACHE).unwrap();
    assert_eq!(b.applied_state().await.unwrap().0, Some(LogId::new(CommittedLeaderId::new(1, 1), last)));
    let (va, vb) = (a.view(), b.view());
    assert_eq!(va.clock_ms(), vb.clock_ms());
    assert_eq!(va.records(), vb.records());
    assert_eq!(va.expired_total(), vb.expired_total());
    let mut live = 0;
    for id in ids(5_000) {
        let (ra, rb) = (va.get(&id).unwrap(), vb.get(&id).unwrap());
        assert_eq!(ra, rb, "{id:?}");
        live += ra.is_some() as u64;
    }
    assert_eq!(live, 4_500, "the short-lived tenth is absent on both");
}

/// A fresh store's first install (what `idem-node restore` does, with no
/// `begin_receiving_snapshot` before it) must not load into the tree it then
/// drops as the old one.
#[tokio::test]
async fn the_first_install_into_a_fresh_store_survives_reopen() {
    let Source { sm: a, last, built, _log, _dir } = source(100, false).await;
    let dir_b = tempfile::tempdir().unwrap();
    {
        let (_log_b, mut b) = open(dir_b.path(), 1, TEST_CACHE).unwrap();
        b.install_snapshot(&built.meta, built.snapshot).await.unwrap();
    }
    let (_log_b, mut b) = open(dir_b.path(), 1, TEST_CACHE).unwrap();
    assert_eq!(b.applied_state().await.unwrap().0, Some(LogId::new(CommittedLeaderId::new(1, 1), last)));
    assert_eq!(b.view().records(), a.view().records());
}

/// The file names in the snapshot directory of the node at `dir`.
fn snapshot_files(dir: &std::path::Path) -> Vec<String> {
    let files = std::fs::read_dir(dir.join("snapshots")).unwrap();
    let mut names: Vec<_> = files.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_snapshot_replaces_existing_state_exactly_and_keeps_the_received_file() {
    let Source { sm: a, mut built, _log, _dir, .. } = source(30_000, true).await;
    let dir_b = tempfile::tempdir().unwrap();
    let (_log_b, mut b) = open(dir_b.path(), 1, TEST_CACHE).unwrap();
    // State of b's own, part of it written back and part only in the overlay.
    let ops = (0..500).map(|i| claim(format!("b-only{i}"), 600_000)).collect();
    b.apply([entry(1, Command::Ops(ops))]).await.unwrap();
    tokio::time::sleep(super::super::writeback::INTERVAL * 3).await;
    b.apply([entry(2, Command::Ops(vec![claim("b-late".into(), 600_000)]))]).await.unwrap();
    let mut data = b.begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut built.snapshot, &mut *data).await.unwrap();
    b.install_snapshot(&built.meta, data).await.unwrap();
    let expected = a.view().dump();
    assert_eq!(b.view().dump(), expected);
    assert_eq!(b.view().records(), a.view().records());
    assert!(b.view().get(&RecordId::new("ns", "b-only7")).unwrap().is_none());
    let snap = format!("{}.snap", built.meta.snapshot_id);
    assert_eq!(snapshot_files(dir_b.path()), std::slice::from_ref(&snap), "the received file became the snapshot");
    drop((b, _log_b));
    let (_log_b, mut b) = open(dir_b.path(), 1, TEST_CACHE).unwrap();
    assert_eq!(b.view().dump(), expected);
    let current = b.get_current_snapshot().await.unwrap().expect("installed snapshot is current");
    assert_eq!(current.meta, built.meta);
}

#[tokio::test]
async fn reopening_after_a_crashed_install_keeps_the_old_state_and_drops_the_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let (_log, mut sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
        fill(&mut sm, 1_000).await;
        sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        // What `kill -9` mid-install leaves: a half-loaded tree that never
        // became current, the renamed snapshot file, and a transfer's part.
        let half = sm.db.open_tree(format!("{}99", layout::SM_TREE_PREFIX)).unwrap();
        half.insert(layout::record_key(&RecordId::new("ns", "k1")), &b"half"[..]).unwrap();
        sm.db.flush().unwrap();
        for stray in ["9-99-1.snap", "incoming-7.part", "9-99-2.tmp"] {
            std::fs::write(dir.path().join("snapshots").join(stray), b"partial").unwrap();
        }
        sm.view().dump()
    };
    let (_log, sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
    assert_eq!(sm.view().dump(), before);
    let trees: Vec<_> = sm.db.tree_names().into_iter().filter(|n| n.starts_with(b"sm.")).collect();
    assert_eq!(trees.len(), 1, "only the current state tree is left");
    let current = sm.current_snapshot().unwrap().expect("the built snapshot is still current");
    assert_eq!(snapshot_files(dir.path()), [current.file]);
}

#[tokio::test]
async fn applied_state_survives_reopen_without_reapplying() {
    let dir = tempfile::tempdir().unwrap();
    let applied = {
        let (_log, mut sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
        fill(&mut sm, 1_000).await;
        sm.applied_state().await.unwrap()
    };
    let (_log, mut sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
    assert_eq!(sm.applied_state().await.unwrap(), applied);
    assert_eq!(sm.view().records(), 1_000);
    assert!(sm.view().get(&RecordId::new("ns", "k999")).unwrap().is_some());
}

/// A store filled with `records` claims, its tree then frozen as for a
/// snapshot, and `late` more claims (`late0`, `late1`, ...) applied after.
struct FrozenThenApplied {
    _log: LogStore,
    sm: StateMachineStore,
    frozen: super::super::writeback::Frozen,
    tree: sled::Tree,
    /// The tree's pairs as it froze.
    before: Vec<(sled::IVec, sled::IVec)>,
}

impl FrozenThenApplied {
    async fn new(dir: &std::path::Path, records: u64, late: usize) -> Self {
        let (_log, mut sm) = open(dir, 1, TEST_CACHE).unwrap();
        let last = fill(&mut sm, records).await;
        let control = sm.writeback.control();
        let frozen = tokio::task::spawn_blocking(move || control.freeze(true)).await.unwrap().unwrap();
        let tree = sm.view.read_overlay().tree().clone();
        let before = pairs(&tree);
        let ops = (0..late).map(|i| claim(format!("late{i}"), 600_000)).collect();
        sm.apply([entry(last + 1, Command::Ops(ops))]).await.unwrap();
        FrozenThenApplied { _log, sm, frozen, tree, before }
    }
}

fn pairs(tree: &sled::Tree) -> Vec<(sled::IVec, sled::IVec)> {
    tree.iter().map(Result::unwrap).collect()
}

#[tokio::test]
async fn applies_go_on_in_memory_while_the_tree_is_frozen_for_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let FrozenThenApplied { _log, sm, frozen, tree, before } = FrozenThenApplied::new(dir.path(), 1_000, 100).await;
    assert!(tree.get(layout::record_key(&RecordId::new("ns", "k999"))).unwrap().is_some(), "written back");
    tokio::time::sleep(super::super::writeback::INTERVAL * 3).await;
    let late = RecordId::new("ns", "late7");
    assert!(sm.view().get(&late).unwrap().is_some(), "readers see the apply at once");
    assert_eq!(before, pairs(&tree), "the frozen tree does not change");
    drop(frozen);
    // Within a few intervals; a loaded machine may take longer, so poll.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while tree.get(layout::record_key(&late)).unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "written back once thawed");
        tokio::time::sleep(super::super::writeback::INTERVAL).await;
    }
}

#[tokio::test]
async fn a_store_closed_while_frozen_leaves_the_frozen_tree_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let FrozenThenApplied { _log, sm, frozen, tree, before } = FrozenThenApplied::new(dir.path(), 100, 10).await;
    // The node stops while a snapshot streams the tree: the store closes
    // first, and its last write-back must not land under the snapshot.
    let control = sm.writeback.control();
    tokio::task::spawn_blocking(move || drop(sm)).await.unwrap();
    assert!(control.stopping());
    assert!(control.freeze(true).is_err(), "a closed store freezes nothing more");
    assert_eq!(before, pairs(&tree), "the frozen tree is unchanged by the stop");
    drop(frozen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_built_while_entries_apply_holds_exactly_the_state_it_names() {
    let (dir_a, dir_b, dir_c) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_log_a, mut a) = open(dir_a.path(), 1, TEST_CACHE).unwrap();
    let last = fill(&mut a, 3_000).await;
    let mut builder = a.get_snapshot_builder().await;
    let building = tokio::spawn(async move { builder.build_snapshot().await.unwrap() });
    // Entries applied while the snapshot may be streaming.
    let late: Vec<Entry> = (1..=50)
        .map(|i| entry(last + i, Command::Ops(vec![claim(format!("late{i}"), 600_000), claim(format!("k{i}"), 9)])))
        .collect();
    for e in &late {
        a.apply([e.clone()]).await.unwrap();
        tokio::task::yield_now().await;
    }
    let mut built = building.await.unwrap();
    let index = built.meta.last_log_id.expect("a snapshot of applied entries").index;
    assert!((last..=last + 50).contains(&index));
    // A replica that applied exactly up to the snapshot's point holds what it does.
    let (_log_c, mut c) = open(dir_c.path(), 1, TEST_CACHE).unwrap();
    fill(&mut c, 3_000).await;
    for e in late.iter().filter(|e| e.log_id.index <= index) {
        c.apply([e.clone()]).await.unwrap();
    }
    let (_log_b, mut b) = open(dir_b.path(), 1, TEST_CACHE).unwrap();
    let mut data = b.begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut built.snapshot, &mut *data).await.unwrap();
    b.install_snapshot(&built.meta, data).await.unwrap();
    assert_eq!(b.view().dump(), c.view().dump());
    assert_eq!(b.applied_state().await.unwrap(), c.applied_state().await.unwrap());
}

/// Apply `log` to a fresh sled state machine, `chunks` entries per `apply`
/// call (cycling); returns the outcomes and the tree's bytes.
fn replica(log: &[Request], chunks: &[usize]) -> (Vec<Response>, TreeBytes) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_log, mut sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
        let entries: Vec<Entry> =
            log.iter().enumerate().map(|(i, r)| entry_at(i as u64 + 1, r.stamp_ms, r.cmd.clone())).collect();
        let mut outcomes = Vec::new();
        let mut rest = &entries[..];
        for size in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*size).min(rest.len()));
            outcomes.extend(sm.apply(now.to_vec()).await.unwrap());
            rest = later;
        }
        (outcomes, sm.view().dump())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Two sled replicas applying the same log, one entry at a time and in
    /// arbitrary groups, answer alike and end byte-for-byte equal on disk.
    #[test]
    fn sled_replicas_applying_the_same_log_agree(log in arb_log(), chunks in prop::collection::vec(1usize..8, 1..6)) {
        let (outcomes_a, bytes_a) = replica(&log, &[1]);
        let (outcomes_b, bytes_b) = replica(&log, &chunks);
        prop_assert_eq!(outcomes_a, outcomes_b);
        prop_assert_eq!(bytes_a, bytes_b);
    }
}

/// The abandoned claims the walk of `view` counts, in steps of `step`.
fn walk_abandoned(view: &crate::store::StateView, step: usize) -> (u64, usize) {
    let (mut abandoned, mut steps, mut after) = (0, 0, None);
    loop {
        let s = view.abandoned_after(after.as_deref(), step).unwrap();
        abandoned += s.abandoned;
        steps += 1;
        if s.seen < step {
            return (abandoned, steps);
        }
        after = s.last;
    }
}

#[tokio::test]
async fn the_walk_counts_claims_whose_lease_ran_out_and_not_those_expired() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = open(dir.path(), 1, TEST_CACHE).unwrap();
    let last = fill(&mut sm, 1_000).await;
    let view = sm.view();
    assert_eq!(walk_abandoned(&view, 300), (0, 4), "every lease still runs");
    // Past every lease end: the short-lived tenth has expired with its lease,
    // the other nine tenths are abandoned.
    sm.apply([entry_at(last + 1, 100_000, Command::Tick)]).await.unwrap();
    assert_eq!(walk_abandoned(&view, 300).0, 900);
    assert_eq!(walk_abandoned(&view, 1_000).0, 900, "the same count in any step size");
}
