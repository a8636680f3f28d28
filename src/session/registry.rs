//! The table of media sessions and every outcome of negotiating one (sans-IO: `now` is a
//! parameter, nothing here reads a clock or touches a socket).
//!
//! # Life of a session
//!
//! ```text
//!  create ──▶ Offered ──begin_offer──▶ Negotiating ──offer_accepted──▶ Negotiated
//!               │  ▲                      │                                │
//!      expires  │  └─offer_refused(retry)─┤ offer_refused(spent)           │ close
//!               ▼                         ▼                                ▼
//!           (removed)                   Failed ─────────close─────────▶ Closed (kept a while)
//! ```
//!
//! The token is **single use**: the first `POST` that presents it spends it, whatever the
//! outcome of that offer, except when the host itself failed (a 5xx) — then the session goes
//! back to `Offered` and the peer may try again before the session expires.
//!
//! # Outcomes of an offer ([`SessionRegistry::begin_offer`]), checked in this order
//!
//! | situation | error | HTTP |
//! | --- | --- | --- |
//! | no such session (or its tombstone was purged) | [`NegotiationError::UnknownSession`] | 404 |
//! | `Offered`/`Failed` and `now` ≥ its expiry | [`NegotiationError::Expired`] | 404 |
//! | token does not match (constant-time compare of SHA-256 digests) | [`NegotiationError::WrongToken`] | 401 |
//! | `Negotiating` or `Negotiated`: a second offer for a session that has (or is getting) media | [`NegotiationError::AlreadyNegotiated`] | 409 |
//! | `Failed` (an earlier offer spent the token) or `Closed` | [`NegotiationError::TokenReused`] | 401 |
//! | `Offered`, in time, right token | `Ok(call id)`, now `Negotiating` | — |
//!
//! The host then reports [`NegotiationError::MalformedSdp`], [`NegotiationError::NoAudio`] or
//! [`NegotiationError::NoOpus`] (400) for an offer it cannot use, and
//! [`NegotiationError::Unavailable`] (503) for its own failures.
//!
//! `DELETE` ([`SessionRegistry::authorize_delete`]) needs the same token (it authorizes the
//! session resource, as in WHIP) and works in every phase but `Closed` (404), even after the
//! token was spent by the offer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::graph::CallId;

use super::token::{SessionId, SessionToken, TokenHash};

/// Registry settings.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct RegistryConfig {
    /// How long after creation a session can be negotiated (the blob's `expiresAt`).
    pub negotiate_within: Duration,
    /// How long an ended session is remembered, so a late offer with its token is told
    /// "reused" (401) rather than "unknown" (404).
    pub retain_ended: Duration,
    /// Most sessions held at once (including remembered ended ones).
    pub max_sessions: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            negotiate_within: Duration::from_secs(60),
            retain_ended: Duration::from_secs(60),
            max_sessions: 10_000,
        }
    }
}

/// Where a session is in its life (see the module docs).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum SessionPhase {
    /// Created; waiting for the offer.
    Offered,
    /// An offer was accepted for processing; the answer is being made.
    Negotiating,
    /// Answered: media is (being) set up.
    Negotiated,
    /// The offer was refused (bad SDP); the token is spent.
    Failed,
    /// Ended (DELETE, call ended, media failed).
    Closed,
}

/// A session just created: what goes into the blob.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct CreatedSession {
    /// The session's id.
    pub session_id: SessionId,
    /// Its bearer token (the registry keeps only the hash).
    pub token: SessionToken,
    /// The call it belongs to.
    pub call_id: CallId,
    /// Monotonic deadline for the offer.
    pub expires: Instant,
}

/// A session that expired without being negotiated, reported by [`SessionRegistry::expire`].
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ExpiredSession {
    /// The session.
    pub session_id: SessionId,
    /// Its call (whose media never came).
    pub call_id: CallId,
}

/// Why a session could not be created.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum RegistryError {
    /// [`RegistryConfig::max_sessions`] reached.
    #[error("session table is full ({0} sessions)")]
    Full(usize),
    /// The call already has a live media session.
    #[error("call {0} already has a media session")]
    CallHasSession(CallId),
}

