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
