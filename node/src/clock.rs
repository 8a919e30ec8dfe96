//! Time as the leader stamps it onto entries, behind one small seam so tests can
//! skew the wall clock (`--test-hooks`) and a simulator could replace it.
//!
//! Stamps come from the monotonic clock, anchored once per term. A new leader
//! anchors on the replicated clock as of its latest apply, plus the monotonic
//! time since that apply. Every lease granted at that clock value was granted
//! no later than this node applied it, so the clock advances no faster than
//! real time since any grant: no lease ends early because this machine's wall
//! clock runs fast, and elections add no jumps. The clock may fall behind
//! real time instead (a leader that anchored on entries it applied late, or
//! the whole cluster down), which only lengthens leases and retention: early
//! expiry is what would let a retry run an effect twice. The wall clock is
//! read once, by the first leader of a fresh cluster; a leader that has
//! applied nothing since its process started resumes from the replicated
//! clock, so, as with etcd's leases, time the whole cluster was down is not
//! counted.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
    base: Mutex<Option<Base>>,
}

/// A replicated clock value and the moment this process last applied entries
/// that left the clock there.
#[derive(Debug, Clone, Copy)]
pub struct Observed {
    pub clock_ms: u64,
    pub at: Instant,
}

impl Observed {
    /// A lower bound of real time now, in replicated-clock milliseconds.
    fn now_ms(&self) -> u64 {
        self.clock_ms + self.at.elapsed().as_millis() as u64
    }
}

#[derive(Debug, Clone, Copy)]
struct Base {
    term: u64,
    start: Observed,
}

impl Clock {
    /// Milliseconds since the Unix epoch, shifted by the test offset.
    pub fn now_ms(&self) -> u64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        wall.saturating_add(self.offset_ms.load(Ordering::Relaxed)).max(0) as u64
    }

    pub fn set_offset_ms(&self, offset: i64) {
        self.offset_ms.store(offset, Ordering::Relaxed);
    }

    /// The stamp for an entry proposed now by the leader of `term`, given the
    /// replicated clock this node has applied and its latest observation of it.
    pub fn stamp(&self, term: u64, replicated_ms: u64, seen: Option<Observed>) -> u64 {
        let mut base = self.base.lock().unwrap_or_else(|p| p.into_inner());
        let b = match *base {
            Some(b) if b.term == term => b,
            _ => {
                let anchor = match seen {
                    Some(s) => s.now_ms(),
                    None if replicated_ms == 0 => self.now_ms(),
                    None => replicated_ms,
                };
                let b = Base { term, start: Observed { clock_ms: anchor.max(replicated_ms), at: Instant::now() } };
                *base = Some(b);
                b
            }
        };
        // Entries of the previous term applied since the anchor may have left
        // the clock above it; continuing from the latest apply is as safe and
        // keeps the stamps from falling behind (and the clock from standing still).
        b.start.now_ms().max(seen.map_or(0, |s| s.now_ms()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn seen(clock_ms: u64, ago_ms: u64) -> Option<Observed> {
        Some(Observed { clock_ms, at: Instant::now() - Duration::from_millis(ago_ms) })
    }

    #[test]
    fn a_wall_clock_jump_within_a_term_does_not_move_stamps() {
        let clock = Clock::default();
        let first = clock.stamp(1, 0, None);
        clock.set_offset_ms(3_600_000);
        let later = clock.stamp(1, 0, None);
        assert!(later >= first && later < first + 1_000, "{first} -> {later}");
        clock.set_offset_ms(-3_600_000);
        assert!(clock.stamp(1, 0, None) >= later, "never backwards");
    }

    #[test]
    fn a_new_leader_with_a_fast_wall_clock_continues_the_replicated_one() {
        let clock = Clock::default();
        clock.set_offset_ms(60_000);
        let replicated = clock.now_ms() - 60_000;
        let s = clock.stamp(7, replicated, seen(replicated, 2_000));
        assert!((replicated + 2_000..replicated + 3_000).contains(&s), "stamp {s} jumped from {replicated}");
    }

    #[test]
    fn a_leader_that_anchored_behind_the_clock_catches_up_as_it_applies() {
        let clock = Clock::default();
        let low = clock.stamp(5, 1_000_000, seen(1_000_000, 0));
        assert!(low < 1_001_000);
        let caught_up = clock.stamp(5, 1_004_000, seen(1_004_000, 0));
        assert!((1_004_000..1_005_000).contains(&caught_up), "{caught_up}");
    }

    #[test]
    fn a_new_term_counts_the_time_since_the_last_applied_entry() {
        let clock = Clock::default();
        clock.set_offset_ms(-600_000);
        let s = clock.stamp(2, 1_000_000, seen(1_000_000, 5_000));
        assert!((1_005_000..1_006_000).contains(&s), "{s}");
    }

    #[test]
    fn a_fresh_cluster_starts_from_the_wall_clock() {
        let clock = Clock::default();
        clock.set_offset_ms(60_000);
        let wall = clock.now_ms();
        assert!((wall..wall + 1_000).contains(&clock.stamp(1, 0, None)));
    }

    #[test]
    fn after_a_restart_the_clock_resumes_where_it_stood_whatever_the_wall_clock_says() {
        let clock = Clock::default();
        clock.set_offset_ms(3_600_000);
        let s = clock.stamp(9, 1_000_000, None);
        assert!((1_000_000..1_001_000).contains(&s), "{s}");
        let stale = clock.stamp(10, 2_000_000, seen(1_000_000, 0));
        assert!(stale >= 2_000_000, "never below the replicated clock, even with a stale observation");
    }
}
