//! The playback side of a sound device member: the room's 20 ms frames in, device samples out.
//!
//! Each playback callback asks [`Playback::process`] to fill an interleaved buffer of the
//! device's format. Per device frame the [`StreamResampler`] pulls 48 kHz samples from the
//! frame being played (taking the next frame from the room's queue when it runs out), and the
//! result is converted to the device format and written to every channel.
//!
//! ## Priming, underruns and trimming (absorb the callback size, add at most 20 ms)
//! Let `need` be what this callback consumes at 48 kHz and `have` what is buffered (queued
//! frames plus the rest of the current one).
//! - **Priming.** Playback starts only when `have ≥ need + 480`: this callback can be served
//!   whole and 10 ms stay in reserve against the room's tick jitter. Until then the callback
//!   plays silence (counted as priming).
//! - **Underrun.** If the audio runs out part-way, the rest of the callback is silence, the
//!   underrun is counted, and playback primes again.
//! - **Trimming.** The reserve after each callback (`have − need`) is the latency this
//!   buffering adds. When it stayed at 20 ms or more for a whole second (the room's clock
//!   runs ahead of the device's, or a burst arrived), every whole frame of it is dropped and
//!   counted as trimmed: the standing reserve goes back under 20 ms.
//!
//! # Realtime Safety
//! [`Playback::new`] allocates (the resampler); [`Playback::process`] never allocates, locks
//! or blocks: frames come out of a lock-free `rtrb` queue into a preallocated frame.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use cpal::{FromSample, Sample};
use rtrb::Consumer;

use crate::adapters::device::meters::{Meters, bump, note_size};
use crate::media::frame::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE};
use crate::media::resample::ResampleError;
use crate::media::stream_resampler::StreamResampler;

/// The room → 48 kHz mono frames → device samples.
#[derive(Debug)]
pub(crate) struct Playback {
    channels: usize,
    rate: u32,
    resampler: StreamResampler,
    frame: AudioFrame,
    /// Next sample of `frame` to play (`FRAME_SAMPLES` when used up).
    pos: usize,
    queue: Consumer<AudioFrame>,
    playing: bool,
    /// Device frames in the current trim window, and the smallest reserve seen in it.
    window_frames: u64,
    window_min_reserve: usize,
    meters: Arc<Meters>,
}

impl Playback {
    /// A playback chain for `channels` at `rate` Hz fed from `queue`. Allocates.
    pub(crate) fn new(
        channels: u16,
        rate: u32,
        queue: Consumer<AudioFrame>,
        meters: Arc<Meters>,
    ) -> Result<Self, ResampleError> {
        Ok(Self {
            channels: usize::from(channels.max(1)),
            rate,
            resampler: StreamResampler::new(SAMPLE_RATE, rate)?,
            frame: AudioFrame::silence(),
            pos: FRAME_SAMPLES,
            queue,
            playing: false,
            window_frames: 0,
            window_min_reserve: usize::MAX,
            meters,
        })
    }

    /// Fills one playback callback's interleaved buffer.
    pub(crate) fn process<T>(&mut self, data: &mut [T])
    where
        T: Sample + FromSample<f32>,
    {
        let frames = data.len() / self.channels;
        bump(&self.meters.playback_callbacks);
        note_size(
            &self.meters.playback_callback_min,
            &self.meters.playback_callback_max,
            frames as u64,
        );
        // 48 kHz samples this callback consumes (one more for the resampler's rounding).
        let (up, down) = self.resampler.ratio();
        let need = (frames * down).div_ceil(up) + 1;
        let have = self.queue.slots() * FRAME_SAMPLES + (FRAME_SAMPLES - self.pos);
        if !self.playing {
            if have < need + PRIME_RESERVE {
                bump(&self.meters.playback_priming);
                data.fill(T::EQUILIBRIUM);
                return;
            }
            self.playing = true;
            self.window_frames = 0;
            self.window_min_reserve = usize::MAX;
        }
        let have = self.trim(have, need, frames as u64);

        let Self {
            resampler,
            frame,
            pos,
            queue,
            meters,
            ..
        } = self;
        let mut starved = false;
        let mut taken = 0u64;
        for device_frame in data.chunks_exact_mut(self.channels) {
            let y = resampler.pull(|| {
                if *pos == FRAME_SAMPLES {
                    match queue.pop() {
                        Ok(f) => {
                            *frame = f;
                            *pos = 0;
                            taken += 1;
                        }
                        Err(_) => {
                            starved = true;
                            return 0.0;
                        }
                    }
                }
                let s = frame.samples[*pos];
                *pos += 1;
                s
            });
            let out = T::from_sample(y.clamp(-1.0, 1.0));
            device_frame.fill(out);
        }
        meters.playback_frames.fetch_add(taken, Ordering::Relaxed);
        if starved {
            bump(&meters.playback_underruns);
            self.playing = false;
        }
        let reserve = have.saturating_sub(need) as u64;
        self.meters
            .playback_reserve_last
            .store(reserve, Ordering::Relaxed);
        self.meters
            .playback_reserve_max
            .fetch_max(reserve, Ordering::Relaxed);
    }

