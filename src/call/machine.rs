//! `Call`: the sans-IO state machine of one incoming call.
//!
//! Inputs take `now`: [`Call::decide`], [`Call::handle_state`], [`Call::handle_api_outcome`],
//! [`Call::handle_timeout`], [`Call::hang_up`]. Outputs are pulled: [`Call::poll_output`] and
//! [`Call::poll_timeout`]. After any `handle_*`/`decide`/`hang_up`, drain `poll_output` until
//! it returns `None`, then re-read `poll_timeout`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::api::{ApiCommand, ApiOutcome, GraphApiError, RequestId, Retry};
use super::config::CallConfig;
use super::decision::{Action, Decision, DecisionSource};
use super::error::CallError;
use super::output::{CallEvent, CallFailure, CallOutput};
use super::state::CallPhase;
use super::wire::{CallState, ResultInfo};
use crate::graph::CallId;

/// One incoming call, from ringing to cleanup.
#[derive(Debug)]
pub struct Call {
    id: CallId,
    cfg: Arc<CallConfig>,
    policy_recording: bool,
    deadline: Instant,
    decide_by: Instant,
    phase: CallPhase,
    decision: Option<DecisionRecord>,
    pending: Option<Pending>,
    remote_state: Option<CallState>,
    result_info: Option<ResultInfo>,
    failure: Option<CallFailure>,
    timings: CallTimings,
    cleanup_at: Option<Instant>,
    next_seq: u32,
    outbox: VecDeque<CallOutput>,
}

/// What was decided, by whom, and how delivering it went.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionRecord {
    /// The decision.
    pub decision: Decision,
    /// Who decided.
    pub source: DecisionSource,
    /// Requests sent for it (1 = no retry).
    pub attempts: u32,
    /// The last error Graph returned for it, if any.
    pub last_error: Option<GraphApiError>,
}

/// When things happened to a call (monotonic instants; `received` is the incoming
/// notification's arrival).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct CallTimings {
    /// Incoming notification received.
    pub received: Instant,
    /// Decision made.
    pub decided: Option<Instant>,
    /// First request for the decision emitted.
    pub decision_sent: Option<Instant>,
    /// Graph accepted the decision.
    pub decision_accepted: Option<Instant>,
    /// `established` seen.
    pub established: Option<Instant>,
    /// `terminated` seen or failure declared.
    pub ended: Option<Instant>,
}

/// How a state notification was taken.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum StateDisposition {
    /// It moved the call on.
    Applied,
    /// Same state as already known (a duplicated notification).
    Duplicate,
    /// Older than what is known (reordered), or not applicable in this phase: ignored.
    Stale,
}

#[derive(Debug)]
struct Pending {
    kind: PendingKind,
    attempts: u32,
    in_flight: Option<RequestId>,
    retry_at: Option<Instant>,
}

#[derive(Debug)]
enum PendingKind {
    Decision,
    Delete,
}

impl Call {
    /// A call whose incoming notification arrived at `now`. The deadline is
    /// `now + answer_window` (or the policy-recording window); the default decision is due at
    /// `deadline - margin`. Emits [`CallEvent::Incoming`].
    pub fn incoming(
        now: Instant,
        id: CallId,
        policy_recording: bool,
        cfg: Arc<CallConfig>,
    ) -> Self {
        let (window, margin) = cfg.window(policy_recording);
        let deadline = now + window;
        let decide_by = now + window.saturating_sub(margin);
        let mut outbox = VecDeque::new();
        outbox.push_back(CallOutput::Event(CallEvent::Incoming {
            call_id: id.clone(),
            deadline,
            decide_by,
        }));
        Self {
            id,
            cfg,
            policy_recording,
            deadline,
            decide_by,
            phase: CallPhase::Incoming,
            decision: None,
            pending: None,
            remote_state: Some(CallState::Incoming),
            result_info: None,
            failure: None,
            timings: CallTimings {
                received: now,
                decided: None,
                decision_sent: None,
                decision_accepted: None,
                established: None,
                ended: None,
            },
            cleanup_at: None,
            next_seq: 1,
            outbox,
        }
    }

