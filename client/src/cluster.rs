//! Batch and cluster endpoints.

use std::time::Duration;

use reqwest::Method;

use crate::client::Client;
use crate::error::Error;
use crate::proto::{AddLearnerRequest, BatchOp, BatchRequest, BatchResponse, ChangeVotersRequest, ClusterStatus};

impl Client {
    /// Proposes `ops` as one Raft entry; each result is what the single call
    /// would have answered. Claims without a `claim_id` get one here.
    pub async fn batch(&self, mut ops: Vec<BatchOp>) -> Result<BatchResponse, Error> {
        for op in &mut ops {
            if let BatchOp::Claim { req, .. } = op {
                req.claim_id.get_or_insert_with(|| uuid::Uuid::new_v4().to_string());
            }
            op.validate()?;
        }
        let body = BatchRequest { ops };
        self.send(Method::POST, "/v1/batch", Some(&body), Duration::ZERO).await?.decode(&[200])
    }

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
