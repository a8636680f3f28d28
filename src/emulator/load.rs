//! `mediabot load`: N concurrent emulated calls with real media against a bot (the media bot
//! in-process by default, or any bot at `--bot URL` that trusts this emulator), held S
//! seconds, and what it cost.
//!
//! Measured:
//! - **answer latency** (incoming notification sent → answer request received by the
//!   emulator) and **media connect** (offer started → ICE + DTLS connected), p50/p99;
//! - the bot's **shard ticks**: cost p50/p99/max over every tick of the run, deadline misses
//!   (deadlines skipped because a tick overran) and late ticks;
//! - **concealment**: frames concealed by the bot's rooms (caller → bot) and by the
//!   emulator's (bot → caller), as % of the frames they played out, split by cause
//!   ([`Concealment`]): **loss** (the packet was missing, or came after its playout time),
//!   **sender pauses** (the rooms send nothing in a tick where they have nothing to say —
//!   discontinuous transmission — so the receiver conceals until its concealment limit, and
//!   finds out from the next packet's sequence number that nothing was lost; at load this is
//!   almost all of the total), **delay growth** (frames the jitter buffer inserted to grow
//!   its delay) and **call end** (concealed after the sender's last packet: no next packet
//!   came to tell). Only the loss part says anything about the network or the host;
//! - **CPU %** of this process from `/proc/self/stat` over the steady part of the run (every
//!   call connected, until the first hang-up), as a share of the machine (`cpuPercent`, 100 =
//!   every core busy) and of one core; **RSS per call** (RSS during that window minus RSS
//!   before the first call, divided by N) and **RSS per added call** (calls are placed in two
//!   halves, the second once the first is connected: the RSS the second half added, divided
//!   by its count — what one more call costs, free of the bot's one-time growth on its first
//!   calls). In-process, both include the emulator's side —
//!   its media processor encodes, decodes and mixes as much as the bot does — and the report
//!   says so (`measured`). With `--bot URL --bot-pid PID` both are read from the bot's own
//!   process (`/proc/PID`): the bot's figure alone. Run the load twice against the same
//!   bot and take the second run: its "before" is the bot idle after a warm-up (allocator
//!   arenas, shard threads and pools already grown), which is the honest per-call figure;
//! - **host-added one-way latency** at p99, the bot's side only (its transport histograms and
//!   its shards; the emulator's are not mixed in), excluding the jitter buffer's wait:
//!   inbound (packet in → decoded frame ready) = socket read → packet queued for the shard
//!   (`recvToQueue`) + the shards' tick deadline → end of the tick's decode phase
//!   (`deadline_to_decoded`: the thread's lateness plus control and every room's jitter pull
//!   and decode — a shard decodes all its rooms before it mixes any; the packet's frame is
//!   decoded by then in the tick that plays it, the wait for that deadline being the jitter
//!   buffer's); the tick deadline → tick end (`deadline_to_end`, both phases) is reported
//!   beside it; outbound (frame ready → packet
//!   on the wire) = the room's own tick start (its frame mixed and encoded) → `write_rtp`
//!   (`queueToWrite`) + `write_rtp` → datagram handed to the kernel (`writeToWire`). Sums of
//!   p99s: upper bounds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::adapters::media_bot::MediaOutcome;
use crate::adapters::process_stats::{ProcessSample, cores, load_average, tcp_listener_pid};
use crate::adapters::shard::{ShardConfig, ShardStats};
use crate::call::CallId;
use crate::media::histogram::Histogram;

use super::concealment::Concealment;
use super::media::{CallRoomConfig, MediaProcessorConfig, ParticipantSpec};
use super::media_call::{
    CallContext, CallProgress, MediaCallOutcome, MediaCallSpec, Percentiles, Step, run_call,
};
use super::media_demo::{MediaDemoError, start_stack};
use super::scenario::Scenario;
use super::server::{Emulator, EmulatorConfig};

