//! `CallRecord`: a read-only, serializable snapshot of one call for status endpoints, reports
//! and `mediabot replay` — decision, deadline, state and timings in milliseconds since the
//! incoming notification arrived.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::decision::{Action, DecisionSource};
use super::machine::Call;
use super::state::CallPhase;
use super::wire::ResultInfo;
use crate::graph::CallId;

/// Snapshot of a call (JSON in lowerCamelCase).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// The call.
    pub call_id: CallId,
    /// Bot-side phase.
    pub phase: CallPhase,
    /// Last state Graph reported (`establishing`, `established`, …).
    pub remote_state: Option<String>,
    /// Policy-based-recording invitation (5 s window).
    pub policy_recording: bool,
    /// `answer`, `reject`, `redirect`, or `None` while undecided.
    pub action: Option<Action>,
    /// Who decided.
    pub decision_source: Option<DecisionSource>,
    /// Answer window: 15000 or 5000.
    pub deadline_ms: u64,
    /// When the default decision applies.
    pub decide_by_ms: u64,
    /// Requests sent for the decision.
    pub attempts: u32,
    /// Last error Graph returned for the decision.
    pub last_error: Option<String>,
    /// Why the call failed, if it did.
    pub failure: Option<String>,
    /// `resultInfo` of the `terminated` notification.
    pub result_info: Option<ResultInfo>,
    /// Milliseconds after the incoming notification arrived.
    pub timings: TimingsMs,
}

/// Milestones in milliseconds (fractional) after the incoming notification arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimingsMs {
    /// Decision made.
    pub decided: Option<f64>,
    /// First decision request sent.
    pub decision_sent: Option<f64>,
    /// Graph accepted the decision.
    pub decision_accepted: Option<f64>,
    /// `established` seen.
    pub established: Option<f64>,
    /// Call ended or failed.
    pub ended: Option<f64>,
}

impl CallRecord {
    /// Snapshots `call`.
    pub fn of(call: &Call) -> Self {
        let t = call.timings();
        let since =
            |at: Option<Instant>| at.map(|at| ms_f64(at.saturating_duration_since(t.received)));
        let decision = call.decision();
        Self {
            call_id: call.id().clone(),
            phase: call.phase(),
            remote_state: call.remote_state().map(|s| s.to_string()),
            policy_recording: call.is_policy_recording(),
            action: decision.map(|d| d.decision.action()),
            decision_source: decision.map(|d| d.source),
            deadline_ms: ms_u64(call.window()),
            decide_by_ms: ms_u64(call.decide_by().saturating_duration_since(t.received)),
            attempts: decision.map_or(0, |d| d.attempts),
            last_error: decision
                .and_then(|d| d.last_error.as_ref())
                .map(|e| e.to_string()),
            failure: call.failure().map(|f| f.to_string()),
            result_info: call.result_info().cloned(),
            timings: TimingsMs {
                decided: since(t.decided),
                decision_sent: since(t.decision_sent),
                decision_accepted: since(t.decision_accepted),
                established: since(t.established),
                ended: since(t.ended),
            },
        }
    }
}

fn ms_f64(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ms_u64(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
