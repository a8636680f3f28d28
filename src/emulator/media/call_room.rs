//! One call's media processor: a [`Room`] on the emulator's shard pool mixing the emulated
//! participants with the bot's media, and the pump task that feeds and drains it.
//!
//! ```text
//!  participant A ──speech frames──▶ app endpoint A ─┐                 ┌─▶ heard by A (mix − A)
//!  participant B ──speech frames──▶ app endpoint B ─┼─▶ Room (shard) ─┼─▶ heard by B (mix − B)
//!  bot (WebRTC)  ──Opus RTP──────▶ call leg "bot" ──┘   20 ms tick    └─▶ call leg "bot" ──▶ bot
//!                                                   recorder tap on the bot leg ─▶ playout marks
//! ```
//!
//! Several participants are mixed by the project's own room mixer, as Teams' media processor
//! would mix them, and the bot hears that mix (the shared encode, or its mix-minus when it
//! speaks itself). The bot leg's queues are whatever the caller hands in: the WebRTC
//! offerer's (see [`super::MediaProcessor`]) or, in tests, a loopback.
//!
//! The pump task wakes every [`PUMP_INTERVAL`]: it drains what each participant heard, tops
//! up their input queues ([`super::participant`]), counts the bot leg's playout marks (the
//! recorder tap says, per tick, whether the bot's packet was played, rebuilt from FEC,
//! concealed or silent), and reads the bot leg's jitter-buffer counters, which the shard
//! publishes after every tick ([`BotJitterCounters`]: relaxed atomic stores) so that
//! concealment of the bot's pauses and of delay growth can be told from loss.
//!
//! The shard ticks a [`MixRoom`]: the [`Room`] plus the call's WebRTC [`EgressSignal`], rung
//! after every tick so the packets for the bot are written at once (see
//! [`crate::adapters::webrtc`]'s egress design). Like every room on a shard, it is ticked in
//! two phases: [`Room::gather`] (decode) with the other rooms' gathers, then [`Room::mix`]
//! and the egress ring.
//!
//! # Realtime Safety
//! [`MixRoom`]'s gather and tick are the room's gather and mix, a few relaxed atomic stores
//! and one non-blocking `send(2)`: no allocation, no lock, no await. Everything else here runs off the shard.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::adapters::shard::{ShardPool, ShardRoom};
use crate::adapters::webrtc::EgressSignal;
use crate::media::leg::CallLegConfig;
use crate::media::member::{Member, MemberKind};
use crate::media::packet::RtpPacket;
use crate::media::record_queue::RecordEvents;
use crate::media::recorder::{RecordEntry, RecordEvent, RecorderConfig};
use crate::media::room::{MemberId, Room, RoomConfig, RoomId};

use super::error::MediaProcError;
use super::participant::{ENDPOINT_QUEUE, Participant, ParticipantReport};
use super::speech::{ParticipantMedia, load_wav_48k};

/// How often the pump feeds and drains the room.
pub const PUMP_INTERVAL: Duration = Duration::from_millis(10);
/// Most participants one call's room mixes.
pub const MAX_PARTICIPANTS: usize = 16;
/// Member id of the bot's call leg in every call room.
pub const BOT_MEMBER: MemberId = MemberId(1_000);
const RECORDER_MEMBER: MemberId = MemberId(1_001);

/// The shard pool of the emulator's media processor.
pub type MediaPool = ShardPool<MixRoom>;

/// What the emulator's shards tick: a call's [`Room`] and, when the bot leg is a WebRTC
/// session, the egress signal rung after each tick.
#[derive(Debug)]
pub struct MixRoom {
    room: Room,
    egress: Option<EgressSignal>,
    jitter: Arc<BotJitterCounters>,
}

impl MixRoom {
    /// Wraps `room`; `egress` is rung after every tick. Returns the room and the counters of
    /// its bot leg's jitter buffer (member [`BOT_MEMBER`]), published after every tick.
    pub fn new(room: Room, egress: Option<EgressSignal>) -> (Self, Arc<BotJitterCounters>) {
        let jitter = Arc::new(BotJitterCounters::default());
        (
            Self {
                room,
                egress,
                jitter: Arc::clone(&jitter),
            },
            jitter,
        )
    }

