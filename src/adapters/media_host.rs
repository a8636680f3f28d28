//! The media host: turns an answered call into a media session, a negotiated session into a
//! call leg in a room on a shard, and a call's end into freed resources.
//!
//! ```text
//!  bot answers ── create_session(call, behaviour) ──▶ blob v1 (goes into appHostedMediaConfig)
//!  peer POSTs offer ── negotiate(id, token, sdp) ──▶ registry: may it? (401/404/409)
//!                                                     SDP check (400), then off-shard:
//!                                                     leg queues, Room + members, CallRoom
//!                                                     accept_offer ─▶ 201 + SDP answer
//!  MediaEvent::Connected ──▶ CallRoom handed to the ShardPool (the greeting starts now)
//!  DELETE / call ended / media failed or closed ── end_session ──▶ transport closed,
//!                                                     room removed (dropped off-shard)
//! ```
//!
//! Every step of a session is reported on the host's event channel as a [`MediaHostEvent`],
//! so the call's owner is told about DTMF, media failures and the end of the media.
//!
//! # Behaviour
//!
//! [`CallBehaviour`] says which members the room gets besides the caller's leg: a greeting
//! prompt (played once when media connects), an echo of the caller after a delay
//! ([`crate::media::echo::EchoDelay`] driving an application endpoint, see
//! [`super::call_room`]) and a recording ([`super::recording`]).
//!
//! # Threads and tasks per call
//!
//! One webrtc session (its own tasks and UDP socket), one egress task (rung by the room after
//! each tick), one event forwarder task, and, when recording, one writer task. All end when
//! the session ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::call_room::{CallCounters, CallRoom, CallRoomStats, Echo};
use super::recording::{Recording, RecordingFiles};
use super::shard::{ShardConfig, ShardError, ShardPool};
use super::webrtc::{
    Egress, LegQueues, MediaEvent, MediaSession, MediaTransport, MediaTransportConfig,
    TransportError, TransportStats, sdp,
};
use crate::graph::CallId;
use crate::media::codec::{CodecBackend, EncoderConfig};
use crate::media::echo::EchoDelay;
use crate::media::leg::CallLegConfig;
use crate::media::member::Member;
use crate::media::prompt::{PlayMode, Prompt, PromptError};
use crate::media::recorder::RecorderConfig;
use crate::media::room::{MemberId, Room, RoomConfig, RoomId};
use crate::session::blob::MediaSessionBlob;
use crate::session::registry::{
    NegotiationError, RegistryConfig, RegistryError, SessionPhase, SessionRegistry,
};
use crate::session::token::SessionId;

/// Member ids inside a call's room.
const LEG: MemberId = MemberId(1);
const GREETING: MemberId = MemberId(2);
const ECHO: MemberId = MemberId(3);
const RECORDER: MemberId = MemberId(4);

/// How a [`MediaHost`] runs.
#[derive(Clone, Debug)]
pub struct MediaHostConfig {
    /// Advertised base of `negotiateUri` (scheme, host, port as peers reach the negotiation
    /// endpoint, e.g. behind a NAT or a proxy): `https://bot.example.com:8445`.
    pub negotiate_base: String,
    /// Session expiry and table size.
    pub registry: RegistryConfig,
    /// WebRTC transport: host candidate addresses, public address/port for NAT, timeouts.
    pub transport: MediaTransportConfig,
    /// Shard threads.
    pub shards: ShardConfig,
    /// Slots in each call leg's packet queues (each way).
    pub leg_queue_capacity: usize,
    /// Largest SDP offer accepted by the negotiation endpoint, in bytes.
    pub max_sdp_bytes: usize,
    /// Encoder settings of every room.
    pub encoder: EncoderConfig,
    /// Codec implementation.
    pub backend: CodecBackend,
    /// Capacity of the event channel returned by [`MediaHost::start`]; events beyond it are
    /// dropped and counted ([`MediaHostStats::events_dropped`]).
    pub event_capacity: usize,
}

