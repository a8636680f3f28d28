//! Streaming sample-rate conversion, one sample at a time, for real-time paths such as a sound
//! card's callback.
//!
//! [`StreamResampler`] runs the same polyphase windowed-sinc filter as [`Resampler`] but keeps
//! its input history between calls, so a signal can arrive (or be asked for) in pieces of any
//! size. Fed the same samples, it produces the same output as [`Resampler::process`] does on
//! the whole signal.
//!
//! It is driven from either end:
//! - [`StreamResampler::push`]: give it one input sample; it emits the output samples that
//!   became computable (zero, one or more). Capture uses this.
//! - [`StreamResampler::pull`]: ask for one output sample; it takes as many input samples as it
//!   needs from a closure. Playback uses this.
//!
//! Its delay is [`StreamResampler::delay`] input samples (half the filter length, 18–20
//! samples for the usual ratios: under 0.5 ms); equal rates pass straight through with none.
//!
//! # Realtime Safety
//! [`StreamResampler::new`] allocates the filter table and the history. `push`, `pull` and
//! `reset` never allocate, lock or block.

use crate::media::resample::{ResampleError, Resampler};

/// A polyphase resampler with state, for signals that arrive in pieces.
#[derive(Clone, Debug)]
pub struct StreamResampler {
    filter: Resampler,
    up: usize,
    down: usize,
    taps: usize,
    /// The last `taps` inputs, written twice (at `w` and `w + taps`) so that the window
    /// `history[w..w + taps]` is always contiguous, oldest first.
    history: Vec<f32>,
    w: usize,
    /// Polyphase branch of the next output.
    phase: usize,
    /// Inputs still needed before the next output can be computed.
    pending: usize,
    identity: bool,
}

impl StreamResampler {
    /// A resampler from `in_rate` to `out_rate` (Hz), starting from silence.
    ///
    /// # Errors
    /// As [`Resampler::new`].
    pub fn new(in_rate: u32, out_rate: u32) -> Result<Self, ResampleError> {
        let filter = Resampler::new(in_rate, out_rate)?;
        let (up, down) = filter.ratio();
        let taps = filter.taps();
        let mut s = Self {
            filter,
            up,
            down,
            taps,
            history: vec![0.0; 2 * taps],
            w: 0,
            phase: 0,
            pending: 0,
            identity: up == down,
        };
        s.reset();
        Ok(s)
    }

    /// Forgets all input: the next sample starts a new signal, as after [`Self::new`].
    pub fn reset(&mut self) {
        self.history.fill(0.0);
        self.w = 0;
        self.phase = 0;
        // Output 0 is centred on input 0 and needs the inputs up to `taps / 2` after it.
        self.pending = self.taps / 2 + 1;
    }

    /// Feeds one input sample; calls `emit` for each output sample that became computable.
    #[inline]
    pub fn push(&mut self, x: f32, mut emit: impl FnMut(f32)) {
        if self.identity {
            emit(x);
            return;
        }
        self.write(x);
        self.pending -= 1;
        while self.pending == 0 {
            emit(self.compute());
        }
    }

    /// Produces one output sample, taking as many input samples from `next_input` as needed.
    #[inline]
    pub fn pull(&mut self, mut next_input: impl FnMut() -> f32) -> f32 {
        if self.identity {
            return next_input();
        }
        while self.pending > 0 {
            let x = next_input();
            self.write(x);
            self.pending -= 1;
        }
        self.compute()
    }

    /// Delay through the filter, in input samples (0 for equal rates).
    pub fn delay(&self) -> usize {
        if self.identity { 0 } else { self.taps / 2 }
    }

    /// Output samples per input sample, as the reduced fraction `(up, down)`.
    pub fn ratio(&self) -> (usize, usize) {
        (self.up, self.down)
    }

    #[inline]
    fn write(&mut self, x: f32) {
        self.history[self.w] = x;
        self.history[self.w + self.taps] = x;
        self.w += 1;
        if self.w == self.taps {
            self.w = 0;
        }
    }

    /// The output for the current phase and window; then steps to the next output.
    #[inline]
    fn compute(&mut self) -> f32 {
        let row = self.filter.phase(self.phase);
        let window = &self.history[self.w..self.w + self.taps];
        let y = row.iter().zip(window).map(|(c, x)| c * x).sum();
        self.phase += self.down;
        self.pending += self.phase / self.up;
        self.phase %= self.up;
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let t = i as f32;
                0.3 * (t * 0.031).sin() + 0.2 * (t * 0.177).sin() + 0.1 * (t * 0.9).cos()
            })
            .collect()
    }

    /// Pushing in uneven pieces gives what `Resampler::process` gives on the whole signal,
    /// minus the tail it cannot compute yet.
    #[test]
    fn push_matches_whole_signal_resampling() {
        for (a, b) in [
            (44_100, 48_000),
            (48_000, 44_100),
            (16_000, 48_000),
            (96_000, 48_000),
        ] {
            let input = signal(5_000);
            let whole = Resampler::new(a, b).unwrap().process(&input);
            let mut s = StreamResampler::new(a, b).unwrap();
            let mut out = Vec::new();
            let mut i = 0;
            for piece in [1usize, 7, 441, 1024, 3].iter().cycle() {
                if i >= input.len() {
                    break;
                }
                for &x in &input[i..(i + piece).min(input.len())] {
                    s.push(x, |y| out.push(y));
                }
                i += piece;
            }
            assert!(out.len() <= whole.len() && out.len() + 2 * s.ratio().0 * 40 > whole.len());
            for (k, (x, y)) in out.iter().zip(&whole).enumerate() {
                assert!((x - y).abs() < 1e-5, "{a}->{b} sample {k}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn pull_matches_push() {
        let input = signal(3_000);
        let mut pushed = Vec::new();
        let mut p = StreamResampler::new(48_000, 44_100).unwrap();
        input.iter().for_each(|&x| p.push(x, |y| pushed.push(y)));
        let mut q = StreamResampler::new(48_000, 44_100).unwrap();
        let mut src = input.iter().copied();
        let pulled: Vec<f32> = (0..pushed.len())
            .map(|_| q.pull(|| src.next().unwrap_or(0.0)))
            .collect();
        assert_eq!(pushed, pulled);
    }

    #[test]
    fn equal_rates_pass_through_and_reset_restarts() {
        let mut s = StreamResampler::new(48_000, 48_000).unwrap();
        assert_eq!(s.delay(), 0);
        let mut out = Vec::new();
        [0.5, -0.25]
            .iter()
            .for_each(|&x| s.push(x, |y| out.push(y)));
        assert_eq!(out, [0.5, -0.25]);

        let mut r = StreamResampler::new(44_100, 48_000).unwrap();
        let mut first = Vec::new();
        signal(500)
            .iter()
            .for_each(|&x| r.push(x, |y| first.push(y)));
        r.reset();
        let mut second = Vec::new();
        signal(500)
            .iter()
            .for_each(|&x| r.push(x, |y| second.push(y)));
        assert_eq!(first, second);
        assert_eq!(
            r.delay(),
            Resampler::new(44_100, 48_000).unwrap().taps() / 2
        );
    }
}
