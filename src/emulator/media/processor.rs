//! [`MediaProcessor`]: joins a bot's app-hosted media the way Teams' media processor does —
//! reads the blob from the bot's answer, negotiates WHIP-style, and connects the call's room
//! (the emulated participants) to the bot over real WebRTC.
//!
//! ```text
//!  join(call, blob, participants)
//!    parse blob v1 ──▶ LegQueues + Egress ──▶ CallRoom on the shard pool (participants held
//!      silent) ──▶ create_offer ──▶ POST negotiateUri (Content-Type: application/sdp,
//!      Authorization: Bearer <blob token>) ──▶ 201 + answer + Location ──▶ complete(answer)
//!      ──▶ wait for Connected ──▶ participants start speaking
//!  leave()
//!    stop the room (last drain) ──▶ DELETE Location (same bearer) ──▶ close the session
//! ```
//!
//! The bot's certificate is trusted through [`crate::adapters::tls::https_client_builder`]
//! (its self-signed certificate added with [`MediaProcessorConfig::trusted_certs`] or
//! [`MediaProcessor::trust`]); verification stays on unless
//! [`MediaProcessorConfig::accept_invalid_certs`] says otherwise.
//!
//! Times reported: **negotiation** (the POST's round trip) and **media connect** (from the
//! start of the offer — ICE gathering, POST, answer applied — to ICE + DTLS connected; the
//! local work before it, loading speech and building the room, is not counted).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rustls::pki_types::CertificateDer;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::adapters::shard::{ShardConfig, ShardPool, ShardStats};
use crate::adapters::tls::https_client_builder;
use crate::adapters::webrtc::{
    Egress, LegQueues, MediaEvent, MediaSession, MediaTransport, MediaTransportConfig,
    PendingOffer, TransportError, TransportStats,
};
use crate::media::room::RoomId;
use crate::session::blob::MediaSessionBlob;

use super::call_room::{BotLegQueues, BotPlayout, CallRoom, CallRoomConfig, MediaPool};
use super::error::MediaProcError;
use super::participant::ParticipantReport;
use super::round_trip::{RoundTrip, round_trip};
use super::speech::ParticipantMedia;

/// Longest error text kept from a refusing negotiation endpoint.
const MAX_REASON: usize = 300;

/// How a [`MediaProcessor`] runs.
#[derive(Clone, Debug)]
pub struct MediaProcessorConfig {
    /// WebRTC: host candidate addresses (loopback by default), timeouts.
    pub transport: MediaTransportConfig,
    /// The emulator's shard pool (default: one shard thread at normal priority, so the
    /// emulator does not compete with the bot's real-time shards).
    pub shards: ShardConfig,
    /// Per-call room settings (how much audio each participant keeps).
    pub room: CallRoomConfig,
    /// Slots in the bot leg's packet queues, each way.
    pub leg_queue_capacity: usize,
    /// Certificates trusted for the bot's negotiation endpoint (its self-signed one).
    pub trusted_certs: Vec<CertificateDer<'static>>,
    /// Accept any certificate from the negotiation endpoint (development only).
    pub accept_invalid_certs: bool,
    /// Timeout of each HTTP request (POST offer, DELETE).
    pub http_timeout: Duration,
}

impl Default for MediaProcessorConfig {
    fn default() -> Self {
        Self {
            transport: MediaTransportConfig::default(),
            shards: ShardConfig {
                shards: 1,
                rt_priority: None,
                ..ShardConfig::default()
            },
            room: CallRoomConfig::default(),
            leg_queue_capacity: 64,
            trusted_certs: Vec::new(),
            accept_invalid_certs: false,
            http_timeout: Duration::from_secs(10),
        }
    }
}

/// How a media leg ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegEnd {
    /// The bot closed the media session (its `DELETE`, its call ended, or it closed the peer
    /// connection).
    BotClosed,
    /// ICE/DTLS failed or timed out after connecting.
    Failed(String),
    /// [`MediaLeg::leave`] ended it (the emulator's side: caller hung up, call terminated).
    Left,
}

/// What one call's media processor measured.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaReport {
    /// The call.
    pub call_id: String,
    /// Round trip of the POST of the offer.
    pub negotiation_time: Duration,
    /// From the start of the offer to ICE + DTLS connected.
    pub connect_time: Duration,
    /// What each participant sent and heard.
    pub participants: Vec<ParticipantReport>,
    /// How the bot's packets were played out (concealed frames on the bot → emulator path).
    pub bot: BotPlayout,
    /// The WebRTC session's counters (`packets_in` from the bot, `packets_out` to it).
    pub transport: TransportStats,
    /// How the leg ended, once it has.
    pub end: Option<LegEnd>,
    /// Status of the `DELETE` sent by [`MediaLeg::leave`] (none when the bot had already
    /// ended the session, or before leaving).
    pub delete_status: Option<u16>,
}

