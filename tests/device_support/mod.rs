//! Sound-card-less test devices shared by the `device` feature's tests: each test body runs
//! in a child process with its own `HOME/.asoundrc` (ALSA reads its configuration once per
//! process), over ALSA's `file` plugin or a user-mode PulseAudio null sink.
#![allow(dead_code)] // Each test binary uses a different part.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mediabot::media::analysis::correlation;

const CHILD: &str = "MEDIABOT_DEVICE_TEST_CHILD";
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `body` in a child process whose `HOME` holds `asoundrc` (with `@HOME@` replaced).
pub fn isolated(test: &str, asoundrc: &str, body: impl FnOnce(&Path)) {
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

pub const FILE_DEVICES: &str = r#"
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

pub const PULSE_DEVICES: &str = r#"
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
pcm.bot {
    type asym
    playback.pcm "bot_out"
    capture.pcm "bot_in"
    hint { show on description "bot_out for playback, bot_in for capture" }
}
"#;

/// A user-mode PulseAudio with two null sinks, started in the child; killed on drop.
pub struct Pulse;

impl Pulse {
    /// `None` (after printing why) when the tools are not installed.
    pub fn start() -> Option<Self> {
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
                // Root (CI) may raise the daemon's priority: a starved null sink stalls the
                // stream on a loaded machine.
                "--high-priority=yes",
                "--realtime=yes",
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

    pub fn unload_sinks(&self) {
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

pub fn wav(name: &str) -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("media")
        .join(name);
    let mut r = hound::WavReader::open(path).unwrap();
    r.samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_default()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Where `excerpt` best matches inside `got` (whole overlap only: every sample of the
/// excerpt is compared, so a few stray samples cannot score high): the offset in `got` and
/// the normalized correlation there. Coarse on 16× decimated signals, then refined at full
/// rate around the best coarse offset.
pub fn find_excerpt(excerpt: &[f32], got: &[f32]) -> (usize, f32) {
    const D: usize = 16;
    if got.len() < excerpt.len() || excerpt.is_empty() {
        return (0, 0.0);
    }
    let dec = |x: &[f32]| -> Vec<f32> { x.chunks(D).map(|c| c.iter().sum::<f32>()).collect() };
    let (e, g) = (dec(excerpt), dec(got));
    let n = excerpt.len() / D;
    let mut coarse = (0, -1.0f32);
    for p in 0..=g.len().saturating_sub(n) {
        let c = correlation(&e[..n], &g[p..p + n]);
        if c > coarse.1 {
            coarse = (p * D, c);
        }
    }
    let last = got.len() - excerpt.len();
    let mut best = (coarse.0, -1.0f32);
    for p in coarse.0.saturating_sub(2 * D)..=(coarse.0 + 2 * D).min(last) {
        let c = correlation(excerpt, &got[p..p + excerpt.len()]);
        if c > best.1 {
            best = (p, c);
        }
    }
    best
}

/// Excerpts of `source` (a quarter of a second each, every quarter second from 1 s to 4 s)
/// looked for in `got` between 3 s earlier and 3 s later than in `source` (a device joins a
/// call about a second after its caller starts sending, so its recording starts that much
/// later and the lag is about −1 s; how much varies run to run): how many are found
/// with a correlation above `min` at about one lag (within 200 ms of the median lag of those
/// above `min`), of how many (each printed). Short excerpts keep a glitch
/// of a loaded sound server (a stall, a trimmed frame) from spoiling more than one or two.
pub fn excerpts_found(name: &str, source: &[f32], got: &[f32], min: f32) -> (usize, usize) {
    const LEN: usize = 12_000;
    let starts: Vec<usize> = (4..16).map(|q| q * LEN).collect();
    let mut matches = Vec::new();
    let mut line = String::new();
    for &start in &starts {
        let Some(excerpt) = source.get(start..start + LEN) else {
            continue;
        };
        let lo = start.saturating_sub(3 * 48_000).min(got.len());
        let hi = (start + 3 * 48_000).min(got.len());
        let (at, c) = find_excerpt(excerpt, &got[lo..hi]);
        let lag = (lo + at) as isize - start as isize;
        line.push_str(&format!(" {c:.2}@{lag:+}"));
        if c > min {
            matches.push(lag);
        }
    }
    // A real signal is found at (nearly) one lag — a stalled sound server can shift it by a
    // trimmed frame or a few — while chance matches land anywhere in the 6 s searched. Count
    // the matches within 200 ms of their median lag.
    matches.sort_unstable();
    let median = matches.get(matches.len() / 2).copied().unwrap_or(0);
    let found = matches
        .iter()
        .filter(|&&lag| lag.abs_diff(median) <= 9_600)
        .count();
    println!(
        "{name}: {found} of {} found at lag {median:+} ±200 ms (correlation@lag):{line}",
        starts.len()
    );
    (found, starts.len())
}
