//! idem's side: the claim (optionally followed by its complete), finding the
//! leader, and the leader's own counters from `/metrics`.

use anyhow::Context;
use clap::ValueEnum;
use idem_client::conn::Conn;
use idem_client::proto::{ClaimRequest, ClaimResponse, ClusterStatus, CompleteRequest};
use reqwest::StatusCode;

use crate::http::{expect, json, post};
use crate::load::Op;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Workload {
    /// One claim per key.
    Claim,
    /// Claim then complete: two writes per key.
    ClaimComplete,
}

/// `POST /v1/ns/{ns}/keys/{key}/claim` with a `claim_id`, as a service sends it.
pub struct Claim {
    pub ns: String,
    pub workload: Workload,
}

impl Op for Claim {
    async fn write(&self, conn: &mut Conn, key: String) -> Result<(), String> {
        let path = format!("/v1/ns/{}/keys/{key}", self.ns);
        let claim = json(&ClaimRequest { claim_id: Some(key), ..Default::default() })?;
        let body = post(conn, &format!("{path}/claim"), claim, StatusCode::CREATED).await?;
        let Workload::ClaimComplete = self.workload else { return Ok(()) };
        let Ok(ClaimResponse::Acquired { token, .. }) = serde_json::from_slice(&body) else {
            return Err(format!("claim: not acquired: {}", String::from_utf8_lossy(&body)));
        };
        let complete = CompleteRequest { token, result: serde_json::Value::Null, retention_ms: None };
        post(conn, &format!("{path}/complete"), json(&complete)?, StatusCode::OK).await.map(drop)
    }
}

/// The leader's URL, as the first endpoint that answers `GET /v1/cluster` names it.
pub async fn leader(http: &reqwest::Client, endpoints: &[String]) -> anyhow::Result<String> {
    let mut last = None;
    for e in endpoints {
        let status = match expect(http.get(format!("{e}/v1/cluster")), StatusCode::OK).await {
            Ok(body) => serde_json::from_slice::<ClusterStatus>(&body)?,
            Err(why) => {
                last = Some(format!("{e}: {why}"));
                continue;
            }
        };
        let id = status.leader_id.with_context(|| format!("{e} knows no leader"))?;
        let member = status.members.iter().find(|m| m.id == id).context("the leader is not a member")?;
        let scheme = e.split_once("://").map_or("http", |(s, _)| s);
        return Ok(format!("{scheme}://{}", member.addr));
    }
    anyhow::bail!("no endpoint answered /v1/cluster ({})", last.unwrap_or_default())
}

/// The leader's counters that say how it wrote: read before and after a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// Claims the leader answered as acquired.
    pub claims: u64,
    pub fsyncs: u64,
    /// Raft entries applied (claims share entries; ticks are entries too).
    pub applied: u64,
    pub snapshots: u64,
}

impl Counters {
    pub async fn read(http: &reqwest::Client, leader: &str) -> anyhow::Result<Counters> {
        let body = expect(http.get(format!("{leader}/metrics")), StatusCode::OK)
            .await
            .map_err(|e| anyhow::anyhow!("{leader}/metrics: {e}"))?;
        Ok(Counters::parse(&String::from_utf8_lossy(&body)))
    }

    /// A counter not yet incremented is not rendered: it reads as 0.
    fn parse(text: &str) -> Counters {
        let value = |series: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
                .map_or(0, |v| v as u64)
        };
        Counters {
            claims: value(r#"idem_claims_total{outcome="acquired"}"#),
            fsyncs: value("idem_log_fsyncs_total"),
            applied: value("idem_raft_applied_index"),
            snapshots: value(r#"idem_snapshots_total{kind="built"}"#),
        }
    }

    /// What happened between `before` and `self`.
    pub fn since(self, before: Counters) -> Counters {
        Counters {
            claims: self.claims.saturating_sub(before.claims),
            fsyncs: self.fsyncs.saturating_sub(before.fsyncs),
            applied: self.applied.saturating_sub(before.applied),
            snapshots: self.snapshots.saturating_sub(before.snapshots),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_from_prometheus_text() {
        let text = "# TYPE idem_log_fsyncs_total counter\nidem_log_fsyncs_total 12\n\
            idem_log_fsync_batch_size{quantile=\"0.5\"} 3\n\
            idem_claims_total{outcome=\"acquired\"} 340\nidem_claims_total{outcome=\"in_progress\"} 2\n\
            idem_raft_applied_index 57\n";
        let c = Counters::parse(text);
        assert_eq!(c, Counters { claims: 340, fsyncs: 12, applied: 57, snapshots: 0 });
        assert_eq!(c.since(Counters { claims: 40, fsyncs: 2, applied: 7, snapshots: 0 }).claims, 300);
    }
}
