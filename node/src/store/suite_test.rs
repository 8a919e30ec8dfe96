//! openraft's own storage test suite, run against the segment log (with
//! segments and a cache small enough that it rotates, deletes segments and
//! reads evicted entries back from disk) and the sled state machine.

use openraft::testing::{StoreBuilder, Suite};

use super::{open_with, LogOptions, LogStore, StateMachineStore};
use crate::types::{StorageError, TypeConfig};

const TEST_CACHE: u64 = 32 * 1024 * 1024;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let small = LogOptions { segment_bytes: 1024, cache_bytes: 256 };
        let (log, sm) = open_with(dir.path(), 1, TEST_CACHE, &small)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("the stores pass openraft's storage suite");
}
