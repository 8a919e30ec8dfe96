//! openraft's own storage test suite, run against the segment log (with
//! segments and a cache small enough that it rotates, deletes segments and
//! reads evicted entries back from disk) and the sled state machine: once
//! with segments of whole blocks, which the writer writes directly
//! (`log/direct.rs`), once with segments it writes through the page cache.

use openraft::testing::{StoreBuilder, Suite};

use super::{open_with, LogOptions, LogStore, StateMachineStore};
use crate::types::{StorageError, TypeConfig};

const TEST_CACHE: u64 = 32 * 1024 * 1024;

/// Builds stores whose log segments are `segment_bytes` long.
struct Builder {
    segment_bytes: u64,
}

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let small = LogOptions { segment_bytes: self.segment_bytes, cache_bytes: 256 };
        let (log, sm) = open_with(dir.path(), 1, TEST_CACHE, &small)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_with_direct_writes() {
    let blocks = 2 * super::log::DIRECT_BLOCK;
    Suite::test_all(Builder { segment_bytes: blocks }).expect("the stores pass openraft's storage suite");
}

#[test]
fn openraft_storage_suite_through_the_page_cache() {
    Suite::test_all(Builder { segment_bytes: 1024 }).expect("the stores pass openraft's storage suite");
}
