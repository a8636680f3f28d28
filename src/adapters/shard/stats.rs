//! Per-shard statistics published without locks: relaxed atomics written by the shard
//! thread (one writer each), read by [`super::ShardPool::stats`] from any thread.
//!
//! Readers see each counter exactly, but a snapshot is not one instant: counters read a
//! few nanoseconds apart may straddle a tick. That is fine for monitoring, and it keeps the
//! shard free of locks and of anything that could make it wait.
//!
//! # Realtime Safety
//! Writing a counter or recording a tick cost is a relaxed atomic add or store; nothing
//! allocates. [`ShardCounters::snapshot`] builds an 8 KiB [`Histogram`] and is meant for
//! the non-real-time side.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::media::histogram::{BUCKETS, Histogram, bucket_index};
use crate::media::ticker::TickerStats;

use super::ShardId;

/// A snapshot of one shard's counters and tick-cost histogram.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Which shard.
    pub shard: ShardId,
    /// Rooms on the shard (as of its last applied control command).
    pub rooms: u64,
    /// Ticks run (each runs every non-idle room once).
    pub ticks: u64,
    /// Ticks that started later than the late threshold after their deadline.
    pub late_ticks: u64,
    /// Deadlines skipped because an earlier tick overran them (skip-and-count policy).
    pub deadline_misses: u64,
    /// Control commands the shard applied.
    pub control_applied: u64,
    /// Control commands refused because the control queue was full (returned to the caller).
    pub control_full: u64,
    /// Ticks where control had to wait because the retired queue was full.
    pub retire_stalls: u64,
    /// Remove commands naming a room or member the shard did not have.
    pub unknown_targets: u64,
    /// Members that could not be added (room unknown to the shard, or the room refused).
    pub members_rejected: u64,
    /// Times the shard thread parked because it had no rooms.
    pub parks: u64,
    /// True while the shard thread is parked (no rooms: no wake-ups at all).
    pub parked: bool,
    /// True when the OS granted real-time (SCHED_FIFO) priority to the shard thread.
    pub rt_priority: bool,
    /// Cost of each tick (control + rooms), start to end, from the shard's own clock reads.
    pub tick_cost: Histogram,
    /// Each tick's deadline → its end: how late the tick started plus its whole cost (both
    /// phases). Every room's outbound packet is queued by then.
    pub deadline_to_end: Histogram,
    /// Each tick's deadline → the end of its decode phase (how late the tick started, plus
    /// control and every room's gather, see [`super::ShardCore::gather`]). A packet that the
    /// jitter buffer plays at a deadline is decoded by then, so this bounds the host-added
    /// part of packet in → decoded frame ready that follows the jitter buffer's wait (the
    /// shard thread's wake-up, the rooms decoded before, the decode itself).
    pub deadline_to_decoded: Histogram,
}

/// The live counters of one shard (see [`ShardStats`] for what each one means).
#[derive(Debug)]
pub struct ShardCounters {
    pub(crate) rooms: AtomicU64,
    pub(crate) ticks: AtomicU64,
    pub(crate) late_ticks: AtomicU64,
    pub(crate) deadline_misses: AtomicU64,
    pub(crate) control_applied: AtomicU64,
    pub(crate) control_full: AtomicU64,
    pub(crate) retire_stalls: AtomicU64,
    pub(crate) unknown_targets: AtomicU64,
    pub(crate) members_rejected: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) parked: AtomicBool,
    pub(crate) rt_priority: AtomicBool,
    cost: AtomicHistogram,
    deadline_to_end: AtomicHistogram,
    deadline_to_decoded: AtomicHistogram,
}

impl ShardCounters {
    /// All zero.
    pub fn new() -> Self {
        Self {
            rooms: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            late_ticks: AtomicU64::new(0),
            deadline_misses: AtomicU64::new(0),
            control_applied: AtomicU64::new(0),
            control_full: AtomicU64::new(0),
            retire_stalls: AtomicU64::new(0),
            unknown_targets: AtomicU64::new(0),
            members_rejected: AtomicU64::new(0),
            parks: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            rt_priority: AtomicBool::new(false),
            cost: AtomicHistogram::new(),
            deadline_to_end: AtomicHistogram::new(),
            deadline_to_decoded: AtomicHistogram::new(),
        }
    }

