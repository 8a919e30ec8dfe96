//! Time as the leader stamps it onto entries, behind one small seam so tests can
//! skew the wall clock (`--test-hooks`) and a simulator could replace it.
//!
//! A leader reads the wall clock once, when its term begins (never earlier than
//! the replicated clock), and from then on advances its stamps by the monotonic
//! clock. A wall-clock jump on the leader during its term, forward or back,
//! therefore changes nothing: no lease ends early because one machine's clock
//! leapt. Downtime between terms is still counted, since a new term re-reads
//! the wall clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
    base: Mutex<Option<Base>>,
}

#[derive(Debug, Clone, Copy)]
struct Base {
    term: u64,
    stamp_ms: u64,
    at: Instant,
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
    /// replicated clock this node has applied.
    pub fn stamp(&self, term: u64, replicated_ms: u64) -> u64 {
        let mut base = self.base.lock().unwrap_or_else(|p| p.into_inner());
        let b = match *base {
            Some(b) if b.term == term => b,
            _ => {
                let b = Base { term, stamp_ms: self.now_ms().max(replicated_ms), at: Instant::now() };
                *base = Some(b);
                b
            }
        };
        b.stamp_ms + b.at.elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_clock_jump_within_a_term_does_not_move_stamps() {
        let clock = Clock::default();
        let first = clock.stamp(1, 0);
        clock.set_offset_ms(3_600_000);
        let later = clock.stamp(1, 0);
        assert!(later >= first && later < first + 1_000, "{first} -> {later}");
        clock.set_offset_ms(-3_600_000);
        assert!(clock.stamp(1, 0) >= later, "never backwards");
    }

    #[test]
    fn a_new_term_rereads_the_wall_clock_but_never_goes_below_the_replicated_one() {
        let clock = Clock::default();
        let t1 = clock.stamp(1, 0);
        clock.set_offset_ms(60_000);
        assert!(clock.stamp(2, 0) >= t1 + 60_000);
        let far = clock.now_ms() + 500_000;
        assert!(clock.stamp(3, far) >= far);
    }
}
