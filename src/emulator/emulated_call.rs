//! One emulated call inside the [`Model`](super::model::Model): its record, timers and fault
//! counters, and how it reacts to the bot's requests, the caller and its timers — the
//! service rules listed in [`super::model`]. Also the outbox the calls queue notifications on.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::graph::{
    Call, CallDirection, CallId, CallState, ChangeType, CommsNotification, CommsNotifications,
    ResultInfo,
};

use super::fault::{FaultState, Injected};
use super::model::{ApiRequest, ApiResponse, Delivery, ModelConfig, Op, Output, Reply};
use super::record::{
    Action, CallRecord, Decision, EndReason, EventRecord, HistoryEntry, NotificationRecord,
    Outcome, Phase, RequestRecord,
};
use super::request::{self, Invalid};

/// Notifications queued by the calls, in order, with the emulator-wide sequence counter.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    pub(super) queue: VecDeque<Output>,
    pub(super) next_seq: u64,
}

/// One call: the record the control API shows plus the service's private state.
#[derive(Debug)]
pub(super) struct EmulatedCall {
    pub(super) rec: CallRecord,
    pub(super) rang_at: Instant,
    /// Position in ring order (set when the model adds the call).
    pub(super) ring_seq: u64,
    pub(super) faults: FaultState,
    pub(super) incoming_sent: Option<Duration>,
    pub(super) etag: u64,
    pub(super) timers: Vec<(Instant, Timer)>,
}

/// What a call waits for.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum Timer {
    AnswerDeadline,
    Established,
    CallerHangUp,
    CallerCancel,
}