/// How a load run goes.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Concurrent calls.
    pub calls: usize,
    /// How long each call is held once its media is connected.
    pub hold: Duration,
    /// A bot elsewhere (its calling webhook); `None` = the media bot in-process.
    pub bot_url: Option<String>,
    /// Where the emulator listens when the bot is elsewhere (the bot must trust it).
    pub emulator_listen: std::net::SocketAddr,
    /// Record the calls into this directory (in-process bot only); `None` = no recording.
    pub record_dir: Option<PathBuf>,
    /// The bot's process when it runs elsewhere on this machine: CPU and RSS are then read
    /// from `/proc/<pid>` (the bot alone) instead of this process. `None` with a loopback
    /// `bot_url`: the process listening on its port, when it can be found.
    pub bot_pid: Option<u32>,
    /// A bot elsewhere's metrics endpoint (`mediabot serve --metrics-listen`), e.g.
    /// `http://127.0.0.1:9464/metrics`: its shards' ticks, deadline misses and tick cost
    /// are then read from it (counters over the run; tick quantiles since the bot started).
    pub bot_metrics: Option<String>,
    /// Place the same calls once before the measured round, held this long and not
    /// measured (zero = no warm-up): the "before" RSS is then the bot idle after a warm-up.
    pub warmup: Duration,
    /// How long to wait for a bot elsewhere to accept connections before placing calls.
    pub bot_wait: Duration,
    /// The emulator's certificate and key (PEM) when the bot is elsewhere, so a bot started
    /// beforehand can already trust it; `None` = a fresh self-signed certificate.
    pub emulator_tls: Option<(PathBuf, PathBuf)>,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            calls: 10,
            hold: Duration::from_secs(20),
            bot_url: None,
            emulator_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8443)),
            record_dir: None,
            bot_pid: None,
            bot_metrics: None,
            bot_wait: Duration::from_secs(120),
            warmup: Duration::ZERO,
            emulator_tls: None,
        }
    }
}

/// What a load run measured (`mediabot load --json` prints this).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    /// Calls placed.
    pub calls: usize,
    /// Seconds each call was held.
    pub seconds: f64,
    /// Seconds the unmeasured warm-up round held its calls (0 = none).
    pub warmup_seconds: f64,
    /// Where the bot was (`in-process` or its URL).
    pub bot: String,
    /// Whose CPU and RSS were measured: `bot + emulator (this process)`,
    /// `bot (pid N)`, or `emulator only (this process)` for a bot elsewhere without a pid.
    pub measured: String,
    /// Calls answered.
    pub answered: usize,
    /// Calls whose media connected.
    pub media_connected: usize,
    /// Calls that failed (no answer, no media, media not closed by the bot).
    pub failed: usize,
    /// Notification sent → answer request received.
    pub answer_latency: Percentiles,
    /// Offer started → ICE + DTLS connected.
    pub media_connect: Percentiles,
    /// The bot's shard tick cost (all shards, whole run); for a bot elsewhere, read from its
    /// metrics endpoint when given (`--bot-metrics`: the largest of its shards' quantiles,
    /// since the bot started), else `None`.
    pub shard_tick: Option<Percentiles>,
    /// Where the shard figures of a bot elsewhere came from (its metrics URL).
    pub shard_figures_from: Option<String>,
    /// Ticks the bot's shards ran.
    pub shard_ticks: Option<u64>,
    /// Deadlines the bot's shards skipped because a tick overran.
    pub deadline_misses: Option<u64>,
    /// Ticks that started late (past the late threshold).
    pub late_ticks: Option<u64>,
    /// Frames concealed, both directions.
    pub concealed_frames: u64,
    /// Frames of the callers' audio the bot concealed.
    pub concealed_by_bot: Option<u64>,
    /// Frames of the bot's audio the emulator concealed.
    pub concealed_by_callers: u64,
    /// Why the bot concealed (its jitter buffers, summed over calls): `[missing, paused,
    /// inserted, dropped, late]` — frames whose packet was missing at playout, those of them
    /// that were the sender's pause (no sequence gap: the emulator's room sends nothing while
    /// nobody speaks), frames inserted to grow the delay, packets discarded to shrink it,
    /// packets that came after their frame played. `None` for a bot elsewhere.
    pub bot_jitter: Option<[u64; 5]>,
    /// Concealed frames per 100 frames received, both directions.
    pub concealed_percent: f64,
    /// Both directions' concealment split by cause: loss, sender pauses, delay growth, call
    /// end (its `concealedFrames` is this report's `concealedFrames` when the bot is in-process).
    pub concealment: Concealment,
    /// Caller → bot: the bot's rooms' concealment by cause; `None` for a bot elsewhere.
    pub concealment_by_bot: Option<Concealment>,
    /// Bot → callers: the emulator's rooms' concealment by cause.
    pub concealment_by_callers: Concealment,
    /// CPU of this process over the steady window, share of the whole machine (100 = all
    /// cores busy).
    pub cpu_percent: Option<f64>,
    /// The same, in units of one core (200 = two cores busy).
    pub cpu_percent_of_one_core: Option<f64>,
    /// Cores.
    pub cores: usize,
    /// Length of the steady window, seconds.
    pub cpu_window_seconds: Option<f64>,
    /// (RSS in the steady window − RSS before the first call) / calls, KiB.
    pub rss_per_call_kib: Option<f64>,
    /// The cost of each call placed after the first half: (RSS with every call connected −
    /// RSS with the first ⌈N/2⌉ connected) / ⌊N/2⌋, KiB. Free of what the bot grows once
    /// on its first calls (code paged in, thread pools, allocator arenas).
    pub rss_per_added_call_kib: Option<f64>,
    /// The same for anonymous memory only, KiB.
    pub rss_anon_per_added_call_kib: Option<f64>,
    /// RSS with the first half of the calls connected, MiB.
    pub rss_half_mib: Option<f64>,
    /// RSS before the first call, MiB.
    pub rss_before_mib: Option<f64>,
    /// RSS in the steady window, MiB.
    pub rss_during_mib: Option<f64>,
    /// The same per-call figure for anonymous memory only (`RssAnon`: heap and stacks), KiB.
    pub rss_anon_per_call_kib: Option<f64>,
    /// Host-added inbound latency p99 upper bound (`recvToQueue` p99 + shard tick deadline →
    /// end of the decode phase p99), ms.
    pub host_latency_in_p99_ms: Option<f64>,
    /// Host-added outbound latency p99 upper bound (`queueToWrite` + `writeToWire` p99), ms.
    pub host_latency_out_p99_ms: Option<f64>,
    /// Socket read → packet queued for the shard, p99, ms.
    pub recv_to_queue_p99_ms: Option<f64>,
    /// The bot's shard tick deadline → tick end (lateness + cost), p99, ms.
    pub deadline_to_end_p99_ms: Option<f64>,
    /// The bot's shard tick deadline → end of the tick's decode phase (lateness + control +
    /// every room's gather), p99, ms.
    pub deadline_to_decoded_p99_ms: Option<f64>,
    /// The room's tick start (frame ready) → `write_rtp`, p99, ms.
    pub queue_to_write_p99_ms: Option<f64>,
    /// `write_rtp` → datagram to the kernel, p99, ms.
    pub write_to_wire_p99_ms: Option<f64>,
    /// The machine's 1-minute load average at the start and at the end.
    pub load_average: (Option<f64>, Option<f64>),
    /// Wall time of the run, seconds.
    pub elapsed_seconds: f64,
    /// First few errors.
    pub errors: Vec<String>,
}

