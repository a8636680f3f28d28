//! Cost of the jitter buffer per 20 ms tick in steady state.
//!
//! Id: `jitter/push_pop` — one `push` and one `pop` per iteration, on virtual time, with mild
//! reordering (every 16th pair of packets arrives swapped) so the reorder and adaptation paths
//! stay warm. Payloads are 80-byte Opus-sized packets; sequence numbers and timestamps wrap
//! during long runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mediabot::media::frame::{FRAME_DURATION, RTP_TICKS_PER_FRAME};
use mediabot::media::jitter::{JitterBuffer, JitterConfig, Playout};
use mediabot::media::packet::{OpusPacket, RtpMeta, RtpPacket};

fn bench(c: &mut Criterion) {
    let t0 = Instant::now();
    let template = RtpPacket {
        meta: RtpMeta {
            ssrc: 0x1234_5678,
            ..RtpMeta::default()
        },
        payload: OpusPacket::from_slice(&[0x78; 80]).expect("80 bytes"),
        arrival: t0,
    };
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut i: u64 = 0;
    let mut step = |jb: &mut JitterBuffer| {
        // Mild reordering: packets 7 and 8 of every 16 arrive swapped.
        let k = match i % 16 {
            7 => i + 1,
            8 => i - 1,
            _ => i,
        };
        let now = t0 + FRAME_DURATION * (i as u32) + Duration::from_millis(5);
        let mut p = template;
        p.meta.seq = k as u16;
        p.meta.timestamp = (k as u32).wrapping_mul(RTP_TICKS_PER_FRAME);
        p.arrival = now;
        black_box(jb.push(now, black_box(&p)));
        let played = match jb.pop(now + Duration::from_millis(10)) {
            Playout::Packet(p) => p.payload.len(),
            Playout::Conceal { fec } => fec.map_or(1, |f| f.len()),
            Playout::Silence => 0,
        };
        black_box(played);
        i += 1;
    };
    // Reach steady state (target adapted, buffer primed).
    for _ in 0..2_000 {
        step(&mut jb);
    }
    c.bench_function("jitter/push_pop", |b| b.iter(|| step(&mut jb)));
    let s = jb.stats();
    eprintln!(
        "after bench: played {} concealed {} late {} target {:?} current {:?}",
        s.played, s.concealed, s.late, s.target_delay, s.current_delay
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
