//! `mediabot demo` with real audio: the emulator (signaling and media processor) and the
//! media bot ([`MediaBot`], default behaviour: greeting, echo after 200 ms, recording) in
//! one process on loopback, a few concurrent calls of different kinds with speech from
//! `media/`, progress while they run, and a report per call — decision, answer latency,
//! media connect time, packets, concealment (split into loss, sender pauses and delay
//! growth: see [`super::concealment`]), the audio round trip measured by correlating what the
//! caller sent with what it heard, whether the greeting came first, and where the recording
//! is.
//!
//! [`start_stack`] (emulator + media bot + media processor, wired to trust each other) is
//! also what `mediabot load` and the end-to-end tests use.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::adapters::bot::BotConfig;
use crate::adapters::local_participant::LocalParticipant;
use crate::adapters::media_bot::{MediaBot, MediaBotConfig, MediaBotError, MediaOutcome};
use crate::adapters::tls::TlsIdentity;
use crate::call::CallId;

use super::concealment::Concealment;
use super::media::{
    MediaProcError, MediaProcessorConfig, ParticipantSpec, first_heard, load_wav_48k, media_dir,
};
use super::media_call::{
    CallContext, CallProgress, MediaCallOutcome, MediaCallSpec, Step, run_call,
};
use super::scenario::Scenario;
use super::server::{Emulator, EmulatorConfig, EmulatorError, EmulatorHandle};

/// Longest delay searched for the caller's echo.
pub const MAX_ROUND_TRIP: Duration = Duration::from_millis(1500);
/// Correlation above which the first thing heard counts as the greeting.
pub const GREETING_MIN_CORRELATION: f32 = 0.5;

