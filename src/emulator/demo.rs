//! `mediabot demo` (signaling part): the emulator and the demo bot in one process on loopback,
//! a handful of scripted calls of every kind, and a readable report — per call the bot's
//! decision, the emulator's outcome and the notification-to-decision latency.
//!
//! [`start_pair`] is also what `mediabot replay` uses when no `--bot` is given.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::adapters::bot::BotHandle;
use crate::adapters::demo_handler::{DemoHandler, DemoHandlerConfig};
use crate::call::{CallConfig, CallId};

use super::control::RingRequest;
use super::fault::{Faults, Throttle};
use super::record::{CallRecord, EndReason};
use super::scenario::Scenario;
use super::server::EmulatorError;
use super::stack::{SignalingStack, StackError, start_signaling};

/// The emulator and a bot wired to it (each trusts the other's certificate).
pub type Pair = SignalingStack;

/// Why the demo (or its pair) could not run.
pub type DemoError = StackError;

/// Starts an emulator and a bot with the demo handler `demo` on loopback.
///
/// # Errors
/// The emulator or the bot failing to start.
pub async fn start_pair(demo: DemoHandlerConfig, call: CallConfig) -> Result<Pair, DemoError> {
    start_signaling(Arc::new(DemoHandler::new(demo)), |cfg| cfg.call = call).await
}

/// One scripted call of the demo.
#[derive(Clone, Debug)]
pub struct DemoCall {
    /// Short description.
    pub label: &'static str,
    /// The caller.
    pub scenario: Scenario,
    /// Fault knobs.
    pub faults: Faults,
}

/// The demo's default calls: every scenario, plus a throttled and a reordered one.
pub fn default_calls() -> Vec<DemoCall> {
    let plain = |label, scenario| DemoCall {
        label,
        scenario,
        faults: Faults::default(),
    };
    vec![
        plain("Teams user calls the bot", Scenario::P2p),
        plain("phone number calls the bot", Scenario::Pstn),
        plain("meeting invitation", Scenario::Meeting),
        plain("group-call invitation", Scenario::GroupCall),
        plain(
            "policy-based recording (5 s window)",
            Scenario::PolicyRecording,
        ),
        DemoCall {
            label: "Graph throttles the first answer (429, Retry-After 1)",
            scenario: Scenario::P2p,
            faults: Faults {
                throttle: Some(Throttle {
                    count: 1,
                    retry_after_secs: 1.0,
                }),
                ..Faults::default()
            },
        },
        DemoCall {
            label: "state notifications reordered and duplicated",
            scenario: Scenario::Meeting,
            faults: Faults {
                reorder: true,
                duplicate: true,
                ..Faults::default()
            },
        },
    ]
}

/// The report of one demo call.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoCallReport {
    /// What the call shows.
    pub label: &'static str,
    /// The caller.
    pub scenario: Scenario,
    /// Graph call id.
    pub call_id: String,
    /// The bot's decision (`answer`, `reject`, `redirect`, `none`).
    pub decision: String,
    /// Who decided (`application`, `default`).
    pub decided_by: Option<String>,
    /// The answer window (ms).
    pub deadline_ms: u64,
    /// Decision requests the bot sent (retries included).
    pub attempts: usize,
    /// The emulator's notifier starts POSTing the incoming notification → the emulator has the
    /// accepted decision request, in ms ([`super::record::Decision::after_notification`]).
    pub notification_to_decision_ms: Option<f64>,
    /// Inside the bot: notification received → first decision request sent, in ms.
    pub bot_decision_sent_ms: Option<f64>,
    /// The emulator's outcome (`answered`, `redirected`, `timedOut`, …).
    pub outcome: String,
    /// How the call ended.
    pub ended_by: Option<EndReason>,
    /// `code/subcode` told to the bot with `terminated`.
    pub result: Option<String>,
    /// Notifications sent to the bot, and how many it acknowledged with 2xx.
    pub notifications: (usize, usize),
}

/// The whole demo report.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoReport {
    /// The emulator's base URL.
    pub emulator_url: String,
    /// The bot's base URL.
    pub bot_url: String,
    /// One entry per call.
    pub calls: Vec<DemoCallReport>,
}

impl DemoReport {
    /// True when every call was decided inside its window.
    pub fn all_decided_in_time(&self) -> bool {
        self.calls.iter().all(|c| {
            c.notification_to_decision_ms
                .is_some_and(|ms| ms < c.deadline_ms as f64)
        })
    }
}