impl MediaReport {
    /// RTP packets received from the bot.
    pub fn packets_in(&self) -> u64 {
        self.transport.packets_in
    }

    /// RTP packets sent to the bot.
    pub fn packets_out(&self) -> u64 {
        self.transport.packets_out
    }

    /// Frames of the bot's audio concealed by the emulator's room (PLC, FEC not counted).
    pub fn concealed_frames(&self) -> u64 {
        self.bot.concealed
    }

    /// The participant named `name`.
    pub fn participant(&self, name: &str) -> Option<&ParticipantReport> {
        self.participants.iter().find(|p| p.name == name)
    }

    /// Where participant `index`'s own speech came back (an echo bot), searched up to
    /// `max_delay` (see [`round_trip`]).
    pub fn round_trip(&self, index: usize, max_delay: Duration) -> Option<RoundTrip> {
        let p = self.participants.get(index)?;
        round_trip(&p.sent, &p.heard, Duration::ZERO, max_delay)
    }
}

/// The emulator's media processor: a shard pool of call rooms and a WebRTC offerer.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaProcessor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: MediaProcessorConfig,
    pool: Arc<MediaPool>,
    transport: MediaTransport,
    /// Trusted certificates and the client built from them.
    http: Mutex<(Vec<CertificateDer<'static>>, reqwest::Client)>,
    next_room: AtomicU64,
}

impl MediaProcessor {
    /// Starts the shard pool and prepares the HTTPS client.
    ///
    /// # Errors
    /// [`MediaProcError::Shard`] when the shard threads cannot start, [`MediaProcError::Tls`]
    /// for an unusable certificate.
    pub fn start(config: MediaProcessorConfig) -> Result<Self, MediaProcError> {
        let client = build_client(&config, &config.trusted_certs)?;
        let pool = Arc::new(ShardPool::start(config.shards.clone())?);
        Ok(Self {
            inner: Arc::new(Inner {
                transport: MediaTransport::new(config.transport.clone()),
                http: Mutex::new((config.trusted_certs.clone(), client)),
                pool,
                next_room: AtomicU64::new(1),
                config,
            }),
        })
    }

    /// Trusts one more certificate for negotiation endpoints from now on.
    ///
    /// # Errors
    /// [`MediaProcError::Tls`] when the certificate cannot be used.
    pub fn trust(&self, cert: CertificateDer<'static>) -> Result<(), MediaProcError> {
        let mut http = self
            .inner
            .http
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if http.0.contains(&cert) {
            return Ok(());
        }
        let mut certs = http.0.clone();
        certs.push(cert);
        let client = build_client(&self.inner.config, &certs)?;
        *http = (certs, client);
        Ok(())
    }

