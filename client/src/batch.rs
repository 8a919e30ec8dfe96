//! `POST /v1/batch`: many key operations proposed as one Raft entry.

use std::time::Duration;

use reqwest::Method;

use crate::client::Client;
use crate::error::Error;
use crate::proto::{BatchOp, BatchRequest, BatchResponse};

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
}
