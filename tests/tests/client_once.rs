//! `Client::once` against a real cluster: one run per key among racing
//! callers, replay, release or resume after a failure or a dropped call,
//! heartbeats, fencing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idem_client::proto::{ClaimRequest, GetQuery};
use idem_client::{ClaimOutcome, Client, OnceError, OnceOptions};
use idem_tests::TestCluster;

type Once = Result<String, OnceError<String>>;

fn opts(lease_ms: u64, wait_ms: u64) -> OnceOptions {
    OnceOptions { lease: Duration::from_millis(lease_ms), wait: Duration::from_millis(wait_ms), ..Default::default() }
}

#[tokio::test]
async fn racing_callers_run_the_work_once_and_share_its_output() {
    let c = TestCluster::start(3).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..8 {
        // Each caller starts at another node.
        let mut urls = c.urls();
        urls.rotate_left(i % 3);
        let (client, runs) = (Client::new(urls).unwrap(), runs.clone());
        tasks.push(tokio::spawn(async move {
            let out: Once = client
                .once("o", "race", opts(5_000, 20_000), |_ctx| async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Ok(format!("made by {i}"))
                })
                .await;
            out.unwrap()
        }));
    }
    let mut outputs = Vec::new();
    for t in tasks {
        outputs.push(t.await.unwrap());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(outputs.windows(2).all(|w| w[0] == w[1]), "{outputs:?}");

    // Later calls replay without running.
    let client = Client::new(c.urls()).unwrap();
    let replay: Once = client.once("o", "race", opts(5_000, 1_000), |_| async { panic!("ran again") }).await;
    assert_eq!(replay.unwrap(), outputs[0]);
}

#[tokio::test]
async fn a_failure_before_any_checkpoint_releases_after_one_resumes() {
    let c = TestCluster::start(3).await;
    let client = Client::new(c.urls()).unwrap();

    let failed: Once = client.once("o", "early", opts(5_000, 1_000), |_| async { Err("boom".to_owned()) }).await;
    assert!(matches!(failed, Err(OnceError::Failed(m)) if m == "boom"));
    let retried: Once = client.once("o", "early", opts(5_000, 1_000), |_| async { Ok("second".to_owned()) }).await;
    assert_eq!(retried.unwrap(), "second", "released, so the retry ran");

    let failed: Once = client
        .once("o", "late", opts(1_000, 1_000), |ctx| async move {
            ctx.checkpoint("charged", "ch_1").await.unwrap();
            Err("crashed after the charge".to_owned())
        })
        .await;
    assert!(matches!(failed, Err(OnceError::Failed(_))));
    // Held until the lease ends: a quick caller gives up...
    let quick: Once = client.once("o", "late", opts(1_000, 200), |_| async { panic!("ran while held") }).await;
    assert!(matches!(quick, Err(OnceError::StillInProgress(_))), "{quick:?}");
    // ...a patient one takes over and resumes from the checkpoint.
    let resumed: Once = client
        .once("o", "late", opts(1_000, 10_000), |ctx| async move {
            let cp = ctx.resume_from().expect("the abandoned checkpoint").clone();
            assert_eq!(ctx.attempt(), 2);
            Ok(format!("resumed at {} with {}", cp.stage, cp.data))
        })
        .await;
    assert_eq!(resumed.unwrap(), "resumed at charged with \"ch_1\"");
}

#[tokio::test]
async fn the_heartbeat_keeps_a_slow_run_and_fencing_stops_it() {
    let c = TestCluster::start(3).await;
    let client = Client::new(c.urls()).unwrap();
    let slow = {
        let client = client.clone();
        tokio::spawn(async move {
            let out: Once = client
                .once("o", "slow", opts(600, 1_000), |_| async {
                    tokio::time::sleep(Duration::from_millis(2_500)).await;
                    Ok("slow".to_owned())
                })
                .await;
            out
        })
    };
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    // Three leases later, the holder still holds: the heartbeat renewed it.
    let rival = client.claim("o", "slow", ClaimRequest::default()).await.unwrap();
    assert!(matches!(rival, ClaimOutcome::InProgress { .. }), "{rival:?}");
    assert_eq!(slow.await.unwrap().unwrap(), "slow");

    // An operator deletes the record under a running holder: the next
    // heartbeat is fenced, the context says so, and the completion is refused.
    let held = {
        let client = client.clone();
        tokio::spawn(async move {
            let out: Once = client
                .once("o", "fenced", opts(600, 1_000), |ctx| async move {
                    tokio::time::timeout(Duration::from_secs(10), ctx.fenced()).await.expect("fenced in time");
                    assert!(ctx.is_fenced());
                    Ok("too late".to_owned())
                })
                .await;
            out
        })
    };
    let q = GetQuery::default();
    while client.get("o", "fenced", &q).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.delete("o", "fenced").await.unwrap();
    let out = held.await.unwrap();
    assert!(matches!(out, Err(OnceError::Registry(idem_client::Error::NotFound))), "{out:?}");
}

#[tokio::test]
async fn a_call_dropped_mid_run_releases_the_key_unless_it_checkpointed() {
    let c = TestCluster::start(3).await;
    let client = Client::new(c.urls()).unwrap();
    // Leases of a minute: only a release can free a key within the test.
    let dropped_after = |key: &'static str, checkpoint: bool| {
        let client = client.clone();
        async move {
            let (started, running) = tokio::sync::oneshot::channel();
            let call = tokio::spawn(async move {
                let out: Once = client
                    .once("o", key, opts(60_000, 1_000), |ctx| async move {
                        if checkpoint {
                            ctx.checkpoint("charged", "ch_1").await.unwrap();
                        }
                        started.send(()).unwrap();
                        std::future::pending().await
                    })
                    .await;
                out
            });
            running.await.expect("the work started");
            call.abort();
            assert!(call.await.unwrap_err().is_cancelled());
        }
    };

    dropped_after("cancelled", false).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.claim("o", "cancelled", ClaimRequest::default()).await.unwrap() {
            ClaimOutcome::Acquired { takeover, .. } => break assert!(!takeover, "released, not taken over"),
            ClaimOutcome::InProgress { .. } if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("the dropped call's key was not released: {other:?}"),
        }
    }

    // After a checkpoint a side effect may have happened: the key stays held.
    dropped_after("cancelled-late", true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rival = client.claim("o", "cancelled-late", ClaimRequest::default()).await.unwrap();
    assert!(matches!(rival, ClaimOutcome::InProgress { .. }), "{rival:?}");
}