impl Default for MediaHostConfig {
    fn default() -> Self {
        Self {
            negotiate_base: "https://127.0.0.1:8445".into(),
            registry: RegistryConfig::default(),
            transport: MediaTransportConfig::default(),
            shards: ShardConfig::default(),
            leg_queue_capacity: 64,
            max_sdp_bytes: sdp::MAX_SDP_BYTES,
            encoder: EncoderConfig::default(),
            backend: CodecBackend::default(),
            event_capacity: 1024,
        }
    }
}

/// What the bot does with a call's media, set per call at [`MediaHost::create_session`].
///
/// Cheap to clone (the prompt is shared).
#[derive(Clone, Debug, Default)]
pub struct CallBehaviour {
    /// A prompt played once when media connects.
    pub greeting: Option<Arc<Prompt>>,
    /// Echo the caller back after this delay (rounded to 20 ms frames, at most 10 s).
    pub echo_delay: Option<Duration>,
    /// Record the call into this directory (created if missing): see [`RecordingFiles`].
    pub record_dir: Option<PathBuf>,
}

/// [`CallBehaviour`] as configured (paths instead of loaded prompts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BehaviourConfig {
    /// WAV file of the greeting.
    pub greeting: Option<PathBuf>,
    /// Echo delay.
    pub echo_delay: Option<Duration>,
    /// Recording directory.
    pub record_dir: Option<PathBuf>,
}

impl CallBehaviour {
    /// The default bot behaviour: greet with `greeting`, echo the caller after 200 ms, record
    /// into `record_dir`.
    ///
    /// # Errors
    /// The greeting could not be loaded.
    pub fn demo(greeting: &Path, record_dir: Option<PathBuf>) -> Result<Self, PromptError> {
        Self::load(
            &BehaviourConfig {
                greeting: Some(greeting.to_owned()),
                echo_delay: Some(Duration::from_millis(200)),
                record_dir,
            },
            CodecBackend::default(),
            &EncoderConfig::default(),
        )
    }

    /// Loads the greeting (decoded and pre-encoded once, shared by every call).
    ///
    /// # Errors
    /// The greeting could not be loaded.
    pub fn load(
        config: &BehaviourConfig,
        backend: CodecBackend,
        encoder: &EncoderConfig,
    ) -> Result<Self, PromptError> {
        let greeting = match &config.greeting {
            Some(path) => Some(Arc::new(Prompt::from_wav_file(path, backend, encoder)?)),
            None => None,
        };
        Ok(Self {
            greeting,
            echo_delay: config.echo_delay,
            record_dir: config.record_dir.clone(),
        })
    }
}

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
    /// The session ended and everything it held was released (the last event of a session).
    Ended {
        /// Why.
        reason: EndReason,
        /// Recording files, when the call was recorded.
        recording: Option<RecordingFiles>,
    },
}

/// Why a media session ended.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum EndReason {
    /// The peer sent DELETE.
    Deleted,
    /// The owner ended it ([`MediaHost::end_session`]: the call ended, either side).
    CallEnded,
    /// The media failed (ICE/DTLS failure, connect timeout).
    MediaFailed,
    /// The remote closed the media.
    MediaClosed,
    /// The host shut down.
    Shutdown,
}

