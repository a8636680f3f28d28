//! A sound device as a room member, tested without a sound card.
//!
//! ALSA reads its configuration once per process, from `$HOME/.asoundrc`. So every test here
//! re-runs this test binary as a child process (`<exe> <test> --exact`) with its own `HOME`
//! holding an `.asoundrc` that defines fake devices, and the child runs the test body; the
//! parent checks the child passed and actually ran it. Tests never touch one another's ALSA
//! state and nothing calls `set_var`.
//!
//! Two kinds of fake device (`../shared/reference/webrtc-rs.md`, last section):
//! - ALSA's `file` plugin over the `null` device: unpaced, no daemon; used for the bad-input
//!   tests.
//! - The `file` plugin over a user-mode PulseAudio null sink: paced at real time; playback is
//!   tapped into a raw file, capture reads a raw file (`infile`). Used for the end-to-end and
//!   vanishing-device tests. Needs `pulseaudio`, `pulseaudio-utils` and `libasound2-plugins`
//!   (`.ci/run` installs them); without them those tests say SKIPPED and why.
//!
//! The end-to-end test also arms a counting allocator after the streams warmed up and checks
//! that the data callbacks (marked through `set_callback_hook`) allocated nothing.
#![cfg(feature = "device")]

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mediabot::adapters::device::{
    DeviceError, DeviceOptions, open_device_member, set_callback_hook,
};
use mediabot::media::analysis::{align, correlation, overlap};
use mediabot::media::endpoint::AppAudio;
use mediabot::media::frame::{AudioFrame, FRAME_SAMPLES};
use mediabot::media::member::Member;
use mediabot::media::room::{MemberId, Room, RoomConfig, RoomId};

// ---- counting allocator: counts what the device member's data callbacks allocate ----

#[global_allocator]
static GLOBAL: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;

/// Installed with `set_callback_hook`: counts the callback's thread while it runs.
fn in_callback(entering: bool) {
    counting_alloc::count_this_thread(entering);
}

// ---- child-process isolation ----

