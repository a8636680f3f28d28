//! Recorder taps: a room member that reports, every tick, what was heard, for an off-shard
//! writer (Ogg Opus of the received packets, a WAV of the mix, a sidecar of the timeline).
//!
//! A tap records a fixed set of streams: up to [`MAX_RECORDED_LEGS`] call legs, and
//! optionally the room's mix. **Every tick it emits exactly one [`RecordEvent`] per stream**,
//! numbered by [`RecordEvent::tick`] (0, 1, 2, … from the tick the tap joined):
//!
//! - a leg's entry is the packet its jitter buffer played (losslessly, header and payload,
//!   even when the mixer skipped decoding it), or the mark `Fec`, `Concealed` or `Silence`, or
//!   `Absent` while the leg is not in the room;
//! - the mix's entry is the limited full mix of that tick (silence when nobody spoke).
//!
//! So a writer's timeline has one entry per tick by construction. If the writer falls behind
//! and the queue fills, the event is dropped and counted ([`RecorderCounters::dropped`]); the
//! next delivered event's `tick` shows exactly which ticks are missing, so the writer records
//! them as lost rather than silently shortening the timeline. [`TimelineCheck`] is that
//! bookkeeping, ready-made for writers and tests.
//!
//! # Realtime Safety
//! [`RecorderTap::new`] allocates the queue and the stream list (off-shard). Emitting events
//! copies fixed-size values into preallocated queue slots.

use crate::media::frame::{AudioFrame, FRAME_SAMPLES};
use crate::media::leg::PlayoutMark;
use crate::media::packet::{OpusPacket, RtpMeta};
use crate::media::record_queue::{
    Entry, MIX_EVENT, Mark, RecordEvents, RecordSink, TYPICAL_LEG_EVENT, record_queue,
};
use crate::media::room::MemberId;

/// Which stream a [`RecordEvent`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordStream {
    /// What a call leg sent into the room.
    Leg(MemberId),
    /// The room's full mix.
    Mix,
}

/// One tick of one stream (what the writer reads; the queue holds it as a variable-size
/// record).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum RecordEntry {
    /// The packet played this tick (header and Opus payload, unchanged).
    Packet {
        /// RTP header fields as received.
        meta: RtpMeta,
        /// The Opus payload as received.
        payload: OpusPacket,
    },
    /// A lost packet rebuilt from the next packet (in-band FEC, or PLC if it carried none).
    Fec,
    /// A lost packet concealed (PLC).
    Concealed,
    /// Nothing received (silence).
    Silence,
    /// The leg was not in the room this tick.
    Absent,
    /// This tick's mix as PCM16 (what `mix.wav` holds; saturated at full scale).
    Mixed([i16; FRAME_SAMPLES]),
}

/// What a recorder tap emits: one per stream per tick.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordEvent {
    /// Tick number since the tap joined the room (0-based, +1 per tick).
    pub tick: u64,
    /// The stream.
    pub stream: RecordStream,
    /// What the stream did in this tick.
    pub entry: RecordEntry,
}

/// What to record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecorderConfig {
    /// Call legs to record (at most [`MAX_RECORDED_LEGS`]; extra ones are ignored).
    pub legs: Vec<MemberId>,
    /// Also record the full mix.
    pub mix: bool,
    /// Queue capacity in events of typical size (a leg's 160-byte packet, a mix frame),
    /// rounded up to whole ticks (every leg and the mix); at least one tick. Events are
    /// variable-size records in one byte ring (see [`crate::media::record_queue`]): marks
    /// take a 20-byte header, larger packets take more room than typical.
    pub capacity: usize,
}

/// Recorder counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderCounters {
    /// Events queued for the writer.
    pub events: u64,
    /// Events dropped because the writer's queue was full.
    pub dropped: u64,
}

/// The room's side of a recorder.
#[derive(Debug)]
pub struct RecorderTap {
    legs: Vec<MemberId>,
    mix: bool,
    output: RecordSink,
    tick: u64,
    counters: RecorderCounters,
}

impl RecorderTap {
    /// Builds a tap and the writer's end of its queue. Allocates.
    pub fn new(config: &RecorderConfig) -> (Self, RecordEvents) {
        let legs: Vec<MemberId> = config
            .legs
            .iter()
            .copied()
            .take(MAX_RECORDED_LEGS)
            .collect();
        let per_tick = (legs.len() + usize::from(config.mix)).max(1);
        let tick_bytes = legs.len() * TYPICAL_LEG_EVENT + usize::from(config.mix) * MIX_EVENT;
        let ticks = config.capacity.div_ceil(per_tick).max(1);
        let (output, input) = record_queue(ticks * tick_bytes);
        (
            Self {
                legs,
                mix: config.mix,
                output,
                tick: 0,
                counters: RecorderCounters::default(),
            },
            input,
        )
    }

    /// The recorded legs.
    pub fn legs(&self) -> &[MemberId] {
        &self.legs
    }

    /// Whether the mix is recorded.
    pub fn records_mix(&self) -> bool {
        self.mix
    }

