//! What a media session tells its owner: connected, DTMF, failed, closed.

use std::time::Duration;

use super::dtmf::DtmfDigit;

/// An event of one media session, delivered on the leg's events channel in order.
///
/// A session sends at most one `Connected`, then any number of `Dtmf`, and ends with exactly
/// one of `Failed` or `Closed` (none if the owner dropped the receiver).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// ICE and DTLS completed: media can flow.
    Connected,
    /// An RFC 4733 telephone-event was received. Each event is reported once when it starts
    /// (`end == false`) and once when it ends (`end == true`, with its total duration);
    /// retransmitted end packets are not reported again.
    Dtmf {
        /// The key.
        digit: DtmfDigit,
        /// True for the end of the event.
        end: bool,
        /// Duration so far (start) or in total (end), from the event's duration field.
        duration: Duration,
    },
    /// The session failed and has ended; the reason says how. Counted in the stats.
    Failed(FailureReason),
    /// The session ended normally: closed locally or by the remote peer.
    Closed,
}

/// Why a media session failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// ICE + DTLS did not complete within the configured connect timeout.
    ConnectTimeout,
    /// ICE failed (no candidate pair worked, or consent was lost).
    IceFailed,
    /// ICE connected but the peer connection failed afterwards (DTLS handshake or transport).
    DtlsFailed,
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ConnectTimeout => "connect timeout",
            Self::IceFailed => "ICE failed",
            Self::DtlsFailed => "DTLS/transport failed",
        })
    }
}
