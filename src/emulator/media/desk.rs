//! The emulator's media desk: per call, what the ring asked for its media, and what became of
//! it — the link between the emulated Graph service and the [`MediaProcessor`].
//!
//! A ring ([`RingRequest::media`](crate::emulator::RingRequest)) may ask for media:
//!
//! ```json
//! "media": { "peer": "emulator",
//!            "participants": [{ "name": "caller", "speech": "caller-48k.wav", "leadSilenceMs": 0 }] }
//! ```
//!
//! - `peer: "emulator"` (default): when the bot answers with `appHostedMediaConfig`, the
//!   emulator's media processor joins at once with the participants (default: the caller;
//!   the caller and a second participant for meetings, group calls and policy recording),
//!   and leaves when the call is terminated (caller hangs up, bot `DELETE`s the call) or when
//!   the bot ends the media session.
//! - `peer: "external"`: the blob from the bot's answer is only handed out — in the call
//!   record (`GET /emulator/v1/calls/{id}` → `media.blob`) and at
//!   `GET /emulator/v1/calls/{id}/media` — and the emulator does not join, so a browser or
//!   another WebRTC stack can negotiate itself.
//!
//! A ring without `media` gets no media handling at all (the answer is still validated).
//! Speech files are names of files in `media/` (no paths), so the control API cannot be used
//! to read other files.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{OnceCell, watch};
use tokio::task::JoinHandle;

use crate::emulator::record::Phase;
use crate::emulator::scenario::Scenario;
use crate::emulator::server::Shared;

use super::error::MediaProcError;
use super::processor::{LegEnd, MediaProcessor, MediaProcessorConfig, MediaReport};
use super::speech::{ParticipantMedia, media_dir};

/// Who joins the call's media.
#[derive(Clone, Copy, Debug, Default, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MediaPeer {
    /// The emulator's own media processor joins with the emulated participants.
    #[default]
    Emulator,
    /// Somebody else (a browser, another WebRTC stack): the blob is handed out only.
    External,
}

/// One participant as a ring describes it.
#[derive(Clone, Debug, Default, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantSpec {
    /// Display name (default `participant-N`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// A WAV file in `media/` (a file name, no path), e.g. `caller2-48k.wav`.
    pub speech: String,
    /// Silence before the speech starts, in ms.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lead_silence_ms: u64,
    /// Loop the speech.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// What a ring asks for its call's media (`"media"` in the ring request).
#[derive(Clone, Debug, Default, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaRequest {
    /// Who joins (default: the emulator).
    #[serde(default)]
    pub peer: MediaPeer,
    /// The emulated participants (default by scenario: the caller; plus a second
    /// participant for meetings, group calls and policy recording).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<ParticipantSpec>,
}

impl MediaRequest {
    /// The emulator joins with the scenario's default participants.
    pub fn emulator() -> Self {
        Self::default()
    }

    /// The blob is left to an external peer.
    pub fn external() -> Self {
        Self {
            peer: MediaPeer::External,
            participants: Vec::new(),
        }
    }

    /// The participants to join with: the requested ones (speech resolved in `media/`), or
    /// the scenario's defaults.
    ///
    /// # Errors
    /// [`MediaProcError::Speech`] for a speech name that is not a plain file name.
    pub fn participants_for(
        &self,
        scenario: Scenario,
    ) -> Result<Vec<ParticipantMedia>, MediaProcError> {
        if self.participants.is_empty() {
            return Ok(match scenario {
                Scenario::P2p | Scenario::Pstn => vec![ParticipantMedia::caller()],
                _ => vec![ParticipantMedia::caller(), ParticipantMedia::second()],
            });
        }
        let dir = media_dir();
        self.participants
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let plain = !p.speech.is_empty()
                    && !p.speech.contains(['/', '\\'])
                    && p.speech != ".."
                    && p.speech != ".";
                if !plain {
                    return Err(MediaProcError::Speech {
                        path: p.speech.clone(),
                        reason: "must be the name of a file in media/".into(),
                    });
                }
                let name = if p.name.is_empty() {
                    format!("participant-{}", i + 1)
                } else {
                    p.name.clone()
                };
                let mut m = ParticipantMedia::new(name, dir.join(&p.speech))
                    .lead_silence(Duration::from_millis(p.lead_silence_ms));
                m.repeat = p.repeat;
                Ok(m)
            })
            .collect()
    }
}