    /// Joins call `call_id`'s media: parses `blob_json` (the answer's
    /// `appHostedMediaConfig.blob`), offers, POSTs the offer to `negotiateUri` with the
    /// blob's bearer token, applies the answer, waits for ICE + DTLS, then starts the call's
    /// room with `participants` streaming their speech. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`MediaProcError::Blob`], [`MediaProcError::NoParticipants`],
    /// [`MediaProcError::TooManyParticipants`], [`MediaProcError::Transport`],
    /// [`MediaProcError::Negotiation`] (refused or unreachable),
    /// [`MediaProcError::NotConnected`], and the room's errors. After a successful POST a
    /// failure sends the `DELETE` before returning.
    pub async fn join(
        &self,
        call_id: &str,
        blob_json: &str,
        participants: Vec<ParticipantMedia>,
    ) -> Result<MediaLeg, MediaProcError> {
        let blob =
            MediaSessionBlob::parse(blob_json).map_err(|e| MediaProcError::Blob(e.to_string()))?;
        if participants.is_empty() {
            return Err(MediaProcError::NoParticipants);
        }
        if participants.len() > super::call_room::MAX_PARTICIPANTS {
            return Err(MediaProcError::TooManyParticipants(participants.len()));
        }
        let client = self.client();
        let token = blob.token.as_str().to_owned();
        // Background media threads: the emulator is a load generator here, its packet work
        // must not interrupt the bot's shards (in-process `load`).
        let (signal, egress) =
            Egress::spawn_background().map_err(|e| MediaProcError::Transport(e.to_string()))?;
        let ssrc: u32 = rand::random();
        let (leg, mut ends) = LegQueues::new(self.inner.config.leg_queue_capacity, ssrc, egress);
        // The room runs (participants held silent) before the offer, so that it hears the bot
        // from its first packet — a greeting starts as soon as the bot sees media connect.
        let room_id = RoomId(self.inner.next_room.fetch_add(1, Ordering::Relaxed));
        let bot = BotLegQueues {
            input: ends.inbound,
            output: ends.outbound,
            ssrc,
        };
        let room = CallRoom::start(
            Arc::clone(&self.inner.pool),
            room_id,
            &participants,
            bot,
            &self.inner.config.room,
            Some(signal),
            true,
        )?;
        let started = Instant::now();
        let (offer, pending) = create_offer(&self.inner.transport, leg)
            .await
            .map_err(|e| MediaProcError::Transport(e.to_string()))?;
        let posted = Instant::now();
        let (answer, location) = post_offer(&client, &blob.negotiate_uri, &token, offer).await?;
        let negotiation_time = posted.elapsed();
        let session = match complete(pending, answer).await {
            Ok(s) => s,
            Err(e) => {
                delete(&client, &location, &token).await;
                return Err(MediaProcError::Transport(e.to_string()));
            }
        };
        let wait = self.inner.config.transport.connect_timeout + Duration::from_secs(1);
        let connected = tokio::time::timeout(wait, async {
            loop {
                match ends.events.recv().await {
                    Some(MediaEvent::Connected) => return Ok(()),
                    Some(MediaEvent::Failed(r)) => return Err(r.to_string()),
                    Some(MediaEvent::Closed) | None => return Err("closed".to_owned()),
                    Some(MediaEvent::Dtmf { .. }) => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()));
        if let Err(reason) = connected {
            session.close().await;
            delete(&client, &location, &token).await;
            return Err(MediaProcError::NotConnected(reason));
        }
        let connect_time = started.elapsed();
        room.release();
        let (end_tx, end_rx) = watch::channel(None);
        let mut events = ends.events;
        let watcher = tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let end = match ev {
                    MediaEvent::Closed => LegEnd::BotClosed,
                    MediaEvent::Failed(r) => LegEnd::Failed(r.to_string()),
                    MediaEvent::Connected | MediaEvent::Dtmf { .. } => continue,
                };
                let _ = end_tx.send(Some(end));
                break;
            }
        });
        Ok(MediaLeg {
            call_id: call_id.to_owned(),
            session,
            room: Some(room),
            client,
            location,
            token,
            negotiation_time,
            connect_time,
            end: end_rx,
            watcher,
        })
    }

    /// A snapshot of the emulator's shard counters (ticks, deadline misses, tick cost).
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.inner.pool.stats()
    }

    /// Stops the shard threads (rooms still on them are dropped). Idempotent.
    ///
    /// # Errors
    /// [`MediaProcError::Shard`] when a shard thread had panicked.
    pub fn shutdown(&self) -> Result<(), MediaProcError> {
        Ok(self.inner.pool.shutdown()?)
    }

    fn client(&self) -> reqwest::Client {
        self.inner
            .http
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone()
    }
}

/// One call's media, joined: the WebRTC session to the bot and the room of participants.
///
/// Dropping it closes the session and removes the room without a `DELETE`; call
/// [`MediaLeg::leave`] to end it properly and get the final report.
#[derive(Debug)]
pub struct MediaLeg {
    call_id: String,
    session: MediaSession,
    room: Option<CallRoom>,
    client: reqwest::Client,
    location: String,
    token: String,
    negotiation_time: Duration,
    connect_time: Duration,
    end: watch::Receiver<Option<LegEnd>>,
    watcher: JoinHandle<()>,
}

impl MediaLeg {
    /// The call.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The session resource (`Location` of the 201), absolute.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Round trip of the POST of the offer.
    pub fn negotiation_time(&self) -> Duration {
        self.negotiation_time
    }

    /// From the start of the offer to ICE + DTLS connected.
    pub fn connect_time(&self) -> Duration {
        self.connect_time
    }

    /// How the leg ended, if the bot's side has ended it.
    pub fn end(&self) -> Option<LegEnd> {
        self.end.borrow().clone()
    }

