//! The default bot behaviour end to end over loopback — real HTTPS signaling through the
//! emulator, the bot's answer carrying a real blob, WHIP-style negotiation, real WebRTC and
//! real Opus both ways: the caller hears the greeting first, then its own speech back after
//! the echo delay; the bot's recording holds the caller's audio.

use std::time::Duration;

use mediabot::adapters::media_bot::MediaOutcome;
use mediabot::call::CallId;
use mediabot::emulator::concealment::Concealment;
use mediabot::emulator::media::round_trip::first_audio_in;
use mediabot::emulator::media::{
    MediaProcessorConfig, first_heard, load_wav_48k, media_dir, round_trip,
};
use mediabot::emulator::media_call::{MediaCallSpec, run_call};
use mediabot::emulator::media_demo::{greeting_duration, speaker, start_stack};
use mediabot::emulator::record::EndReason;
use mediabot::emulator::scenario::Scenario;
use mediabot::media::codec::{CodecBackend, OpusDecoder};
use mediabot::media::frame::AudioFrame;
use mediabot::media::ogg_opus::OggOpusFile;

/// Loss a room may report on loopback, as one frame in this many: none is lost, but a packet
/// delayed past its playout time by a busy machine counts as lost (1 in 20 leaves a margin
/// for a loaded CI machine). A room that took pauses for loss fails the `sender_pause_frames
/// > 0` check instead.
const LOSS_ON_LOOPBACK: u64 = 20;