/// Runs the load; progress lines (a status line every 2 s) go to `progress`.
///
/// # Errors
/// The stack did not start.
pub async fn run(
    config: &LoadConfig,
    progress: Option<mpsc::UnboundedSender<String>>,
) -> Result<LoadReport, MediaDemoError> {
    let started = Instant::now();
    let load_start = load_average();
    let defaults = MediaProcessorConfig::default();
    let processor = MediaProcessorConfig {
        // Keep little audio per participant: load does not judge it.
        room: CallRoomConfig {
            keep: Duration::from_secs(1),
            ..CallRoomConfig::default()
        },
        // One emulator shard per core (at normal priority), so the callers' side is not
        // the bottleneck: its rooms encode and decode as much as the bot's.
        shards: ShardConfig {
            shards: 0,
            ..defaults.shards.clone()
        },
        ..defaults
    };
    let mut bot_pid = config.bot_pid;
    let (stack, ctx) = match &config.bot_url {
        None => {
            let dir = config.record_dir.clone();
            let stack = start_stack(move |c| c.behaviour.record_dir = dir, processor).await?;
            let ctx = stack.context(None);
            (Some(stack), ctx)
        }
        Some(url) => {
            let tls = match &config.emulator_tls {
                Some((cert, key)) => Some(
                    crate::adapters::tls::TlsIdentity::from_pem_files(cert, key)
                        .map_err(super::server::EmulatorError::from)?,
                ),
                None => None,
            };
            // The bot's self-signed certificates are accepted, for notifications and media.
            let emulator = Emulator::start(EmulatorConfig {
                listen: config.emulator_listen,
                tls,
                accept_invalid_bot_certs: true,
                media: processor,
                ..EmulatorConfig::default()
            })
            .await?;
            let cert = std::env::temp_dir().join(format!(
                "mediabot-emulator-{}.pem",
                config.emulator_listen.port()
            ));
            let _ = std::fs::write(&cert, emulator.certificate_pem());
            // A bot needs the emulator up to start (it fetches a token at start-up), so it
            // may be started after this: wait for its webhook to accept connections.
            let addr = bot_addr(url);
            if let Some(addr) = addr {
                wait_for_listener(
                    addr,
                    config.bot_wait,
                    progress.as_ref(),
                    emulator.base_url(),
                )
                .await;
            }
            if bot_pid.is_none() {
                bot_pid = addr
                    .filter(|a| a.ip().is_loopback())
                    .and_then(|a| tcp_listener_pid(a.port()));
            }
            let ctx = CallContext {
                emulator: Arc::new(emulator),
                bot_url: url.clone(),
                started,
                progress: None,
            };
            (None, ctx)
        }
    };
    let say = |line: String| {
        if let Some(tx) = &progress {
            let _ = tx.send(line);
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<CallProgress>();
    let ctx = CallContext {
        progress: Some(tx),
        started: Instant::now(),
        ..ctx
    };
    let spec = MediaCallSpec {
        label: "load".into(),
        scenario: Scenario::P2p,
        participants: vec![ParticipantSpec {
            name: "caller".into(),
            speech: "caller-48k.wav".into(),
            lead_silence_ms: 0,
            repeat: true,
        }],
        hold: config.hold,
    };
    if !config.warmup.is_zero() {
        // The same calls once, unmeasured: what the bot grows once and keeps (allocator
        // arenas, shard threads, pools) is then in the "before" sample, not in the per-call
        // figure.
        say(format!(
            "warm-up: {} calls held {:.0} s",
            config.calls,
            config.warmup.as_secs_f64()
        ));
        let quiet = CallContext {
            progress: None,
            ..ctx.clone()
        };
        let warm = MediaCallSpec {
            hold: config.warmup,
            ..spec.clone()
        };
        let mut round = tokio::task::JoinSet::new();
        for i in 0..config.calls {
            let (quiet, warm) = (quiet.clone(), warm.clone());
            round.spawn(async move { run_call(&quiet, i, &warm).await });
        }
        while round.join_next().await.is_some() {}
        // Let the bot end and free the warm-up calls' sessions.
        tokio::time::sleep(WARMUP_SETTLE).await;
    }
    let sample = || match bot_pid {
        Some(pid) => ProcessSample::of_pid(pid),
        None => ProcessSample::now(),
    };
    let before = sample();
    let metrics_before = scrape(config.bot_metrics.as_deref()).await;
    let mut tasks = tokio::task::JoinSet::new();
    // Calls are placed in two halves: the first ⌈N/2⌉, then — once they are all connected
    // and their media has flowed for a moment — the rest. RSS sampled between the two
    // gives the cost of each *added* call, free of what the bot grows once, on its first
    // calls (code paged in, thread pools, allocator arenas).
    let first_half = config.calls.div_ceil(2);
    let place = |tasks: &mut tokio::task::JoinSet<MediaCallOutcome>,
                 calls: std::ops::Range<usize>| {
        for i in calls {
            let ctx = ctx.clone();
            let spec = spec.clone();
            tasks.spawn(async move { run_call(&ctx, i, &spec).await });
        }
    };
    place(&mut tasks, 0..first_half);
    let mut status = tokio::time::interval(Duration::from_secs(2));
    status.tick().await;
    let (mut connected, mut hung_up, mut failed_early) = (0usize, 0usize, 0usize);
    let mut half_sample: Option<ProcessSample> = None;
    let mut second_half_at: Option<tokio::time::Instant> = None;
    let mut window_start: Option<ProcessSample> = None;
    let mut window_end: Option<ProcessSample> = None;
    let mut outcomes = Vec::with_capacity(config.calls);
    while outcomes.len() < config.calls {
        tokio::select! {
            () = async {
                match second_half_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                second_half_at = None;
                if hung_up == 0 {
                    half_sample = sample();
                }
                place(&mut tasks, first_half..config.calls);
            }
            Some(p) = rx.recv() => {
                match p.step {
                    Step::MediaConnected(_) => connected += 1,
                    Step::HungUp => {
                        if hung_up == 0 && window_start.is_some() {
                            window_end = sample();
                        }
                        hung_up += 1;
                    }
                    Step::Failed(_) => failed_early += 1,
                    _ => {}
                }
                if half_sample.is_none()
                    && second_half_at.is_none()
                    && first_half < config.calls
                    && connected + failed_early == first_half
                {
                    second_half_at = Some(tokio::time::Instant::now() + HALF_SETTLE);
                }
                if window_start.is_none() && connected + failed_early >= config.calls && hung_up == 0 {
                    window_start = sample();
                }
            }
            _ = status.tick() => say(format!(
                "[{:6.1} s] {connected}/{} connected, {hung_up} hung up, {} done{}",
                started.elapsed().as_secs_f64(),
                config.calls,
                outcomes.len(),
                stack.as_ref().map_or_else(String::new, |s| {
                    let shards = s.bot.host().shard_stats();
                    format!(
                        "; bot shards: {} deadline misses, tick p99 {:.2} ms",
                        shards.iter().map(|s| s.deadline_misses).sum::<u64>(),
                        merged_ticks(&shards).p99().as_secs_f64() * 1e3
                    )
                }),
            )),
            joined = tasks.join_next() => match joined {
                Some(Ok(o)) => outcomes.push(o),
                Some(Err(e)) => {
                    say(format!("a call task failed: {e}"));
                    outcomes.push(MediaCallOutcome::failed(&spec, e.to_string()));
                }
                None => break,
            },
        }
    }
    let emulator = Arc::clone(&ctx.emulator);
    drop(ctx);
    let mut bot_outcomes = Vec::new();
    if let Some(stack) = &stack {
        for o in &outcomes {
            if let Some(id) = &o.call_id {
                let id = CallId::from(id.as_str());
                if let Some(b) = stack.bot.media_ended(&id, Duration::from_secs(5)).await {
                    bot_outcomes.push(b);
                }
            }
        }
    }
    let shards = stack.as_ref().map(|s| s.bot.host().shard_stats());
    let remote = match (metrics_before, scrape(config.bot_metrics.as_deref()).await) {
        (Some(a), Some(b)) => Some(RemoteShards::between(&a, &b)),
        _ => None,
    };
    let mut report = report(
        config,
        bot_pid,
        &outcomes,
        &bot_outcomes,
        shards.as_deref(),
        Samples {
            before,
            half: half_sample.map(|h| (first_half, h)),
            window_start,
            window_end,
        },
        (load_start, load_average()),
        started,
    );
    if let (None, Some(remote)) = (&report.shard_tick, remote) {
        report.shard_tick = Some(remote.tick);
        report.shard_ticks = Some(remote.ticks);
        report.deadline_misses = Some(remote.deadline_misses);
        report.late_ticks = Some(remote.late_ticks);
        report.shard_figures_from = config.bot_metrics.clone();
    }
    match stack {
        Some(stack) => {
            drop(emulator);
            stack.shutdown().await;
        }
        None => {
            if let Ok(e) = Arc::try_unwrap(emulator) {
                e.shutdown().await;
            }
        }
    }
    Ok(report)
}

/// The process samples a run takes: before the first call, with the first half of the calls
/// connected (and how many that was), and the steady window's start and end.
struct Samples {
    before: Option<ProcessSample>,
    half: Option<(usize, ProcessSample)>,
    window_start: Option<ProcessSample>,
    window_end: Option<ProcessSample>,
}

/// The text of a bot's metrics endpoint, or `None` (said on stderr) when it cannot be read.
async fn scrape(url: Option<&str>) -> Option<String> {
    let url = url?;
    let got = async {
        let response = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?;
        response.text().await
    }
    .await;
    match got {
        Ok(text) => Some(text),
        Err(e) => {
            eprintln!("bot metrics {url}: {e}");
            None
        }
    }
}

/// A bot elsewhere's shard figures, from two readings of its metrics endpoint.
struct RemoteShards {
    ticks: u64,
    deadline_misses: u64,
    late_ticks: u64,
    tick: Percentiles,
}

impl RemoteShards {
    /// Counters: what grew between `before` and `after`. Tick quantiles: the largest of the
    /// shards' in `after` (a summary's quantiles cannot be merged or diffed).
    fn between(before: &str, after: &str) -> Self {
        use crate::adapters::metrics::samples;
        let total =
            |text: &str, name: &str| -> f64 { samples(text, name).iter().map(|(_, v)| v).sum() };
        let grew = |name: &str| (total(after, name) - total(before, name)).max(0.0) as u64;
        let quantile = |q: &str| {
            let wanted = format!("quantile=\"{q}\"");
            let v = samples(after, "mediabot_shard_tick_seconds")
                .into_iter()
                .filter(|(labels, _)| labels.contains(&wanted))
                .map(|(_, v)| v)
                .fold(f64::NAN, f64::max);
            (!v.is_nan()).then_some(v * 1e3)
        };
        let ticks = grew("mediabot_shard_ticks_total");
        Self {
            ticks,
            deadline_misses: grew("mediabot_shard_deadline_misses_total"),
            late_ticks: grew("mediabot_shard_late_ticks_total"),
            tick: Percentiles {
                count: usize::try_from(ticks).unwrap_or(usize::MAX),
                p50_ms: quantile("0.5"),
                p99_ms: quantile("0.99"),
                max_ms: quantile("1"),
            },
        }
    }
}

/// Media time given to the first half of the calls before the bot's RSS is sampled and the
/// second half is placed.
const HALF_SETTLE: Duration = Duration::from_secs(2);

/// Pause after the warm-up round, for the bot to free its calls.
const WARMUP_SETTLE: Duration = Duration::from_secs(3);

/// The socket address of an `https://host:port/…` URL with a literal IP host.
fn bot_addr(url: &str) -> Option<std::net::SocketAddr> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split('/').next()?;
    authority.parse().ok()
}

/// Waits until `addr` accepts a TCP connection, at most `within`, saying once that it waits.
async fn wait_for_listener(
    addr: std::net::SocketAddr,
    within: Duration,
    progress: Option<&mpsc::UnboundedSender<String>>,
    emulator: &str,
) {
    let until = Instant::now() + within;
    let mut said = false;
    while Instant::now() < until {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        if !said && let Some(tx) = progress {
            said = true;
            let _ = tx.send(format!(
                "waiting for the bot at {addr} (emulator at {emulator}: Graph {emulator}/v1.0)"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl MediaCallOutcome {
    fn failed(spec: &MediaCallSpec, why: String) -> Self {
        Self {
            label: spec.label.clone(),
            scenario: spec.scenario,
            call_id: None,
            decision: "none".into(),
            answer_latency: None,
            media: None,
            media_error: Some(why),
            record: None,
        }
    }
}

fn merged_ticks(shards: &[ShardStats]) -> Histogram {
    let mut h = Histogram::new();
    for s in shards {
        h.merge(&s.tick_cost);
    }
    h
}

fn hist_ms(h: &Histogram) -> Option<f64> {
    (!h.is_empty()).then(|| h.p99().as_secs_f64() * 1e3)
}

#[allow(clippy::too_many_arguments)] // One report from every source of the run.
fn report(
    config: &LoadConfig,
    bot_pid: Option<u32>,
    outcomes: &[MediaCallOutcome],
    bot: &[MediaOutcome],
    shards: Option<&[ShardStats]>,
    samples: Samples,
    load_average: (Option<f64>, Option<f64>),
    started: Instant,
) -> LoadReport {
    let Samples {
        before,
        half,
        window_start,
        window_end,
    } = samples;
    let n = config.calls;
    let answered = outcomes.iter().filter(|o| o.decision == "answer").count();
    let media: Vec<_> = outcomes.iter().filter_map(|o| o.media.as_ref()).collect();
    let failed = outcomes
        .iter()
        .filter(|o| o.media.is_none() || o.media_error.is_some())
        .count();
    let errors: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.media_error.clone())
        .take(5)
        .collect();
    let ticks = shards.map(merged_ticks);
    let merged = |pick: fn(&ShardStats) -> &Histogram| {
        shards.map(|shards| {
            let mut h = Histogram::new();
            for s in shards {
                h.merge(pick(s));
            }
            h
        })
    };
    let deadline_to_end = merged(|s| &s.deadline_to_end);
    let deadline_to_decoded = merged(|s| &s.deadline_to_decoded);
    let shard_tick = ticks.as_ref().map(|h| Percentiles {
        count: usize::try_from(h.count()).unwrap_or(usize::MAX),
        p50_ms: (!h.is_empty()).then(|| h.p50().as_secs_f64() * 1e3),
        p99_ms: hist_ms(h),
        max_ms: (!h.is_empty()).then(|| h.max().as_secs_f64() * 1e3),
    });
    let (mut recv, mut queue, mut wire) = (Histogram::new(), Histogram::new(), Histogram::new());
    let mut by_bot = 0;
    let mut bot_frames = 0;
    let mut bot_jitter = [0u64; 5];
    let mut bot_concealment = Vec::new();
    for s in bot.iter().filter_map(|b| b.last_stats.as_ref()) {
        recv.merge(&s.transport.recv_to_queue);
        queue.merge(&s.transport.queue_to_write);
        wire.merge(&s.transport.write_to_wire);
        by_bot += s.room.concealed_frames;
        bot_frames += s.room.ticks;
        bot_concealment.push(Concealment::of_bot_room(&s.room));
        let r = &s.room;
        for (sum, v) in bot_jitter.iter_mut().zip([
            r.jitter_lost,
            r.jitter_paused,
            r.jitter_inserted,
            r.jitter_dropped,
            r.jitter_late,
        ]) {
            *sum += v;
        }
    }
    let by_callers: u64 = media.iter().map(|m| m.concealed_frames()).sum();
    let caller_frames: u64 = media.iter().map(|m| m.bot.ticks).sum();
    let frames = bot_frames + caller_frames;
    let in_process = shards.is_some();
    let concealment_by_callers =
        Concealment::sum(media.iter().map(|m| Concealment::of_emulator_room(&m.bot)));
    let concealment_by_bot = in_process.then(|| Concealment::sum(bot_concealment));
    let (cpu, cpu_core, window, during) = match (window_start, window_end) {
        (Some(a), Some(b)) => {
            let one_core = b.cpu_percent_since(&a);
            (
                Some(one_core / cores() as f64),
                Some(one_core),
                Some(b.at.duration_since(a.at).as_secs_f64()),
                Some(b),
            )
        }
        _ => (None, None, None, None),
    };
    let rss_during = during.map(|d| d.rss_bytes);
    let per_call = |f: fn(&ProcessSample) -> u64| match (before, during) {
        (Some(b), Some(d)) if n > 0 => Some(f(&d).saturating_sub(f(&b)) as f64 / 1024.0 / n as f64),
        _ => None,
    };
    // Between the sample with the first half connected and the one with every call.
    let per_added_call = |f: fn(&ProcessSample) -> u64| match (&half, during) {
        (Some((first, h)), Some(d)) if n > *first => {
            Some(f(&d).saturating_sub(f(h)) as f64 / 1024.0 / (n - first) as f64)
        }
        _ => None,
    };
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    LoadReport {
        calls: n,
        seconds: config.hold.as_secs_f64(),
        warmup_seconds: config.warmup.as_secs_f64(),
        bot: config
            .bot_url
            .clone()
            .unwrap_or_else(|| "in-process".into()),
        measured: match (bot_pid, in_process) {
            (Some(pid), _) => format!("bot (pid {pid})"),
            (None, true) => "bot + emulator (this process)".into(),
            (None, false) => "emulator only (this process; --bot-pid measures the bot)".into(),
        },
        answered,
        media_connected: media.len(),
        failed,
        answer_latency: Percentiles::of(outcomes.iter().filter_map(|o| o.answer_latency)),
        media_connect: Percentiles::of(media.iter().map(|m| m.connect_time)),
        shard_tick,
        shard_figures_from: None,
        shard_ticks: shards.map(|s| s.iter().map(|s| s.ticks).sum()),
        deadline_misses: shards.map(|s| s.iter().map(|s| s.deadline_misses).sum()),
        late_ticks: shards.map(|s| s.iter().map(|s| s.late_ticks).sum()),
        concealed_frames: by_bot + by_callers,
        concealed_by_bot: in_process.then_some(by_bot),
        concealed_by_callers: by_callers,
        bot_jitter: in_process.then_some(bot_jitter),
        concealed_percent: if frames == 0 {
            0.0
        } else {
            (by_bot + by_callers) as f64 * 100.0 / frames as f64
        },
        concealment: Concealment::sum(
            concealment_by_bot
                .into_iter()
                .chain([concealment_by_callers]),
        ),
        concealment_by_bot,
        concealment_by_callers,
        cpu_percent: cpu,
        cpu_percent_of_one_core: cpu_core,
        cores: cores(),
        cpu_window_seconds: window,
        rss_per_call_kib: per_call(|s| s.rss_bytes),
        rss_anon_per_call_kib: per_call(|s| s.rss_anon_bytes),
        rss_per_added_call_kib: per_added_call(|s| s.rss_bytes),
        rss_anon_per_added_call_kib: per_added_call(|s| s.rss_anon_bytes),
        rss_half_mib: half.as_ref().map(|(_, h)| mib(h.rss_bytes)),
        rss_before_mib: before.map(|b| mib(b.rss_bytes)),
        rss_during_mib: rss_during.map(mib),
        host_latency_in_p99_ms: match (
            hist_ms(&recv),
            deadline_to_decoded.as_ref().and_then(hist_ms),
        ) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        },
        host_latency_out_p99_ms: match (hist_ms(&queue), hist_ms(&wire)) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        },
        recv_to_queue_p99_ms: hist_ms(&recv),
        deadline_to_end_p99_ms: deadline_to_end.as_ref().and_then(hist_ms),
        deadline_to_decoded_p99_ms: deadline_to_decoded.as_ref().and_then(hist_ms),
        queue_to_write_p99_ms: hist_ms(&queue),
        write_to_wire_p99_ms: hist_ms(&wire),
        load_average,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        errors,
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.2} ms"));
        let p = |p: &Percentiles| format!("p50 {} p99 {}", ms(p.p50_ms), ms(p.p99_ms));
        writeln!(
            f,
            "mediabot load — {} calls × {:.0} s against {} ({} cores, load average {:.1} → {:.1})",
            self.calls,
            self.seconds,
            self.bot,
            self.cores,
            self.load_average.0.unwrap_or(f64::NAN),
            self.load_average.1.unwrap_or(f64::NAN)
        )?;
        writeln!(
            f,
            "  answered {}/{}, media connected {}, failed {}",
            self.answered, self.calls, self.media_connected, self.failed
        )?;
        writeln!(f, "  answer latency      {}", p(&self.answer_latency))?;
        writeln!(f, "  media connect       {}", p(&self.media_connect))?;
        if let Some(t) = &self.shard_tick {
            writeln!(
                f,
                "  shard tick          {} max {} over {} ticks; deadline misses {}, late ticks {}{}",
                p(t),
                ms(t.max_ms),
                self.shard_ticks.unwrap_or(0),
                self.deadline_misses.unwrap_or(0),
                self.late_ticks.unwrap_or(0),
                self.shard_figures_from.as_deref().map_or_else(String::new, |url| format!(
                    " (from {url}: counts over this run, tick quantiles the largest shard's since the bot started)"
                )),
            )?;
        }
        writeln!(
            f,
            "  concealment         {}; bot side {}, callers' side {}",
            self.concealment,
            self.concealment_by_bot
                .map_or_else(|| "—".to_owned(), |c| c.to_string()),
            self.concealment_by_callers,
        )?;
        writeln!(
            f,
            "  concealed frames    {} of {} ({:.2} %; bot {} of {}, callers {} of {})",
            self.concealed_frames,
            self.concealment.frames,
            self.concealed_percent,
            self.concealed_by_bot
                .map_or_else(|| "—".to_owned(), |v| v.to_string()),
            self.concealment_by_bot
                .map_or_else(|| "—".to_owned(), |c| c.frames.to_string()),
            self.concealed_by_callers,
            self.concealment_by_callers.frames,
        )?;
        if let Some([missing, paused, inserted, dropped, late]) = self.bot_jitter {
            writeln!(
                f,
                "  bot jitter buffers  missing at playout {missing} (of which the callers' pauses {paused}, so lost {}), inserted {inserted} (delay growth), dropped {dropped} (delay shrink), late {late}",
                missing.saturating_sub(paused),
            )?;
        }
        writeln!(
            f,
            "  CPU                 {} of the machine ({} of one core) over {} s, {}",
            self.cpu_percent
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.1} %")),
            self.cpu_percent_of_one_core
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.1} %")),
            self.cpu_window_seconds
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.1}")),
            self.measured,
        )?;
        writeln!(
            f,
            "  RSS per call        {} (anonymous {}; RSS {} → {} MiB), {}",
            self.rss_per_call_kib
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.0} KiB")),
            self.rss_anon_per_call_kib
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.0} KiB")),
            self.rss_before_mib
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.1}")),
            self.rss_during_mib
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.1}")),
            self.measured,
        )?;
        writeln!(
            f,
            "  RSS per added call  {} (anonymous {}; RSS {} MiB with the first {} calls → {} MiB with {})",
            self.rss_per_added_call_kib
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.0} KiB")),
            self.rss_anon_per_added_call_kib
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.0} KiB")),
            self.rss_half_mib
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.1}")),
            self.calls.div_ceil(2),
            self.rss_during_mib
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.1}")),
            self.calls,
        )?;
        writeln!(
            f,
            "  host-added latency  bot side, jitter-buffer wait excluded: in p99 ≤ {} (recv→queue {} + tick deadline→decoded {}; deadline→tick end {}), out p99 ≤ {} (frame→write {} + write→wire {})",
            ms(self.host_latency_in_p99_ms),
            ms(self.recv_to_queue_p99_ms),
            ms(self.deadline_to_decoded_p99_ms),
            ms(self.deadline_to_end_p99_ms),
            ms(self.host_latency_out_p99_ms),
            ms(self.queue_to_write_p99_ms),
            ms(self.write_to_wire_p99_ms)
        )?;
        for e in &self.errors {
            writeln!(f, "  error: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bot elsewhere's figures: counters as grown over the run, tick quantiles as the
    /// largest shard's.
    #[test]
    fn remote_shard_figures_come_from_two_metric_readings() {
        let reading = |ticks: [u64; 2], misses: [u64; 2], p99: [f64; 2]| {
            let mut t = String::from("# TYPE mediabot_shard_ticks_total counter\n");
            for (i, (n, m)) in ticks.iter().zip(misses).enumerate() {
                t += &format!("mediabot_shard_ticks_total{{shard=\"{i}\"}} {n}\n");
                t += &format!("mediabot_shard_deadline_misses_total{{shard=\"{i}\"}} {m}\n");
                t += &format!(
                    "mediabot_shard_tick_seconds{{shard=\"{i}\",quantile=\"0.99\"}} {}\n",
                    p99[i]
                );
            }
            t
        };
        let before = reading([100, 200], [1, 0], [0.001, 0.002]);
        let after = reading([600, 650], [3, 0], [0.004, 0.0035]);
        let r = RemoteShards::between(&before, &after);
        assert_eq!((r.ticks, r.deadline_misses, r.late_ticks), (950, 2, 0));
        assert_eq!(r.tick.p99_ms, Some(4.0));
        assert_eq!(r.tick.p50_ms, None, "no such quantile in the text");
    }

    #[test]
    fn bot_addr_takes_literal_ip_urls_only() {
        assert_eq!(
            bot_addr("https://127.0.0.1:9443/api/calling"),
            Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9443)))
        );
        assert_eq!(bot_addr("https://[::1]:9443/x"), "[::1]:9443".parse().ok());
        assert_eq!(bot_addr("https://bot.example.com/api/calling"), None);
        assert_eq!(bot_addr("ftp://127.0.0.1:21/"), None);
    }
}
