//! Room members: the kinds of things that send audio into a room and take audio out of it.
//!
//! A [`Member`] is an id, a [`MemberKind`] and the per-tick state every source shares: its
//! decoded frame for this tick and its [`VoiceDetector`]. The kinds are an enum, not trait
//! objects (the str0m `PacerImpl` pattern): the room matches on them.
//!
//! | kind | in (source) | out (sink) |
//! | --- | --- | --- |
//! | [`CallLeg`] | RTP → jitter buffer → Opus decode | Opus encode (or shared / pre-encoded) → RTP |
//! | [`PromptPlayer`] | pre-decoded prompt frames | — |
//! | [`AppEndpoint`] | PCM frames from the application | PCM frames to the application |
//! | [`RecorderTap`] | — | record events for an off-shard writer |
//! | [`EchoMember`] | another member's input, a fixed delay later | — |
//!
//! Members are built off the shard (constructors allocate queues and codec state), boxed, and
//! moved into a room with [`crate::media::room::Room::add_member`]; a removed member comes back
//! boxed so it is dropped off the shard too.
//!
//! # Realtime Safety
//! Constructors allocate. Nothing else here does.

use std::sync::Arc;

use rtrb::{Consumer, Producer};

use crate::media::codec::CodecError;
use crate::media::echo::EchoMember;
use crate::media::endpoint::{AppAudio, AppEndpoint};
use crate::media::frame::AudioFrame;
use crate::media::leg::{CallLeg, CallLegConfig, LegPort};
use crate::media::packet::RtpPacket;
use crate::media::prompt::{PlayMode, Prompt, PromptPlayer};
use crate::media::record_queue::RecordEvents;
use crate::media::recorder::{RecorderConfig, RecorderTap};
use crate::media::room::MemberId;
use crate::media::speaker::{Activity, VoiceConfig, VoiceDetector};

/// Why a member could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// The codec refused (see the inner error).
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// A queue capacity of zero.
    #[error("queue capacity must be at least 1")]
    ZeroCapacity,
}

/// What a member is.
#[derive(Debug)]
pub enum MemberKind {
    /// A remote participant's RTP stream, both ways. Boxed (its jitter buffer and packets
    /// make it ≈ 8 KiB): every other kind of member would otherwise be that size too.
    CallLeg(Box<CallLeg>),
    /// The bot's prompt.
    Prompt(PromptPlayer),
    /// The application's own PCM endpoint.
    App(AppEndpoint),
    /// A recorder.
    Recorder(RecorderTap),
    /// An echo of another member.
    Echo(EchoMember),
}

/// One member of a room.
#[derive(Debug)]
pub struct Member {
    id: MemberId,
    kind: MemberKind,
    pub(crate) frame: AudioFrame,
    vad: VoiceDetector,
    active_ticks: u64,
    speaker_ticks: u64,
}

impl Member {
    /// A member of any kind (the kind-specific constructors below are usually handier).
    pub fn new(id: MemberId, kind: MemberKind, voice: VoiceConfig) -> Box<Self> {
        Box::new(Self {
            id,
            kind,
            frame: AudioFrame::silence(),
            vad: VoiceDetector::new(voice),
            active_ticks: 0,
            speaker_ticks: 0,
        })
    }

    /// A call leg around existing room-side queue ends: `input` is filled by the transport,
    /// `output` is drained by it.
    ///
    /// # Errors
    /// [`MemberError::Codec`] if the encoder or decoder cannot be built.
    pub fn call_leg(
        id: MemberId,
        config: &CallLegConfig,
        input: Consumer<RtpPacket>,
        output: Producer<RtpPacket>,
    ) -> Result<Box<Self>, MemberError> {
        let leg = CallLeg::new(config, input, output)?;
        Ok(Self::new(
            id,
            MemberKind::CallLeg(Box::new(leg)),
            VoiceConfig::default(),
        ))
    }

    /// A call leg with fresh queues of `capacity` packets each way; returns the transport's
    /// [`LegPort`] with it.
    ///
    /// # Errors
    /// [`MemberError::ZeroCapacity`] or [`MemberError::Codec`].
    pub fn call_leg_with_port(
        id: MemberId,
        config: &CallLegConfig,
        capacity: usize,
    ) -> Result<(Box<Self>, LegPort), MemberError> {
        if capacity == 0 {
            return Err(MemberError::ZeroCapacity);
        }
        let (port, input, output) = LegPort::new(capacity);
        Ok((Self::call_leg(id, config, input, output)?, port))
    }

