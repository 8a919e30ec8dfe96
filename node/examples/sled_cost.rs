//! What one sled key costs, in the shapes the node writes them: the floor
//! under the write path and under a snapshot install, since each claim is
//! two keys (its record and its expiry index entry) on every replica.
//!
//!     cargo run --release -p idem-node --example sled_cost -- 1000000
//!
//! For N claims in progress (default 1,000,000), with the node's sled settings
//! and allocator, in a fresh database each time, it times and prints the CPU
//! seconds (the whole process: sled's own threads too) per key for:
//! - `install`: record keys inserted in key order, one by one, as a snapshot
//!   install loads them;
//! - `writeback`: record keys in arrival order (a hash of the key: clients'
//!   keys do not arrive sorted), in atomic batches of 2,000, as the
//!   write-back thread writes a 50 ms layer at 64 clients;
//! - `memory`: the same keys into a `BTreeMap`, as the overlay holds them.

use std::collections::BTreeMap;
use std::time::Instant;

use idem_node::registry::{RecordId, RecordState, StoredRecord};
use idem_node::store::layout;

/// The node's allocator, so the timings are the node's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The node's default page cache (`--cache-mb 256`).
const CACHE: u64 = 256 * 1024 * 1024;
/// Writes in one write-back batch at 64 clients (about 20 claims per entry,
/// 50 ms of entries).
const BATCH: usize = 2_000;

/// user + system CPU seconds of this process, every thread (`/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which ends at the last ')': utime and
    // stime are the 12th and 13th of them, in clock ticks (100 a second on Linux).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let ticks: Vec<u64> = rest.split_whitespace().skip(11).take(2).filter_map(|f| f.parse().ok()).collect();
    ticks.iter().sum::<u64>() as f64 / 100.0
}

/// A claim in progress as the node stores it, for key `i`.
fn record(i: u64) -> (Vec<u8>, Vec<u8>) {
    let id = RecordId::new("bench", format!("k-{i:012}"));
    let now = 1_780_000_000_000 + i;
    let stored = StoredRecord {
        state: RecordState::InProgress,
        token: i + 1,
        attempt: 1,
        claim_id: Some(format!("c-{i:012}")),
        owner: None,
        fingerprint: None,
        checkpoint: None,
        result_json: None,
        created_at_ms: now,
        updated_at_ms: now,
        lease_expires_at_ms: Some(now + 30_000),
        expires_at_ms: now + 86_400_000,
        retention_ms: 86_400_000,
    };
    (layout::record_key(&id), idem_node::codec::encode(&stored).expect("a record encodes"))
}

fn fresh_tree(dir: &std::path::Path) -> anyhow::Result<sled::Tree> {
    // As `store::open` configures it.
    let db = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(CACHE)
        .flush_every_ms(None)
        .open()?;
    Ok(db.open_tree("sm.1")?)
}

fn report(name: &str, n: u64, started: Instant, cpu_before: f64) {
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "{name:<10} {n} keys: {wall:.2} s wall, {cpu:.2} CPU s, {:.2} us wall and {:.2} us CPU per key",
        wall * 1e6 / n as f64,
        cpu * 1e6 / n as f64
    );
}

fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..n).map(record).collect();
    println!("a record key is {} bytes, its value {} bytes", pairs[0].0.len(), pairs[0].1.len());
    // Arrival order: a fixed permutation, the same in every run.
    let mut arrival: Vec<usize> = (0..pairs.len()).collect();
    arrival.sort_by_key(|&i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));

    let dir = tempfile::tempdir()?;
    let tree = fresh_tree(&dir.path().join("install"))?;
    let (started, cpu) = (Instant::now(), cpu_seconds());
    for (k, v) in &pairs {
        tree.insert(k.as_slice(), v.as_slice())?;
    }
    report("install", n, started, cpu);
    drop(tree);

    let tree = fresh_tree(&dir.path().join("writeback"))?;
    let (started, cpu) = (Instant::now(), cpu_seconds());
    for chunk in arrival.chunks(BATCH) {
        let mut batch = sled::Batch::default();
        for &i in chunk {
            batch.insert(pairs[i].0.as_slice(), pairs[i].1.as_slice());
        }
        tree.apply_batch(batch)?;
    }
    report("writeback", n, started, cpu);
    drop(tree);

    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut map = BTreeMap::new();
    for &i in &arrival {
        map.insert(pairs[i].0.clone(), pairs[i].1.clone());
    }
    report("memory", n, started, cpu);
    Ok(())
}
