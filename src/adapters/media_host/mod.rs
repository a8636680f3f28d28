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
//! ([`crate::media::echo::EchoMember`], see [`super::call_room`]) and a recording
//! ([`super::recording`]).
//!
//! # The local participant
//!
//! With [`MediaHostConfig::local`] (a sound device: `--device`), the person at this machine
//! joins one call at a time: the oldest connected call while it is free, moving on to the
//! next oldest when that call ends (the `seat` submodule;
//! policy in [`crate::adapters::local_participant`]).
//!
//! # Threads and tasks per call
//!
//! One webrtc session (its own tasks and UDP socket), one egress task and its socket pair
//! (rung by the call's room after each tick: the egress is per call, not per shard, so the
//! room needs no knowledge of where it was placed), one event forwarder task, and, when
//! recording, a place on the host's one recording writer thread
//! ([`super::recording::WriterThread`], started with the host). All end when
//! the session ends (`tests/media-session-cleanup.rs` counts fds and threads). The session's
//! egress, driver and reader tasks run on one of the process's media threads (one per core,
//! started with the first session and kept for the life of the process; see
//! [`crate::adapters::webrtc`]).
//!
//! The transport's `accept_offer` future is not `Send` yet, so it runs on a blocking-pool
//! thread (see `build::accept`); the rest of negotiation runs in the handler's task.

mod build;
mod config;
mod event;
mod seat;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use self::build::{Built, RECORDING_POLL, Recording};
pub use self::config::{BehaviourConfig, CallBehaviour, MediaHostConfig};
pub use self::event::{EndReason, MediaHostEvent, MediaHostStats, SessionEvent, SessionStats};
use self::seat::Seat;
use super::call_room::{CallCounters, CallRoom};
use super::memory_trim::{self, TrimPolicy};
use super::shard::{ShardError, ShardPool, ShardStats};
use super::webrtc::{MediaEvent, MediaSession, MediaTransport};
use crate::adapters::recording::WriterThread;
use crate::graph::CallId;
use crate::media::room::RoomId;
use crate::session::blob::MediaSessionBlob;
use crate::session::registry::{NegotiationError, RegistryError, SessionRegistry};
use crate::session::token::SessionId;

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
    /// The recordings' writer thread did not start.
    #[error("recording writer: {0}")]
    Recording(#[from] crate::adapters::recording::RecordingError),
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
    /// Writes every call's recording (one thread for the host).
    recorder: WriterThread,
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
    /// Where the local participant is.
    seat: Seat,
    /// Order in which rooms went to the shards (the local participant takes the oldest).
    next_connected: u64,
    /// When to give the heap that ended calls freed back to the OS (see `sweep`).
    trim: TrimPolicy,
}

/// What the host holds for one call.
#[derive(Debug)]
struct CallMedia {
    session_id: SessionId,
    behaviour: CallBehaviour,
    media: Option<Arc<MediaSession>>,
    /// Built at negotiation, handed to the shards at `Connected`. Boxed: a room is ≈ 13 KiB
    /// and the calls table keeps its high-water capacity.
    pending_room: Option<Box<CallRoom>>,
    /// On a shard.
    room: Option<RoomId>,
    /// When the room went to a shard (an order, not a time).
    connected: Option<u64>,
    counters: Option<Arc<CallCounters>>,
    recording: Option<Recording>,
}