    /// Applies the trimming policy; returns what is buffered afterwards.
    fn trim(&mut self, have: usize, need: usize, frames: u64) -> usize {
        self.window_min_reserve = self.window_min_reserve.min(have.saturating_sub(need));
        self.window_frames += frames;
        if self.window_frames < u64::from(self.rate) {
            return have;
        }
        let standing = self.window_min_reserve;
        self.meters
            .playback_standing_max
            .fetch_max(standing as u64, Ordering::Relaxed);
        self.window_frames = 0;
        self.window_min_reserve = usize::MAX;
        // Drop every whole frame of standing reserve at once.
        let mut have = have;
        for _ in 0..standing / FRAME_SAMPLES {
            if self.queue.pop().is_err() {
                break;
            }
            bump(&self.meters.playback_trimmed);
            have -= FRAME_SAMPLES;
        }
        have
    }
}

/// Reserve (48 kHz samples) required on top of a callback's need before playback starts.
pub(crate) const PRIME_RESERVE: usize = FRAME_SAMPLES / 2;

#[cfg(test)]
mod tests {
    use super::*;
    use rtrb::RingBuffer;

    fn chain(channels: u16, rate: u32) -> (Playback, rtrb::Producer<AudioFrame>, Arc<Meters>) {
        let meters = Arc::new(Meters::default());
        let (tx, rx) = RingBuffer::new(8);
        (
            Playback::new(channels, rate, rx, meters.clone()).unwrap(),
            tx,
            meters,
        )
    }

    fn frame_of(v: f32) -> AudioFrame {
        let mut f = AudioFrame::silence();
        f.samples.fill(v);
        f
    }

    #[test]
    fn primes_then_plays_upmixed_i16() {
        let (mut p, mut tx, m) = chain(2, 48_000);
        let mut out = vec![7i16; 2 * 480];
        p.process(&mut out);
        assert!(out.iter().all(|&s| s == 0), "priming plays silence");
        tx.push(frame_of(0.25)).unwrap();
        tx.push(frame_of(0.25)).unwrap();
        p.process(&mut out);
        assert!(out.iter().all(|&s| s == 8192), "{:?}", &out[..4]);
        let s = m.snapshot();
        assert_eq!((s.playback_priming, s.playback_frames), (1, 1));
        assert_eq!(s.playback_reserve_last, (1920 - 481) as u64);
    }

    #[test]
    fn underrun_plays_silence_and_reprimes() {
        let (mut p, mut tx, m) = chain(1, 48_000);
        tx.push(frame_of(0.5)).unwrap();
        let mut out = vec![0f32; 400];
        p.process(&mut out); // 960 ≥ 401 + 480: plays
        assert!(out.iter().all(|&s| (s - 0.5).abs() < 1e-6));
        p.process(&mut out);
        p.process(&mut out); // the last 160 samples of the frame, then starves
        assert!(out[..160].iter().all(|&s| (s - 0.5).abs() < 1e-6));
        assert!(out[160..].iter().all(|&s| s == 0.0));
        let mut u16_out = vec![1u16; 400];
        p.process(&mut u16_out); // priming again: u16 silence is mid-scale
        assert!(u16_out.iter().all(|&s| s == 32768));
        let s = m.snapshot();
        assert_eq!((s.playback_underruns, s.playback_priming), (1, 1));
    }

    /// The room pushing one frame per 20 ms against callbacks of several sizes and rates: no
    /// underrun after priming, and the reserve held back stays within one frame plus the
    /// priming margin.
    #[test]
    fn steady_room_never_underruns_and_reserve_stays_small() {
        for (rate, callback) in [
            (48_000u32, 256usize),
            (48_000, 480),
            (44_100, 441),
            (48_000, 1024),
        ] {
            let (mut p, mut tx, m) = chain(1, rate);
            let mut out = vec![0f32; callback];
            // Virtual time in µs.
            let cb_us = callback as f64 * 1e6 / f64::from(rate);
            let (mut next_cb, mut next_tick) = (cb_us, 0.0f64);
            for _ in 0..6_000 {
                if next_tick <= next_cb {
                    let _ = tx.push(frame_of(0.1));
                    next_tick += 20_000.0;
                } else {
                    p.process(&mut out);
                    next_cb += cb_us;
                }
            }
            let s = m.snapshot();
            assert_eq!(s.playback_underruns, 0, "{rate}/{callback}: {s:?}");
            assert_eq!(s.playback_trimmed, 0, "{rate}/{callback}: {s:?}");
            assert!(
                s.playback_reserve_max <= (FRAME_SAMPLES + PRIME_RESERVE) as u64,
                "{rate}/{callback}: {s:?}"
            );
        }
    }

    #[test]
    fn fast_room_clock_is_trimmed() {
        let (mut p, mut tx, m) = chain(1, 48_000);
        let mut out = vec![0f32; 480];
        let (mut next_cb, mut next_tick) = (10_000.0f64, 0.0f64);
        for _ in 0..20_000 {
            if next_tick <= next_cb {
                let _ = tx.push(frame_of(0.1));
                next_tick += 19_800.0; // the room 1 % fast
            } else {
                p.process(&mut out);
                next_cb += 10_000.0;
            }
        }
        let s = m.snapshot();
        assert!(s.playback_trimmed > 0, "{s:?}");
        assert!(
            s.playback_reserve_max < (2 * FRAME_SAMPLES + PRIME_RESERVE) as u64,
            "{s:?}"
        );
    }
}
