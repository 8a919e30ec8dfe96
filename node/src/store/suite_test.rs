//! openraft's own storage test suite, run against the sled stores.

use openraft::testing::{StoreBuilder, Suite};

use super::{open, LogStore, StateMachineStore};
use crate::types::{StorageError, TypeConfig};

const TEST_CACHE: u64 = 32 * 1024 * 1024;

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, sm) = open(dir.path(), TEST_CACHE)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(SledBuilder).expect("the sled stores pass openraft's storage suite");
}
