//! The room: the unit of mixing, ticked once per 20 ms by its shard.
//!
//! Each [`Room::tick`]:
//! 1. **Inputs.** Every source produces this tick's frame: call legs drain their input queue
//!    into their jitter buffer and decode one playout (or use FEC, conceal, or play silence;
//!    RFC 6464-silent packets are not decoded); prompt players step their cursor; application
//!    endpoints take one PCM frame; echo members play what their source gave them a fixed
//!    delay ago.
//! 2. **Speakers.** At most K active sources are selected ([`SpeakerSelector`], sticky with
//!    hysteresis; a playing prompt has priority).
//! 3. **Mix.** The selected frames are summed once ([`Mixer`]).
//! 4. **Outputs.**
//!    - When the only source is a prompt, every call leg gets the prompt's **pre-encoded**
//!      packet unchanged: no encode at all.
//!    - Otherwise each speaking call leg gets the mix **minus its own voice**, limited and
//!      encoded by its own encoder (nothing when it is the only speaker), and every other call
//!      leg gets the **one shared** limited mix, encoded **once** per tick by the room's shared
//!      encoder (the Asterisk `bridge_softmix` trick: cost grows with speakers, not
//!      listeners). With [`RoomConfig::shared_encode`] off, each listener encodes the mix
//!      itself (what Janus does), for comparison.
//!    - When nobody speaks, call legs are sent nothing (their RTP timestamps still advance).
//!    - Application endpoints get the PCM mix (minus their own voice when they speak; silence
//!      when nobody does), every tick.
//!    - Recorder taps emit one event per recorded stream.
//! 5. **Echoes.** Each echo member's delay line takes its source's input frame of this tick.
//!
//! A tick is two halves: [`Room::gather`] (step 1) and [`Room::mix`] (steps 2–5);
//! [`Room::tick`] runs both. A shard gathers every room before it mixes any, so the last
//! room's decoded frames do not wait for the other rooms' encodes. Members are added and
//! removed only between ticks (after `mix`, before the next `gather`).
//!
//! Members live in a fixed array of `max_members` slots reserved at construction and are
//! found by a linear scan of their ids — no hashing, no allocation.
//!
//! # Realtime Safety
//! [`Room::new`] allocates everything (slots, selector, mixer frames, the shared encoder).
//! [`Room::add_member`], [`Room::remove_member`], [`Room::tick`], [`Room::gather`] and
//! [`Room::mix`] never allocate, lock or
//! block; members come in boxed and leave boxed, so their memory is allocated and freed off the
//! shard.

use std::time::Instant;

use crate::media::codec::{CodecBackend, CodecError, EncoderConfig, OpusEncoder};
use crate::media::frame::AudioFrame;
use crate::media::member::{Member, MemberKind};
use crate::media::mixer::Mixer;
use crate::media::packet::OpusPacket;
use crate::media::speaker::{Activity, SpeakerSelector};

/// Identifies a room within its process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u64);

/// Identifies a member within its room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub u64);

/// Room settings, fixed at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomConfig {
    /// Largest number of members (slots are reserved up front).
    pub max_members: usize,
    /// K: most speakers mixed at once (default 3).
    pub max_speakers: usize,
    /// Settings of the shared encoder (call legs' own encoders should use the same).
    pub encoder: EncoderConfig,
    /// Codec implementation of the shared encoder.
    pub backend: CodecBackend,
    /// Encode the listeners' mix once and share it (default). `false` makes every listener
    /// encode it separately, as Janus does, and builds no shared encoder (≈ 200 KiB less
    /// per room with the pure-Rust codec): right for a room with at most one call leg,
    /// where there is nobody to share with — each app-hosted call's room, for instance.
    pub shared_encode: bool,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            max_members: 16,
            max_speakers: 3,
            encoder: EncoderConfig::default(),
            backend: CodecBackend::default(),
            shared_encode: true,
        }
    }
}

/// Why a room could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// A setting out of range (named).
    #[error("invalid room setting: {0}")]
    InvalidConfig(&'static str),
    /// The shared encoder could not be built.
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
}

