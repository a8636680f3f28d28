//! `MediaBot`: the bot host with its own media — the [`Bot`] (webhook, driver, Graph client)
//! plus a [`MediaHost`] whose WHIP-style negotiation endpoint is served over HTTPS, and the
//! [`DemoHandler`] policy wrapped in a [`MediaCallHandler`], so answers carry a real
//! app-hosted blob.
//!
//! The default behaviour (what `mediabot demo` and `mediabot serve` run, configurable through
//! [`MediaBotConfig`]):
//!
//! 1. decide by the kind of caller ([`DemoHandlerConfig`]); an answer carries the blob of a
//!    fresh media session ([`MediaHost::create_session`]);
//! 2. when the media connects, play the greeting (`media/greeting-16k.wav`, resampled at
//!    load), then echo the caller back after a short delay (200 ms);
//! 3. record the call: `<record_dir>/<call-id>/` (`leg-1.opus`, `mix.wav`, `recording.json`);
//! 4. when the call ends, from either side (Graph's `terminated`, the bot's hang-up, a
//!    failed decision), end the media session: transport closed, room off its shard, members,
//!    tasks and sockets freed, recording finished. When the media fails or the peer closes
//!    it first, the call is told: the bot hangs up.
//!
//! What happened to each call's media is kept ([`MediaBot::media_outcome`]) for reports.
//!
//! With a local participant ([`MediaHostConfig::local`], e.g. a sound device from
//! [`crate::adapters::local_participant::sound_device`]) the person at this machine joins the
//! oldest connected call and moves on when it ends ([`MediaBot::local_call`] says where).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::call::CallId;

use super::bot::{Bot, BotConfig, BotError, BotHandle};
use super::demo_handler::{DemoAction, DemoHandler, DemoHandlerConfig};
use super::local_participant::LocalError;
use super::media_handler::MediaCallHandler;
use super::media_host::{
    BehaviourConfig, CallBehaviour, EndReason, MediaHost, MediaHostConfig, MediaHostError,
    MediaHostEvent, SessionEvent, SessionStats,
};
use super::metrics::MetricsSnapshot;
use super::negotiation;
use super::recording::RecordingSummary;
use super::tls::{HttpsServer, TlsError, TlsIdentity, serve_https_on};
use super::webrtc::MediaEvent;

/// Everything a [`MediaBot`] needs.
#[derive(Clone, Debug)]
pub struct MediaBotConfig {
    /// The signaling side (its `tls` is also used for the negotiation endpoint when
    /// [`Self::media_tls`] is `None`).
    pub bot: BotConfig,
    /// The media host (its `negotiate_base` is set from [`Self::media_public_url`] or the
    /// bound address).
    pub media: MediaHostConfig,
    /// Where the negotiation endpoint listens (port 0 = any).
    pub media_listen: SocketAddr,
    /// Base URL peers use to reach the negotiation endpoint (NAT, proxy); default: bound.
    pub media_public_url: Option<String>,
    /// Certificate of the negotiation endpoint (default: self-signed for localhost).
    pub media_tls: Option<TlsIdentity>,
    /// Greeting, echo delay, recording directory.
    pub behaviour: BehaviourConfig,
    /// What to do with each kind of caller ([`DemoAction::Answer`] answers with media).
    pub policy: DemoHandlerConfig,
}

impl MediaBotConfig {
    /// The default behaviour on loopback: every caller kind answered with media (guests and
    /// unknown callers rejected as busy), greeting `media/greeting-16k.wav`, echo after
    /// 200 ms, recordings under `./recordings`.
    pub fn new(bot: BotConfig) -> Self {
        Self {
            bot,
            media: MediaHostConfig::default(),
            media_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            media_public_url: None,
            media_tls: None,
            behaviour: default_behaviour(),
            policy: DemoHandlerConfig {
                phone: DemoAction::Answer,
                ..DemoHandlerConfig::default()
            },
        }
    }
}

/// The default [`BehaviourConfig`]: greeting `media/greeting-16k.wav` (from `./media`, else
/// the crate's), echo after 200 ms, recordings under `./recordings`.
pub fn default_behaviour() -> BehaviourConfig {
    BehaviourConfig {
        greeting: Some(crate::emulator::media::media_dir().join("greeting-16k.wav")),
        echo_delay: Some(Duration::from_millis(200)),
        record_dir: Some(PathBuf::from("recordings")),
    }
}

