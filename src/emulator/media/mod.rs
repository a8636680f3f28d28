//! The emulator's media processor: the other end of a bot's app-hosted media.
//!
//! In Teams, the media processor joins the bot's media on behalf of the call's participants
//! and mixes them. Here each emulated participant (the caller — a Teams user or a phone — and
//! later invitees) streams speech from a WAV in `media/`, paced in real time, and records what
//! it hears; all of them meet in **one [`Room`](crate::media::room::Room)** on the emulator's
//! own shard pool, where the bot's media is one call leg. Several participants are therefore
//! mixed by the project's own room mixer, and the bot hears the mix.
//!
//! | file | what |
//! | --- | --- |
//! | [`speech`] | [`ParticipantMedia`]: a participant's name and speech WAV; WAV loading at 48 kHz |
//! | [`participant`] | the feeder/drain of one participant and its [`ParticipantReport`] |
//! | [`call_room`] | [`CallRoom`]: the call's room on a shard and its pump task |
//! | [`desk`] | per call: what the ring asked ([`MediaRequest`]: emulator or external peer) and the [`MediaRecord`] |
//! | [`processor`] | [`MediaProcessor`]: blob → WHIP-style negotiation → WebRTC → the call's room |
//! | [`round_trip()`] | the round-trip delay by cross-correlation; "the greeting is heard first" |

pub mod call_room;
pub mod desk;
pub mod error;
pub mod participant;
pub mod processor;
pub mod round_trip;
pub mod speech;

pub use call_room::{
    BotJitterCounters, BotLegQueues, BotPlayout, CallRoom, CallRoomConfig, MediaPool, MixRoom,
    RoomReport,
};
pub use desk::{MediaPeer, MediaRecord, MediaRequest, MediaState, ParticipantSpec};
pub use error::MediaProcError;
pub use participant::ParticipantReport;
pub use processor::{LegEnd, MediaLeg, MediaProcessor, MediaProcessorConfig, MediaReport};
pub use round_trip::{FirstHeard, RoundTrip, first_heard, first_heard_wav, round_trip};
pub use speech::{ParticipantMedia, load_wav_48k, media_dir};
