//! The capture side of a sound device member: device samples in, 20 ms room frames out.
//!
//! Each capture callback hands [`Capture::process`] interleaved samples of the device's
//! format. Per device frame the channels are averaged to mono (converted to `f32` on the way),
//! the [`StreamResampler`] takes the device rate to 48 kHz, and the output accumulates into a
//! 960-sample [`AudioFrame`] that goes to the room's application-endpoint queue when full.
//!
//! ## Queue policy (absorb the callback size, add at most 20 ms)
//! The room takes one frame per 20 ms tick. A callback of `C` device frames completes up to
//! `ceil(C₄₈ / 960)` frames at once (`C₄₈` = `C` at 48 kHz), so the queue may hold that many
//! plus one (the frame the room has not reached yet in this tick); a frame that finds the queue
//! at that limit is dropped and counted as an **overrun** (the device's clock runs ahead of
//! the room's, or the room stalled). Because clocks drift, a standing backlog can also build
//! up below the limit: when every push in the last second found at least one frame still
//! waiting, one frame is dropped and counted as **trimmed**, which brings the standing wait
//! back under one tick (20 ms).
//!
//! # Realtime Safety
//! [`Capture::new`] allocates (the resampler); [`Capture::process`] never allocates, locks or
//! blocks: it writes into a preallocated frame and pushes it into a lock-free `rtrb` queue.

use std::sync::Arc;

use cpal::{FromSample, Sample};
use rtrb::Producer;

use crate::adapters::device::meters::{Meters, bump, note_size};
use crate::media::frame::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE};
use crate::media::resample::ResampleError;
use crate::media::stream_resampler::StreamResampler;

/// Device samples → 48 kHz mono frames → the room.
#[derive(Debug)]
pub(crate) struct Capture {
    channels: usize,
    rate: u32,
    resampler: StreamResampler,
    frame: AudioFrame,
    fill: usize,
    queue: Producer<AudioFrame>,
    /// Most frames allowed in the queue after a push.
    limit: usize,
    /// Pushes in the current trim window, and the fewest frames any of them found waiting.
    window_pushes: usize,
    window_min_waiting: usize,
    meters: Arc<Meters>,
}

impl Capture {
    /// A capture chain for `channels` at `rate` Hz feeding `queue`. Allocates.
    pub(crate) fn new(
        channels: u16,
        rate: u32,
        queue: Producer<AudioFrame>,
        meters: Arc<Meters>,
    ) -> Result<Self, ResampleError> {
        Ok(Self {
            channels: usize::from(channels.max(1)),
            rate,
            resampler: StreamResampler::new(rate, SAMPLE_RATE)?,
            frame: AudioFrame::silence(),
            fill: 0,
            queue,
            limit: 2,
            window_pushes: 0,
            window_min_waiting: usize::MAX,
            meters,
        })
    }

    /// One capture callback's interleaved samples.
    pub(crate) fn process<T>(&mut self, data: &[T])
    where
        T: Sample,
        f32: FromSample<T>,
    {
        let frames = data.len() / self.channels;
        bump(&self.meters.capture_callbacks);
        note_size(
            &self.meters.capture_callback_min,
            &self.meters.capture_callback_max,
            frames as u64,
        );
        // Allow the frames this callback can complete at once, plus the one the room has not
        // reached yet (never more than the queue holds).
        let at_48k = (frames as u64 * u64::from(SAMPLE_RATE)).div_ceil(u64::from(self.rate));
        let burst = (at_48k as usize).div_ceil(FRAME_SAMPLES);
        self.limit = self
            .limit
            .max(burst + 1)
            .min(self.queue.buffer().capacity());
        let scale = 1.0 / self.channels as f32;
        for device_frame in data.chunks_exact(self.channels) {
            let mono = device_frame
                .iter()
                .map(|s| s.to_sample::<f32>())
                .sum::<f32>()
                * scale;
            let Self {
                resampler,
                frame,
                fill,
                ..
            } = self;
            let mut completed = 0;
            resampler.push(mono, |y| {
                frame.samples[*fill] = y;
                *fill += 1;
                if *fill == FRAME_SAMPLES {
                    *fill = 0;
                    completed += 1;
                }
            });
            // At most one frame completes per input sample unless upsampling from below
            // 48 Hz, which the resampler refuses; the loop keeps it honest either way.
            for _ in 0..completed {
                self.send();
            }
        }
    }

