//! Why the emulator's media processor could not join, or lost, a call's media.

use crate::adapters::shard::ShardError;
use crate::media::member::MemberError;
use crate::media::room::RoomError;

/// What can go wrong joining or running a call's media.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaProcError {
    /// A participant's speech file could not be read.
    #[error("speech file {path}: {reason}")]
    Speech {
        /// The file.
        path: String,
        /// Why (hound's or the resampler's message).
        reason: String,
    },
    /// The bot's `appHostedMediaConfig.blob` is not a usable v1 media session descriptor.
    #[error("media blob: {0}")]
    Blob(String),
    /// A call needs at least one participant.
    #[error("no participants to join with")]
    NoParticipants,
    /// More participants than a room of the emulator takes.
    #[error("{0} participants is more than the media processor mixes")]
    TooManyParticipants(usize),
    /// The room could not be built.
    #[error("room: {0}")]
    Room(#[from] RoomError),
    /// A room member could not be built.
    #[error("room member: {0}")]
    Member(#[from] MemberError),
    /// The emulator's shard pool refused the room or a member.
    #[error("shard pool: {0}")]
    Shard(#[from] ShardError),
    /// The WebRTC transport failed (offer, answer or session).
    #[error("transport: {0}")]
    Transport(String),
    /// The bot's negotiation endpoint refused the offer or could not be reached.
    #[error("negotiation with {uri}: {reason}")]
    Negotiation {
        /// The `negotiateUri` (or session `Location`) used.
        uri: String,
        /// HTTP status, when the bot answered.
        status: Option<u16>,
        /// What went wrong.
        reason: String,
    },
    /// ICE + DTLS did not complete in time, or the session failed.
    #[error("media session did not connect: {0}")]
    NotConnected(String),
    /// Certificates or HTTPS client setup.
    #[error("tls: {0}")]
    Tls(String),
}
