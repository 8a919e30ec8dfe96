//! Measures snapshots at scale: applies N claims (default 1,000,000) to a sled
//! state machine, builds a snapshot, installs it into a second store, and
//! prints timings, the file size and the peak resident memory.
//!
//!     cargo run --release -p idem-node --example snapshot_scale -- 1000000

use std::time::Instant;

use idem_node::registry::{Command, Op, RecordId, Request};
use idem_node::store::open;
use idem_node::types::{Entry, LogId};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, RaftSnapshotBuilder};

/// The node's allocator, so the timings are the node's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The node's default page cache (`--cache-mb 256`).
const TEST_CACHE: u64 = 256 * 1024 * 1024;

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok());
    kib.unwrap_or(0) / 1024
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (_log_a, mut a) = open(dir_a.path(), 1, TEST_CACHE)?;
    let start = Instant::now();
    let per_entry = 1_000;
    for e in 0..n.div_ceil(per_entry) {
        let ops = (e * per_entry..((e + 1) * per_entry).min(n))
            .map(|i| Op::Claim {
                id: RecordId::new("scale", format!("merchant_{}:charge:order_{i}", i % 977)),
                lease_ms: 30_000,
                retention_ms: 86_400_000,
                fingerprint: Some(format!("sha256:{i:064x}")),
                owner: Some("bench".into()),
                claim_id: Some(format!("{i}")),
            })
            .collect();
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), e + 1),
            payload: EntryPayload::Normal(Request { stamp_ms: 1_000, cmd: Command::Batch(ops) }),
        };
        a.apply([entry]).await?;
    }
    println!("applied {n} records in {:.1}s (peak RSS {} MiB)", start.elapsed().as_secs_f64(), peak_rss_mib());

    let start = Instant::now();
    let mut snap = a.get_snapshot_builder().await.build_snapshot().await?;
    let size = snap.snapshot.metadata().await?.len();
    println!(
        "built snapshot: {:.1} MiB in {:.1}s (peak RSS {} MiB)",
        size as f64 / 1048576.0,
        start.elapsed().as_secs_f64(),
        peak_rss_mib()
    );

    let (_log_b, mut b) = open(dir_b.path(), 1, TEST_CACHE)?;
    let start = Instant::now();
    let mut data = b.begin_receiving_snapshot().await?;
    tokio::io::copy(&mut snap.snapshot, &mut *data).await?;
    println!("received snapshot in {:.1}s (peak RSS {} MiB)", start.elapsed().as_secs_f64(), peak_rss_mib());
    b.install_snapshot(&snap.meta, data).await?;
    println!("installed snapshot in {:.1}s (peak RSS {} MiB)", start.elapsed().as_secs_f64(), peak_rss_mib());
    assert_eq!(b.view().records(), n);
    let probe = RecordId::new("scale", format!("merchant_{}:charge:order_{}", (n - 1) % 977, n - 1));
    assert_eq!(a.view().get(&probe)?, b.view().get(&probe)?);
    println!("records on the installed side: {}", b.view().records());
    Ok(())
}
