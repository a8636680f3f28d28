//! An echo: a delay line that gives back, each tick, the frame it was given a fixed number of
//! ticks earlier (silence until then), and the room member that plays it.
//!
//! The default bot behaviour plays the caller's own voice back after a short delay; the
//! delay line holds the frames in between. It is a ring of preallocated frames stored as
//! PCM16 (half the memory of `f32` frames: 1,920 bytes per 20 ms; the line is written every
//! tick, so all of it is resident): nothing is allocated after [`EchoDelay::new`]. The samples
//! go back into an Opus encoder: 16-bit quantisation noise (≈ −96 dBov) is far below Opus's
//! own coding noise, and PCM16 is what the callers' devices and the recordings carry anyway.
//!
//! Per tick, read [`EchoDelay::output_into`] (the frame from `delay` ticks ago) *before*
//! [`EchoDelay::push`]ing this tick's frame.
//!
//! [`EchoMember`] is the room member kind around it: each tick the room takes the delay
//! line's output as the member's input frame, and after the inputs are gathered it pushes the
//! **source member's own decoded frame** (not the mix) into the line, so the bot echoes the
//! caller and never its own greeting.
//!
//! # Realtime Safety
//! [`EchoDelay::new`] and [`EchoMember::new`] allocate the ring (off-shard).
//! [`EchoDelay::output_into`], [`EchoDelay::push`] and the member's per-tick calls copy samples in
//! place: no allocation, no lock.

use std::time::Duration;

use crate::media::frame::{AudioFrame, FRAME_DURATION, FRAME_SAMPLES};
use crate::media::room::MemberId;
use crate::media::speaker::VoiceDetector;

/// Longest delay: 10 s (500 frames, about 960 KB of ring).
pub const MAX_ECHO_TICKS: usize = 500;

/// A fixed delay of whole 20 ms frames.
#[derive(Debug)]
pub struct EchoDelay {
    /// One PCM16 frame per tick of delay.
    ring: Box<[[i16; FRAME_SAMPLES]]>,
    pos: usize,
}

impl EchoDelay {
    /// A delay of `delay` rounded to whole frames, clamped to 1..=[`MAX_ECHO_TICKS`] frames.
    /// Allocates the ring.
    pub fn new(delay: Duration) -> Self {
        let ticks =
            (delay.as_micros() + FRAME_DURATION.as_micros() / 2) / FRAME_DURATION.as_micros();
        let ticks = (ticks as usize).clamp(1, MAX_ECHO_TICKS);
        Self {
            ring: vec![[0i16; FRAME_SAMPLES]; ticks].into_boxed_slice(),
            pos: 0,
        }
    }

    /// The delay in frames.
    pub fn delay_ticks(&self) -> usize {
        self.ring.len()
    }

    /// Writes the frame pushed `delay_ticks` pushes ago (silence before that) into `frame`.
    pub fn output_into(&self, frame: &mut AudioFrame) {
        frame.copy_from_i16(&self.ring[self.pos]);
    }

    /// Stores this tick's frame (as PCM16, saturating beyond ±1.0) in place of the oldest one
    /// and moves on one tick.
    pub fn push(&mut self, frame: &AudioFrame) {
        frame.copy_to_i16(&mut self.ring[self.pos]);
        self.pos = (self.pos + 1) % self.ring.len();
    }
}

/// A room member that plays another member's input back after a fixed delay.
#[derive(Debug)]
pub struct EchoMember {
    delay: EchoDelay,
    source: MemberId,
    frames: u64,
}

impl EchoMember {
    /// Echoes member `source` after `delay` (see [`EchoDelay::new`]). Allocates the ring.
    pub fn new(source: MemberId, delay: Duration) -> Self {
        Self {
            delay: EchoDelay::new(delay),
            source,
            frames: 0,
        }
    }

    /// The member whose input is echoed.
    pub fn source(&self) -> MemberId {
        self.source
    }

    /// The delay line.
    pub fn delay(&self) -> &EchoDelay {
        &self.delay
    }

    /// Frames the member has played into the room (one per tick).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Input phase: this tick's frame is the one heard `delay` ticks ago.
    pub(crate) fn receive(&mut self, vad: &mut VoiceDetector, frame: &mut AudioFrame) -> bool {
        self.delay.output_into(frame);
        self.frames += 1;
        vad.observe_frame(frame)
    }

    /// After the inputs: the source's frame of this tick (silence when it is not in the
    /// room) goes into the delay line.
    pub(crate) fn hear(&mut self, source_frame: Option<&AudioFrame>) {
        self.delay
            .push(source_frame.unwrap_or(&AudioFrame::SILENCE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: f32) -> AudioFrame {
        let mut f = AudioFrame::silence();
        f.samples.fill(v);
        f
    }

    #[test]
    fn gives_each_frame_back_after_the_delay() {
        let mut echo = EchoDelay::new(Duration::from_millis(60));
        assert_eq!(echo.delay_ticks(), 3);
        let mut heard = Vec::new();
        let mut out = AudioFrame::silence();
        for t in 1..=8 {
            echo.output_into(&mut out);
            heard.push(out.samples[0]);
            echo.push(&frame(t as f32 / 16.0));
        }
        let want = [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0].map(|t: f32| t / 16.0);
        assert_eq!(heard, want);
    }

    #[test]
    fn keeps_sixteen_bits_and_saturates() {
        let mut echo = EchoDelay::new(Duration::from_millis(20));
        let mut f = frame(0.25);
        f.samples[1] = 1.0 / 32768.0;
        f.samples[2] = 3.0;
        f.samples[3] = -3.0;
        echo.push(&f);
        let mut out = AudioFrame::silence();
        echo.output_into(&mut out);
        assert_eq!(out.samples[0], 0.25);
        assert_eq!(out.samples[1], 1.0 / 32768.0);
        assert_eq!(out.samples[2], 32767.0 / 32768.0);
        assert_eq!(out.samples[3], -1.0);
    }

    #[test]
    fn delay_is_rounded_and_clamped() {
        assert_eq!(EchoDelay::new(Duration::ZERO).delay_ticks(), 1);
        assert_eq!(EchoDelay::new(Duration::from_millis(29)).delay_ticks(), 1);
        assert_eq!(EchoDelay::new(Duration::from_millis(30)).delay_ticks(), 2);
        assert_eq!(
            EchoDelay::new(Duration::from_secs(3600)).delay_ticks(),
            MAX_ECHO_TICKS
        );
    }
}
