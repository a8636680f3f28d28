//! The Graph wire types the call core uses, in one place.
//!
//! Temporary stand-ins until `graph/` lands; then this file re-exports `crate::graph` types.

use serde::{Deserialize, Serialize};

/// A call's state as Graph reports it.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CallState {
    /// Ringing the bot.
    Incoming,
    /// Media is being set up.
    Establishing,
    /// Outgoing call ringing.
    Ringing,
    /// Up.
    Established,
    /// On hold.
    Hold,
    /// Being transferred.
    Transferring,
    /// Transfer accepted.
    TransferAccepted,
    /// Being redirected.
    Redirecting,
    /// Ending.
    Terminating,
    /// Ended.
    Terminated,
    /// A value this crate does not know.
    UnknownFutureValue,
}

/// Why a call ended.
#[derive(Clone, Debug, Default, Deserialize, Eq, PartialEq, Serialize)]
pub struct ResultInfo {
    /// Status class.
    pub code: i32,
    /// Refinement.
    pub subcode: i32,
    /// Human-readable text.
    pub message: Option<String>,
}

/// Reject reasons.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RejectReason {
    /// No reason.
    None,
    /// Busy.
    Busy,
    /// Forbidden.
    Forbidden,
}

/// Modalities.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Modality {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// Media configuration of an answer.
pub type MediaConfig = serde_json::Value;
/// Redirect target.
pub type InvitationParticipantInfo = serde_json::Value;
