//! Backup and restore end to end: `idem snapshot save` through a follower,
//! `idem-node restore` into a new cluster, every record back with its token
//! and state, new tokens above every restored one, and damaged backups refused.

use std::path::Path;
use std::process::Command;

use idem_tests::scenarios::{claim_complete_replay, key_path};
use idem_tests::{node_binary, workspace_artifact, TestCluster};
use serde_json::{json, Value};

/// `idem snapshot save FILE` against `endpoints`; panics unless it succeeds.
fn save(endpoints: &str, file: &Path) -> Value {
    let bin = workspace_artifact("IDEM_CLI_BIN", "idem-client", &["--bin", "idem", "--features", "cli"], "idem");
    let out = Command::new(bin)
        .args(["--json", "snapshot", "save"])
        .arg(file)
        .env("IDEM_ENDPOINTS", endpoints)
        .output()
        .expect("running idem");
    assert!(out.status.success(), "snapshot save: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON summary")
}

/// `idem-node restore` of `file` into the fresh `dir`: exit status and stderr.
fn restore(file: &Path, dir: &Path) -> (bool, String) {
    let out = Command::new(node_binary())
        .args(["restore", "--id", "1", "--initial-cluster", "1=127.0.0.1:1"])
        .arg("--from")
        .arg(file)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("running idem-node restore");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn a_restored_cluster_keeps_every_record_and_fences_above_it() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let done = claim_complete_replay(&c, leader, "bk", "done").await;
    let held = c.post_decided(leader, &format!("{}/claim", key_path("bk", "held")), json!({"lease_ms": 600_000})).await;
    assert_eq!(held.status, 201, "{:?}", held.body);
    let released = c.post_decided(leader, &format!("{}/claim", key_path("bk", "gone")), json!({})).await;
    let gone = json!({"token": released.token()});
    assert_eq!(c.post_decided(leader, &format!("{}/release", key_path("bk", "gone")), gone).await.status, 200);
    let done_record = c.get(leader, &key_path("bk", "done")).await.body;
    let held_record = c.get(leader, &key_path("bk", "held")).await.body;

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("idem.backup");
    let follower = c.follower().await;
    let saved = save(&c.url(follower), &file);
    let len = std::fs::metadata(&file).expect("the backup file").len();
    assert_eq!(saved["bytes"], len);
    assert_eq!(saved["sha256"].as_str().map(str::len), Some(64));

    let restored = TestCluster::start_restored(3, &file).await;
    let leader = restored.leader().await;
    for id in restored.ids() {
        assert_eq!(restored.get(id, &key_path("bk", "done")).await.body, done_record, "node {id}");
    }
    assert_eq!(restored.get(leader, &key_path("bk", "held")).await.body, held_record);
    assert_eq!(restored.get(leader, &key_path("bk", "gone")).await.status, 404);
    // The restored claim still holds its lease: a rival waits.
    let rival = restored.post_decided(leader, &format!("{}/claim", key_path("bk", "held")), json!({})).await;
    assert_eq!((rival.status.as_u16(), rival.body["record"]["token"].as_u64()), (409, Some(held.token())));
    let replay =
        restored.post_decided(leader, &format!("{}/claim", key_path("bk", "done")), json!({"fingerprint": "fp"})).await;
    assert_eq!((replay.status.as_u16(), replay.body["record"]["result"].clone()), (200, done.result));
    // Fencing survives: a new acquisition's token is above every restored one.
    let fresh = restored.post_decided(leader, &format!("{}/claim", key_path("bk", "fresh")), json!({})).await;
    assert_eq!(fresh.status, 201);
    let highest = [done.token, held.token(), released.token()].into_iter().max().unwrap();
    assert!(fresh.token() > highest, "new token {} is not above restored {highest}", fresh.token());
}

#[tokio::test]
async fn damaged_backups_and_used_data_dirs_are_refused() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    claim_complete_replay(&c, leader, "bk", "one").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("idem.backup");
    save(&c.url(leader), &file);
    let bytes = std::fs::read(&file).expect("backup");

    let truncated = dir.path().join("truncated.backup");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).expect("write");
    let (ok, err) = restore(&truncated, &dir.path().join("t"));
    assert!(!ok && err.contains("truncated"), "{err}");

    let corrupt = dir.path().join("corrupt.backup");
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    std::fs::write(&corrupt, &flipped).expect("write");
    let (ok, err) = restore(&corrupt, &dir.path().join("c"));
    assert!(!ok && err.contains("corrupt"), "{err}");

    let (ok, err) = restore(&dir.path().join("absent.backup"), &dir.path().join("a"));
    assert!(!ok && err.contains("absent.backup"), "{err}");
    for refused in ["t", "c", "a"] {
        let left = std::fs::read_dir(dir.path().join(refused)).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "a refused restore left files in {refused}");
    }

    let used = dir.path().join("used");
    let (ok, err) = restore(&file, &used);
    assert!(ok, "{err}");
    let (ok, err) = restore(&file, &used);
    assert!(!ok && err.contains("not empty"), "{err}");
}
