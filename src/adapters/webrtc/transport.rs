//! Creating sessions: the answerer side (the bot) and the offerer side (media processors).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

use super::OPUS_PT;
use super::config::MediaTransportConfig;
use super::dtmf::{DtmfReceiver, TELEPHONE_EVENT_PT};
use super::egress::{EgressLeg, LegSink, SendState};
use super::error::TransportError;
use super::leg::{Ingress, LegQueues};
use super::peer::{self, Ctl, Hooks};
use super::sdp::{self, SdpSummary};
use super::session::{Core, MediaSession, SessionState};
use super::stats::Counters;
use super::wire::WireTap;

/// Builds media sessions with one configuration (cheap to clone).
#[derive(Clone, Debug)]
pub struct MediaTransport {
    cfg: Arc<MediaTransportConfig>,
}

/// An offer we made, waiting for the answer.
///
/// Dropping it closes the peer connection in the background.
#[derive(Debug)]
pub struct PendingOffer {
    parts: Option<Parts>,
}

impl MediaTransport {
    /// A transport with `cfg`. Starts the process's media threads if they are not running
    /// yet (see `media_thread.rs`): they live as long as the process.
    pub fn new(cfg: MediaTransportConfig) -> Self {
        super::media_thread::start();
        Self { cfg: Arc::new(cfg) }
    }

    /// The configuration.
    pub fn config(&self) -> &MediaTransportConfig {
        &self.cfg
    }

    /// Answers `offer_sdp` (the bot's side): validates it, builds a peer connection that
    /// sends and receives Opus through `leg`, waits for ICE gathering to complete and returns
    /// the full answer SDP (non-trickle) and the session. Must be called inside a tokio
    /// runtime.
    ///
    /// # Errors
    /// [`TransportError::MalformedSdp`], [`TransportError::NoAudio`],
    /// [`TransportError::NoOpus`] for offers we cannot use (checked before webrtc-rs sees
    /// them); [`TransportError::Setup`], [`TransportError::Negotiation`] and
    /// [`TransportError::GatherTimeout`] when webrtc-rs fails.
    pub async fn accept_offer(
        &self,
        offer_sdp: &str,
        leg: LegQueues,
    ) -> Result<(String, MediaSession), TransportError> {
        let remote = sdp::check(offer_sdp)?;
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned())
            .map_err(|e| TransportError::MalformedSdp(e.to_string()))?;
        let parts = Parts::build(&self.cfg, leg, Some(remote)).await?;
        let answer = async {
            parts
                .pc
                .set_remote_description(offer)
                .await
                .map_err(|e| TransportError::MalformedSdp(e.to_string()))?;
            parts
                .pc
                .add_track(parts.track.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(TransportError::negotiation)?;
            let answer = parts
                .pc
                .create_answer(None)
                .await
                .map_err(TransportError::negotiation)?;
            parts
                .pc
                .set_local_description(answer)
                .await
                .map_err(TransportError::negotiation)?;
            parts.local_sdp(&self.cfg).await
        }
        .await;
        match answer {
            Ok(answer) => Ok((answer, parts.start(remote))),
            Err(e) => {
                parts.abandon().await;
                Err(e)
            }
        }
    }

    /// Makes an offer (the media processor's side): builds a peer connection that sends and
    /// receives Opus through `leg`, waits for ICE gathering and returns the full offer SDP and
    /// a [`PendingOffer`] to complete with the answer. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`TransportError::Setup`], [`TransportError::Negotiation`],
    /// [`TransportError::GatherTimeout`].
    pub async fn create_offer(
        &self,
        leg: LegQueues,
    ) -> Result<(String, PendingOffer), TransportError> {
        let parts = Parts::build(&self.cfg, leg, None).await?;
        let offer = async {
            parts
                .pc
                .add_track(parts.track.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(TransportError::negotiation)?;
            // add_track limits the m-line to the track's codec (Opus); offer telephone-event too.
            for t in parts.pc.get_transceivers().await {
                t.set_codec_preferences(peer::audio_codecs())
                    .await
                    .map_err(TransportError::negotiation)?;
            }
            let offer = parts
                .pc
                .create_offer(None)
                .await
                .map_err(TransportError::negotiation)?;
            parts
                .pc
                .set_local_description(offer)
                .await
                .map_err(TransportError::negotiation)?;
            parts.local_sdp(&self.cfg).await
        }
        .await;
        match offer {
            Ok(offer) => Ok((offer, PendingOffer { parts: Some(parts) })),
            Err(e) => {
                parts.abandon().await;
                Err(e)
            }
        }
    }
}

impl PendingOffer {
    /// Applies the answer and starts the session. The connect timeout runs from when the
    /// offer was created.
    ///
    /// # Errors
    /// [`TransportError::MalformedSdp`], [`TransportError::NoAudio`],
    /// [`TransportError::NoOpus`] for an unusable answer (the peer connection is closed).
    pub async fn complete(mut self, answer_sdp: &str) -> Result<MediaSession, TransportError> {
        let Some(parts) = self.parts.take() else {
            return Err(TransportError::Closed);
        };
        let applied = async {
            let remote = sdp::check(answer_sdp)?;
            let answer = RTCSessionDescription::answer(answer_sdp.to_owned())
                .map_err(|e| TransportError::MalformedSdp(e.to_string()))?;
            parts.set_remote_summary(remote);
            parts
                .pc
                .set_remote_description(answer)
                .await
                .map_err(|e| TransportError::MalformedSdp(e.to_string()))?;
            Ok(remote)
        }
        .await;
        match applied {
            Ok(remote) => Ok(parts.start(remote)),
            Err(e) => {
                parts.abandon().await;
                Err(e)
            }
        }
    }
}

/// A peer connection and everything around it, before the session starts.
struct Parts {
    pc: Arc<dyn PeerConnection>,
    hooks: Arc<Hooks>,
    track: Arc<webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP>,
    counters: Arc<Counters>,
    tap: Arc<WireTap>,
    ctl_tx: mpsc::UnboundedSender<Ctl>,
    ctl_rx: mpsc::UnboundedReceiver<Ctl>,
    outbound: rtrb::Consumer<crate::media::packet::RtpPacket>,
    events: mpsc::Sender<crate::adapters::webrtc::MediaEvent>,
    egress: crate::adapters::webrtc::EgressHandle,
    ssrc: u32,
    created: Instant,
    deadline: Instant,
    /// Closes the peer connection if these parts are dropped before a session owns them
    /// (an error, or the caller's future cancelled mid-negotiation).
    guard: CloseOnDrop,
}

/// Closes a peer connection in the background when dropped, unless disarmed.
struct CloseOnDrop(Option<Arc<dyn PeerConnection>>);

impl CloseOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(pc) = self.0.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("ssrc", &self.ssrc)
            .finish_non_exhaustive()
    }
}