    /// The application's decision. Made once: a second or late decision (after the default
    /// was applied) is an error and changes nothing.
    pub fn decide(&mut self, now: Instant, decision: Decision) -> Result<(), CallError> {
        self.decide_as(now, decision, DecisionSource::Application)
    }

    /// A Graph state notification for this call (`resourceData.state`, with `resultInfo`).
    pub fn handle_state(
        &mut self,
        now: Instant,
        state: CallState,
        result_info: Option<ResultInfo>,
    ) -> StateDisposition {
        if self.phase.is_terminal() {
            if state == CallState::Terminated && self.result_info.is_none() && result_info.is_some()
            {
                // A failed call may still learn why Graph ended it; no output after the end.
                self.result_info = result_info;
            }
            return StateDisposition::Duplicate;
        }
        use CallPhase as P;
        let next = match (&state, self.phase) {
            (CallState::Incoming, _) => return StateDisposition::Duplicate,
            (CallState::Terminated, _) => {
                self.result_info = result_info;
                self.remote_state = Some(state.clone());
                self.end(now, P::Terminated);
                let result_info = self.result_info.clone();
                self.emit(CallEvent::Terminated {
                    call_id: self.id.clone(),
                    result_info,
                });
                return StateDisposition::Applied;
            }
            (CallState::Establishing, P::Establishing)
            | (CallState::Established, P::Established)
            | (CallState::Terminating, P::Terminating) => return StateDisposition::Duplicate,
            // Never decided: a state change is not ours to take.
            (_, P::Incoming) => return StateDisposition::Stale,
            (CallState::Establishing, P::Deciding | P::Accepted) => P::Establishing,
            (CallState::Establishing, _) => return StateDisposition::Stale,
            (CallState::Established, P::Deciding | P::Accepted | P::Establishing) => P::Established,
            (CallState::Established, _) => return StateDisposition::Stale,
            (CallState::Terminating, _) => P::Terminating,
            (other, _) => {
                // hold, transferring, redirecting…: recorded, the phase stays.
                self.remote_state = Some(other.clone());
                return StateDisposition::Applied;
            }
        };
        if self.phase == P::Deciding && matches!(next, P::Establishing | P::Established) {
            // Graph moved on before our request's 202 came back: it was accepted.
            self.accepted(now);
        }
        self.remote_state = Some(state);
        if next == P::Established && self.timings.established.is_none() {
            self.timings.established = Some(now);
        }
        self.phase = next;
        self.emit(CallEvent::PhaseChanged {
            call_id: self.id.clone(),
            phase: next,
        });
        StateDisposition::Applied
    }

    /// The result of a command this call emitted. Outcomes for requests that are no longer
    /// current (superseded, or the call moved on) are ignored.
    pub fn handle_api_outcome(&mut self, now: Instant, request: &RequestId, outcome: ApiOutcome) {
        let Some(pending) = self.pending.as_mut() else {
            return;
        };
        if pending.in_flight.as_ref() != Some(request) {
            return;
        }
        pending.in_flight = None;
        let is_delete = matches!(pending.kind, PendingKind::Delete);
        let attempts = pending.attempts;
        let error = match outcome {
            Ok(()) => {
                self.pending = None;
                if !is_delete && self.phase == CallPhase::Deciding {
                    self.accepted(now);
                    self.phase = CallPhase::Accepted;
                }
                return;
            }
            Err(error) => error,
        };
        let retry_at = match error.retry {
            Retry::Never => None,
            Retry::After(d) => Some(now + d),
            Retry::Backoff => Some(now + self.cfg.backoff(attempts)),
        };
        if is_delete {
            if error.status == 404 {
                // Already gone on Graph's side: the call is over.
                self.end(now, CallPhase::Terminated);
                self.emit(CallEvent::Terminated {
                    call_id: self.id.clone(),
                    result_info: None,
                });
            } else if let Some(at) = retry_at.filter(|_| attempts < self.cfg.delete_attempts) {
                self.schedule_retry(at);
            } else {
                self.pending = None;
                self.emit(CallEvent::HangUpFailed {
                    call_id: self.id.clone(),
                    error,
                });
            }
            return;
        }
        if let Some(record) = self.decision.as_mut() {
            record.last_error = Some(error.clone());
        }
        if self.phase != CallPhase::Deciding {
            self.pending = None;
            return;
        }
        match retry_at {
            Some(at) if at + self.cfg.min_time_for_attempt <= self.deadline => {
                self.schedule_retry(at);
            }
            Some(_) => self.fail(
                now,
                CallFailure::DeadlineExceeded {
                    last_error: Some(error),
                },
            ),
            None => self.fail(now, CallFailure::Refused(error)),
        }
    }

