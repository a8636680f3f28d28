//! Errors of the WebRTC transport.

/// Why a session could not be negotiated or an operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The SDP is not SDP (or webrtc-rs refused to parse it); the reason says where.
    #[error("malformed SDP: {0}")]
    MalformedSdp(String),
    /// The SDP has no usable `m=audio` section.
    #[error("SDP has no audio media section")]
    NoAudio,
    /// The audio section does not offer `opus/48000/2`.
    #[error("SDP audio section does not offer opus/48000/2")]
    NoOpus,
    /// The peer connection could not be built (socket bind, crypto, configuration).
    #[error("cannot build peer connection: {0}")]
    Setup(String),
    /// Offer/answer negotiation failed inside webrtc-rs.
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    /// ICE gathering did not complete within the configured time.
    #[error("ICE gathering timed out")]
    GatherTimeout,
    /// The session is closed.
    #[error("session closed")]
    Closed,
    /// The remote did not negotiate `telephone-event/48000`.
    #[error("telephone-event was not negotiated")]
    DtmfNotNegotiated,
    /// A DTMF digit outside `0-9 * # A-D`.
    #[error("not a DTMF digit: {0:?}")]
    BadDigit(char),
}

impl TransportError {
    pub(crate) fn setup(e: impl std::fmt::Display) -> Self {
        Self::Setup(e.to_string())
    }

    pub(crate) fn negotiation(e: impl std::fmt::Display) -> Self {
        Self::Negotiation(e.to_string())
    }
}