/// Why the demo (or its stack) could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaDemoError {
    /// The emulator failed.
    #[error("emulator: {0}")]
    Emulator(#[from] EmulatorError),
    /// The bot failed to start.
    #[error("bot: {0}")]
    Bot(#[from] MediaBotError),
    /// The media processor failed.
    #[error("media processor: {0}")]
    Media(#[from] MediaProcError),
}

/// The emulator (with its media desk) and the media bot, wired together.
#[derive(Debug)]
pub struct Stack {
    /// The emulated Graph service; its media processor joins the calls rung with media.
    pub emulator: Arc<EmulatorHandle>,
    /// The bot with its media.
    pub bot: MediaBot,
}

impl Stack {
    /// A context for placing calls on this stack.
    pub fn context(&self, progress: Option<mpsc::UnboundedSender<CallProgress>>) -> CallContext {
        CallContext {
            emulator: Arc::clone(&self.emulator),
            bot_url: self.bot.bot().webhook_url().to_owned(),
            started: Instant::now(),
            progress,
        }
    }

    /// Stops everything (the bot, then the emulator and its media processor).
    pub async fn shutdown(self) {
        self.bot.shutdown(Duration::from_secs(1)).await;
        match Arc::try_unwrap(self.emulator) {
            Ok(e) => e.shutdown().await,
            Err(_) => tracing::warn!("emulator handle still shared at shutdown"),
        }
    }
}

/// Starts the emulator (its media desk joining with `media`), and a media bot configured by
/// `configure` (its Graph, token and OpenID URLs point at the emulator), on loopback. The bot
/// gets a self-signed certificate made first, for its webhook and its negotiation endpoint,
/// which the emulator trusts for both notifications and media.
///
/// # Errors
/// Any part failing to start.
pub async fn start_stack(
    configure: impl FnOnce(&mut MediaBotConfig),
    media: MediaProcessorConfig,
) -> Result<Stack, MediaDemoError> {
    let tls = TlsIdentity::self_signed_localhost().map_err(MediaBotError::from)?;
    let mut media = media;
    media.trusted_certs.push(tls.certificate().clone());
    let emulator = Emulator::start(EmulatorConfig {
        trusted_bot_certs: vec![tls.certificate().clone()],
        media,
        ..EmulatorConfig::default()
    })
    .await?;
    let mut bot: BotConfig = emulator.bot_config();
    bot.tls = Some(tls);
    let mut cfg = MediaBotConfig::new(bot);
    configure(&mut cfg);
    let bot = MediaBot::start(cfg).await?;
    Ok(Stack {
        emulator: Arc::new(emulator),
        bot,
    })
}

/// The demo's calls: a Teams user, a phone caller and a meeting with two participants, each
/// starting to speak once the greeting is over, each held `hold` after media connects.
pub fn default_calls(hold: Duration) -> Vec<MediaCallSpec> {
    let greeting = greeting_duration();
    let lead = greeting + Duration::from_millis(400);
    vec![
        MediaCallSpec {
            label: "Teams user calls the bot".into(),
            scenario: Scenario::P2p,
            participants: vec![speaker("caller", "caller-48k.wav", lead)],
            hold,
        },
        MediaCallSpec {
            label: "phone number calls the bot".into(),
            scenario: Scenario::Pstn,
            participants: vec![speaker("caller", "caller2-48k.wav", lead)],
            hold,
        },
        MediaCallSpec {
            label: "meeting invitation (two participants)".into(),
            scenario: Scenario::Meeting,
            participants: vec![
                speaker("caller", "caller-48k.wav", lead),
                speaker(
                    "participant-2",
                    "caller2-48k.wav",
                    lead + Duration::from_secs(3),
                ),
            ],
            hold,
        },
    ]
}

/// A participant saying `speech` (a file in `media/`) once, after `lead` of silence.
pub fn speaker(name: &str, speech: &str, lead: Duration) -> ParticipantSpec {
    ParticipantSpec {
        name: name.to_owned(),
        speech: speech.to_owned(),
        lead_silence_ms: u64::try_from(lead.as_millis()).unwrap_or(u64::MAX),
        repeat: false,
    }
}

/// How long `media/greeting-16k.wav` plays (4.7 s; 5 s if it cannot be read).
pub fn greeting_duration() -> Duration {
    load_wav_48k(&media_dir().join("greeting-16k.wav"))
        .map(|s| Duration::from_secs_f64(s.len() as f64 / 48_000.0))
        .unwrap_or(Duration::from_secs(5))
}

/// One call of the report.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaDemoCall {
    /// What the call shows.
    pub label: String,
    /// The caller's kind (`p2p`, `pstn`, `meeting`, …).
    pub scenario: String,
    /// Graph call id.
    pub call_id: Option<String>,
    /// The bot's decision (`answer`, `reject`, `redirect`, `none`).
    pub decision: String,
    /// The bot answered.
    pub answered: bool,
    /// Incoming notification sent → answer request received by the emulator, ms.
    pub answer_latency_ms: Option<f64>,
    /// ICE + DTLS connected.
    pub media_connected: bool,
    /// Offer started → ICE + DTLS connected (the media processor's clock), ms.
    pub media_connect_ms: Option<f64>,
    /// RTP packets the bot received from the call.
    pub packets_in: u64,
    /// RTP packets the bot sent to the call.
    pub packets_out: u64,
    /// Frames concealed, both directions (`concealedByBot + concealedByCaller`).
    pub concealed_frames: u64,
    /// Frames of the caller's audio the bot's room concealed.
    pub concealed_by_bot: u64,
    /// Frames of the bot's audio the emulator's room concealed.
    pub concealed_by_caller: u64,
    /// Both directions' concealment split by cause: loss, sender pauses, delay growth.
    pub concealment: Concealment,
    /// Caller → bot: the bot's room's concealment by cause (zero frames when the bot gave no
    /// statistics).
    pub concealment_by_bot: Concealment,
    /// Bot → caller: the emulator's room's concealment by cause.
    pub concealment_by_caller: Concealment,
    /// Where the caller's own speech came back (echo delay + both directions), ms.
    pub round_trip_ms: Option<f64>,
    /// Normalized cross-correlation of what the caller sent with what it heard at that delay.
    pub correlation: Option<f32>,
    /// The first thing the caller heard was the greeting.
    pub greeting_first: Option<bool>,
    /// Correlation of the greeting's opening with the first audio heard.
    pub greeting_correlation: Option<f32>,
    /// The call's recording directory (`leg-1.opus`, `mix.wav`, `recording.json`).
    pub recordings: Option<PathBuf>,
    /// Ticks recorded, and whether every tick's event arrived.
    pub recording_ticks: Option<u64>,
    /// Every tick of the recording arrived (nothing filled).
    pub recording_complete: Option<bool>,
    /// Who ended the call (the emulator's view).
    pub ended_by: Option<String>,
    /// How the bot's media session ended.
    pub media_end: Option<String>,
    /// The local participant (`--device`) was in this call: its description.
    pub local: Option<String>,
    /// The local participant could not join this call or failed during it: why.
    pub local_error: Option<String>,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaDemoReport {
    /// The emulator's base URL.
    pub emulator_url: String,
    /// The bot's webhook.
    pub bot_url: String,
    /// The bot's negotiation endpoint.
    pub media_url: String,
    /// The recordings' root directory.
    pub record_dir: PathBuf,
    /// Wall time of the run, ms.
    pub elapsed_ms: f64,
    /// One entry per call.
    pub calls: Vec<MediaDemoCall>,
}

impl MediaDemoReport {
    /// Calls answered whose media connected and whose caller heard itself back.
    pub fn calls_with_echo(&self, min_correlation: f32) -> usize {
        self.calls
            .iter()
            .filter(|c| c.media_connected && c.correlation.is_some_and(|r| r >= min_correlation))
            .count()
    }
}

/// Runs `calls` concurrently against a fresh stack recording under `record_dir`, with `local`
/// (a sound device) joining the oldest connected call; progress lines go to `progress` as
/// they happen (a status line every 2 s, and a line whenever the local participant moves).
///
/// # Errors
/// The stack did not start.
pub async fn run(
    calls: &[MediaCallSpec],
    record_dir: PathBuf,
    local: Option<Arc<dyn LocalParticipant>>,
    progress: Option<mpsc::UnboundedSender<String>>,
) -> Result<MediaDemoReport, MediaDemoError> {
    let started = Instant::now();
    let dir = record_dir.clone();
    let stack = start_stack(
        move |c| {
            c.behaviour.record_dir = Some(dir);
            c.media.local = local;
        },
        MediaProcessorConfig::default(),
    )
    .await?;
    let local = stack
        .bot
        .host()
        .config()
        .local
        .as_ref()
        .map(|l| l.describe());
    let say = |line: String| {
        if let Some(tx) = &progress {
            let _ = tx.send(line);
        }
    };
    say(format!(
        "emulator {}  bot {}  media {}",
        stack.emulator.base_url(),
        stack.bot.bot().webhook_url(),
        stack.bot.media_url()
    ));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ctx = stack.context(Some(tx));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, spec) in calls.iter().enumerate() {
        let ctx = ctx.clone();
        let spec = spec.clone();
        tasks.spawn(async move { (i, run_call(&ctx, i, &spec).await) });
    }
    drop(ctx);
    let mut status = tokio::time::interval(Duration::from_secs(2));
    status.tick().await;
    let mut outcomes: Vec<Option<MediaCallOutcome>> = vec![None; calls.len()];
    let mut done = 0;
    // Where the local participant is: checked often, told when it changes.
    let mut seat = tokio::time::interval(Duration::from_millis(100));
    let mut seated: Option<CallId> = None;
    let mut indices = std::collections::HashMap::new();
    while done < calls.len() {
        tokio::select! {
            // Progress first, so lines come out in the order things happened.
            biased;
            Some(p) = rx.recv() => {
                if let Some(id) = &p.call_id {
                    indices.insert(CallId::from(id.as_str()), p.index);
                }
                say(progress_line(calls, &p));
            }
            _ = status.tick() => say(status_line(&stack, started)),
            _ = seat.tick(), if local.is_some() => {
                let now = stack.bot.local_call();
                if now != seated {
                    let what = local.as_deref().unwrap_or("local participant");
                    say(match &now {
                        Some(id) => format!(
                            "[{:6.2} s] {what} is in call {} ({id}): talk and listen",
                            started.elapsed().as_secs_f64(),
                            indices.get(id).map_or("?".to_owned(), |i| (i + 1).to_string()),
                        ),
                        None => format!(
                            "[{:6.2} s] {what} is in no call",
                            started.elapsed().as_secs_f64()
                        ),
                    });
                    seated = now;
                }
            }
            joined = tasks.join_next() => match joined {
                Some(Ok((i, o))) => {
                    outcomes[i] = Some(o);
                    done += 1;
                }
                Some(Err(e)) => {
                    say(format!("a call task failed: {e}"));
                    done += 1;
                }
                None => break,
            },
        }
    }
    while let Ok(p) = rx.try_recv() {
        say(progress_line(calls, &p));
    }
    let greeting = load_wav_48k(&media_dir().join("greeting-16k.wav")).unwrap_or_default();
    let mut report_calls = Vec::new();
    for o in outcomes.into_iter().flatten() {
        let bot = match &o.call_id {
            Some(id) if o.decision == "answer" => {
                stack
                    .bot
                    .media_ended(&CallId::from(id.as_str()), Duration::from_secs(5))
                    .await
            }
            _ => None,
        };
        report_calls.push(call_report(&o, bot.as_ref(), &greeting));
    }
    let report = MediaDemoReport {
        emulator_url: stack.emulator.base_url().to_owned(),
        bot_url: stack.bot.bot().webhook_url().to_owned(),
        media_url: stack.bot.media_url().to_owned(),
        record_dir,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        calls: report_calls,
    };
    stack.shutdown().await;
    Ok(report)
}

/// The report of one call from the emulator's outcome and the bot's media outcome.
pub fn call_report(
    o: &MediaCallOutcome,
    bot: Option<&MediaOutcome>,
    greeting: &[f32],
) -> MediaDemoCall {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let media = o.media.as_ref();
    let stats = bot.and_then(|b| b.last_stats.as_ref());
    let caller = media.and_then(|m| m.participants.first());
    let round_trip = media.and_then(|m| m.round_trip(0, MAX_ROUND_TRIP));
    let first = caller.and_then(|p| first_heard(&p.heard, greeting));
    let by_bot = stats.map_or(0, |s| s.room.concealed_frames);
    let by_caller = media.map_or(0, |m| m.concealed_frames());
    let concealment_by_bot =
        stats.map_or_else(Concealment::default, |s| Concealment::of_bot_room(&s.room));
    let concealment_by_caller = media.map_or_else(Concealment::default, |m| {
        Concealment::of_emulator_room(&m.bot)
    });
    let recording = bot.and_then(|b| b.recording.as_ref());
    MediaDemoCall {
        label: o.label.clone(),
        scenario: o.scenario.name().to_owned(),
        call_id: o.call_id.clone(),
        decision: o.decision.clone(),
        answered: o.decision == "answer",
        answer_latency_ms: o.answer_latency.map(ms),
        media_connected: media.is_some(),
        media_connect_ms: media.map(|m| ms(m.connect_time)),
        packets_in: stats.map_or_else(
            || media.map_or(0, |m| m.packets_out()),
            |s| s.transport.packets_in,
        ),
        packets_out: stats.map_or_else(
            || media.map_or(0, |m| m.packets_in()),
            |s| s.transport.packets_out,
        ),
        concealed_frames: by_bot + by_caller,
        concealed_by_bot: by_bot,
        concealed_by_caller: by_caller,
        concealment: Concealment::sum([concealment_by_bot, concealment_by_caller]),
        concealment_by_bot,
        concealment_by_caller,
        round_trip_ms: round_trip.map(|r| r.delay_ms),
        correlation: round_trip.map(|r| r.correlation),
        greeting_first: first.map(|f| f.is_prompt(GREETING_MIN_CORRELATION)),
        greeting_correlation: first.map(|f| f.correlation),
        recordings: recording.map(|r| r.dir.clone()),
        recording_ticks: recording.map(|r| r.ticks),
        recording_complete: recording.map(|r| r.integrity.complete),
        ended_by: o.ended_by().map(|e| serde_name(&e)),
        media_end: bot.and_then(|b| b.ended).map(|e| format!("{e:?}")),
        local: bot.and_then(|b| b.local.clone()),
        local_error: bot.and_then(|b| b.local_error.clone()),
        error: o.media_error.clone(),
    }
}

fn progress_line(calls: &[MediaCallSpec], p: &CallProgress) -> String {
    let label = calls.get(p.index).map_or("", |c| c.label.as_str());
    let what = match &p.step {
        Step::Rang => "ringing".to_owned(),
        Step::Decided(d, Some(l)) => format!("{d} ({:.1} ms after the notification)", ms(*l)),
        Step::Decided(d, None) => d.clone(),
        Step::MediaConnected(t) => format!("media connected ({:.0} ms)", ms(*t)),
        Step::HungUp => "caller hung up".to_owned(),
        Step::MediaEnded(how) => format!("media ended ({how})"),
        Step::Failed(why) => format!("FAILED: {why}"),
    };
    format!(
        "[{:6.2} s] call {} {label}: {what}",
        p.at.as_secs_f64(),
        p.index + 1
    )
}

fn status_line(stack: &Stack, started: Instant) -> String {
    let h = stack.bot.host().host_stats();
    let shards = stack.bot.host().shard_stats();
    let ticks: u64 = shards.iter().map(|s| s.ticks).sum();
    let misses: u64 = shards.iter().map(|s| s.deadline_misses).sum();
    format!(
        "[{:6.2} s] status: {} live media session(s), {} negotiated, {} ended; bot shards {} ticks, {} deadline misses",
        started.elapsed().as_secs_f64(),
        h.live_calls,
        h.negotiated,
        h.ended,
        ticks,
        misses
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The serde (camelCase) spelling of a small enum.
fn serde_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl fmt::Display for MediaDemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<f64>, unit: &str| {
            v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1} {unit}"))
        };
        writeln!(
            f,
            "mediabot demo — {} calls with real audio",
            self.calls.len()
        )?;
        writeln!(
            f,
            "  emulator {}   bot {}   media {}",
            self.emulator_url, self.bot_url, self.media_url
        )?;
        for (i, c) in self.calls.iter().enumerate() {
            writeln!(f)?;
            writeln!(
                f,
                "{:>2}. {} [{}] {}",
                i + 1,
                c.label,
                c.scenario,
                c.call_id.as_deref().unwrap_or("—")
            )?;
            writeln!(
                f,
                "    decision {}; answer latency {} (notification → answer received); media connect {}",
                c.decision,
                opt(c.answer_latency_ms, "ms"),
                opt(c.media_connect_ms, "ms"),
            )?;
            if c.media_connected {
                writeln!(
                    f,
                    "    packets in {} / out {} (bot); concealed frames {} (bot {}, caller {})",
                    c.packets_in,
                    c.packets_out,
                    c.concealed_frames,
                    c.concealed_by_bot,
                    c.concealed_by_caller
                )?;
                writeln!(
                    f,
                    "    concealment {}; bot side {}, caller's side {}",
                    c.concealment, c.concealment_by_bot, c.concealment_by_caller
                )?;
                writeln!(
                    f,
                    "    round trip {} at correlation {}; greeting heard first: {} (correlation {})",
                    opt(c.round_trip_ms, "ms"),
                    c.correlation
                        .map_or_else(|| "—".to_owned(), |r| format!("{r:.3}")),
                    c.greeting_first
                        .map_or("—", |g| if g { "yes" } else { "no" }),
                    c.greeting_correlation
                        .map_or_else(|| "—".to_owned(), |r| format!("{r:.3}")),
                )?;
                writeln!(
                    f,
                    "    recording {} ({} ticks, {}); ended by {}, media {}",
                    c.recordings
                        .as_ref()
                        .map_or_else(|| "—".to_owned(), |p| p.display().to_string()),
                    c.recording_ticks.unwrap_or(0),
                    if c.recording_complete == Some(true) {
                        "complete"
                    } else {
                        "incomplete"
                    },
                    c.ended_by.as_deref().unwrap_or("—"),
                    c.media_end.as_deref().unwrap_or("—"),
                )?;
            }
            if let Some(l) = &c.local {
                writeln!(f, "    {l} was in this call")?;
            }
            if let Some(e) = &c.local_error {
                writeln!(f, "    local participant: {e}")?;
            }
            if let Some(e) = &c.error {
                writeln!(f, "    error: {e}")?;
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "{}/{} calls answered with media; the caller heard itself back in {} (correlation ≥ 0.8); {:.1} s in all.",
            self.calls.iter().filter(|c| c.media_connected).count(),
            self.calls.len(),
            self.calls_with_echo(0.8),
            self.elapsed_ms / 1000.0
        )
    }
}
