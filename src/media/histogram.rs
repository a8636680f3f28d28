//! A fixed-bucket latency histogram for tick costs: log-linear buckets, no allocation.
//!
//! Values are nanoseconds. Below 32 ns each nanosecond has its own bucket; above, every
//! power of two is split into 32 equal sub-buckets, so a bucket is at most 1/32 (3.1 %) of
//! its lower bound wide. That is HdrHistogram's layout with two significant binary digits
//! fewer, at a fixed size: [`BUCKETS`] counters cover 0 ns to 2^36 ns (≈ 68.7 s); larger
//! values land in the last bucket, and the exact maximum is kept separately.
//!
//! Percentiles report the **upper bound** of the bucket that holds the requested rank
//! (clamped to the observed maximum), so a reported p99 is never below the true p99 and at
//! most 3.1 % above it.
//!
//! # Realtime Safety
//! A [`Histogram`] is one inline array of 32-bit counters (4 KiB; a bucket saturates at
//! 2^32 − 1 samples, 2.7 years of one 20 ms stream); [`Histogram::record`] is a few integer
//! operations and never allocates. Construct it (and box it if it must move often) before
//! the real-time loop starts.

use std::time::Duration;

/// Sub-buckets per power of two, as a bit count (32 sub-buckets).
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Largest power-of-two exponent with its own buckets: values < 2^36 ns are resolved.
const MAX_EXP: u32 = 36;
/// Number of counters in a [`Histogram`].
pub const BUCKETS: usize = (SUB + (MAX_EXP - SUB_BITS) as u64 * SUB) as usize;

/// A sample count as a bucket counter (saturating).
fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Log-linear histogram of durations with fixed buckets (see the module docs).
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: [u32; BUCKETS],
    count: u64,
    sum_nanos: u128,
    min_nanos: u64,
    max_nanos: u64,
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: [0; BUCKETS],
            count: 0,
            sum_nanos: 0,
            min_nanos: u64::MAX,
            max_nanos: 0,
        }
    }

    /// Rebuilds a histogram from raw parts (bucket counters, sum, min and max in
    /// nanoseconds), as published through atomics by another thread. The count is the sum
    /// of the buckets; `min` is ignored when every bucket is empty.
    pub fn from_raw(
        counts: [u64; BUCKETS],
        sum_nanos: u128,
        min_nanos: u64,
        max_nanos: u64,
    ) -> Self {
        let count: u64 = counts.iter().sum();
        if count == 0 {
            return Self::new();
        }
        Self {
            counts: counts.map(saturate),
            count,
            sum_nanos,
            min_nanos,
            max_nanos,
        }
    }

    /// Adds one sample.
    pub fn record(&mut self, value: Duration) {
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.record_nanos_n(nanos, 1);
    }

    /// Adds `n` samples of `nanos` nanoseconds each.
    pub fn record_nanos_n(&mut self, nanos: u64, n: u64) {
        if n == 0 {
            return;
        }
        let c = &mut self.counts[bucket_index(nanos)];
        *c = c.saturating_add(saturate(n));
        self.count = self.count.saturating_add(n);
        self.sum_nanos += u128::from(nanos) * u128::from(n);
        self.min_nanos = self.min_nanos.min(nanos);
        self.max_nanos = self.max_nanos.max(nanos);
    }

    /// Adds every sample of `other` to `self` (per-shard histograms into a pool total).
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.count += other.count;
        self.sum_nanos += other.sum_nanos;
        self.min_nanos = self.min_nanos.min(other.min_nanos);
        self.max_nanos = self.max_nanos.max(other.max_nanos);
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Number of samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The value at quantile `q` (0.0 ..= 1.0; out-of-range values are clamped): the upper
    /// bound of the bucket holding that rank, clamped to the maximum. Zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        // Rank of the sample wanted, 1-based: ceil(q × count), at least 1.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return Duration::from_nanos(bucket_upper(i).min(self.max_nanos));
            }
        }
        Duration::from_nanos(self.max_nanos)
    }

    /// Median.
    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    /// 99th percentile.
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    /// 99.9th percentile.
    pub fn p999(&self) -> Duration {
        self.quantile(0.999)
    }

    /// Exact largest sample (zero when empty).
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_nanos)
    }

    /// Exact smallest sample (zero when empty).
    pub fn min(&self) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.min_nanos)
    }

    /// Sum of every sample (saturating at `u64::MAX` nanoseconds, ≈ 584 years).
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.sum_nanos).unwrap_or(u64::MAX))
    }

    /// Exact mean (zero when empty).
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let mean = self.sum_nanos / u128::from(self.count);
        Duration::from_nanos(u64::try_from(mean).unwrap_or(u64::MAX))
    }

    /// Raw bucket counters, for publishing a histogram through atomics.
    pub fn buckets(&self) -> [u64; BUCKETS] {
        self.counts.map(u64::from)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("p50", &self.p50())
            .field("p99", &self.p99())
            .field("max", &self.max())
            .finish()
    }
}