    /// A prompt player.
    pub fn prompt(id: MemberId, prompt: Arc<Prompt>, mode: PlayMode) -> Box<Self> {
        Self::new(
            id,
            MemberKind::Prompt(PromptPlayer::new(prompt, mode)),
            VoiceConfig::default(),
        )
    }

    /// An application endpoint with queues of `capacity` frames each way; returns the
    /// application's [`AppAudio`] with it.
    ///
    /// # Errors
    /// [`MemberError::ZeroCapacity`].
    pub fn app_endpoint(
        id: MemberId,
        capacity: usize,
    ) -> Result<(Box<Self>, AppAudio), MemberError> {
        if capacity == 0 {
            return Err(MemberError::ZeroCapacity);
        }
        let (endpoint, app) = AppEndpoint::new(capacity);
        Ok((
            Self::new(id, MemberKind::App(endpoint), VoiceConfig::default()),
            app,
        ))
    }

    /// A recorder tap; returns the writer's end of its event queue with it.
    pub fn recorder(id: MemberId, config: &RecorderConfig) -> (Box<Self>, RecordEvents) {
        let (tap, events) = RecorderTap::new(config);
        (
            Self::new(id, MemberKind::Recorder(tap), VoiceConfig::default()),
            events,
        )
    }

    /// An echo of member `source`, `delay` later (rounded to whole 20 ms frames, see
    /// [`crate::media::echo::EchoDelay::new`]).
    pub fn echo(id: MemberId, source: MemberId, delay: std::time::Duration) -> Box<Self> {
        Self::new(
            id,
            MemberKind::Echo(EchoMember::new(source, delay)),
            VoiceConfig::default(),
        )
    }

    /// The member's id.
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// The member's kind and kind-specific state.
    pub fn kind(&self) -> &MemberKind {
        &self.kind
    }

    /// Mutable access to the kind (e.g. to restart a prompt between ticks).
    pub fn kind_mut(&mut self) -> &mut MemberKind {
        &mut self.kind
    }

    /// This tick's input frame (silence for members without input).
    pub fn frame(&self) -> &AudioFrame {
        &self.frame
    }

    /// Ticks in which this member was an active source.
    pub fn active_ticks(&self) -> u64 {
        self.active_ticks
    }

    /// Ticks in which this member was among the mixed speakers.
    pub fn speaker_ticks(&self) -> u64 {
        self.speaker_ticks
    }

    /// Input phase of a tick: produce this tick's frame and say whether it is active.
    pub(crate) fn gather(&mut self, now: std::time::Instant) -> Activity {
        let (active, priority) = match &mut self.kind {
            MemberKind::CallLeg(leg) => (leg.receive(now, &mut self.vad, &mut self.frame), false),
            MemberKind::App(app) => (app.receive(&mut self.vad, &mut self.frame), false),
            MemberKind::Echo(echo) => (echo.receive(&mut self.vad, &mut self.frame), false),
            MemberKind::Prompt(player) => {
                let playing = player.advance().is_some();
                match player.frame() {
                    Some(f) if playing => {
                        self.frame.samples.copy_from_slice(&f.samples);
                        self.vad.observe_frame(&self.frame);
                    }
                    _ => {
                        self.frame.clear();
                        self.vad.observe_silence();
                    }
                }
                // A playing prompt is a source for its whole length, pauses included, so it
                // keeps its place (and passthrough stays on) between words.
                (playing, true)
            }
            MemberKind::Recorder(_) => return Activity::IDLE,
        };
        if active {
            self.active_ticks += 1;
        }
        Activity {
            active,
            score: self.vad.score(),
            priority,
        }
    }

    /// This tick's frame beside the kind, for the output phase.
    pub(crate) fn parts_mut(&mut self) -> (&AudioFrame, &mut MemberKind) {
        (&self.frame, &mut self.kind)
    }

    pub(crate) fn count_speaker_tick(&mut self) {
        self.speaker_ticks += 1;
    }
}
