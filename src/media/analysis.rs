//! Signal comparison for tests and benches: RMS, SNR and normalized cross-correlation with a
//! search for the delay that best aligns two signals.
//!
//! Lossy codecs, concealment and mixing change the bytes and the waveform, so tests judge audio
//! by how close it is to a reference, never by equality:
//!
//! ```
//! use mediabot::media::analysis::{align, overlap, snr_db};
//!
//! let source: Vec<f32> = (0..4_800).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
//! // The "decoded" signal: the source delayed by 312 samples (an Opus encoder's lookahead).
//! let mut decoded = vec![0.0; 312];
//! decoded.extend_from_slice(&source[..source.len() - 312]);
//!
//! let a = align(&source, &decoded, 480);
//! assert_eq!(a.lag, 312);
//! assert!(a.correlation > 0.999);
//! let (r, t) = overlap(&source, &decoded, a.lag);
//! assert!(snr_db(r, t) > 60.0);
//! ```
//!
//! Conventions:
//! - Signals are `f32` samples at any rate (the media core uses ±1.0 at 48 kHz).
//! - A positive `lag` means `test` is *late*: `test[i + lag]` lines up with `reference[i]`.
//! - Correlation is the normalized inner product (cosine similarity) of the overlapping parts,
//!   without mean removal (audio is near zero-mean): 1.0 identical up to a positive gain, 0.0
//!   unrelated, −1.0 inverted. It ignores gain, so pair it with [`rms`] or [`snr_db`] when level
//!   matters.
//! - Sums run in `f64`, so minutes of audio compare without precision loss.
//!
//! Cost: [`align`] is O(`max_lag` × length). In unoptimised test builds keep the product below
//! about 10⁹ (e.g. ±480 samples over 10 s of 48 kHz audio), or align on an excerpt and apply
//! the lag to the whole signal with [`overlap`].
//!
//! Not for the real-time path: nothing here allocates, but it is written for clarity, not speed.

/// Root-mean-square level of `x` (0.0 for an empty slice). A full-scale sine has RMS ≈ 0.707.
pub fn rms(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    (energy(x) / x.len() as f64).sqrt() as f32
}

/// RMS level of `x` in dBFS (0 dB = RMS 1.0), floored at −200 dB for silence.
pub fn rms_db(x: &[f32]) -> f32 {
    let r = rms(x);
    if r <= 0.0 {
        return -200.0;
    }
    (20.0 * r.log10()).max(-200.0)
}

/// Normalized correlation of `a` and `b` at lag 0 over their common length (`min` of the two).
///
/// Returns 0.0 when either part is empty or silent.
pub fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa <= 0.0 || bb <= 0.0 {
        return 0.0;
    }
    (ab / (aa * bb).sqrt()) as f32
}

/// The parts of `reference` and `test` that line up when `test` is `lag` samples late
/// (negative: early), truncated to the same length.
///
/// `overlap(r, t, 0)` is the common prefix; a lag beyond either length gives empty slices.
pub fn overlap<'a>(reference: &'a [f32], test: &'a [f32], lag: isize) -> (&'a [f32], &'a [f32]) {
    let shift = lag.unsigned_abs();
    let (r, t) = if lag >= 0 {
        (reference, test.get(shift..).unwrap_or(&[]))
    } else {
        (reference.get(shift..).unwrap_or(&[]), test)
    };
    let n = r.len().min(t.len());
    (&r[..n], &t[..n])
}

/// Result of [`align`]: the best lag and the correlation there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Alignment {
    /// Samples by which `test` is late relative to `reference` (negative: early).
    pub lag: isize,
    /// Normalized correlation of the overlapping parts at that lag (see [`correlation`]).
    pub correlation: f32,
}

