//! What the call core emits: commands to Graph and events for the application and reports.

use std::time::Instant;

use super::api::{ApiCommand, GraphApiError};
use super::decision::{Action, DecisionSource};
use super::state::CallPhase;
use super::wire::ResultInfo;
use crate::graph::CallId;

/// One output of the call core, pulled with `poll_output`.
#[derive(Clone, Debug, PartialEq)]
pub enum CallOutput {
    /// A request the adapter must send to Graph; its result comes back through
    /// `handle_api_outcome`.
    Api(ApiCommand),
    /// Something happened to a call.
    Event(CallEvent),
}

/// Events of a call, in the order they happened.
#[derive(Clone, Debug, PartialEq)]
pub enum CallEvent {
    /// A new incoming call: ask the application for a decision before `decide_by`.
    Incoming {
        /// The call.
        call_id: CallId,
        /// Graph's deadline for answer/reject/redirect.
        deadline: Instant,
        /// When the default decision will be applied if the application is silent.
        decide_by: Instant,
    },
    /// The call was decided (once).
    Decided {
        /// The call.
        call_id: CallId,
        /// What was decided.
        action: Action,
        /// Who decided.
        source: DecisionSource,
    },
    /// Graph accepted the decision (202).
    DecisionAccepted {
        /// The call.
        call_id: CallId,
        /// The accepted action.
        action: Action,
    },
    /// Graph reported a new state (`establishing`, `established`, `terminating`, …).
    PhaseChanged {
        /// The call.
        call_id: CallId,
        /// The new phase.
        phase: CallPhase,
    },
    /// Graph reported `terminated` (or the call was found gone).
    Terminated {
        /// The call.
        call_id: CallId,
        /// Graph's reason, if it sent one.
        result_info: Option<ResultInfo>,
    },
    /// The decision could not be delivered: the call is marked failed.
    Failed {
        /// The call.
        call_id: CallId,
        /// Why.
        failure: CallFailure,
    },
    /// A hang-up (`DELETE`) failed for good.
    HangUpFailed {
        /// The call.
        call_id: CallId,
        /// Last error.
        error: GraphApiError,
    },
    /// The call left the calls table (cleanup after the grace period).
    Removed {
        /// The call.
        call_id: CallId,
    },
}

impl CallEvent {
    /// The call the event is about.
    pub fn call_id(&self) -> &CallId {
        match self {
            Self::Incoming { call_id, .. }
            | Self::Decided { call_id, .. }
            | Self::DecisionAccepted { call_id, .. }
            | Self::PhaseChanged { call_id, .. }
            | Self::Terminated { call_id, .. }
            | Self::Failed { call_id, .. }
            | Self::HangUpFailed { call_id, .. }
            | Self::Removed { call_id } => call_id,
        }
    }
}

/// Why a call failed.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum CallFailure {
    /// Graph refused the decision with an error that must not be retried.
    #[error("graph refused the decision: {0}")]
    Refused(GraphApiError),
    /// Retrying would have run past the answer deadline; the last error is kept.
    #[error("gave up before the deadline; last error: {last_error:?}")]
    DeadlineExceeded {
        /// The last error seen, if any.
        last_error: Option<GraphApiError>,
    },
}
