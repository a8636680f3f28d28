//! The 20 ms media clock as pure math on `Instant`s: absolute deadlines, overrun accounting.
//!
//! A [`Ticker`] computes deadline *k* as `start + k × period`, never as "last wake-up +
//! period", so sleep jitter and tick cost never accumulate into drift. It does not read the
//! clock: the shard thread asks [`Ticker::poll_timeout`] when to wake, reads the clock once,
//! and hands that `now` to [`Ticker::handle_timeout`].
//!
//! # Overrun policy: skip and count
//!
//! When a tick runs so late that one or more later deadlines have also passed, the ticker
//! reports **all** of them in one [`TickDue`] (`ticks > 1`) and moves on to the first deadline
//! still in the future. The caller runs the rooms **once** for that wake-up; the other
//! `ticks - 1` deadlines are *skipped* and counted as deadline misses. We do not catch up
//! by running several ticks back to back: a burst of ticks would drain every jitter buffer
//! and send a burst of packets at once (which the far end would hear as a jump anyway), and
//! when the overrun comes from an overloaded shard, catching up only makes the next tick
//! later. Skipping keeps the shard on its absolute grid: the tick after an overrun is back on
//! a `start + k × period` deadline.
//!
//! # Counters
//!
//! - `ticks`: wake-ups that had at least one deadline due (each runs the rooms once);
//! - `late_ticks`: of those, ones handled more than the late threshold after their (oldest
//!   due) deadline — by default a quarter period, 5 ms for 20 ms ticks;
//! - `deadline_misses`: deadlines that passed without a tick of their own (skipped).
//!
//! # Realtime Safety
//! Plain arithmetic on `Copy` values; nothing allocates.

use std::time::{Duration, Instant};

/// What [`Ticker::handle_timeout`] found due at `now`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickDue {
    /// Deadlines that have passed since the last handled one: 0 = nothing due (called early,
    /// a harmless no-op), 1 = on time or late within one period, `n > 1` = `n - 1` deadlines
    /// were skipped (see the module docs' overrun policy).
    pub ticks: u64,
    /// How long after the oldest due deadline `now` is (zero when nothing was due).
    pub late_by: Duration,
}

impl TickDue {
    /// True when at least one deadline was due: the caller should run one tick.
    pub fn is_due(&self) -> bool {
        self.ticks > 0
    }

    /// Deadlines skipped by this wake-up (`ticks - 1`, or 0).
    pub fn skipped(&self) -> u64 {
        self.ticks.saturating_sub(1)
    }
}

/// Running totals of a [`Ticker`]; see the module docs for what each one counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickerStats {
    /// Wake-ups that ran a tick.
    pub ticks: u64,
    /// Ticks handled later than the late threshold after their deadline.
    pub late_ticks: u64,
    /// Deadlines skipped because an earlier tick overran them.
    pub deadline_misses: u64,
}

/// Absolute-deadline tick schedule: deadline *k* is `start + k × period`.
#[derive(Clone, Debug)]
pub struct Ticker {
    start: Instant,
    period: Duration,
    late_threshold: Duration,
    /// Index of the next deadline not yet handled.
    next: u64,
    stats: TickerStats,
}

impl Ticker {
    /// A schedule whose first deadline is `start` itself, then every `period`.
    ///
    /// The late threshold defaults to a quarter of the period. A zero `period` is raised to
    /// one nanosecond (a zero period has no meaningful schedule).
    pub fn new(start: Instant, period: Duration) -> Self {
        let period = period.max(Duration::from_nanos(1));
        Self {
            start,
            period,
            late_threshold: period / 4,
            next: 0,
            stats: TickerStats::default(),
        }
    }

    /// Sets how late (after its deadline) a tick may run before it counts as late.
    #[must_use]
    pub fn with_late_threshold(mut self, threshold: Duration) -> Self {
        self.late_threshold = threshold;
        self
    }

    /// Re-anchors the schedule at `now` (its next deadline becomes `now`), keeping the
    /// counters. Used after a pause that is not an overrun — a shard waking from park —
    /// so the parked time is not counted as missed deadlines.
    pub fn rebase(&mut self, now: Instant) {
        self.start = now;
        self.next = 0;
    }

