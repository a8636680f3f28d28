//! Replay: sign a saved `commsNotifications` body with the emulator's notification key, POST
//! it to a bot that trusts this emulator, and report what the bot did.
//!
//! If the body carries an incoming call (`state: incoming`), the emulator takes the call over
//! ([`Model::handle_import`](super::model::Model::handle_import)) before sending, so the
//! bot's answer/reject/redirect lands on a call the emulator knows, inside the call's window
//! (15 s, 5 s for policy-based recording), and is captured in the call's history. The report
//! holds the bot's HTTP status for the notification, the action it took (`answer`, `reject`,
//! `redirect`, or `none`), the deadline it computed (from a mediabot bot's status endpoint
//! `GET /mediabot/v1/calls/{id}`, else the emulator's window) and the decision request as the
//! emulator received it. Any other notification is signed and sent, and only the status is
//! reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::graph::{CallId, CallState, parse_notifications};

use super::model::Import;
use super::record::{Phase, RequestRecord};
use super::server::{EmulatorError, Shared};

/// What the bot did with a replayed notification.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    /// The call the notification is about, if it names one.
    pub call_id: Option<String>,
    /// The bot's HTTP status for the notification.
    pub status: u16,
    /// `answer`, `reject`, `redirect` or `none`.
    pub action: String,
    /// The answer window the bot computed (ms), or the emulator's when the bot has no status
    /// endpoint; `None` when the notification is not an incoming call.
    pub deadline_ms: Option<u64>,
    /// `bot` or `emulator`: where `deadline_ms` comes from.
    pub deadline_source: Option<String>,
    /// Notification sent → decision request received, in ms.
    pub latency_ms: Option<f64>,
    /// The decision request as the emulator received it (the accepted one, else the last).
    pub request: Option<RequestRecord>,
    /// Every request the bot sent for the call.
    pub requests: Vec<RequestRecord>,
    /// The bot's own record of the call (`GET /mediabot/v1/calls/{id}`), if it has one.
    pub bot_record: Option<Value>,
}

/// Why a replay could not run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The file is not a `commsNotifications` body.
    #[error("not a commsNotifications body: {0}")]
    Parse(String),
    /// The emulator refused (or the bot could not be reached).
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
}

/// Replays `body` to `bot_url` (see the module docs). Waits at most the call's window plus a
/// second for the bot's decision.
pub(crate) async fn replay(
    shared: &Arc<Shared>,
    bot_url: &str,
    body: &[u8],
) -> Result<ReplayReport, ReplayError> {
    let batch = parse_notifications(body).map_err(|e| ReplayError::Parse(e.to_string()))?;
    let json: Value = serde_json::from_slice(body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body))
        .map_err(|e| ReplayError::Parse(e.to_string()))?;
    let incoming = batch.value.iter().find_map(|n| {
        let mut call = n.parse_call().ok()??;
        if call.state != Some(CallState::Incoming) {
            return None;
        }
        if call.id.is_none() {
            call.id = n.call_id();
        }
        call.id.is_some().then_some(call)
    });
    let first_id = batch
        .value
        .iter()
        .find_map(|n| n.call_id())
        .map(CallId::into_string);
    let tenant = incoming
        .as_ref()
        .and_then(|c| c.tenant_id.clone())
        .unwrap_or_else(|| shared.app.tenant_id.clone());
    let app_id = shared.app.client_id.clone();
    // The saved notification comes from its call's tenant, which must have consented to the
    // app for the notification to exist: the emulator's directory records that consent, so
    // the bot can get a token for the call's tenant (its answer is refused with 7504 otherwise).
    shared.identity.consent_tenant(&app_id, &tenant);
    let imported = match incoming {
        Some(call) => {
            let id = shared.model().handle_import(
                Instant::now(),
                Import {
                    call,
                    bot_url: bot_url.to_owned(),
                    app_id: app_id.clone(),
                },
            );
            shared.pump();
            Some(id.map_err(EmulatorError::from)?)
        }
        None => None,
    };
    let status = shared
        .notifier()
        .post_raw(bot_url, &app_id, &tenant, &json)
        .await
        .map_err(|reason| EmulatorError::Delivery {
            url: bot_url.to_owned(),
            reason,
        })?;
    let Some(id) = imported else {
        return Ok(ReplayReport {
            call_id: first_id,
            status,
            action: "none".into(),
            deadline_ms: None,
            deadline_source: None,
            latency_ms: None,
            request: None,
            requests: Vec::new(),
            bot_record: None,
        });
    };
    let window = shared
        .model()
        .call(&id)
        .map_or(Duration::from_secs(15), |c| c.answer_window);
    let rec = if (200..300).contains(&status) {
        let decided =
            |c: &super::record::CallRecord| c.decision.is_some() || c.state == Phase::Terminated;
        match shared
            .wait_until(&id, decided, window + Duration::from_secs(1))
            .await
        {
            Ok(rec) => rec,
            Err(EmulatorError::Timeout { .. }) => current(shared, &id)?,
            Err(e) => return Err(e.into()),
        }
    } else {
        current(shared, &id)?
    };
    let requests: Vec<RequestRecord> = rec.requests().cloned().collect();
    let decision_request = |r: &&RequestRecord| {
        ["/answer", "/reject", "/redirect"]
            .iter()
            .any(|a| r.path.to_ascii_lowercase().ends_with(a))
    };
    let request = requests
        .iter()
        .filter(decision_request)
        .find(|r| r.status == 202)
        .or_else(|| requests.iter().rev().find(decision_request))
        .cloned();
    let bot_record = bot_status(shared, bot_url, &id).await;
    let bot_deadline = bot_record
        .as_ref()
        .and_then(|r| r.get("deadlineMs"))
        .and_then(Value::as_u64);
    let (deadline_ms, deadline_source) = match bot_deadline {
        Some(ms) => (ms, "bot"),
        None => (
            u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            "emulator",
        ),
    };
    Ok(ReplayReport {
        call_id: Some(id),
        status,
        action: rec
            .decision
            .as_ref()
            .map_or("none", |d| d.action.name())
            .to_owned(),
        deadline_ms: Some(deadline_ms),
        deadline_source: Some(deadline_source.into()),
        latency_ms: rec
            .decision
            .as_ref()
            .and_then(|d| d.after_notification)
            .map(|d| d.as_secs_f64() * 1000.0),
        request,
        requests,
        bot_record,
    })
}

fn current(shared: &Shared, id: &str) -> Result<super::record::CallRecord, ReplayError> {
    shared
        .model()
        .call(id)
        .cloned()
        .ok_or_else(|| EmulatorError::from(super::model::ModelError::UnknownCall(id.into())).into())
}

/// The bot's own record of the call from a mediabot status endpoint at the bot URL's origin.
async fn bot_status(shared: &Shared, bot_url: &str, id: &str) -> Option<Value> {
    let origin = url::Url::parse(bot_url).ok()?;
    let status_url = origin.join(&format!("/mediabot/v1/calls/{id}")).ok()?;
    shared.notifier().get_json(status_url.as_str()).await.ok()
}
