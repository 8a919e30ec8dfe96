//! How far this node's log is on disk, published by the writer thread.
//!
//! openraft 0.9 waits for the leader's own flush before it replicates, so
//! every round paid the leader's fsync and then a follower's, one after the
//! other. The log therefore reports a leader's own entries flushed as soon as
//! they are placed, and the fsync runs beside replication. openraft then
//! counts the leader's copy in the majority before it is on disk, so the two
//! things a commit makes visible wait here for the leader's real fsync:
//! applying an entry (the state machine, before it applies) and telling the
//! followers it is committed (the network, which lowers `leader_commit`). An
//! entry is therefore applied anywhere, and a claim acknowledged, only once
//! the leader and a follower both have it on disk: a majority of three.
//! Entries that are not plain operations (blank, membership) are still
//! reported only once durable, so membership changes keep openraft's order.

use std::io;

use tokio::sync::watch;

use crate::types::LogId;

/// The log's durable end, the last entry it acknowledged before its fsync,
/// and why it will not advance again if it failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Flushed {
    /// Every entry up to this one is on disk.
    durable: Option<LogId>,
    /// The highest index acknowledged to openraft before it was on disk.
    early: Option<u64>,
    /// A write or sync failed: nothing placed after `durable` will be durable.
    failed: Option<String>,
}

impl Flushed {
    /// Whether the entry at `index` may be applied: on disk, or never
    /// acknowledged early (then openraft had it only once it was on disk).
    fn settled(&self, index: u64) -> bool {
        self.durable.is_some_and(|l| l.index >= index) || self.early.is_none_or(|e| index > e)
    }
}

/// The writer's side; cheap to clone.
#[derive(Debug, Clone)]
pub struct Durable {
    tx: watch::Sender<Flushed>,
}

impl Default for Durable {
    fn default() -> Self {
        Durable { tx: watch::Sender::new(Flushed::default()) }
    }
}

impl Durable {
    /// Everything up to `last` is on disk. Called in the order the log made it
    /// so: the writer completes jobs in order.
    pub fn set(&self, last: Option<LogId>) {
        self.tx.send_if_modified(|f| {
            let changed = f.failed.is_none() && f.durable != last;
            if changed {
                f.durable = last;
            }
            changed
        });
    }

    /// The log was cut back to `last`, durably, with nothing appended since:
    /// it is the durable end, and entries acknowledged early after it are gone.
    pub fn truncated(&self, last: Option<LogId>) {
        self.tx.send_modify(|f| {
            f.early = f.early.min(last.map(|l| l.index));
        });
        self.set(last);
    }

    /// Entries up to `index` were acknowledged before they were on disk.
    pub fn acked_early(&self, index: u64) {
        self.tx.send_if_modified(|f| {
            let raised = f.early < Some(index);
            f.early = f.early.max(Some(index));
            raised
        });
    }

    pub fn fail(&self, why: &io::Error) {
        self.tx.send_modify(|f| f.failed = Some(why.to_string()));
    }

    pub fn watch(&self) -> DurableWatch {
        DurableWatch { rx: self.tx.subscribe() }
    }
}

/// The readers' side: the state machine and the Raft network hold one each.
#[derive(Debug, Clone)]
pub struct DurableWatch {
    rx: watch::Receiver<Flushed>,
}

impl DurableWatch {
    /// Wait until the entry at `index` may be applied: until it is on disk
    /// here if the log acknowledged it early.
    pub async fn settled(&mut self, index: u64) -> io::Result<()> {
        let seen = self
            .rx
            .wait_for(|f| f.settled(index) || f.failed.is_some())
            .await
            .map_err(|_| io::Error::other("the raft log is closed"))?;
        match &seen.failed {
            Some(why) if !seen.settled(index) => Err(io::Error::other(format!("the raft log failed: {why}"))),
            _ => Ok(()),
        }
    }

    /// `committed` as far as this node has it on disk: what a leader may tell
    /// its followers is committed. Entries up to the durable end are a prefix
    /// of the leader's log, so the lower id is also committed.
    pub fn clamp(&self, committed: Option<LogId>) -> Option<LogId> {
        let durable = self.rx.borrow().durable;
        if durable.map(|l| l.index) < committed.map(|l| l.index) {
            durable
        } else {
            committed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn id(index: u64) -> Option<LogId> {
        Some(LogId::new(CommittedLeaderId::new(1, 1), index))
    }

    #[tokio::test]
    async fn an_early_acknowledged_entry_waits_for_the_sync_that_covers_it() {
        let durable = Durable::default();
        let mut watch = durable.watch();
        watch.settled(3).await.expect("never acknowledged early: nothing to wait for");
        durable.set(id(4));
        durable.acked_early(6);
        watch.settled(4).await.expect("already durable");
        let waiter = tokio::spawn(async move { watch.settled(6).await });
        tokio::task::yield_now().await;
        durable.set(id(5));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "index 6 is not durable at 5");
        durable.set(id(6));
        waiter.await.unwrap().expect("durable at 6");
    }

    #[tokio::test]
    async fn a_failed_log_fails_the_waiters_and_stays_failed() {
        let durable = Durable::default();
        let mut watch = durable.watch();
        durable.set(id(2));
        durable.acked_early(3);
        let waiter = tokio::spawn(async move { watch.settled(3).await });
        durable.fail(&io::Error::other("disk gone"));
        let err = waiter.await.unwrap().expect_err("the log failed");
        assert!(err.to_string().contains("disk gone"), "{err}");
        durable.set(id(9));
        let watch = durable.watch();
        assert_eq!(watch.clamp(id(9)), id(2), "nothing placed after a failure counts as durable");
    }

    #[test]
    fn followers_learn_only_what_the_leader_has_on_disk() {
        let durable = Durable::default();
        let watch = durable.watch();
        assert_eq!(watch.clamp(id(3)), None, "nothing durable yet");
        durable.set(id(5));
        assert_eq!(watch.clamp(id(3)), id(3), "committed and durable");
        assert_eq!(watch.clamp(id(8)), id(5), "committed beyond the durable end");
        assert_eq!(watch.clamp(None), None);
        durable.truncated(id(2));
        assert_eq!(watch.clamp(id(3)), id(2), "a truncation moves the durable end back");
    }

    #[tokio::test]
    async fn entries_acknowledged_early_and_truncated_are_not_waited_for() {
        let durable = Durable::default();
        let mut watch = durable.watch();
        durable.set(id(2));
        durable.acked_early(6);
        durable.truncated(id(3));
        watch.settled(5).await.expect("index 5 is a new entry, acknowledged only once durable");
        watch.settled(3).await.expect("durable");
    }
}
