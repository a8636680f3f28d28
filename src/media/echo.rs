//! An echo: a delay line that gives back, each tick, the frame it was given a fixed number of
//! ticks earlier (silence until then), and the room member that plays it.
//!
//! The default bot behaviour plays the caller's own voice back after a short delay; the
//! delay line holds the frames in between. It is a ring of preallocated frames: nothing is
//! allocated after [`EchoDelay::new`].
//!
//! Per tick, read [`EchoDelay::output`] (the frame from `delay` ticks ago) *before*
//! [`EchoDelay::push`]ing this tick's frame.
//!
//! [`EchoMember`] is the room member kind around it: each tick the room takes the delay
//! line's output as the member's input frame, and after the inputs are gathered it pushes the
//! **source member's own decoded frame** (not the mix) into the line, so the bot echoes the
//! caller and never its own greeting.
//!
//! # Realtime Safety
//! [`EchoDelay::new`] and [`EchoMember::new`] allocate the ring (off-shard).
//! [`EchoDelay::output`], [`EchoDelay::push`] and the member's per-tick calls copy samples in
//! place: no allocation, no lock.

use std::time::Duration;

use crate::media::frame::{AudioFrame, FRAME_DURATION};
use crate::media::room::MemberId;
use crate::media::speaker::VoiceDetector;

/// Longest delay: 10 s (500 frames, about 1.9 MB of ring).
pub const MAX_ECHO_TICKS: usize = 500;

/// A fixed delay of whole 20 ms frames.
#[derive(Debug)]
pub struct EchoDelay {
    ring: Vec<AudioFrame>,
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
            ring: vec![AudioFrame::silence(); ticks],
            pos: 0,
        }
    }

    /// The delay in frames.
    pub fn delay_ticks(&self) -> usize {
        self.ring.len()
    }

    /// The frame pushed `delay_ticks` pushes ago (silence before that).
    pub fn output(&self) -> &AudioFrame {
        &self.ring[self.pos]
    }

    /// Stores this tick's frame in place of the oldest one and moves on one tick.
    pub fn push(&mut self, frame: &AudioFrame) {
        self.ring[self.pos].samples.copy_from_slice(&frame.samples);
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
        frame.samples.copy_from_slice(&self.delay.output().samples);
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
        for t in 1..=8 {
            heard.push(echo.output().samples[0]);
            echo.push(&frame(t as f32));
        }
        assert_eq!(heard, [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
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