/// Why a media bot could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaBotError {
    /// The signaling side.
    #[error("bot: {0}")]
    Bot(#[from] BotError),
    /// The media host (shard threads).
    #[error("media host: {0}")]
    Media(#[from] MediaHostError),
    /// The negotiation endpoint's certificate or socket.
    #[error("negotiation endpoint: {0}")]
    Tls(#[from] TlsError),
    /// The greeting could not be loaded.
    #[error("greeting: {0}")]
    Greeting(String),
    /// The local participant (`--device`) could not be set up.
    #[error("{0}")]
    Local(#[from] LocalError),
}

/// What became of one call's media, as the host reported it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaOutcome {
    /// The peer's offer was answered.
    pub negotiated: bool,
    /// ICE + DTLS connected.
    pub connected: bool,
    /// Why the session ended, once it has.
    pub ended: Option<EndReason>,
    /// The recording, once finished.
    pub recording: Option<RecordingSummary>,
    /// The session's final statistics (carried by its `Ended` event, taken after the
    /// transport closed). Boxed: they hold latency histograms (≈ 13 KiB).
    pub last_stats: Option<Box<SessionStats>>,
    /// DTMF events received.
    pub dtmf: u64,
    /// The local participant (a sound device) was in this call: its description.
    pub local: Option<String>,
    /// The local participant could not join this call, or failed during it: why.
    pub local_error: Option<String>,
}

/// Outcomes of ended calls kept for [`MediaBot::media_outcome`] / [`MediaBot::media_ended`]
/// (the oldest ended one is forgotten beyond this), so that a bot serving calls for months
/// holds a bounded table. Calls still running are always kept.
pub const KEPT_ENDED_OUTCOMES: usize = 1024;

#[derive(Debug, Default)]
struct Shared {
    outcomes: Mutex<Outcomes>,
    changed: Notify,
}

/// Every call's outcome, and the ended ones in the order they ended.
#[derive(Debug, Default)]
struct Outcomes {
    map: HashMap<CallId, MediaOutcome>,
    ended: VecDeque<CallId>,
}

impl Outcomes {
    fn get(&self, id: &CallId) -> Option<&MediaOutcome> {
        self.map.get(id)
    }

    /// Notes that `id` has just ended; forgets the oldest ended outcomes beyond
    /// [`KEPT_ENDED_OUTCOMES`].
    fn note_ended(&mut self, id: &CallId) {
        self.ended.push_back(id.clone());
        while self.ended.len() > KEPT_ENDED_OUTCOMES {
            if let Some(old) = self.ended.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Outcomes> {
        // Bookkeeping only: a panic while holding it leaves usable entries.
        self.outcomes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn outcome(&self, id: &CallId) -> OutcomeGuard<'_> {
        OutcomeGuard {
            map: self.lock(),
            id: id.clone(),
            changed: &self.changed,
        }
    }
}

/// Mutable access to one call's outcome; waiters are woken when it is dropped.
struct OutcomeGuard<'a> {
    map: MutexGuard<'a, Outcomes>,
    id: CallId,
    changed: &'a Notify,
}

impl std::ops::Deref for OutcomeGuard<'_> {
    type Target = MediaOutcome;
    fn deref(&self) -> &MediaOutcome {
        self.map.get(&self.id).unwrap_or(&EMPTY)
    }
}

impl std::ops::DerefMut for OutcomeGuard<'_> {
    fn deref_mut(&mut self) -> &mut MediaOutcome {
        self.map.map.entry(self.id.clone()).or_default()
    }
}

impl Drop for OutcomeGuard<'_> {
    fn drop(&mut self) {
        self.changed.notify_waiters();
    }
}

static EMPTY: MediaOutcome = MediaOutcome {
    negotiated: false,
    connected: false,
    ended: None,
    recording: None,
    last_stats: None,
    dtmf: 0,
    local: None,
    local_error: None,
};

/// A running media bot.
#[derive(Debug)]
pub struct MediaBot {
    bot: Arc<BotHandle>,
    host: MediaHost,
    server: Option<HttpsServer>,
    media_url: String,
    media_certificate: CertificateDer<'static>,
    shared: Arc<Shared>,
    events: JoinHandle<()>,
}