    /// Pushes the completed frame, applying the queue policy.
    fn send(&mut self) {
        let capacity = self.queue.buffer().capacity();
        let waiting = capacity - self.queue.slots();
        self.meters
            .capture_queued_max
            .fetch_max(waiting as u64, std::sync::atomic::Ordering::Relaxed);
        self.window_min_waiting = self.window_min_waiting.min(waiting);
        self.window_pushes += 1;
        if self.window_pushes >= TRIM_WINDOW_FRAMES {
            let standing = self.window_min_waiting;
            self.window_pushes = 0;
            self.window_min_waiting = usize::MAX;
            if standing >= 1 {
                bump(&self.meters.capture_trimmed);
                return;
            }
        }
        if waiting >= self.limit {
            bump(&self.meters.capture_overruns);
            return;
        }
        match self.queue.write_chunk(1) {
            Ok(mut chunk) => {
                let (a, _) = chunk.as_mut_slices();
                if let Some(slot) = a.first_mut() {
                    slot.samples.copy_from_slice(&self.frame.samples);
                }
                chunk.commit_all();
                bump(&self.meters.capture_frames);
            }
            Err(_) => bump(&self.meters.capture_overruns),
        }
    }
}

/// Frames in one trim window (one second).
pub(crate) const TRIM_WINDOW_FRAMES: usize = 50;

#[cfg(test)]
mod tests {
    use super::*;
    use rtrb::RingBuffer;

    fn chain(channels: u16, rate: u32) -> (Capture, rtrb::Consumer<AudioFrame>, Arc<Meters>) {
        let meters = Arc::new(Meters::default());
        let (tx, rx) = RingBuffer::new(8);
        (
            Capture::new(channels, rate, tx, meters.clone()).unwrap(),
            rx,
            meters,
        )
    }

    #[test]
    fn stereo_i16_downmixes_to_one_frame_per_960_samples() {
        let (mut c, mut rx, m) = chain(2, 48_000);
        // Left and right differ; the room hears their mean.
        let data: Vec<i16> = (0..960).flat_map(|_| [8192i16, 0]).collect();
        c.process(&data);
        let f = rx.pop().unwrap();
        assert!(f.samples.iter().all(|&s| (s - 0.125).abs() < 1e-6));
        assert!(rx.pop().is_err());
        let s = m.snapshot();
        assert_eq!((s.capture_frames, s.capture_callback_max), (1, 960));
    }

    #[test]
    fn u16_and_f32_at_44k1_convert() {
        let (mut c, mut rx, _) = chain(1, 44_100);
        // 100 ms of mid-scale u16 (silence) then check nothing odd comes out.
        c.process(&vec![32768u16; 4410]);
        let mut frames = 0;
        while let Ok(f) = rx.pop() {
            assert!(f.samples.iter().all(|s| s.abs() < 1e-3));
            frames += 1;
        }
        // 4410 samples at 44.1 kHz are 4800 at 48 kHz less the filter delay: 4 full frames.
        assert_eq!(frames, 4);
        let (mut c, mut rx, _) = chain(3, 44_100);
        c.process(&vec![0.5f32; 3 * 4410]);
        let mut last = None;
        while let Ok(f) = rx.pop() {
            last = Some(f);
        }
        assert!((last.unwrap().samples[500] - 0.5).abs() < 1e-3);
    }

    /// The room taking one frame per 20 ms: nothing dropped, at most one frame ever waits
    /// beyond the one being taken, for callbacks smaller and larger than a frame.
    #[test]
    fn steady_callbacks_never_overrun_and_wait_at_most_one_frame() {
        for callback in [256usize, 441, 1024, 2048] {
            let (mut c, mut rx, m) = chain(1, 48_000);
            let data = vec![0.1f32; callback];
            // Virtual time in samples: callbacks every `callback`, room ticks every 960.
            let (mut next_cb, mut next_tick) = (callback, 960 + 480);
            for _ in 0..3_000 {
                if next_cb <= next_tick {
                    c.process(&data);
                    next_cb += callback;
                } else {
                    let _ = rx.pop();
                    next_tick += 960;
                }
            }
            let s = m.snapshot();
            assert_eq!(
                s.capture_overruns + s.capture_trimmed,
                0,
                "{callback}: {s:?}"
            );
            let burst = callback.div_ceil(960) as u64;
            assert!(s.capture_queued_max <= burst, "{callback}: {s:?}");
        }
    }

    /// A device clock 1 % fast builds a backlog that is trimmed, not kept.
    #[test]
    fn fast_device_clock_is_trimmed() {
        let (mut c, mut rx, m) = chain(1, 48_000);
        let data = vec![0.1f32; 480];
        let (mut next_cb, mut next_tick) = (475.2f64, 960.0f64);
        for _ in 0..20_000 {
            if next_cb <= next_tick {
                c.process(&data);
                next_cb += 475.2;
            } else {
                let _ = rx.pop();
                next_tick += 960.0;
            }
        }
        let s = m.snapshot();
        assert!(s.capture_trimmed + s.capture_overruns > 0, "{s:?}");
        assert!(s.capture_queued_max <= 2, "{s:?}");
    }
}