    /// The next deadline: when the caller should wake and call [`Self::handle_timeout`].
    ///
    /// Changes only when [`Self::handle_timeout`] handles a due deadline, or on
    /// [`Self::rebase`].
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        self.deadline(self.next)
    }

    /// Accounts for the clock reading `now`: reports how many deadlines are due, advances
    /// past them and updates the counters. Calling it before [`Self::poll_timeout`] is a
    /// harmless no-op that returns `ticks == 0`.
    pub fn handle_timeout(&mut self, now: Instant) -> TickDue {
        let first_due = self.deadline(self.next);
        if now < first_due {
            return TickDue::default();
        }
        // Index of the latest deadline ≤ now.
        let elapsed = now.duration_since(self.start).as_nanos();
        let period = self.period.as_nanos();
        let latest = u64::try_from(elapsed / period).unwrap_or(u64::MAX);
        let ticks = latest.saturating_sub(self.next).saturating_add(1);
        self.next = latest.saturating_add(1);
        let late_by = now.duration_since(first_due);
        self.stats.ticks += 1;
        self.stats.deadline_misses += ticks - 1;
        if late_by > self.late_threshold {
            self.stats.late_ticks += 1;
        }
        TickDue { ticks, late_by }
    }

    /// The tick period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The counters so far.
    pub fn stats(&self) -> TickerStats {
        self.stats
    }

    fn deadline(&self, index: u64) -> Instant {
        // Nanosecond arithmetic: a u128 product cannot overflow, and saturating to
        // u64::MAX nanoseconds (584 years) is far beyond any process lifetime.
        let nanos = self.period.as_nanos().saturating_mul(u128::from(index));
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.start + Duration::from_nanos(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_millis(20);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_deadline_is_start_then_every_period() {
        let t0 = Instant::now();
        let mut t = Ticker::new(t0, P);
        assert_eq!(t.poll_timeout(), t0);
        assert_eq!(
            t.handle_timeout(t0),
            TickDue {
                ticks: 1,
                late_by: Duration::ZERO
            }
        );
        assert_eq!(t.poll_timeout(), t0 + ms(20));
        t.handle_timeout(t0 + ms(20));
        assert_eq!(t.poll_timeout(), t0 + ms(40));
    }

    #[test]
    fn early_call_is_a_no_op() {
        let t0 = Instant::now();
        let mut t = Ticker::new(t0, P);
        t.handle_timeout(t0);
        let due = t.handle_timeout(t0 + ms(19));
        assert_eq!(due, TickDue::default());
        assert!(!due.is_due());
        assert_eq!(t.poll_timeout(), t0 + ms(20));
        assert_eq!(t.stats().ticks, 1);
    }

    #[test]
    fn wake_up_jitter_does_not_drift() {
        let t0 = Instant::now();
        let mut t = Ticker::new(t0, P);
        // Every wake-up is 3 ms late; deadlines stay on the 20 ms grid.
        for k in 0..1000u32 {
            let deadline = t.poll_timeout();
            assert_eq!(deadline, t0 + P * k);
            let due = t.handle_timeout(deadline + ms(3));
            assert_eq!(
                due,
                TickDue {
                    ticks: 1,
                    late_by: ms(3)
                }
            );
        }
        assert_eq!(t.poll_timeout(), t0 + P * 1000);
        assert_eq!(
            t.stats(),
            TickerStats {
                ticks: 1000,
                late_ticks: 0,
                deadline_misses: 0
            }
        );
    }

    #[test]
    fn late_within_a_period_counts_late_not_missed() {
        let t0 = Instant::now();
        let mut t = Ticker::new(t0, P);
        t.handle_timeout(t0);
        let due = t.handle_timeout(t0 + ms(20) + ms(6));
        assert_eq!(
            due,
            TickDue {
                ticks: 1,
                late_by: ms(6)
            }
        );
        // Still back on the grid.
        assert_eq!(t.poll_timeout(), t0 + ms(40));
        assert_eq!(
            t.stats(),
            TickerStats {
                ticks: 2,
                late_ticks: 1,
                deadline_misses: 0
            }
        );
    }

    #[test]
    fn late_threshold_is_configurable_and_exclusive() {
        let t0 = Instant::now();
        let mut t = Ticker::new(t0, P).with_late_threshold(ms(1));
        t.handle_timeout(t0 + ms(1)); // exactly at the threshold: not late
        t.handle_timeout(t0 + ms(22)); // 2 ms late
        assert_eq!(t.stats().late_ticks, 1);
    }

    #[test]
    fn overrun_skips_missed_deadlines_and_counts_them() {
        let t0 = Instant::now();
        let mut t = Ticker::new(t0, P);
        t.handle_timeout(t0);
        // The next wake-up comes 75 ms after the 20 ms deadline: deadlines 20, 40, 60, 80
        // have passed (95 ms); one tick runs, three are skipped.
        let due = t.handle_timeout(t0 + ms(95));
        assert_eq!(
            due,
            TickDue {
                ticks: 4,
                late_by: ms(75)
            }
        );
        assert_eq!(due.skipped(), 3);
        // Next deadline is the first one still in the future, on the original grid.
        assert_eq!(t.poll_timeout(), t0 + ms(100));
        assert_eq!(
            t.stats(),
            TickerStats {
                ticks: 2,
                late_ticks: 1,
                deadline_misses: 3
            }
        );
        // And it is handled normally.
        assert_eq!(t.handle_timeout(t0 + ms(100)).ticks, 1);
    }

    #[test]
    fn wake_exactly_on_a_later_deadline_counts_that_deadline() {
        let t0 = Instant::now();
        let mut t = Ticker::new(t0, P);
        t.handle_timeout(t0);
        let due = t.handle_timeout(t0 + ms(60));
        assert_eq!(due.ticks, 3); // 20, 40, 60
        assert_eq!(t.poll_timeout(), t0 + ms(80));
    }

    #[test]
    fn rebase_after_park_is_not_a_miss() {
        let t0 = Instant::now();
        let mut t = Ticker::new(t0, P);
        t.handle_timeout(t0);
        // Parked for ten seconds, then woken.
        let wake = t0 + Duration::from_secs(10);
        t.rebase(wake);
        assert_eq!(t.poll_timeout(), wake);
        assert_eq!(
            t.handle_timeout(wake),
            TickDue {
                ticks: 1,
                late_by: Duration::ZERO
            }
        );
        assert_eq!(t.poll_timeout(), wake + P);
        assert_eq!(
            t.stats(),
            TickerStats {
                ticks: 2,
                late_ticks: 0,
                deadline_misses: 0
            }
        );
    }

    #[test]
    fn zero_period_does_not_divide_by_zero() {
        let t0 = Instant::now();
        let mut t = Ticker::new(t0, Duration::ZERO);
        assert_eq!(t.period(), Duration::from_nanos(1));
        assert_eq!(t.handle_timeout(t0 + Duration::from_nanos(5)).ticks, 6);
    }
}
