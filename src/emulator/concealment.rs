//! How many frames a receiving room concealed, and why: real loss, the sender's pauses, the
//! jitter buffer growing its delay, or the call's end — the breakdown `mediabot load` and `mediabot demo`
//! report for each direction (caller → bot, concealed by the bot's room; bot → caller,
//! concealed by the emulator's).
//!
//! A concealed frame is one the receiver synthesised (packet-loss concealment) instead of
//! decoding a packet. Our rooms send nothing in a tick where they have nothing to send
//! (discontinuous transmission: RTP timestamps advance, sequence numbers do not), so the
//! receiving jitter buffer conceals those frames too, and only learns afterwards — when the
//! next packet continues the sequence numbers — that they were a pause
//! ([`crate::media::jitter::JitterStats::paused_concealed`]). Frames inserted to grow the delay
//! ([`crate::media::jitter::JitterStats::inserted`]) are concealment without loss as well.
//! And when the call ends, the concealed frames since the other side's last packet are
//! neither: no next packet came to tell a pause from a loss
//! ([`crate::media::jitter::JitterStats::pending_concealed`]); they are the **call end**
//! part. What remains is the loss:
//! `loss = concealed − sender pauses − delay growth − call end` (saturating: a frame rebuilt
//! from FEC is not counted as concealed, so the other parts are capped, in that order, to
//! what is left, and the four parts always add up to `concealed`).

use std::fmt;

use serde::Serialize;

use crate::adapters::call_room::CallRoomStats;

use super::media::BotPlayout;

/// Concealed frames of one direction (or several summed), split by cause, as frames and as
/// percent of the frames played out (one per 20 ms tick).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Concealment {
    /// Frames the receiving rooms played out (ticks).
    pub frames: u64,
    /// Frames concealed, whatever the cause (`lossFrames + senderPauseFrames +
    /// delayGrowthFrames + callEndFrames`).
    pub concealed_frames: u64,
    /// Concealed frames whose packet was really missing (lost, late, or a stream that ended).
    pub loss_frames: u64,
    /// Concealed frames during a pause of the sender (no sequence gap).
    pub sender_pause_frames: u64,
    /// Concealed frames the jitter buffer inserted to grow its delay.
    pub delay_growth_frames: u64,
    /// Concealed frames after the sender's last packet, when the call ended (pause or loss:
    /// unknown).
    pub call_end_frames: u64,
    /// `concealedFrames` per 100 frames.
    pub concealed_percent: f64,
    /// `lossFrames` per 100 frames.
    pub loss_percent: f64,
    /// `senderPauseFrames` per 100 frames.
    pub sender_pause_percent: f64,
    /// `delayGrowthFrames` per 100 frames.
    pub delay_growth_percent: f64,
    /// `callEndFrames` per 100 frames.
    pub call_end_percent: f64,
}

impl Concealment {
    /// From a receiver's counters: `frames` played out, `concealed` of them (total),
    /// `paused_concealed` found to be the sender's pause, `inserted` to grow the delay,
    /// `pending_concealed` since the last packet (the call's end).
    pub fn new(
        frames: u64,
        concealed: u64,
        paused_concealed: u64,
        inserted: u64,
        pending_concealed: u64,
    ) -> Self {
        let pauses = paused_concealed.min(concealed);
        let growth = inserted.min(concealed - pauses);
        let end = pending_concealed.min(concealed - pauses - growth);
        Self::from_parts(
            frames,
            Parts {
                loss: concealed - pauses - growth - end,
                pauses,
                growth,
                end,
            },
        )
    }

    /// Caller → bot: what the bot's room concealed of the caller's audio.
    pub fn of_bot_room(room: &CallRoomStats) -> Self {
        Self::new(
            room.ticks,
            room.concealed_frames,
            room.jitter_paused_concealed,
            room.jitter_inserted,
            room.jitter_pending_concealed,
        )
    }

    /// Bot → caller: what the emulator's room concealed of the bot's audio.
    pub fn of_emulator_room(bot: &BotPlayout) -> Self {
        Self::new(
            bot.ticks,
            bot.concealed,
            bot.jitter_paused_concealed,
            bot.jitter_inserted,
            bot.jitter_pending_concealed,
        )
    }