/// Why an offer or a DELETE was refused. [`Self::status`] is the HTTP status to answer with.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum NegotiationError {
    /// No such session.
    #[error("no such media session")]
    UnknownSession,
    /// The session was not negotiated before its `expiresAt`.
    #[error("the media session expired before it was negotiated")]
    Expired,
    /// Missing, malformed or wrong bearer token.
    #[error("missing or wrong bearer token")]
    WrongToken,
    /// The token was already spent by an earlier offer, or the session has ended.
    #[error("the token was already used")]
    TokenReused,
    /// The session already has (or is getting) media; DELETE it first.
    #[error("the media session is already negotiated")]
    AlreadyNegotiated,
    /// The body is not usable SDP (the reason says where).
    #[error("malformed SDP: {0}")]
    MalformedSdp(String),
    /// The offer has no audio media section.
    #[error("the offer has no audio media section")]
    NoAudio,
    /// The offer's audio does not include opus/48000/2.
    #[error("the offer's audio does not include opus/48000/2")]
    NoOpus,
    /// The host could not set the session up (its fault; the offer may be retried).
    #[error("media host unavailable: {0}")]
    Unavailable(String),
}

impl NegotiationError {
    /// HTTP status: 404, 401, 409, 400 or 503 (see the module docs).
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownSession | Self::Expired => 404,
            Self::WrongToken | Self::TokenReused => 401,
            Self::AlreadyNegotiated => 409,
            Self::MalformedSdp(_) | Self::NoAudio | Self::NoOpus => 400,
            Self::Unavailable(_) => 503,
        }
    }

    /// Stable machine-readable code for the error body (branch on this, not the message).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSession => "sessionNotFound",
            Self::Expired => "sessionExpired",
            Self::WrongToken => "invalidToken",
            Self::TokenReused => "tokenAlreadyUsed",
            Self::AlreadyNegotiated => "sessionAlreadyNegotiated",
            Self::MalformedSdp(_) => "malformedSdp",
            Self::NoAudio => "noAudio",
            Self::NoOpus => "noOpus",
            Self::Unavailable(_) => "mediaHostUnavailable",
        }
    }

    /// True for errors caused by the offer itself (400): the token is spent.
    pub fn spends_token(&self) -> bool {
        self.status() == 400
    }
}

/// The media sessions of this host, keyed by id (and findable by call).
#[derive(Debug)]
pub struct SessionRegistry {
    config: RegistryConfig,
    sessions: HashMap<SessionId, Entry>,
    by_call: HashMap<CallId, SessionId>,
}

#[derive(Debug)]
struct Entry {
    call_id: CallId,
    token: TokenHash,
    phase: SessionPhase,
    /// Offer deadline while `Offered`/`Failed`; purge time once `Closed`.
    deadline: Instant,
}

