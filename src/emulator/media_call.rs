//! One emulated call with real media, end to end: the emulator rings the bot with a scripted
//! caller asking for media ([`MediaRequest`]); when the bot answers, the emulator's media
//! desk joins the blob with its media processor (participants streaming speech from
//! `media/`); the call is held, then the caller hangs up, the media ends and its report
//! (what each participant sent and heard) is taken. Shared by `mediabot demo`,
//! `mediabot load` and the end-to-end tests.
//!
//! ```text
//!  ring (with media) ─▶ answer received ─▶ desk joins: POST offer, ICE+DTLS ─▶ hold
//!       ─▶ caller hangs up ─▶ media ended (DELETE, bot closes) ─▶ report ─▶ call settled
//! ```
//!
//! Progress is reported as it happens through an optional channel of [`CallProgress`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use super::control::RingRequest;
use super::media::{MediaReport, MediaRequest, MediaState, ParticipantSpec};
use super::record::{CallRecord, EndReason, Phase};
use super::scenario::Scenario;
use super::server::EmulatorHandle;

/// Longest wait for the bot's decision (Graph's window is 15 s).
const DECISION_WAIT: Duration = Duration::from_secs(20);
/// Longest wait for the bot to close its media after the caller hung up.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// One call to place.
#[derive(Clone, Debug)]
pub struct MediaCallSpec {
    /// Short description for reports.
    pub label: String,
    /// The scripted caller.
    pub scenario: Scenario,
    /// Who speaks on the caller's side (the caller first); empty = the scenario's defaults.
    pub participants: Vec<ParticipantSpec>,
    /// How long the call stays up once its media is connected.
    pub hold: Duration,
}

/// Something that happened to a call, as it happens.
#[derive(Clone, Debug, PartialEq)]
pub struct CallProgress {
    /// The call's index in the run.
    pub index: usize,
    /// Graph call id, once rung.
    pub call_id: Option<String>,
    /// When, since the run's start.
    pub at: Duration,
    /// What.
    pub step: Step,
}

/// The steps of [`CallProgress`].
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// The incoming-call notification is on its way.
    Rang,
    /// The bot decided (`answer`, `reject`, `redirect`, `none`), this long after the
    /// notification.
    Decided(String, Option<Duration>),
    /// ICE + DTLS connected, this long after the offer started.
    MediaConnected(Duration),
    /// The caller hung up.
    HungUp,
    /// The media ended (how).
    MediaEnded(String),
    /// Something failed.
    Failed(String),
}

/// What happened to one call.
#[derive(Clone, Debug)]
pub struct MediaCallOutcome {
    /// The spec's label.
    pub label: String,
    /// The caller.
    pub scenario: Scenario,
    /// Graph call id (none if the ring failed).
    pub call_id: Option<String>,
    /// `answer`, `reject`, `redirect` or `none`.
    pub decision: String,
    /// The incoming notification's POST starts → decision request received
    /// ([`super::record::Decision::after_notification`]).
    pub answer_latency: Option<Duration>,
    /// The media processor's final report, when the media was joined.
    pub media: Option<MediaReport>,
    /// Why the media could not be joined or did not end cleanly.
    pub media_error: Option<String>,
    /// The emulator's record of the call once settled.
    pub record: Option<CallRecord>,
}

impl MediaCallOutcome {
    fn new(spec: &MediaCallSpec) -> Self {
        Self {
            label: spec.label.clone(),
            scenario: spec.scenario,
            call_id: None,
            decision: "none".into(),
            answer_latency: None,
            media: None,
            media_error: None,
            record: None,
        }
    }

    /// Who ended the call, as the emulator saw it.
    pub fn ended_by(&self) -> Option<EndReason> {
        self.record.as_ref().and_then(|r| r.ended_by)
    }
}

/// Where the calls go and how they are joined (cheap to clone: one per spawned call).
#[derive(Clone, Debug)]
pub struct CallContext {
    /// The emulated Graph service (its media desk joins the calls).
    pub emulator: Arc<EmulatorHandle>,
    /// The bot's calling webhook.
    pub bot_url: String,
    /// The run's start (progress times are from here).
    pub started: Instant,
    /// Where progress goes.
    pub progress: Option<mpsc::UnboundedSender<CallProgress>>,
}

impl CallContext {
    fn tell(&self, index: usize, call_id: Option<&str>, step: Step) {
        if let Some(tx) = &self.progress {
            let _ = tx.send(CallProgress {
                index,
                call_id: call_id.map(str::to_owned),
                at: self.started.elapsed(),
                step,
            });
        }
    }
}

