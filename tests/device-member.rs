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
//! The isolation and the fake devices are in `device_support/` (shared with
//! `tests/device-call.rs`). The end-to-end test also reads a counting allocator after the
//! streams warmed up and checks that the data callbacks (marked through `set_callback_hook`)
//! allocated nothing.
#![cfg(feature = "device")]

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
mod device_support;

use std::time::{Duration, Instant};

use device_support::{FILE_DEVICES, PULSE_DEVICES, Pulse, excerpts_found, isolated, read_f32, wav};

use mediabot::adapters::device::{
    DeviceError, DeviceOptions, open_device_member, set_callback_hook,
};
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
            // One-second excerpts of the source, found whole in what was played / heard.
            for (name, source, got) in [("played", &caller, &played), ("heard", &spoken, &heard)] {
                let (found, of) = excerpts_found(name, source, got, 0.9);
                assert!(2 * found >= of, "{name}: {found} of {of} excerpts found");
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