impl MediaBot {
    /// Starts the media host and its negotiation endpoint, then the bot. Must be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// [`MediaBotError`]: the greeting, the shard threads, the endpoint or the bot.
    pub async fn start(mut cfg: MediaBotConfig) -> Result<Self, MediaBotError> {
        let listener =
            std::net::TcpListener::bind(cfg.media_listen).map_err(|e| TlsError::Bind {
                addr: cfg.media_listen,
                reason: e.to_string(),
            })?;
        let bound = listener.local_addr().map_err(|e| TlsError::Bind {
            addr: cfg.media_listen,
            reason: e.to_string(),
        })?;
        let media_url = cfg
            .media_public_url
            .clone()
            .unwrap_or_else(|| format!("https://{bound}"))
            .trim_end_matches('/')
            .to_owned();
        cfg.media.negotiate_base = media_url.clone();
        let behaviour = CallBehaviour::load(&cfg.behaviour, cfg.media.backend, &cfg.media.encoder)
            .map_err(|e| MediaBotError::Greeting(e.to_string()))?;
        let tls = match (cfg.media_tls.take(), &cfg.bot.tls) {
            (Some(tls), _) => tls,
            (None, Some(tls)) => tls.clone(),
            (None, None) => TlsIdentity::self_signed_localhost()?,
        };
        let (host, events) = MediaHost::start(cfg.media.clone())?;
        let server = match serve_https_on(negotiation::router(host.clone()), listener, &tls).await {
            Ok(s) => s,
            Err(e) => {
                let _ = host.shutdown().await;
                return Err(e.into());
            }
        };
        let shared = Arc::new(Shared::default());
        let handler = MediaCallHandler::new(
            DemoHandler::new(cfg.policy.clone()),
            host.clone(),
            behaviour,
        );
        let bot = match Bot::start(cfg.bot.clone(), Arc::new(handler)).await {
            Ok(b) => Arc::new(b),
            Err(e) => {
                server.shutdown(Duration::ZERO).await;
                let _ = host.shutdown().await;
                return Err(e.into());
            }
        };
        let events = tokio::spawn(watch_media(
            events,
            Arc::downgrade(&bot),
            Arc::clone(&shared),
        ));
        tracing::info!(%media_url, "media negotiation endpoint listening");
        Ok(Self {
            bot,
            host,
            server: Some(server),
            media_url,
            media_certificate: tls.certificate().clone(),
            shared,
            events,
        })
    }

    /// The signaling side (webhook URL, certificate, call records, hang-up).
    pub fn bot(&self) -> &BotHandle {
        &self.bot
    }

    /// The media host (per-call stats, shard stats).
    pub fn host(&self) -> &MediaHost {
        &self.host
    }

    /// A reader of the bot's metrics (signaling counters, media sessions, shards) for
    /// [`crate::adapters::metrics::serve_metrics`]; after shutdown it reads the signaling
    /// counters as zero.
    pub fn metrics(&self) -> Arc<dyn Fn() -> MetricsSnapshot + Send + Sync> {
        let bot = Arc::downgrade(&self.bot);
        let host = self.host.clone();
        Arc::new(move || MetricsSnapshot {
            driver: bot.upgrade().map(|b| b.driver_stats()).unwrap_or_default(),
            host: host.host_stats(),
            shards: host.shard_stats(),
        })
    }

    /// Base URL of the negotiation endpoint (`negotiateUri`s are under it).
    pub fn media_url(&self) -> &str {
        &self.media_url
    }

