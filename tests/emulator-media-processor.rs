//! The emulator's media processor: emulated participants streaming speech into one room on a
//! shard pool, the bot's media as a call leg, and what each participant hears back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mediabot::adapters::shard::{ShardConfig, ShardPool};
use mediabot::emulator::media::{
    BotLegQueues, CallRoom, CallRoomConfig, MediaPool, ParticipantMedia, load_wav_48k, round_trip,
};
use mediabot::media::analysis::{align, correlation, overlap};
use mediabot::media::codec::{CodecBackend, OpusDecoder};
use mediabot::media::frame::AudioFrame;
use mediabot::media::leg::LegPort;
use mediabot::media::packet::RtpPacket;
use mediabot::media::room::RoomId;

fn pool() -> Arc<MediaPool> {
    Arc::new(
        ShardPool::start(ShardConfig {
            shards: 1,
            rt_priority: None,
            ..ShardConfig::default()
        })
        .expect("shard pool"),
    )
}

/// A bot leg that sends every packet the room gives it straight back (an echo bot with no
/// network), keeping what it received.
fn loopback_bot(
    ssrc: u32,
) -> (
    BotLegQueues,
    tokio::task::JoinHandle<Vec<RtpPacket>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (mut port, input, output) = LegPort::new(64);
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stop_rx => break,
            }
            while let Some(mut p) = port.pop() {
                got.push(p.clone());
                p.arrival = Instant::now();
                port.push(p);
            }
        }
        got
    });
    (
        BotLegQueues {
            input,
            output,
            ssrc,
        },
        task,
        stop_tx,
    )
}

fn decode(packets: &[RtpPacket]) -> Vec<f32> {
    let mut dec = OpusDecoder::new(CodecBackend::OpusRs).expect("decoder");
    let mut out = Vec::new();
    let mut frame = AudioFrame::silence();
    let mut last_ts: Option<u32> = None;
    for p in packets {
        // Ticks in which the room sent nothing leave gaps in the timestamps: fill with silence.
        if let Some(ts) = last_ts {
            let gap = p.meta.timestamp.wrapping_sub(ts) / 960;
            for _ in 1..gap.min(500) {
                out.extend_from_slice(&[0.0; 960]);
            }
        }
        last_ts = Some(p.meta.timestamp);
        dec.decode(p.payload.as_slice(), &mut frame)
            .expect("our own packets decode");
        out.extend_from_slice(&frame.samples);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_hears_its_own_speech_through_an_echoing_bot_leg() {
    let pool = pool();
    let (bot, echo, stop_echo) = loopback_bot(0xb07_0001);
    let room = CallRoom::start(
        Arc::clone(&pool),
        RoomId(1),
        &[ParticipantMedia::caller()],
        bot,
        &CallRoomConfig::default(),
        None,
    )
    .expect("room starts");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let report = room.stop().await;
    let _ = stop_echo.send(());
    let _ = echo.await;
    pool.shutdown().expect("shards stop");

    let caller = &report.participants[0];
    assert_eq!(caller.name, "caller");
    assert_eq!(caller.underruns, 0);
    assert!(
        caller.frames_heard >= 150,
        "{} frames heard",
        caller.frames_heard
    );
    let rt = round_trip(
        &caller.sent,
        &caller.heard,
        Duration::ZERO,
        Duration::from_secs(1),
    )
    .expect("speech sent");
    eprintln!("loopback round trip: {rt:?}, bot playout {:?}", report.bot);
    // Opus once each way (room → bot is the shared encode, bot → room is decoded again).
    assert!(rt.correlation >= 0.8, "{rt:?}");
    // The bot's packets were played. The room sends a listener nothing while nobody speaks,
    // so the echo has gaps in the caller's pauses, which the jitter buffer plays as
    // concealment (DTX): a few ticks, not a steady loss.
    assert!(report.bot.packets > 150, "{:?}", report.bot);
    assert!(
        report.bot.concealed * 10 <= report.bot.ticks,
        "{:?}",
        report.bot
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_leg_receives_the_mix_of_two_participants() {
    let pool = pool();
    let (bot, echo, stop_echo) = loopback_bot(0xb07_0002);
    let room = CallRoom::start(
        Arc::clone(&pool),
        RoomId(2),
        &[ParticipantMedia::caller(), ParticipantMedia::second()],
        bot,
        &CallRoomConfig::default(),
        None,
    )
    .expect("room starts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = room.stop().await;
    let _ = stop_echo.send(());
    let to_bot = decode(&echo.await.expect("echo task"));
    pool.shutdown().expect("shards stop");

    let a = &report.participants[0].sent;
    let b = &report.participants[1].sent;
    let n = to_bot.len().min(a.len()).min(b.len()).min(48_000 * 2);
    let sum: Vec<f32> = a[..n].iter().zip(&b[..n]).map(|(x, y)| x + y).collect();
    // Align on the sum (the mix), then judge each source at that delay.
    let al = align(&sum[..n], &to_bot[..n], 4_800);
    let (r, t) = overlap(&sum[..n], &to_bot[..n], al.lag);
    let c_sum = correlation(r, t);
    let (ra, ta) = overlap(&a[..n], &to_bot[..n], al.lag);
    let (rb, tb) = overlap(&b[..n], &to_bot[..n], al.lag);
    let (c_a, c_b) = (correlation(ra, ta), correlation(rb, tb));
    eprintln!(
        "bot hears the mix: lag {} samples, corr sum {c_sum:.3}, a {c_a:.3}, b {c_b:.3}",
        al.lag
    );
    assert!(c_sum >= 0.8, "{c_sum}");
    assert!(c_a >= 0.3 && c_b >= 0.3, "{c_a} {c_b}");
    // Each participant hears the other one directly (mix-minus) plus the bot.
    let heard_by_a = &report.participants[0].heard;
    let m = heard_by_a.len().min(b.len()).min(48_000 * 2);
    assert!(correlation(&b[..m], &heard_by_a[..m]) > 0.3);
}

#[test]
fn speech_files_are_the_documented_ones() {
    let caller = load_wav_48k(&ParticipantMedia::caller().speech_wav).expect("caller");
    let second = load_wav_48k(&ParticipantMedia::second().speech_wav).expect("second");
    assert!(caller.len() > 48_000 * 9 && second.len() > 48_000 * 6);
}