/// Where a call's media is.
#[derive(Clone, Copy, Debug, Default, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MediaState {
    /// Media was asked for; the bot has not answered yet.
    #[default]
    Requested,
    /// The bot answered; the blob waits for an external peer.
    External,
    /// The emulator's media processor is negotiating.
    Joining,
    /// Media flows.
    Connected,
    /// Media ended (see `endedBy`).
    Ended,
    /// The media processor could not join (see `error`).
    Failed,
}

/// One participant in a [`MediaRecord`].
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantSummary {
    /// Name.
    pub name: String,
    /// 20 ms frames sent into the room.
    pub frames_sent: u64,
    /// 20 ms frames heard.
    pub frames_heard: u64,
    /// Ticks its input queue was found empty.
    pub underruns: u64,
}

/// The audio round trip of the first participant (an echo bot's), when measured.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoundTripSummary {
    /// Delay at which the participant's own speech came back, ms.
    pub delay_ms: f64,
    /// Normalized cross-correlation at that delay.
    pub correlation: f32,
    /// How much the delay moved during the call, ms.
    pub delay_spread_ms: f64,
}

/// The media part of a call record (`media` in `GET /emulator/v1/calls/{id}`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaRecord {
    /// Who joins.
    pub peer: MediaPeer,
    /// Where it is.
    pub state: MediaState,
    /// The bot's `appHostedMediaConfig.blob`, once it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Why joining failed, or why the answer had no usable blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Round trip of the offer's POST, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiation_ms: Option<f64>,
    /// Offer to ICE + DTLS connected, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    /// RTP packets received from the bot.
    pub packets_in: u64,
    /// RTP packets sent to the bot.
    pub packets_out: u64,
    /// Frames of the bot's audio concealed by the emulator.
    pub concealed_frames: u64,
    /// The participants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<ParticipantSummary>,
    /// The first participant's audio round trip (measured when media ends; meaningful for
    /// an echo bot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip: Option<RoundTripSummary>,
    /// `callEnded` (terminated: hangup or bot `DELETE`), `botClosed` (the bot ended the media
    /// session), `failed`, `emulatorStopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
}

