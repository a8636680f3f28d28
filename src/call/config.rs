//! `CallConfig`: answer windows, safety margins, the default decision, retry and cleanup policy.

use std::time::Duration;

use super::decision::Decision;
use super::wire::RejectReason;

/// How every call in a calls table is run. `Default` gives Graph's documented windows.
#[derive(Clone, Debug)]
pub struct CallConfig {
    /// Time Graph gives the bot to answer, reject or redirect a regular call (15 s).
    pub answer_window: Duration,
    /// Time for a policy-based-recording invitation (5 s).
    pub policy_recording_window: Duration,
    /// If the application has not decided this long before a regular call's deadline, the
    /// default decision is applied.
    pub decision_margin: Duration,
    /// The same margin for policy-based-recording invitations.
    pub policy_recording_margin: Duration,
    /// Applied when the application does not decide in time.
    pub default_decision: Decision,
    /// Per-call `callbackUri` prefix: the answer carries `{callback_base}/{callId}`.
    /// `None` leaves `callbackUri` out (Graph then uses the bot's registered webhook).
    pub callback_base: Option<String>,
    /// A retry is only started if at least this much time is left before the deadline.
    pub min_time_for_attempt: Duration,
    /// First backoff delay after a 5xx without `Retry-After`; doubles per attempt.
    pub backoff_initial: Duration,
    /// Largest backoff delay.
    pub backoff_max: Duration,
    /// Attempts for a hang-up (`DELETE`), which has no deadline.
    pub delete_attempts: u32,
    /// How long a terminated or failed call stays in the table (late duplicates are then
    /// still recognised) before it is removed.
    pub cleanup_grace: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            answer_window: Duration::from_secs(15),
            policy_recording_window: Duration::from_secs(5),
            decision_margin: Duration::from_millis(1500),
            policy_recording_margin: Duration::from_millis(1000),
            default_decision: Decision::Reject {
                reason: RejectReason::Busy,
            },
            callback_base: None,
            min_time_for_attempt: Duration::from_millis(200),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            delete_attempts: 3,
            cleanup_grace: Duration::from_secs(30),
        }
    }
}

impl CallConfig {
    /// Answer window and margin for a call (`policy_recording` = PBR invitation).
    pub fn window(&self, policy_recording: bool) -> (Duration, Duration) {
        if policy_recording {
            (self.policy_recording_window, self.policy_recording_margin)
        } else {
            (self.answer_window, self.decision_margin)
        }
    }

    /// The backoff before attempt `attempt + 1` after `attempt` failed attempts (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(16);
        self.backoff_initial
            .saturating_mul(1u32 << shift)
            .min(self.backoff_max)
    }
}
