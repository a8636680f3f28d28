//! `mediabot load --calls N --seconds S --json`, run as a user runs it (the binary, an
//! in-process bot, real WebRTC and Opus over loopback): every call is answered and connects,
//! and the one JSON object carries each figure the issue asks for — answer latency, media
//! connect, shard tick p50/p99/max, deadline misses, concealment, CPU %, RSS per call (and
//! per added call), host-added latency both ways. Values are checked for sanity, not for
//! speed (timing goals live in benches and the README).

use std::process::Command;

use serde_json::Value;

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {report:#}"))
}

#[test]
fn load_answers_every_call_and_reports_every_figure_as_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_mediabot"))
        .args(["load", "--calls", "4", "--seconds", "5", "--json"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("mediabot runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "load failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The JSON object is the last line of stdout (progress goes to stderr).
    let json = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON object in: {stdout}"));
    let report: Value = serde_json::from_str(json).expect("one JSON object");

    assert_eq!(report["calls"], 4);
    assert_eq!(report["answered"], 4, "{report:#}");
    assert_eq!(report["mediaConnected"], 4, "{report:#}");
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_eq!(report["measured"], "bot + emulator (this process)");

    for key in ["answerLatency", "mediaConnect"] {
        assert_eq!(report[key]["count"], 4, "{key}: {report:#}");
        let (p50, p99) = (number(&report[key], "p50Ms"), number(&report[key], "p99Ms"));
        assert!(0.0 < p50 && p50 <= p99, "{key}: {report:#}");
    }
    // Four calls of 5 s on 20 ms ticks: hundreds of ticks, percentiles in order.
    assert!(number(&report, "shardTicks") > 200.0, "{report:#}");
    let tick = &report["shardTick"];
    let (p50, p99, max) = (
        number(tick, "p50Ms"),
        number(tick, "p99Ms"),
        number(tick, "maxMs"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{report:#}");
    assert!(report["deadlineMisses"].is_u64(), "{report:#}");

    // Concealment is a share of frames; on loopback the bot's rooms received almost every
    // frame the callers sent.
    let concealed = number(&report, "concealedPercent");
    assert!((0.0..100.0).contains(&concealed), "{report:#}");

    // CPU and memory of this process over the steady window (every call connected).
    let cpu = number(&report, "cpuPercent");
    assert!(cpu > 0.0 && cpu <= 100.0, "{report:#}");
    assert!(number(&report, "cpuWindowSeconds") > 0.5, "{report:#}");
    let (before, during) = (
        number(&report, "rssBeforeMib"),
        number(&report, "rssDuringMib"),
    );
    assert!(before > 0.0 && during > before, "{report:#}");
    assert!(number(&report, "rssPerCallKib") > 0.0, "{report:#}");
    // The second half of the calls was placed after the first had connected: the RSS
    // they added is there, and it is at most the whole growth.
    let half = number(&report, "rssHalfMib");
    assert!(before <= half && half <= during, "{report:#}");
    let added = number(&report, "rssPerAddedCallKib");
    assert!(added >= 0.0, "{report:#}");

    // Host-added latency, the bot's side only, both ways.
    for key in [
        "hostLatencyInP99Ms",
        "hostLatencyOutP99Ms",
        "recvToQueueP99Ms",
        "deadlineToDecodedP99Ms",
        "queueToWriteP99Ms",
        "writeToWireP99Ms",
    ] {
        assert!(number(&report, key) > 0.0, "{key}: {report:#}");
    }
}