    /// Fires whatever is due at `now`: the default decision, a scheduled retry, giving up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == CallPhase::Incoming && now >= self.decide_by {
            let default = self.cfg.default_decision.clone();
            // The default is validated when the config is built; if it is still invalid the
            // call fails rather than sending something Graph would refuse.
            if self
                .decide_as(now, default, DecisionSource::Default)
                .is_err()
            {
                self.fail(now, CallFailure::DeadlineExceeded { last_error: None });
            }
            return;
        }
        if let Some(p) = self.pending.as_ref() {
            if p.retry_at.is_some_and(|at| now >= at) {
                if matches!(p.kind, PendingKind::Decision)
                    && now + self.cfg.min_time_for_attempt > self.deadline
                {
                    let last_error = self.decision.as_ref().and_then(|d| d.last_error.clone());
                    self.fail(now, CallFailure::DeadlineExceeded { last_error });
                } else {
                    self.send_attempt(now);
                }
                return;
            }
            if matches!(p.kind, PendingKind::Decision)
                && p.in_flight.is_some()
                && now >= self.deadline + IN_FLIGHT_GRACE
            {
                // The adapter never reported back; Graph has given up on the call by now.
                let last_error = self.decision.as_ref().and_then(|d| d.last_error.clone());
                self.fail(now, CallFailure::DeadlineExceeded { last_error });
            }
        }
    }

    /// Hangs up an answered call (`DELETE`). The end arrives later as a `terminated`
    /// notification.
    pub fn hang_up(&mut self, now: Instant) -> Result<(), CallError> {
        let answered = matches!(
            self.decision.as_ref().map(|d| d.decision.action()),
            Some(Action::Answer)
        );
        match self.phase {
            CallPhase::Terminated | CallPhase::Failed => {
                Err(CallError::AlreadyEnded(self.id.clone()))
            }
            CallPhase::Accepted | CallPhase::Establishing | CallPhase::Established if answered => {
                if self.pending.is_none() {
                    self.pending = Some(Pending {
                        kind: PendingKind::Delete,
                        attempts: 0,
                        in_flight: None,
                        retry_at: None,
                    });
                    self.send_attempt(now);
                }
                Ok(())
            }
            _ => Err(CallError::NotAnswered(self.id.clone())),
        }
    }

    /// The next instant at which [`Call::handle_timeout`] has work. Changes after `decide`,
    /// `handle_api_outcome` (a retry scheduled), `handle_state` (terminated → cleanup) and
    /// `handle_timeout`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = None::<Instant>;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if self.phase == CallPhase::Incoming {
            consider(self.decide_by);
        }
        if let Some(p) = &self.pending {
            if let Some(at) = p.retry_at {
                consider(at);
            } else if matches!(p.kind, PendingKind::Decision) && p.in_flight.is_some() {
                consider(self.deadline + IN_FLIGHT_GRACE);
            }
        }
        if let Some(at) = self.cleanup_at {
            consider(at);
        }
        next
    }

    /// The next output, oldest first.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.outbox.pop_front()
    }

    /// The call id.
    pub fn id(&self) -> &CallId {
        &self.id
    }

    /// The current phase.
    pub fn phase(&self) -> CallPhase {
        self.phase
    }

    /// The last state Graph reported.
    pub fn remote_state(&self) -> Option<&CallState> {
        self.remote_state.as_ref()
    }

    /// Graph's answer deadline for this call.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The answer window (deadline − arrival): 15 s, or 5 s for policy recording.
    pub fn window(&self) -> Duration {
        self.deadline - self.timings.received
    }

    /// When the default decision applies if the application stays silent.
    pub fn decide_by(&self) -> Instant {
        self.decide_by
    }

    /// Whether this is a policy-based-recording invitation.
    pub fn is_policy_recording(&self) -> bool {
        self.policy_recording
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<&DecisionRecord> {
        self.decision.as_ref()
    }

    /// Graph's `resultInfo` from the `terminated` notification.
    pub fn result_info(&self) -> Option<&ResultInfo> {
        self.result_info.as_ref()
    }

    /// Why the call failed, if it did.
    pub fn failure(&self) -> Option<&CallFailure> {
        self.failure.as_ref()
    }

    /// When things happened.
    pub fn timings(&self) -> &CallTimings {
        &self.timings
    }

    /// True once the call is terminal and its grace period is over.
    pub fn is_removable(&self, now: Instant) -> bool {
        self.cleanup_at.is_some_and(|at| now >= at)
    }

    fn decide_as(
        &mut self,
        now: Instant,
        decision: Decision,
        source: DecisionSource,
    ) -> Result<(), CallError> {
        if let Some(record) = &self.decision {
            return Err(CallError::AlreadyDecided {
                call_id: self.id.clone(),
                by: record.source,
            });
        }
        if self.phase.is_terminal() {
            return Err(CallError::AlreadyEnded(self.id.clone()));
        }
        decision.validate()?;
        let action = decision.action();
        self.decision = Some(DecisionRecord {
            decision,
            source,
            attempts: 0,
            last_error: None,
        });
        self.timings.decided = Some(now);
        self.phase = CallPhase::Deciding;
        self.emit(CallEvent::Decided {
            call_id: self.id.clone(),
            action,
            source,
        });
        self.pending = Some(Pending {
            kind: PendingKind::Decision,
            attempts: 0,
            in_flight: None,
            retry_at: None,
        });
        self.send_attempt(now);
        Ok(())
    }

    fn send_attempt(&mut self, now: Instant) {
        let request = RequestId {
            call_id: self.id.clone(),
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let Some(pending) = self.pending.as_mut() else {
            return;
        };
        pending.attempts += 1;
        pending.retry_at = None;
        pending.in_flight = Some(request.clone());
        let command = match pending.kind {
            PendingKind::Delete => ApiCommand::Delete { request },
            PendingKind::Decision => {
                let Some(record) = self.decision.as_mut() else {
                    return;
                };
                record.attempts += 1;
                if self.timings.decision_sent.is_none() {
                    self.timings.decision_sent = Some(now);
                }
                let callback_uri = self
                    .cfg
                    .callback_base
                    .as_ref()
                    .map(|base| format!("{}/{}", base.trim_end_matches('/'), self.id));
                match &record.decision {
                    Decision::Answer(answer) => ApiCommand::Answer {
                        request,
                        callback_uri,
                        answer: answer.clone(),
                        deadline: self.deadline,
                    },
                    Decision::Reject { reason } => ApiCommand::Reject {
                        request,
                        reason: reason.clone(),
                        deadline: self.deadline,
                    },
                    Decision::Redirect { targets, timeout } => ApiCommand::Redirect {
                        request,
                        targets: targets.clone(),
                        timeout: *timeout,
                        callback_uri,
                        deadline: self.deadline,
                    },
                }
            }
        };
        self.outbox.push_back(CallOutput::Api(command));
    }

    fn schedule_retry(&mut self, at: Instant) {
        if let Some(p) = self.pending.as_mut() {
            p.retry_at = Some(at);
        }
    }

    fn accepted(&mut self, now: Instant) {
        if self.timings.decision_accepted.is_some() {
            return;
        }
        self.timings.decision_accepted = Some(now);
        self.pending = None;
        if let Some(record) = &self.decision {
            let action = record.decision.action();
            self.emit(CallEvent::DecisionAccepted {
                call_id: self.id.clone(),
                action,
            });
        }
    }

    fn fail(&mut self, now: Instant, failure: CallFailure) {
        self.failure = Some(failure.clone());
        self.end(now, CallPhase::Failed);
        self.emit(CallEvent::Failed {
            call_id: self.id.clone(),
            failure,
        });
    }

    fn end(&mut self, now: Instant, phase: CallPhase) {
        self.phase = phase;
        self.pending = None;
        self.timings.ended = Some(now);
        self.cleanup_at = Some(now + self.cfg.cleanup_grace);
    }

    fn emit(&mut self, event: CallEvent) {
        self.outbox.push_back(CallOutput::Event(event));
    }
}

/// How long after the deadline an unanswered in-flight request is abandoned.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(2);
