//! Shared glue for the WebRTC transport tests: connect an offerer and an answerer on
//! loopback, each with its own egress (as two shards would have), and wait for events.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use mediabot::adapters::webrtc::{
    Egress, EgressSignal, LegEnds, LegQueues, MediaEvent, MediaSession, MediaTransport,
    MediaTransportConfig,
};
use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusEncoder};
use mediabot::media::frame::AudioFrame;
use mediabot::media::packet::{OpusPacket, RtpMeta, RtpPacket};

/// One end of a call: its session, the shard's queue ends and the shard's egress signal.
pub struct Side {
    pub session: MediaSession,
    pub ends: LegEnds,
    pub signal: EgressSignal,
    pub ssrc: u32,
}

pub const OFFERER_SSRC: u32 = 0x0ffe_0001;
pub const ANSWERER_SSRC: u32 = 0x0a45_0002;

pub fn leg(ssrc: u32) -> (LegQueues, LegEnds, EgressSignal) {
    let (signal, handle) = Egress::spawn().expect("egress");
    let (leg, ends) = LegQueues::new(32, ssrc, handle);
    (leg, ends, signal)
}

/// Offerer and answerer, negotiated (not necessarily connected yet), plus the answer SDP.
pub async fn negotiate(cfg: MediaTransportConfig) -> (Side, Side, String) {
    let transport = MediaTransport::new(cfg);
    let (o_leg, o_ends, o_sig) = leg(OFFERER_SSRC);
    let (a_leg, a_ends, a_sig) = leg(ANSWERER_SSRC);
    let (offer, pending) = transport.create_offer(o_leg).await.expect("offer");
    let (answer, a_session) = transport.accept_offer(&offer, a_leg).await.expect("answer");
    let o_session = pending.complete(&answer).await.expect("complete");
    (
        Side {
            session: o_session,
            ends: o_ends,
            signal: o_sig,
            ssrc: OFFERER_SSRC,
        },
        Side {
            session: a_session,
            ends: a_ends,
            signal: a_sig,
            ssrc: ANSWERER_SSRC,
        },
        answer,
    )
}

/// Negotiated and connected on both sides.
pub async fn connect(cfg: MediaTransportConfig) -> (Side, Side, String) {
    let (mut o, mut a, answer) = negotiate(cfg).await;
    assert_eq!(
        next_event(&mut o.ends, Duration::from_secs(5)).await,
        Some(MediaEvent::Connected)
    );
    assert_eq!(
        next_event(&mut a.ends, Duration::from_secs(5)).await,
        Some(MediaEvent::Connected)
    );
    (o, a, answer)
}

pub async fn next_event(ends: &mut LegEnds, within: Duration) -> Option<MediaEvent> {
    tokio::time::timeout(within, ends.events.recv())
        .await
        .ok()
        .flatten()
}

/// The WAV file as 20 ms frames.
pub fn frames(path: &str, seconds: f32) -> Vec<AudioFrame> {
    let mut frames =
        mediabot::media::wav::read_frames(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
            .expect("media file present");
    frames.truncate((seconds * 50.0) as usize);
    frames
}

pub fn encode(frames: &[AudioFrame]) -> Vec<OpusPacket> {
    let mut enc =
        OpusEncoder::new(CodecBackend::OpusRs, &EncoderConfig::default()).expect("encoder");
    frames
        .iter()
        .map(|f| {
            let mut p = OpusPacket::EMPTY;
            enc.encode(f, &mut p).expect("encode");
            p
        })
        .collect()
}

/// The RTP header a sender fills for frame `i` of a stream.
pub fn meta(ssrc: u32, seq0: u16, ts0: u32, i: usize) -> RtpMeta {
    RtpMeta {
        seq: seq0.wrapping_add(i as u16),
        timestamp: ts0.wrapping_add(960 * i as u32),
        ssrc,
        marker: i == 0,
        audio_level: None,
    }
}

/// Plays `packets` into `outbound` paced at 20 ms, ringing the egress each tick, like a shard.
pub async fn play(
    outbound: &mut rtrb::Producer<RtpPacket>,
    signal: &EgressSignal,
    packets: &[OpusPacket],
    ssrc: u32,
    seq0: u16,
    ts0: u32,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for (i, p) in packets.iter().enumerate() {
        tick.tick().await;
        let pkt = RtpPacket {
            meta: meta(ssrc, seq0, ts0, i),
            payload: *p,
            arrival: Instant::now(),
        };
        outbound.push(pkt).expect("outbound queue has room");
        signal.notify();
    }
}

/// Collects inbound packets until `n` arrived or `idle` passed without one.
pub async fn collect(
    inbound: &mut rtrb::Consumer<RtpPacket>,
    n: usize,
    idle: Duration,
) -> Vec<RtpPacket> {
    let mut got = Vec::with_capacity(n);
    let mut last = Instant::now();
    while got.len() < n && last.elapsed() < idle {
        while let Ok(p) = inbound.pop() {
            got.push(p);
            last = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    got
}

/// This process's socket descriptors, as their `/proc/self/fd` link texts (`socket:[inode]`).
fn socket_links() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .map(|l| l.to_string_lossy().into_owned())
                .filter(|l| l.starts_with("socket:"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits up to 2 s for the runtime's tasks and this process's sockets to fall back to
/// `tasks0` and `sockets0`; fails the test with what is left if they do not.
pub async fn assert_settled(tasks0: usize, sockets0: usize) {
    let mut settled = false;
    for _ in 0..100 {
        if alive_tasks() <= tasks0 && open_sockets() <= sockets0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        settled,
        "tasks {tasks0} -> {}, sockets {sockets0} -> {}: {}",
        alive_tasks(),
        open_sockets(),
        describe_sockets()
    );
}

/// Distinct open sockets of this process (UDP, Unix), from `/proc/self/fd`. Other
/// descriptors, and duplicates of one socket, are left out: the test harness's own threads
/// open epoll/eventfd descriptors and dup its sockets as tests start.
pub fn open_sockets() -> usize {
    let mut inodes = socket_links();
    inodes.sort();
    inodes.dedup();
    inodes.len()
}

/// The socket descriptors and what they are, for failure messages.
pub fn describe_sockets() -> String {
    let inodes = socket_links();
    let mut out = format!("{inodes:?}");
    for f in ["/proc/self/net/udp", "/proc/self/net/unix"] {
        if let Ok(t) = std::fs::read_to_string(f) {
            for l in t.lines() {
                if inodes
                    .iter()
                    .any(|i| l.contains(i.trim_start_matches("socket:[").trim_end_matches(']')))
                {
                    out.push('\n');
                    out.push_str(l);
                }
            }
        }
    }
    out
}

pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Tests in one binary run in parallel in one process; the ones that count the process's
/// file descriptors take this lock, and so does every test that opens sockets.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
