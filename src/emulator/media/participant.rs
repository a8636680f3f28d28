//! An emulated participant: speech in, the mix it hears out, through an application endpoint
//! of the call's room.
//!
//! The participant is an application-endpoint member of the call's [`Room`](crate::media::room::Room)
//! (crate::media::room::Room): the room takes one of its PCM frames per tick and gives it one
//! frame of what it hears (the mix minus its own voice). Off the shard, a feeder keeps its
//! input queue [`FEED_AHEAD`] frames ahead — the shard's tick paces the speech in real time —
//! and a drain collects what it heard. Both run in the call's pump task
//! ([`super::call_room`]).
//!
//! # One timeline
//!
//! The queue is filled *before* the member joins the room, so the room's first tick with the
//! participant takes frame 0 of what it says and delivers frame 0 of what it hears; both
//! advance by one frame per tick. Sample `i` of [`ParticipantReport::sent`] and sample `i` of
//! [`ParticipantReport::heard`] therefore belong to the same tick, and a delay measured
//! between them ([`super::round_trip()`]) is exact, not a guess from wall-clock times. If the
//! feeder ever lets the queue run dry the room plays silence for that tick: the drain notices
//! (more frames heard than sent), counts it in [`ParticipantReport::underruns`] and writes
//! the silence into `sent`, so the timelines stay aligned.

use std::time::Instant;

use crate::media::endpoint::AppAudio;
use crate::media::frame::{AudioFrame, FRAME_DURATION, FRAME_SAMPLES};
use crate::media::room::MemberId;

use super::speech::ParticipantMedia;

/// Frames kept queued ahead of the room (160 ms: the pump may be late by that much).
pub const FEED_AHEAD: usize = 8;
/// Capacity of each endpoint queue, in frames.
pub const ENDPOINT_QUEUE: usize = 16;

/// What one participant sent and heard, and its counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParticipantReport {
    /// The participant's name.
    pub name: String,
    /// Its member id in the call's room.
    pub member: MemberId,
    /// What it sent, 48 kHz mono, from its first tick in the room (lead silence included).
    /// Includes up to [`FEED_AHEAD`] frames queued but not yet played.
    pub sent: Vec<f32>,
    /// When it was handed to the room; its first frame plays at the room's next tick
    /// (within 20 ms).
    pub send_start: Option<Instant>,
    /// What it heard (the room's mix minus its own voice), 48 kHz mono, on the same timeline
    /// as `sent`.
    pub heard: Vec<f32>,
    /// Frames queued for the room.
    pub frames_sent: u64,
    /// Frames heard.
    pub frames_heard: u64,
    /// Ticks the room found the participant's queue empty (played as silence and written
    /// into `sent`; see the module docs). Zero in a healthy run.
    pub underruns: u64,
    /// Frames not kept because the recording limit was reached.
    pub frames_not_kept: u64,
}

/// The pump's side of one participant.
#[derive(Debug)]
pub(crate) struct Participant {
    audio: AppAudio,
    /// Speech with its lead silence, 48 kHz.
    script: Vec<f32>,
    repeat: bool,
    /// Next sample of `script` to send.
    cursor: usize,
    /// Sending silence until released (the call's media is not connected yet).
    pub(crate) held: bool,
    /// Most samples kept in `sent` / `heard`.
    keep: usize,
    pub(crate) report: ParticipantReport,
}

impl Participant {
    /// A participant saying `speech` (already loaded, 48 kHz) after `media.lead_silence`,
    /// keeping at most `keep_samples` of what it sends and hears.
    pub(crate) fn new(
        media: &ParticipantMedia,
        speech: &[f32],
        member: MemberId,
        audio: AppAudio,
        keep_samples: usize,
    ) -> Self {
        let lead = (media.lead_silence.as_secs_f64() * 48_000.0) as usize;
        let mut script = vec![0.0; lead];
        script.extend_from_slice(speech);
        Self {
            audio,
            script,
            repeat: media.repeat,
            cursor: 0,
            held: false,
            keep: keep_samples,
            report: ParticipantReport {
                name: media.name.clone(),
                member,
                ..ParticipantReport::default()
            },
        }
    }

    /// Fills the input queue to [`FEED_AHEAD`] frames before the participant joins.
    pub(crate) fn prime(&mut self, now: Instant) {
        for _ in 0..FEED_AHEAD {
            self.push_next();
        }
        self.report.send_start = Some(now);
    }

    /// Drains what the room delivered, then tops the input queue up so that it is
    /// [`FEED_AHEAD`] frames ahead of the room again.
    pub(crate) fn pump(&mut self) {
        while let Some(frame) = self.audio.recv() {
            self.report.frames_heard += 1;
            if self.report.heard.len() + FRAME_SAMPLES <= self.keep {
                self.report.heard.extend_from_slice(&frame.samples);
            } else {
                self.report.frames_not_kept += 1;
            }
        }
        // Every heard frame is one room tick, which took one frame (or found none).
        let ahead = self.report.frames_sent as i64 - self.report.frames_heard as i64;
        if ahead < 0 {
            // The queue ran dry: everything sent was played, then the room played silence
            // for the missing ticks. Write that silence into `sent` so that the timelines
            // stay aligned, and count each missed tick once.
            let missed = ahead.unsigned_abs();
            self.report.underruns += missed;
            self.report.frames_sent = self.report.frames_heard;
            for _ in 0..missed {
                if self.report.sent.len() + FRAME_SAMPLES <= self.keep {
                    self.report.sent.extend_from_slice(&[0.0; FRAME_SAMPLES]);
                }
            }
        }
        let ahead = self.report.frames_sent - self.report.frames_heard;
        for _ in ahead..FEED_AHEAD as u64 {
            if !self.push_next() {
                break;
            }
        }
    }

