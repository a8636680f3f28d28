//! The emulated Graph calling service as a sans-IO state machine.
//!
//! The HTTP layer feeds it inputs, each with the current `now`:
//! [`handle_ring`](Model::handle_ring) (a scripted caller rings a bot),
//! [`handle_request`](Model::handle_request) (a REST request from the bot, already
//! authenticated or not), [`handle_hangup`](Model::handle_hangup) (the caller hangs up),
//! [`handle_delivery`](Model::handle_delivery) (the bot's answer to a notification) and
//! [`handle_timeout`](Model::handle_timeout). It pulls outputs: notifications to POST from
//! [`poll_output`](Model::poll_output) and the next timer from
//! [`poll_timeout`](Model::poll_timeout). After any `handle_*`, drain `poll_output` until it
//! returns `None`; `poll_timeout` changes after every `handle_*`.
//!
//! ## Service rules (emulator choices marked *choice*)
//!
//! - Order of checks on a REST request: bearer token (401 `InvalidAuthenticationToken`),
//!   call id (404 `itemNotFound`), the token's app owns the call and its `tid` is the call's tenant (403 `7504`), fault knobs
//!   (429/5xx), body (400 `invalidRequest`), then the call's state.
//! - Answer/reject/redirect succeed with 202 only while the call is `incoming` and inside its
//!   window (15 s; 5 s for policy-based recording).
//! - A decision after the window, or on a call the caller already abandoned, gets
//!   **404** with code `8522` "Call not found." (*choice*: Graph's keepAlive docs use 404 for
//!   gone calls; the SDK reports only the 8522 code).
//! - A second decision on a decided call gets **409** `conflict` (*choice*).
//! - `DELETE` ends a live call: 204, then `terminating` and `terminated` notifications with
//!   resultInfo 200/7000. On a terminated call: 404 `8522`. `GET` returns the call (200) or
//!   404 `8522` once it is terminated.
//! - Terminated resultInfos: caller hang-up per scenario (200/4521 P2P, 200/540000 PSTN,
//!   200/4097 group); timeout [`ModelConfig::timeout_result`] (default 408/1106 "Call acceptance
//!   not acknowledged in time", §4.6); reject 603/0 (*choice*); redirect 302/0 (*choice*);
//!   bot hang-up 200/7000; caller gave up ringing 487/0 (*choice*).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::call::DeadlineIndex;
use crate::graph::{Call, ChangeType, ResultInfo};

use super::emulated_call::{EmulatedCall, Outbox, Timer, error, request_record};
use super::fault::{FaultState, Faults};
use super::record::{CallRecord, CallSummary, HistoryEntry, Outcome, Phase, RequestRecord};
use super::scenario::{CallParams, Scenario, Script};

/// Service-wide settings of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Answer window of ordinary calls (Graph: 15 s).
    pub answer_window: Duration,
    /// Answer window of policy-based-recording invitations (Graph: 5 s).
    pub pbr_answer_window: Duration,
    /// resultInfo sent with `terminated` when the bot did not decide in time.
    pub timeout_result: ResultInfo,
    /// Whether a timed-out call is announced to the bot with a `terminated` notification.
    pub notify_on_timeout: bool,
    /// Time between `establishing` and `established` after an answer.
    pub establish_delay: Duration,
    /// Tenant used when a ring names none.
    pub tenant_id: String,
    /// Seed of the id generator (same seed, same ids).
    pub seed: u64,
    /// How many calls are remembered; beyond it the oldest terminated ones are forgotten.
    pub max_calls: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            answer_window: Duration::from_secs(15),
            pbr_answer_window: Duration::from_secs(5),
            timeout_result: ResultInfo::new(408, 1106, "Call acceptance not acknowledged in time."),
            notify_on_timeout: true,
            establish_delay: Duration::from_millis(20),
            tenant_id: "2d4bc0c4-4c9e-4a8e-9b6e-6c1d9a1f0e55".into(),
            seed: 0x6d65_6469_6162_6f74,
            max_calls: 10_000,
        }
    }
}

/// A scripted caller ringing a bot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ring {
    /// The bot's notification URL (its calling webhook).
    pub bot_url: String,
    /// Which caller.
    pub scenario: Scenario,
    /// The bot's app id (notification `aud`).
    pub app_id: String,
    /// Tenant of the call (default: [`ModelConfig::tenant_id`]).
    pub tenant_id: Option<String>,
    /// What the caller does afterwards.
    pub script: Script,
    /// Fault knobs (default: the global ones).
    pub faults: Option<Faults>,
}

