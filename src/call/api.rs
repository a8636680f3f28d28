//! Commands to Graph as data, and their outcomes coming back.
//!
//! The core emits [`ApiCommand`]s through `poll_output`; an adapter executes them (the Graph
//! client) and feeds an [`ApiOutcome`] back with `handle_api_outcome(now, request, outcome)`.
//! Retries are not hidden in the adapter: a failed outcome carries a [`Retry`] hint and the
//! core schedules the next attempt as a `poll_timeout`.

use std::fmt;
use std::time::{Duration, Instant};

use super::decision::Answer;
use super::wire::{InvitationParticipantInfo, RejectReason};
use crate::graph::CallId;

/// Identifies one attempt of one command; echoed back with its outcome.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub struct RequestId {
    /// The call the command is for.
    pub call_id: CallId,
    /// Attempt number within the call, from 1.
    pub seq: u32,
}

/// A request to Graph.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiCommand {
    /// `POST /communications/calls/{id}/answer`.
    Answer {
        /// This attempt.
        request: RequestId,
        /// Per-call callback URI (`None` = omitted).
        callback_uri: Option<String>,
        /// Media configuration and modalities.
        answer: Answer,
        /// The call's answer deadline: the request must not run past it.
        deadline: Instant,
    },
    /// `POST /communications/calls/{id}/reject`.
    Reject {
        /// This attempt.
        request: RequestId,
        /// Reason.
        reason: RejectReason,
        /// The call's answer deadline.
        deadline: Instant,
    },
    /// `POST /communications/calls/{id}/redirect`.
    Redirect {
        /// This attempt.
        request: RequestId,
        /// Targets.
        targets: Vec<InvitationParticipantInfo>,
        /// Ring timeout.
        timeout: Option<Duration>,
        /// Per-call callback URI.
        callback_uri: Option<String>,
        /// The call's answer deadline.
        deadline: Instant,
    },
    /// `DELETE /communications/calls/{id}` (hang up).
    Delete {
        /// This attempt.
        request: RequestId,
    },
}

impl ApiCommand {
    /// The attempt this command is.
    pub fn request(&self) -> &RequestId {
        match self {
            Self::Answer { request, .. }
            | Self::Reject { request, .. }
            | Self::Redirect { request, .. }
            | Self::Delete { request } => request,
        }
    }

    /// The call the command is for.
    pub fn call_id(&self) -> &CallId {
        &self.request().call_id
    }

    /// The deadline the request must finish by, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Self::Answer { deadline, .. }
            | Self::Reject { deadline, .. }
            | Self::Redirect { deadline, .. } => Some(*deadline),
            Self::Delete { .. } => None,
        }
    }

    /// Short name: `answer`, `reject`, `redirect` or `delete`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Answer { .. } => "answer",
            Self::Reject { .. } => "reject",
            Self::Redirect { .. } => "redirect",
            Self::Delete { .. } => "delete",
        }
    }
}

/// Result of executing an [`ApiCommand`].
pub type ApiOutcome = Result<(), GraphApiError>;

/// What to do after a failed request.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Retry {
    /// Do not retry (4xx other than 429, or a permanent failure).
    Never,
    /// Retry after this delay (from `Retry-After`).
    After(Duration),
    /// Retry with exponential backoff (5xx without `Retry-After`, transport errors).
    Backoff,
}

/// A failed Graph request: HTTP status plus the Graph error body, and how to retry it.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct GraphApiError {
    /// HTTP status; 0 when no response arrived (connect error, timeout).
    pub status: u16,
    /// `error.code` (e.g. `TooManyRequests`, `8522`), or a local code (`transport`, `timeout`).
    pub code: String,
    /// `error.message` or the transport error text.
    pub message: String,
    /// Retry hint.
    pub retry: Retry,
}

impl fmt::Display for GraphApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for GraphApiError {}
