//! The idle leader's tick: a `Tick` entry whenever nothing was proposed for a
//! tick interval, so the replicated clock (and with it lease and retention
//! expiry) advances without client traffic.

use std::sync::Arc;

use crate::app::App;
use crate::registry::Command;

pub async fn run(app: Arc<App>) {
    let interval = app.config.tick_interval;
    let mut timer = tokio::time::interval(interval / 2);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        if app.is_leader() && app.ms_since_last_proposal() >= interval.as_millis() as u64 {
            if let Err(e) = app.propose(Command::Tick).await {
                tracing::debug!(error = %e, "tick not committed");
            }
        }
    }
}
