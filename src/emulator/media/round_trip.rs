//! Judging what a participant heard: the audio round-trip delay (where its own speech comes
//! back) and whether the first thing it heard was a given prompt (the greeting).
//!
//! Both work on one participant's [`ParticipantReport`](super::ParticipantReport): `sent` and
//! `heard` share one timeline (sample `i` of each belongs to the same room tick), so a lag
//! between them is a delay in samples at 48 kHz.
//!
//! # How the delay is found
//!
//! Normalized cross-correlation ([`crate::media::analysis`]) over a search window of up to
//! seconds is too slow sample by sample (O(lags × length)), so the search is done in two
//! passes:
//! 1. **Coarse**, at 2 kHz: both signals are averaged over blocks of [`COARSE_DECIMATION`]
//!    samples (a crude low-pass that keeps speech's envelope and its lower formants) and every
//!    lag of the window is tried.
//! 2. **Fine**, at 48 kHz: ±[`FINE_RADIUS`] samples around the coarse lag, with
//!    [`crate::media::analysis::align`] on the full-rate excerpt.
//!
//! The search reference is an excerpt of what was sent: [`EXCERPT`] of audio from where the
//! speech starts (the first frame above [`SILENCE_DBFS`]), so leading silence never
//! dominates. The delay is then tracked over all the speech in 1 s segments (whole-frame moves of
//! up to ±2 frames): on a
//! real path it moves by whole frames when a jitter buffer adapts or a loaded shard skips a
//! tick, and one fixed lag would misjudge the rest of the call.

use std::path::Path;
use std::time::Duration;

use crate::media::analysis::{align, correlation, overlap, rms_db};
use crate::media::frame::FRAME_SAMPLES;

use super::error::MediaProcError;
use super::speech::load_wav_48k;

/// Samples averaged into one coarse sample (48 kHz → 2 kHz).
pub const COARSE_DECIMATION: usize = 24;
/// Half-width of the fine search around the coarse lag, in 48 kHz samples (2 ms).
pub const FINE_RADIUS: usize = 96;
/// Length of the reference excerpt.
pub const EXCERPT: Duration = Duration::from_secs(3);
/// Length of the segments the delay is tracked over.
const SEGMENT: usize = 48_000;
/// How far (48 kHz samples, 40 ms: two frames, plus the fine radius) a segment's delay may
/// move from the excerpt's.
const TRACK_RADIUS: usize = 2 * FRAME_SAMPLES + TRACK_FINE;
/// Half-width of each segment's fine search around a whole-frame move (0.5 ms).
const TRACK_FINE: usize = 24;
/// A 20 ms frame whose RMS is below this (dBFS) counts as silence.
pub const SILENCE_DBFS: f32 = -45.0;

const RATE: f64 = 48_000.0;

/// Where a participant's own speech came back in what it heard.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoundTrip {
    /// The delay, in milliseconds (lag / 48).
    pub delay_ms: f64,
    /// The delay in 48 kHz samples.
    pub lag_samples: usize,
    /// Normalized cross-correlation of all the speech sent with what was heard at the
    /// delay, tracked per 1 s segment (1.0 = the same waveform up to gain).
    pub correlation: f32,
    /// How much the delay moved during the speech (largest minus smallest segment delay),
    /// ms: 0 on a steady path; a multiple of 20 ms when a jitter buffer adapted or a tick was
    /// skipped.
    pub delay_spread_ms: f64,
}

impl RoundTrip {
    /// The delay as a [`Duration`].
    pub fn delay(&self) -> Duration {
        Duration::from_secs_f64(self.delay_ms / 1_000.0)
    }
}

