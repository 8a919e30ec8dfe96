//! The Raft log's one error type. openraft sees every one of them as a fatal
//! storage error (the node stops rather than guess); the variants exist so the
//! operator reads which file is damaged and tests can tell damage from I/O.

use std::io;
use std::path::PathBuf;

use crate::types::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("raft log: {0}")]
    Io(#[from] io::Error),
    #[error(
        "raft log corrupt: {file:?} at offset {offset}: {reason}; refusing to open (replace this node's data \
         from its peers)"
    )]
    Corrupt { file: PathBuf, offset: u64, reason: String },
    #[error("raft log: {path:?} says format {found:?}, this idem-node knows only {expected:?}; refusing to start")]
    UnknownFormat { path: PathBuf, found: String, expected: &'static str },
    #[error("raft log: encoding a record: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("raft log: reading sled's log to import it: {0}")]
    Sled(#[from] sled::Error),
    #[error("raft log: sled's log cannot be imported: {0}; refusing to start")]
    Legacy(String),
    /// openraft asked for something that would leave a hole in the log.
    #[error("raft log: {0}")]
    Order(String),
}

impl From<LogError> for StorageError {
    fn from(e: LogError) -> Self {
        openraft::StorageIOError::write(&e).into()
    }
}