    /// Stores the bot leg's jitter counters (relaxed atomics: no lock, no allocation).
    fn publish(&self) {
        let Some(MemberKind::CallLeg(leg)) = self.room.member(BOT_MEMBER).map(Member::kind) else {
            return;
        };
        let j = leg.jitter_stats();
        let c = &self.jitter;
        c.lost.store(j.lost, Relaxed);
        c.paused.store(j.sender_paused, Relaxed);
        c.paused_concealed.store(j.paused_concealed, Relaxed);
        c.pending_concealed.store(j.pending_concealed, Relaxed);
        c.inserted.store(j.inserted, Relaxed);
    }
}

/// The bot leg's jitter-buffer counters in the emulator's room (bot → emulator direction),
/// stored by the shard after every tick, read by [`CallRoom::report`].
#[derive(Debug, Default)]
pub struct BotJitterCounters {
    lost: AtomicU64,
    paused: AtomicU64,
    paused_concealed: AtomicU64,
    pending_concealed: AtomicU64,
    inserted: AtomicU64,
}

impl BotJitterCounters {
    /// Copies the counters into `bot`'s jitter fields.
    fn read_into(&self, bot: &mut BotPlayout) {
        bot.jitter_lost = self.lost.load(Relaxed);
        bot.jitter_paused = self.paused.load(Relaxed);
        bot.jitter_paused_concealed = self.paused_concealed.load(Relaxed);
        bot.jitter_pending_concealed = self.pending_concealed.load(Relaxed);
        bot.jitter_inserted = self.inserted.load(Relaxed);
    }
}

impl ShardRoom for MixRoom {
    type Id = RoomId;
    type MemberId = MemberId;
    type Member = Member;

    fn id(&self) -> RoomId {
        self.room.id()
    }

    fn gather(&mut self, now: Instant) {
        // `now`: this room's own start of decoding (the shard core hands each room its own).
        self.room.gather(now);
    }

    fn tick(&mut self, now: Instant) {
        // `now`: this room's own start of mixing, its packets' `arrival` stamp, from which the
        // egress measures frame ready → `write_rtp`.
        self.room.mix(now);
        self.publish();
        if let Some(egress) = &self.egress {
            egress.notify();
        }
    }

    fn is_idle(&self) -> bool {
        self.room.is_idle()
    }

    fn add_member(&mut self, member: Box<Member>) -> Result<(), Box<Member>> {
        self.room.add_member(member)
    }

    fn remove_member(&mut self, id: MemberId) -> Option<Box<Member>> {
        self.room.remove_member(id)
    }
}

/// The room's side of the bot's call leg: packets from the bot come in through `input`, the
/// room's packets for the bot go out through `output`.
#[derive(Debug)]
pub struct BotLegQueues {
    /// Received from the bot (filled by the transport).
    pub input: Consumer<RtpPacket>,
    /// To send to the bot (drained by the transport).
    pub output: Producer<RtpPacket>,
    /// SSRC of the packets the room sends to the bot.
    pub ssrc: u32,
}

/// How the bot's packets were played out by the emulator's room (bot → emulator direction),
/// one count per tick, from the recorder tap on the bot leg.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BotPlayout {
    /// Ticks recorded.
    pub ticks: u64,
    /// Ticks that played a received packet.
    pub packets: u64,
    /// Ticks rebuilt from the next packet's in-band FEC.
    pub fec: u64,
    /// Ticks concealed (PLC): a packet was missing.
    pub concealed: u64,
    /// Ticks with nothing to play (before the bot's first packet, or after a long gap).
    pub silent: u64,
    /// Recorder events lost because the pump fell behind.
    pub events_lost: u64,
    /// The bot leg's jitter buffer: frames whose packet was missing at playout time
    /// (concealed or silent), whatever the reason.
    pub jitter_lost: u64,
    /// The frames among `jitter_lost` that were the bot's pause (no sequence gap: the bot
    /// sends nothing while it has nothing to say), not a loss.
    pub jitter_paused: u64,
    /// The frames among `jitter_paused` that were concealed (the others were silence past
    /// the concealment limit): concealment the bot's pauses caused.
    pub jitter_paused_concealed: u64,
    /// The concealed frames since the bot's last packet played, not yet known to be a pause
    /// or a loss (in the final report: the call's last run).
    pub jitter_pending_concealed: u64,
    /// Frames the jitter buffer inserted (concealed) to grow its delay: no loss either.
    pub jitter_inserted: u64,
}

