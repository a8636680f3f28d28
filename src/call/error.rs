//! `CallError`: misuse of the call core and decisions it cannot accept.

use super::decision::DecisionSource;
use crate::graph::CallId;

/// Errors of the call state machine and calls table.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No call with this id is in the table.
    #[error("unknown call {0}")]
    UnknownCall(CallId),
    /// The call was already decided (a late application decision after the default, or a
    /// second decision).
    #[error("call {call_id} was already decided by the {by:?}")]
    AlreadyDecided {
        /// The call.
        call_id: CallId,
        /// Who decided first.
        by: DecisionSource,
    },
    /// The call ended before the decision.
    #[error("call {0} has already ended")]
    AlreadyEnded(CallId),
    /// The decision breaks a documented limit.
    #[error("invalid decision: {reason}")]
    InvalidDecision {
        /// Which limit.
        reason: &'static str,
    },
    /// Hang-up asked for a call that is not answered.
    #[error("call {0} is not answered, cannot hang up")]
    NotAnswered(CallId),
}
