//! The unit of real-time audio: one 20 ms frame of 48 kHz mono PCM.
//!
//! # Realtime Safety
//! [`AudioFrame`] is a fixed-size value (`[f32; 960]`, 3,840 bytes): creating, copying or
//! moving one never allocates, so frames can live in preallocated slots and travel through
//! SPSC queues.

use std::time::Duration;

/// Sample rate of every frame in the media core (RFC 7587: Opus RTP clock is 48 kHz).
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms frame at 48 kHz mono.
pub const FRAME_SAMPLES: usize = 960;
/// Duration of one frame: the media tick.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
/// RTP timestamp increment per frame (48 kHz clock, RFC 7587 §4.1).
pub const RTP_TICKS_PER_FRAME: u32 = FRAME_SAMPLES as u32;

/// 20 ms of mono audio at 48 kHz, samples scaled to ±1.0 (1.0 ≙ PCM16 32768).
#[derive(Clone, PartialEq)]
pub struct AudioFrame {
    /// The samples, oldest first.
    pub samples: [f32; FRAME_SAMPLES],
}

impl AudioFrame {
    /// A frame of digital silence.
    pub const SILENCE: Self = Self {
        samples: [0.0; FRAME_SAMPLES],
    };

    /// A frame of digital silence.
    pub const fn silence() -> Self {
        Self::SILENCE
    }

    /// Sets every sample to zero.
    pub fn clear(&mut self) {
        self.samples.fill(0.0);
    }

    /// Mean energy (mean of squares) of the frame; 0.0 for silence, 0.5 for a full-scale sine.
    pub fn energy(&self) -> f32 {
        self.samples.iter().map(|s| s * s).sum::<f32>() / FRAME_SAMPLES as f32
    }

    /// Level in dBov (0 = full scale, more negative is quieter), floored at -127 like RFC 6464.
    pub fn level_dbov(&self) -> f32 {
        let e = self.energy();
        if e <= 0.0 {
            return -127.0;
        }
        // A full-scale square wave has energy 1.0 → 0 dBov.
        (10.0 * e.log10()).max(-127.0)
    }

    /// Fills the frame from PCM16 samples (`pcm.len()` must be [`FRAME_SAMPLES`]; shorter input
    /// leaves the tail silent, longer input is truncated).
    pub fn copy_from_i16(&mut self, pcm: &[i16]) {
        self.clear();
        for (d, s) in self.samples.iter_mut().zip(pcm) {
            *d = f32::from(*s) / 32768.0;
        }
    }

    /// Writes the frame as PCM16, saturating out-of-range samples.
    pub fn copy_to_i16(&self, pcm: &mut [i16]) {
        for (d, s) in pcm.iter_mut().zip(self.samples.iter()) {
            *d = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        }
    }
}

impl Default for AudioFrame {
    fn default() -> Self {
        Self::SILENCE
    }
}

impl std::fmt::Debug for AudioFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioFrame")
            .field("level_dbov", &self.level_dbov())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm16_round_trip_saturates() {
        let mut f = AudioFrame::silence();
        let pcm: Vec<i16> = (0..FRAME_SAMPLES as i32)
            .map(|i| (i * 37 - 16000) as i16)
            .collect();
        f.copy_from_i16(&pcm);
        let mut back = vec![0i16; FRAME_SAMPLES];
        f.copy_to_i16(&mut back);
        assert_eq!(pcm, back);
        f.samples[0] = 4.0;
        f.samples[1] = -4.0;
        f.copy_to_i16(&mut back);
        assert_eq!((back[0], back[1]), (i16::MAX, i16::MIN));
    }

    #[test]
    fn silence_is_minus_127_dbov() {
        assert_eq!(AudioFrame::silence().level_dbov(), -127.0);
        let mut f = AudioFrame::silence();
        f.samples.fill(1.0);
        assert!(f.level_dbov().abs() < 1e-3);
    }
}