/// What a call's media processor saw so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoomReport {
    /// Per participant, in join order.
    pub participants: Vec<ParticipantReport>,
    /// The bot leg's playout in the room.
    pub bot: BotPlayout,
}

/// Settings of a call room.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRoomConfig {
    /// Longest audio kept per participant, sent and heard each (bounds memory: 48 kHz `f32`
    /// is 188 KiB per second per direction).
    pub keep: Duration,
    /// The room's settings; `max_members` is set from the participant count.
    pub room: RoomConfig,
}

impl Default for CallRoomConfig {
    fn default() -> Self {
        Self {
            keep: Duration::from_secs(60),
            room: RoomConfig::default(),
        }
    }
}

#[derive(Debug)]
struct PumpState {
    participants: Vec<Participant>,
    bot: BotPlayout,
}

/// A call's room, running on a shard, with its pump task. Dropping it stops the pump and
/// removes the room (use [`CallRoom::stop`] to get the final report).
pub struct CallRoom {
    pool: Arc<MediaPool>,
    room: RoomId,
    state: Arc<Mutex<PumpState>>,
    jitter: Arc<BotJitterCounters>,
    stop: Option<oneshot::Sender<()>>,
    pump: Option<JoinHandle<()>>,
    removed: bool,
}

impl std::fmt::Debug for CallRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRoom")
            .field("room", &self.room)
            .finish_non_exhaustive()
    }
}

impl CallRoom {
    /// Builds the room (participants as application endpoints, the bot as a call leg around
    /// `bot`, a recorder tap on the bot leg), loads the speech, primes every participant's
    /// queue, places the room on `pool` (with `egress` rung after each tick) and starts the
    /// pump. With `held`, the participants send silence until [`CallRoom::release`] (e.g.
    /// until the bot's media is connected), so nothing they say is lost and the room already
    /// hears the bot from its first packet. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`MediaProcError::NoParticipants`], [`MediaProcError::TooManyParticipants`],
    /// [`MediaProcError::Speech`], [`MediaProcError::Room`], [`MediaProcError::Member`],
    /// [`MediaProcError::Shard`].
    pub fn start(
        pool: Arc<MediaPool>,
        room_id: RoomId,
        participants: &[ParticipantMedia],
        bot: BotLegQueues,
        config: &CallRoomConfig,
        egress: Option<EgressSignal>,
        held: bool,
    ) -> Result<Self, MediaProcError> {
        if participants.is_empty() {
            return Err(MediaProcError::NoParticipants);
        }
        if participants.len() > MAX_PARTICIPANTS {
            return Err(MediaProcError::TooManyParticipants(participants.len()));
        }
        let room_config = RoomConfig {
            max_members: participants.len() + 2,
            max_speakers: config.room.max_speakers.min(participants.len() + 2),
            ..config.room
        };
        let mut room = Room::new(room_id, room_config)?;
        let keep = (config.keep.as_secs_f64() * 48_000.0) as usize;
        let now = Instant::now();
        let mut parts = Vec::with_capacity(participants.len());
        for (i, media) in participants.iter().enumerate() {
            let speech = load_wav_48k(&media.speech_wav)?;
            let id = MemberId(i as u64 + 1);
            let (member, audio) = Member::app_endpoint(id, ENDPOINT_QUEUE)?;
            let mut p = Participant::new(media, &speech, id, audio, keep);
            p.held = held;
            p.prime(now);
            room.add_member(member)
                .map_err(|_| MediaProcError::TooManyParticipants(participants.len()))?;
            parts.push(p);
        }
        let leg_config = CallLegConfig {
            ssrc: bot.ssrc,
            initial_seq: rand::random(),
            initial_timestamp: rand::random(),
            encoder: room_config.encoder,
            backend: room_config.backend,
            ..CallLegConfig::default()
        };
        let leg = Member::call_leg(BOT_MEMBER, &leg_config, bot.input, bot.output)?;
        room.add_member(leg)
            .map_err(|_| MediaProcError::TooManyParticipants(participants.len()))?;
        let (recorder, events) = Member::recorder(
            RECORDER_MEMBER,
            &RecorderConfig {
                legs: vec![BOT_MEMBER],
                mix: false,
                capacity: 128,
            },
        );
        room.add_member(recorder)
            .map_err(|_| MediaProcError::TooManyParticipants(participants.len()))?;
        let state = Arc::new(Mutex::new(PumpState {
            participants: parts,
            bot: BotPlayout::default(),
        }));
        let (mix_room, jitter) = MixRoom::new(room, egress);
        pool.add_room(mix_room).map_err(|r| r.error)?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let pump = tokio::spawn(pump(Arc::clone(&state), events, stop_rx));
        Ok(Self {
            pool,
            room: room_id,
            state,
            jitter,
            stop: Some(stop_tx),
            pump: Some(pump),
            removed: false,
        })
    }

