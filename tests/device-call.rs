//! `--device` through the real call path: the emulator rings the media bot, the emulator's
//! media processor joins over WebRTC, and the bot's local participant — a sound device, set
//! up by `local_participant::sound_device` exactly as `mediabot demo/serve --device` do —
//! joins the answered call's room. No sound card: the devices are ALSA's `file` plugin over a
//! user-mode PulseAudio null sink (see `device_support/`), each test in a child process.
//!
//! Proves: the caller's speech reaches the device's playback (correlation with what the
//! caller sent), what the device captures reaches the caller (correlation with the capture
//! file), the device moves to the next call when its call ends, a device that vanishes
//! mid-call leaves the call running, and `demo/serve --device <missing>` fail before any
//! call, listing the devices that exist.
#![cfg(feature = "device")]

mod device_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use device_support::{FILE_DEVICES, PULSE_DEVICES, Pulse, excerpts_found, isolated, read_f32, wav};
use mediabot::adapters::device::{DeviceError, DeviceOptions, open_device_member};
use mediabot::adapters::local_participant::sound_device;
use mediabot::adapters::media_bot::MediaBotConfig;
use mediabot::adapters::media_host::{BehaviourConfig, EndReason};
use mediabot::call::CallId;
use mediabot::emulator::media::MediaProcessorConfig;
use mediabot::emulator::media_call::{CallContext, MediaCallOutcome, MediaCallSpec, run_call};
use mediabot::emulator::media_demo::{Stack, speaker, start_stack};
use mediabot::emulator::scenario::Scenario;
use mediabot::media::room::MemberId;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn call(speech: &str, lead_ms: u64, hold: Duration) -> MediaCallSpec {
    MediaCallSpec {
        label: speech.to_owned(),
        scenario: Scenario::P2p,
        participants: vec![speaker("caller", speech, Duration::from_millis(lead_ms))],
        hold,
    }
}

/// Writes `samples` (then `pad_s` seconds of silence) as the capture device's raw f32 input.
fn write_capture(home: &Path, samples: &[f32], pad_s: usize) {
    let mut raw: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    raw.resize(raw.len() + 4 * 48_000 * pad_s, 0);
    std::fs::write(home.join("spoken.raw"), raw).unwrap();
}

/// The bot and emulator with the test sound device `name` as the bot's local participant,
/// set up by `local_participant::sound_device` as `demo/serve --device` do; `configure`
/// adjusts the bot.
async fn stack_with_device(name: &str, configure: impl FnOnce(&mut MediaBotConfig)) -> Stack {
    let local = sound_device(Some(name)).unwrap();
    println!("local participant: {}", local.describe());
    start_stack(
        |c| {
            configure(c);
            c.media.local = Some(local);
        },
        MediaProcessorConfig::default(),
    )
    .await
    .unwrap()
}

/// Places call `index` in the background.
fn spawn_call(
    ctx: &CallContext,
    index: usize,
    spec: MediaCallSpec,
) -> tokio::task::JoinHandle<MediaCallOutcome> {
    let ctx = ctx.clone();
    tokio::spawn(async move { run_call(&ctx, index, &spec).await })
}