/// Runs `calls` one after another against a fresh pair; each caller hangs up `hold` after
/// the call is established.
pub async fn run(calls: &[DemoCall], hold: Duration) -> Result<DemoReport, DemoError> {
    let pair = start_pair(DemoHandlerConfig::default(), CallConfig::default()).await?;
    let mut reports = Vec::new();
    for c in calls {
        let id = pair.emulator.ring(
            RingRequest::new(pair.bot.webhook_url(), c.scenario)
                .hangup_after(hold)
                .faults(c.faults.clone()),
        )?;
        let wait = Duration::from_secs(20) + hold;
        let rec = match pair.emulator.wait_settled(&id, wait).await {
            Ok(r) => r,
            Err(EmulatorError::Timeout { .. }) => pair.emulator.call(&id).ok_or_else(|| {
                EmulatorError::from(super::model::ModelError::UnknownCall(id.clone()))
            })?,
            Err(e) => return Err(e.into()),
        };
        reports.push(report(c, &rec, &pair.bot));
    }
    let report = DemoReport {
        emulator_url: pair.emulator.base_url().to_owned(),
        bot_url: pair.bot.url().to_owned(),
        calls: reports,
    };
    pair.bot.shutdown(Duration::from_secs(1)).await;
    pair.emulator.shutdown().await;
    Ok(report)
}

fn report(c: &DemoCall, rec: &CallRecord, bot: &BotHandle) -> DemoCallReport {
    let bot_rec = bot.record(&CallId::from(rec.id.as_str()));
    DemoCallReport {
        label: c.label,
        scenario: c.scenario,
        call_id: rec.id.clone(),
        decision: bot_rec
            .as_ref()
            .and_then(|b| b.action)
            .map_or_else(|| "none".to_owned(), |a| name(&a)),
        decided_by: bot_rec
            .as_ref()
            .and_then(|b| b.decision_source)
            .map(|s| name(&s)),
        deadline_ms: u64::try_from(rec.answer_window.as_millis()).unwrap_or(u64::MAX),
        attempts: rec
            .requests()
            .filter(|r| {
                ["/answer", "/reject", "/redirect"]
                    .iter()
                    .any(|a| r.path.ends_with(a))
            })
            .count(),
        notification_to_decision_ms: rec
            .decision
            .as_ref()
            .and_then(|d| d.after_notification)
            .map(|d| d.as_secs_f64() * 1000.0),
        bot_decision_sent_ms: bot_rec.as_ref().and_then(|b| b.timings.decision_sent),
        outcome: name(&rec.outcome),
        ended_by: rec.ended_by,
        result: rec.result_info.as_ref().map(|r| {
            format!(
                "{}/{}",
                r.code.unwrap_or_default(),
                r.subcode.unwrap_or_default()
            )
        }),
        notifications: (
            rec.notifications().count(),
            rec.notifications()
                .filter(|n| n.bot_status.is_some_and(|s| (200..300).contains(&s)))
                .count(),
        ),
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "mediabot demo — signaling")?;
        writeln!(f, "  emulator {}   bot {}", self.emulator_url, self.bot_url)?;
        writeln!(f)?;
        for (i, c) in self.calls.iter().enumerate() {
            let ms = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1} ms"));
            writeln!(f, "{:>2}. {} [{}]", i + 1, c.label, c.scenario.name())?;
            writeln!(
                f,
                "    decision {} (by {}), {} request(s); notification → decision {} (bot sent it after {}), window {} ms",
                c.decision,
                c.decided_by.as_deref().unwrap_or("—"),
                c.attempts,
                ms(c.notification_to_decision_ms),
                ms(c.bot_decision_sent_ms),
                c.deadline_ms,
            )?;
            writeln!(
                f,
                "    outcome {}, ended by {}, resultInfo {}, notifications {} sent / {} acknowledged",
                c.outcome,
                c.ended_by.map_or_else(|| "—".to_owned(), |e| name(&e)),
                c.result.as_deref().unwrap_or("—"),
                c.notifications.0,
                c.notifications.1,
            )?;
        }
        writeln!(f)?;
        let in_time = self
            .calls
            .iter()
            .filter(|c| {
                c.notification_to_decision_ms
                    .is_some_and(|ms| ms < c.deadline_ms as f64)
            })
            .count();
        writeln!(
            f,
            "{in_time}/{} calls decided inside their answer window.",
            self.calls.len()
        )
    }
}

/// The serde (camelCase) spelling of a small enum, for the report.
fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
