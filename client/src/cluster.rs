//! Cluster endpoints: status and membership changes.

use std::time::Duration;

use reqwest::Method;

use crate::client::Client;
use crate::error::Error;
use crate::proto::{AddLearnerRequest, ChangeVotersRequest, ClusterStatus};

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
}