impl SessionRegistry {
    /// An empty registry.
    pub fn new(config: RegistryConfig) -> Self {
        Self {
            config,
            sessions: HashMap::new(),
            by_call: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Creates a session for `call_id` with a fresh id and token, negotiable until
    /// `now + negotiate_within`.
    ///
    /// # Errors
    /// [`RegistryError::CallHasSession`] when the call's previous session has not ended,
    /// [`RegistryError::Full`] at capacity.
    pub fn create(
        &mut self,
        now: Instant,
        call_id: CallId,
    ) -> Result<CreatedSession, RegistryError> {
        if let Some(old) = self.by_call.get(&call_id)
            && self
                .sessions
                .get(old)
                .is_some_and(|e| e.phase != SessionPhase::Closed)
        {
            return Err(RegistryError::CallHasSession(call_id));
        }
        if self.sessions.len() >= self.config.max_sessions {
            self.purge_closed(now);
            if self.sessions.len() >= self.config.max_sessions {
                return Err(RegistryError::Full(self.config.max_sessions));
            }
        }
        let session_id = SessionId::generate();
        let token = SessionToken::generate();
        let expires = now + self.config.negotiate_within;
        self.sessions.insert(
            session_id.clone(),
            Entry {
                call_id: call_id.clone(),
                token: token.hash(),
                phase: SessionPhase::Offered,
                deadline: expires,
            },
        );
        self.by_call.insert(call_id.clone(), session_id.clone());
        Ok(CreatedSession {
            session_id,
            token,
            call_id,
            expires,
        })
    }

    /// An offer arrived for `id` with bearer `token`: decides whether it may be processed
    /// (see the module docs for the order of checks). On `Ok` the session is `Negotiating`
    /// and the token is taken; finish with [`Self::offer_accepted`] or
    /// [`Self::offer_refused`].
    ///
    /// # Errors
    /// [`NegotiationError::UnknownSession`], [`NegotiationError::Expired`],
    /// [`NegotiationError::WrongToken`], [`NegotiationError::AlreadyNegotiated`],
    /// [`NegotiationError::TokenReused`].
    pub fn begin_offer(
        &mut self,
        now: Instant,
        id: &SessionId,
        token: &str,
    ) -> Result<CallId, NegotiationError> {
        let entry = self.live_entry(now, id)?;
        if !entry.token.matches(token) {
            return Err(NegotiationError::WrongToken);
        }
        match entry.phase {
            SessionPhase::Offered => {
                entry.phase = SessionPhase::Negotiating;
                Ok(entry.call_id.clone())
            }
            SessionPhase::Negotiating | SessionPhase::Negotiated => {
                Err(NegotiationError::AlreadyNegotiated)
            }
            SessionPhase::Failed | SessionPhase::Closed => Err(NegotiationError::TokenReused),
        }
    }

    /// The offer taken by [`Self::begin_offer`] was answered: the session is `Negotiated`.
    /// Returns false if the session is not `Negotiating` (e.g. it was closed meanwhile).
    pub fn offer_accepted(&mut self, id: &SessionId) -> bool {
        match self.sessions.get_mut(id) {
            Some(e) if e.phase == SessionPhase::Negotiating => {
                e.phase = SessionPhase::Negotiated;
                true
            }
            _ => false,
        }
    }

    /// The offer taken by [`Self::begin_offer`] failed with `error`. An error of the offer
    /// itself ([`NegotiationError::spends_token`]) spends the token (`Failed`); a failure of
    /// the host puts the session back to `Offered` so the peer may retry until it expires.
    pub fn offer_refused(&mut self, id: &SessionId, error: &NegotiationError) {
        if let Some(e) = self.sessions.get_mut(id)
            && e.phase == SessionPhase::Negotiating
        {
            e.phase = if error.spends_token() {
                SessionPhase::Failed
            } else {
                SessionPhase::Offered
            };
        }
    }

    /// A DELETE arrived for `id` with bearer `token`: returns the call to end. Does not
    /// change the session; follow with [`Self::close`].
    ///
    /// # Errors
    /// [`NegotiationError::UnknownSession`] (also for a `Closed` session),
    /// [`NegotiationError::Expired`] for an un-negotiated session past its expiry,
    /// [`NegotiationError::WrongToken`].
    pub fn authorize_delete(
        &mut self,
        now: Instant,
        id: &SessionId,
        token: &str,
    ) -> Result<CallId, NegotiationError> {
        let entry = self.live_entry(now, id)?;
        if !entry.token.matches(token) {
            return Err(NegotiationError::WrongToken);
        }
        if entry.phase == SessionPhase::Closed {
            return Err(NegotiationError::UnknownSession);
        }
        Ok(entry.call_id.clone())
    }

    /// Ends session `id` (any phase): it stays known as `Closed` for
    /// [`RegistryConfig::retain_ended`]. Returns its call if it was not already closed.
    pub fn close(&mut self, now: Instant, id: &SessionId) -> Option<CallId> {
        let retain = self.config.retain_ended;
        let e = self.sessions.get_mut(id)?;
        if e.phase == SessionPhase::Closed {
            return None;
        }
        e.phase = SessionPhase::Closed;
        e.deadline = now + retain;
        Some(e.call_id.clone())
    }

    /// The session of `call_id` that has not ended, if any.
    pub fn session_of(&self, call_id: &CallId) -> Option<&SessionId> {
        let id = self.by_call.get(call_id)?;
        let live = self.sessions.get(id)?.phase != SessionPhase::Closed;
        live.then_some(id)
    }

    /// The phase of session `id`, if it is known.
    pub fn phase(&self, id: &SessionId) -> Option<SessionPhase> {
        self.sessions.get(id).map(|e| e.phase)
    }

    /// The call of session `id`, if it is known.
    pub fn call_of(&self, id: &SessionId) -> Option<&CallId> {
        self.sessions.get(id).map(|e| &e.call_id)
    }

    /// Sessions known (including remembered ended ones).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no session is known.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Removes sessions that were never negotiated and are past their expiry (returned, so
    /// their calls can be told) and forgets ended ones past their retention (silently). An
    /// expired `Failed` session is removed but not returned: its call was told when its offer
    /// failed.
    pub fn expire(&mut self, now: Instant) -> Vec<ExpiredSession> {
        let mut expired = Vec::new();
        self.sessions.retain(|id, e| {
            if now < e.deadline {
                return true;
            }
            match e.phase {
                SessionPhase::Offered => {
                    expired.push(ExpiredSession {
                        session_id: id.clone(),
                        call_id: e.call_id.clone(),
                    });
                    false
                }
                SessionPhase::Failed | SessionPhase::Closed => false,
                SessionPhase::Negotiating | SessionPhase::Negotiated => true,
            }
        });
        let sessions = &self.sessions;
        self.by_call.retain(|_, id| sessions.contains_key(id));
        expired
    }

    /// The earliest instant at which [`Self::expire`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter(|e| {
                matches!(
                    e.phase,
                    SessionPhase::Offered | SessionPhase::Failed | SessionPhase::Closed
                )
            })
            .map(|e| e.deadline)
            .min()
    }

    /// The entry for `id`, unless unknown or expired un-negotiated.
    fn live_entry(&mut self, now: Instant, id: &SessionId) -> Result<&mut Entry, NegotiationError> {
        let entry = self
            .sessions
            .get_mut(id)
            .ok_or(NegotiationError::UnknownSession)?;
        let waiting = matches!(entry.phase, SessionPhase::Offered | SessionPhase::Failed);
        if waiting && now >= entry.deadline {
            return Err(NegotiationError::Expired);
        }
        Ok(entry)
    }

    fn purge_closed(&mut self, now: Instant) {
        self.sessions
            .retain(|_, e| !(e.phase == SessionPhase::Closed && now >= e.deadline));
        let sessions = &self.sessions;
        self.by_call.retain(|_, id| sessions.contains_key(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn registry() -> (SessionRegistry, Instant) {
        let config = RegistryConfig {
            negotiate_within: 10 * SEC,
            retain_ended: 5 * SEC,
            max_sessions: 3,
        };
        (SessionRegistry::new(config), Instant::now())
    }

    #[test]
    fn right_token_in_time_negotiates_once() {
        let (mut r, t0) = registry();
        let s = r.create(t0, CallId::from("c1")).unwrap();
        assert_eq!(s.expires, t0 + 10 * SEC);
        let call = r.begin_offer(t0 + SEC, &s.session_id, s.token.as_str());
        assert_eq!(call, Ok(CallId::from("c1")));
        assert_eq!(r.phase(&s.session_id), Some(SessionPhase::Negotiating));
        assert_eq!(
            r.begin_offer(t0 + SEC, &s.session_id, s.token.as_str()),
            Err(NegotiationError::AlreadyNegotiated)
        );
        assert!(r.offer_accepted(&s.session_id));
        let second = r.begin_offer(t0 + 2 * SEC, &s.session_id, s.token.as_str());
        assert_eq!(second, Err(NegotiationError::AlreadyNegotiated));
        assert_eq!(second.unwrap_err().status(), 409);
        // Negotiated sessions do not expire.
        assert!(r.expire(t0 + 100 * SEC).is_empty());
        assert_eq!(r.phase(&s.session_id), Some(SessionPhase::Negotiated));
        assert_eq!(r.session_of(&CallId::from("c1")), Some(&s.session_id));
    }

    #[test]
    fn wrong_token_is_401_and_does_not_spend_the_right_one() {
        let (mut r, t0) = registry();
        let s = r.create(t0, CallId::from("c1")).unwrap();
        for bad in [
            "",
            "x",
            &s.token.as_str()[1..],
            SessionToken::generate().as_str(),
        ] {
            let e = r.begin_offer(t0, &s.session_id, bad).unwrap_err();
            assert_eq!(e, NegotiationError::WrongToken);
            assert_eq!(e.status(), 401);
        }
        assert!(r.begin_offer(t0, &s.session_id, s.token.as_str()).is_ok());
    }

    #[test]
    fn unknown_and_expired_sessions_are_404() {
        let (mut r, t0) = registry();
        let s = r.create(t0, CallId::from("c1")).unwrap();
        let e = r
            .begin_offer(t0, &SessionId::generate(), s.token.as_str())
            .unwrap_err();
        assert_eq!(
            (e.clone(), e.status()),
            (NegotiationError::UnknownSession, 404)
        );
        let late = t0 + 10 * SEC;
        let e = r
            .begin_offer(late, &s.session_id, s.token.as_str())
            .unwrap_err();
        assert_eq!((e.clone(), e.status()), (NegotiationError::Expired, 404));
        assert_eq!(r.next_deadline(), Some(late));
        assert_eq!(
            r.expire(late),
            vec![ExpiredSession {
                session_id: s.session_id.clone(),
                call_id: CallId::from("c1")
            }]
        );
        assert_eq!(
            r.begin_offer(late, &s.session_id, s.token.as_str()),
            Err(NegotiationError::UnknownSession)
        );
        assert!(r.is_empty());
        // The call may get a new session.
        assert!(r.create(late, CallId::from("c1")).is_ok());
    }

    #[test]
    fn a_bad_offer_spends_the_token_but_a_host_failure_does_not() {
        let (mut r, t0) = registry();
        let s = r.create(t0, CallId::from("c1")).unwrap();
        let tok = s.token.as_str();
        r.begin_offer(t0, &s.session_id, tok).unwrap();
        r.offer_refused(&s.session_id, &NegotiationError::Unavailable("bind".into()));
        assert_eq!(r.phase(&s.session_id), Some(SessionPhase::Offered));
        r.begin_offer(t0, &s.session_id, tok).unwrap();
        r.offer_refused(&s.session_id, &NegotiationError::NoOpus);
        assert_eq!(r.phase(&s.session_id), Some(SessionPhase::Failed));
        let e = r.begin_offer(t0, &s.session_id, tok).unwrap_err();
        assert_eq!(
            (e.clone(), e.status()),
            (NegotiationError::TokenReused, 401)
        );
        // Failed sessions expire silently (the call was told when the offer failed).
        assert!(r.expire(t0 + 10 * SEC).is_empty());
        assert!(r.is_empty());
    }

    #[test]
    fn closed_sessions_answer_reused_then_are_forgotten() {
        let (mut r, t0) = registry();
        let s = r.create(t0, CallId::from("c1")).unwrap();
        let tok = s.token.as_str();
        r.begin_offer(t0, &s.session_id, tok).unwrap();
        r.offer_accepted(&s.session_id);
        assert_eq!(
            r.authorize_delete(t0, &s.session_id, "nope"),
            Err(NegotiationError::WrongToken)
        );
        assert_eq!(
            r.authorize_delete(t0, &s.session_id, tok),
            Ok(CallId::from("c1"))
        );
        assert_eq!(r.close(t0, &s.session_id), Some(CallId::from("c1")));
        assert_eq!(r.close(t0, &s.session_id), None);
        assert_eq!(r.session_of(&CallId::from("c1")), None);
        assert_eq!(
            r.begin_offer(t0 + SEC, &s.session_id, tok),
            Err(NegotiationError::TokenReused)
        );
        assert_eq!(
            r.authorize_delete(t0 + SEC, &s.session_id, tok),
            Err(NegotiationError::UnknownSession)
        );
        assert!(r.expire(t0 + 5 * SEC).is_empty());
        assert_eq!(
            r.begin_offer(t0 + 5 * SEC, &s.session_id, tok),
            Err(NegotiationError::UnknownSession)
        );
    }

    #[test]
    fn one_live_session_per_call_and_a_bounded_table() {
        let (mut r, t0) = registry();
        let a = r.create(t0, CallId::from("a")).unwrap();
        assert_eq!(
            r.create(t0, CallId::from("a")),
            Err(RegistryError::CallHasSession(CallId::from("a")))
        );
        r.create(t0, CallId::from("b")).unwrap();
        r.create(t0, CallId::from("c")).unwrap();
        assert_eq!(r.create(t0, CallId::from("d")), Err(RegistryError::Full(3)));
        r.close(t0, &a.session_id);
        // Still remembered until its retention ends, then its slot is reused.
        assert_eq!(r.create(t0, CallId::from("d")), Err(RegistryError::Full(3)));
        let d = r.create(t0 + 5 * SEC, CallId::from("d")).unwrap();
        assert_eq!(r.call_of(&d.session_id), Some(&CallId::from("d")));
        // A call whose session ended may get a new one (once there is room).
        r.close(t0 + 5 * SEC, &d.session_id);
        assert_eq!(
            r.create(t0 + 5 * SEC, CallId::from("d")),
            Err(RegistryError::Full(3))
        );
        assert!(r.create(t0 + 10 * SEC, CallId::from("d")).is_ok());
    }

    #[test]
    fn statuses_and_codes_are_stable() {
        let all = [
            (NegotiationError::UnknownSession, 404, "sessionNotFound"),
            (NegotiationError::Expired, 404, "sessionExpired"),
            (NegotiationError::WrongToken, 401, "invalidToken"),
            (NegotiationError::TokenReused, 401, "tokenAlreadyUsed"),
            (
                NegotiationError::AlreadyNegotiated,
                409,
                "sessionAlreadyNegotiated",
            ),
            (
                NegotiationError::MalformedSdp("x".into()),
                400,
                "malformedSdp",
            ),
            (NegotiationError::NoAudio, 400, "noAudio"),
            (NegotiationError::NoOpus, 400, "noOpus"),
            (
                NegotiationError::Unavailable("x".into()),
                503,
                "mediaHostUnavailable",
            ),
        ];
        for (e, status, code) in all {
            assert_eq!((e.status(), e.code()), (status, code), "{e}");
        }
    }
}