impl Parts {
    async fn build(
        cfg: &MediaTransportConfig,
        leg: LegQueues,
        remote: Option<SdpSummary>,
    ) -> Result<Self, TransportError> {
        let created = Instant::now();
        let counters = Arc::new(Counters::default());
        let tap = Arc::new(WireTap::new(counters.clone()));
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let ingress = Ingress {
            inbound: leg.inbound,
            events: leg.events.clone(),
            remote: remote.unwrap_or(SdpSummary {
                opus_pt: OPUS_PT,
                telephone_event_pt: Some(TELEPHONE_EVENT_PT),
                audio_level_id: None,
            }),
            counters: counters.clone(),
            tap: tap.clone(),
            dtmf: DtmfReceiver::default(),
        };
        let media = leg.egress.runtime().cloned();
        let hooks = Arc::new(Hooks::new(ctl_tx.clone(), ingress, media.clone()));
        let pc = peer::build(cfg, hooks.clone(), tap.clone(), media).await?;
        Ok(Self {
            guard: CloseOnDrop(Some(pc.clone())),
            pc,
            hooks,
            track: peer::local_track(leg.ssrc),
            counters,
            tap,
            ctl_tx,
            ctl_rx,
            outbound: leg.outbound,
            events: leg.events,
            egress: leg.egress,
            ssrc: leg.ssrc,
            created,
            deadline: created + cfg.connect_timeout,
        })
    }

    fn set_remote_summary(&self, remote: SdpSummary) {
        if let Some(i) = self
            .hooks
            .ingress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            i.remote = remote;
        }
    }

    /// Waits for gathering to complete and returns our full local SDP (NAT port rewritten).
    async fn local_sdp(&self, cfg: &MediaTransportConfig) -> Result<String, TransportError> {
        tokio::time::timeout(cfg.gather_timeout, self.hooks.gathered.notified())
            .await
            .map_err(|_| TransportError::GatherTimeout)?;
        let desc = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| TransportError::Negotiation("no local description".into()))?;
        Ok(match cfg.public_address {
            Some(p) => sdp::rewrite_host_candidates(&desc.sdp, Some(p.ip), p.port),
            None => desc.sdp,
        })
    }

    fn start(mut self, remote: SdpSummary) -> MediaSession {
        self.guard.disarm();
        let sink = Arc::new(LegSink {
            track: self.track,
            ssrc: self.ssrc,
            opus_pt: remote.opus_pt,
            telephone_event_pt: remote.telephone_event_pt,
            connected: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            counters: self.counters.clone(),
            tap: self.tap,
            send: Mutex::new(SendState::default()),
        });
        self.egress.attach(EgressLeg {
            outbound: self.outbound,
            sink: sink.clone(),
        });
        let core = Arc::new(Core {
            counters: self.counters,
            sink,
            events: self.events,
            egress: self.egress,
            created: self.created,
            state: Mutex::new(SessionState::Connecting),
        });
        MediaSession::start(
            core,
            self.pc,
            self.hooks,
            self.ctl_tx,
            self.ctl_rx,
            self.deadline,
        )
    }

    async fn abandon(mut self) {
        self.guard.disarm();
        let _ = self.pc.close().await;
    }
}