/// A call taken over from a saved notification (see [`Model::handle_import`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Import {
    /// The incoming call as the notification carried it (`id` required).
    pub call: Call,
    /// Where the bot listens (later notifications go here or to the answer's `callbackUri`).
    pub bot_url: String,
    /// The app whose tokens may decide the call.
    pub app_id: String,
}

/// The REST operation a request asks for.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Op {
    /// `POST …/answer`.
    Answer,
    /// `POST …/reject`.
    Reject,
    /// `POST …/redirect`.
    Redirect,
    /// `DELETE /communications/calls/{id}`.
    Delete,
    /// `GET /communications/calls/{id}`.
    Get,
}

/// A REST request from the bot.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiRequest {
    /// The operation.
    pub op: Op,
    /// The `{id}` path segment.
    pub call_id: String,
    /// HTTP method, for the record.
    pub method: String,
    /// Path as received, for the record.
    pub path: String,
    /// Headers of interest, lower-case names, for the record.
    pub headers: BTreeMap<String, String>,
    /// Raw body.
    pub body: Vec<u8>,
    /// Outcome of bearer-token validation: the token's app id, or why it was refused.
    pub auth: Result<String, String>,
    /// The valid token's tenant (`tid`); a call in another tenant answers 403 `7504`.
    /// `None`: not checked.
    pub tenant: Option<String>,
}

/// The model's reply to a REST request.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// What goes in the body.
    pub body: Reply,
    /// `Retry-After` to send.
    pub retry_after: Option<Duration>,
    /// Injected latency: the HTTP layer waits this long before responding.
    pub delay: Duration,
}

/// The body of an [`ApiResponse`].
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// No body (202, 204).
    Empty,
    /// A JSON resource (GET).
    Json(Value),
    /// A Graph error body with this code and message (the HTTP layer adds `innerError`).
    Error {
        /// Graph error code (`itemNotFound`, `8522`, …).
        code: String,
        /// Message.
        message: String,
    },
}

/// Work for the IO layer.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// POST this signed notification.
    Notify(Delivery),
}

/// One notification to deliver: sign a token for `app_id`/`tenant_id`, POST `body` to `url`,
/// report the result with [`Model::handle_delivery`].
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Emulator-wide sequence number.
    pub seq: u64,
    /// The call it is about.
    pub call_id: String,
    /// Where to POST.
    pub url: String,
    /// Token audience.
    pub app_id: String,
    /// Token `tid`.
    pub tenant_id: String,
    /// The `commsNotifications` body.
    pub body: Value,
}

/// Errors of control operations on the model.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// No call with this id.
    #[error("no call with id {0}")]
    UnknownCall(String),
    /// The call is already over.
    #[error("call {0} is already terminated")]
    Terminated(String),
    /// The ring request is unusable.
    #[error("invalid ring request: {0}")]
    InvalidRing(String),
}

/// The emulated service: every call it has rung, its timers and its outbox.
#[derive(Debug)]
pub struct Model {
    config: ModelConfig,
    defaults: Faults,
    calls: HashMap<String, EmulatedCall>,
    /// Call ids by ring sequence number (ring order).
    order: BTreeMap<u64, String>,
    next_ring: u64,
    /// Each call's earliest timer: only due calls are visited by `handle_timeout`.
    deadlines: DeadlineIndex<String>,
    /// Ring sequence numbers of the terminated calls still kept (eviction candidates).
    terminated: BTreeSet<u64>,
    out: Outbox,
    rng: StdRng,
    started: Option<Instant>,
    unmatched: VecDeque<RequestRecord>,
}

/// How many requests for unknown calls are kept.
pub const MAX_UNMATCHED: usize = 1000;

impl Model {
    /// A service with no calls.
    pub fn new(config: ModelConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        Self {
            config,
            defaults: Faults::default(),
            calls: HashMap::new(),
            order: BTreeMap::new(),
            next_ring: 0,
            deadlines: DeadlineIndex::new(),
            terminated: BTreeSet::new(),
            out: Outbox::default(),
            rng,
            started: None,
            unmatched: VecDeque::new(),
        }
    }

    /// The service-wide settings.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Sets the fault knobs used by calls rung from now on without their own.
    pub fn set_default_faults(&mut self, faults: Faults) {
        self.defaults = faults;
    }

