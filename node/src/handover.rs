//! Leadership handover on a graceful stop: a leader told to stop (SIGTERM)
//! has its most caught-up follower campaign before it exits, so the cluster
//! has a new leader within a few round trips instead of after an election
//! timeout (about 1.5 to 2 s with the default flags: the followers' leader
//! lease, then their randomized timeout). It never delays a stop by more than
//! [`BUDGET`]; if it does not succeed, the stop goes on as before.
//!
//! openraft 0.9 has no `transfer_leader`, and a leader cannot make another
//! node leader. What it can do, in this order:
//!
//! 1. stop proposing: [`App::begin_handover`] refuses new entries here, and
//!    operations that reach this node go on to the next leader instead;
//! 2. wait until everything already in its log is applied (each of those
//!    callers has its answer) and some voter's matched index equals its last
//!    log index: that voter's log is at least as up to date as any, so its
//!    vote request passes every voter's log check;
//! 3. ask that voter, over the peers-only `POST /raft/handover`, to campaign
//!    now (`raft.trigger().elect()`, a new term);
//! 4. wait until it has stepped down (it granted the vote).
//!
//! Why the new term wins: the other followers refuse it while their leader
//! lease runs (they heard our heartbeat moments ago), but this leader grants
//! it. A leader's own vote is refreshed only when it is elected, so its lease
//! check passes once it has led for longer than the lease, and the candidate's
//! term is higher and its log as long; granting makes it a follower. The
//! candidate then holds two votes of three. (A leader elected less than a
//! lease ago refuses, the candidate's higher term deposes it anyway, and the
//! cluster elects after the usual timeout: slower, never unsafe.)
//!
//! Why it is safe: nothing here decides who leads. It only changes who
//! campaigns and when; every vote is still granted or refused by openraft's
//! own rules (a higher term, a log at least as up to date), and openraft 0.9
//! serves linearizable reads by confirming leadership with a quorum, not by
//! a lease, so a leader that steps down early misleads no reader.

use std::time::{Duration, Instant};

use openraft::ServerState;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::codec::encode;
use crate::network::{paths, BINCODE};
use crate::types::{NodeId, RaftMetrics};

/// The longest a stop waits for the handover before it goes on without one.
pub const BUDGET: Duration = Duration::from_secs(2);

/// The longest a stopping node that handed over keeps listening for the
/// answers to operations submitted here ([`settle`]), and how often it looks.
pub const SETTLE: Duration = Duration::from_secs(1);
const SETTLE_POLL: Duration = Duration::from_millis(5);

/// The pause before asking the successor again when a request did not reach it.
const RETRY_AFTER: Duration = Duration::from_millis(20);

/// The body of `POST /raft/handover`: the leader that asks, in its term. The
/// receiver campaigns only while it still follows that leader in that term,
/// so a late or repeated request cannot start a needless election.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct HandoverRequest {
    pub leader: NodeId,
    pub term: u64,
}

/// If this node leads, hand leadership to a caught-up voter, within
/// [`BUDGET`]. Logs what happened; a failure only means the others elect
/// after their timeout, as they would without it.
pub async fn hand_over(app: &App) {
    if !app.is_leader() {
        return;
    }
    app.begin_handover();
    let started = Instant::now();
    match tokio::time::timeout(BUDGET, transfer(app)).await {
        Ok(Ok(to)) => tracing::info!(to, took_ms = started.elapsed().as_millis() as u64, "leadership handed over"),
        Ok(Err(why)) => tracing::warn!("leadership not handed over ({why}); the others elect after their timeout"),
        Err(_) => tracing::warn!("leadership not handed over within {BUDGET:?}; the others elect after their timeout"),
    }
}

/// After a handover, keep serving until every operation submitted here has
/// its answer, for at most [`SETTLE`]. A node that stopped listening at once
/// would not hear from its successor: operations waiting to be forwarded to
/// the leader it does not know yet, or proposed just before the handover and
/// answered only when this node applies them, would each hold their client
/// until the request deadline (5 s by default; seen in the container rolling
/// restart). Does nothing on a node that did not lead.
pub async fn settle(app: &App) {
    if !app.handing_over() {
        return;
    }
    let started = Instant::now();
    while app.unanswered() > 0 && started.elapsed() < SETTLE {
        tokio::time::sleep(SETTLE_POLL).await;
    }
    let left = app.unanswered();
    let took_ms = started.elapsed().as_millis() as u64;
    if left > 0 {
        tracing::warn!(left, took_ms, "operations still unanswered after the handover; stopping anyway");
    } else {
        tracing::info!(took_ms, "every operation submitted here is answered");
    }
}

/// Steps 2 to 4 of the module's description; the successor's id.
async fn transfer(app: &App) -> Result<NodeId, String> {
    let mut metrics = app.raft.metrics();
    let (to, addr, term) = loop {
        {
            let m = metrics.borrow_and_update();
            if m.state != ServerState::Leader {
                return Err("no longer the leader".into());
            }
            if let Some((to, addr)) = successor(&m) {
                break (to, addr, m.current_term);
            }
        }
        metrics.changed().await.map_err(|_| "raft stopped".to_string())?;
    };
    let body = encode(&HandoverRequest { leader: app.id, term }).map_err(|e| e.to_string())?;
    let resp = loop {
        let sent = app
            .peers
            .http
            .post(app.peers.url(&addr, paths::HANDOVER))
            .header(reqwest::header::CONTENT_TYPE, BINCODE)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => break resp,
            // Nothing listens there: the successor is down or stopping too
            // (a whole cluster stopped at once); waiting would only delay this stop.
            Err(e) if e.is_connect() => return Err(format!("node {to} is not listening: {e}")),
            // A pooled connection to a process that since restarted fails
            // once; asking again is harmless (see `HandoverRequest`).
            Err(e) => {
                tracing::debug!(to, error = %e, "asking for a handover; trying again");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    };
    if !resp.status().is_success() {
        let why = resp.text().await.unwrap_or_default();
        return Err(format!("node {to} declined: {why}"));
    }
    loop {
        if metrics.borrow_and_update().state != ServerState::Leader {
            return Ok(to);
        }
        metrics.changed().await.map_err(|_| "raft stopped".to_string())?;
    }
}

/// A voter other than this leader that holds this leader's whole log, once
/// everything in it is applied here; its id and address.
fn successor(m: &RaftMetrics) -> Option<(NodeId, String)> {
    let last = m.last_log_index?;
    if m.last_applied.map(|l| l.index) != Some(last) {
        return None;
    }
    let membership = m.membership_config.membership();
    let (id, _) = m.replication.as_ref()?.iter().find(|(id, matched)| {
        **id != m.id && membership.voter_ids().any(|v| v == **id) && matched.map(|l| l.index) == Some(last)
    })?;
    Some((*id, membership.get_node(id)?.addr.clone()))
}

/// The receiving side: campaign now if this node still follows `req.leader`
/// in `req.term`; else say why not.
pub async fn campaign(app: &App, req: HandoverRequest) -> Result<(), String> {
    let (leader, term) = {
        let m = app.raft.metrics();
        let m = m.borrow();
        (m.current_leader, m.current_term)
    };
    if leader != Some(req.leader) || term != req.term {
        return Err(format!(
            "node {} follows {leader:?} in term {term}, not node {} in term {}",
            app.id, req.leader, req.term
        ));
    }
    tracing::info!(from = req.leader, term, "leader hands over: campaigning");
    app.raft.trigger().elect().await.map_err(|e| e.to_string())
}
