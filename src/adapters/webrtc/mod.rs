//! The WebRTC transport of a call leg: one webrtc-rs 0.21 peer connection per leg, bridged to
//! the call's shard through bounded SPSC queues of fixed-size packets.
//!
//! This is the **only** module of the crate that names webrtc or rtc types; everything it
//! exposes is ours: SDP as text, [`RtpPacket`](crate::media::packet::RtpPacket) values in
//! `rtrb` queues, [`MediaEvent`]s on a tokio channel, plain counters and histograms.
//!
//! # Shape
//!
//! - The bot answers: [`MediaTransport::accept_offer`] validates the offer ([`sdp`]), builds a
//!   peer connection, waits for ICE gathering to complete (non-trickle) and returns the full
//!   answer SDP with a [`MediaSession`].
//! - A media processor (the emulator, tests) offers: [`MediaTransport::create_offer`] returns
//!   the offer SDP and a [`PendingOffer`]; [`PendingOffer::complete`] takes the answer.
//! - Each session is given a [`LegQueues`]: received Opus RTP is converted to
//!   [`RtpPacket`](crate::media::packet::RtpPacket) and pushed to `inbound`; packets the shard
//!   pushes to `outbound` are written as RTP by the leg's [`Egress`] task when the room rings
//!   its [`EgressSignal`] (after each tick). The egress task, the peer-connection driver and the
//!   reader run on one of the process's real-time media threads (`media_thread.rs`).
//!   Lifecycle and DTMF arrive as [`MediaEvent`]s.
//! - [`MediaSession::close`] ends everything the session started (driver task, reader task,
//!   watchdog, sockets); the session also ends by itself on ICE/DTLS failure, on the connect
//!   timeout and when the remote closes, and says so with one final event.
//!
//! # What webrtc-rs does not give us, and what we do about it
//!
//! - SRTP/SRTCP authentication failures are only *logged* by webrtc 0.21 (`handle_read error`),
//!   never counted or surfaced. Every session therefore runs its sockets through a small
//!   wire tap (`wire.rs`): it counts SRTP-looking datagrams received and compares them with the
//!   RTP packets that came out of the SRTP layer; the difference is reported as
//!   [`TransportStats::srtp_rejected`] (authentication failures, replays and packets for unknown
//!   SSRCs — webrtc-rs does not tell them apart).
//! - The same tap timestamps the moment each outbound RTP packet is handed to the kernel, so
//!   host-added send latency (`write_rtp` call → on the wire) is measured, not guessed.
//! - NAT: rtc 0.21.1 accepts `with_nat_1to1_ips` but never applies it, and has no port
//!   mapping, so the advertised public IP and port are written into the host candidates of
//!   our own SDP (see [`MediaTransportConfig::public_address`]).

mod config;
mod dtmf;
mod egress;
mod error;
mod event;
mod leg;
mod media_thread;
mod peer;
pub mod sdp;
mod session;
mod stats;
mod transport;
mod wire;

pub use config::{MediaTransportConfig, PublicAddress};
pub use dtmf::{DtmfDigit, ReceivedTelephoneEvent, TELEPHONE_EVENT_PT};
pub use egress::{Egress, EgressHandle, EgressSignal};
pub use error::TransportError;
pub use event::{FailureReason, MediaEvent};
pub use leg::{LegEnds, LegQueues};
pub use session::{MediaSession, SessionState};
pub use stats::{LatencySummary, TransportStats};
pub use transport::{MediaTransport, PendingOffer};

/// RTP payload type we register for Opus (`opus/48000/2`, `minptime=10;useinbandfec=1`).
pub const OPUS_PT: u8 = 111;