    /// The global fault knobs.
    pub fn default_faults(&self) -> &Faults {
        &self.defaults
    }

    /// Requests for call ids the emulator does not know (the latest [`MAX_UNMATCHED`]), `atMs`
    /// counted from the model's first input.
    pub fn unmatched_requests(&self) -> impl Iterator<Item = &RequestRecord> {
        self.unmatched.iter()
    }

    /// A scripted caller rings a bot: builds the call, queues the `created` notification and
    /// starts the answer window. Returns the call id.
    pub fn handle_ring(&mut self, now: Instant, ring: Ring) -> Result<String, ModelError> {
        match url::Url::parse(&ring.bot_url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
            _ => {
                return Err(ModelError::InvalidRing(format!(
                    "botUrl must be an absolute https URL, got {:?}",
                    ring.bot_url
                )));
            }
        }
        if ring.app_id.trim().is_empty() {
            return Err(ModelError::InvalidRing("appId is required".into()));
        }
        let tenant_id = ring
            .tenant_id
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| self.config.tenant_id.clone());
        let params = CallParams {
            call_id: self.uuid(),
            tenant_id: tenant_id.clone(),
            app_id: ring.app_id.clone(),
            app_instance_id: self.uuid(),
            bot_name: "mediabot".into(),
            bot_url: ring.bot_url.clone(),
            my_participant_id: self.uuid(),
            source_participant_id: self.uuid(),
            call_chain_id: self.uuid(),
            caller_id: self.uuid(),
            phone_number: format!("+1425555{:04}", self.rng.random_range(0..10_000)),
            bot_phone_number: "+14255550100".into(),
            thread_key: self.uuid().replace('-', ""),
            meeting_token: format!("eyJhbGciOiJSUzI1NiJ9.{}.emulator", self.uuid()),
            other_user_id: self.uuid(),
            other_participant_id: self.uuid(),
        };
        let id = params.call_id.clone();
        let call = ring.scenario.build(&params);
        let window = if ring.scenario.is_policy_recording() {
            self.config.pbr_answer_window
        } else {
            self.config.answer_window
        };
        let faults = ring.faults.unwrap_or_else(|| self.defaults.clone());
        let mut timers = vec![(now + window, Timer::AnswerDeadline)];
        if let Some(after) = ring.script.cancel_after() {
            timers.push((now + after, Timer::CallerCancel));
        }
        let mut entry = EmulatedCall {
            rec: CallRecord {
                id: id.clone(),
                scenario: ring.scenario,
                script: ring.script,
                faults: faults.clone(),
                app_id: ring.app_id,
                tenant_id,
                bot_url: ring.bot_url.clone(),
                callback_uri: ring.bot_url,
                state: Phase::Incoming,
                outcome: Outcome::Pending,
                decision: None,
                ended_by: None,
                result_info: None,
                answer_window: window,
                call,
                history: Vec::new(),
            },
            rang_at: now,
            ring_seq: 0,
            faults: FaultState::new(faults),
            incoming_sent: None,
            etag: 0,
            timers,
        };
        entry.event(now, "rang");
        entry.incoming_sent = Some(Duration::ZERO);
        let full = entry.rec.call.clone();
        entry.notify(now, &mut self.out, ChangeType::Created, full);
        self.insert(entry);
        Ok(id)
    }

    /// Takes over a call described elsewhere (a saved incoming notification, for `replay`):
    /// the call is `incoming` with its answer window starting now, and **no** notification
    /// is queued — the caller sends the saved one itself. An existing call with the same id
    /// is replaced. Returns the call id.
    pub fn handle_import(&mut self, now: Instant, import: Import) -> Result<String, ModelError> {
        let id = import
            .call
            .id
            .as_ref()
            .map(|i| i.as_str().to_owned())
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ModelError::InvalidRing("the call has no id".into()))?;
        let scenario = Scenario::classify(&import.call);
        let window = if import.call.is_policy_based_recording() {
            self.config.pbr_answer_window
        } else {
            self.config.answer_window
        };
        let tenant_id = import
            .call
            .tenant_id
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| self.config.tenant_id.clone());
        let faults = self.defaults.clone();
        let mut entry = EmulatedCall {
            rec: CallRecord {
                id: id.clone(),
                scenario,
                script: Script::default(),
                faults: faults.clone(),
                app_id: import.app_id,
                tenant_id,
                bot_url: import.bot_url.clone(),
                callback_uri: import.bot_url,
                state: Phase::Incoming,
                outcome: Outcome::Pending,
                decision: None,
                ended_by: None,
                result_info: None,
                answer_window: window,
                call: import.call,
                history: Vec::new(),
            },
            rang_at: now,
            ring_seq: 0,
            faults: FaultState::new(faults),
            incoming_sent: Some(Duration::ZERO),
            etag: 0,
            timers: vec![(now + window, Timer::AnswerDeadline)],
        };
        entry.event(now, "imported");
        self.forget(&id);
        self.insert(entry);
        Ok(id)
    }

    /// A REST request from the bot. Fires due timers first, so a decision arriving at or after
    /// the deadline is late.
    pub fn handle_request(&mut self, now: Instant, req: ApiRequest) -> ApiResponse {
        self.handle_timeout(now);
        let started = *self.started.get_or_insert(now);
        let Some(entry) = self.calls.get_mut(&req.call_id) else {
            let resp = match &req.auth {
                Err(why) => error(401, "InvalidAuthenticationToken", why),
                Ok(_) => error(
                    404,
                    "itemNotFound",
                    &format!("Call {} was not found.", req.call_id),
                ),
            };
            if self.unmatched.len() == MAX_UNMATCHED {
                self.unmatched.pop_front();
            }
            let at = now.saturating_duration_since(started);
            self.unmatched.push_back(request_record(at, &req, &resp));
            return resp;
        };
        let mut resp = entry.serve(now, &req, &mut self.out, &self.config);
        resp.delay = entry.faults.delay();
        entry.record_request(now, &req, &resp);
        self.touched(&req.call_id);
        resp
    }

    /// The caller hangs up (or gives up ringing, if the bot has not decided yet).
    pub fn handle_hangup(&mut self, now: Instant, id: &str) -> Result<(), ModelError> {
        self.handle_timeout(now);
        let entry = self
            .calls
            .get_mut(id)
            .ok_or_else(|| ModelError::UnknownCall(id.to_owned()))?;
        if entry.rec.state == Phase::Terminated {
            return Err(ModelError::Terminated(id.to_owned()));
        }
        entry.caller_leaves(now, &mut self.out);
        self.touched(id);
        Ok(())
    }

    /// The notifier starts POSTing notification `seq` at `now` (token ready, request built).
    /// For the incoming `created` notification this is where the decision latency
    /// ([`Decision::after_notification`](super::record::Decision::after_notification)) starts.
    pub fn handle_sending(&mut self, now: Instant, call_id: &str, seq: u64) {
        let Some(entry) = self.calls.get_mut(call_id) else {
            return;
        };
        let at = now.saturating_duration_since(entry.rang_at);
        let mut incoming = false;
        for h in entry.rec.history.iter_mut().rev() {
            if let HistoryEntry::Notification(n) = h
                && n.seq == seq
            {
                n.sent_at = Some(at);
                incoming = n.change_type == "created" && !n.duplicate;
                break;
            }
        }
        if incoming && entry.rec.decision.is_none() {
            entry.incoming_sent = Some(at);
        }
    }

    /// The bot's HTTP status for notification `seq` (or the transport error).
    pub fn handle_delivery(
        &mut self,
        now: Instant,
        call_id: &str,
        seq: u64,
        result: Result<u16, String>,
    ) {
        let Some(entry) = self.calls.get_mut(call_id) else {
            return;
        };
        let at = now.saturating_duration_since(entry.rang_at);
        for h in entry.rec.history.iter_mut().rev() {
            if let HistoryEntry::Notification(n) = h
                && n.seq == seq
            {
                n.responded_at = Some(at);
                match &result {
                    Ok(status) => n.bot_status = Some(*status),
                    Err(e) => n.error = Some(e.clone()),
                }
                break;
            }
        }
    }

    /// Fires every timer due at `now`. Visits only the calls whose earliest timer is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(id) = self.deadlines.pop_due(now) {
            if let Some(entry) = self.calls.get_mut(&id) {
                loop {
                    let due = entry
                        .timers
                        .iter()
                        .enumerate()
                        .filter(|(_, (at, _))| *at <= now)
                        .min_by_key(|(_, (at, _))| *at)
                        .map(|(i, _)| i);
                    let Some(i) = due else { break };
                    let (at, timer) = entry.timers.swap_remove(i);
                    entry.fire(at, timer, &mut self.out, &self.config);
                }
            }
            self.touched(&id);
        }
    }

    /// The earliest pending timer. Changes after every `handle_*`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first()
    }

    /// Adds a new call to the table, its timers to the index, and evicts beyond the limit.
    fn insert(&mut self, mut entry: EmulatedCall) {
        let id = entry.rec.id.clone();
        entry.ring_seq = self.next_ring;
        self.next_ring += 1;
        self.order.insert(entry.ring_seq, id.clone());
        self.calls.insert(id.clone(), entry);
        self.touched(&id);
        self.evict();
    }

    /// Re-reads call `id` after an input reached it: its earliest timer into the deadline
    /// index, and whether it is now an eviction candidate.
    fn touched(&mut self, id: &str) {
        let Some(entry) = self.calls.get(id) else {
            return;
        };
        if entry.rec.state == Phase::Terminated {
            self.terminated.insert(entry.ring_seq);
        }
        let next = entry.timers.iter().map(|(at, _)| *at).min();
        self.deadlines.set(id, next);
    }

    /// Drops call `id` from the table and every index.
    fn forget(&mut self, id: &str) {
        self.deadlines.remove(id);
        if let Some(entry) = self.calls.remove(id) {
            self.order.remove(&entry.ring_seq);
            self.terminated.remove(&entry.ring_seq);
        }
    }

    /// Forgets the oldest (in ring order) terminated calls beyond [`ModelConfig::max_calls`].
    fn evict(&mut self) {
        while self.calls.len() > self.config.max_calls {
            let Some(seq) = self.terminated.pop_first() else {
                break;
            };
            if let Some(id) = self.order.get(&seq).cloned() {
                self.forget(&id);
            }
        }
    }

    /// The next piece of work for the IO layer.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.queue.pop_front()
    }

    /// Everything known about a call.
    pub fn call(&self, id: &str) -> Option<&CallRecord> {
        self.calls.get(id).map(|e| &e.rec)
    }

    /// All calls, in ring order.
    pub fn calls(&self) -> Vec<CallSummary> {
        self.order
            .values()
            .filter_map(|id| self.calls.get(id))
            .map(|e| CallSummary {
                id: e.rec.id.clone(),
                scenario: e.rec.scenario,
                state: e.rec.state,
                outcome: e.rec.outcome,
                ended_by: e.rec.ended_by,
            })
            .collect()
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::record::EndReason;
    use serde_json::json;

    const BOT: &str = "https://127.0.0.1:9443/api/calling";

    fn ring(
        model: &mut Model,
        now: Instant,
        scenario: Scenario,
        script: Script,
        faults: Option<Faults>,
    ) -> String {
        model
            .handle_ring(
                now,
                Ring {
                    bot_url: BOT.into(),
                    scenario,
                    app_id: "app-1".into(),
                    tenant_id: None,
                    script,
                    faults,
                },
            )
            .unwrap()
    }

    fn req(op: Op, id: &str, body: Value) -> ApiRequest {
        ApiRequest {
            op,
            call_id: id.into(),
            method: if op == Op::Delete { "DELETE" } else { "POST" }.into(),
            path: format!("/v1.0/communications/calls/{id}"),
            headers: BTreeMap::new(),
            body: if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            },
            auth: Ok("app-1".into()),
            tenant: None,
        }
    }

    fn answer_body() -> Value {
        json!({
            "callbackUri": "https://127.0.0.1:9443/api/calls/vm-1",
            "acceptedModalities": ["audio"],
            "mediaConfig": {"@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": "{}"}
        })
    }

    fn drain(model: &mut Model) -> Vec<Delivery> {
        std::iter::from_fn(|| model.poll_output())
            .map(|Output::Notify(d)| d)
            .collect()
    }

    fn states(ds: &[Delivery]) -> Vec<String> {
        ds.iter()
            .map(|d| {
                d.body["value"][0]["resourceData"]["state"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn ring_sends_created_incoming_to_the_bot_url() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let id = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        let out = drain(&mut m);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].url, BOT);
        assert_eq!(out[0].app_id, "app-1");
        assert_eq!(out[0].body["value"][0]["changeType"], "created");
        assert_eq!(out[0].body["value"][0]["resourceData"]["id"], id.as_str());
        assert_eq!(states(&out), ["incoming"]);
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(15)));
    }

    #[test]
    fn decision_latency_starts_when_the_notifier_sends_the_incoming_notification() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let id = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        let out = drain(&mut m);
        m.handle_sending(t0 + Duration::from_millis(3), &id, out[0].seq);
        let r = m.handle_request(
            t0 + Duration::from_millis(10),
            req(Op::Answer, &id, answer_body()),
        );
        assert_eq!(r.status, 202);
        let rec = m.call(&id).unwrap();
        assert_eq!(
            rec.decision.as_ref().unwrap().after_notification,
            Some(Duration::from_millis(7))
        );
        assert_eq!(
            rec.notifications().next().unwrap().sent_at,
            Some(Duration::from_millis(3))
        );
        // Later sends (establishing) do not move the start of the decision latency.
        let later = drain(&mut m);
        m.handle_sending(t0 + Duration::from_millis(20), &id, later[0].seq);
        assert_eq!(
            m.call(&id)
                .unwrap()
                .decision
                .as_ref()
                .unwrap()
                .after_notification,
            Some(Duration::from_millis(7))
        );
    }

    #[test]
    fn timeouts_fire_for_exactly_the_due_calls_among_many() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let ids: Vec<String> = (0..5_000u64)
            .map(|i| {
                let at = t0 + Duration::from_millis(i);
                ring(&mut m, at, Scenario::P2p, Script::default(), None)
            })
            .collect();
        drain(&mut m);
        let window = Duration::from_secs(15);
        assert_eq!(m.poll_timeout(), Some(t0 + window));
        m.handle_timeout(t0 + window + Duration::from_millis(9));
        let timed_out: Vec<&String> = ids
            .iter()
            .filter(|id| m.call(id).unwrap().outcome == Outcome::TimedOut)
            .collect();
        assert_eq!(timed_out, ids[..10].iter().collect::<Vec<_>>());
        assert_eq!(drain(&mut m).len(), 10);
        assert_eq!(
            m.poll_timeout(),
            Some(t0 + window + Duration::from_millis(10))
        );
    }

    #[test]
    fn answer_in_time_establishes_and_follows_callback_uri() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let id = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        drain(&mut m);
        let r = m.handle_request(
            t0 + Duration::from_millis(14_999),
            req(Op::Answer, &id, answer_body()),
        );
        assert_eq!(r.status, 202);
        let first = drain(&mut m);
        assert_eq!(states(&first), ["establishing"]);
        assert_eq!(first[0].url, "https://127.0.0.1:9443/api/calls/vm-1");
        let next = m.poll_timeout().unwrap();
        m.handle_timeout(next);
        assert_eq!(states(&drain(&mut m)), ["established"]);
        let rec = m.call(&id).unwrap();
        assert_eq!(
            (rec.state, rec.outcome),
            (Phase::Established, Outcome::Answered)
        );
        assert_eq!(
            rec.decision.as_ref().unwrap().after_notification,
            Some(Duration::from_millis(14_999))
        );
        // No deadline is left after the answer.
        m.handle_timeout(t0 + Duration::from_secs(60));
        assert!(drain(&mut m).is_empty());
    }

    #[test]
    fn unanswered_call_times_out_at_15_s_and_tells_the_bot() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let id = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        drain(&mut m);
        m.handle_timeout(t0 + Duration::from_millis(14_999));
        assert!(drain(&mut m).is_empty());
        m.handle_timeout(t0 + Duration::from_secs(15));
        let out = drain(&mut m);
        assert_eq!(states(&out), ["terminated"]);
        assert_eq!(out[0].body["value"][0]["changeType"], "deleted");
        assert_eq!(
            out[0].body["value"][0]["resourceData"]["resultInfo"]["code"],
            408
        );
        assert_eq!(
            out[0].body["value"][0]["resourceData"]["resultInfo"]["subcode"],
            1106
        );
        let rec = m.call(&id).unwrap();
        assert_eq!(rec.outcome, Outcome::TimedOut);
        assert_eq!(rec.ended_by, Some(EndReason::TimedOut));
        assert!(rec.events().any(|e| e.event == "timedOut"));
    }

    #[test]
    fn policy_recording_window_is_5_s_and_late_answer_gets_8522() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let id = ring(
            &mut m,
            t0,
            Scenario::PolicyRecording,
            Script::default(),
            None,
        );
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        let r = m.handle_request(
            t0 + Duration::from_secs(5),
            req(Op::Answer, &id, answer_body()),
        );
        assert_eq!(r.status, 404);
        assert_eq!(
            r.body,
            Reply::Error {
                code: "8522".into(),
                message: "Call not found.".into()
            }
        );
        assert_eq!(m.call(&id).unwrap().outcome, Outcome::TimedOut);
        assert_eq!(m.call(&id).unwrap().requests().count(), 1);
    }

    #[test]
    fn timeout_result_is_configurable_and_notification_optional() {
        let mut m = Model::new(ModelConfig {
            timeout_result: ResultInfo::new(480, 10037, "nobody"),
            notify_on_timeout: false,
            ..ModelConfig::default()
        });
        let t0 = Instant::now();
        let id = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        drain(&mut m);
        m.handle_timeout(t0 + Duration::from_secs(16));
        assert!(drain(&mut m).is_empty());
        assert_eq!(
            m.call(&id).unwrap().result_info.as_ref().unwrap().code,
            Some(480)
        );
    }

    #[test]
    fn a_call_is_decided_once() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let id = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        assert_eq!(
            m.handle_request(t0, req(Op::Reject, &id, json!({"reason": "busy"})))
                .status,
            202
        );
        let out = drain(&mut m);
        assert_eq!(states(&out), ["incoming", "terminated"]);
        let again = m.handle_request(t0, req(Op::Answer, &id, answer_body()));
        assert_eq!(again.status, 409);
        let rec = m.call(&id).unwrap();
        assert_eq!(
            (rec.outcome, rec.ended_by),
            (Outcome::Rejected, Some(EndReason::Rejected))
        );
        assert_eq!(rec.result_info.as_ref().unwrap().code, Some(603));
    }

    #[test]
    fn bad_bodies_do_not_decide() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let id = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        let r = m.handle_request(
            t0,
            req(Op::Answer, &id, json!({"acceptedModalities": ["audio"]})),
        );
        assert_eq!(r.status, 400);
        assert!(matches!(&r.body, Reply::Error { code, .. } if code == "invalidRequest"));
        assert_eq!(
            m.handle_request(t0, req(Op::Answer, &id, answer_body()))
                .status,
            202
        );
    }

    #[test]
    fn unauthenticated_and_unknown() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let id = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        let mut r = req(Op::Answer, &id, answer_body());
        r.auth = Err("no token".into());
        assert_eq!(m.handle_request(t0, r).status, 401);
        assert_eq!(m.call(&id).unwrap().outcome, Outcome::Pending);
        let mut r = req(Op::Answer, &id, answer_body());
        r.auth = Ok("someone-else".into());
        assert_eq!(m.handle_request(t0, r).status, 403);
        let r = m.handle_request(t0, req(Op::Answer, "nope", answer_body()));
        assert_eq!(r.status, 404);
        let unmatched: Vec<_> = m.unmatched_requests().collect();
        assert_eq!(unmatched.len(), 1);
        assert_eq!(unmatched[0].path, "/v1.0/communications/calls/nope");
        assert_eq!(unmatched[0].error_code.as_deref(), Some("itemNotFound"));
        assert!(matches!(&r.body, Reply::Error { code, .. } if code == "itemNotFound"));
    }

    #[test]
    fn reorder_knob_sends_established_first_and_duplicate_doubles() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let faults = Faults {
            reorder: true,
            duplicate: true,
            ..Faults::default()
        };
        let id = ring(&mut m, t0, Scenario::P2p, Script::default(), Some(faults));
        assert_eq!(drain(&mut m).len(), 2);
        assert_eq!(
            m.handle_request(t0, req(Op::Answer, &id, answer_body()))
                .status,
            202
        );
        let out = drain(&mut m);
        assert_eq!(
            states(&out),
            ["established", "established", "establishing", "establishing"]
        );
        assert_eq!(m.call(&id).unwrap().state, Phase::Established);
    }

    #[test]
    fn throttle_then_answer_still_in_time() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let faults = Faults {
            throttle: Some(crate::emulator::fault::Throttle {
                count: 1,
                retry_after_secs: 2.0,
            }),
            delay_ms: Some(7),
            ..Faults::default()
        };
        let id = ring(&mut m, t0, Scenario::P2p, Script::default(), Some(faults));
        let r = m.handle_request(t0, req(Op::Answer, &id, answer_body()));
        assert_eq!(
            (r.status, r.retry_after),
            (429, Some(Duration::from_secs(2)))
        );
        assert_eq!(r.delay, Duration::from_millis(7));
        let r = m.handle_request(
            t0 + Duration::from_secs(2),
            req(Op::Answer, &id, answer_body()),
        );
        assert_eq!(r.status, 202);
    }

    #[test]
    fn caller_hangs_up_after_script_and_bot_delete() {
        let mut m = Model::new(ModelConfig {
            establish_delay: Duration::ZERO,
            ..ModelConfig::default()
        });
        let t0 = Instant::now();
        let script = Script {
            hangup_after_ms: Some(3_000),
            cancel_after_ms: None,
        };
        let id = ring(&mut m, t0, Scenario::Pstn, script, None);
        m.handle_request(t0, req(Op::Answer, &id, answer_body()));
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(3)));
        drain(&mut m);
        m.handle_timeout(t0 + Duration::from_secs(3));
        let out = drain(&mut m);
        assert_eq!(states(&out), ["terminated"]);
        assert_eq!(
            out[0].body["value"][0]["resourceData"]["resultInfo"]["subcode"],
            540000
        );
        assert_eq!(m.call(&id).unwrap().ended_by, Some(EndReason::CallerHungUp));
        assert_eq!(
            m.handle_request(t0, req(Op::Delete, &id, Value::Null))
                .status,
            404
        );

        let id2 = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        m.handle_request(t0, req(Op::Answer, &id2, answer_body()));
        drain(&mut m);
        assert_eq!(
            m.handle_request(t0, req(Op::Delete, &id2, Value::Null))
                .status,
            204
        );
        assert_eq!(states(&drain(&mut m)), ["terminating", "terminated"]);
        assert_eq!(m.call(&id2).unwrap().ended_by, Some(EndReason::BotHungUp));
    }

    #[test]
    fn caller_cancels_while_ringing() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let script = Script {
            hangup_after_ms: None,
            cancel_after_ms: Some(2_000),
        };
        let id = ring(&mut m, t0, Scenario::GroupCall, script, None);
        m.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(m.call(&id).unwrap().outcome, Outcome::CallerCancelled);
        let late = m.handle_request(
            t0 + Duration::from_secs(3),
            req(Op::Answer, &id, answer_body()),
        );
        assert_eq!(late.status, 404);
        assert_eq!(
            m.handle_hangup(t0, &id),
            Err(ModelError::Terminated(id.clone()))
        );
    }

    #[test]
    fn imported_call_is_incoming_without_a_notification() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = Instant::now();
        let call = Scenario::PolicyRecording.build(&CallParams {
            call_id: "saved-1".into(),
            ..CallParams::default()
        });
        let id = m
            .handle_import(
                t0,
                Import {
                    call,
                    bot_url: BOT.into(),
                    app_id: "app-1".into(),
                },
            )
            .unwrap();
        assert_eq!(id, "saved-1");
        assert!(drain(&mut m).is_empty());
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(m.call(&id).unwrap().scenario, Scenario::PolicyRecording);
        let r = m.handle_request(t0, req(Op::Answer, &id, answer_body()));
        assert_eq!(r.status, 202);
        assert_eq!(states(&drain(&mut m)), ["establishing"]);
        let no_id = m.handle_import(t0, Import::default());
        assert!(matches!(no_id, Err(ModelError::InvalidRing(_))));
    }

    #[test]
    fn oldest_terminated_calls_are_forgotten_beyond_max_calls() {
        let mut m = Model::new(ModelConfig {
            max_calls: 2,
            ..ModelConfig::default()
        });
        let t0 = Instant::now();
        let a = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        let b = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        m.handle_request(t0, req(Op::Reject, &a, json!({})));
        let c = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        assert!(m.call(&a).is_none());
        assert!(m.call(&b).is_some() && m.call(&c).is_some());
        // Live calls are never forgotten, even beyond the cap.
        let d = ring(&mut m, t0, Scenario::P2p, Script::default(), None);
        assert_eq!(m.calls().len(), 3);
        assert!(m.call(&d).is_some());
    }

    #[test]
    fn ids_are_reproducible_from_the_seed() {
        let t0 = Instant::now();
        let mut a = Model::new(ModelConfig::default());
        let mut b = Model::new(ModelConfig::default());
        assert_eq!(
            ring(&mut a, t0, Scenario::P2p, Script::default(), None),
            ring(&mut b, t0, Scenario::P2p, Script::default(), None)
        );
    }
}
