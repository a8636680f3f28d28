//! An adaptive, sans-IO jitter buffer for 20 ms Opus RTP: packets in with
//! [`JitterBuffer::push`], exactly one [`Playout`] out per 20 ms tick with
//! [`JitterBuffer::pop`].
//!
//! # Model
//! The buffer plays a *timeline* keyed by RTP timestamp: each 20 ms frame of media time
//! (960 ticks at 48 kHz) has one slot, whichever packets carry it. The playout head moves one
//! frame per `pop`, locked to media time, so delay neither creeps up during outages nor
//! collapses after them, and a sender's DTX gaps simply play as concealment.
//!
//! - **Target delay** (NetEQ-like, see `delay.rs`): the 95th percentile of the packets'
//!   relative arrival delay (how much later than the fastest recent packet they came), with
//!   forgetting, bounded by [`JitterConfig::min_delay`] and [`JitterConfig::max_delay`]. On a
//!   clean path it is the minimum (20 ms), and the playout delay settles at 20–40 ms.
//! - **Convergence**: when the delay of the frame at the head is below the target, a
//!   concealment frame is *inserted* (the head waits a tick); when it is more than a frame
//!   above, a packet is *dropped*. Both prefer sensible moments — an insertion while the head
//!   packet is missing anyway, either one when the head packet is quiet (RFC 6464 level) — and
//!   happen in the middle of speech only after some patience (or, for drops, when the excess
//!   is large). One adjustment per tick at most, so the delay converges instead of jumping.
//! - **Gaps**: a missing frame is [`Playout::Conceal`] (with the next packet's in-band FEC when
//!   that packet is already here), until [`JitterConfig::max_concealment`] of consecutive
//!   concealment, then [`Playout::Silence`]. When packets return they play within a few ticks.
//! - **Bad input**: duplicates, late packets, packets beyond the capacity, large packets
//!   (> 320 bytes) beyond the 8 spill slots, and strays (another
//!   SSRC, absurd timestamps) are dropped and counted; a stray confirmed by the next packet, or
//!   any packet arriving after the stream has gone silent, starts a new timeline
//!   ([`PushOutcome::Resync`]). Sequence numbers and timestamps wrap freely; a gap is never
//!   walked frame by frame, so no jump can cause a long concealment loop.
//!
//! Every packet and every tick lands in exactly one counter of [`JitterStats`] (see its docs).
//!
//! # Realtime Safety
//! [`JitterBuffer::new`] allocates every slot and the delay histogram; `push`, `pop`, `stats`
//! and `reset` never allocate, lock or block. A `push` copies the packet into its slot (small
//! packets inline, large ones into a shared spill slot: see `slots.rs`); a `pop` copies it
//! into one output packet and returns a borrow of that.

mod delay;
mod slots;
mod stats;

use std::time::{Duration, Instant};

use delay::DelayEstimator;
use slots::Slots;
pub use stats::JitterStats;

use crate::media::frame::{FRAME_DURATION, RTP_TICKS_PER_FRAME};
use crate::media::packet::{OpusPacket, RtpPacket};

/// Jitter-buffer settings. The default suits interactive 20 ms Opus.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JitterConfig {
    /// Lowest target delay (default 20 ms: one frame).
    pub min_delay: Duration,
    /// Highest target delay (default 400 ms). Capped at 75 % of the capacity, as NetEQ does.
    pub max_delay: Duration,
    /// Slots, one per 20 ms frame (default 50: one second). At least 4.
    pub capacity: usize,
    /// Consecutive concealment after which [`Playout::Silence`] is emitted instead (default
    /// 400 ms, Janus's 20 frames).
    pub max_concealment: Duration,
    /// Share of packets the target delay should let arrive in time (default 0.95).
    pub quantile: f64,
    /// Per-packet forgetting factor of the delay histogram (default 0.9993, NetEQ's).
    pub forget_factor: f64,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(400),
            capacity: 50,
            max_concealment: Duration::from_millis(400),
            quantile: 0.95,
            forget_factor: 0.9993,
        }
    }
}

impl JitterConfig {
    /// The configuration actually used: capacity ≥ 4 slots, `max_delay` ≤ 75 % of the
    /// capacity, `min_delay` ≤ `max_delay`.
    pub fn normalized(mut self) -> Self {
        self.capacity = self.capacity.clamp(4, 1 << 16);
        let cap = FRAME_DURATION * (self.capacity as u32 * 3 / 4);
        self.max_delay = self.max_delay.min(cap);
        self.min_delay = self.min_delay.min(self.max_delay);
        self
    }
}

/// What [`JitterBuffer::push`] did with a packet. Each outcome is counted in [`JitterStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored for playout.
    Accepted,
    /// Its media time is already buffered or played: dropped.
    Duplicate,
    /// Its frame has already played (or been concealed), or it is an old packet from before
    /// the last played one: dropped.
    Late,
    /// A new timeline started with this packet (new SSRC, timestamp jump, or a stream that
    /// returned on another timeline after going silent); older buffered packets were flushed.
    Resync,
    /// Too far ahead of the playout point for the capacity, or a large packet while every
    /// spill slot is taken (counted in `overflow` and `oversize` too): dropped.
    Overflow,
    /// Does not fit the current stream (another SSRC, an absurd timestamp): dropped, but kept
    /// as a candidate — if the next packet continues it, the buffer resyncs to them.
    Stray,
}

