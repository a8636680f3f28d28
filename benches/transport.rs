//! WebRTC transport benches: `transport/loopback_call` is one call's packet round trip through
//! webrtc-rs both ways over loopback — side A's shard queue → SRTP → UDP → side B's inbound
//! queue, B writes the packet back, A receives it — measured end to end with `iter_custom`.
//!
//! With `MEDIABOT_TRANSPORT_FIGURES=1` it first prints the figures the issue asks for:
//! connect time, RSS per session, CPU per packet and the host-added latency histograms.
//!
//! ```text
//! cargo bench --bench transport -- --quick
//! MEDIABOT_TRANSPORT_FIGURES=1 cargo bench --bench transport -- --quick
//! ```

#[path = "../tests/webrtc_support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mediabot::adapters::webrtc::{
    Egress, LatencySummary, LegEnds, LegQueues, MediaEvent, MediaSession, MediaTransport,
    MediaTransportConfig,
};
use mediabot::media::histogram::Histogram;
use mediabot::media::packet::{OpusPacket, RtpMeta, RtpPacket};
use support::Side;

/// Pops one packet, yielding to the runtime while the queue is empty (`None` after 1 s).
async fn next_packet(q: &mut rtrb::Consumer<RtpPacket>) -> Option<RtpPacket> {
    let start = Instant::now();
    loop {
        if let Ok(p) = q.pop() {
            return Some(p);
        }
        if start.elapsed() > Duration::from_secs(1) {
            return None;
        }
        tokio::task::yield_now().await;
    }
}

fn send(side: &mut Side, seq: u16, payload: OpusPacket) {
    let meta = RtpMeta {
        seq,
        timestamp: u32::from(seq).wrapping_mul(960),
        ssrc: side.ssrc,
        marker: false,
        audio_level: None,
    };
    let p = RtpPacket {
        meta,
        payload,
        arrival: Instant::now(),
    };
    // The queue is drained every round trip, so it always has room.
    let _ = side.ends.outbound.push(p);
    side.signal.notify();
}