const CHILD: &str = "MEDIABOT_DEVICE_TEST_CHILD";
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `body` in a child process whose `HOME` holds `asoundrc` (with `@HOME@` replaced).
fn isolated(test: &str, asoundrc: &str, body: impl FnOnce(&Path)) {
    if std::env::var_os(CHILD).is_some() {
        let home = PathBuf::from(std::env::var_os("HOME").expect("the parent sets HOME"));
        body(&home);
        return;
    }
    // One child at a time: two real-time PulseAudio runs side by side on a small machine
    // starve each other.
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let home = std::env::temp_dir().join(format!("mediabot-device-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(home.join("run")).unwrap();
    std::fs::write(
        home.join(".asoundrc"),
        asoundrc.replace("@HOME@", home.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env(
            "PULSE_SERVER",
            format!("unix:{}", home.join("run/native").display()),
        )
        .env_remove("ALSA_CONFIG_PATH")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "--- child {test} ---\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&home);
    assert!(out.status.success(), "child test {test} failed");
    assert!(
        stdout.contains("1 passed"),
        "child did not run {test} (filtered out?)"
    );
}

const FILE_DEVICES: &str = r#"
pcm.file_out {
    type file
    slave.pcm "null"
    file "@HOME@/out.raw"
    format "raw"
    hint { show on description "test playback into a raw file" }
}
pcm.file_in {
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "@HOME@/in.raw"
    format "raw"
    hint { show on description "test capture from a raw file" }
}
"#;

const PULSE_DEVICES: &str = r#"
pcm.bot_out {
    type file
    slave.pcm "bot_out_pulse"
    file "@HOME@/played.raw"
    format "raw"
    hint { show on description "PulseAudio null sink, tapped into played.raw" }
}
pcm.bot_out_pulse {
    type pulse
    device "botsink"
}
pcm.bot_in {
    type file
    slave.pcm "bot_in_pulse"
    file "/dev/null"
    infile "@HOME@/spoken.raw"
    format "raw"
    hint { show on description "PulseAudio null source, data from spoken.raw" }
}
pcm.bot_in_pulse {
    type pulse
    device "capsink.monitor"
}
"#;

/// A user-mode PulseAudio with two null sinks, started in the child; killed on drop.
struct Pulse;

impl Pulse {
    /// `None` (after printing why) when the tools are not installed.
    fn start() -> Option<Self> {
        let plugin = [
            "/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so",
            "/usr/lib/aarch64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so",
            "/usr/lib/alsa-lib/libasound_module_pcm_pulse.so",
            "/usr/lib64/alsa-lib/libasound_module_pcm_pulse.so",
        ]
        .iter()
        .any(|p| Path::new(p).exists());
        let tools = ["pulseaudio", "pactl"].iter().all(|t| {
            Command::new(t)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        if !plugin || !tools {
            println!(
                "SKIPPED: needs pulseaudio, pactl and ALSA's pulse plugin \
                 (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
            );
            return None;
        }
        let socket = std::env::var("PULSE_SERVER").unwrap();
        let socket = socket.trim_start_matches("unix:");
        let status = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=yes",
                "--exit-idle-time=-1",
                "--use-pid-file=yes",
                "--log-target=stderr",
                "--log-level=error",
                "-L",
                &format!("module-native-protocol-unix auth-anonymous=1 socket={socket}"),
                "-L",
                "module-null-sink sink_name=botsink rate=48000 channels=1",
                "-L",
                "module-null-sink sink_name=capsink rate=48000 channels=1",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "pulseaudio did not start");
        for _ in 0..100 {
            if Command::new("pactl")
                .arg("info")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Some(Self);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("pulseaudio did not answer");
    }

    fn unload_sinks(&self) {
        let ok = Command::new("pactl")
            .args(["unload-module", "module-null-sink"])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        // Stops the daemon of this child's own XDG_RUNTIME_DIR (the one we started).
        let _ = Command::new("pulseaudio").arg("--kill").status();
    }
}

// ---- helpers ----

fn wav(name: &str) -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("media")
        .join(name);
    let mut r = hound::WavReader::open(path).unwrap();
    r.samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_default()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Best correlation of `test` against `reference` for lags in 0..max_lag: coarse on 8×
/// decimated signals, then refined at full rate.
fn lagged_correlation(reference: &[f32], test: &[f32], max_lag: usize) -> (isize, f32) {
    let dec = |x: &[f32]| -> Vec<f32> { x.chunks(8).map(|c| c.iter().sum::<f32>()).collect() };
    let (r8, t8) = (dec(reference), dec(test));
    let coarse = align(&r8, &t8, max_lag / 8).lag * 8;
    let mut best = (coarse, -1.0f32);
    for lag in coarse - 16..=coarse + 16 {
        let (r, t) = overlap(reference, test, lag);
        let c = correlation(r, t);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

fn room_with_caller() -> (Room, AppAudio) {
    let mut room = Room::new(RoomId(1), RoomConfig::default()).unwrap();
    let (caller, audio) = Member::app_endpoint(MemberId(2), 16).unwrap();
    room.add_member(caller).unwrap();
    (room, audio)
}

fn pulse_options() -> DeviceOptions {
    DeviceOptions {
        input_device: Some("bot_in".into()),
        output_device: Some("bot_out".into()),
        sample_rate: Some(48_000),
        channels: Some(1),
        ..DeviceOptions::default()
    }
}

/// Waits (up to 10 s) until both streams are calling back: a PulseAudio stream can take a
/// second to start on a loaded machine.
fn wait_running(handle: &mediabot::adapters::device::DeviceHandle) {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let s = handle.stats();
        if s.capture_callbacks > 5 && s.playback_callbacks > 5 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the device streams did not start: {:?}", handle.stats());
}

// ---- tests ----

/// The caller's speech reaches the speakers (the playback file) and the microphone (the
/// capture file) reaches the caller, through a real-time paced device; the data callbacks
/// allocate nothing once running.
#[test]
fn speech_flows_both_ways_through_a_paced_device() {
    isolated(
        "speech_flows_both_ways_through_a_paced_device",
        PULSE_DEVICES,
        |home| {
            set_callback_hook(in_callback);
            let Some(_pulse) = Pulse::start() else { return };
            let caller = wav("caller-48k.wav");
            let spoken = wav("caller2-48k.wav");
            let mut raw: Vec<u8> = spoken.iter().flat_map(|s| s.to_le_bytes()).collect();
            raw.resize(raw.len() + 4 * 48_000 * 3, 0); // silence after the speech
            std::fs::write(home.join("spoken.raw"), raw).unwrap();

            let (mut room, mut audio) = room_with_caller();
            let (member, handle) = open_device_member(MemberId(1), None, &pulse_options()).unwrap();
            println!("opened {handle:?}");
            assert_eq!(
                handle.input().unwrap().sample_format,
                cpal::SampleFormat::F32,
                "spoken.raw is written as f32"
            );
            wait_running(&handle);
            room.add_member(member).unwrap();

            let ticks = caller.len().div_ceil(FRAME_SAMPLES) + 50;
            let mut heard = Vec::with_capacity(ticks * FRAME_SAMPLES);
            let mut frame = AudioFrame::silence();
            let start = Instant::now();
            let mut armed_at = None;
            for t in 0..ticks {
                std::thread::sleep(
                    (start + Duration::from_millis(20 * t as u64))
                        .saturating_duration_since(Instant::now()),
                );
                frame.clear();
                if let Some(chunk) = caller.chunks(FRAME_SAMPLES).nth(t) {
                    frame.samples[..chunk.len()].copy_from_slice(chunk);
                }
                audio.send(&frame);
                room.tick(Instant::now());
                while let Some(f) = audio.recv() {
                    heard.extend_from_slice(&f.samples);
                }
                if t == 50 {
                    handle.reset_peaks();
                    armed_at = Some((handle.stats(), counting_alloc::shared()));
                }
            }
            let (armed_at, counted_at) = armed_at.unwrap();
            let allocations = counting_alloc::shared().since(counted_at).total();
            let stats = handle.stats();
            println!("stats {stats:?}; last error {:?}", handle.last_error());
            println!(
                "callback allocations while armed: {}; steady state (after 1 s): capture \
                 queue peak {} frames, playback reserve peak {} samples = {:.1} ms, standing \
                 (1 s minimum) peak {} samples = {:.1} ms",
                allocations,
                stats.capture_queued_max,
                stats.playback_reserve_max,
                stats.playback_reserve_max as f64 / 48.0,
                stats.playback_standing_max,
                stats.playback_standing_max as f64 / 48.0
            );
            assert!(stats.capture_callbacks > armed_at.capture_callbacks + 50);
            assert!(stats.playback_callbacks > armed_at.playback_callbacks + 50);
            assert_eq!(allocations, 0, "a callback allocated");
            drop(handle);

            let played = read_f32(&home.join("played.raw"));
            println!(
                "played {} samples ({} ticks of audio), heard {} samples",
                played.len(),
                played.len() / FRAME_SAMPLES,
                heard.len()
            );
            // One-second excerpts of the source, found in what was played / heard.
            for (name, source, got) in [("played", &caller, &played), ("heard", &spoken, &heard)] {
                let mut best = (0, 0.0f32);
                for start in [48_000usize, 96_000, 144_000] {
                    let excerpt = &source[start..start + 48_000];
                    let window =
                        &got[start.min(got.len())..(start + 48_000 + 96_000).min(got.len())];
                    let (lag, c) = lagged_correlation(excerpt, window, 96_000);
                    println!("{name}: excerpt at {start}: lag {lag}, correlation {c:.3}");
                    if c > best.1 {
                        best = (lag, c);
                    }
                }
                assert!(best.1 > 0.9, "{name}: best correlation {}", best.1);
            }
        },
    );
}

/// A device that vanishes mid-call (the sound server's sinks are unloaded): the error is
/// counted and reported, and the room goes on delivering the call's audio.
#[test]
fn a_vanishing_device_leaves_the_call_running() {
    isolated(
        "a_vanishing_device_leaves_the_call_running",
        PULSE_DEVICES,
        |home| {
            let Some(pulse) = Pulse::start() else { return };
            std::fs::write(home.join("spoken.raw"), vec![0u8; 4 * 48_000 * 10]).unwrap();
            let (mut room, mut audio) = room_with_caller();
            let (member, handle) = open_device_member(MemberId(1), None, &pulse_options()).unwrap();
            wait_running(&handle);
            room.add_member(member).unwrap();
            let mut tone = AudioFrame::silence();
            for (i, s) in tone.samples.iter_mut().enumerate() {
                *s = 0.3 * (i as f32 * 0.07).sin();
            }
            let start = Instant::now();
            let mut delivered = 0;
            let mut before_unload = handle.stats();
            for t in 0..200u64 {
                std::thread::sleep(
                    (start + Duration::from_millis(20 * t))
                        .saturating_duration_since(Instant::now()),
                );
                if t == 100 {
                    before_unload = handle.stats();
                    pulse.unload_sinks();
                }
                audio.send(&tone);
                room.tick(Instant::now());
                while audio.recv().is_some() {
                    delivered += 1;
                }
            }
            // Give the backend a moment to report.
            std::thread::sleep(Duration::from_millis(300));
            let stats = handle.stats();
            println!(
                "stats {stats:?}; last error {:?}; room {:?}",
                handle.last_error(),
                room.stats()
            );
            assert_eq!(room.stats().ticks, 200);
            assert_eq!(delivered, 200, "the caller kept getting frames");
            assert!(stats.stream_errors > 0, "{stats:?}");
            assert!(handle.is_lost(), "{stats:?}");
            assert!(
                before_unload.capture_frames > 0 && before_unload.playback_callbacks > 0,
                "the device was carrying audio before it vanished: {before_unload:?}"
            );
        },
    );
}

/// A named device that does not exist: the error names it and lists the devices that do.
#[test]
fn a_missing_named_device_lists_what_exists() {
    isolated(
        "a_missing_named_device_lists_what_exists",
        FILE_DEVICES,
        |_| {
            let e =
                open_device_member(MemberId(1), Some("no_such_card"), &DeviceOptions::default())
                    .unwrap_err();
            let DeviceError::NotFound {
                name, available, ..
            } = &e
            else {
                panic!("{e}")
            };
            assert_eq!(name, "no_such_card");
            assert!(available.iter().any(|d| d == "file_in"), "{e}");
            assert!(available.iter().any(|d| d == "file_out"), "{e}");
            let text = e.to_string();
            assert!(
                text.contains("no_such_card") && text.contains("file_out"),
                "{text}"
            );
            println!("{text}");
        },
    );
}

/// A format the device cannot do: the error lists what it supports.
#[test]
fn an_unsupported_format_lists_what_the_device_supports() {
    isolated(
        "an_unsupported_format_lists_what_the_device_supports",
        FILE_DEVICES,
        |home| {
            std::fs::write(home.join("in.raw"), vec![0u8; 4 * 4800]).unwrap();
            let opts = DeviceOptions {
                input_device: Some("file_in".into()),
                output_device: Some("file_out".into()),
                channels: Some(1000),
                ..DeviceOptions::default()
            };
            let e = open_device_member(MemberId(1), None, &opts).unwrap_err();
            let DeviceError::Unsupported {
                device,
                requested,
                supported,
                ..
            } = &e
            else {
                panic!("{e}")
            };
            assert_eq!(device, "file_in");
            assert!(requested.contains("1000 channels"), "{e}");
            assert!(!supported.is_empty(), "{e}");
            assert!(supported.iter().any(|s| s.contains(" ch ")), "{e}");
            println!("{e}");
        },
    );
}

/// The unpaced file devices open at 48 kHz mono f32 with 10 ms callbacks, run, and write
/// what the room played.
#[test]
fn file_devices_open_and_record_playback() {
    isolated(
        "file_devices_open_and_record_playback",
        FILE_DEVICES,
        |home| {
            std::fs::write(home.join("in.raw"), vec![0u8; 48_000 * 4]).unwrap();
            let opts = DeviceOptions {
                input_device: Some("file_in".into()),
                output_device: Some("file_out".into()),
                ..DeviceOptions::default()
            };
            let (member, handle) = open_device_member(MemberId(1), None, &opts).unwrap();
            let (mut room, _audio) = room_with_caller();
            room.add_member(member).unwrap();
            for _ in 0..20 {
                room.tick(Instant::now());
                std::thread::sleep(Duration::from_millis(5));
            }
            let stats = handle.stats();
            println!("{handle:?}");
            assert!(
                stats.capture_callbacks > 0 && stats.playback_callbacks > 0,
                "{stats:?}"
            );
            assert_eq!(handle.output().unwrap().sample_rate, 48_000);
            assert_eq!(handle.output().unwrap().channels, 1);
            assert_eq!(handle.output().unwrap().buffer_frames, Some(480));
            assert_eq!(stats.playback_callback_max, 480);
            drop(handle);
            assert!(std::fs::metadata(home.join("out.raw")).unwrap().len() > 0);
        },
    );
}