/// Finds the delay in `min_delay..=max_delay` at which `sent` (the participant's own speech)
/// best reappears in `heard`, by normalized cross-correlation (see the module docs). The
/// delay is searched with an excerpt, then tracked over **all** the speech sent (first to
/// last non-silent frame) in 1 s segments, each at the excerpt's delay moved by 0, ±1 or ±2
/// whole frames (±0.5 ms): the delay reported is the segments' median, the correlation that
/// of all segments, each at its own delay, and [`RoundTrip::delay_spread_ms`] says how much
/// the delay moved.
///
/// Returns `None` when `sent` holds no speech, or `heard` is too short to hold the excerpt at
/// `min_delay`. A returned correlation near 0 means the speech did not come back.
pub fn round_trip(
    sent: &[f32],
    heard: &[f32],
    min_delay: Duration,
    max_delay: Duration,
) -> Option<RoundTrip> {
    let start = first_audio_in(sent)?;
    let excerpt_len = ((EXCERPT.as_secs_f64() * RATE) as usize).min(sent.len() - start);
    if excerpt_len < FRAME_SAMPLES {
        return None;
    }
    let reference = &sent[start..start + excerpt_len];
    let min_lag = (min_delay.as_secs_f64() * RATE) as usize;
    let max_lag = ((max_delay.as_secs_f64() * RATE) as usize).max(min_lag);
    // heard[start + lag ..] lines up with the reference; keep only what exists.
    let max_lag = max_lag.min(heard.len().checked_sub(start + FRAME_SAMPLES)?);
    if max_lag < min_lag {
        return None;
    }
    let coarse_lag = coarse_search(reference, &heard[start..], min_lag, max_lag);
    let (lag, _) = fine_search(reference, &heard[start..], coarse_lag, min_lag, max_lag);
    // Judge the whole speech, a segment at a time: a jitter buffer that adapts, or a tick a
    // loaded shard skipped, moves the delay by a frame or two during a call.
    let end = end_of_audio(sent).max(start + FRAME_SAMPLES);
    let track_lo = lag.saturating_sub(TRACK_RADIUS).max(min_lag);
    let track_hi = (lag + TRACK_RADIUS).min(max_lag);
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    let mut lags = Vec::new();
    let mut at = start;
    while at < end {
        let seg_end = (at + SEGMENT).min(end);
        let seg = &sent[at..seg_end];
        at = seg_end;
        if seg.len() < FRAME_SAMPLES || rms_db(seg) <= SILENCE_DBFS {
            continue;
        }
        let base = seg_end - seg.len();
        let Some(test) = heard.get(base..) else { break };
        if test.len() < track_lo + FRAME_SAMPLES {
            break;
        }
        let hi = track_hi.min(test.len() - FRAME_SAMPLES);
        // Delays move by whole frames: try the excerpt's delay and ±1, ±2 frames from it.
        let mut best = (lag.clamp(track_lo, hi), f32::NEG_INFINITY);
        for k in -2isize..=2 {
            let Some(candidate) = lag.checked_add_signed(k * FRAME_SAMPLES as isize) else {
                continue;
            };
            if candidate < track_lo || candidate > hi {
                continue;
            }
            let found = fine_search_within(seg, test, candidate, TRACK_FINE, track_lo, hi);
            if found.1 > best.1 {
                best = found;
            }
        }
        let seg_lag = best.0;
        let (r, t) = overlap(seg, test, seg_lag as isize);
        let (x, y, z) = sums(r, t);
        ab += x;
        aa += y;
        bb += z;
        lags.push(seg_lag);
    }
    let correlation = if aa > 0.0 && bb > 0.0 {
        (ab / (aa * bb).sqrt()) as f32
    } else {
        0.0
    };
    lags.sort_unstable();
    let median = lags.get(lags.len() / 2).copied().unwrap_or(lag);
    let spread = match (lags.first(), lags.last()) {
        (Some(lo), Some(hi)) => hi - lo,
        _ => 0,
    };
    Some(RoundTrip {
        delay_ms: median as f64 * 1_000.0 / RATE,
        lag_samples: median,
        correlation,
        delay_spread_ms: spread as f64 * 1_000.0 / RATE,
    })
}

/// Σab, Σa², Σb² in f64.
fn sums(a: &[f32], b: &[f32]) -> (f64, f64, f64) {
    a.iter()
        .zip(b)
        .fold((0.0, 0.0, 0.0), |(ab, aa, bb), (&x, &y)| {
            let (x, y) = (f64::from(x), f64::from(y));
            (ab + x * y, aa + x * x, bb + y * y)
        })
}

/// One past the last sample of the last 20 ms frame louder than [`SILENCE_DBFS`] (0 when
/// all silent).
pub fn end_of_audio(pcm: &[f32]) -> usize {
    pcm.chunks_exact(FRAME_SAMPLES)
        .rposition(|f| rms_db(f) > SILENCE_DBFS)
        .map_or(0, |i| (i + 1) * FRAME_SAMPLES)
}

/// Index of the first sample of the first 20 ms frame louder than [`SILENCE_DBFS`].
pub fn first_audio_in(pcm: &[f32]) -> Option<usize> {
    pcm.chunks_exact(FRAME_SAMPLES)
        .position(|f| rms_db(f) > SILENCE_DBFS)
        .map(|i| i * FRAME_SAMPLES)
}

