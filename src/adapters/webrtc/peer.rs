//! Building one webrtc-rs peer connection the way every session needs it, and the event
//! handler that turns its callbacks into session control messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_TELEPHONE_EVENT,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use tokio::runtime::Handle;
use tokio::sync::{Notify, mpsc};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceConnectionState, RTCIceGatheringState, RTCPeerConnectionState,
    Registry, SettingEngineBuilder, register_default_interceptors,
};

use super::OPUS_PT;
use super::config::MediaTransportConfig;
use super::dtmf::TELEPHONE_EVENT_PT;
use super::error::TransportError;
use super::event::FailureReason;
use super::leg::Ingress;
use super::sdp::AUDIO_LEVEL_URI;
use super::wire::{TapRuntime, WireTap};

/// What the peer connection's callbacks tell the session supervisor.
#[derive(Debug)]
pub(crate) enum Ctl {
    /// ICE + DTLS completed.
    Connected,
    /// The session must end with this outcome (`None` = closed normally).
    End(Option<FailureReason>),
}

/// The webrtc-rs event handler of one session.
pub(crate) struct Hooks {
    pub ctl: mpsc::UnboundedSender<Ctl>,
    pub gathered: Notify,
    pub ice_connected: AtomicBool,
    /// ICE went `disconnected` or `failed` after connecting (the remote stopped answering).
    pub ice_lost: AtomicBool,
    /// Taken by the first remote track; later tracks are ignored.
    pub ingress: Mutex<Option<Ingress>>,
    /// The reader task, so the supervisor can wait for it.
    pub reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The session's media thread, where the reader runs (`None`: the current runtime).
    pub media: Option<Handle>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

impl Hooks {
    pub(crate) fn new(
        ctl: mpsc::UnboundedSender<Ctl>,
        ingress: Ingress,
        media: Option<Handle>,
    ) -> Self {
        Self {
            ctl,
            gathered: Notify::new(),
            ice_connected: AtomicBool::new(false),
            ice_lost: AtomicBool::new(false),
            ingress: Mutex::new(Some(ingress)),
            reader: Mutex::new(None),
            media,
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Hooks {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.notify_one();
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        if matches!(
            state,
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
        ) {
            self.ice_connected.store(true, Ordering::Release);
            self.ice_lost.store(false, Ordering::Release);
        } else if matches!(
            state,
            RTCIceConnectionState::Disconnected | RTCIceConnectionState::Failed
        ) {
            // A connected remote stopped answering (nothing for `ice_disconnected_timeout`);
            // if the peer connection then fails, ICE lost it, not DTLS.
            self.ice_lost.store(true, Ordering::Release);
            if state == RTCIceConnectionState::Failed {
                let _ = self.ctl.send(Ctl::End(Some(FailureReason::IceFailed)));
            }
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let msg = match state {
            RTCPeerConnectionState::Connected => Ctl::Connected,
            RTCPeerConnectionState::Failed => Ctl::End(Some(
                if self.ice_connected.load(Ordering::Acquire)
                    && !self.ice_lost.load(Ordering::Acquire)
                {
                    FailureReason::DtlsFailed
                } else {
                    FailureReason::IceFailed
                },
            )),
            RTCPeerConnectionState::Closed => Ctl::End(None),
            _ => return,
        };
        let _ = self.ctl.send(msg);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let ingress = self
            .ingress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(ingress) = ingress else { return };
        let ctl = self.ctl.clone();
        let reader = async move {
            ingress.run(track).await;
            // The remote track ended: the remote closed, or we are closing (then this is a
            // no-op for the supervisor, which already decided).
            let _ = ctl.send(Ctl::End(None));
        };
        let handle = match &self.media {
            Some(rt) => rt.spawn(reader),
            None => tokio::spawn(reader),
        };
        *self.reader.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }
}

/// Opus as we register and announce it (RFC 7587: always `opus/48000/2`).
pub(crate) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// telephone-event as we register and announce it (RFC 4733, events 0–16).
fn telephone_event_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_TELEPHONE_EVENT.to_owned(),
        clock_rate: 48_000,
        channels: 0,
        sdp_fmtp_line: "0-16".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The audio codecs we offer, in preference order.
pub(crate) fn audio_codecs() -> Vec<RTCRtpCodecParameters> {
    vec![
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: OPUS_PT,
        },
        RTCRtpCodecParameters {
            rtp_codec: telephone_event_codec(),
            payload_type: TELEPHONE_EVENT_PT,
        },
    ]
}

/// Builds a peer connection with our codecs, interceptors and settings.
pub(crate) async fn build(
    cfg: &MediaTransportConfig,
    hooks: Arc<Hooks>,
    tap: Arc<WireTap>,
    media: Option<Handle>,
) -> Result<Arc<dyn PeerConnection>, TransportError> {
    let mut me = MediaEngine::default();
    for codec in audio_codecs() {
        me.register_codec(codec, RtpCodecKind::Audio)
            .map_err(TransportError::setup)?;
    }
    me.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.to_owned(),
        },
        RtpCodecKind::Audio,
        None,
    )
    .map_err(TransportError::setup)?;
    let mut registry = Registry::new();
    if cfg.interceptors {
        registry =
            register_default_interceptors(registry, &mut me).map_err(TransportError::setup)?;
    }
    // The public address (NAT 1:1) is applied to our SDP by the caller: rtc 0.21.1 stores
    // `with_nat_1to1_ips` but never reads it.
    let se = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_ice_connection_attempts(Some(cfg.ice_check_interval), None)
        .with_ice_timeouts(
            Some(cfg.ice_disconnected_timeout),
            Some(cfg.ice_failed_timeout),
            Some(cfg.ice_keepalive_interval),
        );
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(me)
        .with_setting_engine(se.build())
        .with_interceptor_registry(registry)
        .with_runtime(Arc::new(TapRuntime::new(tap, media)))
        .with_handler(hooks)
        .with_udp_addrs(cfg.host_addrs.clone())
        // Non-zero makes webrtc-rs spawn the driver with `Runtime::spawn_reactor`, which
        // `TapRuntime` sends to the session's media thread (the size itself is unused then).
        .with_dedicated_reactor_pool_size(1)
        .build()
        .await
        .map_err(TransportError::setup)?;
    Ok(Arc::new(pc))
}

/// Our outbound audio track, announcing `ssrc`.
pub(crate) fn local_track(ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    let id = format!("{ssrc:08x}");
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("mediabot-{id}"),
        format!("audio-{id}"),
        format!("audio-{id}"),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: opus_codec(),
            ..Default::default()
        }],
    )))
}
