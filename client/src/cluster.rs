//! Cluster endpoints: status and membership changes.

use std::time::Duration;

use reqwest::Method;

use crate::backup;
use crate::client::Client;
use crate::error::Error;
use crate::proto::{AddLearnerRequest, ChangeVotersRequest, ClusterStatus};

/// How long the leader may take to build a snapshot and send it, beyond the
/// request timeout.
const BACKUP_WAIT: Duration = Duration::from_secs(600);

impl Client {
    /// The view of whichever node answers.
    pub async fn cluster_status(&self) -> Result<ClusterStatus, Error> {
        self.send::<()>(Method::GET, "/v1/cluster", None, Duration::ZERO).await?.decode(&[200])
    }

    pub async fn add_learner(&self, id: u64, addr: &str) -> Result<ClusterStatus, Error> {
        let body = AddLearnerRequest { id, addr: addr.to_owned() };
        self.send(Method::POST, "/v1/cluster/learners", Some(&body), Duration::ZERO).await?.decode(&[200])
    }

    pub async fn change_voters(&self, ids: Vec<u64>) -> Result<ClusterStatus, Error> {
        let body = ChangeVotersRequest { ids };
        self.send(Method::POST, "/v1/cluster/voters", Some(&body), Duration::ZERO).await?.decode(&[200])
    }

    /// A backup of the whole registry, consistent as of the call, from the
    /// leader (`GET /v1/admin/snapshot`, admin only): the bytes of a backup
    /// file, checked against their own header before they are returned.
    pub async fn backup(&self) -> Result<bytes::Bytes, Error> {
        let answer = self.send::<()>(Method::GET, "/v1/admin/snapshot", None, BACKUP_WAIT).await?;
        if answer.status != 200 {
            return Err(Error::from_answer(answer.status.as_u16(), &answer.body));
        }
        backup::verify(&mut &answer.body[..])
            .map_err(|e| Error::Unexpected { status: 200, message: format!("the backup received is unusable: {e}") })?;
        Ok(answer.body)
    }
}
