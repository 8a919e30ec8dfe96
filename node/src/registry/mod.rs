//! The registry's semantics, pure: commands in, outcomes out.
//!
//! Nothing here knows of sled, HTTP or openraft. [`apply`] reads and writes records
//! through the [`Tables`] trait; storage decides where they live. Determinism is
//! the whole contract of this module: given the same tables, meta and entry, every
//! replica must produce the same writes and the same outcome, so nothing here may
//! read a wall clock, iterate a hash map, or draw a random number.

mod apply;
mod command;
mod record;
mod tables;

#[cfg(test)]
pub mod strategies;

pub use apply::{apply, token, Meta, MAX_OPS_PER_ENTRY, SWEEP_LIMIT, SWEEP_PER_OP};
pub use command::{Command, Op, Outcome, RecordId, Request, Response};
pub use record::{RecordState, StoredCheckpoint, StoredRecord};
pub use tables::{MemTables, Sweep, Tables};
