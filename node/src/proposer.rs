//! Group commit of proposals: operations that arrive while earlier ones are
//! being replicated wait here and go to the log together, as one entry.
//!
//! openraft 0.9's core appends and flushes each `client_write` on its own
//! before it takes the next, so one entry per request means one leader fsync
//! per request. This task drains every operation waiting into one
//! `Command::Ops` entry instead: it proposes at once when idle (no linger
//! timer, so a lone request pays no extra latency) and keeps [`IN_FLIGHT`]
//! entries in flight, so the next batch fills while the previous one is
//! replicated. On a
//! follower the same batches go to the leader in one RPC each, where the
//! leader's proposer coalesces them with its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::app::App;
use crate::error::ClusterError;
use crate::network::Group;
use crate::registry::{Outcome, MAX_OPS_PER_ENTRY};

/// Entries handed to Raft and not yet answered. Two paid while the leader
/// flushed its own copy before replicating it: one entry was flushed while
/// the next was appended. Since the leader syncs beside replication, and
/// openraft 0.9 keeps one AppendEntries in flight per follower anyway, a
/// second entry only waits for the first one's round and halves the batches.
/// Measured on 2 cores, 3 nodes, 64 clients at the leader, one run of each
/// alternated six times: 1 beat 2 in every round (by 1% to 14%, median 4%);
/// 3 and 4 swung either way in two rounds; at 16 and 256 clients 1 and 2 were
/// even, and with the clients spread over the nodes 1 won three rounds of three.
const IN_FLIGHT: usize = 1;

/// Requests that may wait for a batch before submitters feel back-pressure.
const QUEUE: usize = 8192;

/// Encoded operations per entry, beyond which a batch closes. Without it,
/// 1024 requests of a 1 MiB result each would make one entry of 1 GiB: over
/// the Raft RPC and decode limits (`codec::MAX_DECODE_BYTES`), so it could
/// neither be replicated nor read back from the log after a restart. A single
/// request larger than this still goes, alone.
const MAX_ENTRY_BYTES: usize = 16 * 1024 * 1024;

type Answer = Result<Vec<Outcome>, ClusterError>;

/// One request's operations (one for a single call, up to a batch's 1000),
/// kept together in one entry and answered together.
struct Pending {
    group: Group,
    /// False for operations a follower forwarded here: they must not travel on.
    may_forward: bool,
    reply: oneshot::Sender<Answer>,
    /// The operations' encoded size, toward [`MAX_ENTRY_BYTES`].
    bytes: usize,
}

/// The submitting side, held by `App`.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Pending>,
    /// Submissions not yet answered (or given up by their caller).
    unanswered: Arc<AtomicUsize>,
}

/// Counts a submission as unanswered while it lives.
struct Unanswered(Arc<AtomicUsize>);

impl Unanswered {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Unanswered(count.clone())
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Proposer {
    /// The proposer and the queue its task drains ([`run`]).
    pub fn new() -> (Proposer, Queue) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Proposer { tx, unanswered: Arc::default() }, Queue(rx))
    }

    /// Submissions waiting for their outcomes: a stopping node keeps
    /// listening until they are answered (`handover::settle`).
    pub fn unanswered(&self) -> usize {
        self.unanswered.load(Ordering::Relaxed)
    }

    /// Propose `ops` in one entry (with whatever else is waiting) and answer
    /// their outcomes in order. At most [`MAX_OPS_PER_ENTRY`] ops.
    pub async fn submit(&self, group: Group, may_forward: bool) -> Answer {
        debug_assert!(!group.ops.is_empty() && group.ops.len() <= MAX_OPS_PER_ENTRY);
        let _unanswered = Unanswered::new(&self.unanswered);
        let (reply, answer) = oneshot::channel();
        let stopped = || ClusterError::Unavailable("the node is shutting down".into());
        let bytes = crate::codec::encoded_len(&group.ops).map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        self.tx.send(Pending { group, may_forward, reply, bytes }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The receiving side, consumed by [`run`].
pub struct Queue(mpsc::Receiver<Pending>);

/// Drain the queue into entries until every [`Proposer`] is dropped.
pub async fn run(app: Arc<App>, Queue(mut rx): Queue) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut carried: Option<Pending> = None;
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let (batch, size, next) = fill(first, &mut rx);
        carried = next;
        let app = app.clone();
        tokio::spawn(async move {
            let led = app.is_leader();
            let proposed = propose(&app, batch, size);
            tokio::pin!(proposed);
            // An entry this node proposed as leader is answered when this
            // node applies it, which a leadership change can put off until
            // the request deadline. Its slot goes to the batches behind it
            // once another node leads: those go to the new leader.
            if led {
                tokio::select! {
                    () = &mut proposed => return,
                    () = app.another_leader_than(app.id) => drop(permit),
                }
            }
            proposed.await;
        });
    }
}

