//! The nemesis: faults injected into the running cluster on a schedule, each
//! recorded in the history with when it started and when it was healed.
//!
//! Faults come one at a time, in turn from the enabled kinds, so that a short
//! run sees every kind and the unavailability after each can be measured. Each
//! kind rotates through its variants:
//! - `kill`: `kill -9` of the leader, then of a random node; restarted on its data;
//! - `pause`: SIGSTOP of the leader, then of a random node, longer than an
//!   election, so a deposed leader wakes up believing it still leads;
//! - `partition`: the leader cut off from the majority (clients still reach
//!   it), one follower cut off, a bridge (two nodes that cannot see each other
//!   but both see the third);
//! - `clock`: every node's wall clock skewed by up to ±30 s and the leader
//!   paused, so a node with a skewed clock starts the next term. The
//!   checker's clock invariants (`checker::clock`) catch a replicated clock
//!   that goes back or runs faster than real time (leases ending early).

pub mod control;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::time::{sleep, Instant};

use crate::api::Api;
use crate::history::{Event, Fault};
use crate::journal::Journal;
use control::{Control, ControlError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nemesis {
    Kill,
    Pause,
    Partition,
    Clock,
}

impl Nemesis {
    pub const ALL: [Nemesis; 4] = [Nemesis::Kill, Nemesis::Pause, Nemesis::Partition, Nemesis::Clock];

    pub fn name(self) -> &'static str {
        match self {
            Nemesis::Kill => "kill",
            Nemesis::Pause => "pause",
            Nemesis::Partition => "partition",
            Nemesis::Clock => "clock",
        }
    }

    /// `kill,pause,partition,clock`, `all` or `none`.
    pub fn parse_list(s: &str) -> Result<Vec<Nemesis>, String> {
        match s.trim() {
            "all" => return Ok(Nemesis::ALL.to_vec()),
            "none" | "" => return Ok(Vec::new()),
            _ => {}
        }
        s.split(',')
            .map(|name| {
                let name = name.trim();
                Nemesis::ALL
                    .into_iter()
                    .find(|n| n.name() == name)
                    .ok_or_else(|| format!("unknown nemesis `{name}` (kill, pause, partition, clock, all or none)"))
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("setting the clock offset of node {node}: {source} (is it started with --test-hooks?)")]
    Clock { node: u32, source: reqwest::Error },
}

/// When faults come and how long they last.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub nemeses: Vec<Nemesis>,
    /// Calm between a heal and the next fault.
    pub quiet: Duration,
    /// How long each fault lasts; longer than an election.
    pub hold: Duration,
}

/// What heals an injected fault.
enum Undo {
    Restart(u32),
    Resume(u32),
    HealNetwork,
    ResumeAndResetClocks(u32),
}

struct Injected {
    detail: String,
    leader_loss: bool,
    undo: Undo,
}

pub struct Nemeses {
    api: Api,
    control: Control,
    journal: std::sync::Arc<Journal>,
    nodes: u32,
    rng: StdRng,
}

impl Nemeses {
    pub fn new(api: Api, control: Control, journal: std::sync::Arc<Journal>, seed: u64) -> Nemeses {
        let nodes = api.node_count() as u32;
        Nemeses { api, control, journal, nodes, rng: StdRng::seed_from_u64(seed) }
    }

    fn say(&self, what: &str) {
        eprintln!("[{:7.1}s] {what}", self.journal.now_us() as f64 / 1e6);
    }

    /// Inject faults per `schedule` until `deadline`; the number injected.
    pub async fn run(&mut self, schedule: &Schedule, deadline: Instant) -> Result<usize, NemesisError> {
        let mut injected = 0;
        if schedule.nemeses.is_empty() {
            return Ok(0);
        }
        sleep(schedule.quiet).await;
        while Instant::now() + schedule.hold + schedule.quiet / 2 < deadline {
            let nemesis = schedule.nemeses[injected % schedule.nemeses.len()];
            let round = injected / schedule.nemeses.len();
            // Find the leader first: that can itself take a client timeout, and the
            // fault starts when the action does.
            let leader = self.leader().await;
            let start_us = self.journal.now_us();
            let fault = self.inject(nemesis, round, schedule.hold, leader).await?;
            self.say(&format!("fault {}: {}", injected + 1, fault.detail));
            sleep(schedule.hold).await;
            self.undo(fault.undo).await?;
            let end_us = self.journal.now_us();
            self.journal.record(Event::Fault(Fault {
                nemesis: nemesis.name().to_owned(),
                detail: fault.detail,
                leader_loss: fault.leader_loss,
                start_us,
                end_us,
            }));
            injected += 1;
            let ready = self.api.wait_ready(Duration::from_secs(30)).await;
            self.say(if ready { "healed; every node ready" } else { "healed, but not every node is ready after 30 s" });
            sleep(schedule.quiet).await;
        }
        Ok(injected)
    }

    /// The leader, or a random node if none is known (a fault then still happens).
    async fn leader(&mut self) -> u32 {
        match self.api.leader().await {
            Some(l) if (1..=self.nodes).contains(&l) => l,
            _ => self.rng.gen_range(1..=self.nodes),
        }
    }

    fn others(&self, node: u32) -> Vec<u32> {
        (1..=self.nodes).filter(|n| *n != node).collect()
    }

    fn random_other(&mut self, node: u32) -> u32 {
        *self.others(node).choose(&mut self.rng).expect("a cluster of at least two nodes")
    }

    async fn inject(
        &mut self,
        nemesis: Nemesis,
        round: usize,
        hold: Duration,
        leader: u32,
    ) -> Result<Injected, NemesisError> {
        let injected = match (nemesis, round % 3) {
            (Nemesis::Kill | Nemesis::Pause, _) => {
                // Alternate: the leader, then any node (which may be the leader again).
                let target = if round & 1 == 0 { leader } else { self.rng.gen_range(1..=self.nodes) };
                let role = if target == leader { "leader" } else { "follower" };
                let hold = humantime::format_duration(hold);
                let (detail, undo) = if nemesis == Nemesis::Kill {
                    self.control.kill(target).await?;
                    (format!("kill -9 {role} n{target}, restart after {hold}"), Undo::Restart(target))
                } else {
                    self.control.pause(target).await?;
                    (format!("SIGSTOP {role} n{target} for {hold}"), Undo::Resume(target))
                };
                Injected { detail, leader_loss: target == leader, undo }
            }
            (Nemesis::Partition, variant @ (0 | 1)) => {
                // First the leader, cut off from the majority while clients still
                // reach it; then a follower.
                let (node, leader_loss) =
                    if variant == 0 { (leader, true) } else { (self.random_other(leader), false) };
                for other in self.others(node) {
                    self.control.cut(node, other).await?;
                }
                let role = if leader_loss { "leader" } else { "follower" };
                Injected { detail: format!("isolate {role} n{node}"), leader_loss, undo: Undo::HealNetwork }
            }
            (Nemesis::Partition, _) => {
                let middle = self.rng.gen_range(1..=self.nodes);
                let ends = self.others(middle);
                self.control.cut(ends[0], ends[1]).await?;
                Injected {
                    detail: format!(
                        "bridge: n{} and n{} cut apart, both see n{middle} (leader was n{leader})",
                        ends[0], ends[1]
                    ),
                    leader_loss: false,
                    undo: Undo::HealNetwork,
                }
            }
            (Nemesis::Clock, _) => {
                let mut skews = Vec::new();
                for node in 1..=self.nodes {
                    let offset_ms: i64 = self.rng.gen_range(-30_000..=30_000);
                    self.api
                        .set_clock_offset(node, offset_ms)
                        .await
                        .map_err(|source| NemesisError::Clock { node, source })?;
                    skews.push(format!("n{node} {:+.1}s", offset_ms as f64 / 1e3));
                }
                self.control.pause(leader).await?;
                Injected {
                    detail: format!("clock skew {}, then SIGSTOP leader n{leader}", skews.join(" ")),
                    leader_loss: true,
                    undo: Undo::ResumeAndResetClocks(leader),
                }
            }
        };
        Ok(injected)
    }

    async fn undo(&self, undo: Undo) -> Result<(), NemesisError> {
        match undo {
            Undo::Restart(node) => self.control.start(node).await?,
            Undo::Resume(node) => self.control.resume(node).await?,
            Undo::HealNetwork => self.control.heal_network().await?,
            Undo::ResumeAndResetClocks(node) => {
                self.control.resume(node).await?;
                self.reset_clocks().await?;
            }
        }
        Ok(())
    }

    async fn reset_clocks(&self) -> Result<(), NemesisError> {
        for node in 1..=self.nodes {
            self.api.set_clock_offset(node, 0).await.map_err(|source| NemesisError::Clock { node, source })?;
        }
        Ok(())
    }

    /// Undo everything any fault might have left: network cuts, stopped or dead
    /// nodes, skewed clocks. Safe to call at any time; called once the run ends,
    /// also after an error.
    pub async fn heal_all(&self, clocks: bool) -> Result<(), NemesisError> {
        self.control.heal_network().await?;
        for node in 1..=self.nodes {
            self.control.resume(node).await?;
            self.control.start(node).await?;
        }
        if clocks {
            self.reset_clocks().await?;
        }
        Ok(())
    }
}
