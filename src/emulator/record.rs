//! What the emulator remembers about a call: its phase, the bot's decision, how it ended,
//! and the full history of requests from the bot and notifications sent to it.
//!
//! These are the values the control API returns (`GET /emulator/v1/calls/{id}`) and that
//! [`EmulatorHandle::call`](super::EmulatorHandle::call) hands to tests. Times are offsets
//! from the moment the call rang, serialized as fractional milliseconds (`atMs`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::graph::{Call, ResultInfo};

use super::fault::Faults;
use super::scenario::{Scenario, Script};

/// Where a call is, as the emulated service sees it.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Offered to the bot; waiting for answer/reject/redirect.
    Incoming,
    /// Answered; media being set up.
    Establishing,
    /// Answered and up.
    Established,
    /// Over (see [`CallRecord::ended_by`] and [`CallRecord::result_info`]).
    Terminated,
}

/// The bot's decision on an incoming call.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// `POST …/answer` accepted.
    Answer,
    /// `POST …/reject` accepted.
    Reject,
    /// `POST …/redirect` accepted.
    Redirect,
}

impl Action {
    /// The path segment (`answer`, `reject`, `redirect`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Reject => "reject",
            Self::Redirect => "redirect",
        }
    }
}

/// The outcome of the offer (whatever happened later in the call).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Still ringing, no decision yet.
    Pending,
    /// The bot answered in time.
    Answered,
    /// The bot rejected in time.
    Rejected,
    /// The bot redirected in time.
    Redirected,
    /// The bot did not decide inside the answer window (15 s, 5 s for PBR).
    TimedOut,
    /// The caller gave up ringing before the bot decided.
    CallerCancelled,
}

/// Who or what ended the call.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EndReason {
    /// The caller hung up (script or control API).
    CallerHungUp,
    /// The caller gave up while it was still ringing.
    CallerCancelled,
    /// The bot sent `DELETE /communications/calls/{id}`.
    BotHungUp,
    /// The bot rejected the call.
    Rejected,
    /// The bot redirected the call.
    Redirected,
    /// Nobody decided inside the answer window.
    TimedOut,
}

/// The accepted decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Answer, reject or redirect.
    pub action: Action,
    /// When it arrived, since the ring.
    #[serde(rename = "atMs", serialize_with = "as_ms")]
    pub at: Duration,
    /// The bot's notification-to-decision latency, on the emulator's monotonic clock: from
    /// the instant the notifier starts the POST of the incoming `created` notification (token
    /// signed or taken from the cache, request built) to the instant the REST handler has the
    /// decision request (body read, before the emulator checks the bot's access token). Until
    /// the notifier reports the POST's start (only in the sans-IO model without a notifier),
    /// it is measured from the ring. The budget of `signaling/notification_to_answer`.
    #[serde(rename = "afterNotificationMs", serialize_with = "as_opt_ms")]
    pub after_notification: Option<Duration>,
    /// The request body as received.
    pub body: Value,
}

/// One REST request from the bot, as received and answered.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Arrival, since the ring.
    #[serde(rename = "atMs", serialize_with = "as_ms")]
    pub at: Duration,
    /// HTTP method.
    pub method: String,
    /// Request path (with `/v1.0` or `/beta`).
    pub path: String,
    /// Headers of interest (lower-case names; `authorization` shows only the scheme).
    pub headers: BTreeMap<String, String>,
    /// JSON body (a string if it was not JSON, `null` if empty).
    pub body: Value,
    /// HTTP status returned.
    pub status: u16,
    /// Graph error code returned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// `Retry-After` returned, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<f64>,
    /// Extra response delay injected.
    #[serde(rename = "delayMs", serialize_with = "as_ms")]
    pub delay: Duration,
}