    /// Publishes the ticker's totals and one tick's lateness (deadline → start), decode
    /// phase (start → end of the decode phase) and cost (start → end) (shard thread only).
    pub fn record_tick(
        &self,
        ticker: TickerStats,
        late_by: Duration,
        decoded: Duration,
        cost: Duration,
    ) {
        self.ticks.store(ticker.ticks, Relaxed);
        self.late_ticks.store(ticker.late_ticks, Relaxed);
        self.deadline_misses.store(ticker.deadline_misses, Relaxed);
        self.cost.record(cost);
        self.deadline_to_end.record(late_by.saturating_add(cost));
        self.deadline_to_decoded
            .record(late_by.saturating_add(decoded));
    }

    /// Reads everything into a [`ShardStats`] (allocation-free but 8 KiB; off the shard).
    pub fn snapshot(&self, shard: ShardId) -> ShardStats {
        ShardStats {
            shard,
            rooms: self.rooms.load(Relaxed),
            ticks: self.ticks.load(Relaxed),
            late_ticks: self.late_ticks.load(Relaxed),
            deadline_misses: self.deadline_misses.load(Relaxed),
            control_applied: self.control_applied.load(Relaxed),
            control_full: self.control_full.load(Relaxed),
            retire_stalls: self.retire_stalls.load(Relaxed),
            unknown_targets: self.unknown_targets.load(Relaxed),
            members_rejected: self.members_rejected.load(Relaxed),
            parks: self.parks.load(Relaxed),
            parked: self.parked.load(Relaxed),
            rt_priority: self.rt_priority.load(Relaxed),
            tick_cost: self.cost.snapshot(),
            deadline_to_end: self.deadline_to_end.snapshot(),
            deadline_to_decoded: self.deadline_to_decoded.snapshot(),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn set(counter: &AtomicU64, value: u64) {
        counter.store(value, Relaxed);
    }
}

impl Default for ShardCounters {
    fn default() -> Self {
        Self::new()
    }
}

/// [`Histogram`] buckets as atomics: one writer records, any thread snapshots.
struct AtomicHistogram {
    counts: Box<[AtomicU64; BUCKETS]>,
    sum_nanos: AtomicU64,
    min_nanos: AtomicU64,
    max_nanos: AtomicU64,
}

impl AtomicHistogram {
    fn new() -> Self {
        Self {
            counts: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            sum_nanos: AtomicU64::new(0),
            min_nanos: AtomicU64::new(u64::MAX),
            max_nanos: AtomicU64::new(0),
        }
    }

    fn record(&self, value: Duration) {
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket_index(nanos)].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
        // Single writer: a load and a store cannot lose a concurrent update.
        if nanos < self.min_nanos.load(Relaxed) {
            self.min_nanos.store(nanos, Relaxed);
        }
        if nanos > self.max_nanos.load(Relaxed) {
            self.max_nanos.store(nanos, Relaxed);
        }
    }

    fn snapshot(&self) -> Histogram {
        let counts = std::array::from_fn(|i| self.counts[i].load(Relaxed));
        Histogram::from_raw(
            counts,
            u128::from(self.sum_nanos.load(Relaxed)),
            self.min_nanos.load(Relaxed),
            self.max_nanos.load(Relaxed),
        )
    }
}

impl std::fmt::Debug for AtomicHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicHistogram").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_matches_a_plain_histogram() {
        let c = ShardCounters::new();
        let mut want = Histogram::new();
        let mut want_end = Histogram::new();
        let mut want_decoded = Histogram::new();
        for us in [5u64, 120, 120, 800, 19_000] {
            let d = Duration::from_micros(us);
            let late = Duration::from_micros(us / 2);
            let decoded = Duration::from_micros(us / 3);
            c.record_tick(
                TickerStats {
                    ticks: 7,
                    late_ticks: 2,
                    deadline_misses: 1,
                },
                late,
                decoded,
                d,
            );
            want.record(d);
            want_end.record(late + d);
            want_decoded.record(late + decoded);
        }
        let s = c.snapshot(ShardId(3));
        assert_eq!(s.tick_cost, want);
        assert_eq!(s.deadline_to_end, want_end);
        assert_eq!(s.deadline_to_decoded, want_decoded);
        assert_ne!(s.deadline_to_decoded, s.deadline_to_end);
        assert_eq!(
            (s.shard, s.ticks, s.late_ticks, s.deadline_misses),
            (ShardId(3), 7, 2, 1)
        );
        assert_eq!(
            ShardCounters::new().snapshot(ShardId(0)).tick_cost,
            Histogram::new()
        );
    }
}
