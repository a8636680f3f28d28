//! Configuration of the WebRTC transport: where host candidates bind, what is advertised
//! through NAT, ICE pacing, the connect timeout and how soon a vanished remote is noticed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How every peer connection of a [`MediaTransport`](super::MediaTransport) is built.
///
/// The defaults suit loopback tests and a host with a directly reachable address: host
/// candidates on `127.0.0.1:0`, 20 ms ICE check interval, 10 s connect timeout, mDNS off,
/// and a remote that stops answering declared gone after ≈ 5 s (ICE consent checks every
/// 1 s; disconnected after 3 s of silence, failed 2 s later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaTransportConfig {
    /// Local UDP addresses to bind, one socket (and one host candidate) per address per
    /// peer connection. Port 0 picks an ephemeral port. A wildcard (`0.0.0.0:0`) expands to
    /// every non-loopback interface (webrtc-rs behaviour); tests must use `127.0.0.1:0`.
    pub host_addrs: Vec<SocketAddr>,
    /// Public address advertised instead of the bound one, for a host behind a 1:1 NAT (like
    /// Microsoft's `InstancePublicIPAddress` / `InstancePublicPort`). `None` advertises the
    /// bound addresses.
    pub public_address: Option<PublicAddress>,
    /// Interval between ICE connectivity checks (webrtc-rs default 200 ms; 20 ms gives ≈ 25 ms
    /// loopback connects).
    pub ice_check_interval: Duration,
    /// A session that has not reached `Connected` (ICE + DTLS) this long after it was created
    /// fails with [`FailureReason::ConnectTimeout`](super::FailureReason::ConnectTimeout).
    pub connect_timeout: Duration,
    /// How long ICE gathering may take before [`accept_offer`](super::MediaTransport::accept_offer)
    /// or [`create_offer`](super::MediaTransport::create_offer) gives up (host candidates only,
    /// so this is normally a few milliseconds).
    pub gather_timeout: Duration,
    /// Register the default interceptors (NACK generator/responder, RTCP sender and receiver
    /// reports, TWCC receiver). On by default; off only for measurements.
    pub interceptors: bool,
    /// How long nothing may arrive from the remote (media or answers to our consent checks)
    /// before ICE reports `disconnected` (webrtc-rs default 5 s). A remote that comes back
    /// in time recovers the session.
    pub ice_disconnected_timeout: Duration,
    /// How long ICE may stay `disconnected` before it fails and the session ends with
    /// [`FailureReason::IceFailed`](super::FailureReason::IceFailed) — the call is told
    /// (webrtc-rs default 25 s, so a vanished remote took ≈ 30 s to notice).
    pub ice_failed_timeout: Duration,
    /// Interval of ICE consent checks (STUN binding requests) on the selected pair while
    /// connected (webrtc-rs default 2 s). Must be well below
    /// [`ice_disconnected_timeout`](Self::ice_disconnected_timeout): a live remote that sends
    /// no media is known alive only by its answers to these.
    pub ice_keepalive_interval: Duration,
}

/// A public address mapped 1:1 onto this host by a NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicAddress {
    /// Public IP written into every host candidate of our SDP instead of the bound IP.
    ///
    /// rtc 0.21.1 has a `with_nat_1to1_ips` setting but never applies it (nothing in rtc,
    /// rtc-ice or webrtc reads it), so the rewrite is done on our SDP text.
    pub ip: IpAddr,
    /// Public port written into the host candidates of our SDP instead of the bound port.
    ///
    /// rtc 0.21 has no port mapping either, so this too is an SDP rewrite. Each
    /// peer connection owns its socket, so a fixed public port only makes sense with a fixed
    /// bound port in [`MediaTransportConfig::host_addrs`] (one session at a time on it) or a
    /// NAT that forwards the same port it is told. `None` keeps the bound port.
    pub port: Option<u16>,
}

impl Default for MediaTransportConfig {
    fn default() -> Self {
        Self {
            host_addrs: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            public_address: None,
            ice_check_interval: Duration::from_millis(20),
            connect_timeout: Duration::from_secs(10),
            gather_timeout: Duration::from_secs(5),
            interceptors: true,
            ice_disconnected_timeout: Duration::from_secs(3),
            ice_failed_timeout: Duration::from_secs(2),
            ice_keepalive_interval: Duration::from_secs(1),
        }
    }
}

impl MediaTransportConfig {
    /// Sets the connect timeout (builder style).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the ICE timers (builder style): `disconnected` after this much silence from the
    /// remote, `failed` (the session ends) `failed` later, consent checks every `keepalive`.
    #[must_use]
    pub fn with_ice_timeouts(
        mut self,
        disconnected: Duration,
        failed: Duration,
        keepalive: Duration,
    ) -> Self {
        self.ice_disconnected_timeout = disconnected;
        self.ice_failed_timeout = failed;
        self.ice_keepalive_interval = keepalive;
        self
    }

    /// Sets the advertised public address (builder style).
    #[must_use]
    pub fn with_public_address(mut self, public: PublicAddress) -> Self {
        self.public_address = Some(public);
        self
    }
}