    /// The sum of `parts` (percentages recomputed over all their frames).
    pub fn sum(parts: impl IntoIterator<Item = Self>) -> Self {
        let mut frames = 0;
        let mut sum = Parts::default();
        for p in parts {
            frames += p.frames;
            sum.loss += p.loss_frames;
            sum.pauses += p.sender_pause_frames;
            sum.growth += p.delay_growth_frames;
            sum.end += p.call_end_frames;
        }
        Self::from_parts(frames, sum)
    }

    fn from_parts(frames: u64, parts: Parts) -> Self {
        let Parts {
            loss,
            pauses,
            growth,
            end,
        } = parts;
        let percent = |n: u64| {
            if frames == 0 {
                0.0
            } else {
                n as f64 * 100.0 / frames as f64
            }
        };
        let concealed = loss + pauses + growth + end;
        Self {
            frames,
            concealed_frames: concealed,
            loss_frames: loss,
            sender_pause_frames: pauses,
            delay_growth_frames: growth,
            call_end_frames: end,
            concealed_percent: percent(concealed),
            loss_percent: percent(loss),
            sender_pause_percent: percent(pauses),
            delay_growth_percent: percent(growth),
            call_end_percent: percent(end),
        }
    }
}

/// Concealed frames by cause.
#[derive(Clone, Copy, Debug, Default)]
struct Parts {
    loss: u64,
    pauses: u64,
    growth: u64,
    end: u64,
}

/// `8.6 % of frames (loss 0.08 %, sender pauses 8.4 %, delay growth 0.10 %, call end 0.02 %)`:
/// one decimal from 1 % up, two below.
impl fmt::Display for Concealment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = |v: f64| {
            if v >= 1.0 {
                format!("{v:.1} %")
            } else {
                format!("{v:.2} %")
            }
        };
        write!(
            f,
            "{} of frames (loss {}, sender pauses {}, delay growth {}, call end {})",
            p(self.concealed_percent),
            p(self.loss_percent),
            p(self.sender_pause_percent),
            p(self.delay_growth_percent),
            p(self.call_end_percent)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The total and its four parts.
    fn parts(c: &Concealment) -> (u64, u64, u64, u64, u64) {
        (
            c.concealed_frames,
            c.loss_frames,
            c.sender_pause_frames,
            c.delay_growth_frames,
            c.call_end_frames,
        )
    }

    #[test]
    fn parts_add_up_to_the_concealed_frames() {
        let c = Concealment::new(10_000, 862, 840, 10, 2);
        assert_eq!(parts(&c), (862, 10, 840, 10, 2));
        assert_eq!(
            c.to_string(),
            "8.6 % of frames (loss 0.10 %, sender pauses 8.4 %, delay growth 0.10 %, call end 0.02 %)"
        );
    }

    #[test]
    fn the_other_parts_are_capped_to_what_was_concealed() {
        // FEC-rebuilt frames are not concealed, so the jitter counters may exceed the total.
        let c = Concealment::new(100, 5, 4, 3, 2);
        assert_eq!(parts(&c), (5, 0, 4, 1, 0));
        let c = Concealment::new(100, 5, 9, 3, 2);
        assert_eq!(
            (c.loss_frames, c.sender_pause_frames, c.delay_growth_frames),
            (0, 5, 0)
        );
        let c = Concealment::new(100, 5, 0, 0, 2);
        assert_eq!((c.loss_frames, c.call_end_frames), (3, 2));
    }

    #[test]
    fn sum_recomputes_the_percentages_over_all_frames() {
        let s = Concealment::sum([
            Concealment::new(100, 10, 10, 0, 0),
            Concealment::new(300, 2, 0, 0, 0),
        ]);
        assert_eq!((s.frames, s.concealed_frames, s.loss_frames), (400, 12, 2));
        assert_eq!(s.concealed_percent, 3.0);
        assert_eq!(s.loss_percent, 0.5);
        assert_eq!(Concealment::sum([]).concealed_percent, 0.0);
    }
}