/// Decodes an Ogg Opus file's packets, one 20 ms frame each (TOC-only packets conceal,
/// silence packets decode to silence, as a player would).
fn decode_ogg(path: &std::path::Path) -> Vec<f32> {
    let ogg = OggOpusFile::parse(&std::fs::read(path).expect("recording file"))
        .expect("a valid Ogg Opus file");
    let mut dec = OpusDecoder::new(CodecBackend::OpusRs).expect("decoder");
    let mut frame = AudioFrame::silence();
    let mut out = Vec::with_capacity(ogg.packets.len() * 960);
    for p in &ogg.packets {
        if p.data.len() <= 1 || dec.decode(&p.data, &mut frame).is_err() {
            let _ = dec.conceal(&mut frame);
        }
        out.extend_from_slice(&frame.samples);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hears_the_greeting_then_itself_and_the_call_is_recorded() {
    let dir = std::env::temp_dir().join(format!("mediabot-e2e-{}", uuid::Uuid::new_v4()));
    let record_dir = dir.clone();
    let stack = start_stack(
        move |c| c.behaviour.record_dir = Some(record_dir),
        MediaProcessorConfig::default(),
    )
    .await
    .expect("emulator, bot and media processor start");
    let lead = greeting_duration() + Duration::from_millis(400);
    let spec = MediaCallSpec {
        label: "echo".into(),
        scenario: Scenario::P2p,
        participants: vec![speaker("caller", "caller-48k.wav", lead)],
        // The greeting, then about 4 s of the caller's speech.
        hold: lead + Duration::from_secs(4),
    };
    let outcome = run_call(&stack.context(None), 0, &spec).await;
    assert_eq!(outcome.decision, "answer", "{:?}", outcome.media_error);
    assert_eq!(outcome.media_error, None);
    assert_eq!(outcome.ended_by(), Some(EndReason::CallerHungUp));
    let media = outcome.media.as_ref().expect("media joined");
    let caller = &media.participants[0];
    assert!(
        media.packets_in() > 200,
        "bot → caller packets: {}",
        media.packets_in()
    );

    // The greeting is the first thing heard.
    let greeting = load_wav_48k(&media_dir().join("greeting-16k.wav")).expect("greeting");
    let first = first_heard(&caller.heard, &greeting).expect("something was heard");
    println!(
        "greeting: onset {:.0} ms, aligned at {:.0} ms, correlation {:.3}",
        first.onset_ms, first.prompt_at_ms, first.correlation
    );
    assert!(
        first.is_prompt(0.5),
        "the greeting is heard first: {first:?}"
    );

    // The caller's speech comes back after the echo delay.
    let rt = round_trip(
        &caller.sent,
        &caller.heard,
        Duration::ZERO,
        Duration::from_millis(1500),
    )
    .expect("the caller spoke");
    println!(
        "echo: round trip {:.1} ms, correlation {:.3}",
        rt.delay_ms, rt.correlation
    );
    assert!(
        rt.correlation >= 0.8,
        "the caller hears itself back: {rt:?}"
    );
    assert!(
        rt.delay_ms >= 200.0,
        "no sooner than the bot's 200 ms echo delay: {rt:?}"
    );

    // The bot ended the media with the call and finished the recording.
    let call = CallId::from(outcome.call_id.as_deref().expect("call id"));
    let bot: MediaOutcome = stack
        .bot
        .media_ended(&call, Duration::from_secs(10))
        .await
        .expect("the bot saw the call's media");
    assert!(bot.negotiated && bot.connected);
    // The session's final figures are kept whichever came first: the call's end or the
    // caller's DELETE of the media session.
    let stats = bot.last_stats.as_ref().expect("final media statistics");
    assert!(stats.transport.packets_in > 100, "{stats:?}");
    // The emulator's room sends nothing while its caller is silent (before it speaks, between
    // words): the bot's jitter buffer tells those pauses (no sequence gap) from losses.
    let room = &stats.room;
    assert!(
        room.jitter_paused > 0 && room.jitter_paused <= room.jitter_lost,
        "{room:?}"
    );
    // Concealment by cause, both directions: on loopback nothing is lost, so what the rooms
    // conceal is the other side's pauses (and the odd frame inserted to grow the delay).
    let by_bot = Concealment::of_bot_room(room);
    let by_caller = Concealment::of_emulator_room(&media.bot);
    println!("concealment: bot side {by_bot}; caller's side {by_caller}");
    for (side, c, paused, paused_concealed, lost) in [
        (
            "bot",
            by_bot,
            room.jitter_paused,
            room.jitter_paused_concealed,
            room.jitter_lost,
        ),
        (
            "caller",
            by_caller,
            media.bot.jitter_paused,
            media.bot.jitter_paused_concealed,
            media.bot.jitter_lost,
        ),
    ] {
        assert!(
            paused_concealed <= paused && paused <= lost,
            "{side}: {paused_concealed} ≤ {paused} ≤ {lost}"
        );
        assert_eq!(
            c.loss_frames + c.sender_pause_frames + c.delay_growth_frames + c.call_end_frames,
            c.concealed_frames,
            "{side}: {c:?}"
        );
        // Both sides pause (the caller between words, the bot while it has nothing to
        // echo), and those concealed frames are found to be pauses; the run at the call's
        // end, if any, is its own part; what is left as loss is a few frames at most.
        assert!(c.sender_pause_frames > 0, "{side}: {c:?}");
        assert!(
            c.loss_frames * LOSS_ON_LOOPBACK <= c.frames,
            "{side}: {c:?}"
        );
    }
    let recording = bot.recording.as_ref().expect("recorded");
    assert!(recording.integrity.complete, "{:?}", recording.integrity);
    assert_eq!(recording.dir, dir.join(call.as_str()));

    // The recording holds the caller's audio: the decoded leg file against the source.
    let leg = recording
        .streams
        .iter()
        .find(|s| s.path.extension().is_some_and(|e| e == "opus"))
        .expect("the caller's leg file");
    let recorded = decode_ogg(&leg.path);
    assert_eq!(recorded.len() as u64, recording.ticks * 960);
    let source = load_wav_48k(&media_dir().join("caller-48k.wav")).expect("source");
    let s0 = first_audio_in(&source).expect("source speech");
    let r0 = first_audio_in(&recorded).expect("the recording holds audio");
    let back = r0.saturating_sub(9_600);
    let heard_len = recorded.len() - back;
    let sent = &source[s0..(s0 + heard_len).min(source.len())];
    let rec = round_trip(
        sent,
        &recorded[back..],
        Duration::ZERO,
        Duration::from_millis(400),
    )
    .expect("comparable");
    println!(
        "recording: caller correlation {:.3} (lag {:.1} ms in the search window)",
        rec.correlation, rec.delay_ms
    );
    assert!(
        rec.correlation >= 0.8,
        "the recording holds the caller's speech: {rec:?}"
    );
    assert!(recording.sidecar.is_file());

    stack.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