    /// Emits a leg's entry for this tick.
    pub(crate) fn record_leg(
        &mut self,
        leg: MemberId,
        what: Option<(PlayoutMark, &RtpMeta, &OpusPacket)>,
    ) {
        let entry = match what {
            None => Entry::Mark(Mark::Absent),
            Some((PlayoutMark::Packet, meta, payload)) => Entry::Packet { meta, payload },
            Some((PlayoutMark::Fec, ..)) => Entry::Mark(Mark::Fec),
            Some((PlayoutMark::Concealed, ..)) => Entry::Mark(Mark::Concealed),
            Some((PlayoutMark::Silence, ..)) => Entry::Mark(Mark::Silence),
        };
        self.emit(RecordStream::Leg(leg), entry);
    }

    /// Emits the mix entry for this tick.
    pub(crate) fn record_mix(&mut self, mix: &AudioFrame) {
        if self.mix {
            let mut pcm = [0i16; FRAME_SAMPLES];
            mix.copy_to_i16(&mut pcm);
            self.emit(RecordStream::Mix, Entry::Mixed(&pcm));
        }
    }

    /// Ends the tick (the next events carry the next tick number).
    pub(crate) fn end_tick(&mut self) {
        self.tick += 1;
    }

    fn emit(&mut self, stream: RecordStream, entry: Entry<'_>) {
        if self.output.push(self.tick, stream, entry).is_ok() {
            self.counters.events += 1;
        } else {
            self.counters.dropped += 1;
        }
    }

    /// The tap's counters.
    pub fn counters(&self) -> &RecorderCounters {
        &self.counters
    }

    /// Ticks recorded so far.
    pub fn ticks(&self) -> u64 {
        self.tick
    }
}

/// Writer-side bookkeeping that turns a recorder's events into a gap-free timeline per stream.
#[derive(Clone, Debug, Default)]
pub struct TimelineCheck {
    streams: Vec<(RecordStream, u64)>,
    lost: u64,
}

impl TimelineCheck {
    /// An empty check.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts for one event; returns how many ticks of its stream were lost (dropped from a
    /// full queue) just before it, or `Err` with the expected tick if the event goes backwards
    /// or repeats (which the tap never does).
    pub fn observe(&mut self, event: &RecordEvent) -> Result<u64, u64> {
        let slot = match self.streams.iter_mut().find(|(s, _)| *s == event.stream) {
            Some(slot) => slot,
            None => {
                // A stream first seen at a later tick lost its earlier ticks.
                self.streams.push((event.stream, 0));
                let last = self.streams.len() - 1;
                &mut self.streams[last]
            }
        };
        if event.tick < slot.1 {
            return Err(slot.1);
        }
        let lost = event.tick - slot.1;
        slot.1 = event.tick + 1;
        self.lost += lost;
        Ok(lost)
    }

    /// Ticks covered so far for `stream` (received or known lost).
    pub fn ticks(&self, stream: RecordStream) -> u64 {
        self.streams
            .iter()
            .find(|(s, _)| *s == stream)
            .map_or(0, |(_, next)| *next)
    }

    /// Total ticks known lost across all streams.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

/// Largest number of call legs one tap records.
pub const MAX_RECORDED_LEGS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(tick: u64, stream: RecordStream) -> RecordEvent {
        RecordEvent {
            tick,
            stream,
            entry: RecordEntry::Silence,
        }
    }

    #[test]
    fn timeline_check_reports_gaps_and_rejects_repeats() {
        let leg = RecordStream::Leg(MemberId(1));
        let mut check = TimelineCheck::new();
        assert_eq!(check.observe(&ev(0, leg)), Ok(0));
        assert_eq!(check.observe(&ev(0, RecordStream::Mix)), Ok(0));
        assert_eq!(check.observe(&ev(3, leg)), Ok(2));
        assert_eq!(check.observe(&ev(3, leg)), Err(4));
        assert_eq!(check.ticks(leg), 4);
        assert_eq!(check.ticks(RecordStream::Mix), 1);
        assert_eq!(check.lost(), 2);
    }

    #[test]
    fn tap_numbers_ticks_and_counts_drops() {
        // Room for exactly one mix frame.
        let config = RecorderConfig {
            legs: vec![],
            mix: true,
            capacity: 1,
        };
        let (mut tap, mut rx) = RecorderTap::new(&config);
        let mut frame = AudioFrame::silence();
        for (i, s) in frame.samples.iter_mut().enumerate() {
            *s = i as f32 / 2048.0;
        }
        for _ in 0..3 {
            tap.record_mix(&frame);
            tap.end_tick();
        }
        assert_eq!(tap.counters().events, 1);
        assert_eq!(tap.counters().dropped, 2);
        let first = rx.pop().unwrap();
        assert_eq!(first.tick, 0);
        let mut pcm = [0i16; FRAME_SAMPLES];
        frame.copy_to_i16(&mut pcm);
        assert_eq!(first.entry, RecordEntry::Mixed(pcm));
        assert!(rx.pop().is_err());
        tap.record_mix(&frame);
        assert_eq!(rx.pop().unwrap().tick, 3);
    }
}