/// One notification sent to the bot.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    /// Emulator-wide sequence number.
    pub seq: u64,
    /// Handed to the transport, since the ring.
    #[serde(rename = "atMs", serialize_with = "as_ms")]
    pub at: Duration,
    /// When the notifier started the POST (token ready, request built), since the ring.
    #[serde(rename = "sentAtMs", serialize_with = "as_opt_ms")]
    pub sent_at: Option<Duration>,
    /// Where it was POSTed.
    pub url: String,
    /// `created`, `updated` or `deleted`.
    pub change_type: String,
    /// The call state it announced.
    pub state: String,
    /// True for the second copy sent by the `duplicate` fault knob.
    pub duplicate: bool,
    /// The `commsNotifications` body.
    pub body: Value,
    /// The bot's HTTP status, once known.
    pub bot_status: Option<u16>,
    /// Transport error, if the POST failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the bot's response arrived, since the ring.
    #[serde(rename = "respondedAtMs", serialize_with = "as_opt_ms")]
    pub responded_at: Option<Duration>,
}

/// Something that happened to the call outside a request or notification.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    /// When, since the ring.
    #[serde(rename = "atMs", serialize_with = "as_ms")]
    pub at: Duration,
    /// What happened (`rang`, `timedOut`, `callerHungUp`, …).
    pub event: String,
}

/// One history entry, in the order things happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum HistoryEntry {
    /// A REST request from the bot.
    Request(RequestRecord),
    /// A notification to the bot.
    Notification(NotificationRecord),
    /// A scripted or timed event.
    Event(EventRecord),
}

/// Everything known about one emulated call (the control API's call view).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// Graph call id.
    pub id: String,
    /// The scripted caller.
    pub scenario: Scenario,
    /// What the caller does after ringing.
    pub script: Script,
    /// Fault knobs in force for this call.
    pub faults: Faults,
    /// The bot's app id (notification `aud`).
    pub app_id: String,
    /// The call's tenant (notification `tid`).
    pub tenant_id: String,
    /// Where the incoming notification went.
    pub bot_url: String,
    /// Where later notifications go (the answer's `callbackUri`, else `bot_url`).
    pub callback_uri: String,
    /// Current phase.
    pub state: Phase,
    /// Outcome of the offer.
    pub outcome: Outcome,
    /// The accepted decision, if any.
    pub decision: Option<Decision>,
    /// Who ended the call, once terminated.
    pub ended_by: Option<EndReason>,
    /// The `resultInfo` sent with `terminated`.
    pub result_info: Option<ResultInfo>,
    /// The answer window (15 s, or 5 s for policy-based recording).
    #[serde(rename = "answerWindowMs", serialize_with = "as_ms")]
    pub answer_window: Duration,
    /// The current call resource (as `GET /communications/calls/{id}` returns it).
    pub call: Call,
    /// Requests, notifications and events in order.
    pub history: Vec<HistoryEntry>,
}

impl CallRecord {
    /// The REST requests in the history.
    pub fn requests(&self) -> impl Iterator<Item = &RequestRecord> {
        self.history.iter().filter_map(|h| match h {
            HistoryEntry::Request(r) => Some(r),
            _ => None,
        })
    }

    /// The notifications in the history.
    pub fn notifications(&self) -> impl Iterator<Item = &NotificationRecord> {
        self.history.iter().filter_map(|h| match h {
            HistoryEntry::Notification(n) => Some(n),
            _ => None,
        })
    }

    /// The events in the history.
    pub fn events(&self) -> impl Iterator<Item = &EventRecord> {
        self.history.iter().filter_map(|h| match h {
            HistoryEntry::Event(e) => Some(e),
            _ => None,
        })
    }
}

/// A line of `GET /emulator/v1/calls`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallSummary {
    /// Graph call id.
    pub id: String,
    /// The scripted caller.
    pub scenario: Scenario,
    /// Current phase.
    pub state: Phase,
    /// Outcome of the offer.
    pub outcome: Outcome,
    /// Who ended it, once terminated.
    pub ended_by: Option<EndReason>,
}

fn as_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

#[allow(clippy::ref_option)] // serde's `serialize_with` passes `&Option<T>`.
fn as_opt_ms<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => as_ms(d, s),
        None => s.serialize_none(),
    }
}