/// What to play for one 20 ms tick.
#[derive(Clone, Copy, Debug)]
pub enum Playout<'a> {
    /// Decode this packet.
    Packet(&'a RtpPacket),
    /// This frame is missing: run the decoder's packet-loss concealment, or, when `fec` is
    /// given (the next packet is already here), decode that packet's in-band FEC instead.
    Conceal {
        /// The next packet's payload, for in-band FEC.
        fec: Option<&'a OpusPacket>,
    },
    /// Play silence: not started, buffering, or past the concealment limit.
    Silence,
}

/// The adaptive jitter buffer of one incoming stream. See the module docs.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    slots: Slots,
    state: State,
    ssrc: u32,
    /// Frame number (on this buffer's own axis) that the next `pop` plays.
    head: i64,
    /// RTP timestamp of `head`.
    head_ts: u32,
    /// Newest frame stored since the timeline started.
    newest: i64,
    /// Origin of this timeline's time axis (arrival of its first packet).
    epoch: Option<Instant>,
    delay: DelayEstimator,
    /// Sequence number and frame of a recent packet, to spot sequence jumps.
    seq_ref: Option<(u16, i64)>,
    last_played_seq: Option<u16>,
    candidate: Option<RtpPacket>,
    /// Consecutive pushes that were late or overflowed.
    reject_streak: u32,
    /// Consecutive pops (while playing) that were not a packet.
    conceal_streak: u32,
    /// Frames counted `lost` since the last packet played: those of them for which the next
    /// packet played skips no sequence number were the sender's pause, not a loss.
    missing_run: u64,
    deficit_ticks: u32,
    excess_ticks: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer with `config` (see [`JitterConfig::normalized`]); allocates all its memory.
    pub fn new(config: JitterConfig) -> Self {
        let config = config.normalized();
        Self {
            config,
            slots: Slots::new(config.capacity),
            state: State::Idle,
            ssrc: 0,
            head: 0,
            head_ts: 0,
            newest: 0,
            epoch: None,
            delay: DelayEstimator::new(
                config.min_delay,
                config.max_delay,
                config.forget_factor,
                config.quantile,
            ),
            seq_ref: None,
            last_played_seq: None,
            candidate: None,
            reject_streak: 0,
            conceal_streak: 0,
            missing_run: 0,
            deficit_ticks: 0,
            excess_ticks: 0,
            stats: JitterStats::default(),
        }
    }

    /// Offers a received packet at `now`. Never allocates and never fails: every packet gets
    /// an outcome, counted in [`Self::stats`]. Arrival jitter is measured from
    /// `packet.arrival` (clamped to `now`).
    pub fn push(&mut self, now: Instant, packet: &RtpPacket) -> PushOutcome {
        self.stats.received += 1;
        let arrival = packet.arrival.min(now);
        if self.state == State::Idle {
            self.start(packet, arrival);
            return PushOutcome::Accepted;
        }
        if packet.meta.ssrc != self.ssrc {
            return self.stray(packet, arrival);
        }
        let rel = self.frames_from_head(packet.meta.timestamp);
        let frame = self.head + rel;
        let cap = self.config.capacity as i64;
        if rel < 0 {
            if self.state == State::Buffering && self.newest - frame < cap {
                // Reordered start: the stream begins before the first packet we saw.
                self.head = frame;
                self.head_ts = self
                    .head_ts
                    .wrapping_sub((-rel) as u32 * RTP_TICKS_PER_FRAME);
                return self.store(frame, packet, arrival);
            }
            if rel < -cap && self.newer_than_played(packet.meta.seq) {
                return self.stray(packet, arrival);
            }
            if self.slots.was_played(frame, packet.meta.seq) {
                self.stats.duplicate += 1;
                return PushOutcome::Duplicate;
            }
            // Late: evidence that the delay is too short — if it is late by less than the
            // maximum delay. Later than that no target could have saved it, and such packets
            // are mostly a sender's timeline moving back (they would only poison the
            // histogram).
            let reach = duration_ns(self.config.max_delay) / FRAME_NS + 1;
            if -rel <= reach {
                self.observe(frame, arrival);
            }
            self.reject_streak += 1;
            let newer = self.newer_than_played(packet.meta.seq);
            if newer
                && self.slots.buffered() == 0
                && (self.is_dead() || self.reject_streak >= REJECT_RESYNC_STREAK)
            {
                return self.resync(packet, arrival);
            }
            self.stats.late += 1;
            return PushOutcome::Late;
        }
        if rel >= cap + FAR_AHEAD_FRAMES {
            return self.stray(packet, arrival);
        }
        if rel >= cap {
            self.reject_streak += 1;
            if self.slots.buffered() == 0
                && (self.is_dead() || self.reject_streak >= REJECT_RESYNC_STREAK)
            {
                return self.resync(packet, arrival);
            }
            self.stats.overflow += 1;
            return PushOutcome::Overflow;
        }
        if self.slots.is_buffered(frame) {
            self.stats.duplicate += 1;
            return PushOutcome::Duplicate;
        }
        self.check_seq(frame, packet.meta.seq);
        self.store(frame, packet, arrival)
    }

    /// The playout for the tick at `now`. Call exactly once per 20 ms tick; never allocates.
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        self.stats.pops += 1;
        match self.state {
            State::Idle => {
                self.stats.silence += 1;
                Playout::Silence
            }
            State::Buffering => {
                let target = self.delay.target();
                let delay = self.delay_ns(now);
                self.note_delays(delay, target);
                if delay < duration_ns(target) {
                    self.stats.silence += 1;
                    return Playout::Silence;
                }
                self.state = State::Playing;
                self.play(now)
            }
            State::Playing => self.play(now),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &JitterStats {
        &self.stats
    }

    /// Packets currently held for playout.
    pub fn buffered(&self) -> usize {
        self.slots.buffered()
    }

    /// The configuration in use (normalized).
    pub fn config(&self) -> &JitterConfig {
        &self.config
    }

    /// Returns to the freshly constructed state: no stream, no packets, delay estimate and
    /// counters cleared. Never allocates.
    pub fn reset(&mut self) {
        self.slots.clear();
        self.state = State::Idle;
        self.epoch = None;
        self.delay.reset();
        self.seq_ref = None;
        self.last_played_seq = None;
        self.candidate = None;
        self.reject_streak = 0;
        self.conceal_streak = 0;
        self.missing_run = 0;
        self.deficit_ticks = 0;
        self.excess_ticks = 0;
        self.stats = JitterStats::default();
    }

    /// Starts a timeline with `packet` at frame 0.
    fn start(&mut self, packet: &RtpPacket, arrival: Instant) {
        self.slots.clear();
        self.ssrc = packet.meta.ssrc;
        self.head = 0;
        self.head_ts = packet.meta.timestamp;
        self.newest = 0;
        self.epoch = Some(arrival);
        self.delay.reset_reference();
        self.state = State::Buffering;
        self.seq_ref = None;
        self.last_played_seq = None;
        self.conceal_streak = 0;
        self.missing_run = 0;
        self.stats.pending_concealed = 0;
        self.deficit_ticks = 0;
        self.excess_ticks = 0;
        self.check_seq(0, packet.meta.seq);
        // The slots were just cleared, so every spill slot is free: always `Accepted`.
        self.store(0, packet, arrival);
    }

    fn resync(&mut self, packet: &RtpPacket, arrival: Instant) -> PushOutcome {
        self.stats.flushed += self.slots.buffered() as u64;
        self.stats.resyncs += 1;
        self.start(packet, arrival);
        PushOutcome::Resync
    }

    fn stray(&mut self, packet: &RtpPacket, arrival: Instant) -> PushOutcome {
        if self.is_dead() {
            return self.resync(packet, arrival);
        }
        if let Some(c) = &self.candidate
            && continues(c, packet)
            && (c.meta.ssrc != self.ssrc || self.newer_than_played(packet.meta.seq))
        {
            return self.resync(packet, arrival);
        }
        self.candidate = Some(*packet);
        self.stats.stray += 1;
        PushOutcome::Stray
    }

    /// Stores an accepted packet; [`PushOutcome::Overflow`] (counted as `overflow` and
    /// `oversize`) for a large packet with every spill slot taken (see `slots.rs`).
    fn store(&mut self, frame: i64, packet: &RtpPacket, arrival: Instant) -> PushOutcome {
        if !self.slots.store(frame, packet) {
            self.stats.overflow += 1;
            self.stats.oversize += 1;
            return PushOutcome::Overflow;
        }
        self.newest = self.newest.max(frame);
        self.stats.accepted += 1;
        self.reject_streak = 0;
        self.candidate = None;
        self.observe(frame, arrival);
        PushOutcome::Accepted
    }

    fn play(&mut self, now: Instant) -> Playout<'_> {
        let target = self.delay.target();
        let target_ns = duration_ns(target);
        let delay = self.delay_ns(now);
        self.note_delays(delay, target);
        let deficit = delay < target_ns - HYSTERESIS_NS;
        let excess = delay >= target_ns + FRAME_NS + HYSTERESIS_NS;
        self.deficit_ticks = if deficit { self.deficit_ticks + 1 } else { 0 };
        self.excess_ticks = if excess { self.excess_ticks + 1 } else { 0 };
        let head_present = self.slots.is_buffered(self.head);

        if deficit {
            let insert = if head_present {
                self.is_quiet(self.head) || self.deficit_ticks > INSERT_PATIENCE
            } else {
                // Nothing later has arrived either: waiting costs nothing.
                self.slots.buffered() == 0
            };
            if insert {
                return self.insert();
            }
        }
        if excess
            && head_present
            && self.slots.is_buffered(self.head + 1)
            && (self.is_quiet(self.head)
                || self.excess_ticks > DROP_PATIENCE
                || delay >= target_ns + 3 * FRAME_NS)
        {
            self.slots.discard(self.head);
            self.stats.dropped += 1;
            self.advance();
        }
        if self.slots.is_buffered(self.head) {
            return self.play_head();
        }
        self.missing()
    }

    fn play_head(&mut self) -> Playout<'_> {
        let frame = self.head;
        let Some(seq) = self.slots.meta(frame).map(|m| m.seq) else {
            return self.missing();
        };
        self.advance();
        self.conceal_streak = 0;
        self.stats.played += 1;
        if let Some(last) = self.last_played_seq {
            // Packets the sender numbered between the two (lost, late, or dropped here).
            let unplayed = u64::from(seq.wrapping_sub(last).wrapping_sub(1));
            if unplayed <= self.missing_run {
                // Only `unplayed` of the missing frames had a packet: the others were a pause
                // of the sender (discontinuous transmission), not a loss. Which of them were
                // concealed is unknown, so the lost ones are taken to be among the concealed.
                self.stats.sender_paused += self.missing_run - unplayed;
                self.stats.paused_concealed +=
                    self.stats.pending_concealed.saturating_sub(unplayed);
            }
        }
        self.missing_run = 0;
        self.stats.pending_concealed = 0;
        self.last_played_seq = Some(seq);
        match self.slots.play(frame) {
            Some(packet) => Playout::Packet(packet),
            // `get` just found it buffered.
            None => Playout::Conceal { fec: None },
        }
    }

    fn missing(&mut self) -> Playout<'_> {
        self.stats.lost += 1;
        self.missing_run += 1;
        let next = self.head + 1;
        let fec = self.slots.is_buffered(next);
        self.advance();
        if self.past_concealment_limit() {
            self.conceal_streak += 1;
            self.stats.silence += 1;
            return Playout::Silence;
        }
        self.conceal_streak += 1;
        self.stats.concealed += 1;
        self.stats.pending_concealed += 1;
        if !fec {
            return Playout::Conceal { fec: None };
        }
        self.stats.fec_recovered += 1;
        Playout::Conceal {
            fec: self.slots.peek_payload(next),
        }
    }

    fn insert(&mut self) -> Playout<'_> {
        if self.past_concealment_limit() {
            self.conceal_streak += 1;
            self.stats.silence += 1;
            return Playout::Silence;
        }
        self.conceal_streak += 1;
        self.stats.inserted += 1;
        self.stats.concealed += 1;
        Playout::Conceal { fec: None }
    }

    fn advance(&mut self) {
        self.head += 1;
        self.head_ts = self.head_ts.wrapping_add(RTP_TICKS_PER_FRAME);
    }

    fn past_concealment_limit(&self) -> bool {
        let limit = duration_ns(self.config.max_concealment) / FRAME_NS;
        i64::from(self.conceal_streak) >= limit
    }

    /// The stream has gone quiet: nothing buffered and several ticks without a packet.
    fn is_dead(&self) -> bool {
        self.state == State::Playing
            && self.slots.buffered() == 0
            && self.conceal_streak >= DEAD_AFTER
    }

    fn newer_than_played(&self, seq: u16) -> bool {
        self.last_played_seq
            .is_none_or(|last| (seq.wrapping_sub(last) as i16) > 0)
    }

    fn is_quiet(&self, frame: i64) -> bool {
        self.slots
            .meta(frame)
            .and_then(|m| m.audio_level)
            .is_some_and(|l| l.level >= QUIET_LEVEL)
    }

    /// Whole frames from the head to `timestamp` (signed, wrap-aware, rounded).
    fn frames_from_head(&self, timestamp: u32) -> i64 {
        let ticks = i64::from(timestamp.wrapping_sub(self.head_ts) as i32);
        let per = i64::from(RTP_TICKS_PER_FRAME);
        (ticks + per / 2).div_euclid(per)
    }

    fn observe(&mut self, frame: i64, arrival: Instant) {
        let Some(epoch) = self.epoch else { return };
        let offset = signed_ns(arrival, epoch).saturating_sub(frame.saturating_mul(FRAME_NS));
        self.delay.observe(offset);
    }

    /// How long after its fastest-path arrival time the head frame would play at `now`.
    fn delay_ns(&self, now: Instant) -> i64 {
        let Some(epoch) = self.epoch else { return 0 };
        let expected = self
            .delay
            .min_offset()
            .unwrap_or(0)
            .saturating_add(self.head.saturating_mul(FRAME_NS));
        signed_ns(now, epoch).saturating_sub(expected)
    }

    fn note_delays(&mut self, delay: i64, target: Duration) {
        self.stats.current_delay = Duration::from_nanos(delay.max(0) as u64);
        self.stats.target_delay = target;
    }

    fn check_seq(&mut self, frame: i64, seq: u16) {
        if let Some((ref_seq, ref_frame)) = self.seq_ref {
            let seq_diff = i64::from(seq.wrapping_sub(ref_seq) as i16);
            let frame_diff = frame - ref_frame;
            // DTX sends fewer packets than frames, reordering swaps a few: anything else is
            // a jump in the sender's sequence numbering.
            let consistent = seq_diff.signum() == frame_diff.signum()
                && seq_diff.abs() <= frame_diff.abs() + MAX_MISORDER;
            if !consistent {
                self.stats.seq_jumps += 1;
            } else if frame < ref_frame {
                return;
            }
        }
        self.seq_ref = Some((seq, frame));
    }
}

