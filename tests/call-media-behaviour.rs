//! The default bot behaviour on a real negotiated call (loopback HTTPS + WebRTC): the caller
//! hears itself back after the echo delay, and the call is recorded — the caller's packets
//! losslessly in Ogg Opus with one packet per tick, and the mix in a WAV of the same length.

mod media_host_support;

use std::time::Duration;

use media_host_support::*;
use mediabot::adapters::media_host::{CallBehaviour, EndReason, SessionEvent};
use mediabot::graph::CallId;
use mediabot::media::analysis::correlation;
use mediabot::media::codec::{CodecBackend, OpusDecoder};
use mediabot::media::frame::{AudioFrame, FRAME_SAMPLES};
use mediabot::media::ogg_opus::{OggOpusFile, PLC_PACKET, SILENCE_PACKET};
use mediabot::media::packet::RtpPacket;
use mediabot::media::recorder::RecordStream;
use mediabot::media::room::MemberId;
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

/// Median over 0.5 s windows of `got` (those with speech) of the best normalized correlation
/// with the sent speech within ±0.5 s of the same position. Windowed, so a jitter buffer that
/// shifts the timeline by a frame now and then (a loaded machine) does not spoil the measure.
fn speech_correlation(got: &[f32]) -> f32 {
    let got = to_8k(got);
    let reference = to_8k(&reference(got.len() * 6 + 48_000));
    let (n, max_lag) = (4_000usize, 4_000isize);
    let mut scores: Vec<f32> = got
        .chunks_exact(n)
        .enumerate()
        .filter(|(_, w)| w.iter().map(|x| x * x).sum::<f32>() / n as f32 > 1e-5)
        .map(|(k, w)| {
            let at = (k * n) as isize;
            (-max_lag..=max_lag)
                .filter(|lag| at + lag >= 0)
                .map(|lag| {
                    let from = (at + lag) as usize;
                    correlation(&reference[from..from + n], w)
                })
                .fold(0.0f32, f32::max)
        })
        .collect();
    assert!(
        scores.len() >= 3,
        "too little speech to measure: {} windows",
        scores.len()
    );
    scores.sort_by(f32::total_cmp);
    scores[scores.len() / 2]
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
    let echo_corr = speech_correlation(&timeline(&packets));
    println!("echo: median windowed correlation with the sent speech {echo_corr:.3}");
    assert!(
        echo_corr >= 0.8,
        "the caller hears its own speech back: {echo_corr}"
    );

    assert!(bot.host.end_session(&call).await);
    let e = next_event(&mut bot, |e| matches!(e.kind, SessionEvent::Ended { .. })).await;
    let SessionEvent::Ended {
        reason: EndReason::CallEnded,
        recording: Some(rec),
        ..
    } = e.kind
    else {
        panic!("expected the end of a recorded call, got {:?}", e.kind);
    };
    assert_eq!(rec.dir, dir.join("echo_call_1"));
    assert!(rec.integrity.exact, "{}", rec.integrity.verdict);
    let [leg, mix] = &rec.streams[..] else {
        panic!("expected the caller leg and the mix: {:?}", rec.streams);
    };
    assert_eq!(leg.stream, RecordStream::Leg(MemberId(1)));
    assert_eq!(mix.stream, RecordStream::Mix);
    assert_eq!(
        (leg.counts.frames, mix.counts.frames),
        (rec.ticks, rec.ticks)
    );
    assert!(leg.counts.received >= 150, "{:?}", leg.counts);

    // Ogg Opus: one packet per tick; the received ones are, byte for byte, packets the caller
    // sent, in the order it sent them (the sender loops over the speech).
    let ogg = OggOpusFile::parse(&std::fs::read(&leg.path).expect("opus file")).expect("ogg");
    assert_eq!(ogg.packets.len() as u64, rec.ticks);
    let sent = speech();
    let mut next = 0usize;
    let mut audio = 0u64;
    let fillers = [&PLC_PACKET[..], &SILENCE_PACKET[..]];
    for packet in ogg
        .packets
        .iter()
        .filter(|p| !fillers.contains(&p.data.as_slice()))
    {
        let found = (0..sent.len())
            .map(|k| (next + k) % sent.len())
            .find(|&i| sent[i].as_slice() == packet.data.as_slice());
        let Some(i) = found else {
            panic!("recorded packet {audio} is not a packet the caller sent");
        };
        next = (i + 1) % sent.len();
        audio += 1;
    }
    assert_eq!(audio, leg.counts.received);

    // Mix WAV: one frame per tick, not silent.
    let mut wav = hound::WavReader::open(&mix.path).expect("wav");
    assert_eq!(wav.spec().sample_rate, 48_000);
    assert_eq!(u64::from(wav.duration()), rec.ticks * FRAME_SAMPLES as u64);
    assert!(
        wav.samples::<i16>()
            .any(|x| x.expect("sample").abs() > 1000)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
