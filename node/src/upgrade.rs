//! Switching on what every member supports, once every member does: today
//! one switch, expiry by walking the records (`Command::SweepRecords`, one
//! sled key per record instead of two), which earlier versions can neither
//! decode in the log nor load from a snapshot. The leader asks each member
//! what it supports (an earlier version answers 404) and proposes the switch
//! once all say yes, as etcd raises its cluster version only once every
//! member runs the new one. Like etcd's, the switch is one way: after it, a
//! node of an earlier version cannot rejoin.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::network;
use crate::registry::Command;

/// Expiry by walking the records (`crate::registry::Sweep`).
pub const SWEEP_RECORDS: &str = "sweep_records";

/// How often a leader that has not switched asks the members again.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// What this version supports, as answered to a peer's leader.
pub fn supported() -> Vec<String> {
    vec![SWEEP_RECORDS.to_owned()]
}

pub async fn run(app: Arc<App>) {
    let mut timer = tokio::time::interval(CHECK_EVERY);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !app.view.sweeps_records() {
        timer.tick().await;
        if !app.is_leader() {
            continue;
        }
        if let Err(why) = every_member_supports(&app, SWEEP_RECORDS).await {
            tracing::debug!(%why, "expiry keeps its index for now");
            continue;
        }
        match app.propose(Command::SweepRecords).await {
            Ok(_) => tracing::info!("every member supports it: expiry now walks the records, the index is removed"),
            Err(e) => tracing::debug!(error = %e, "switch to walking the records not committed"),
        }
    }
}

/// Every member, voter or learner, says it supports `feature`; which does
/// not, or did not say, otherwise.
async fn every_member_supports(app: &App, feature: &str) -> Result<(), String> {
    let metrics = app.raft.metrics().borrow().clone();
    for (id, node) in metrics.membership_config.membership().nodes() {
        if *id == app.id {
            continue;
        }
        let features = network::features(&app.peers, &node.addr, ASK_TIMEOUT).await;
        match features {
            Ok(f) if f.iter().any(|f| f == feature) => {}
            Ok(_) => return Err(format!("node {id} does not support {feature}")),
            Err(e) => return Err(format!("node {id} did not say what it supports: {e}")),
        }
    }
    Ok(())
}
