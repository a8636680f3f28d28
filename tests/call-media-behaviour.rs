//! The default bot behaviour on a real negotiated call (loopback HTTPS + WebRTC): the caller
//! hears itself back after the echo delay, and the call is recorded — the caller's packets
//! losslessly in Ogg Opus with one packet per tick, the mix in a WAV, the counts in a sidecar.

mod media_host_support;

use std::time::Duration;

use media_host_support::*;
use mediabot::adapters::media_host::{CallBehaviour, EndReason, SessionEvent};
use mediabot::graph::CallId;
use mediabot::media::analysis::align;
use mediabot::media::codec::{CodecBackend, OpusDecoder};
use mediabot::media::frame::{AudioFrame, FRAME_SAMPLES};
use mediabot::media::ogg_opus::OggOpusFile;
use mediabot::media::packet::RtpPacket;
use reqwest::StatusCode;

/// Decodes packets onto a timeline indexed by frame (RTP timestamp / 960 from the first
/// packet); frames without a packet are silence.
fn timeline(packets: &[(u32, Vec<u8>)]) -> Vec<f32> {
    let Some(&(ts0, _)) = packets.first() else {
        return Vec::new();
    };
    let mut dec = OpusDecoder::new(CodecBackend::OpusRs).expect("decoder");
    let mut out = Vec::new();
    let mut frame = AudioFrame::silence();
    for (ts, payload) in packets {
        let index = (ts.wrapping_sub(ts0) / 960) as usize;
        if index * FRAME_SAMPLES < out.len() {
            continue; // duplicate or reordered: ignore
        }
        out.resize(index * FRAME_SAMPLES, 0.0);
        if payload.len() > 1 && dec.decode(payload, &mut frame).is_ok() {
            out.extend_from_slice(&frame.samples);
        } else {
            out.extend_from_slice(&[0.0; FRAME_SAMPLES]);
        }
    }
    out
}

/// The sent speech, looped like the sender loops it, for `samples` samples.
fn reference(samples: usize) -> Vec<f32> {
    let frames = speech_frames();
    frames
        .iter()
        .cycle()
        .flat_map(|f| f.samples)
        .take(samples)
        .collect()
}

/// 48 kHz → 8 kHz by averaging 6 samples (enough for a correlation of speech).
fn to_8k(x: &[f32]) -> Vec<f32> {
    x.chunks_exact(6)
        .map(|c| c.iter().sum::<f32>() / 6.0)
        .collect()
}

/// Best normalized correlation of `got` against the sent speech, within ±0.5 s.
fn speech_correlation(got: &[f32]) -> (f32, f32) {
    let got = to_8k(got);
    let reference = to_8k(&reference(got.len() * 6));
    let a = align(&reference, &got, 4_000);
    (a.correlation, a.lag as f32 / 8.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hears_itself_after_the_delay_and_the_call_is_recorded() {
    let mut bot = bot(Duration::from_secs(60)).await;
    let dir = std::env::temp_dir().join(format!("mediabot-rec-{}", uuid::Uuid::new_v4()));
    let call = CallId::from("echo/call 1");
    let behaviour = CallBehaviour {
        greeting: None,
        echo_delay: Some(Duration::from_millis(200)),
        record_dir: Some(dir.clone()),
    };
    let blob = bot.host.create_session(&call, behaviour).expect("session");
    let p = peer().await;
    let r = offer(&bot, &blob, blob.token.as_str(), &p.offer).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut s = stream(p, &r.text().await.expect("answer")).await;

    // Three seconds of what the caller hears.
    let mut heard: Vec<RtpPacket> = Vec::new();
    until("3 s of echo", || {
        while let Ok(p) = s.ends.inbound.pop() {
            heard.push(p);
        }
        heard.len() >= 150
    })
    .await;
    let packets: Vec<(u32, Vec<u8>)> = heard
        .iter()
        .map(|p| (p.meta.timestamp, p.payload.as_slice().to_vec()))
        .collect();
    let (echo_corr, echo_lag_ms) = speech_correlation(&timeline(&packets));
    println!(
        "echo: correlation {echo_corr:.3} at {echo_lag_ms:+.1} ms from the first echoed frame"
    );
    assert!(
        echo_corr >= 0.7,
        "the caller hears its own speech back: {echo_corr}"
    );

    assert!(bot.host.end_session(&call).await);
    let e = next_event(&mut bot, |e| matches!(e.kind, SessionEvent::Ended { .. })).await;
    let SessionEvent::Ended {
        reason: EndReason::CallEnded,
        recording: Some(files),
    } = e.kind
    else {
        panic!("expected the end of a recorded call, got {:?}", e.kind);
    };
    assert_eq!(files.dir, dir.join("echo_call_1"));
    assert_eq!(files.caller_opus, files.dir.join("leg-1.opus"));
    assert!(files.complete, "no tick lost: {files:?}");

    // Sidecar: every tick accounted for, in every stream.
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files.sidecar).expect("sidecar")).expect("json");
    let ticks = sidecar["ticks"].as_u64().expect("ticks");
    assert_eq!(ticks, files.ticks);
    assert_eq!(sidecar["callId"], "echo/call 1");
    let leg = &sidecar["streams"][0]["counts"];
    let count = |k: &str| leg[k].as_u64().expect(k);
    assert!(count("received") >= 150, "{leg}");
    assert_eq!(count("frames"), ticks);
    assert_eq!(
        ticks,
        count("received")
            + count("invalid")
            + count("fec")
            + count("concealed")
            + count("silent")
            + count("absent")
            + count("gapFilled")
            + count("unexpected")
    );

    // Ogg Opus: valid (CRCs, headers, granules), one packet per tick; it holds the caller.
    let ogg = OggOpusFile::parse(&std::fs::read(&files.caller_opus).expect("opus file"))
        .expect("valid Ogg Opus");
    assert_eq!(ogg.packets.len() as u64, ticks);
    let recorded: Vec<(u32, Vec<u8>)> = ogg
        .packets
        .iter()
        .enumerate()
        .skip_while(|(_, p)| p.data.len() <= 3)
        .map(|(i, p)| ((i * 960) as u32, p.data.clone()))
        .collect();
    let (rec_corr, _) = speech_correlation(&timeline(&recorded));
    println!("recording: caller correlation {rec_corr:.3}");
    assert!(
        rec_corr >= 0.8,
        "the recording holds the caller's speech: {rec_corr}"
    );

    // Mix WAV: one frame per tick, not silent.
    let mut wav = hound::WavReader::open(&files.mix_wav).expect("wav");
    assert_eq!(wav.spec().sample_rate, 48_000);
    assert_eq!(u64::from(wav.duration()), ticks * FRAME_SAMPLES as u64);
    assert!(
        wav.samples::<i16>()
            .any(|x| x.expect("sample").abs() > 1000)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
