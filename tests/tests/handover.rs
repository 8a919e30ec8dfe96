//! A leader stopped with SIGTERM hands leadership over before it exits
//! (`node/src/handover.rs`), so the survivors have a leader long before an
//! election timeout would give them one.

use std::time::{Duration, Instant};

use idem_tests::scenarios::{assert_completed_everywhere, claim_complete_replay};
use idem_tests::TestCluster;

/// The minimum election timeout the cluster runs with. openraft's leader
/// lease is the maximum (twice this): followers refuse to elect until it has
/// run out since the last heartbeat, then wait their own timeout. Left to its
/// timers the cluster so needs at least 3 s + 1.5 s after the leader stops.
const ELECTION_TIMEOUT: Duration = Duration::from_millis(1500);

/// Well under those 4.5 s, and about ten times what a handover takes on an
/// idle machine (a few round trips), so a loaded one passes too.
const BOUND: Duration = Duration::from_secs(3);

#[tokio::test]
async fn sigterm_of_the_leader_hands_leadership_over() {
    let timeout = format!("{}ms", ELECTION_TIMEOUT.as_millis());
    let mut c = TestCluster::start_with(3, &["--election-timeout", &timeout]).await;
    let elected = Instant::now();
    let done = claim_complete_replay(&c, c.follower().await, "h", "before").await;
    c.wait_ready().await;
    // A leader refuses every vote for one lease after its own election (its
    // vote is as fresh as a heartbeat), so a handover needs it to have led
    // that long. A rolling restart waits for readiness between nodes anyway.
    let lease = ELECTION_TIMEOUT * 2;
    tokio::time::sleep((lease + Duration::from_millis(500)).saturating_sub(elected.elapsed())).await;

    let leader = c.leader().await;
    let start = Instant::now();
    assert!(c.terminate(leader), "SIGTERM exits with status 0");
    let next = c.leader().await;
    let took = start.elapsed();
    eprintln!("node {next} leads {took:?} after SIGTERM to leader {leader}");
    assert_ne!(next, leader);
    assert!(took < BOUND, "a new leader after {took:?}: the handover did not happen\n{}", c.log_tail(next));
    assert_completed_everywhere(&c, &done).await;
    claim_complete_replay(&c, next, "h", "after").await;
}

/// Requests in flight on a leader when it is told to stop are answered
/// promptly, not held to the request deadline: after the handover the node
/// keeps listening until what was submitted to it has its answer, so it
/// hears its successor (which it must, to forward to it or to apply what it
/// proposed just before). Before, a request that arrived in the handover's
/// few milliseconds waited out the 5 s deadline for a leader it could no
/// longer hear of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_on_a_stopping_leader_are_answered_without_waiting_out_the_deadline() {
    let timeout = format!("{}ms", ELECTION_TIMEOUT.as_millis());
    let mut c = TestCluster::start_with(3, &["--election-timeout", &timeout, "--request-timeout", "5s"]).await;
    tokio::time::sleep(ELECTION_TIMEOUT * 2 + Duration::from_millis(500)).await;
    let leader = c.leader().await;
    let url = c.url(leader);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (api, url, stop) = (c.api.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut longest = Duration::ZERO;
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let path = format!("{url}/v1/ns/stop/keys/w{w}-{i}/claim");
                    let started = Instant::now();
                    let answered = api.call(reqwest::Method::POST, &path, Some(serde_json::json!({}))).await;
                    longest = longest.max(started.elapsed());
                    if answered.is_err() {
                        // Nobody listens any more: the node is gone.
                        break;
                    }
                }
                longest
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let exited = tokio::task::block_in_place(|| c.terminate(leader));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(exited, "SIGTERM exits with status 0");
    let mut longest = Duration::ZERO;
    for w in writers {
        longest = longest.max(w.await.unwrap());
    }
    eprintln!("the longest request on the stopping leader took {longest:?}");
    assert!(longest < BOUND, "a request on the stopping leader took {longest:?}\n{}", c.log_tail(leader));
}
