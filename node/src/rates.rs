//! Claim outcomes per second over a short sliding window, for the status
//! page (`api::status`). The totals count what `idem_claims_total` and
//! `idem_fenced_total` count, at the same call (`api::metrics::count`): the
//! `metrics` crate's counters cannot be read back. A background task
//! ([`crate::signals::sample_claim_rates`]) samples them every
//! [`SAMPLE_EVERY`]; a rate is the increase from the oldest sample kept to
//! now, over the time between.
//!
//! Why the window is kept in the node and not computed in the page from
//! successive polls: the page shows every member's rates, which the node
//! serving it gathers in one round, so each member must hand over a rate
//! ready-made. Differencing raw totals in the page would show a negative
//! rate when a member restarts (its totals start again at zero), a jump when
//! a member misses a poll, and nothing until the second poll; and `curl
//! /v1/status` would give no rates at all. A sample a second costs six
//! atomic loads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use idem_client::proto::ClaimRates;

/// The span rates are averaged over.
pub const WINDOW: Duration = Duration::from_secs(10);
/// How often [`Window::sample`] runs.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// What a claim decided, or a fenced write, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Acquired,
    Takeover,
    Replayed,
    InProgress,
    FingerprintMismatch,
    Fenced,
}

const KINDS: usize = 6;

type Totals = [u64; KINDS];

/// Totals since the process started, indexed by [`Counted`].
static TOTALS: [AtomicU64; KINDS] = [const { AtomicU64::new(0) }; KINDS];

/// Count one `kind`.
pub fn record(kind: Counted) {
    TOTALS[kind as usize].fetch_add(1, Ordering::Relaxed);
}

fn totals() -> Totals {
    std::array::from_fn(|i| TOTALS[i].load(Ordering::Relaxed))
}

/// Samples of the totals, oldest first: the newest one at least [`WINDOW`]
/// old and every later one.
#[derive(Debug, Default)]
pub struct Window {
    samples: Mutex<VecDeque<(Instant, Totals)>>,
}

impl Window {
    /// Take a sample of the totals now.
    pub fn sample(&self) {
        self.sample_at(Instant::now(), totals());
    }

    /// Outcomes per second from the oldest sample kept to now; zero before
    /// the first sample.
    pub fn per_second(&self) -> ClaimRates {
        self.per_second_at(Instant::now(), totals())
    }

    fn sample_at(&self, at: Instant, totals: Totals) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back((at, totals));
        // The second-oldest is old enough to start the window: the oldest is not needed.
        while samples.get(1).is_some_and(|(t, _)| at.saturating_duration_since(*t) >= WINDOW) {
            samples.pop_front();
        }
    }

    fn per_second_at(&self, now: Instant, totals: Totals) -> ClaimRates {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let Some((since, then)) = samples.front() else { return ClaimRates::default() };
        let secs = now.saturating_duration_since(*since).as_secs_f64();
        let rate = |kind: Counted| {
            let i = kind as usize;
            if secs > 0.0 {
                totals[i].saturating_sub(then[i]) as f64 / secs
            } else {
                0.0
            }
        };
        ClaimRates {
            acquired: rate(Counted::Acquired),
            takeover: rate(Counted::Takeover),
            replayed: rate(Counted::Replayed),
            in_progress: rate(Counted::InProgress),
            fingerprint_mismatch: rate(Counted::FingerprintMismatch),
            fenced: rate(Counted::Fenced),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[test]
    fn rates_are_the_increase_over_the_window() {
        let (w, t0) = (Window::default(), Instant::now());
        assert_eq!(w.per_second_at(t0, [5; KINDS]), ClaimRates::default());
        for s in 0..=30 {
            // 2 acquisitions and 1 fenced write a second.
            w.sample_at(at(t0, s), [2 * s, 0, 0, 0, 0, s]);
        }
        // Samples older than the window are dropped: the oldest kept is at 20 s.
        assert_eq!(w.samples.lock().unwrap().front().map(|(t, _)| *t), Some(at(t0, 20)));
        let r = w.per_second_at(at(t0, 30), [60, 0, 0, 0, 0, 30]);
        assert_eq!((r.acquired, r.fenced, r.replayed), (2.0, 1.0, 0.0));
        // A burst since the last sample shows at once.
        let r = w.per_second_at(at(t0, 30), [60, 0, 10, 0, 0, 30]);
        assert_eq!(r.replayed, 1.0);
    }

    #[test]
    fn a_sample_taken_now_gives_zero_not_infinity() {
        let (w, t0) = (Window::default(), Instant::now());
        w.sample_at(t0, [0; KINDS]);
        assert_eq!(w.per_second_at(t0, [3; KINDS]), ClaimRates::default());
    }
}