/// The bucket a value of `nanos` nanoseconds falls in (values ≥ 2^36 share the last one).
pub fn bucket_index(nanos: u64) -> usize {
    if nanos < SUB {
        return nanos as usize;
    }
    let msb = 63 - nanos.leading_zeros();
    if msb >= MAX_EXP {
        return BUCKETS - 1;
    }
    let shift = msb - SUB_BITS;
    let sub = (nanos >> shift) - SUB;
    (SUB + u64::from(shift) * SUB + sub) as usize
}

/// The smallest value (ns) that lands in bucket `index`.
pub fn bucket_lower(index: usize) -> u64 {
    let i = index as u64;
    if i < SUB {
        return i;
    }
    let shift = (i - SUB) / SUB;
    let sub = (i - SUB) % SUB;
    (SUB + sub) << shift
}

/// The largest value (ns) that lands in bucket `index` (the last bucket is open-ended).
pub fn bucket_upper(index: usize) -> u64 {
    if index + 1 >= BUCKETS {
        return u64::MAX;
    }
    bucket_lower(index + 1) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket saturates instead of wrapping: percentiles stay sane past 2^32 samples.
    #[test]
    fn a_full_bucket_saturates() {
        let mut h = Histogram::new();
        h.record_nanos_n(1_000, 3_000_000_000);
        h.record_nanos_n(1_000, 3_000_000_000);
        h.record_nanos_n(5_000_000, 1);
        assert_eq!(h.buckets()[bucket_index(1_000)], u64::from(u32::MAX));
        assert_eq!(h.count(), 6_000_000_001);
        assert!(h.p50() <= Duration::from_nanos(1_032));
        assert_eq!(h.max(), Duration::from_nanos(5_000_000));
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        assert_eq!(BUCKETS, 1024);
        for i in 0..BUCKETS - 1 {
            assert_eq!(bucket_index(bucket_lower(i)), i, "lower of {i}");
            assert_eq!(bucket_index(bucket_upper(i)), i, "upper of {i}");
            assert_eq!(bucket_upper(i) + 1, bucket_lower(i + 1));
        }
        assert_eq!(bucket_index(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_index(1 << 36), BUCKETS - 1);
        assert_eq!(bucket_index((1 << 36) - 1), BUCKETS - 1);
        assert_eq!(bucket_index((63 << 30) - 1), BUCKETS - 2);
    }

    #[test]
    fn relative_bucket_width_is_at_most_one_32nd() {
        for i in SUB as usize..BUCKETS - 1 {
            let (lo, hi) = (bucket_lower(i), bucket_upper(i));
            assert!((hi - lo + 1) * 32 <= lo, "bucket {i}: {lo}..={hi}");
        }
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let h = Histogram::new();
        assert!(h.is_empty());
        assert_eq!(
            (h.p50(), h.p99(), h.max(), h.min(), h.mean()),
            Default::default()
        );
    }

    #[test]
    fn percentiles_of_a_uniform_ramp() {
        let mut h = Histogram::new();
        for v in 1..=1000 {
            h.record(us(v));
        }
        assert_eq!(h.count(), 1000);
        let within = |got: Duration, want: Duration| {
            got >= want && got.as_nanos() * 32 <= want.as_nanos() * 33
        };
        assert!(within(h.p50(), us(500)), "{:?}", h.p50());
        assert!(within(h.p99(), us(990)), "{:?}", h.p99());
        assert_eq!(h.max(), us(1000));
        assert_eq!(h.min(), us(1));
        assert_eq!(h.mean(), Duration::from_nanos(500_500));
        assert_eq!(h.quantile(1.0), us(1000));
        assert!(within(h.quantile(0.0), us(1)));
    }

    #[test]
    fn single_outlier_shows_in_max_and_p999_not_p50() {
        let mut h = Histogram::new();
        for _ in 0..999 {
            h.record(us(100));
        }
        h.record(Duration::from_millis(25));
        assert!(h.p50() < us(104));
        assert!(h.p99() < us(104));
        assert_eq!(h.max(), Duration::from_millis(25));
        assert_eq!(h.quantile(1.0), Duration::from_millis(25));
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..500u64 {
            a.record(us(v * 3));
            all.record(us(v * 3));
            b.record(us(v * 7 + 1));
            all.record(us(v * 7 + 1));
        }
        a.merge(&b);
        assert_eq!(a, all);
        // Merging an empty one changes nothing, min included.
        a.merge(&Histogram::new());
        assert_eq!(a, all);
    }

    #[test]
    fn from_raw_round_trips() {
        let mut h = Histogram::new();
        for v in [3u64, 70, 900, 900, 40_000] {
            h.record(us(v));
        }
        let back = Histogram::from_raw(h.buckets(), 41_873_000, 3_000, 40_000_000);
        assert_eq!(back, h);
        assert!(Histogram::from_raw([0; BUCKETS], 5, 1, 9).is_empty());
    }

    #[test]
    fn huge_and_nan_inputs_do_not_panic() {
        let mut h = Histogram::new();
        h.record(Duration::MAX);
        h.record(Duration::from_secs(3600));
        assert_eq!(h.max(), Duration::from_nanos(u64::MAX));
        assert_eq!(h.quantile(f64::NAN), h.max());
        // Both samples share the open-ended last bucket, reported as the exact maximum.
        assert_eq!(h.quantile(-3.0), h.max());
        h.clear();
        assert!(h.is_empty());
    }
}