impl MediaRecord {
    fn absorb(&mut self, report: &MediaReport) {
        self.negotiation_ms = Some(ms(report.negotiation_time));
        self.connect_ms = Some(ms(report.connect_time));
        self.packets_in = report.packets_in();
        self.packets_out = report.packets_out();
        self.concealed_frames = report.concealed_frames();
        self.participants = report
            .participants
            .iter()
            .map(|p| ParticipantSummary {
                name: p.name.clone(),
                frames_sent: p.frames_sent,
                frames_heard: p.frames_heard,
                underruns: p.underruns,
            })
            .collect();
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[derive(Debug, Default)]
struct DeskCall {
    request: MediaRequest,
    record: MediaRecord,
    report: Option<MediaReport>,
    task: Option<JoinHandle<()>>,
}

/// Per-call media state of one emulator (held by its shared state).
#[derive(Debug)]
pub(crate) struct MediaDesk {
    config: MediaProcessorConfig,
    processor: OnceCell<MediaProcessor>,
    calls: Mutex<HashMap<String, DeskCall>>,
    changed: watch::Sender<u64>,
}

/// Longest a joined leg waits for its call to end.
const CALL_WATCH: Duration = Duration::from_secs(24 * 3600);

impl MediaDesk {
    pub(crate) fn new(config: MediaProcessorConfig) -> Self {
        Self {
            config,
            processor: OnceCell::new(),
            calls: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
        }
    }

    /// Remembers what ring `id` asked for (nothing when it asked for no media).
    pub(crate) fn register(&self, id: &str, request: Option<MediaRequest>) {
        let Some(request) = request else { return };
        let record = MediaRecord {
            peer: request.peer,
            ..MediaRecord::default()
        };
        self.calls().insert(
            id.to_owned(),
            DeskCall {
                request,
                record,
                ..DeskCall::default()
            },
        );
        self.bump();
    }

    /// The bot's answer to call `id` was accepted (202): take the blob and, for the
    /// emulator's own peer, join.
    pub(crate) fn on_answer(&self, shared: &Arc<Shared>, id: &str, body: &[u8]) {
        let (request, blob) = {
            let mut calls = self.calls();
            let Some(call) = calls.get_mut(id) else {
                return;
            };
            if call.record.state != MediaState::Requested {
                return;
            }
            match app_hosted_blob(body) {
                Some(blob) => {
                    call.record.blob = Some(blob.clone());
                    call.record.state = match call.request.peer {
                        MediaPeer::External => MediaState::External,
                        MediaPeer::Emulator => MediaState::Joining,
                    };
                    (call.request.clone(), blob)
                }
                None => {
                    call.record.state = MediaState::Failed;
                    call.record.error = Some("the answer has no appHostedMediaConfig.blob".into());
                    drop(calls);
                    self.bump();
                    return;
                }
            }
        };
        self.bump();
        if request.peer == MediaPeer::External {
            return;
        }
        let task = tokio::spawn(run_call(Arc::clone(shared), id.to_owned(), request, blob));
        if let Some(call) = self.calls().get_mut(id) {
            call.task = Some(task);
        }
    }

    /// The media record of call `id`.
    pub(crate) fn record(&self, id: &str) -> Option<MediaRecord> {
        self.calls().get(id).map(|c| c.record.clone())
    }

    /// The final media report of call `id` (what each participant sent and heard), once its
    /// media has ended; taken out (it holds the audio).
    pub(crate) fn take_report(&self, id: &str) -> Option<MediaReport> {
        self.calls().get_mut(id).and_then(|c| c.report.take())
    }

    /// Waits until `pred` holds for call `id`'s media record, or `timeout`.
    pub(crate) async fn wait<P: Fn(&MediaRecord) -> bool>(
        &self,
        id: &str,
        pred: P,
        timeout: Duration,
    ) -> Option<MediaRecord> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(r) = self.record(id)
                && pred(&r)
            {
                return Some(r);
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// The media processor, started on first use.
    async fn processor(&self) -> Result<&MediaProcessor, MediaProcError> {
        self.processor
            .get_or_try_init(|| async { MediaProcessor::start(self.config.clone()) })
            .await
    }

    /// Stops every call's media task and the media processor's shards.
    pub(crate) fn stop(&self) {
        for call in self.calls().values_mut() {
            if let Some(task) = call.task.take() {
                task.abort();
            }
            if matches!(
                call.record.state,
                MediaState::Joining | MediaState::Connected
            ) {
                call.record.state = MediaState::Ended;
                call.record.ended_by = Some("emulatorStopped".into());
            }
        }
        if let Some(p) = self.processor.get() {
            let _ = p.shutdown();
        }
        self.bump();
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut DeskCall)) {
        if let Some(call) = self.calls().get_mut(id) {
            f(call);
        }
        self.bump();
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn calls(&self) -> MutexGuard<'_, HashMap<String, DeskCall>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `mediaConfig.blob` of an app-hosted answer body, if any.
fn app_hosted_blob(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let config = v
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("mediaConfig"))?
        .1
        .as_object()?;
    let odata = config
        .get("@odata.type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !odata.is_empty() && !odata.to_ascii_lowercase().ends_with("apphostedmediaconfig") {
        return None;
    }
    config
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("blob"))?
        .1
        .as_str()
        .map(str::to_owned)
}

/// Joins call `id`'s media, keeps it until the call or the media ends, then leaves.
async fn run_call(shared: Arc<Shared>, id: String, request: MediaRequest, blob: String) {
    let desk = &shared.media;
    let scenario = shared
        .model()
        .call(&id)
        .map(|c| c.scenario)
        .unwrap_or_default();
    let joined = async {
        let participants = request.participants_for(scenario)?;
        let processor = desk.processor().await?;
        for cert in shared.notifier().trusted_certs() {
            processor.trust(cert)?;
        }
        processor.join(&id, &blob, participants).await
    }
    .await;
    let leg = match joined {
        Ok(leg) => leg,
        Err(e) => {
            desk.update(&id, |c| {
                c.record.state = MediaState::Failed;
                c.record.error = Some(e.to_string());
            });
            return;
        }
    };
    desk.update(&id, |c| {
        c.record.state = MediaState::Connected;
        c.record.absorb(&leg.report());
    });
    let terminated = shared.wait_until(&id, |c| c.state == Phase::Terminated, CALL_WATCH);
    let ended_by = tokio::select! {
        end = leg.ended() => match end {
            LegEnd::Failed(_) => "failed",
            LegEnd::BotClosed | LegEnd::Left => "botClosed",
        },
        _ = terminated => "callEnded",
    };
    let report = leg.leave().await;
    let first = report
        .participants
        .first()
        .map(|p| (p.sent.clone(), p.heard.clone()));
    // Correlating seconds of audio is CPU work: keep it off the runtime's workers.
    let round_trip = match first {
        Some((sent, heard)) => tokio::task::spawn_blocking(move || {
            super::round_trip::round_trip(&sent, &heard, Duration::ZERO, Duration::from_secs(2))
        })
        .await
        .ok()
        .flatten(),
        None => None,
    };
    desk.update(&id, |c| {
        c.record.absorb(&report);
        c.record.state = MediaState::Ended;
        c.record.ended_by = Some(ended_by.into());
        c.record.round_trip = round_trip.map(|r| RoundTripSummary {
            delay_ms: (r.delay_ms * 1e3).round() / 1e3,
            correlation: r.correlation,
            delay_spread_ms: r.delay_spread_ms,
        });
        c.report = Some(report);
        c.task = None;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blob_is_read_from_app_hosted_answers_only() {
        let body = br##"{"callbackUri":"https://x","acceptedModalities":["audio"],
            "mediaConfig":{"@odata.type":"#microsoft.graph.appHostedMediaConfig","blob":"{\"v\":1}"}}"##;
        assert_eq!(app_hosted_blob(body).as_deref(), Some("{\"v\":1}"));
        let lenient = br#"{"MediaConfig":{"Blob":"b"}}"#;
        assert_eq!(app_hosted_blob(lenient).as_deref(), Some("b"));
        let service =
            br##"{"mediaConfig":{"@odata.type":"#microsoft.graph.serviceHostedMediaConfig"}}"##;
        assert_eq!(app_hosted_blob(service), None);
        for junk in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"mediaConfig":{"blob":3}}"#,
        ] {
            assert_eq!(app_hosted_blob(junk), None);
        }
    }

    #[test]
    fn ring_media_requests_parse_and_resolve() {
        let r: MediaRequest = serde_json::from_str(
            r#"{"peer":"external","participants":[{"speech":"caller2-48k.wav","leadSilenceMs":500}]}"#,
        )
        .expect("parses");
        assert_eq!(r.peer, MediaPeer::External);
        let p = r.participants_for(Scenario::P2p).expect("resolves");
        assert_eq!(p[0].name, "participant-1");
        assert_eq!(p[0].lead_silence, Duration::from_millis(500));
        assert!(p[0].speech_wav.ends_with("media/caller2-48k.wav"));
        let d = MediaRequest::default();
        assert_eq!(d.participants_for(Scenario::P2p).expect("p2p").len(), 1);
        assert_eq!(
            d.participants_for(Scenario::Meeting)
                .expect("meeting")
                .len(),
            2
        );
        for bad in ["../Cargo.toml", "/etc/passwd", "", "..", "a\\b"] {
            let r = MediaRequest {
                participants: vec![ParticipantSpec {
                    speech: bad.into(),
                    ..ParticipantSpec::default()
                }],
                ..MediaRequest::default()
            };
            assert!(
                matches!(
                    r.participants_for(Scenario::P2p),
                    Err(MediaProcError::Speech { .. })
                ),
                "{bad}"
            );
        }
    }
}