/// Why the host could not do something for its owner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaHostError {
    /// The shard pool did not start.
    #[error("shard pool: {0}")]
    Shards(#[from] ShardError),
    /// The session table refused.
    #[error("session registry: {0}")]
    Registry(#[from] RegistryError),
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

/// The media host (cheap to clone; clones share everything).
#[derive(Clone, Debug)]
pub struct MediaHost {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: MediaHostConfig,
    transport: MediaTransport,
    pool: ShardPool<CallRoom>,
    state: Mutex<State>,
    events: mpsc::Sender<MediaHostEvent>,
    next_room: AtomicU64,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    created: AtomicU64,
    negotiated: AtomicU64,
    refused: AtomicU64,
    ended: AtomicU64,
    expired: AtomicU64,
    events_dropped: AtomicU64,
}

#[derive(Debug)]
struct State {
    registry: SessionRegistry,
    calls: HashMap<CallId, CallMedia>,
}

/// What the host holds for one call.
#[derive(Debug)]
struct CallMedia {
    session_id: SessionId,
    behaviour: CallBehaviour,
    media: Option<Arc<MediaSession>>,
    /// Built at negotiation, handed to the shards at `Connected`.
    pending_room: Option<CallRoom>,
    /// On a shard.
    room: Option<RoomId>,
    counters: Option<Arc<CallCounters>>,
    recording: Option<Recording>,
}

impl MediaHost {
    /// Starts the shard threads and the expiry sweeper. Returns the host and the channel of
    /// its events. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`MediaHostError::Shards`] when the shard threads cannot start.
    pub fn start(
        config: MediaHostConfig,
    ) -> Result<(Self, mpsc::Receiver<MediaHostEvent>), MediaHostError> {
        let pool = ShardPool::<CallRoom>::start(config.shards.clone())?;
        let (tx, rx) = mpsc::channel(config.event_capacity.max(1));
        let inner = Arc::new(Inner {
            transport: MediaTransport::new(config.transport.clone()),
            pool,
            state: Mutex::new(State {
                registry: SessionRegistry::new(config.registry),
                calls: HashMap::new(),
            }),
            events: tx,
            next_room: AtomicU64::new(1),
            counters: Counters::default(),
            config,
        });
        tokio::spawn(sweep(Arc::downgrade(&inner)));
        Ok((Self { inner }, rx))
    }

    /// The configuration.
    pub fn config(&self) -> &MediaHostConfig {
        &self.inner.config
    }

    /// Creates the media session of `call_id` (when the bot answers): the returned blob's
    /// [`MediaSessionBlob::to_json`] goes into the answer's `appHostedMediaConfig.blob`.
    ///
    /// # Errors
    /// [`MediaHostError::Registry`]: the call already has a live session, or the table is
    /// full.
    pub fn create_session(
        &self,
        call_id: &CallId,
        behaviour: CallBehaviour,
    ) -> Result<MediaSessionBlob, MediaHostError> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut state = self.inner.lock();
        let created = state.registry.create(now, call_id.clone())?;
        let expires_at = wall + created.expires.saturating_duration_since(now);
        let blob = MediaSessionBlob::new(
            &created.session_id,
            &created.token,
            &self.inner.config.negotiate_base,
            expires_at,
        );
        state.calls.insert(
            call_id.clone(),
            CallMedia {
                session_id: created.session_id,
                behaviour,
                media: None,
                pending_room: None,
                room: None,
                counters: None,
                recording: None,
            },
        );
        drop(state);
        self.inner.counters.created.fetch_add(1, Ordering::Relaxed);
        Ok(blob)
    }

    /// Handles an SDP offer for session `session_id` presented with bearer `token`; returns
    /// the SDP answer. Never panics on any input.
    ///
    /// # Errors
    /// A [`NegotiationError`] whose [`NegotiationError::status`] is the HTTP status.
    pub async fn negotiate(
        &self,
        session_id: &str,
        token: &str,
        offer: &str,
    ) -> Result<String, NegotiationError> {
        let result = self.try_negotiate(session_id, token, offer).await;
        let counter = match result {
            Ok(_) => &self.inner.counters.negotiated,
            Err(_) => &self.inner.counters.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    /// Handles `DELETE` of session `session_id` with bearer `token`: ends the session.
    ///
    /// # Errors
    /// [`NegotiationError::UnknownSession`] (404) for an unknown or already ended session,
    /// [`NegotiationError::Expired`] (404), [`NegotiationError::WrongToken`] (401).
    pub async fn delete(&self, session_id: &str, token: &str) -> Result<(), NegotiationError> {
        let call = {
            let id = SessionId::parse(session_id).ok_or(NegotiationError::UnknownSession)?;
            self.inner
                .lock()
                .registry
                .authorize_delete(Instant::now(), &id, token)
        };
        match call {
            Ok(call) => {
                self.inner.end(&call, EndReason::Deleted).await;
                Ok(())
            }
            Err(e) => {
                self.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Ends the media of `call_id` (the call ended, from either side): closes the transport,
    /// removes the room from its shard (it is dropped off-shard), finishes the recording.
    /// Returns false if the call had no session.
    pub async fn end_session(&self, call_id: &CallId) -> bool {
        self.inner.end(call_id, EndReason::CallEnded).await
    }

    /// Statistics of `call_id`'s session, while the host holds it.
    pub fn stats(&self, call_id: &CallId) -> Option<SessionStats> {
        let state = self.inner.lock();
        let call = state.calls.get(call_id)?;
        let transport = call.media.as_ref().map(|m| m.stats()).unwrap_or_default();
        Some(SessionStats {
            phase: state.registry.phase(&call.session_id),
            connect_time: transport.connect_time,
            room: call
                .counters
                .as_ref()
                .map(|c| c.snapshot())
                .unwrap_or_default(),
            transport,
        })
    }

    /// Host-wide counters.
    pub fn host_stats(&self) -> MediaHostStats {
        let c = &self.inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MediaHostStats {
            created: load(&c.created),
            negotiated: load(&c.negotiated),
            refused: load(&c.refused),
            ended: load(&c.ended),
            expired: load(&c.expired),
            events_dropped: load(&c.events_dropped),
            live_calls: self.inner.lock().calls.len(),
        }
    }

    /// The shard pool's per-shard statistics (tick costs, misses).
    pub fn shard_stats(&self) -> Vec<super::shard::ShardStats> {
        self.inner.pool.stats()
    }

    /// Ends every session, then stops the shard threads.
    ///
    /// # Errors
    /// A shard thread panicked.
    pub async fn shutdown(&self) -> Result<(), ShardError> {
        let calls: Vec<CallId> = self.inner.lock().calls.keys().cloned().collect();
        for call in calls {
            self.inner.end(&call, EndReason::Shutdown).await;
        }
        self.inner.pool.shutdown()
    }

    async fn try_negotiate(
        &self,
        session_id: &str,
        token: &str,
        offer: &str,
    ) -> Result<String, NegotiationError> {
        let id = SessionId::parse(session_id).ok_or(NegotiationError::UnknownSession)?;
        let (call_id, behaviour) = {
            let mut state = self.inner.lock();
            let call_id = state.registry.begin_offer(Instant::now(), &id, token)?;
            let behaviour = state
                .calls
                .get(&call_id)
                .map(|c| c.behaviour.clone())
                .unwrap_or_default();
            (call_id, behaviour)
        };
        match self.answer(&call_id, &behaviour, offer).await {
            Ok((answer, built)) => self
                .inner
                .install(&id, &call_id, built)
                .await
                .map(|()| answer),
            Err(e) => {
                self.inner.lock().registry.offer_refused(&id, &e);
                if e.spends_token() {
                    self.inner
                        .emit(&call_id, SessionEvent::NegotiationFailed(e.clone()));
                }
                Err(e)
            }
        }
    }

    /// Checks the offer, builds the call's room off-shard and answers the offer.
    async fn answer(
        &self,
        call_id: &CallId,
        behaviour: &CallBehaviour,
        offer: &str,
    ) -> Result<(String, Built), NegotiationError> {
        sdp::check(offer).map_err(from_transport)?;
        let config = &self.inner.config;
        let ssrc = rand::random::<u32>();
        let (signal, egress) =
            Egress::spawn().map_err(|e| NegotiationError::Unavailable(e.to_string()))?;
        let capacity = config.leg_queue_capacity.max(1);
        let (inbound_tx, inbound_rx) = rtrb::RingBuffer::new(capacity);
        let (outbound_tx, outbound_rx) = rtrb::RingBuffer::new(capacity);
        let (events_tx, events_rx) = mpsc::channel(64);
        let room_id = RoomId(self.inner.next_room.fetch_add(1, Ordering::Relaxed));
        let unavailable = |what: &str, e: &dyn std::fmt::Display| {
            NegotiationError::Unavailable(format!("{what}: {e}"))
        };
        let room_config = RoomConfig {
            max_members: 8,
            encoder: config.encoder,
            backend: config.backend,
            ..RoomConfig::default()
        };
        let mut room = Room::new(room_id, room_config).map_err(|e| unavailable("room", &e))?;
        let leg_config = CallLegConfig {
            ssrc,
            initial_seq: rand::random(),
            initial_timestamp: rand::random(),
            encoder: config.encoder,
            backend: config.backend,
            ..CallLegConfig::default()
        };
        let leg = Member::call_leg(LEG, &leg_config, inbound_rx, outbound_tx)
            .map_err(|e| unavailable("call leg", &e))?;
        let full = |_| NegotiationError::Unavailable("room refused a member".into());
        room.add_member(leg).map_err(full)?;
        if let Some(prompt) = &behaviour.greeting {
            room.add_member(Member::prompt(GREETING, Arc::clone(prompt), PlayMode::Once))
                .map_err(full)?;
        }
        let echo = match behaviour.echo_delay {
            Some(delay) => {
                let (member, audio) =
                    Member::app_endpoint(ECHO, 4).map_err(|e| unavailable("echo", &e))?;
                room.add_member(member).map_err(full)?;
                Some(Echo {
                    delay: EchoDelay::new(delay),
                    audio,
                })
            }
            None => None,
        };
        let recording = match &behaviour.record_dir {
            Some(dir) => {
                let (member, events) = Member::recorder(
                    RECORDER,
                    &RecorderConfig {
                        legs: vec![LEG],
                        mix: true,
                        capacity: 64,
                    },
                );
                room.add_member(member).map_err(full)?;
                let recording = Recording::start(dir, call_id, LEG, events)
                    .map_err(|e| unavailable("recording", &e))?;
                Some(recording)
            }
            None => None,
        };
        let (call_room, counters) = CallRoom::new(room, LEG, echo, signal);
        let leg_queues = LegQueues {
            inbound: inbound_tx,
            outbound: outbound_rx,
            events: events_tx,
            ssrc,
            egress,
        };
        let (answer, session) = match accept(&self.inner.transport, offer, leg_queues).await {
            Ok(ok) => ok,
            Err(e) => {
                if let Some(r) = recording {
                    r.finish().await;
                }
                return Err(from_transport(e));
            }
        };
        Ok((
            answer,
            Built {
                session: Arc::new(session),
                room: call_room,
                counters,
                recording,
                events: events_rx,
            },
        ))
    }
}

/// What negotiation built for a call, before it is installed.
struct Built {
    session: Arc<MediaSession>,
    room: CallRoom,
    counters: Arc<CallCounters>,
    recording: Option<Recording>,
    events: mpsc::Receiver<MediaEvent>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Bookkeeping only; a panic while holding it leaves consistent-enough maps.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, call_id: &CallId, kind: SessionEvent) {
        let event = MediaHostEvent {
            call_id: call_id.clone(),
            kind,
        };
        if self.events.try_send(event).is_err() {
            self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stores what negotiation built and starts forwarding its events. If the call ended
    /// while the offer was being answered, tears it down again.
    async fn install(
        self: &Arc<Self>,
        id: &SessionId,
        call_id: &CallId,
        built: Built,
    ) -> Result<(), NegotiationError> {
        let Built {
            session,
            room,
            counters,
            recording,
            events,
        } = built;
        let installed = {
            let mut state = self.lock();
            let State { registry, calls } = &mut *state;
            match calls.get_mut(call_id) {
                Some(call) if call.session_id == *id && registry.offer_accepted(id) => {
                    call.media = Some(Arc::clone(&session));
                    call.pending_room = Some(room);
                    call.counters = Some(counters);
                    call.recording = recording;
                    None
                }
                _ => Some((room, recording)),
            }
        };
        if let Some((room, recording)) = installed {
            session.close().await;
            drop(room);
            if let Some(r) = recording {
                r.finish().await;
            }
            return Err(NegotiationError::UnknownSession);
        }
        self.emit(call_id, SessionEvent::Negotiated);
        tokio::spawn(forward(Arc::downgrade(self), call_id.clone(), events));
        Ok(())
    }

    /// Media connected: the room goes to a shard (the greeting starts now).
    fn attach_room(&self, call_id: &CallId) {
        let mut state = self.lock();
        let Some(call) = state.calls.get_mut(call_id) else {
            return;
        };
        let Some(room) = call.pending_room.take() else {
            return;
        };
        let id = room.room().id();
        match self.pool.add_room(room) {
            Ok(_) => call.room = Some(id),
            Err(rejected) => {
                tracing::warn!(call = %call_id, error = %rejected.error, "no shard for call room");
                drop(state);
                drop(rejected);
            }
        }
    }

    /// Ends a call's session and frees what it holds. False if it had none.
    async fn end(&self, call_id: &CallId, reason: EndReason) -> bool {
        let call = {
            let mut state = self.lock();
            let Some(call) = state.calls.remove(call_id) else {
                return false;
            };
            state.registry.close(Instant::now(), &call.session_id);
            call
        };
        let negotiated = call.media.is_some();
        if let Some(media) = &call.media {
            media.close().await;
        }
        if let Some(room) = call.room
            && let Err(e) = self.pool.remove_room(room)
        {
            tracing::warn!(call = %call_id, error = %e, "could not remove call room");
        }
        drop(call.pending_room);
        let recording = match call.recording {
            Some(r) => r.finish().await,
            None => None,
        };
        if negotiated {
            self.counters.ended.fetch_add(1, Ordering::Relaxed);
        }
        self.emit(call_id, SessionEvent::Ended { reason, recording });
        true
    }
}

/// Forwards one session's transport events to the owner and reacts to them.
async fn forward(host: Weak<Inner>, call_id: CallId, mut events: mpsc::Receiver<MediaEvent>) {
    while let Some(event) = events.recv().await {
        let Some(inner) = host.upgrade() else {
            return;
        };
        inner.emit(&call_id, SessionEvent::Media(event));
        match event {
            MediaEvent::Connected => inner.attach_room(&call_id),
            MediaEvent::Dtmf { .. } => {}
            MediaEvent::Failed(_) => {
                inner.end(&call_id, EndReason::MediaFailed).await;
                return;
            }
            MediaEvent::Closed => {
                inner.end(&call_id, EndReason::MediaClosed).await;
                return;
            }
        }
    }
}

/// Expires sessions that were never negotiated, until the host is dropped.
async fn sweep(host: Weak<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = host.upgrade() else {
            return;
        };
        let expired = inner.lock().registry.expire(Instant::now());
        for e in expired {
            let removed = {
                let mut state = inner.lock();
                match state.calls.get(&e.call_id) {
                    Some(c) if c.session_id == e.session_id => state.calls.remove(&e.call_id),
                    _ => None,
                }
            };
            drop(removed);
            inner.counters.expired.fetch_add(1, Ordering::Relaxed);
            inner.emit(&e.call_id, SessionEvent::Expired);
        }
    }
}

/// [`MediaTransport::accept_offer`] on a blocking-pool thread of the current runtime.
///
/// The transport's future is not `Send` (it holds a reference to an `rtrb::Consumer`, which
/// is not `Sync`, across an await), so it cannot run inside an axum handler's future. Driving
/// it with `Handle::block_on` on a blocking-pool thread keeps it off the handler's future;
/// the tasks it spawns run on the runtime as usual. Remove once the transport's future is
/// `Send`.
async fn accept(
    transport: &MediaTransport,
    offer: &str,
    leg: LegQueues,
) -> Result<(String, MediaSession), TransportError> {
    let transport = transport.clone();
    let offer = offer.to_owned();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(transport.accept_offer(&offer, leg)))
        .await
        .unwrap_or_else(|e| Err(TransportError::Setup(format!("accept task: {e}"))))
}

fn from_transport(e: TransportError) -> NegotiationError {
    match e {
        TransportError::MalformedSdp(why) => NegotiationError::MalformedSdp(why),
        TransportError::NoAudio => NegotiationError::NoAudio,
        TransportError::NoOpus => NegotiationError::NoOpus,
        other => NegotiationError::Unavailable(other.to_string()),
    }
}