/// Room counters: plain integers, updated every tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomStats {
    /// Ticks run.
    pub ticks: u64,
    /// Members now in the room.
    pub members: usize,
    /// Speakers mixed in the last tick.
    pub speakers: usize,
    /// Members added.
    pub added: u64,
    /// Members removed.
    pub removed: u64,
    /// Members refused by [`Room::add_member`] (room full or duplicate id).
    pub refused: u64,
    /// Opus packets decoded (all legs).
    pub decodes: u64,
    /// Packets not decoded because RFC 6464 said the sender was silent.
    pub skipped_decodes: u64,
    /// Frames concealed or rebuilt from FEC.
    pub concealments: u64,
    /// Packets the decoders rejected.
    pub decode_errors: u64,
    /// All Opus encodes (shared + personal).
    pub encodes: u64,
    /// Encodes of the shared listener mix (at most one per tick).
    pub shared_encodes: u64,
    /// Encodes of a personal stream (a speaker's mix-minus, or a listener in naive mode).
    pub personal_encodes: u64,
    /// Encoder failures.
    pub encode_errors: u64,
    /// Ticks in which the prompt played alone and its pre-encoded packets were sent.
    pub passthrough_ticks: u64,
    /// RTP packets pushed to call legs' output queues.
    pub packets_sent: u64,
    /// Packets or frames dropped on full output queues (legs, endpoints, recorders).
    pub output_dropped: u64,
}

/// A room of members mixed together every tick.
#[derive(Debug)]
pub struct Room {
    id: RoomId,
    config: RoomConfig,
    slots: Vec<Option<Box<Member>>>,
    activity: Vec<Activity>,
    selector: SpeakerSelector,
    mixer: Mixer,
    /// `None` when `shared_encode` is off.
    shared_encoder: Option<OpusEncoder>,
    shared_packet: OpusPacket,
    full_mix: AudioFrame,
    personal_mix: AudioFrame,
    stats: RoomStats,
}

impl Room {
    /// Builds a room, reserving every slot and the shared encoder (off-shard).
    ///
    /// # Errors
    /// [`RoomError::InvalidConfig`] for `max_members` 0 or above [`MAX_ROOM_MEMBERS`], or
    /// `max_speakers` 0 (above `max_members` it is capped); [`RoomError::Codec`] if the
    /// encoder refuses.
    pub fn new(id: RoomId, config: RoomConfig) -> Result<Self, RoomError> {
        if config.max_members == 0 || config.max_members > MAX_ROOM_MEMBERS {
            return Err(RoomError::InvalidConfig("max_members outside 1..=4096"));
        }
        if config.max_speakers == 0 {
            return Err(RoomError::InvalidConfig("max_speakers is 0"));
        }
        Ok(Self {
            id,
            config,
            slots: (0..config.max_members).map(|_| None).collect(),
            activity: vec![Activity::IDLE; config.max_members],
            // More speakers than members is harmless: K is capped at the room size.
            selector: SpeakerSelector::new(
                config.max_members,
                config.max_speakers.min(config.max_members),
            ),
            mixer: Mixer::new(),
            shared_encoder: if config.shared_encode {
                Some(OpusEncoder::new(config.backend, &config.encoder)?)
            } else {
                None
            },
            shared_packet: OpusPacket::EMPTY,
            full_mix: AudioFrame::silence(),
            personal_mix: AudioFrame::silence(),
            stats: RoomStats::default(),
        })
    }

    /// Adds a member into a free slot. Refused (and handed back) when the room is full or a
    /// member with the same id is present. Never allocates.
    pub fn add_member(&mut self, member: Box<Member>) -> Result<(), Box<Member>> {
        if self.find(member.id()).is_some() {
            self.stats.refused += 1;
            return Err(member);
        }
        let Some(slot) = self.slots.iter().position(Option::is_none) else {
            self.stats.refused += 1;
            return Err(member);
        };
        self.activity[slot] = Activity::IDLE;
        self.slots[slot] = Some(member);
        self.stats.members += 1;
        self.stats.added += 1;
        Ok(())
    }

    /// Removes a member, handing it back so it is dropped off the shard. Its unread input
    /// stays in its queue and leaves with it; the room's selection forgets it. (Taking
    /// `&mut self`, it can only run between ticks: a shard applies control between ticks.)
    pub fn remove_member(&mut self, id: MemberId) -> Option<Box<Member>> {
        let slot = self.find(id)?;
        let member = self.slots[slot].take()?;
        self.selector.forget(slot);
        self.activity[slot] = Activity::IDLE;
        self.stats.members -= 1;
        self.stats.removed += 1;
        Some(member)
    }

    /// The member with `id`, if present.
    pub fn member(&self, id: MemberId) -> Option<&Member> {
        self.find(id).and_then(|slot| self.slots[slot].as_deref())
    }

