//! Sample-rate conversion to the media core's 48 kHz, for prompts loaded from WAV files.
//!
//! A polyphase windowed-sinc resampler for any rational ratio `out/in` (16 kHz → 48 kHz is
//! 3/1, 44.1 kHz → 48 kHz is 160/147). The prototype low-pass is a Kaiser-windowed sinc
//! (β = 8.6, about 80 dB stop-band) cut off just below the lower of the two Nyquist
//! frequencies, with [`HALF_TAPS`] zero crossings on each side.
//!
//! # Realtime Safety
//! Not real-time: it allocates its filter table and its output. It runs once per prompt, off
//! the shard threads, when the prompt is loaded.

/// Why a resampler could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResampleError {
    /// A sample rate of zero.
    #[error("sample rate must be positive")]
    ZeroRate,
    /// The reduced ratio needs more polyphase branches than [`MAX_PHASES`].
    #[error("ratio {out_rate}/{in_rate} needs too many filter phases")]
    RatioTooComplex {
        /// Input rate in Hz.
        in_rate: u32,
        /// Output rate in Hz.
        out_rate: u32,
    },
}

/// A polyphase windowed-sinc resampler from `in_rate` to `out_rate`.
#[derive(Clone, Debug)]
pub struct Resampler {
    up: usize,
    down: usize,
    taps: usize,
    /// `up` phases × `taps` coefficients, phase-major.
    table: Vec<f32>,
}

impl Resampler {
    /// Builds the filter table for `in_rate` → `out_rate` (both in Hz).
    pub fn new(in_rate: u32, out_rate: u32) -> Result<Self, ResampleError> {
        if in_rate == 0 || out_rate == 0 {
            return Err(ResampleError::ZeroRate);
        }
        let g = gcd(in_rate, out_rate);
        let up = (out_rate / g) as usize;
        let down = (in_rate / g) as usize;
        if up > MAX_PHASES {
            return Err(ResampleError::RatioTooComplex { in_rate, out_rate });
        }
        // Cut-off relative to the input Nyquist: below the output Nyquist when decimating.
        let cutoff = (up as f64 / down as f64).min(1.0) * ROLLOFF;
        // Taps span HALF_TAPS zero crossings of the (possibly narrower) low-pass each side.
        let half = (HALF_TAPS as f64 / cutoff).ceil() as usize;
        let taps = 2 * half;
        let mut table = vec![0f32; up * taps];
        for phase in 0..up {
            let frac = phase as f64 / up as f64;
            let row = &mut table[phase * taps..(phase + 1) * taps];
            for (j, c) in row.iter_mut().enumerate() {
                // Input sample (base - half + 1 + j) sits at distance d from the output point.
                let d = (j as f64 - (half as f64 - 1.0)) - frac;
                *c = (cutoff * sinc(cutoff * d) * kaiser(d / half as f64)) as f32;
            }
            // Unity gain at DC for every phase.
            let sum: f32 = row.iter().sum();
            if sum.abs() > f32::EPSILON {
                row.iter_mut().for_each(|c| *c /= sum);
            }
        }
        Ok(Self {
            up,
            down,
            taps,
            table,
        })
    }

    /// Input samples per filter phase step (the reduced ratio is `up / down`).
    pub(crate) fn ratio(&self) -> (usize, usize) {
        (self.up, self.down)
    }

    /// Filter length in input samples.
    pub(crate) fn taps(&self) -> usize {
        self.taps
    }

    /// The coefficients of one polyphase branch (`phase < up`), oldest input first.
    pub(crate) fn phase(&self, phase: usize) -> &[f32] {
        &self.table[phase * self.taps..(phase + 1) * self.taps]
    }

    /// Number of output samples [`Self::process`] produces for `input_len` input samples.
    pub fn output_len(&self, input_len: usize) -> usize {
        (input_len * self.up).div_ceil(self.down)
    }