/// One entry's batch: `first` and whatever waits in `rx` while it fits in
/// [`MAX_OPS_PER_ENTRY`] and [`MAX_ENTRY_BYTES`]; also its op count, and the
/// first request that did not fit (it starts the next batch).
fn fill(first: Pending, rx: &mut mpsc::Receiver<Pending>) -> (Vec<Pending>, usize, Option<Pending>) {
    let (mut size, mut bytes) = (first.group.ops.len(), first.bytes);
    let mut batch = vec![first];
    while let Ok(next) = rx.try_recv() {
        if size + next.group.ops.len() > MAX_OPS_PER_ENTRY || bytes + next.bytes > MAX_ENTRY_BYTES {
            return (batch, size, Some(next));
        }
        size += next.group.ops.len();
        bytes += next.bytes;
        batch.push(next);
    }
    (batch, size, None)
}

/// Replicate `batch` as one entry and hand each request its outcomes. A
/// batch holding forwarded operations is not forwarded again: on a node that
/// lost leadership meanwhile it fails, and its callers retry.
async fn propose(app: &App, batch: Vec<Pending>, size: usize) {
    OPS.get_or_init(|| metrics::histogram!("idem_proposal_batch_ops")).record(size as f64);
    let may_forward = batch.iter().all(|p| p.may_forward);
    let (groups, replies): (Vec<Group>, Vec<_>) = batch.into_iter().map(|p| (p.group, p.reply)).unzip();
    match app.replicate(groups, size, may_forward).await {
        Ok(answers) => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                // The submitter may have given up (its client hung up); nothing to do.
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

static OPS: std::sync::OnceLock<metrics::Histogram> = std::sync::OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Op, RecordId};

    fn pending(ops: usize, bytes: usize) -> Pending {
        let claim = |i| Op::Claim {
            id: RecordId::new("ns", format!("k{i}")),
            lease_ms: 1_000,
            retention_ms: 1_000,
            fingerprint: None,
            owner: None,
            claim_id: None,
        };
        let group = Group { caller: None, ops: (0..ops).map(claim).collect() };
        Pending { group, may_forward: true, reply: oneshot::channel().0, bytes }
    }

    fn queue(waiting: Vec<Pending>) -> mpsc::Receiver<Pending> {
        let (tx, rx) = mpsc::channel(QUEUE);
        for p in waiting {
            tx.try_send(p).unwrap_or_else(|_| panic!("queue full"));
        }
        rx
    }

    #[test]
    fn a_batch_closes_at_the_op_limit_and_at_the_byte_limit() {
        let mut rx = queue(vec![pending(400, 10), pending(600, 10), pending(100, 10)]);
        let (batch, size, next) = fill(pending(24, 10), &mut rx);
        assert_eq!((batch.len(), size, next.map(|p| p.group.ops.len())), (3, 1024, Some(100)));

        let mib = 1024 * 1024;
        let mut rx = queue(vec![pending(1, 6 * mib), pending(1, 6 * mib), pending(1, mib)]);
        let (batch, size, next) = fill(pending(1, 6 * mib), &mut rx);
        assert_eq!((batch.len(), size, next.map(|p| p.bytes)), (2, 2, Some(6 * mib)));
        // A request over the byte limit on its own still goes, alone.
        let (batch, _, next) = fill(pending(1, 20 * mib), &mut queue(vec![pending(1, 1)]));
        assert_eq!((batch.len(), next.map(|p| p.bytes)), (1, Some(1)));
    }

    #[test]
    fn the_size_counted_is_the_encoded_size() {
        let p = pending(3, 0);
        let encoded = crate::codec::encode(&p.group.ops).expect("encode").len();
        assert_eq!(crate::codec::encoded_len(&p.group.ops).expect("size"), encoded);
    }
}
