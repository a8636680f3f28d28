//! What a media host tells its owner: events of each call's media session, and statistics.

use std::time::Duration;

use crate::adapters::call_room::CallRoomStats;
use crate::adapters::recording::RecordingSummary;
use crate::adapters::webrtc::{MediaEvent, TransportStats};
use crate::graph::CallId;
use crate::session::registry::{NegotiationError, SessionPhase};

/// Something that happened to a call's media session.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaHostEvent {
    /// The call.
    pub call_id: CallId,
    /// What happened.
    pub kind: SessionEvent,
}

/// What happened (see [`MediaHostEvent`]).
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// An offer was answered (201 sent).
    Negotiated,
    /// An offer was refused because of the offer itself (400): the token is spent, the call
    /// will get no media from this session.
    NegotiationFailed(NegotiationError),
    /// The transport reported: `Connected`, `Dtmf`, `Failed` (ICE/DTLS, connect timeout) or
    /// `Closed` (by the remote).
    Media(MediaEvent),
    /// The session was never negotiated and expired.
    Expired,
    /// The local participant (a sound device) joined this call's room; its description.
    LocalJoined(String),
    /// The local participant could not join this call (the call goes on without it): why.
    LocalFailed(String),
    /// The local participant left this call (the call ended); `lost`: it had failed during
    /// the call (e.g. the device vanished) and the call went on without it.
    LocalLeft {
        /// It had failed during the call.
        lost: bool,
    },
    /// The session ended and everything it held was released (the last event of a session).
    Ended {
        /// Why.
        reason: EndReason,
        /// The recording (directory, files, integrity), when the call was recorded.
        recording: Option<RecordingSummary>,
        /// The session's final statistics, taken after its transport closed (the session is
        /// gone afterwards, so [`MediaHost::stats`](super::MediaHost::stats) no longer
        /// answers). `None` only for a session that never got a room or a transport.
        stats: Option<Box<SessionStats>>,
    },
}

/// Why a media session ended.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum EndReason {
    /// The peer sent DELETE.
    Deleted,
    /// The owner ended it ([`MediaHost::end_session`](super::MediaHost::end_session): the call ended, either side).
    CallEnded,
    /// The media failed (ICE/DTLS failure, connect timeout).
    MediaFailed,
    /// The remote closed the media.
    MediaClosed,
    /// The host shut down.
    Shutdown,
}

/// Per-call media statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionStats {
    /// Session phase (`None` once forgotten).
    pub phase: Option<SessionPhase>,
    /// Time from the answer being sent to ICE + DTLS connected.
    pub connect_time: Option<Duration>,
    /// Transport counters (packets in/out on the wire, SRTP rejections, latencies).
    pub transport: TransportStats,
    /// Room counters (packets into the jitter buffer, concealed frames, packets sent).
    pub room: CallRoomStats,
}

/// Host-wide counters.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct MediaHostStats {
    /// Sessions created.
    pub created: u64,
    /// Offers answered with 201.
    pub negotiated: u64,
    /// Offers or DELETEs refused (any 4xx/5xx).
    pub refused: u64,
    /// Sessions ended after negotiation.
    pub ended: u64,
    /// Sessions that expired un-negotiated.
    pub expired: u64,
    /// Events dropped because the owner's channel was full.
    pub events_dropped: u64,
    /// Calls with a session now.
    pub live_calls: usize,
}