/// Finds the lag in `-max_lag..=max_lag` that maximises the normalized correlation of
/// `reference` and `test` (see the module docs for the sign convention and cost).
///
/// Ties go to the smallest |lag|. Silent or empty inputs give `{ lag: 0, correlation: 0.0 }`.
pub fn align(reference: &[f32], test: &[f32], max_lag: usize) -> Alignment {
    let mut best = Alignment {
        lag: 0,
        correlation: correlation(reference, test),
    };
    let max_lag = max_lag.min(isize::MAX as usize) as isize;
    for d in 1..=max_lag {
        for lag in [d, -d] {
            let (r, t) = overlap(reference, test, lag);
            let c = correlation(r, t);
            if c > best.correlation {
                best = Alignment {
                    lag,
                    correlation: c,
                };
            }
        }
    }
    best
}

/// Signal-to-noise ratio in dB of `test` against `reference` over their common length:
/// `10·log10(Σ reference² / Σ (reference − test)²)`.
///
/// Identical signals give `f32::INFINITY`; a silent reference gives `f32::NEG_INFINITY` unless
/// `test` is silent too. Align first (see [`align`] and [`overlap`]): SNR is very sensitive to
/// delay. Typical values: 0 dB ≙ error as loud as the signal; lossy speech codecs at 32 kbit/s
/// reach roughly 5–20 dB waveform SNR.
pub fn snr_db(reference: &[f32], test: &[f32]) -> f32 {
    let n = reference.len().min(test.len());
    let (r, t) = (&reference[..n], &test[..n]);
    let signal = energy(r);
    let noise: f64 = r
        .iter()
        .zip(t)
        .map(|(&x, &y)| {
            let e = f64::from(x) - f64::from(y);
            e * e
        })
        .sum();
    if noise <= 0.0 {
        return f32::INFINITY;
    }
    if signal <= 0.0 {
        return f32::NEG_INFINITY;
    }
    (10.0 * (signal / noise).log10()) as f32
}

/// Sum of squares in `f64`.
fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> Vec<f32> {
        // Two inharmonic partials, so no lag but the true one correlates near 1.
        (0..n)
            .map(|i| {
                let t = i as f32;
                0.4 * (t * 0.031).sin() + 0.2 * (t * 0.173).sin()
            })
            .collect()
    }

    #[test]
    fn finds_positive_and_negative_delays() {
        let src = tone(6_000);
        let late: Vec<f32> = std::iter::repeat_n(0.0, 100)
            .chain(src.iter().copied())
            .collect();
        let a = align(&src, &late, 200);
        assert_eq!(a.lag, 100);
        assert!(a.correlation > 0.999_9);
        let early = &src[37..];
        let a = align(&src, early, 200);
        assert_eq!(a.lag, -37);
        let (r, t) = overlap(&src, early, a.lag);
        assert_eq!(r.len(), t.len());
        assert_eq!(snr_db(r, t), f32::INFINITY);
    }

    #[test]
    fn correlation_ignores_gain_but_snr_does_not() {
        let src = tone(2_000);
        let half: Vec<f32> = src.iter().map(|s| s * 0.5).collect();
        assert!((correlation(&src, &half) - 1.0).abs() < 1e-6);
        // Error is half the signal: 20·log10(2) ≈ 6.02 dB.
        assert!((snr_db(&src, &half) - 6.02).abs() < 0.01);
        let inverted: Vec<f32> = src.iter().map(|s| -s).collect();
        assert!((correlation(&src, &inverted) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn levels_and_degenerate_inputs() {
        let sq = [0.5f32, -0.5, 0.5, -0.5];
        assert!((rms(&sq) - 0.5).abs() < 1e-6);
        assert!((rms_db(&sq) + 6.02).abs() < 0.01);
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(rms_db(&[0.0; 8]), -200.0);
        assert_eq!(correlation(&[], &[1.0]), 0.0);
        assert_eq!(correlation(&[0.0; 4], &[1.0; 4]), 0.0);
        assert_eq!(
            align(&[0.0; 10], &[0.0; 10], 3),
            Alignment {
                lag: 0,
                correlation: 0.0
            }
        );
        assert_eq!(overlap(&[1.0; 4], &[1.0; 4], 9), (&[][..], &[][..]));
        assert_eq!(snr_db(&[0.0; 4], &[1.0; 4]), f32::NEG_INFINITY);
    }
}