/// Whether `next` continues the stream that `first` began (same SSRC, a few packets later,
/// timestamps moving forward accordingly).
fn continues(first: &RtpPacket, next: &RtpPacket) -> bool {
    let seq_diff = i64::from(next.meta.seq.wrapping_sub(first.meta.seq) as i16);
    let ticks = i64::from(next.meta.timestamp.wrapping_sub(first.meta.timestamp) as i32);
    let per = i64::from(RTP_TICKS_PER_FRAME);
    let frames = (ticks + per / 2).div_euclid(per);
    first.meta.ssrc == next.meta.ssrc
        && (1..=MAX_CONFIRM_GAP).contains(&seq_diff)
        && (seq_diff..=seq_diff + MAX_DTX_FRAMES).contains(&frames)
}

fn signed_ns(a: Instant, b: Instant) -> i64 {
    if a >= b {
        duration_ns(a - b)
    } else {
        -duration_ns(b - a)
    }
}

fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No stream yet.
    Idle,
    /// A timeline has started; waiting for the head frame's delay to reach the target.
    Buffering,
    /// One frame per pop.
    Playing,
}

const FRAME_NS: i64 = FRAME_DURATION.as_nanos() as i64;
/// Slack around the target band `[target, target + frame)` so a wobbling reference does not
/// cause insert/drop ping-pong.
const HYSTERESIS_NS: i64 = 2_000_000;
/// Ticks below target before a concealment frame is inserted in front of speech.
const INSERT_PATIENCE: u32 = 2;
/// Ticks above target before a speech packet is dropped (quiet packets go at once).
const DROP_PATIENCE: u32 = 10;
/// Non-packet pops with an empty buffer after which the stream counts as gone.
const DEAD_AFTER: u32 = 3;
/// Consecutive late or overflowing packets (with nothing buffered) that force a resync.
const REJECT_RESYNC_STREAK: u32 = 3;
/// Beyond the capacity by more than this (20 s), a packet is a stray rather than overflow.
const FAR_AHEAD_FRAMES: i64 = 1000;
/// RFC 6464 level (−dBov) at or above which a packet counts as quiet.
const QUIET_LEVEL: u8 = 50;
/// Sequence/timestamp disagreement tolerated before counting a sequence jump.
const MAX_MISORDER: i64 = 100;
/// A stray candidate is confirmed by a packet at most this many sequence numbers later.
const MAX_CONFIRM_GAP: i64 = 4;
/// Extra frames (DTX) allowed between a candidate and the packet that confirms it.
const MAX_DTX_FRAMES: i64 = 50;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::packet::{AudioLevel, RtpMeta};

    const SSRC: u32 = 0x1234_5678;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// What a pop produced, with packets named by sequence number.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Out {
        Play(u16),
        Conceal(Option<u16>),
        Silence,
    }

    fn seq_of(payload: &OpusPacket) -> u16 {
        let b = payload.as_slice();
        u16::from_be_bytes([b[0], b[1]])
    }

    fn packet(ssrc: u32, seq: u16, timestamp: u32, arrival: Instant) -> RtpPacket {
        let [hi, lo] = seq.to_be_bytes();
        RtpPacket {
            meta: RtpMeta {
                seq,
                timestamp,
                ssrc,
                ..RtpMeta::default()
            },
            payload: OpusPacket::from_slice(&[hi, lo, 0xfc]).unwrap(),
            arrival,
        }
    }

    /// Drives a buffer on virtual time: `sends` are `(arrival after t0, packet)`; pops every
    /// 20 ms from `t0 + phase`, after every packet that has arrived by then.
    fn run(
        jb: &mut JitterBuffer,
        t0: Instant,
        mut sends: Vec<RtpPacket>,
        phase: Duration,
        ticks: u32,
    ) -> (Vec<Out>, Vec<PushOutcome>) {
        sends.sort_by_key(|p| p.arrival);
        let mut sends = sends.into_iter().peekable();
        let mut outs = Vec::new();
        let mut outcomes = Vec::new();
        for k in 0..ticks {
            let now = t0 + phase + FRAME_DURATION * k;
            while let Some(p) = sends.next_if(|p| p.arrival <= now) {
                outcomes.push(jb.push(p.arrival, &p));
            }
            outs.push(match jb.pop(now) {
                Playout::Packet(p) => Out::Play(p.meta.seq),
                Playout::Conceal { fec } => Out::Conceal(fec.map(seq_of)),
                Playout::Silence => Out::Silence,
            });
        }
        (outs, outcomes)
    }

    /// Frames `range` of a stream starting at `(seq0, ts0)`, sent every 20 ms from `t0` and
    /// arriving after `latency`.
    fn stream(
        t0: Instant,
        seq0: u16,
        ts0: u32,
        range: std::ops::Range<u32>,
        latency: Duration,
    ) -> Vec<RtpPacket> {
        range
            .map(|k| {
                packet(
                    SSRC,
                    seq0.wrapping_add(k as u16),
                    ts0.wrapping_add(k * RTP_TICKS_PER_FRAME),
                    t0 + FRAME_DURATION * k + latency,
                )
            })
            .collect()
    }

    fn played(outs: &[Out]) -> Vec<u16> {
        outs.iter()
            .filter_map(|o| match o {
                Out::Play(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// Pops after the last played packet: the stream has ended, so those frames are lost.
    fn tail(outs: &[Out]) -> u64 {
        outs.iter()
            .rev()
            .take_while(|o| !matches!(o, Out::Play(_)))
            .count() as u64
    }

    #[test]
    fn a_sender_pause_is_told_apart_from_a_loss() {
        let t0 = Instant::now();
        let latency = Duration::from_millis(5);
        // Frames 20..30 are never sent: first as a pause (the sequence numbers go on without a
        // gap, as a sender in discontinuous transmission does), then as a loss (their
        // sequence numbers are missing).
        let mut paused = stream(t0, 1000, 0, 0..20, latency);
        paused.extend((30..50u32).map(|k| {
            packet(
                SSRC,
                1000 + k as u16 - 10,
                k * RTP_TICKS_PER_FRAME,
                t0 + FRAME_DURATION * k + latency,
            )
        }));
        let mut lossy = stream(t0, 1000, 0, 0..50, latency);
        lossy.retain(|p| !(1020..1030).contains(&p.meta.seq));

        let mut jb = JitterBuffer::new(JitterConfig::default());
        run(&mut jb, t0, paused, Duration::from_millis(10), 50);
        let s = *jb.stats();
        check_identities(&s);
        assert_eq!((s.lost, s.sender_paused), (10, 10), "{s:?}");

        let mut jb = JitterBuffer::new(JitterConfig::default());
        run(&mut jb, t0, lossy, Duration::from_millis(10), 50);
        let s = *jb.stats();
        check_identities(&s);
        assert_eq!((s.lost, s.sender_paused), (10, 0), "{s:?}");
    }

    /// What a sender did with one frame of its timeline.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Sent {
        /// Sent, and arrived.
        Yes,
        /// Not sent: a pause (DTX), so no sequence number is used.
        Paused,
        /// Sent but lost on the way: its sequence number is missing.
        Lost,
    }

    /// The packets that arrive of `frames` frames sent every 20 ms from `t0` (arriving 5 ms
    /// later), each frame as `plan` says.
    fn sender(t0: Instant, frames: u32, plan: impl Fn(u32) -> Sent) -> Vec<RtpPacket> {
        let mut seq = 1000u16;
        let mut sends = Vec::new();
        for k in 0..frames {
            let what = plan(k);
            if what == Sent::Yes {
                let arrival = t0 + FRAME_DURATION * k + ms(5);
                sends.push(packet(SSRC, seq, k * RTP_TICKS_PER_FRAME, arrival));
            }
            if what != Sent::Paused {
                seq = seq.wrapping_add(1);
            }
        }
        sends
    }

    /// Runs `plan` for `frames` frames (popping every 20 ms, 10 ms after the sends) and
    /// returns the stats. Every plan ends with a sent frame, so no frame is missing at the end.
    fn conceal_stats(frames: u32, plan: impl Fn(u32) -> Sent) -> JitterStats {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let (outs, _) = run(&mut jb, t0, sender(t0, frames, plan), ms(10), frames);
        assert_eq!(tail(&outs), 0, "{outs:?}");
        let s = *jb.stats();
        check_identities(&s);
        assert_eq!(s.inserted, 0, "a clean path needs no insertion: {s:?}");
        assert_eq!(s.pending_concealed, 0, "{s:?}");
        s
    }

    #[test]
    fn the_last_run_stays_pending_until_the_next_packet_tells() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // 20 frames, then nothing: 50 pops (one buffering, 20 played, frames 20..49 missing),
        // and the stream may have ended.
        run(&mut jb, t0, sender(t0, 20, |_| Sent::Yes), ms(10), 50);
        let s = *jb.stats();
        check_identities(&s);
        assert_eq!(conceal_counts(&s), (29, 0, 20, 0), "{s:?}");
        assert_eq!(s.pending_concealed, 20, "{s:?}");
        // It had not: the next packet, for frame 49, continues the sequence numbers.
        let next = packet(SSRC, 1020, 49 * RTP_TICKS_PER_FRAME, t0 + ms(49 * 20 + 5));
        run(&mut jb, t0 + FRAME_DURATION * 50, vec![next], ms(10), 1);
        let s = *jb.stats();
        check_identities(&s);
        assert_eq!(conceal_counts(&s), (29, 29, 20, 20), "{s:?}");
        assert_eq!((s.played, s.pending_concealed), (21, 0), "{s:?}");
    }

    /// `(lost, sender_paused, concealed, paused_concealed)`.
    fn conceal_counts(s: &JitterStats) -> (u64, u64, u64, u64) {
        (s.lost, s.sender_paused, s.concealed, s.paused_concealed)
    }

    #[test]
    fn a_pause_within_the_concealment_limit_is_concealment_without_loss() {
        // 10 frames of pause (the limit is 20): all concealed, all found to be a pause.
        let s = conceal_stats(50, |k| {
            if (20..30).contains(&k) {
                Sent::Paused
            } else {
                Sent::Yes
            }
        });
        assert_eq!(conceal_counts(&s), (10, 10, 10, 10), "{s:?}");
    }

    #[test]
    fn a_pause_beyond_the_concealment_limit_is_concealed_up_to_the_limit() {
        // 30 frames of pause: 20 concealed (the limit), 10 silent; all a pause.
        let s = conceal_stats(80, |k| {
            if (20..50).contains(&k) {
                Sent::Paused
            } else {
                Sent::Yes
            }
        });
        assert_eq!(conceal_counts(&s), (30, 30, 20, 20), "{s:?}");
    }

    #[test]
    fn a_loss_is_concealed_but_not_counted_as_a_pause() {
        let s = conceal_stats(50, |k| {
            if (20..30).contains(&k) {
                Sent::Lost
            } else {
                Sent::Yes
            }
        });
        assert_eq!(conceal_counts(&s), (10, 0, 10, 0), "{s:?}");
    }

    #[test]
    fn pauses_and_losses_are_told_apart_in_one_stream() {
        let s = conceal_stats(150, |k| match k {
            20..25 => Sent::Paused, // 5 concealed, a pause
            40..43 => Sent::Lost,   // 3 concealed, a loss
            60..90 => Sent::Paused, // 20 concealed + 10 silent, a pause
            // A pause whose first packet after it is lost: the sequence gap of one packet
            // makes one frame of the run a loss, the other 4 a pause.
            110..114 => Sent::Paused,
            114 => Sent::Lost,
            // A loss, then a pause, then a loss: 2 lost packets in a run of 5.
            130 => Sent::Lost,
            131..134 => Sent::Paused,
            134 => Sent::Lost,
            _ => Sent::Yes,
        });
        assert_eq!(
            conceal_counts(&s),
            (
                5 + 3 + 30 + 5 + 5,
                5 + 30 + 4 + 3,
                5 + 3 + 20 + 5 + 5,
                5 + 20 + 4 + 3
            ),
            "{s:?}"
        );
        let loss_concealed = s.concealed - s.paused_concealed - s.inserted;
        assert_eq!(loss_concealed, 3 + 1 + 2);
    }

    #[test]
    fn lost_frames_of_a_run_past_the_concealment_limit_are_taken_from_the_concealed_ones() {
        // 25 frames paused, then the first packet after them lost: a run of 26 missing frames
        // (20 concealed, 6 silent), one of them a loss — which one the buffer cannot know, so
        // the concealed part is credited conservatively: 19 of the 20.
        let s = conceal_stats(80, |k| match k {
            20..45 => Sent::Paused,
            45 => Sent::Lost,
            _ => Sent::Yes,
        });
        assert_eq!(conceal_counts(&s), (26, 25, 20, 19), "{s:?}");
    }

    fn check_identities(s: &JitterStats) {
        assert_eq!(
            s.received,
            s.accepted + s.duplicate + s.late + s.overflow + s.stray,
            "{s:?}"
        );
        assert_eq!(s.pops, s.played + s.concealed + s.silence, "{s:?}");
    }

    #[test]
    fn clean_path_plays_everything_in_order_at_20_to_40_ms() {
        for phase in [0, 3, 7, 13, 19] {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(JitterConfig::default());
            let sends = stream(t0, 100, 5000, 0..100, ms(30));
            let (outs, _) = run(&mut jb, t0, sends, ms(phase), 110);
            let first = outs.iter().position(|o| *o != Out::Silence).unwrap();
            assert_eq!(
                played(&outs),
                (100..200).collect::<Vec<u16>>(),
                "phase {phase}"
            );
            assert!(
                outs[first..first + 100]
                    .iter()
                    .all(|o| matches!(o, Out::Play(_)))
            );
            let s = jb.stats();
            assert_eq!(s.target_delay, ms(20));
            assert_eq!((s.lost - tail(&outs), s.inserted, s.dropped), (0, 0, 0));
            check_identities(s);
            // Delay while playing (sampled before the stream ran dry).
            let mut jb = JitterBuffer::new(JitterConfig::default());
            let (_, _) = run(
                &mut jb,
                t0,
                stream(t0, 100, 5000, 0..100, ms(30)),
                ms(phase),
                60,
            );
            let d = jb.stats().current_delay;
            assert!(d >= ms(20) && d < ms(40), "phase {phase}: {d:?}");
        }
    }

    #[test]
    fn reordered_and_duplicated_packets_play_once_in_order() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut sends = stream(t0, 0, 0, 0..50, ms(10));
        // Swap arrival of 10 and 11 (11 overtakes), duplicate 20 shortly after itself.
        let (a, b) = (sends[10].arrival, sends[11].arrival);
        sends[10].arrival = b + ms(1);
        sends[11].arrival = a;
        let mut dup = sends[20];
        dup.arrival += ms(5);
        sends.push(dup);
        let mut dup_played = sends[5];
        dup_played.arrival += ms(200);
        sends.push(dup_played);
        let (outs, outcomes) = run(&mut jb, t0, sends, ms(0), 60);
        assert_eq!(played(&outs), (0..50).collect::<Vec<u16>>());
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == PushOutcome::Duplicate)
                .count(),
            2
        );
        assert_eq!(jb.stats().duplicate, 2);
        check_identities(jb.stats());
    }

    #[test]
    fn lost_packet_is_concealed_with_fec_from_the_next_and_late_one_is_counted() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut sends = stream(t0, 0, 0, 0..40, ms(10));
        sends[15].arrival += ms(500); // arrives long after its slot
        let (outs, outcomes) = run(&mut jb, t0, sends, ms(5), 50);
        let i = outs.iter().position(|o| *o == Out::Play(14)).unwrap();
        assert_eq!(outs[i + 1], Out::Conceal(Some(16)));
        assert_eq!(outs[i + 2], Out::Play(16));
        assert!(outcomes.contains(&PushOutcome::Late));
        let s = jb.stats();
        assert_eq!((s.late, s.lost - tail(&outs), s.fec_recovered), (1, 1, 1));
        check_identities(s);
    }

    #[test]
    fn sequence_and_timestamp_wrap_around() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let ts0 = u32::MAX - 5 * RTP_TICKS_PER_FRAME + 1;
        let sends = stream(t0, 65_530, ts0, 0..20, ms(10));
        let (outs, _) = run(&mut jb, t0, sends, ms(0), 25);
        let want: Vec<u16> = (0..20u16).map(|k| 65_530u16.wrapping_add(k)).collect();
        assert_eq!(played(&outs), want);
        let s = jb.stats();
        assert_eq!(
            (s.seq_jumps, s.resyncs, s.lost - tail(&outs), s.stray),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn long_outage_conceals_to_the_limit_then_silence_then_recovers() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // 1 s outage: frames 50..100 never arrive.
        let sends: Vec<_> = stream(t0, 0, 0, 0..200, ms(10))
            .into_iter()
            .filter(|p| !(50..100).contains(&p.meta.seq))
            .collect();
        let (outs, _) = run(&mut jb, t0, sends, ms(0), 210);
        let i = outs.iter().position(|o| *o == Out::Play(49)).unwrap();
        let limit = 20; // 400 ms
        assert!(
            outs[i + 1..=i + limit]
                .iter()
                .all(|o| matches!(o, Out::Conceal(_)))
        );
        assert!(
            outs[i + limit + 1..=i + 50]
                .iter()
                .all(|o| *o == Out::Silence)
        );
        assert_eq!(outs[i + 51], Out::Play(100));
        assert_eq!(played(&outs), (0..50).chain(100..200).collect::<Vec<u16>>());
        let s = jb.stats();
        assert_eq!(s.lost - tail(&outs), 50);
        assert_eq!(s.resyncs, 0);
        check_identities(s);
    }

    #[test]
    fn jitter_raises_the_target_and_quiet_packets_absorb_the_change() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Every 4th packet arrives 70 ms late, the rest on time; all quiet (so adjustments
        // happen at once).
        let mut sends = stream(t0, 0, 0, 0..400, ms(10));
        for (k, p) in sends.iter_mut().enumerate() {
            if k % 4 == 0 {
                p.arrival += ms(70);
            }
            p.meta.audio_level = Some(AudioLevel {
                level: 127,
                voice: false,
            });
        }
        let (outs, _) = run(&mut jb, t0, sends, ms(0), 420);
        let s = jb.stats();
        assert!(
            s.target_delay >= ms(80) && s.target_delay <= ms(400),
            "{s:?}"
        );
        assert!(s.inserted > 0);
        // Once adapted, nothing is late any more: the last 200 frames all play.
        let p = played(&outs);
        assert!(p.ends_with(&(200..400).collect::<Vec<u16>>()), "{p:?}");
        check_identities(s);
    }

    #[test]
    fn delay_shrinks_back_by_dropping_once_the_jitter_is_forgotten() {
        for quiet in [true, false] {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(JitterConfig::default());
            let n = 8_000;
            let mut sends = stream(t0, 0, 0, 0..n, ms(10));
            for (k, p) in sends.iter_mut().enumerate() {
                if k < 500 && k % 4 == 0 {
                    p.arrival += ms(70);
                }
                p.meta.audio_level = quiet.then_some(AudioLevel {
                    level: 127,
                    voice: false,
                });
            }
            let (outs, _) = run(&mut jb, t0, sends, ms(0), n - 10);
            let s = *jb.stats();
            assert_eq!(s.target_delay, ms(20), "quiet {quiet}: {s:?}");
            assert!(
                s.current_delay >= ms(18) && s.current_delay < ms(42),
                "{s:?}"
            );
            assert!(s.dropped >= 3, "{s:?}");
            // Nothing played twice or out of order, and after the jitter nothing is lost.
            let p = played(&outs);
            assert!(p.windows(2).all(|w| w[0] < w[1]));
            assert!(!outs[600..].iter().any(|o| matches!(o, Out::Conceal(_))));
            check_identities(&s);
        }
    }

    #[test]
    fn reset_returns_to_idle_with_cleared_counters() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let (_, _) = run(&mut jb, t0, stream(t0, 0, 0, 0..20, ms(10)), ms(0), 10);
        assert!(jb.buffered() > 0);
        jb.reset();
        assert_eq!(jb.buffered(), 0);
        assert_eq!(*jb.stats(), JitterStats::default());
        assert!(matches!(jb.pop(t0 + ms(500)), Playout::Silence));
        let p = packet(7, 9, 9, t0 + ms(600));
        assert_eq!(jb.push(t0 + ms(600), &p), PushOutcome::Accepted);
    }

    #[test]
    fn config_is_normalized() {
        let c = JitterConfig {
            capacity: 0,
            max_delay: ms(10_000),
            min_delay: ms(20_000),
            ..JitterConfig::default()
        }
        .normalized();
        assert_eq!(c.capacity, 4);
        assert_eq!(c.max_delay, ms(60));
        assert_eq!(c.min_delay, ms(60));
    }

    #[test]
    fn large_packets_play_byte_for_byte_and_beyond_the_spill_slots_are_counted() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let large = |seq: u16| {
            let mut p = packet(7, seq, u32::from(seq) * RTP_TICKS_PER_FRAME, t0);
            let mut bytes = vec![0xfc; 1000];
            bytes[..2].copy_from_slice(&seq.to_be_bytes());
            p.payload = OpusPacket::from_slice(&bytes).unwrap();
            p
        };
        // A burst of 12 large packets at once: 8 spill slots, so 4 are refused (counted).
        let outcomes: Vec<PushOutcome> = (0..12).map(|s| jb.push(t0, &large(s))).collect();
        assert!(outcomes[..8].iter().all(|o| *o == PushOutcome::Accepted));
        assert!(outcomes[8..].iter().all(|o| *o == PushOutcome::Overflow));
        let s = *jb.stats();
        assert_eq!((s.accepted, s.overflow, s.oversize), (8, 4, 4));
        check_identities(&s);
        // A normal-sized packet still fits while the spill slots are full.
        assert_eq!(
            jb.push(t0, &packet(7, 12, 12 * 960, t0)),
            PushOutcome::Accepted
        );
        let mut played = Vec::new();
        for tick in 0..40u32 {
            if let Playout::Packet(p) = jb.pop(t0 + FRAME_DURATION * tick) {
                played.push((seq_of(&p.payload), p.payload.len()));
            }
        }
        // (The burst is excess delay, so some are dropped to shrink it: counted in `dropped`.)
        assert!(played.len() >= 4 && played.contains(&(12, 3)), "{played:?}");
        let s = *jb.stats();
        assert_eq!(s.played + s.dropped, 9, "{s:?}");
        assert!(
            played
                .iter()
                .all(|&(seq, len)| len == if seq < 8 { 1000 } else { 3 })
        );
        // Played packets gave their spill slots back: a new burst fits again.
        let accepted = (20..28)
            .map(|s| jb.push(t0 + FRAME_DURATION * 40, &large(s)))
            .filter(|o| matches!(o, PushOutcome::Accepted | PushOutcome::Resync))
            .count();
        assert_eq!((accepted, jb.stats().oversize), (8, 4), "{:?}", jb.stats());
    }
}