    /// Waits until the bot's side ends the media session (closed or failed).
    pub async fn ended(&self) -> LegEnd {
        let mut rx = self.end.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(end) => end.clone().unwrap_or(LegEnd::BotClosed),
            // The watcher is gone without a word: the session's events ended.
            Err(_) => LegEnd::BotClosed,
        }
    }

    /// How long the longest participant's script (lead silence + speech) lasts.
    pub fn script_duration(&self) -> Duration {
        self.room
            .as_ref()
            .map(CallRoom::script_duration)
            .unwrap_or_default()
    }

    /// A snapshot of what was sent, heard and counted so far (clones the audio).
    pub fn report(&self) -> MediaReport {
        let room = self.room.as_ref().map(CallRoom::report).unwrap_or_default();
        MediaReport {
            call_id: self.call_id.clone(),
            negotiation_time: self.negotiation_time,
            connect_time: self.connect_time,
            participants: room.participants,
            bot: room.bot,
            transport: self.session.stats(),
            end: self.end(),
            delete_status: None,
        }
    }

    /// Ends the media: stops the room (after a last drain), sends `DELETE` to the session
    /// resource with the blob's token (unless the bot already closed it), closes the WebRTC
    /// session and returns the final report.
    pub async fn leave(mut self) -> MediaReport {
        let room = match self.room.take() {
            Some(room) => room.stop().await,
            None => Default::default(),
        };
        let end = self.end();
        let delete_status = if end.is_none() {
            delete(&self.client, &self.location, &self.token).await
        } else {
            None
        };
        self.session.close().await;
        self.watcher.abort();
        MediaReport {
            call_id: self.call_id.clone(),
            negotiation_time: self.negotiation_time,
            connect_time: self.connect_time,
            participants: room.participants,
            bot: room.bot,
            transport: self.session.stats(),
            end: Some(end.unwrap_or(LegEnd::Left)),
            delete_status,
        }
    }
}

impl Drop for MediaLeg {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// [`MediaTransport::create_offer`] on a blocking-pool thread of the current runtime: the
/// transport's futures are not `Send` (they hold a reference to an `rtrb::Consumer` across an
/// await), and [`MediaProcessor::join`] must be, to be spawned. The tasks the transport
/// spawns run on the runtime as usual. (The same workaround as the media host's.)
async fn create_offer(
    transport: &MediaTransport,
    leg: LegQueues,
) -> Result<(String, PendingOffer), TransportError> {
    let transport = transport.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(transport.create_offer(leg)))
        .await
        .unwrap_or_else(|e| Err(TransportError::Setup(format!("offer task: {e}"))))
}

/// [`PendingOffer::complete`] on a blocking-pool thread (see [`create_offer`]).
async fn complete(pending: PendingOffer, answer: String) -> Result<MediaSession, TransportError> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(pending.complete(&answer)))
        .await
        .unwrap_or_else(|e| Err(TransportError::Setup(format!("answer task: {e}"))))
}

/// [`MediaProcessor::join`] and [`MediaLeg::leave`] can be spawned.
fn _assert_send(mp: MediaProcessor, leg: MediaLeg) {
    fn send<T: Send>(_: T) {}
    send(mp.join("", "", Vec::new()));
    send(leg.leave());
}

/// POSTs the offer; returns the answer SDP and the absolute session URL.
async fn post_offer(
    client: &reqwest::Client,
    uri: &str,
    token: &str,
    offer: String,
) -> Result<(String, String), MediaProcError> {
    let fail = |status: Option<u16>, reason: String| MediaProcError::Negotiation {
        uri: uri.to_owned(),
        status,
        reason,
    };
    let base = url::Url::parse(uri).map_err(|e| fail(None, format!("bad negotiateUri: {e}")))?;
    if base.scheme() != "https" {
        return Err(fail(None, "negotiateUri must be https".into()));
    }
    let response = client
        .post(base.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/sdp")
        .bearer_auth(token)
        .body(offer)
        .send()
        .await
        .map_err(|e| fail(None, error_chain(&e)))?;
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .text()
        .await
        .map_err(|e| fail(Some(status.as_u16()), error_chain(&e)))?;
    if status != StatusCode::CREATED {
        return Err(fail(Some(status.as_u16()), truncate(&body)));
    }
    let Some(location) = location else {
        return Err(fail(Some(201), "201 without Location".into()));
    };
    let location = base
        .join(&location)
        .map_err(|e| fail(Some(201), format!("bad Location {location:?}: {e}")))?;
    Ok((body, location.to_string()))
}

/// DELETEs the session resource; returns the status, or `None` when unreachable.
async fn delete(client: &reqwest::Client, location: &str, token: &str) -> Option<u16> {
    match client.delete(location).bearer_auth(token).send().await {
        Ok(r) => Some(r.status().as_u16()),
        Err(e) => {
            tracing::debug!(location, error = %error_chain(&e), "media session DELETE failed");
            None
        }
    }
}

fn build_client(
    config: &MediaProcessorConfig,
    certs: &[CertificateDer<'static>],
) -> Result<reqwest::Client, MediaProcError> {
    https_client_builder(certs)
        .map_err(|e| MediaProcError::Tls(e.to_string()))?
        .danger_accept_invalid_certs(config.accept_invalid_certs)
        .timeout(config.http_timeout)
        .build()
        .map_err(|e| MediaProcError::Tls(e.to_string()))
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_REASON) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The error and its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