/// What the participant heard first, compared with a prompt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FirstHeard {
    /// When the first non-silent frame was heard, in ms from the participant's first tick.
    pub onset_ms: f64,
    /// Where the prompt's start best aligns with what was heard, in ms from the first tick.
    pub prompt_at_ms: f64,
    /// Normalized cross-correlation of the prompt's opening with what was heard there.
    pub correlation: f32,
}

impl FirstHeard {
    /// True when the first audio heard is the prompt: it correlates at least `min_correlation`
    /// and starts within 100 ms of the onset.
    pub fn is_prompt(&self, min_correlation: f32) -> bool {
        self.correlation >= min_correlation && (self.prompt_at_ms - self.onset_ms).abs() <= 100.0
    }
}

/// Finds where the first audio in `heard` begins and how well it matches the opening
/// [`EXCERPT`] of `prompt` (48 kHz; see [`first_heard_wav`] for a WAV file such as the 16 kHz
/// greeting). The prompt is searched from 200 ms before to 1 s after the onset.
///
/// Returns `None` when nothing was heard or the prompt is silent.
pub fn first_heard(heard: &[f32], prompt: &[f32]) -> Option<FirstHeard> {
    let onset = first_audio_in(heard)?;
    let p_start = first_audio_in(prompt)?;
    let len = ((EXCERPT.as_secs_f64() * RATE) as usize).min(prompt.len() - p_start);
    let reference = &prompt[p_start..p_start + len];
    let lo = onset.saturating_sub((0.2 * RATE) as usize);
    let hi = (onset + RATE as usize).min(heard.len().saturating_sub(FRAME_SAMPLES));
    if hi < lo {
        return None;
    }
    let region = &heard[lo..];
    let coarse = coarse_search(reference, region, 0, hi - lo);
    let (lag, c) = fine_search(reference, region, coarse, 0, hi - lo);
    Some(FirstHeard {
        onset_ms: onset as f64 * 1_000.0 / RATE,
        prompt_at_ms: (lo + lag) as f64 * 1_000.0 / RATE,
        correlation: c,
    })
}

/// [`first_heard`] with the prompt read from a WAV file (resampled to 48 kHz by the media
/// core's resampler, e.g. the 16 kHz `media/greeting-16k.wav`).
///
/// # Errors
/// [`MediaProcError::Speech`] when the file cannot be read.
pub fn first_heard_wav(
    heard: &[f32],
    prompt_wav: &Path,
) -> Result<Option<FirstHeard>, MediaProcError> {
    let prompt = load_wav_48k(prompt_wav)?;
    Ok(first_heard(heard, &prompt))
}

/// Block averages of `x` (length `x.len() / COARSE_DECIMATION`).
fn decimate(x: &[f32]) -> Vec<f32> {
    x.chunks_exact(COARSE_DECIMATION)
        .map(|c| c.iter().sum::<f32>() / COARSE_DECIMATION as f32)
        .collect()
}

/// Best lag (48 kHz samples) in `min_lag..=max_lag` of `reference` in `test`, on decimated
/// signals.
fn coarse_search(reference: &[f32], test: &[f32], min_lag: usize, max_lag: usize) -> usize {
    let r = decimate(reference);
    let end = (max_lag + reference.len()).min(test.len());
    let t = decimate(&test[..end]);
    let (lo, hi) = (
        min_lag / COARSE_DECIMATION,
        max_lag.div_ceil(COARSE_DECIMATION),
    );
    let mut best = (lo, f32::NEG_INFINITY);
    for lag in lo..=hi {
        let (a, b) = overlap(&r, &t, lag as isize);
        // Too little overlap left to mean anything.
        if a.len() < r.len() / 4 {
            break;
        }
        let c = correlation(a, b);
        if c > best.1 {
            best = (lag, c);
        }
    }
    (best.0 * COARSE_DECIMATION).clamp(min_lag, max_lag)
}

/// Refines `coarse` at full rate: returns the lag in `min_lag..=max_lag` and its correlation.
fn fine_search(
    reference: &[f32],
    test: &[f32],
    coarse: usize,
    min_lag: usize,
    max_lag: usize,
) -> (usize, f32) {
    fine_search_within(reference, test, coarse, FINE_RADIUS, min_lag, max_lag)
}

