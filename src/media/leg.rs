//! A call leg: one remote participant's RTP in and out of a room.
//!
//! Inbound, the transport pushes received [`RtpPacket`]s into an SPSC queue; every tick the
//! room drains it into the leg's [`JitterBuffer`], pops one playout and turns it into this
//! tick's frame: decode, in-band FEC, concealment or silence. When the packet carries an
//! RFC 6464 level that says the sender is silent (and the leg is not in its hangover), the
//! packet is **not decoded at all**.
//!
//! Outbound, the room hands the leg an encoded packet (its own mix-minus, the shared mix, or a
//! pre-encoded prompt packet) and the leg stamps it with its own RTP header: its SSRC, a
//! sequence number that grows by one per packet sent, a timestamp that grows by 960 per tick
//! whether or not anything was sent (RFC 3550 §5.1: media time, not packet count), and the
//! marker bit on the first packet after a tick without one (RFC 3551 §4.1: talk-spurt start).
//! The packet goes to a second SPSC queue that the transport drains; a full queue drops the
//! packet and counts it.
//!
//! [`LegPort`] is the transport's side of both queues.
//!
//! # Realtime Safety
//! [`CallLeg::new`] and [`LegPort::new`] allocate (queues, jitter slots, codec state): build
//! them off the shard. Every other method is allocation-free, lock-free and non-blocking.

use std::time::Instant;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::media::codec::{CodecBackend, CodecError, EncoderConfig, OpusDecoder, OpusEncoder};
use crate::media::frame::{AudioFrame, RTP_TICKS_PER_FRAME};
use crate::media::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::media::packet::{OpusPacket, RtpMeta, RtpPacket};
use crate::media::speaker::VoiceDetector;

/// Settings of one call leg.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CallLegConfig {
    /// SSRC of the packets the room sends to this leg.
    pub ssrc: u32,
    /// First outbound sequence number (pick it at random, RFC 3550 §5.1).
    pub initial_seq: u16,
    /// First outbound timestamp (pick it at random, RFC 3550 §5.1).
    pub initial_timestamp: u32,
    /// Jitter-buffer settings.
    pub jitter: JitterConfig,
    /// Settings of the leg's own encoder (use the room's, so all packets match).
    pub encoder: EncoderConfig,
    /// Codec implementation.
    pub backend: CodecBackend,
}

impl Default for CallLegConfig {
    fn default() -> Self {
        Self {
            ssrc: 0x6d62_0001,
            initial_seq: 0,
            initial_timestamp: 0,
            jitter: JitterConfig::default(),
            encoder: EncoderConfig::default(),
            backend: CodecBackend::default(),
        }
    }
}

/// What a leg's jitter buffer gave for this tick (also what a recorder writes down).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlayoutMark {
    /// A packet was played (see [`CallLeg::played_packet`]); it may have been decoded or,
    /// when RFC 6464 said it was silent, skipped.
    Packet,
    /// A missing packet decoded from the next packet (its in-band FEC, else PLC).
    Fec,
    /// A missing packet concealed (PLC).
    Concealed,
    /// Nothing to play: silence.
    #[default]
    Silence,
}

/// Transport-side ends of a leg's queues.
#[derive(Debug)]
pub struct LegPort {
    to_room: Producer<RtpPacket>,
    from_room: Consumer<RtpPacket>,
    dropped: u64,
}

impl LegPort {
    /// Makes both queues: returns the transport's port plus the room side's consumer (input)
    /// and producer (output) for [`CallLeg::new`]. Allocates.
    pub fn new(capacity: usize) -> (Self, Consumer<RtpPacket>, Producer<RtpPacket>) {
        let (to_room, input) = RingBuffer::new(capacity);
        let (output, from_room) = RingBuffer::new(capacity);
        (
            Self {
                to_room,
                from_room,
                dropped: 0,
            },
            input,
            output,
        )
    }