    /// Queues the next frame of the script (silence after it, unless repeating; silence
    /// without advancing while held); `false` when the room's queue is full.
    fn push_next(&mut self) -> bool {
        let mut frame = AudioFrame::silence();
        if self.held {
            if !self.audio.send(&frame) {
                return false;
            }
            self.report.frames_sent += 1;
            if self.report.sent.len() + FRAME_SAMPLES <= self.keep {
                self.report.sent.extend_from_slice(&frame.samples);
            }
            return true;
        }
        if self.repeat && self.cursor >= self.script.len() && !self.script.is_empty() {
            self.cursor = 0;
        }
        let end = (self.cursor + FRAME_SAMPLES).min(self.script.len());
        let n = end.saturating_sub(self.cursor);
        if n > 0 {
            frame.samples[..n].copy_from_slice(&self.script[self.cursor..end]);
        }
        if !self.audio.send(&frame) {
            return false;
        }
        self.cursor += FRAME_SAMPLES;
        self.report.frames_sent += 1;
        if self.report.sent.len() + FRAME_SAMPLES <= self.keep {
            self.report.sent.extend_from_slice(&frame.samples);
        }
        true
    }

    /// Seconds of speech (lead silence included) in the script.
    pub(crate) fn script_duration(&self) -> std::time::Duration {
        FRAME_DURATION * (self.script.len().div_ceil(FRAME_SAMPLES) as u32)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::media::member::Member;
    use crate::media::room::{Room, RoomConfig, RoomId};

    fn ramp(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i % 480) as f32 / 480.0 - 0.5) * 0.5)
            .collect()
    }

    #[test]
    fn sent_and_heard_share_one_timeline() {
        // Two participants in a room ticked by hand: B hears exactly what A sent, in the same
        // tick, so A's sent samples line up with B's heard samples at lag 0.
        let mut room = Room::new(RoomId(1), RoomConfig::default()).expect("room");
        let speech = ramp(FRAME_SAMPLES * 30);
        let mut parts = Vec::new();
        for (i, name) in ["a", "b"].iter().enumerate() {
            let (member, audio) =
                Member::app_endpoint(MemberId(i as u64), ENDPOINT_QUEUE).expect("endpoint");
            let media = ParticipantMedia::new(*name, "unused.wav");
            let said = if i == 0 { speech.clone() } else { Vec::new() };
            let mut p = Participant::new(&media, &said, MemberId(i as u64), audio, 48_000 * 5);
            p.prime(Instant::now());
            room.add_member(member).expect("room has space");
            parts.push(p);
        }
        let now = Instant::now();
        for t in 0..40u32 {
            room.tick(now + FRAME_DURATION * t);
            for p in &mut parts {
                p.pump();
            }
        }
        let (a, b) = (&parts[0].report, &parts[1].report);
        assert_eq!(a.underruns + b.underruns, 0);
        assert_eq!(b.frames_heard, 40);
        let n = speech.len();
        let c = crate::media::analysis::correlation(&a.sent[..n], &b.heard[..n]);
        assert!(c > 0.99, "correlation {c}");
        // A does not hear itself (mix-minus) and B said nothing.
        assert!(crate::media::analysis::rms(&a.heard) < 1e-3);
    }

    #[test]
    fn lead_silence_and_repeat_shape_the_script() {
        let (_member, audio) = Member::app_endpoint(MemberId(1), ENDPOINT_QUEUE).expect("ep");
        let media = ParticipantMedia::new("x", "unused.wav")
            .lead_silence(Duration::from_millis(40))
            .repeating();
        let mut p = Participant::new(&media, &[0.5; FRAME_SAMPLES], MemberId(1), audio, 1 << 20);
        p.prime(Instant::now());
        // 2 frames of silence, then the one-frame speech again and again.
        let frames: Vec<f32> = p.report.sent.chunks(FRAME_SAMPLES).map(|f| f[0]).collect();
        assert_eq!(frames, [0.0, 0.0, 0.5, 0.0, 0.0, 0.5, 0.0, 0.0]);
        assert_eq!(p.script_duration(), Duration::from_millis(60));
    }

    #[test]
    fn a_held_participant_sends_silence_then_its_script_from_the_start() {
        let (_member, audio) = Member::app_endpoint(MemberId(1), ENDPOINT_QUEUE).expect("ep");
        let media = ParticipantMedia::new("x", "unused.wav");
        let mut p = Participant::new(
            &media,
            &[0.5; FRAME_SAMPLES * 2],
            MemberId(1),
            audio,
            1 << 20,
        );
        p.held = true;
        p.prime(Instant::now());
        assert!(p.report.sent.iter().all(|s| *s == 0.0));
        assert_eq!(p.report.frames_sent, FEED_AHEAD as u64);
    }

    #[test]
    fn an_empty_queue_is_counted_as_an_underrun() {
        let mut room = Room::new(RoomId(1), RoomConfig::default()).expect("room");
        let (member, audio) = Member::app_endpoint(MemberId(1), ENDPOINT_QUEUE).expect("ep");
        let media = ParticipantMedia::new("x", "unused.wav");
        let mut p = Participant::new(
            &media,
            &[0.1; FRAME_SAMPLES * 4],
            MemberId(1),
            audio,
            1 << 20,
        );
        p.prime(Instant::now());
        room.add_member(member).expect("space");
        let now = Instant::now();
        // The pump is starved for 12 ticks: 8 frames were queued, so 4 ticks find nothing.
        for t in 0..12u32 {
            room.tick(now + FRAME_DURATION * t);
        }
        p.pump();
        assert_eq!(p.report.underruns, 4);
        assert_eq!(p.report.frames_heard, 12);
    }
}