    /// Mutable access to the member with `id`, if present.
    pub fn member_mut(&mut self, id: MemberId) -> Option<&mut Member> {
        let slot = self.find(id)?;
        self.slots[slot].as_deref_mut()
    }

    /// The members, in slot order.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.slots.iter().filter_map(|m| m.as_deref())
    }

    /// Runs one 20 ms tick for every member: [`Room::gather`] then [`Room::mix`].
    pub fn tick(&mut self, now: Instant) {
        self.gather(now);
        self.mix(now);
    }

    /// First half of a tick: every member's input for this tick (call legs pull their jitter
    /// buffer and decode, apps, echoes and prompts take their frame). A shard gathers all its
    /// rooms before it mixes any, so every room's decoded frames are ready early in the tick.
    /// Call [`Room::mix`] before the next `gather`: the pair is one tick.
    pub fn gather(&mut self, now: Instant) {
        self.stats.ticks += 1;
        self.gather_inputs(now);
    }

    /// Second half of a tick, after [`Room::gather`]: selects the speakers, mixes, encodes and
    /// queues every member's output (stamped `now`), runs the recorder taps and feeds the echoes.
    pub fn mix(&mut self, now: Instant) {
        self.selector.update(&self.activity);
        self.stats.speakers = self.selector.selected().len();
        let passthrough = self.mix_speakers();
        self.send_outputs(now, passthrough);
        self.run_recorders();
        self.feed_echoes();
    }

    /// The room's id.
    pub fn id(&self) -> RoomId {
        self.id
    }

    /// True when the room has no members: its shard need not tick it.
    pub fn is_idle(&self) -> bool {
        self.stats.members == 0
    }

    /// The room's counters.
    pub fn stats(&self) -> &RoomStats {
        &self.stats
    }

    /// The room's settings.
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// This tick's speakers, as member ids in stable selection order (written into `out`,
    /// which should hold at least `max_speakers`; returns how many were written).
    pub fn speakers(&self, out: &mut [MemberId]) -> usize {
        let mut n = 0;
        for (&slot, o) in self.selector.selected().iter().zip(out.iter_mut()) {
            if let Some(m) = &self.slots[slot] {
                *o = m.id();
                n += 1;
            }
        }
        n
    }

    fn find(&self, id: MemberId) -> Option<usize> {
        self.slots
            .iter()
            .position(|m| m.as_ref().is_some_and(|m| m.id() == id))
    }

    fn gather_inputs(&mut self, now: Instant) {
        for (slot, activity) in self.slots.iter_mut().zip(self.activity.iter_mut()) {
            *activity = match slot {
                Some(member) => {
                    let before = leg_decode_counts(member);
                    let a = member.gather(now);
                    let after = leg_decode_counts(member);
                    self.stats.decodes += after.0 - before.0;
                    self.stats.skipped_decodes += after.1 - before.1;
                    self.stats.concealments += after.2 - before.2;
                    self.stats.decode_errors += after.3 - before.3;
                    a
                }
                None => Activity::IDLE,
            };
        }
    }

    /// Sums the speakers; returns whether the prompt plays alone (passthrough), in which case
    /// `shared_packet` holds its pre-encoded packet.
    fn mix_speakers(&mut self) -> bool {
        self.mixer.clear();
        for &slot in self.selector.selected() {
            if let Some(m) = self.slots[slot].as_deref_mut() {
                self.mixer.add(&m.frame);
                m.count_speaker_tick();
            }
        }
        self.mixer.full_into(&mut self.full_mix);
        if let [only] = self.selector.selected()
            && let Some(m) = self.slots[*only].as_deref()
            && let MemberKind::Prompt(player) = m.kind()
            && let Some(packet) = player.packet()
        {
            self.shared_packet = *packet;
            self.stats.passthrough_ticks += 1;
            return true;
        }
        false
    }

    fn send_outputs(&mut self, now: Instant, passthrough: bool) {
        let anyone = self.mixer.inputs() > 0;
        // Whether the shared packet has been produced this tick (or failed: then do not retry).
        let mut shared_done = passthrough;
        let mut shared_ok = passthrough;
        for (slot, entry) in self.slots.iter_mut().enumerate() {
            let Some(member) = entry.as_deref_mut() else {
                continue;
            };
            let speaking = self.selector.is_selected(slot);
            let (own, kind) = member.parts_mut();
            match kind {
                MemberKind::CallLeg(leg) => {
                    let before = *leg.counters();
                    if !anyone {
                        // Nobody speaks: send nothing this tick.
                    } else if speaking {
                        if self.mixer.inputs() > 1 {
                            self.mixer.minus_into(own, &mut self.personal_mix);
                            leg.encode_and_send(&self.personal_mix, now);
                            self.stats.personal_encodes += 1;
                        }
                    } else if passthrough {
                        leg.send(&self.shared_packet, now);
                    } else if let Some(shared) = self.shared_encoder.as_mut() {
                        if !shared_done {
                            shared_done = true;
                            self.stats.shared_encodes += 1;
                            self.stats.encodes += 1;
                            match shared.encode(&self.full_mix, &mut self.shared_packet) {
                                Ok(()) => shared_ok = true,
                                Err(_) => self.stats.encode_errors += 1,
                            }
                        }
                        if shared_ok {
                            leg.send(&self.shared_packet, now);
                        }
                    } else {
                        leg.encode_and_send(&self.full_mix, now);
                        self.stats.personal_encodes += 1;
                    }
                    leg.end_tick();
                    let after = leg.counters();
                    self.stats.encodes += after.encodes - before.encodes;
                    self.stats.encode_errors += after.encode_errors - before.encode_errors;
                    self.stats.packets_sent += after.sent - before.sent;
                    self.stats.output_dropped += after.output_dropped - before.output_dropped;
                }
                MemberKind::App(app) => {
                    let dropped = app.counters().output_dropped;
                    if speaking {
                        self.mixer.minus_into(own, &mut self.personal_mix);
                        app.deliver(&self.personal_mix);
                    } else {
                        app.deliver(&self.full_mix);
                    }
                    self.stats.output_dropped += app.counters().output_dropped - dropped;
                }
                MemberKind::Prompt(_) | MemberKind::Recorder(_) | MemberKind::Echo(_) => {}
            }
        }
    }

    /// Calls `f` with each member whose kind is `wanted`, taken out of its slot for the call
    /// so that `f` can read the other members beside it (a `Box` moves: no allocation).
    fn with_each_taken(
        &mut self,
        wanted: fn(&MemberKind) -> bool,
        mut f: impl FnMut(&mut Self, &mut MemberKind),
    ) {
        for slot in 0..self.slots.len() {
            if !self.slots[slot]
                .as_deref()
                .is_some_and(|m| wanted(m.kind()))
            {
                continue;
            }
            let Some(mut member) = self.slots[slot].take() else {
                continue;
            };
            f(self, member.kind_mut());
            self.slots[slot] = Some(member);
        }
    }

    fn run_recorders(&mut self) {
        let recorder = |k: &MemberKind| matches!(k, MemberKind::Recorder(_));
        self.with_each_taken(recorder, |room, kind| {
            let MemberKind::Recorder(tap) = kind else {
                return;
            };
            let dropped = tap.counters().dropped;
            for i in 0..tap.legs().len() {
                let leg_id = tap.legs()[i];
                let what = room
                    .find(leg_id)
                    .and_then(|s| room.slots[s].as_deref())
                    .and_then(|m| match m.kind() {
                        MemberKind::CallLeg(leg) => {
                            let (meta, payload) = leg.played_packet();
                            Some((leg.mark(), meta, payload))
                        }
                        _ => None,
                    });
                tap.record_leg(leg_id, what);
            }
            tap.record_mix(&room.full_mix);
            tap.end_tick();
            room.stats.output_dropped += tap.counters().dropped - dropped;
        });
    }

    /// Pushes each echo source's frame of this tick into its echo's delay line.
    fn feed_echoes(&mut self) {
        let echo = |k: &MemberKind| matches!(k, MemberKind::Echo(_));
        self.with_each_taken(echo, |room, kind| {
            let MemberKind::Echo(echo) = kind else {
                return;
            };
            let source = room
                .find(echo.source())
                .and_then(|s| room.slots[s].as_deref())
                .map(Member::frame);
            echo.hear(source);
        });
    }
}

/// (decodes, skipped, concealments incl. FEC, decode errors) of a call leg; zeros otherwise.
fn leg_decode_counts(member: &Member) -> (u64, u64, u64, u64) {
    match member.kind() {
        MemberKind::CallLeg(leg) => {
            let c = leg.counters();
            (
                c.decodes,
                c.skipped_decodes,
                c.concealments + c.fec_decodes,
                c.decode_errors,
            )
        }
        _ => (0, 0, 0, 0),
    }
}

/// Largest `max_members` a room accepts.
pub const MAX_ROOM_MEMBERS: usize = 4096;
