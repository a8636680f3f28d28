//! `CallPhase`: where a call is in its life, as the bot sees it.

use serde::Serialize;

/// The phase of a call in the bot.
///
/// ```text
/// Incoming ──decide──▶ Deciding ─202─▶ Accepted ─▶ Establishing ⇄ Established ─▶ Terminating ─▶ Terminated
///     │                  │ give up          (establishing/established in either order)
///     │                  ▼
///     │                Failed
///     └──terminated (caller hung up) ──────────────────────────────────────────────▶ Terminated
/// ```
#[derive(Clone, Copy, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CallPhase {
    /// Ringing; waiting for the application's decision.
    Incoming,
    /// Decided; the request to Graph is in flight or a retry is scheduled.
    Deciding,
    /// Graph accepted the answer/reject/redirect (202); waiting for state notifications.
    Accepted,
    /// Graph reported `establishing`.
    Establishing,
    /// Graph reported `established`.
    Established,
    /// Graph reported `terminating`.
    Terminating,
    /// Graph reported `terminated` (terminal).
    Terminated,
    /// The decision could not be delivered before the deadline (terminal).
    Failed,
}

impl CallPhase {
    /// Terminal phases produce no more commands.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Terminated | Self::Failed)
    }
}
