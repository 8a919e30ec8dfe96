//! The running node as handlers see it: Raft, the applied state, the clock,
//! and the one way every write is proposed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idem_client::proto::{ClaimRates, Role};
use openraft::error::{ClientWriteError, RaftError};
use openraft::ServerState;

use crate::auth::{Caller, Tokens};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::ClusterError;
use crate::network::{self, Forwarded, Group, Peers, Unsent};
use crate::proposer::Proposer;
use crate::rates;
use crate::registry::{Command, Op, Outcome, Request, Response};
use crate::store::StateView;
use crate::types::{LogId, NodeId, Raft, RaftMetrics};

/// The leader `m` names, unless it names this node while no quorum has
/// acknowledged this node's leadership yet. openraft 0.9 restores a restarted
/// leader as leader of its old term at once; until a follower accepts its
/// entries it may have been replaced, and a read it served would fail to
/// confirm leadership instead of being forwarded to the real leader.
fn known_leader(m: &RaftMetrics) -> Option<NodeId> {
    known_leader_of(m.id, m.current_leader, m.state).filter(|id| *id != m.id || m.millis_since_quorum_ack.is_some())
}

/// The leader named by the parts that all of openraft's metrics carry: the
/// one named, unless it is this node while this node is not leading (it
/// reloaded its own committed vote and has not learned otherwise).
pub(crate) fn known_leader_of(me: NodeId, leader: Option<NodeId>, state: ServerState) -> Option<NodeId> {
    let id = leader?;
    (id != me || state == ServerState::Leader).then_some(id)
}

/// The known leader (other than `except`) and its address.
fn leader_of(m: &RaftMetrics, except: Option<NodeId>) -> Option<(NodeId, String)> {
    let id = known_leader(m).filter(|id| Some(*id) != except)?;
    let node = m.membership_config.membership().get_node(&id)?;
    Some((id, node.addr.clone()))
}

fn role(state: ServerState) -> Role {
    match state {
        ServerState::Leader => Role::Leader,
        ServerState::Candidate => Role::Candidate,
        ServerState::Follower => Role::Follower,
        ServerState::Learner => Role::Learner,
        ServerState::Shutdown => Role::Shutdown,
    }
}

/// One node's view of the cluster, assembled in one place for `/readyz`,
/// `/v1/cluster`, `/v1/status` and `/metrics`.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub id: NodeId,
    /// The leader this node knows of (see [`known_leader`]).
    pub leader: Option<NodeId>,
    pub role: Role,
    pub term: u64,
    pub last_log_index: Option<u64>,
    /// The highest committed index this node has learned.
    pub committed_index: u64,
    pub applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    /// The replicated clock as of the last applied entry.
    pub clock_ms: u64,
    pub records: u64,
    pub expired_total: u64,
    /// In progress past their lease, as of the last pass of
    /// [`crate::signals::count_abandoned_claims`].
    pub abandoned_claims: u64,
    /// This node's wall clock minus the replicated clock, in ms; `None`
    /// before the replicated clock has a value.
    pub clock_drift_ms: Option<i64>,
    /// On the leader, how far each follower's matched log is behind the
    /// leader's last log index, in entries; `None` on followers.
    pub replication_lag: Option<BTreeMap<NodeId, u64>>,
    pub members: Vec<Member>,
    /// Claims this node answered per second, by outcome, over the last
    /// [`rates::WINDOW`].
    pub claim_rates: ClaimRates,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    pub addr: String,
    pub voter: bool,
}

impl NodeStatus {
    /// rqlite's `/readyz`: a leader is known and everything committed that
    /// this node has learned of is applied here.
    pub fn ready(&self) -> bool {
        self.leader.is_some() && self.applied_index.unwrap_or(0) >= self.committed_index
    }
}

pub struct App {
    pub id: NodeId,
    pub raft: Raft,
    pub view: Arc<StateView>,
    pub committed: Arc<AtomicU64>,
    pub clock: Clock,
    pub config: Config,
    /// How this node reaches its peers (forwarding, Raft RPC).
    pub peers: Peers,
    /// The token file in force; `None` when tokens are off.
    pub tokens: Option<Tokens>,
    proposer: Proposer,
    /// Monotonic ms (since `started`) of this node's last proposal; an idle
    /// leader ticks after it. Monotonic, so a skewed wall clock cannot stop ticks.
    last_proposal_ms: AtomicU64,
    started: Instant,
    abandoned_claims: AtomicU64,
    /// Samples of the claim outcomes counted here, taken by
    /// [`crate::signals::sample_claim_rates`].
    pub claim_rates: rates::Window,
    /// Set once a stopping leader hands leadership over ([`crate::handover`]):
    /// from then on this node appends nothing, so its successor's log stays
    /// as long as its own.
    handing_over: AtomicBool,
}

