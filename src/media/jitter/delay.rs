//! Arrival statistics for the jitter buffer: relative arrival delay and the adaptive target.
//!
//! NetEQ-like (WebRTC `delay_manager.cc`): each packet's *relative arrival delay* is how much
//! later it arrived than the fastest packet of the recent history would predict
//! (`offset = arrival − media time`, delay = `offset − min(offset over the last
//! HISTORY packets)`). The delays go into a histogram with exponential forgetting, and the
//! target delay is its configured quantile (95 % by default) rounded up to a bucket edge and
//! bounded by the configured minimum and maximum. Forgetting starts fast (a plain average of
//! the first packets) and settles at the configured factor, so the target adapts within a few
//! packets at the start of a call and forgets a past jitter episode over tens of seconds.
//!
//! # Realtime Safety
//! The histogram is allocated in [`DelayEstimator::new`]; observing and querying never
//! allocate.

use std::time::Duration;

/// Packets of history for the fastest-packet reference (2.56 s at 50 packets/s).
const HISTORY: usize = 128;
/// Histogram bucket width.
const BUCKET: Duration = Duration::from_millis(10);

/// Relative-delay histogram and fastest-path reference.
#[derive(Debug)]
pub(crate) struct DelayEstimator {
    /// Sliding-window minimum of offsets: a monotonic deque over the last `HISTORY` packets,
    /// stored as a ring of `(packet number, offset ns)`.
    window: [(u64, i64); HISTORY],
    window_start: usize,
    window_len: usize,
    packets: u64,
    histogram: Box<[f64]>,
    observed: u64,
    forget: f64,
    quantile: f64,
    min: Duration,
    max: Duration,
    target: Duration,
    dirty: bool,
}

impl DelayEstimator {
    /// An estimator whose target stays within `[min, max]`; `forget` is the per-packet
    /// forgetting factor, `quantile` the share of packets that should arrive in time.
    pub(crate) fn new(min: Duration, max: Duration, forget: f64, quantile: f64) -> Self {
        let buckets = (max.as_nanos() / BUCKET.as_nanos()) as usize + 2;
        Self {
            window: [(0, 0); HISTORY],
            window_start: 0,
            window_len: 0,
            packets: 0,
            histogram: vec![0.0; buckets].into_boxed_slice(),
            observed: 0,
            forget: if forget.is_finite() {
                forget.clamp(0.0, 1.0)
            } else {
                0.9993
            },
            quantile: if quantile.is_finite() {
                quantile.clamp(0.0, 1.0)
            } else {
                0.95
            },
            min,
            max,
            target: min,
            dirty: false,
        }
    }

    /// Forgets everything, as if just constructed.
    pub(crate) fn reset(&mut self) {
        self.reset_reference();
        self.histogram.fill(0.0);
        self.observed = 0;
        self.target = self.min;
        self.dirty = false;
    }

    /// Forgets the fastest-path reference (the media clock changed: new timeline) but keeps
    /// the delay histogram (the network path is the same).
    pub(crate) fn reset_reference(&mut self) {
        self.window_start = 0;
        self.window_len = 0;
    }

    /// Records a packet whose `offset` (arrival minus media time, in ns on the buffer's own
    /// axis) was measured; returns its relative delay in ns (≥ 0).
    pub(crate) fn observe(&mut self, offset: i64) -> i64 {
        self.push_window(offset);
        let delay = offset.saturating_sub(self.min_offset().unwrap_or(offset));
        let bucket = (delay.max(0) as u128 / BUCKET.as_nanos()) as usize;
        let bucket = bucket.min(self.histogram.len() - 1);
        // Ramp: average the first packets equally, then forget at the configured rate.
        self.observed = self.observed.saturating_add(1);
        let forget = self.forget.min(1.0 - 1.0 / self.observed as f64);
        for h in self.histogram.iter_mut() {
            *h *= forget;
        }
        self.histogram[bucket] += 1.0 - forget;
        self.dirty = true;
        delay
    }

    /// Smallest offset in the recent history (the fastest path), if any packet was seen.
    pub(crate) fn min_offset(&self) -> Option<i64> {
        (self.window_len > 0).then(|| self.window[self.window_start].1)
    }

    /// The adaptive target delay.
    pub(crate) fn target(&mut self) -> Duration {
        if self.dirty {
            self.dirty = false;
            let total: f64 = self.histogram.iter().sum();
            let want = total * self.quantile;
            let mut sum = 0.0;
            let mut edge = self.histogram.len();
            for (i, h) in self.histogram.iter().enumerate() {
                sum += h;
                if sum >= want {
                    edge = i + 1;
                    break;
                }
            }
            self.target = (BUCKET * edge as u32).clamp(self.min, self.max);
        }
        self.target
    }

    fn push_window(&mut self, offset: i64) {
        let n = self.packets;
        self.packets += 1;
        // Drop newer-or-equal entries that can never be the minimum again.
        while self.window_len > 0 {
            let back = (self.window_start + self.window_len - 1) % HISTORY;
            if self.window[back].1 < offset {
                break;
            }
            self.window_len -= 1;
        }
        // Expire entries older than the history (at most one per packet).
        if self.window_len > 0 && self.window[self.window_start].0 + HISTORY as u64 <= n {
            self.window_start = (self.window_start + 1) % HISTORY;
            self.window_len -= 1;
        }
        let slot = (self.window_start + self.window_len) % HISTORY;
        self.window[slot] = (n, offset);
        self.window_len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn estimator() -> DelayEstimator {
        DelayEstimator::new(
            Duration::from_millis(20),
            Duration::from_millis(400),
            0.9993,
            0.95,
        )
    }

    #[test]
    fn sliding_minimum_follows_the_last_history_packets() {
        let mut e = estimator();
        e.observe(5 * MS);
        e.observe(-3 * MS);
        assert_eq!(e.min_offset(), Some(-3 * MS));
        for _ in 0..HISTORY - 1 {
            e.observe(10 * MS);
        }
        assert_eq!(e.min_offset(), Some(-3 * MS));
        e.observe(10 * MS);
        assert_eq!(e.min_offset(), Some(10 * MS), "-3 ms expired");
        e.reset_reference();
        assert_eq!(e.min_offset(), None);
    }

    #[test]
    fn clean_path_targets_the_minimum_and_jitter_raises_it_within_bounds() {
        let mut e = estimator();
        for i in 0..500 {
            e.observe((i % 3) * MS / 10);
        }
        assert_eq!(e.target(), Duration::from_millis(20));
        // Uniform 0..100 ms relative delay: the 95th percentile is about 95 ms.
        let mut x: u64 = 1;
        for _ in 0..3000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            e.observe(((x >> 33) % 100) as i64 * MS);
        }
        let t = e.target();
        assert!(
            t >= Duration::from_millis(90) && t <= Duration::from_millis(110),
            "{t:?}"
        );
        for i in 0..3000 {
            e.observe(if i % 2 == 0 { 0 } else { 10_000 * MS });
        }
        assert_eq!(e.target(), Duration::from_millis(400), "bounded by max");
        e.reset();
        assert_eq!(e.target(), Duration::from_millis(20));
    }

    #[test]
    fn forgets_past_jitter() {
        let mut e = estimator();
        for i in 0..2000 {
            e.observe(if i % 2 == 0 { 0 } else { 80 * MS });
        }
        assert!(e.target() >= Duration::from_millis(80));
        for _ in 0..10_000 {
            e.observe(0);
        }
        assert_eq!(e.target(), Duration::from_millis(20));
    }
}
