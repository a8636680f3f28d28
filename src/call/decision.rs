//! `Decision`: what the application (or the default) does with an incoming call.

use std::time::Duration;

use serde::Serialize;

use super::error::CallError;
use super::wire::{InvitationParticipantInfo, MediaConfig, Modality, RejectReason};

/// The application's answer to an incoming call. Made exactly once per call.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Answer with this media configuration.
    Answer(Answer),
    /// Reject.
    Reject {
        /// Reason sent to Graph.
        reason: RejectReason,
    },
    /// Forward to other targets.
    Redirect {
        /// 1–25 targets; several ring simultaneously.
        targets: Vec<InvitationParticipantInfo>,
        /// Ring timeout, 15–90 s; `None` = Graph's default.
        timeout: Option<Duration>,
    },
}

/// The parts of an answer the application chooses.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// `appHostedMediaConfig` (blob) or `serviceHostedMediaConfig`.
    pub media_config: MediaConfig,
    /// Modalities accepted (`audio` at least).
    pub accepted_modalities: Vec<Modality>,
    /// PBR bot grouping capacity.
    pub participant_capacity: Option<u32>,
}

/// Which action a decision takes, without its payload (for records and reports).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// `answer`.
    Answer,
    /// `reject`.
    Reject,
    /// `redirect`.
    Redirect,
}

/// Who made a decision.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DecisionSource {
    /// The application's `CallHandler`.
    Application,
    /// The configured default, applied because the application did not decide in time.
    Default,
}

impl Decision {
    /// The action this decision takes.
    pub fn action(&self) -> Action {
        match self {
            Self::Answer(_) => Action::Answer,
            Self::Reject { .. } => Action::Reject,
            Self::Redirect { .. } => Action::Redirect,
        }
    }

    /// Checks the limits Graph documents (redirect: 1–25 targets, timeout 15–90 s; answer: at
    /// least one modality).
    pub fn validate(&self) -> Result<(), CallError> {
        match self {
            Self::Answer(a) if a.accepted_modalities.is_empty() => {
                Err(CallError::InvalidDecision {
                    reason: "answer needs at least one accepted modality",
                })
            }
            Self::Redirect { targets, .. } if targets.is_empty() || targets.len() > 25 => {
                Err(CallError::InvalidDecision {
                    reason: "redirect needs 1 to 25 targets",
                })
            }
            Self::Redirect {
                timeout: Some(t), ..
            } if *t < Duration::from_secs(15) || *t > Duration::from_secs(90) => {
                Err(CallError::InvalidDecision {
                    reason: "redirect timeout must be 15 to 90 seconds",
                })
            }
            _ => Ok(()),
        }
    }
}