/// [`fine_search`] within ±`radius` samples of `coarse`.
fn fine_search_within(
    reference: &[f32],
    test: &[f32],
    coarse: usize,
    radius: usize,
    min_lag: usize,
    max_lag: usize,
) -> (usize, f32) {
    let base = coarse.saturating_sub(radius).max(min_lag);
    let top = (coarse + radius).min(max_lag);
    let end = (top + reference.len()).min(test.len());
    let shifted = &test[base.min(end)..end];
    // `align` searches ±radius around 0; centre it on the middle of base..=top.
    let radius = (top - base).div_ceil(2);
    let mid = base + radius;
    let window = &test[mid.min(end)..end];
    let a = align(reference, window, radius);
    let lag = (mid as isize + a.lag).clamp(base as isize, top as isize) as usize;
    let (r, t) = overlap(reference, shifted, (lag - base) as isize);
    (lag, correlation(r, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::media::speech::{ParticipantMedia, media_dir};

    fn speech() -> Vec<f32> {
        load_wav_48k(&ParticipantMedia::caller().speech_wav).expect("caller wav")
    }

    fn delayed(x: &[f32], by: usize, gain: f32, total: usize) -> Vec<f32> {
        let mut y = vec![0.0; total];
        for (i, s) in x.iter().enumerate() {
            if let Some(o) = y.get_mut(i + by) {
                *o = s * gain;
            }
        }
        y
    }

    #[test]
    fn finds_an_echo_delay_exactly() {
        let s = speech();
        // 437.5 ms = 21,000 samples, not a multiple of the coarse block.
        let heard = delayed(&s, 21_003, 0.5, s.len() + 48_000);
        let rt = round_trip(&s, &heard, Duration::ZERO, Duration::from_secs(2)).expect("found");
        assert_eq!(rt.lag_samples, 21_003);
        assert!((rt.delay_ms - 437.5625).abs() < 1e-6, "{rt:?}");
        assert!(rt.correlation > 0.999, "{rt:?}");
    }

    #[test]
    fn a_delay_that_moves_by_a_frame_is_tracked() {
        let s = speech();
        // 200 ms for the first 4 s, then 220 ms (a jitter buffer grew by one frame).
        let cut = 4 * 48_000;
        let mut heard = vec![0.0; s.len() + 48_000];
        for (i, x) in s.iter().enumerate() {
            let d = if i < cut { 9_600 } else { 10_560 };
            heard[i + d] = x * 0.5;
        }
        let rt = round_trip(&s, &heard, Duration::ZERO, Duration::from_secs(1)).expect("found");
        assert!(rt.correlation > 0.95, "{rt:?}");
        assert!((rt.delay_spread_ms - 20.0).abs() < 0.1, "{rt:?}");
    }

    #[test]
    fn ignores_other_speech_before_the_echo() {
        // A greeting-like different talker first, the echo after it.
        let s = speech();
        let other = load_wav_48k(&ParticipantMedia::second().speech_wav).expect("wav");
        let mut heard = delayed(&other, 0, 0.7, s.len() + 96_000);
        for (h, e) in heard
            .iter_mut()
            .zip(delayed(&s, 30_000, 0.6, s.len() + 96_000))
        {
            *h += e;
        }
        let rt = round_trip(&s, &heard, Duration::ZERO, Duration::from_secs(2)).expect("found");
        assert!(rt.lag_samples.abs_diff(30_000) <= 2, "{rt:?}");
    }

    #[test]
    fn silence_back_means_low_correlation_or_none() {
        let s = speech();
        assert_eq!(
            round_trip(&[0.0; 96_000], &s, Duration::ZERO, Duration::from_secs(1)),
            None
        );
        let noise: Vec<f32> = (0..s.len() + 48_000)
            .map(|i| ((i as u64 * 2_654_435_761) % 1_000) as f32 / 1_000.0 - 0.5)
            .collect();
        let rt = round_trip(&s, &noise, Duration::ZERO, Duration::from_secs(1)).expect("searched");
        assert!(rt.correlation < 0.2, "{rt:?}");
        // Heard too short for the window.
        assert_eq!(
            round_trip(&s, &s[..100], Duration::ZERO, Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn the_greeting_is_recognised_where_it_starts() {
        let greeting = load_wav_48k(&media_dir().join("greeting-16k.wav")).expect("greeting");
        let s = speech();
        // 300 ms of silence, the greeting, then the caller's speech.
        let mut heard = vec![0.0; 14_400];
        heard.extend_from_slice(&greeting);
        heard.extend_from_slice(&s);
        let fh = first_heard_wav(&heard, &media_dir().join("greeting-16k.wav"))
            .expect("wav")
            .expect("heard something");
        assert!(fh.is_prompt(0.9), "{fh:?}");
        // The caller's speech heard first is not the greeting.
        let fh = first_heard(&s, &greeting).expect("heard");
        assert!(!fh.is_prompt(0.5), "{fh:?}");
        assert_eq!(first_heard(&[0.0; 48_000], &greeting), None);
    }
}
