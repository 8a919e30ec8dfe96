//! When to try again: capped exponential backoff with jitter, and the server's
//! `Retry-After` honoured. Every idem write is safe to retry (API.md), so the
//! policy only decides how long to wait and when to give up.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per logical call, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled each retry.
    pub initial_backoff: Duration,
    /// Cap on any single wait, `Retry-After` included, so a server cannot
    /// stall a caller beyond what it configured.
    pub max_backoff: Duration,
    /// Total time a logical call may spend, waits included.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    /// Long enough to ride out a leader election (about a second), short
    /// enough that a caller learns of an outage within the budget.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            budget: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// No retries at all: the first answer or error is final.
    pub fn never() -> Self {
        RetryPolicy { max_attempts: 1, ..Self::default() }
    }

    /// The wait before retry number `retry` (0 for the first retry): a random
    /// point in the upper half of the capped exponential step ("equal
    /// jitter", so callers that failed together do not retry together), but
    /// never less than the server's `Retry-After`, and never over the cap.
    pub fn backoff(&self, retry: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        let step = self.initial_backoff.saturating_mul(1u32 << retry.min(20)).min(self.max_backoff);
        let half = step / 2;
        let jittered = half + half.mul_f64(rng.gen::<f64>());
        jittered.max(retry_after.unwrap_or_default()).min(self.max_backoff)
    }
}

/// `Retry-After` in delta-seconds, the form idem sends; HTTP dates are ignored.
pub(crate) fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Default::default()
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_is_capped() {
        let mut rng = StdRng::seed_from_u64(7);
        for (retry, step_ms) in [(0, 100), (1, 200), (2, 400), (3, 800), (4, 1000), (30, 1000)] {
            for _ in 0..50 {
                let d = policy().backoff(retry, None, &mut rng);
                let step = Duration::from_millis(step_ms);
                assert!(d >= step / 2 && d <= step, "retry {retry}: {d:?} outside [{:?}, {step:?}]", step / 2);
            }
        }
    }

    #[test]
    fn jitter_spreads_waits() {
        let mut rng = StdRng::seed_from_u64(1);
        let waits: std::collections::BTreeSet<_> = (0..20).map(|_| policy().backoff(3, None, &mut rng)).collect();
        assert!(waits.len() > 10, "{waits:?}");
    }

    #[test]
    fn retry_after_is_a_floor_under_the_cap() {
        let mut rng = StdRng::seed_from_u64(3);
        assert!(policy().backoff(0, Some(Duration::from_millis(700)), &mut rng) >= Duration::from_millis(700));
        assert_eq!(policy().backoff(0, Some(Duration::from_secs(30)), &mut rng), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        assert_eq!(parse_retry_after(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(Some(" 1 ")), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(parse_retry_after(None), None);
    }
}