/// Waits (up to 20 s) until the bot's local participant sits in a call.
async fn wait_for_device_seat(stack: &Stack) {
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while stack.bot.local_call().is_none() && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn outcome_of(
    stack: &Stack,
    out: &MediaCallOutcome,
) -> mediabot::adapters::media_bot::MediaOutcome {
    let id = CallId::from(out.call_id.as_deref().expect("the call was rung"));
    stack
        .bot
        .media_ended(&id, Duration::from_secs(10))
        .await
        .expect("the bot saw the call's media")
}

/// No greeting, no echo, no recording: the caller hears only the device, the device only the
/// caller.
fn quiet_bot(c: &mut MediaBotConfig) {
    c.behaviour = BehaviourConfig {
        greeting: None,
        echo_delay: None,
        record_dir: None,
    };
}

/// A caller's speech reaches the device's playback and what the device captures reaches the
/// caller, through the emulator, WebRTC and the bot's call room.
#[test]
fn caller_and_device_hear_each_other_through_a_call() {
    isolated(
        "caller_and_device_hear_each_other_through_a_call",
        PULSE_DEVICES,
        |home| {
            let Some(_pulse) = Pulse::start() else { return };
            let spoken = wav("caller2-48k.wav");
            write_capture(home, &spoken, 20);
            // The bot's log (the device's counters when it leaves the call) on stdout.
            let _ = tracing_subscriber::fmt()
                .with_env_filter("mediabot=info")
                .with_test_writer()
                .try_init();
            runtime().block_on(async {
                // "BOT" names the duplex test device `bot` (case is ignored).
                let stack = stack_with_device("BOT", quiet_bot).await;
                let ctx: CallContext = stack.context(None);
                let out = run_call(
                    &ctx,
                    0,
                    &call("caller-48k.wav", 500, Duration::from_secs(12)),
                )
                .await;
                let bot = outcome_of(&stack, &out).await;
                drop(ctx);
                stack.shutdown().await;
                println!(
                    "bot outcome: local {:?}, error {:?}",
                    bot.local, bot.local_error
                );
                assert_eq!(out.decision, "answer");
                assert!(
                    bot.local.as_deref().is_some_and(|l| l.contains("bot")),
                    "the device joined: {bot:?}"
                );
                assert_eq!(bot.local_error, None);
                let media = out.media.expect("the media connected");
                let caller = &media.participants[0];
                let played = read_f32(&home.join("played.raw"));
                println!(
                    "caller sent {} samples, heard {}; the device played {}",
                    caller.sent.len(),
                    caller.heard.len(),
                    played.len()
                );
                // Excerpts of each source, found whole in what the other side got (Opus one
                // way; unrelated speech scores up to ~0.7 at random lags).
                let (to_device, of) =
                    excerpts_found("device played", &caller.sent[24_000..], &played, 0.8);
                let (to_caller, _) = excerpts_found("caller heard", &spoken, &caller.heard, 0.8);
                assert!(
                    2 * to_device >= of,
                    "caller → device: {to_device} of {of} found"
                );
                assert!(
                    2 * to_caller >= of,
                    "device → caller: {to_caller} of {of} found"
                );
                // Control: the caller's own speech is not in what it heard (no echo here), so
                // the measure tells speech apart.
                let (control, _) =
                    excerpts_found("control", &caller.sent[24_000..], &caller.heard, 0.8);
                assert!(
                    4 * control < of,
                    "the caller 'heard itself': the measure cannot tell"
                );
            });
        },
    );
}

/// Two overlapping calls: the device joins the first to connect, and moves to the second
/// when the first ends.
#[test]
fn the_device_moves_to_the_next_call_when_its_call_ends() {
    isolated(
        "the_device_moves_to_the_next_call_when_its_call_ends",
        PULSE_DEVICES,
        |home| {
            let Some(_pulse) = Pulse::start() else { return };
            write_capture(home, &[], 30);
            runtime().block_on(async {
                let stack = stack_with_device("bot", quiet_bot).await;
                let ctx = stack.context(None);
                let first = spawn_call(&ctx, 0, call("caller-48k.wav", 0, Duration::from_secs(6)));
                // The second call connects once the first has the device.
                wait_for_device_seat(&stack).await;
                let holder = stack
                    .bot
                    .local_call()
                    .expect("the device joined the first call");
                let second = run_call(
                    &ctx,
                    1,
                    &call("caller2-48k.wav", 0, Duration::from_secs(12)),
                )
                .await;
                let first = first.await.unwrap();
                assert_eq!(first.call_id.as_deref(), Some(holder.as_str()));
                let a = outcome_of(&stack, &first).await;
                let b = outcome_of(&stack, &second).await;
                drop(ctx);
                stack.shutdown().await;
                println!(
                    "first {:?} / {:?}; second {:?} / {:?}",
                    a.local, a.local_error, b.local, b.local_error
                );
                assert!(a.local.is_some(), "the first call had the device: {a:?}");
                assert!(
                    b.local.is_some(),
                    "the device moved to the second call: {b:?}"
                );
                assert_eq!((a.local_error, b.local_error), (None, None));
            });
        },
    );
}

/// The sound server's sinks vanish mid-call: the call goes on (the caller keeps hearing its
/// echo, the caller hangs up at the end, not the media), and the bot reports the device lost.
#[test]
fn a_device_that_vanishes_mid_call_leaves_the_call_running() {
    isolated(
        "a_device_that_vanishes_mid_call_leaves_the_call_running",
        PULSE_DEVICES,
        |home| {
            let Some(pulse) = Pulse::start() else { return };
            write_capture(home, &[], 30);
            runtime().block_on(async {
                let stack = stack_with_device("bot", |c| {
                    c.behaviour.greeting = None;
                    c.behaviour.record_dir = None;
                })
                .await;
                let ctx = stack.context(None);
                let running =
                    spawn_call(&ctx, 0, call("caller-48k.wav", 0, Duration::from_secs(12)));
                wait_for_device_seat(&stack).await;
                assert!(stack.bot.local_call().is_some(), "the device joined");
                tokio::time::sleep(Duration::from_secs(2)).await;
                pulse.unload_sinks();
                let out = running.await.unwrap();
                let bot = outcome_of(&stack, &out).await;
                drop(ctx);
                stack.shutdown().await;
                println!(
                    "bot outcome: {:?} / {:?}; media end {:?}",
                    bot.local, bot.local_error, bot.ended
                );
                assert_eq!(out.media_error, None, "the media went on to the end");
                // Ended by the caller hanging up (the call's end or the caller's DELETE, whichever
                // reached the bot first), not by a media failure.
                assert!(
                    matches!(bot.ended, Some(EndReason::CallEnded | EndReason::Deleted)),
                    "{:?}",
                    bot.ended
                );
                assert!(bot.local.is_some());
                assert!(
                    bot.local_error
                        .as_deref()
                        .is_some_and(|e| e.contains("failed")),
                    "the bot reports the device lost: {bot:?}"
                );
                let media = out.media.expect("the media connected");
                let caller = &media.participants[0];
                println!(
                    "caller sent {} samples, heard {}; transport {:?}; bot room {:?}",
                    caller.sent.len(),
                    caller.heard.len(),
                    media.transport,
                    bot.last_stats.as_ref().map(|s| s.room)
                );
                // The caller's speech from 4 s on (after the device vanished, 2 s after it
                // joined; `heard` is on `sent`'s timeline) comes back as the bot's echo: Opus both ways, so a looser bound
                // than for one pass (unrelated speech scores up to ~0.7, at random lags).
                let (echoed, of) = excerpts_found(
                    "echo after",
                    &caller.sent[4 * 48_000..],
                    &caller.heard[4 * 48_000..],
                    0.5,
                );
                assert!(
                    2 * echoed >= of,
                    "the caller kept hearing its echo: {echoed} of {of}"
                );
            });
        },
    );
}

/// No usable default device (the default points at a card that does not exist): the error
/// says so and lists the devices that exist.
#[test]
fn no_default_device_lists_what_exists() {
    let rc = format!(
        "{FILE_DEVICES}\npcm.!default {{ type hw card 99 }}\nctl.!default {{ type hw card 99 }}\n"
    );
    isolated("no_default_device_lists_what_exists", &rc, |_| {
        let e = open_device_member(MemberId(1), None, &DeviceOptions::default()).unwrap_err();
        println!("{e}");
        let DeviceError::NoDevice { available, .. } = &e else {
            panic!("{e}")
        };
        assert!(available.iter().any(|d| d == "file_out"), "{e}");
        assert!(e.to_string().contains("file_in"), "{e}");
        let local = sound_device(None).unwrap_err();
        assert!(local.to_string().contains("file_out"), "{local}");
    });
}

/// `mediabot demo --device <missing>` and `serve --device <missing>` fail at once, before
/// any call, with the devices that exist.
#[test]
fn a_missing_device_fails_demo_and_serve_before_any_call() {
    isolated(
        "a_missing_device_fails_demo_and_serve_before_any_call",
        FILE_DEVICES,
        |home| {
            let exe = env!("CARGO_BIN_EXE_mediabot");
            let demo = Command::new(exe)
                .args(["demo", "--device", "nosuchdevice", "--seconds", "1"])
                .current_dir(home)
                .output()
                .unwrap();
            let serve = Command::new(exe)
                .args([
                    "serve",
                    "--app-id",
                    "app",
                    "--app-secret",
                    "secret",
                    "--tenant",
                    "tenant",
                    "--listen",
                    "127.0.0.1:0",
                    "--media-listen",
                    "127.0.0.1:0",
                    "--device",
                    "nosuchdevice",
                ])
                .current_dir(home)
                .output()
                .unwrap();
            for (what, out) in [("demo", demo), ("serve", serve)] {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let stderr = String::from_utf8_lossy(&out.stderr);
                println!("{what}: {}\nstdout: {stdout}\nstderr: {stderr}", out.status);
                assert!(!out.status.success(), "{what} must fail");
                assert!(stderr.contains("nosuchdevice"), "{what}: {stderr}");
                assert!(
                    stderr.contains("file_out"),
                    "{what} lists devices: {stderr}"
                );
                assert!(
                    !stderr.contains("emulator https"),
                    "{what} started calls: {stderr}"
                );
                assert!(
                    !stdout.contains("serving"),
                    "{what} started serving: {stdout}"
                );
            }
            assert!(!home.join("recordings").exists(), "no call was recorded");
        },
    );
}