impl EmulatedCall {
    pub(super) fn since(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.rang_at)
    }

    pub(super) fn event(&mut self, now: Instant, what: &str) {
        let at = self.since(now);
        self.rec.history.push(HistoryEntry::Event(EventRecord {
            at,
            event: what.to_owned(),
        }));
    }

    /// Everything after token validation: faults, body, state.
    pub(super) fn serve(
        &mut self,
        now: Instant,
        req: &ApiRequest,
        out: &mut Outbox,
        cfg: &ModelConfig,
    ) -> ApiResponse {
        match &req.auth {
            Err(why) => return error(401, "InvalidAuthenticationToken", why),
            Ok(app) if *app != self.rec.app_id => {
                return error(
                    403,
                    "7504",
                    "Insufficient enterprise tenant permissions, cannot access this API.",
                );
            }
            Ok(_) => {}
        }
        if let Some(tenant) = &req.tenant
            && !tenant.eq_ignore_ascii_case(&self.rec.tenant_id)
        {
            // Graph's answer to an app acting in a tenant other than the call's.
            return error(
                403,
                "7504",
                "Insufficient enterprise tenant permissions, cannot access this API.",
            );
        }
        match self.faults.on_request(self.since(now)) {
            Some(Injected::Throttled(after)) => {
                let mut r = error(429, "TooManyRequests", "Please retry again later.");
                r.retry_after = Some(after);
                return r;
            }
            Some(Injected::ServerError(status, after)) => {
                let code = if status == 503 {
                    "serviceNotAvailable"
                } else {
                    "generalException"
                };
                let mut r = error(
                    status,
                    code,
                    "The service is temporarily unavailable (injected fault).",
                );
                r.retry_after = after;
                return r;
            }
            None => {}
        }
        let action = match req.op {
            Op::Get => return self.get(),
            Op::Delete => return self.delete(now, out),
            Op::Answer => Action::Answer,
            Op::Reject => Action::Reject,
            Op::Redirect => Action::Redirect,
        };
        let body = match request::object(&req.body) {
            Ok(b) => b,
            Err(Invalid(m)) => return error(400, "invalidRequest", &m),
        };
        let checked = match action {
            Action::Answer => request::answer(&body).map(|a| (a.callback_uri, String::new())),
            Action::Reject => request::reject(&body).map(|r| (r.callback_uri, r.reason)),
            Action::Redirect => request::redirect(&body)
                .map(|r| (r.callback_uri, format!("{} target(s)", r.targets))),
        };
        let (callback_uri, detail) = match checked {
            Ok(c) => c,
            Err(Invalid(m)) => return error(400, "invalidRequest", &m),
        };
        if let Some(d) = &self.rec.decision {
            return error(
                409,
                "conflict",
                &format!(
                    "The call was already decided ({}); a call is answered, rejected or redirected once.",
                    d.action.name()
                ),
            );
        }
        if self.rec.state != Phase::Incoming {
            return error(404, "8522", "Call not found.");
        }
        self.rec.decision = Some(Decision {
            action,
            at: self.since(now),
            after_notification: self
                .incoming_sent
                .map(|s| self.since(now).saturating_sub(s)),
            body: Value::Object(body),
        });
        self.timers
            .retain(|(_, t)| !matches!(t, Timer::AnswerDeadline | Timer::CallerCancel));
        if let Some(uri) = callback_uri {
            self.rec.callback_uri = uri;
        }
        match action {
            Action::Answer => {
                self.rec.outcome = Outcome::Answered;
                self.event(now, "answered");
                if self.faults.faults().reorder {
                    self.set_state(now, out, Phase::Established);
                    self.set_state(now, out, Phase::Establishing);
                    self.rec.state = Phase::Established;
                    self.established(now);
                } else if cfg.establish_delay.is_zero() {
                    self.set_state(now, out, Phase::Establishing);
                    self.set_state(now, out, Phase::Established);
                    self.established(now);
                } else {
                    self.set_state(now, out, Phase::Establishing);
                    self.timers
                        .push((now + cfg.establish_delay, Timer::Established));
                }
            }
            Action::Reject => {
                self.rec.outcome = Outcome::Rejected;
                self.event(now, "rejected");
                let message = format!("Call rejected by the application (reason: {detail}).");
                self.terminate(now, out, EndReason::Rejected, 603, 0, &message);
            }
            Action::Redirect => {
                self.rec.outcome = Outcome::Redirected;
                self.event(now, "redirected");
                let message = format!("Call redirected by the application to {detail}.");
                self.terminate(now, out, EndReason::Redirected, 302, 0, &message);
            }
        }
        ApiResponse {
            status: 202,
            body: Reply::Empty,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    pub(super) fn get(&self) -> ApiResponse {
        if self.rec.state == Phase::Terminated {
            return error(404, "8522", "Call not found.");
        }
        let mut call = serde_json::to_value(&self.rec.call).unwrap_or(Value::Null);
        call["@odata.context"] =
            Value::from("https://graph.microsoft.com/v1.0/$metadata#communications/calls/$entity");
        ApiResponse {
            status: 200,
            body: Reply::Json(call),
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    pub(super) fn delete(&mut self, now: Instant, out: &mut Outbox) -> ApiResponse {
        if self.rec.state == Phase::Terminated {
            return error(404, "8522", "Call not found.");
        }
        self.event(now, "botHungUp");
        self.timers.clear();
        self.set_state(now, out, PhaseOrTerminating::Terminating);
        self.terminate(
            now,
            out,
            EndReason::BotHungUp,
            200,
            7000,
            "Call ended by the application.",
        );
        ApiResponse {
            status: 204,
            body: Reply::Empty,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    pub(super) fn caller_leaves(&mut self, now: Instant, out: &mut Outbox) {
        self.timers.clear();
        if self.rec.state == Phase::Incoming {
            self.rec.outcome = Outcome::CallerCancelled;
            self.event(now, "callerCancelled");
            self.terminate(
                now,
                out,
                EndReason::CallerCancelled,
                487,
                0,
                "The caller hung up before the call was answered.",
            );
        } else {
            self.event(now, "callerHungUp");
            let (code, subcode, message) = self.rec.scenario.hangup_result();
            self.terminate(now, out, EndReason::CallerHungUp, code, subcode, message);
        }
    }

    pub(super) fn fire(&mut self, at: Instant, timer: Timer, out: &mut Outbox, cfg: &ModelConfig) {
        match timer {
            Timer::AnswerDeadline => {
                if self.rec.state != Phase::Incoming {
                    return;
                }
                self.timers.clear();
                self.rec.outcome = Outcome::TimedOut;
                self.event(at, "timedOut");
                let r = cfg.timeout_result.clone();
                if cfg.notify_on_timeout {
                    self.terminate_with(at, out, EndReason::TimedOut, r);
                } else {
                    self.rec.state = Phase::Terminated;
                    self.rec.ended_by = Some(EndReason::TimedOut);
                    self.rec.call.state = Some(CallState::Terminated);
                    self.rec.call.result_info = Some(r.clone());
                    self.rec.result_info = Some(r);
                }
            }
            Timer::Established => {
                if self.rec.state == Phase::Establishing {
                    self.set_state(at, out, Phase::Established);
                    self.established(at);
                }
            }
            Timer::CallerHangUp | Timer::CallerCancel => {
                if self.rec.state != Phase::Terminated {
                    self.caller_leaves(at, out);
                }
            }
        }
    }

    /// The call is up: start the caller's hang-up script.
    pub(super) fn established(&mut self, now: Instant) {
        self.event(now, "established");
        if let Some(after) = self.rec.script.hangup_after() {
            self.timers.push((now + after, Timer::CallerHangUp));
        }
    }

    pub(super) fn set_state(
        &mut self,
        now: Instant,
        out: &mut Outbox,
        state: impl Into<PhaseOrTerminating>,
    ) {
        let state = state.into();
        if let PhaseOrTerminating::Phase(p) = state {
            self.rec.state = p;
        }
        let call_state = state.call_state();
        self.rec.call.state = Some(call_state.clone());
        let data = self.update_data(call_state);
        self.notify(now, out, ChangeType::Updated, data);
    }

    pub(super) fn terminate(
        &mut self,
        now: Instant,
        out: &mut Outbox,
        why: EndReason,
        code: i32,
        subcode: i32,
        message: &str,
    ) {
        self.terminate_with(now, out, why, ResultInfo::new(code, subcode, message));
    }

    pub(super) fn terminate_with(
        &mut self,
        now: Instant,
        out: &mut Outbox,
        why: EndReason,
        result: ResultInfo,
    ) {
        self.timers.clear();
        self.rec.state = Phase::Terminated;
        self.rec.ended_by = Some(why);
        self.rec.call.state = Some(CallState::Terminated);
        self.rec.call.result_info = Some(result.clone());
        let mut data = self.update_data(CallState::Terminated);
        data.result_info = Some(result.clone());
        self.rec.result_info = Some(result);
        self.notify(now, out, ChangeType::Deleted, data);
    }

    /// The resource data of a state notification: the minimal payload Graph sends (state,
    /// ids, and the meeting's chat/meeting info).
    pub(super) fn update_data(&mut self, state: CallState) -> Call {
        self.etag += 1;
        let c = &self.rec.call;
        let mut extra = serde_json::Map::new();
        extra.insert(
            "@odata.id".into(),
            Value::from(format!("/communications/calls/{}", self.rec.id)),
        );
        extra.insert(
            "@odata.etag".into(),
            Value::from(format!("W/\"{}\"", self.etag)),
        );
        Call {
            id: Some(CallId::new(self.rec.id.clone())),
            state: Some(state),
            direction: Some(CallDirection::Incoming),
            tenant_id: c.tenant_id.clone(),
            my_participant_id: c.my_participant_id.clone(),
            call_chain_id: c.call_chain_id.clone(),
            chat_info: c.chat_info.clone(),
            meeting_info: c.meeting_info.clone(),
            extra,
            ..Call::default()
        }
    }

    pub(super) fn notify(
        &mut self,
        now: Instant,
        out: &mut Outbox,
        change_type: ChangeType,
        data: Call,
    ) {
        let id = &self.rec.id;
        let url = if change_type == ChangeType::Created {
            self.rec.bot_url.clone()
        } else {
            self.rec.callback_uri.clone()
        };
        let state = data
            .state
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        let mut n =
            CommsNotification::for_call(change_type.clone(), &CallId::new(id.clone()), data);
        n.resource = Some(format!("/app/calls/{id}"));
        n.callback_uri = Some(self.rec.callback_uri.clone());
        // Serializing the graph model into a Value cannot fail (string keys, no maps with
        // non-string keys); fall back to null rather than panic all the same.
        let body = serde_json::to_value(CommsNotifications::new(vec![n])).unwrap_or(Value::Null);
        let copies = if self.faults.faults().duplicate { 2 } else { 1 };
        for copy in 0..copies {
            let seq = out.next_seq;
            out.next_seq += 1;
            let at = self.since(now);
            self.rec
                .history
                .push(HistoryEntry::Notification(NotificationRecord {
                    seq,
                    at,
                    sent_at: None,
                    url: url.clone(),
                    change_type: change_type.as_str().to_owned(),
                    state: state.clone(),
                    duplicate: copy > 0,
                    body: body.clone(),
                    bot_status: None,
                    error: None,
                    responded_at: None,
                }));
            out.queue.push_back(Output::Notify(Delivery {
                seq,
                call_id: id.clone(),
                url: url.clone(),
                app_id: self.rec.app_id.clone(),
                tenant_id: self.rec.tenant_id.clone(),
                body: body.clone(),
            }));
        }
    }

    pub(super) fn record_request(&mut self, now: Instant, req: &ApiRequest, resp: &ApiResponse) {
        let at = self.since(now);
        self.rec
            .history
            .push(HistoryEntry::Request(request_record(at, req, resp)));
    }
}

/// The history entry of a request answered with `resp`, `at` after the call rang.
pub(super) fn request_record(at: Duration, req: &ApiRequest, resp: &ApiResponse) -> RequestRecord {
    let body = if req.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&req.body)
            .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(&req.body).into_owned()))
    };
    RequestRecord {
        at,
        method: req.method.clone(),
        path: req.path.clone(),
        headers: req.headers.clone(),
        body,
        status: resp.status,
        error_code: match &resp.body {
            Reply::Error { code, .. } => Some(code.clone()),
            _ => None,
        },
        retry_after_secs: resp.retry_after.map(|d| d.as_secs_f64()),
        delay: resp.delay,
    }
}

/// A call state named in a notification: a [`Phase`] or the transient `terminating`.
#[derive(Clone, Copy, Debug)]
pub(super) enum PhaseOrTerminating {
    Phase(Phase),
    Terminating,
}

impl From<Phase> for PhaseOrTerminating {
    fn from(p: Phase) -> Self {
        Self::Phase(p)
    }
}

impl PhaseOrTerminating {
    pub(super) fn call_state(self) -> CallState {
        match self {
            Self::Phase(Phase::Incoming) => CallState::Incoming,
            Self::Phase(Phase::Establishing) => CallState::Establishing,
            Self::Phase(Phase::Established) => CallState::Established,
            Self::Phase(Phase::Terminated) => CallState::Terminated,
            Self::Terminating => CallState::Terminating,
        }
    }
}

pub(super) fn error(status: u16, code: &str, message: &str) -> ApiResponse {
    ApiResponse {
        status,
        body: Reply::Error {
            code: code.to_owned(),
            message: message.to_owned(),
        },
        retry_after: None,
        delay: Duration::ZERO,
    }
}