/// Places call `index` of a run as `spec` says and returns what happened. Never fails: every
/// failure is in the outcome.
pub async fn run_call(ctx: &CallContext, index: usize, spec: &MediaCallSpec) -> MediaCallOutcome {
    let mut out = MediaCallOutcome::new(spec);
    let media = MediaRequest {
        participants: spec.participants.clone(),
        ..MediaRequest::emulator()
    };
    let id = match ctx
        .emulator
        .ring(RingRequest::new(&ctx.bot_url, spec.scenario).media(media))
    {
        Ok(id) => id,
        Err(e) => {
            out.media_error = Some(format!("ring: {e}"));
            ctx.tell(index, None, Step::Failed(format!("ring: {e}")));
            return out;
        }
    };
    out.call_id = Some(id.clone());
    ctx.tell(index, Some(&id), Step::Rang);
    let decided = ctx
        .emulator
        .wait_until(
            &id,
            |c| c.decision.is_some() || c.state == Phase::Terminated,
            DECISION_WAIT,
        )
        .await;
    if let Some(d) = decided.ok().and_then(|r| r.decision) {
        out.decision = d.action.name().to_owned();
        out.answer_latency = d.after_notification;
    }
    ctx.tell(
        index,
        Some(&id),
        Step::Decided(out.decision.clone(), out.answer_latency),
    );
    if out.decision == "answer" {
        hold_media(ctx, index, spec, &id, &mut out).await;
    }
    out.record = match ctx.emulator.wait_settled(&id, DECISION_WAIT).await {
        Ok(r) => Some(r),
        Err(_) => ctx.emulator.call(&id),
    };
    out
}

/// The answered call's media: connected, held, hung up, ended, reported.
async fn hold_media(
    ctx: &CallContext,
    index: usize,
    spec: &MediaCallSpec,
    id: &str,
    out: &mut MediaCallOutcome,
) {
    let emulator = &ctx.emulator;
    let settled = |m: &super::media::MediaRecord| {
        matches!(
            m.state,
            MediaState::Connected | MediaState::Ended | MediaState::Failed
        )
    };
    let joined = emulator.wait_media(id, settled, DECISION_WAIT).await;
    match joined {
        Some(m) if m.state == MediaState::Connected => {
            let connect = Duration::from_secs_f64(m.connect_ms.unwrap_or(0.0) / 1000.0);
            ctx.tell(index, Some(id), Step::MediaConnected(connect));
            // Hold, unless the media ends first.
            let ended = |m: &super::media::MediaRecord| {
                matches!(m.state, MediaState::Ended | MediaState::Failed)
            };
            let early = emulator.wait_media(id, ended, spec.hold).await;
            if let Some(m) = early {
                out.media_error = Some(format!(
                    "media ended before the caller hung up: {}",
                    m.ended_by.or(m.error).unwrap_or_default()
                ));
            }
            if let Err(e) = emulator.hangup(id) {
                tracing::debug!(call = %id, error = %e, "hang-up");
            }
            ctx.tell(index, Some(id), Step::HungUp);
            match emulator.wait_media(id, ended, CLOSE_WAIT).await {
                Some(m) => ctx.tell(
                    index,
                    Some(id),
                    Step::MediaEnded(m.ended_by.unwrap_or_else(|| "ended".into())),
                ),
                None => {
                    out.media_error = Some("the media did not end after the call ended".into());
                }
            }
            out.media = emulator.take_media_report(id);
        }
        other => {
            let why = other
                .and_then(|m| m.error)
                .unwrap_or_else(|| "the media never connected".into());
            ctx.tell(index, Some(id), Step::Failed(format!("media: {why}")));
            out.media_error = Some(why);
            let _ = emulator.hangup(id);
        }
    }
}

/// A percentile summary of durations, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 99th percentile (nearest rank).
    pub p99_ms: Option<f64>,
    /// Largest.
    pub max_ms: Option<f64>,
}

impl Percentiles {
    /// Summarises `values` (any order).
    pub fn of(values: impl IntoIterator<Item = Duration>) -> Self {
        let mut v: Vec<f64> = values
            .into_iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| -> Option<f64> {
            if v.is_empty() {
                return None;
            }
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            Some(v[i])
        };
        Self {
            count: v.len(),
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            max_ms: v.last().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let p = Percentiles::of((1..=100).map(Duration::from_millis));
        assert_eq!(p.count, 100);
        assert_eq!(p.p50_ms, Some(50.0));
        assert_eq!(p.p99_ms, Some(99.0));
        assert_eq!(p.max_ms, Some(100.0));
        assert_eq!(Percentiles::of([]).p50_ms, None);
    }
}