impl App {
    pub fn new(
        config: Config,
        raft: Raft,
        view: Arc<StateView>,
        committed: Arc<AtomicU64>,
        peers: Peers,
        tokens: Option<Tokens>,
        proposer: Proposer,
    ) -> Self {
        App {
            id: config.id,
            raft,
            view,
            committed,
            clock: Clock::default(),
            config,
            peers,
            tokens,
            proposer,
            last_proposal_ms: AtomicU64::new(0),
            started: Instant::now(),
            abandoned_claims: AtomicU64::new(0),
            claim_rates: rates::Window::default(),
            handing_over: AtomicBool::new(false),
        }
    }

    pub fn status(&self) -> NodeStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| Member { id: *id, addr: node.addr.clone(), voter: voters.contains(id) })
            .collect();
        let last = m.last_log_index.unwrap_or(0);
        let replication_lag = m.replication.as_ref().map(|r| {
            let lag = |matched: &Option<LogId>| last.saturating_sub(matched.map_or(0, |l| l.index));
            r.iter().filter(|(id, _)| **id != self.id).map(|(id, matched)| (*id, lag(matched))).collect()
        });
        let clock_ms = self.view.clock_ms();
        NodeStatus {
            id: self.id,
            leader: known_leader(&m),
            role: role(m.state),
            term: m.current_term,
            last_log_index: m.last_log_index,
            committed_index: self.committed.load(Ordering::Relaxed),
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            clock_ms,
            records: self.view.records(),
            expired_total: self.view.expired_total(),
            abandoned_claims: self.abandoned_claims.load(Ordering::Relaxed),
            clock_drift_ms: (clock_ms > 0).then(|| self.clock.now_ms() as i64 - clock_ms as i64),
            replication_lag,
            members,
            claim_rates: self.claim_rates.per_second(),
        }
    }

    /// Publish the count of a finished pass of [`crate::signals::count_abandoned_claims`].
    pub fn set_abandoned_claims(&self, n: u64) {
        self.abandoned_claims.store(n, Ordering::Relaxed);
    }

    pub fn ms_since_last_proposal(&self) -> u64 {
        self.monotonic_ms().saturating_sub(self.last_proposal_ms.load(Ordering::Relaxed))
    }

    fn monotonic_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Replicate `ops` in one entry, together with whatever other operations
    /// wait (see [`crate::proposer`]), and answer their outcomes in order.
    /// On a follower they go to the leader (see [`App::replicate`]), with the
    /// caller's token digest so the leader checks the caller again.
    pub async fn submit(&self, ops: Vec<Op>, caller: &Caller) -> Result<Vec<Outcome>, ClusterError> {
        self.submit_via(Group { caller: caller.digest(), ops }, true).await
    }

    /// [`App::submit`] for operations a follower forwarded here (the caller
    /// already checked): proposed only if this node leads, never forwarded again.
    pub async fn submit_forwarded(&self, group: Group) -> Result<Vec<Outcome>, ClusterError> {
        self.submit_via(group, false).await
    }

    async fn submit_via(&self, group: Group, may_forward: bool) -> Result<Vec<Outcome>, ClusterError> {
        match tokio::time::timeout(self.config.request_timeout, self.proposer.submit(group, may_forward)).await {
            Ok(answer) => answer,
            Err(_) => Err(ClusterError::Unavailable("no quorum within the request deadline".into())),
        }
    }

    /// Stop proposing for good: this leader is handing leadership over.
    pub fn begin_handover(&self) {
        self.handing_over.store(true, Ordering::Relaxed);
    }

    /// Client operations submitted here and not yet answered.
    pub fn unanswered(&self) -> usize {
        self.proposer.unanswered()
    }

    /// Whether this node has stopped proposing to hand leadership over.
    pub fn handing_over(&self) -> bool {
        self.handing_over.load(Ordering::Relaxed)
    }

    /// Replicate `groups` (`size` ops in all) as one entry: proposed here
    /// when this node leads, else (`may_forward`) sent to the leader over the
    /// node-to-node connection. A leader that refuses the connection (it just
    /// died) or is handing over (this one, or another) never got them, so they
    /// wait for the next leader and go once more.
    pub async fn replicate(&self, groups: Vec<Group>, size: usize, may_forward: bool) -> Forwarded {
        let handing_over = self.handing_over();
        if (self.is_leader() && !handing_over) || !may_forward {
            return self.propose_groups(groups, size).await;
        }
        let deadline = Instant::now() + self.config.request_timeout;
        let mut unreachable = handing_over.then_some(self.id);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some((id, addr)) = self.leader(left, unreachable).await else {
                return Err(ClusterError::Unavailable("no leader is known".into()));
            };
            if id == self.id {
                return self.propose_groups(groups, size).await;
            }
            let sent = tokio::select! {
                sent = network::forward(&self.peers, &addr, &groups, left) => sent,
                // A leader that stops answering (paused, cut off) would hold
                // these, and every batch behind them, until the deadline.
                () = self.another_leader_than(id) => {
                    return Err(ClusterError::Unavailable(format!("leader {id} was replaced while it had these")));
                }
            };
            match sent {
                Ok(answer) => return answer,
                Err(Unsent(e)) if unreachable.is_none() => {
                    tracing::debug!(leader = id, error = %e, "leader unreachable; waiting for the next");
                    unreachable = Some(id);
                }
                Err(Unsent(e)) => {
                    return Err(ClusterError::Unavailable(format!("the leader is unreachable: {e}")));
                }
            }
        }
    }

    /// Propose every group's ops as one entry and split the outcomes back.
    async fn propose_groups(&self, groups: Vec<Group>, size: usize) -> Forwarded {
        let mut ops = Vec::with_capacity(size);
        let mut counts = Vec::with_capacity(groups.len());
        for g in groups {
            counts.push(g.ops.len());
            ops.extend(g.ops);
        }
        let outcomes = self.propose(Command::Ops(ops)).await?.outcomes;
        if outcomes.len() != size {
            return Err(ClusterError::Unavailable("an entry applied with another number of outcomes".into()));
        }
        let mut outcomes = outcomes.into_iter();
        Ok(counts.into_iter().map(|n| Ok(outcomes.by_ref().take(n).collect())).collect())
    }

    /// Stamp `cmd` with this node's clock and replicate it as one entry;
    /// answers once a majority has it on disk and it is applied here.
    pub async fn propose(&self, cmd: Command) -> Result<Response, ClusterError> {
        if self.handing_over() {
            return Err(ClusterError::Unavailable("this node is handing leadership over".into()));
        }
        let term = self.raft.metrics().borrow().current_term;
        let stamp_ms = self.clock.stamp(term, self.view.clock_ms(), self.view.observed());
        self.last_proposal_ms.store(self.monotonic_ms(), Ordering::Relaxed);
        let write = self.raft.client_write(Request { stamp_ms, cmd });
        match tokio::time::timeout(self.config.request_timeout, write).await {
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Err(ClusterError::Unavailable("this node lost leadership".into()))
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                Err(ClusterError::Refused(e.to_string()))
            }
            Ok(Err(RaftError::Fatal(e))) => Err(ClusterError::Unavailable(format!("raft stopped: {e}"))),
            Err(_) => Err(ClusterError::Unavailable("no quorum within the request deadline".into())),
        }
    }

    /// Confirm leadership with a quorum and wait until this node has applied
    /// everything committed before the read began.
    pub async fn ensure_linearizable(&self) -> Result<(), ClusterError> {
        match tokio::time::timeout(self.config.request_timeout, self.raft.ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ClusterError::Unavailable(format!("cannot confirm leadership: {e}"))),
            Err(_) => Err(ClusterError::Unavailable("no quorum within the request deadline".into())),
        }
    }

    /// The leader's id and address, waiting up to `within` for one to be known
    /// (other than `except`, a leader found unreachable).
    pub async fn leader(&self, within: Duration, except: Option<NodeId>) -> Option<(NodeId, String)> {
        let mut rx = self.raft.metrics();
        let wait = async {
            loop {
                if let Some(found) = leader_of(&rx.borrow_and_update(), except) {
                    return Some(found);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(within, wait).await.ok().flatten()
    }

    /// Resolves once this node knows of a leader other than `id`.
    pub async fn another_leader_than(&self, id: NodeId) {
        let mut rx = self.raft.metrics();
        loop {
            if known_leader(&rx.borrow_and_update()).is_some_and(|l| l != id) {
                return;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// The address of the leader this node knows of, now.
    pub fn leader_addr(&self) -> Option<String> {
        leader_of(&self.raft.metrics().borrow(), None).map(|(_, addr)| addr)
    }

    /// Whether this node leads, as [`known_leader`] counts it.
    pub fn is_leader(&self) -> bool {
        known_leader(&self.raft.metrics().borrow()) == Some(self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(id: NodeId, leader: Option<NodeId>, state: ServerState, acked: Option<u64>) -> RaftMetrics {
        let mut m = RaftMetrics::new_initial(id);
        m.current_leader = leader;
        m.state = state;
        m.millis_since_quorum_ack = acked;
        m
    }

    #[test]
    fn a_restored_leader_is_not_known_until_a_quorum_acknowledges_it() {
        assert_eq!(known_leader(&metrics(1, Some(1), ServerState::Leader, None)), None);
        assert_eq!(known_leader(&metrics(1, Some(1), ServerState::Leader, Some(3))), Some(1));
    }

    #[test]
    fn a_follower_knows_the_leader_its_vote_names() {
        assert_eq!(known_leader(&metrics(2, Some(1), ServerState::Follower, None)), Some(1));
        assert_eq!(known_leader(&metrics(2, Some(2), ServerState::Follower, None)), None);
        assert_eq!(known_leader(&metrics(2, None, ServerState::Follower, None)), None);
    }
}