    /// Resamples a whole signal (samples beyond either end count as silence).
    pub fn process(&self, input: &[f32]) -> Vec<f32> {
        if self.up == self.down {
            return input.to_vec();
        }
        let n_out = self.output_len(input.len());
        let half = self.taps / 2;
        let mut out = Vec::with_capacity(n_out);
        for n in 0..n_out {
            let pos = n * self.down;
            let base = pos / self.up;
            let phase = pos % self.up;
            let row = &self.table[phase * self.taps..(phase + 1) * self.taps];
            let first = base as isize - half as isize + 1;
            let mut acc = 0f32;
            for (j, c) in row.iter().enumerate() {
                let i = first + j as isize;
                if i >= 0
                    && let Some(x) = input.get(i as usize)
                {
                    acc += c * x;
                }
            }
            out.push(acc);
        }
        out
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Kaiser window over t ∈ [-1, 1].
fn kaiser(t: f64) -> f64 {
    if t.abs() > 1.0 {
        return 0.0;
    }
    bessel_i0(KAISER_BETA * (1.0 - t * t).sqrt()) / bessel_i0(KAISER_BETA)
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

/// Zero crossings of the prototype sinc on each side of the centre.
pub const HALF_TAPS: usize = 16;
/// Largest number of polyphase branches (output rate / gcd) accepted.
pub const MAX_PHASES: usize = 1024;
/// Pass-band edge as a fraction of the lower Nyquist frequency.
const ROLLOFF: f64 = 0.92;
const KAISER_BETA: f64 = 8.6;

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| 0.5 * (std::f32::consts::TAU * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    /// RMS error against the ideal sine, skipping the filter's edges.
    fn error_db(out: &[f32], rate: u32, freq: f32) -> f32 {
        let ideal = sine(rate, freq, out.len());
        let (mut e, mut p) = (0f32, 0f32);
        for (o, i) in out.iter().zip(ideal.iter()).skip(200).take(out.len() - 400) {
            e += (o - i) * (o - i);
            p += i * i;
        }
        10.0 * (e / p).log10()
    }

    #[test]
    fn upsamples_16k_to_48k_accurately() {
        let r = Resampler::new(16_000, 48_000).unwrap();
        let input = sine(16_000, 1000.0, 1600);
        let out = r.process(&input);
        assert_eq!(out.len(), 4800);
        assert!(error_db(&out, 48_000, 1000.0) < -60.0);
    }

    #[test]
    fn converts_44k1_to_48k() {
        let r = Resampler::new(44_100, 48_000).unwrap();
        let out = r.process(&sine(44_100, 3000.0, 4410));
        assert_eq!(out.len(), 4800);
        assert!(error_db(&out, 48_000, 3000.0) < -50.0);
    }

    #[test]
    fn downsampling_removes_content_above_new_nyquist() {
        // 20 kHz at 96 kHz → 16 kHz output cannot carry it (Nyquist 8 kHz): must vanish.
        let r = Resampler::new(96_000, 16_000).unwrap();
        let out = r.process(&sine(96_000, 20_000.0, 9600));
        let rms = (out[100..1500].iter().map(|x| x * x).sum::<f32>() / 1400.0).sqrt();
        assert!(rms < 0.5 * 0.001, "{rms}");
    }

    #[test]
    fn same_rate_is_near_identity_and_bad_rates_fail() {
        let r = Resampler::new(48_000, 48_000).unwrap();
        let input = sine(48_000, 440.0, 960);
        let out = r.process(&input);
        assert!(
            input
                .iter()
                .zip(out.iter())
                .all(|(a, b)| (a - b).abs() < 1e-4)
        );
        assert_eq!(
            Resampler::new(0, 48_000).unwrap_err(),
            ResampleError::ZeroRate
        );
        assert!(matches!(
            Resampler::new(48_001, 48_000),
            Err(ResampleError::RatioTooComplex { .. })
        ));
    }
}