    /// The room's id on the pool.
    pub fn room_id(&self) -> RoomId {
        self.room
    }

    /// Lets held participants start their scripts (from their beginning, lead silence
    /// first) with the next frame queued. Idempotent.
    pub fn release(&self) {
        for p in &mut lock(&self.state).participants {
            p.held = false;
        }
    }

    /// A snapshot of what every participant sent and heard so far (clones the audio).
    pub fn report(&self) -> RoomReport {
        let s = lock(&self.state);
        let mut bot = s.bot;
        self.jitter.read_into(&mut bot);
        RoomReport {
            participants: s.participants.iter().map(|p| p.report.clone()).collect(),
            bot,
        }
    }

    /// How long the longest participant's script (lead silence + speech) lasts.
    pub fn script_duration(&self) -> Duration {
        lock(&self.state)
            .participants
            .iter()
            .map(Participant::script_duration)
            .max()
            .unwrap_or_default()
    }

    /// Stops the pump (after one last drain), removes the room from its shard and returns
    /// the final report.
    pub async fn stop(mut self) -> RoomReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(pump) = self.pump.take() {
            let _ = pump.await;
        }
        self.remove();
        self.report()
    }

    fn remove(&mut self) {
        if !self.removed {
            self.removed = true;
            // Unknown room or a shut-down pool: nothing left to remove.
            let _ = self.pool.remove_room(self.room);
        }
    }
}

impl Drop for CallRoom {
    fn drop(&mut self) {
        if let Some(pump) = self.pump.take() {
            pump.abort();
        }
        self.remove();
    }
}

async fn pump(
    state: Arc<Mutex<PumpState>>,
    mut events: RecordEvents,
    mut stop: oneshot::Receiver<()>,
) {
    let mut interval = tokio::time::interval(PUMP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = interval.tick() => false,
            _ = &mut stop => true,
        };
        {
            let mut s = lock(&state);
            for p in &mut s.participants {
                p.pump();
            }
            while let Ok(ev) = events.pop() {
                count(&mut s.bot, &ev);
            }
        }
        if stopping {
            break;
        }
    }
}

fn count(bot: &mut BotPlayout, ev: &RecordEvent) {
    if ev.tick > bot.ticks {
        bot.events_lost += ev.tick - bot.ticks;
    }
    bot.ticks = ev.tick + 1;
    match ev.entry {
        RecordEntry::Packet { .. } => bot.packets += 1,
        RecordEntry::Fec => bot.fec += 1,
        RecordEntry::Concealed => bot.concealed += 1,
        RecordEntry::Silence | RecordEntry::Absent | RecordEntry::Mixed(_) => bot.silent += 1,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
