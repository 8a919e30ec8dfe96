//! Chaos testing of idem: a workload that records a history while nemeses
//! break a real cluster, and a checker that proves the history linearizable.
//!
//! # Layout
//!
//! - `history`: the recorded operations, faults and heal time (JSON lines).
//! - `model`: the registry of `shared/API.md` for one key, as a sequential spec.
//! - `checker`: per key, the linearizability search (`linear`) and the direct
//!   invariants (`invariants`); across keys, the replicated clock (`clock`).
//! - `report`: counts, unavailability after each fault, verdicts.
//! - `api`: the HTTP client of the cluster, and how answers become outcomes.
//! - `journal`: the run's clock and the history file written as it runs.
//! - `workload`: concurrent clients doing claim, checkpoint, complete, release
//!   and read through every node, retrying as a real client would.
//! - `nemesis`: the faults (kill, pause, partition, clock) and their schedule,
//!   carried out through `scripts/chaos/ctl.sh`.

pub mod api;
pub mod checker;
pub mod history;
pub mod journal;
pub mod model;
pub mod nemesis;
pub mod report;
pub mod workload;
