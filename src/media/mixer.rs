//! Summing selected frames into one mix, with a soft limiter and mix-minus outputs.
//!
//! A [`Mixer`] holds the raw (unlimited) sum of this tick's selected frames. From it, callers
//! take the full mix ([`Mixer::full_into`]) or a mix-minus — the sum without one
//! contributor's own voice ([`Mixer::minus_into`]) — into frames they own. Every output passes
//! through [`soft_limit`], a memoryless soft-knee limiter: samples below the knee (-1 dBFS)
//! pass unchanged, louder ones are bent smoothly towards ±1.0 and never exceed it, so a sum of
//! loud talkers never wraps around when it is converted to PCM16 or encoded.
//!
//! # Realtime Safety
//! A `Mixer` owns one [`AudioFrame`] accumulator, allocated inline at construction; no method
//! allocates, locks or blocks.

use crate::media::frame::AudioFrame;

/// The sum of one tick's selected frames, from which limited outputs are derived.
#[derive(Clone, Debug, Default)]
pub struct Mixer {
    sum: AudioFrame,
    inputs: usize,
}

impl Mixer {
    /// A mixer holding an empty (silent) sum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the sum with the raw sum of `inputs` (no limiting yet).
    pub fn mix<'a, I>(&mut self, inputs: I)
    where
        I: IntoIterator<Item = &'a AudioFrame>,
    {
        self.sum.clear();
        self.inputs = 0;
        for frame in inputs {
            self.add(frame);
        }
    }

    /// Clears the sum (no inputs).
    pub fn clear(&mut self) {
        self.sum.clear();
        self.inputs = 0;
    }

    /// Adds one more frame to the sum.
    pub fn add(&mut self, frame: &AudioFrame) {
        for (s, x) in self.sum.samples.iter_mut().zip(frame.samples.iter()) {
            *s += *x;
        }
        self.inputs += 1;
    }

    /// Number of frames in the current sum.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// The raw, unlimited sum (may exceed ±1.0).
    pub fn raw_sum(&self) -> &AudioFrame {
        &self.sum
    }

    /// Writes the limited full mix into `out`.
    pub fn full_into(&self, out: &mut AudioFrame) {
        for (o, s) in out.samples.iter_mut().zip(self.sum.samples.iter()) {
            *o = soft_limit(*s);
        }
    }

    /// Writes the limited mix minus `own` (a frame that was part of the sum) into `out`.
    pub fn minus_into(&self, own: &AudioFrame, out: &mut AudioFrame) {
        for ((o, s), x) in out
            .samples
            .iter_mut()
            .zip(self.sum.samples.iter())
            .zip(own.samples.iter())
        {
            *o = soft_limit(*s - *x);
        }
    }
}

/// Level above which [`soft_limit`] starts to bend the signal: -1 dBFS (≈ 0.891).
pub const LIMITER_KNEE: f32 = 0.891_250_9;

/// Memoryless soft-knee limiter: identity up to [`LIMITER_KNEE`], then a `tanh` curve that
/// approaches ±1.0 with a continuous slope, so the output never leaves [-1.0, 1.0] and never
/// wraps. NaN becomes 0.0.
#[inline]
pub fn soft_limit(x: f32) -> f32 {
    let a = x.abs();
    if a <= LIMITER_KNEE {
        return x;
    }
    if a.is_nan() {
        return 0.0;
    }
    let room = 1.0 - LIMITER_KNEE;
    let bent = LIMITER_KNEE + room * ((a - LIMITER_KNEE) / room).tanh();
    bent.min(1.0).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::frame::FRAME_SAMPLES;

    fn tone(amp: f32, period: usize) -> AudioFrame {
        let mut f = AudioFrame::silence();
        for (i, s) in f.samples.iter_mut().enumerate() {
            *s = amp * (std::f32::consts::TAU * (i % period) as f32 / period as f32).sin();
        }
        f
    }

    #[test]
    fn quiet_signals_pass_unchanged() {
        for x in [-0.89f32, -0.5, 0.0, 0.1, 0.891] {
            assert_eq!(soft_limit(x), x);
        }
    }

    #[test]
    fn limiter_is_bounded_monotone_and_odd() {
        let mut prev = -1.0f32;
        for i in -4000..=4000 {
            let x = i as f32 / 400.0; // -10.0 ..= 10.0
            let y = soft_limit(x);
            assert!((-1.0..=1.0).contains(&y), "{x} -> {y}");
            assert!(y >= prev, "not monotone at {x}");
            assert_eq!(soft_limit(-x), -y);
            prev = y;
        }
        assert_eq!(soft_limit(f32::INFINITY), 1.0);
        assert_eq!(soft_limit(f32::NEG_INFINITY), -1.0);
        assert_eq!(soft_limit(f32::NAN), 0.0);
    }

    #[test]
    fn knee_is_smooth() {
        let e = 1e-4;
        let below = (soft_limit(LIMITER_KNEE) - soft_limit(LIMITER_KNEE - e)) / e;
        let above = (soft_limit(LIMITER_KNEE + e) - soft_limit(LIMITER_KNEE)) / e;
        assert!((below - above).abs() < 0.01, "{below} vs {above}");
    }

    #[test]
    fn loud_sum_never_wraps_in_pcm16() {
        let inputs = [tone(0.9, 48), tone(0.9, 48), tone(0.9, 48)];
        let mut m = Mixer::new();
        m.mix(inputs.iter());
        assert_eq!(m.inputs(), 3);
        let mut out = AudioFrame::silence();
        m.full_into(&mut out);
        let mut pcm = [0i16; FRAME_SAMPLES];
        out.copy_to_i16(&mut pcm);
        // Same sign as the raw sum everywhere: a wrap would flip it.
        for (p, s) in pcm.iter().zip(m.raw_sum().samples.iter()) {
            assert!(*s == 0.0 || (*p as f32).signum() == s.signum() || *p == 0);
            assert!(out.samples.iter().all(|x| x.abs() <= 1.0));
        }
    }

    #[test]
    fn mix_minus_removes_own_voice() {
        let a = tone(0.3, 40);
        let b = tone(0.2, 31);
        let mut m = Mixer::new();
        m.mix([&a, &b]);
        let mut out = AudioFrame::silence();
        m.minus_into(&a, &mut out);
        for (o, x) in out.samples.iter().zip(b.samples.iter()) {
            assert!((o - x).abs() < 1e-6);
        }
        m.full_into(&mut out);
        for ((o, x), y) in out
            .samples
            .iter()
            .zip(a.samples.iter())
            .zip(b.samples.iter())
        {
            assert!((o - (x + y)).abs() < 1e-6);
        }
    }
}