    /// Hands a received packet to the room; `false` (and a counted drop) when the queue is
    /// full.
    pub fn push(&mut self, packet: RtpPacket) -> bool {
        if self.to_room.push(packet).is_ok() {
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// Takes the next packet the room sent, if any.
    pub fn pop(&mut self) -> Option<RtpPacket> {
        self.from_room.pop().ok()
    }

    /// Packets refused because the room's input queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Per-leg counters (plain integers, read off-shard after the room is retired or from the
/// room's stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegCounters {
    /// Packets taken from the input queue into the jitter buffer.
    pub received: u64,
    /// Packets decoded.
    pub decodes: u64,
    /// Packets not decoded because RFC 6464 said the sender was silent.
    pub skipped_decodes: u64,
    /// Missing frames decoded with `decode_fec` from the next packet (its in-band FEC when it
    /// carries some; the decoder falls back to PLC when it does not).
    pub fec_decodes: u64,
    /// Frames concealed (PLC), including after a failed decode.
    pub concealments: u64,
    /// Packets the decoder rejected (malformed, wrong duration).
    pub decode_errors: u64,
    /// Ticks with nothing to play.
    pub silent_ticks: u64,
    /// Packets encoded with the leg's own encoder (mix-minus, or naive mode).
    pub encodes: u64,
    /// Encoder failures.
    pub encode_errors: u64,
    /// Packets pushed to the output queue.
    pub sent: u64,
    /// Packets dropped because the output queue was full.
    pub output_dropped: u64,
}

/// One remote participant: jitter buffer, decoder, own encoder, outbound RTP state.
#[derive(Debug)]
pub struct CallLeg {
    input: Consumer<RtpPacket>,
    jitter: JitterBuffer,
    decoder: OpusDecoder,
    encoder: OpusEncoder,
    encoded: OpusPacket,
    sender: RtpSender,
    mark: PlayoutMark,
    played_meta: RtpMeta,
    played_payload: OpusPacket,
    counters: LegCounters,
}

impl CallLeg {
    /// Builds a leg around the room-side queue ends (off-shard: allocates codec state).
    ///
    /// # Errors
    /// A [`CodecError`] if the encoder or decoder cannot be built.
    pub fn new(
        config: &CallLegConfig,
        input: Consumer<RtpPacket>,
        output: Producer<RtpPacket>,
    ) -> Result<Self, CodecError> {
        Ok(Self {
            input,
            jitter: JitterBuffer::new(config.jitter),
            decoder: OpusDecoder::new(config.backend)?,
            encoder: OpusEncoder::new(config.backend, &config.encoder)?,
            encoded: OpusPacket::EMPTY,
            sender: RtpSender {
                output,
                ssrc: config.ssrc,
                next_seq: config.initial_seq,
                timestamp: config.initial_timestamp,
                sent_last_tick: false,
                sent_this_tick: false,
            },
            mark: PlayoutMark::Silence,
            played_meta: RtpMeta::default(),
            played_payload: OpusPacket::EMPTY,
            counters: LegCounters::default(),
        })
    }

    /// Input phase of a tick: drains the input queue into the jitter buffer, pops one playout
    /// and fills `frame`. Returns whether the input is active (via `vad`).
    pub(crate) fn receive(
        &mut self,
        now: Instant,
        vad: &mut VoiceDetector,
        frame: &mut AudioFrame,
    ) -> bool {
        while let Ok(packet) = self.input.pop() {
            self.counters.received += 1;
            self.jitter.push(now, &packet);
        }
        self.sender.sent_this_tick = false;
        match self.jitter.pop(now) {
            Playout::Packet(packet) => {
                self.mark = PlayoutMark::Packet;
                self.played_meta = packet.meta;
                self.played_payload = packet.payload;
                if let Some(level) = packet.meta.audio_level {
                    // Silent by its own account and past its hangover: do not decode.
                    if !vad.observe_level(level) {
                        self.counters.skipped_decodes += 1;
                        frame.clear();
                        return false;
                    }
                    self.decode(frame);
                    true
                } else {
                    self.decode(frame);
                    vad.observe_frame(frame)
                }
            }
            Playout::Conceal { fec } => {
                if !vad.is_active() {
                    // A silent sender's gap: nothing audible to conceal.
                    self.mark = PlayoutMark::Concealed;
                    self.counters.concealments += 1;
                    frame.clear();
                    return vad.observe_silence();
                }
                let fec_ok = match fec {
                    Some(next) => self.decoder.decode_fec(next.as_slice(), frame).is_ok(),
                    None => false,
                };
                if fec_ok {
                    self.mark = PlayoutMark::Fec;
                    self.counters.fec_decodes += 1;
                } else {
                    self.mark = PlayoutMark::Concealed;
                    self.conceal(frame);
                }
                vad.observe_frame(frame)
            }
            Playout::Silence => {
                self.mark = PlayoutMark::Silence;
                self.counters.silent_ticks += 1;
                frame.clear();
                vad.observe_silence()
            }
        }
    }

    fn decode(&mut self, frame: &mut AudioFrame) {
        match self.decoder.decode(self.played_payload.as_slice(), frame) {
            Ok(()) => self.counters.decodes += 1,
            Err(_) => {
                self.counters.decode_errors += 1;
                self.conceal(frame);
            }
        }
    }

    fn conceal(&mut self, frame: &mut AudioFrame) {
        self.counters.concealments += 1;
        if self.decoder.conceal(frame).is_err() {
            frame.clear();
        }
    }

    /// Encodes `frame` with the leg's own encoder and sends it.
    pub(crate) fn encode_and_send(&mut self, frame: &AudioFrame, now: Instant) {
        self.counters.encodes += 1;
        match self.encoder.encode(frame, &mut self.encoded) {
            Ok(()) => self.sender.send(&self.encoded, now, &mut self.counters),
            Err(_) => self.counters.encode_errors += 1,
        }
    }

    /// Sends an already-encoded packet with this leg's RTP header (at most one per tick).
    pub(crate) fn send(&mut self, payload: &OpusPacket, now: Instant) {
        self.sender.send(payload, now, &mut self.counters);
    }

    /// Ends the tick: the RTP clock advances one frame whether or not a packet went out.
    pub(crate) fn end_tick(&mut self) {
        self.sender.sent_last_tick = self.sender.sent_this_tick;
        self.sender.timestamp = self.sender.timestamp.wrapping_add(RTP_TICKS_PER_FRAME);
    }

    /// What the jitter buffer gave this tick.
    pub fn mark(&self) -> PlayoutMark {
        self.mark
    }

    /// The packet played this tick (meaningful when [`Self::mark`] is [`PlayoutMark::Packet`]).
    pub fn played_packet(&self) -> (&RtpMeta, &OpusPacket) {
        (&self.played_meta, &self.played_payload)
    }

    /// Whether a packet was sent to this leg in the current tick.
    pub fn sent_this_tick(&self) -> bool {
        self.sender.sent_this_tick
    }

    /// The leg's counters.
    pub fn counters(&self) -> &LegCounters {
        &self.counters
    }

    /// The jitter buffer's counters.
    pub fn jitter_stats(&self) -> &JitterStats {
        self.jitter.stats()
    }

    /// The outbound SSRC.
    pub fn ssrc(&self) -> u32 {
        self.sender.ssrc
    }
}

/// Outbound RTP state of a leg.
#[derive(Debug)]
struct RtpSender {
    output: Producer<RtpPacket>,
    ssrc: u32,
    next_seq: u16,
    timestamp: u32,
    sent_last_tick: bool,
    sent_this_tick: bool,
}

impl RtpSender {
    fn send(&mut self, payload: &OpusPacket, now: Instant, counters: &mut LegCounters) {
        if self.sent_this_tick || payload.is_empty() {
            return;
        }
        let packet = RtpPacket {
            meta: RtpMeta {
                seq: self.next_seq,
                timestamp: self.timestamp,
                ssrc: self.ssrc,
                marker: !self.sent_last_tick,
                audio_level: None,
            },
            payload: *payload,
            arrival: now,
        };
        if self.output.push(packet).is_ok() {
            self.next_seq = self.next_seq.wrapping_add(1);
            counters.sent += 1;
            self.sent_this_tick = true;
        } else {
            // Not sent: the sequence number is not spent, and the next packet gets the marker.
            counters.output_dropped += 1;
        }
    }
}