impl CallMedia {
    /// The session's statistics now, with `phase` from the registry.
    fn stats(&self, phase: Option<crate::session::registry::SessionPhase>) -> SessionStats {
        let transport = self.media.as_ref().map(|m| m.stats()).unwrap_or_default();
        SessionStats {
            phase,
            connect_time: transport.connect_time,
            room: self
                .counters
                .as_ref()
                .map(|c| c.snapshot())
                .unwrap_or_default(),
            transport,
        }
    }
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
        let recorder = WriterThread::start(RECORDING_POLL)?;
        let (tx, rx) = mpsc::channel(config.event_capacity.max(1));
        let inner = Arc::new(Inner {
            transport: MediaTransport::new(config.transport.clone()),
            pool,
            recorder,
            state: Mutex::new(State {
                registry: SessionRegistry::new(config.registry),
                calls: HashMap::new(),
                seat: Seat::Free,
                next_connected: 0,
                trim: TrimPolicy::default(),
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
                connected: None,
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
        self.negotiate_bytes(session_id, token, offer.as_bytes())
            .await
    }

    /// [`Self::negotiate`] for a body as received: the session and token are checked first,
    /// then a body that is not UTF-8 is [`NegotiationError::MalformedSdp`] (and spends the
    /// token, like any other unusable offer).
    ///
    /// # Errors
    /// A [`NegotiationError`] whose [`NegotiationError::status`] is the HTTP status.
    pub async fn negotiate_bytes(
        &self,
        session_id: &str,
        token: &str,
        offer: &[u8],
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
                self.inner.end(&call, None, EndReason::Deleted).await;
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
        self.inner.end(call_id, None, EndReason::CallEnded).await
    }

    /// Statistics of `call_id`'s session, while the host holds it.
    pub fn stats(&self, call_id: &CallId) -> Option<SessionStats> {
        let state = self.inner.lock();
        let call = state.calls.get(call_id)?;
        Some(call.stats(state.registry.phase(&call.session_id)))
    }

    /// The call the local participant ([`MediaHostConfig::local`]) is in, if any.
    pub fn local_call(&self) -> Option<CallId> {
        self.inner.local_call()
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
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.inner.pool.stats()
    }

    /// Ends every session, then stops the shard threads.
    ///
    /// # Errors
    /// A shard thread panicked.
    pub async fn shutdown(&self) -> Result<(), ShardError> {
        let calls: Vec<CallId> = self.inner.lock().calls.keys().cloned().collect();
        for call in calls {
            self.inner.end(&call, None, EndReason::Shutdown).await;
        }
        self.inner.pool.shutdown()
    }

    async fn try_negotiate(
        &self,
        session_id: &str,
        token: &str,
        offer: &[u8],
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
        let answered = match std::str::from_utf8(offer) {
            Ok(offer) => {
                let room = RoomId(self.inner.next_room.fetch_add(1, Ordering::Relaxed));
                let inner = &*self.inner;
                build::answer(
                    &inner.config,
                    &inner.transport,
                    &inner.recorder,
                    room,
                    &call_id,
                    &behaviour,
                    offer,
                )
                .await
            }
            Err(_) => Err(NegotiationError::MalformedSdp("body is not UTF-8".into())),
        };
        match answered {
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
            let State {
                registry, calls, ..
            } = &mut *state;
            match calls.get_mut(call_id) {
                Some(call) if call.session_id == *id && registry.offer_accepted(id) => {
                    call.media = Some(Arc::clone(&session));
                    call.pending_room = Some(Box::new(room));
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
        tokio::spawn(forward(
            Arc::downgrade(self),
            call_id.clone(),
            id.clone(),
            events,
        ));
        Ok(())
    }

    /// Media connected: the room goes to a shard (the greeting starts now).
    fn attach_room(&self, call_id: &CallId, session: &SessionId) {
        let mut state = self.lock();
        let order = state.next_connected;
        let Some(call) = state.calls.get_mut(call_id) else {
            return;
        };
        if call.session_id != *session {
            return;
        }
        let Some(room) = call.pending_room.take() else {
            return;
        };
        let id = room.room().id();
        match self.pool.add_room(*room) {
            Ok(_) => {
                call.room = Some(id);
                call.connected = Some(order);
                state.next_connected += 1;
            }
            Err(rejected) => {
                tracing::warn!(call = %call_id, error = %rejected.error, "no shard for call room");
                drop(state);
                drop(rejected);
            }
        }
    }

    /// True while `session` is the session the host holds for `call_id` (it has not ended).
    fn is_current(&self, call_id: &CallId, session: &SessionId) -> bool {
        self.lock()
            .calls
            .get(call_id)
            .is_some_and(|c| c.session_id == *session)
    }

    /// Ends a call's session and frees what it holds (only session `only`, when given).
    /// False if it had none. The call is forgotten before anything is awaited, so events of
    /// the session that arrive while it is torn down are not forwarded: `Ended` is the last.
    async fn end(
        self: &Arc<Self>,
        call_id: &CallId,
        only: Option<&SessionId>,
        reason: EndReason,
    ) -> bool {
        let (call, phase) = {
            let mut state = self.lock();
            if only.is_some_and(|s| state.calls.get(call_id).is_none_or(|c| c.session_id != *s)) {
                return false;
            }
            let Some(call) = state.calls.remove(call_id) else {
                return false;
            };
            state.registry.close(Instant::now(), &call.session_id);
            let phase = state.registry.phase(&call.session_id);
            (call, phase)
        };
        let local = self.unseat_local(call_id);
        let negotiated = call.media.is_some();
        if let Some(media) = &call.media {
            media.close().await;
        }
        // Final figures, once the transport has stopped counting.
        let stats =
            (call.media.is_some() || call.counters.is_some()).then(|| Box::new(call.stats(phase)));
        if let Some(room) = call.room
            && let Err(e) = self.pool.remove_room(room)
        {
            tracing::warn!(call = %call_id, error = %e, "could not remove call room");
        }
        drop(call.pending_room);
        if local.is_some() {
            drop(local);
            if reason != EndReason::Shutdown {
                // Another connected call, if any, gets the local participant.
                let inner = Arc::clone(self);
                tokio::spawn(async move { inner.seat_local().await });
            }
        }
        let recording = match call.recording {
            Some(r) => r.finish().await,
            None => None,
        };
        if negotiated {
            self.counters.ended.fetch_add(1, Ordering::Relaxed);
        }
        self.lock().trim.call_ended(Instant::now());
        self.emit(
            call_id,
            SessionEvent::Ended {
                reason,
                recording,
                stats,
            },
        );
        true
    }
}

/// Forwards one session's transport events to the owner and reacts to them.
///
/// Events of a session the host no longer holds (ended locally, or replaced) are dropped.
async fn forward(
    host: Weak<Inner>,
    call_id: CallId,
    session: SessionId,
    mut events: mpsc::Receiver<MediaEvent>,
) {
    while let Some(event) = events.recv().await {
        let Some(inner) = host.upgrade() else {
            return;
        };
        if !inner.is_current(&call_id, &session) {
            return;
        }
        inner.emit(&call_id, SessionEvent::Media(event));
        let reason = match event {
            MediaEvent::Connected => {
                inner.attach_room(&call_id, &session);
                if inner.config.local.is_some() {
                    let inner = Arc::clone(&inner);
                    tokio::spawn(async move { inner.seat_local().await });
                }
                continue;
            }
            MediaEvent::Dtmf { .. } => continue,
            MediaEvent::Failed(_) => EndReason::MediaFailed,
            MediaEvent::Closed => EndReason::MediaClosed,
        };
        inner.end(&call_id, Some(&session), reason).await;
        return;
    }
}

/// Expires sessions that were never negotiated, and trims the heap after calls end (on a
/// blocking-pool thread, as [`TrimPolicy`] decides), until the host is dropped.
async fn sweep(host: Weak<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = host.upgrade() else {
            return;
        };
        if inner.lock().trim.poll(Instant::now()) {
            drop(tokio::task::spawn_blocking(memory_trim::trim));
        }
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