fn loopback_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var_os("MEDIABOT_TRANSPORT_FIGURES").is_some() {
        rt.block_on(figures());
    }
    let (mut a, mut b, _) = rt.block_on(support::connect(MediaTransportConfig::default()));
    let payload = OpusPacket::from_slice(&[0x78; 80]).expect("80 bytes");
    let mut seq = 0u16;
    let mut lost = 0u64;
    let mut group = c.benchmark_group("transport");
    group.bench_function("loopback_call", |bench| {
        bench.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    seq = seq.wrapping_add(1);
                    send(&mut a, seq, payload);
                    let Some(p) = next_packet(&mut b.ends.inbound).await else {
                        lost += 1;
                        continue;
                    };
                    send(&mut b, p.meta.seq, p.payload);
                    if black_box(next_packet(&mut a.ends.inbound).await).is_none() {
                        lost += 1;
                    }
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    assert_eq!(lost, 0, "packets lost on loopback");
    rt.block_on(async {
        a.session.close().await;
        b.session.close().await;
    });
}

/// One side of the figures run: every leg of one "shard" shares its egress, as in the bot.
struct Leg {
    session: MediaSession,
    ends: LegEnds,
    ssrc: u32,
}

/// Connect time, RSS per session, CPU per packet and latency histograms, printed.
///
/// Models two shards: all offerer legs on one egress, all answerer legs on another; each
/// tick fills every leg's outbound queue (arrival = when the tick ran), then rings once.
async fn figures() {
    const PAIRS: usize = 20;
    const SECONDS: u64 = 5;
    let transport = MediaTransport::new(MediaTransportConfig::default());
    let (o_signal, o_egress) = Egress::spawn().expect("egress");
    let (a_signal, a_egress) = Egress::spawn().expect("egress");
    let rss0 = status_kib("VmRSS:");
    let mut pairs: Vec<(Leg, Leg)> = Vec::with_capacity(PAIRS);
    let mut connect = Vec::new();
    for i in 0..PAIRS {
        let (o_leg, o_ends) = LegQueues::new(32, 0x1000 + i as u32, o_egress.clone());
        let (a_leg, a_ends) = LegQueues::new(32, 0x2000 + i as u32, a_egress.clone());
        let (offer, pending) = transport.create_offer(o_leg).await.expect("offer");
        let (answer, a_session) = transport.accept_offer(&offer, a_leg).await.expect("answer");
        let o_session = pending.complete(&answer).await.expect("complete");
        let mut o = Leg {
            session: o_session,
            ends: o_ends,
            ssrc: 0x1000 + i as u32,
        };
        let mut a = Leg {
            session: a_session,
            ends: a_ends,
            ssrc: 0x2000 + i as u32,
        };
        for side in [&mut o, &mut a] {
            let ev = tokio::time::timeout(Duration::from_secs(5), side.ends.events.recv()).await;
            assert!(matches!(ev, Ok(Some(MediaEvent::Connected))), "{ev:?}");
        }
        connect.extend(
            [
                o.session.stats().connect_time,
                a.session.stats().connect_time,
            ]
            .into_iter()
            .flatten(),
        );
        pairs.push((o, a));
    }
    let rss1 = status_kib("VmRSS:");
    connect.sort();
    println!(
        "connect time (create -> Connected, {} sessions, sequential): p50 {:?} p90 {:?} max {:?}",
        connect.len(),
        connect[connect.len() / 2],
        connect[connect.len() * 9 / 10],
        connect[connect.len() - 1]
    );
    println!(
        "RSS: {} KiB -> {} KiB after {} sessions connected = {:.0} KiB per session (incl. 2 x 32-packet queues); threads {}",
        rss0,
        rss1,
        2 * PAIRS,
        (rss1 - rss0) as f64 / (2 * PAIRS) as f64,
        status_kib("Threads:")
    );

    let payload = OpusPacket::from_slice(&[0x78; 80]).expect("80 bytes");
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut received = 0u64;
    for i in 0..SECONDS * 50 {
        tick.tick().await;
        // Stamped when the "shard" produced the packets (not the tick's deadline, which a
        // starved loop may have passed long ago: that lateness is the shard's, not ours).
        let now = Instant::now();
        for (signal, side) in [(&o_signal, 0), (&a_signal, 1)] {
            for pair in &mut pairs {
                let leg = if side == 0 { &mut pair.0 } else { &mut pair.1 };
                let meta = RtpMeta {
                    seq: i as u16,
                    timestamp: (i as u32).wrapping_mul(960),
                    ssrc: leg.ssrc,
                    marker: i == 0,
                    audio_level: None,
                };
                let _ = leg.ends.outbound.push(RtpPacket {
                    meta,
                    payload,
                    arrival: now,
                });
                while leg.ends.inbound.pop().is_ok() {
                    received += 1;
                }
            }
            signal.notify();
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (o, a) in &mut pairs {
        while o.ends.inbound.pop().is_ok() || a.ends.inbound.pop().is_ok() {
            received += 1;
        }
    }
    let cpu = cpu_seconds() - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let sent = SECONDS * 50 * 2 * PAIRS as u64;
    println!(
        "media: {PAIRS} calls x 2 directions x 50 pkt/s for {SECONDS} s: sent {sent}, received {received}; \
         CPU {:.2} s over {:.2} s ({:.1} % of one core) = {:.1} us per packet (send + receive, both ends)",
        cpu,
        wall,
        100.0 * cpu / wall,
        1e6 * cpu / received.max(1) as f64
    );
    let rss2 = status_kib("VmRSS:");
    println!(
        "RSS after media: {} KiB = {:.0} KiB per session",
        rss2,
        (rss2 - rss0) as f64 / (2 * PAIRS) as f64
    );
    let (mut q2w, mut w2w, mut r2q) = (Histogram::new(), Histogram::new(), Histogram::new());
    for (o, a) in &pairs {
        for s in [o.session.stats(), a.session.stats()] {
            q2w.merge(&s.queue_to_write);
            w2w.merge(&s.write_to_wire);
            r2q.merge(&s.recv_to_queue);
        }
    }
    println!(
        "host-added latency, send: frame ready (tick) -> write_rtp {}",
        LatencySummary::of(&q2w)
    );
    println!(
        "host-added latency, send: write_rtp -> on the wire       {}",
        LatencySummary::of(&w2w)
    );
    println!(
        "host-added latency, receive: socket -> inbound queue     {}",
        LatencySummary::of(&r2q)
    );
    for (o, a) in pairs {
        o.session.close().await;
        a.session.close().await;
    }
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of this process (USER_HZ = 100).
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some(rest) = s.rfind(')').map(|i| &s[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

criterion_group!(benches, loopback_call);
criterion_main!(benches);