    /// The negotiation endpoint's certificate (trust it in media processors).
    pub fn media_certificate(&self) -> &CertificateDer<'static> {
        &self.media_certificate
    }

    /// The call the local participant is in, if any.
    pub fn local_call(&self) -> Option<CallId> {
        self.host.local_call()
    }

    /// What became of `call_id`'s media so far.
    pub fn media_outcome(&self, call_id: &CallId) -> Option<MediaOutcome> {
        self.shared.lock().get(call_id).cloned()
    }

    /// Waits until `call_id`'s media session has ended (and its recording is finished), up
    /// to `timeout`; returns the outcome as it then is.
    pub async fn media_ended(&self, call_id: &CallId, timeout: Duration) -> Option<MediaOutcome> {
        let wait = async {
            loop {
                let changed = self.shared.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if let Some(o) = self.media_outcome(call_id)
                    && o.ended.is_some()
                {
                    return o;
                }
                changed.await;
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(o) => Some(o),
            Err(_) => self.media_outcome(call_id),
        }
    }

    /// Stops the webhook, ends every media session, stops the shard threads and the
    /// negotiation endpoint.
    pub async fn shutdown(mut self, grace: Duration) {
        if let Err(e) = self.host.shutdown().await {
            tracing::warn!(error = %e, "media host shutdown");
        }
        if let Some(server) = self.server.take() {
            server.shutdown(grace).await;
        }
        self.events.abort();
        let _ = (&mut self.events).await;
        match Arc::try_unwrap(self.bot) {
            Ok(bot) => bot.shutdown(grace).await,
            Err(_) => tracing::warn!("bot handle still shared at shutdown"),
        }
    }
}

/// Keeps each call's [`MediaOutcome`] and tells the call when its media fails or closes
/// before the call ended (the bot hangs up).
async fn watch_media(
    mut events: mpsc::Receiver<MediaHostEvent>,
    bot: std::sync::Weak<BotHandle>,
    shared: Arc<Shared>,
) {
    while let Some(MediaHostEvent { call_id, kind }) = events.recv().await {
        let mut hang_up = matches!(
            kind,
            SessionEvent::Expired | SessionEvent::NegotiationFailed(_)
        );
        {
            let mut o = shared.outcome(&call_id);
            match kind {
                SessionEvent::Negotiated => o.negotiated = true,
                SessionEvent::Media(MediaEvent::Connected) => o.connected = true,
                SessionEvent::Media(MediaEvent::Dtmf { .. }) => o.dtmf += 1,
                SessionEvent::Ended {
                    reason,
                    recording,
                    stats,
                } => {
                    // Ended by the media side, not by the call: the call is told.
                    hang_up = matches!(
                        reason,
                        EndReason::MediaFailed | EndReason::MediaClosed | EndReason::Deleted
                    );
                    let first = o.ended.is_none();
                    o.ended = Some(reason);
                    o.recording = recording;
                    // The session's final figures, whichever came first: the call's end or
                    // the peer's DELETE.
                    o.last_stats = stats;
                    if first {
                        o.map.note_ended(&call_id);
                    }
                }
                SessionEvent::LocalJoined(what) => o.local = Some(what),
                SessionEvent::LocalFailed(why) => o.local_error = Some(why),
                SessionEvent::LocalLeft { lost: true } => {
                    o.local_error = Some("the local participant failed during the call".into());
                }
                SessionEvent::LocalLeft { lost: false } => {}
                SessionEvent::Media(MediaEvent::Failed(_) | MediaEvent::Closed)
                | SessionEvent::NegotiationFailed(_)
                | SessionEvent::Expired => {}
            }
        }
        if hang_up && let Some(bot) = bot.upgrade() {
            tokio::spawn(async move {
                // The call may already be over (the driver then says so): nothing to do.
                let _ = bot.hang_up(&call_id).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bot that has served many calls keeps only the latest ended outcomes, and every
    /// running call's.
    #[test]
    fn ended_outcomes_are_bounded_and_running_ones_kept() {
        let shared = Shared::default();
        let running = CallId::from("running");
        shared.outcome(&running).connected = true;
        for i in 0..KEPT_ENDED_OUTCOMES + 10 {
            let id = CallId::from(format!("call-{i}").as_str());
            let mut o = shared.outcome(&id);
            o.ended = Some(EndReason::CallEnded);
            o.map.note_ended(&id);
        }
        let table = shared.lock();
        assert_eq!(table.map.len(), KEPT_ENDED_OUTCOMES + 1);
        assert!(table.get(&running).is_some_and(|o| o.connected));
        assert!(
            table.get(&CallId::from("call-9")).is_none(),
            "oldest forgotten"
        );
        assert!(table.get(&CallId::from("call-10")).is_some());
        let last = format!("call-{}", KEPT_ENDED_OUTCOMES + 9);
        assert!(table.get(&CallId::from(last.as_str())).is_some());
    }
}
