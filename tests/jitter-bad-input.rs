//! Hostile and broken RTP reaching the jitter buffer: absurd timestamps, timestamp and
//! sequence jumps, an SSRC switch mid-stream, 500 packets in one tick, wrap-around of both
//! counters, and seeded garbage. None panics; each has a defined, counted outcome; and the
//! stream around it keeps playing. (Zero-length and over-long payloads cannot reach the buffer:
//! `OpusPacket` refuses them, see `media::packet`.)

use std::time::{Duration, Instant};

use mediabot::media::frame::{FRAME_DURATION, RTP_TICKS_PER_FRAME};
use mediabot::media::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout, PushOutcome};
use mediabot::media::packet::{OpusPacket, RtpMeta, RtpPacket};
use mediabot::netem::Rng;

const A: u32 = 0xaaaa_0001;
const B: u32 = 0xbbbb_0002;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A packet whose payload names it (`id` in the first two bytes).
fn packet(ssrc: u32, seq: u16, timestamp: u32, id: u16) -> RtpPacket {
    let [hi, lo] = id.to_be_bytes();
    RtpPacket {
        meta: RtpMeta {
            seq,
            timestamp,
            ssrc,
            ..RtpMeta::default()
        },
        payload: OpusPacket::from_slice(&[hi, lo, 0xfc]).expect("3 bytes"),
        arrival: Instant::now(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Play(u16),
    Conceal,
    Silence,
}

/// A sender/receiver pair on virtual time: one packet sent per 20 ms tick, arriving 10 ms
/// later; the buffer pops once per tick just before the next send.
struct Sim {
    jb: JitterBuffer,
    t0: Instant,
    tick: u32,
    outs: Vec<Out>,
    outcomes: Vec<PushOutcome>,
}

impl Sim {
    fn new() -> Self {
        Self {
            jb: JitterBuffer::new(JitterConfig::default()),
            t0: Instant::now(),
            tick: 0,
            outs: Vec::new(),
            outcomes: Vec::new(),
        }
    }

    fn now(&self) -> Instant {
        self.t0 + FRAME_DURATION * self.tick + ms(10)
    }

    fn push(&mut self, mut p: RtpPacket) -> PushOutcome {
        let now = self.now();
        p.arrival = now;
        let o = self.jb.push(now, &p);
        self.outcomes.push(o);
        o
    }

    fn pop(&mut self) {
        let now = self.t0 + FRAME_DURATION * self.tick + ms(19);
        let out = match self.jb.pop(now) {
            Playout::Packet(p) => {
                let b = p.payload.as_slice();
                Out::Play(u16::from_be_bytes([b[0], b[1]]))
            }
            Playout::Conceal { .. } => Out::Conceal,
            Playout::Silence => Out::Silence,
        };
        self.outs.push(out);
        self.tick += 1;
    }

    /// One tick: push `packets` (in order), then pop.
    fn step(&mut self, packets: &[RtpPacket]) {
        for p in packets {
            self.push(*p);
        }
        self.pop();
    }

    /// Normal packets `ids` of stream `ssrc` starting at `(seq0, ts0)`, one per tick.
    fn stream(&mut self, ssrc: u32, seq0: u16, ts0: u32, ids: std::ops::Range<u16>) {
        for id in ids.clone() {
            let k = id - ids.start;
            let p = packet(
                ssrc,
                seq0.wrapping_add(k),
                ts0.wrapping_add(u32::from(k) * RTP_TICKS_PER_FRAME),
                id,
            );
            self.step(&[p]);
        }
    }

    fn idle(&mut self, ticks: u32) {
        for _ in 0..ticks {
            self.pop();
        }
    }

    fn played(&self) -> Vec<u16> {
        self.outs
            .iter()
            .filter_map(|o| match o {
                Out::Play(id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    fn count(&self, outcome: PushOutcome) -> usize {
        self.outcomes.iter().filter(|o| **o == outcome).count()
    }

    fn stats(&self) -> &JitterStats {
        self.jb.stats()
    }

    fn check_identities(&self) {
        let s = self.stats();
        assert_eq!(
            s.received,
            s.accepted + s.duplicate + s.late + s.overflow + s.stray,
            "{s:?}"
        );
        assert_eq!(s.pops, s.played + s.concealed + s.silence, "{s:?}");
        assert_eq!(s.pops as usize, self.outs.len());
        assert_eq!(s.received as usize, self.outcomes.len());
        for (outcome, counter) in [
            (PushOutcome::Duplicate, s.duplicate),
            (PushOutcome::Late, s.late),
            (PushOutcome::Overflow, s.overflow),
            (PushOutcome::Stray, s.stray),
            (PushOutcome::Resync, s.resyncs),
        ] {
            assert_eq!(self.count(outcome) as u64, counter, "{outcome:?}: {s:?}");
        }
    }
}

fn ids(r: std::ops::Range<u16>) -> Vec<u16> {
    r.collect()
}

#[test]
fn absurd_timestamps_are_strays_that_do_not_disturb_the_stream() {
    let mut sim = Sim::new();
    let (seq0, ts0) = (100u16, 777_000u32);
    let absurd = [
        ts0.wrapping_add(1 << 31),
        0,
        u32::MAX,
        ts0.wrapping_sub(123_456_789),
        ts0.wrapping_add(2_000_000_000),
    ];
    for id in 0..100u16 {
        let ts = ts0.wrapping_add(u32::from(id) * RTP_TICKS_PER_FRAME);
        let mut packets = vec![packet(A, seq0 + id, ts, id)];
        if id % 20 == 10 {
            // A lone packet with a wild timestamp (and a plausible sequence number).
            let bad = absurd[usize::from(id / 20)];
            packets.push(packet(A, seq0 + id + 1, bad, 9_000 + id));
        }
        sim.step(&packets);
    }
    sim.idle(1);
    assert_eq!(sim.played(), ids(0..100));
    assert_eq!(sim.count(PushOutcome::Stray), 5);
    let s = sim.stats();
    assert_eq!((s.stray, s.resyncs, s.lost), (5, 0, 0), "{s:?}");
    sim.check_identities();
}

#[test]
fn timestamp_jump_resyncs_at_once_without_a_gap_loop() {
    // Jumps of more than 20 s beyond the buffer, either way.
    for jump in [
        1u32 << 31,
        3_000_000_000,
        2_000_000,
        0u32.wrapping_sub(5_000_000),
    ] {
        let mut sim = Sim::new();
        let ts0 = 5_000u32;
        sim.stream(A, 1_000, ts0, 0..50);
        // The sender jumps its timestamps; sequence numbers continue.
        let ts1 = ts0
            .wrapping_add(50 * RTP_TICKS_PER_FRAME)
            .wrapping_add(jump);
        sim.stream(A, 1_050, ts1, 50..100);
        sim.idle(3);
        assert_eq!(
            &sim.outcomes[50..52],
            &[PushOutcome::Stray, PushOutcome::Resync]
        );
        let played = sim.played();
        // Everything before the jump, everything after it but the stray that announced it.
        assert_eq!(
            played,
            ids(0..50).into_iter().chain(51..100).collect::<Vec<_>>(),
            "{jump}"
        );
        let s = sim.stats();
        assert_eq!((s.resyncs, s.stray), (1, 1));
        assert!(s.lost <= 6, "no gap loop: {s:?}");
        sim.check_identities();
    }
}

#[test]
fn moderate_forward_timestamp_jump_overflows_then_resyncs_within_a_few_ticks() {
    let mut sim = Sim::new();
    sim.stream(A, 0, 0, 0..50);
    // 2 s ahead: beyond the capacity (1 s) but plausible; counted as overflow until the old
    // timeline has played out, then the buffer follows the sender.
    sim.stream(A, 50, 150 * RTP_TICKS_PER_FRAME, 50..100);
    sim.idle(1);
    let s = *sim.stats();
    assert_eq!(s.resyncs, 1, "{s:?}");
    assert!((1..=5).contains(&s.overflow), "{s:?}");
    let played = sim.played();
    assert!(played.starts_with(&ids(0..50)));
    assert!(played.ends_with(&ids(56..100)), "{played:?}");
    assert!(s.lost <= 6, "no gap loop: {s:?}");
    sim.check_identities();
}

#[test]
fn small_backward_timestamp_jump_resyncs_once_the_old_timeline_runs_dry() {
    let mut sim = Sim::new();
    sim.stream(A, 0, 96_000, 0..50);
    // Timestamps step back 30 frames (inside the buffer's reach), sequence numbers go on.
    sim.stream(A, 50, 96_000 + 20 * RTP_TICKS_PER_FRAME, 50..100);
    sim.idle(3);
    let s = *sim.stats();
    // Two late packets, then the third (nothing buffered any more) starts the new timeline.
    assert_eq!((s.late, s.resyncs), (2, 1), "{s:?}");
    let played = sim.played();
    assert_eq!(
        played,
        ids(0..50).into_iter().chain(52..100).collect::<Vec<_>>()
    );
    sim.check_identities();
}

#[test]
fn sequence_jump_with_continuous_timestamps_plays_on_and_is_counted() {
    let mut sim = Sim::new();
    sim.stream(A, 10, 0, 0..50);
    // The sender renumbers (e.g. a relay restarted): +30,000, then a reset to 0.
    sim.stream(A, 30_050, 50 * RTP_TICKS_PER_FRAME, 50..80);
    sim.stream(A, 0, 80 * RTP_TICKS_PER_FRAME, 80..100);
    sim.idle(1);
    assert_eq!(sim.played(), ids(0..100));
    let s = sim.stats();
    assert_eq!(
        (s.seq_jumps, s.resyncs, s.lost, s.stray),
        (2, 0, 0, 0),
        "{s:?}"
    );
    sim.check_identities();
}

#[test]
fn ssrc_switch_mid_stream_resyncs_to_the_new_source() {
    let mut sim = Sim::new();
    sim.stream(A, 500, 10_000, 0..50);
    // B takes over at once with unrelated numbering; A's last packets are still buffered.
    sim.stream(B, 40_000, 3_000_000_000, 1_000..1_050);
    sim.idle(3);
    assert_eq!(
        &sim.outcomes[50..52],
        &[PushOutcome::Stray, PushOutcome::Resync]
    );
    let played = sim.played();
    let a_played: Vec<u16> = played.iter().copied().filter(|id| *id < 1_000).collect();
    let b_played: Vec<u16> = played.iter().copied().filter(|id| *id >= 1_000).collect();
    assert_eq!(b_played, ids(1_001..1_050));
    let s = *sim.stats();
    assert_eq!(s.resyncs, 1);
    assert_eq!(s.flushed as usize, 50 - a_played.len(), "{s:?}");
    assert!(a_played.len() >= 48, "{a_played:?}");
    sim.check_identities();
}

#[test]
fn stray_packets_from_other_ssrcs_never_take_over_a_live_stream() {
    let mut sim = Sim::new();
    let mut rng = Rng::new(99);
    for id in 0..200u16 {
        let mut packets = vec![packet(A, id, u32::from(id) * RTP_TICKS_PER_FRAME, id)];
        // Sprayed packets (RTP-bleed style) from random SSRCs with plausible numbering,
        // once the stream has started.
        if id % 3 == 1 {
            let ssrc = rng.next_u64() as u32 | 1;
            packets.insert(
                0,
                packet(ssrc, id + 1, u32::from(id + 1) * RTP_TICKS_PER_FRAME, 9_999),
            );
        }
        sim.step(&packets);
    }
    sim.idle(3);
    assert_eq!(sim.played(), ids(0..200));
    let s = sim.stats();
    assert_eq!((s.resyncs, s.stray), (0, 67), "{s:?}");
    sim.check_identities();
}

#[test]
fn five_hundred_packets_in_one_tick_fill_the_buffer_and_overflow_is_counted() {
    let mut sim = Sim::new();
    sim.stream(A, 0, 0, 0..20);
    // A stalled transport dumps 500 packets of *future* media at once.
    let burst: Vec<RtpPacket> = (20..520u16)
        .map(|id| packet(A, id, u32::from(id) * RTP_TICKS_PER_FRAME, id))
        .collect();
    sim.step(&burst);
    let s = *sim.stats();
    let capacity = sim.jb.config().capacity;
    let accepted = sim.outcomes[20..]
        .iter()
        .filter(|o| **o == PushOutcome::Accepted)
        .count();
    assert!(
        accepted + 3 >= capacity && accepted <= capacity,
        "{accepted}"
    );
    assert_eq!(s.overflow as usize, 500 - accepted, "{s:?}");
    assert_eq!(s.resyncs, 0);
    // The sender carries on in real time; the buffer plays what it holds (shortening the
    // excess delay), then resyncs to the live packets and plays them.
    sim.stream(A, 520, 520 * RTP_TICKS_PER_FRAME, 520..700);
    sim.idle(3);
    let played = sim.played();
    assert!(played.windows(2).all(|w| w[0] < w[1]));
    assert!(played.ends_with(&ids(600..700)), "{played:?}");
    assert!(sim.stats().resyncs >= 1);
    sim.check_identities();

    // Stale media dumped at once (500 packets from the past) is late, not a new timeline.
    let mut sim = Sim::new();
    sim.stream(A, 0, 0, 0..600);
    let mut stale: Vec<RtpPacket> = (50..550u16)
        .map(|id| packet(A, id, u32::from(id) * RTP_TICKS_PER_FRAME, id))
        .collect();
    // ... in the same tick as the live packet, which keeps its cadence.
    stale.push(packet(A, 600, 600 * RTP_TICKS_PER_FRAME, 600));
    sim.step(&stale);
    sim.stream(A, 601, 601 * RTP_TICKS_PER_FRAME, 601..650);
    sim.idle(3);
    let s = *sim.stats();
    assert_eq!((s.late, s.resyncs, s.stray), (500, 0, 0), "{s:?}");
    assert_eq!(sim.played(), ids(0..650));
    assert_eq!(
        s.target_delay,
        ms(20),
        "stale packets do not inflate the delay"
    );
    sim.check_identities();
}

#[test]
fn sequence_and_timestamp_wrap_with_reordering_and_duplicates() {
    let mut sim = Sim::new();
    // Sequence wraps after 6 packets, timestamps after 150.
    let (seq0, ts0) = (65_530u16, u32::MAX - 150 * RTP_TICKS_PER_FRAME + 1);
    let p = |id: u16| {
        packet(
            A,
            seq0.wrapping_add(id),
            ts0.wrapping_add(u32::from(id) * RTP_TICKS_PER_FRAME),
            id,
        )
    };
    let mut id = 0u16;
    while id < 300 {
        if id % 7 == 3 && id + 1 < 300 {
            // Swap a pair across ticks and duplicate the second.
            sim.step(&[p(id + 1)]);
            sim.step(&[p(id), p(id + 1)]);
            id += 2;
        } else {
            sim.step(&[p(id)]);
            id += 1;
        }
    }
    sim.idle(3);
    assert_eq!(sim.played(), ids(0..300));
    let s = sim.stats();
    assert_eq!(
        (s.resyncs, s.stray, s.seq_jumps, s.late),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert!(s.duplicate >= 40, "{s:?}");
    sim.check_identities();
}

#[test]
fn seeded_garbage_never_panics_and_every_packet_and_tick_is_counted() {
    let mut rng = Rng::new(2026);
    let mut jb = JitterBuffer::new(JitterConfig {
        capacity: 16,
        ..JitterConfig::default()
    });
    let t0 = Instant::now();
    let mut now = t0;
    let (mut seq, mut ts) = (0u16, 0u32);
    let mut pops = 0u64;
    for i in 0..50_000u32 {
        let r = rng.next_u64();
        // Mostly a plausible stream, sometimes anything at all.
        match r % 16 {
            0 => {
                seq = rng.next_u64() as u16;
            }
            1 => {
                ts = rng.next_u64() as u32;
            }
            2 => now += ms(rng.next_u64() % 2_000),
            _ => {}
        }
        let ssrc = if r.is_multiple_of(97) {
            rng.next_u64() as u32
        } else {
            A
        };
        seq = seq.wrapping_add((rng.next_u64() % 3) as u16);
        ts = ts.wrapping_add(RTP_TICKS_PER_FRAME * (rng.next_u64() % 3) as u32);
        let mut p = packet(ssrc, seq, ts, i as u16);
        // Arrival sometimes in the future of `now`, sometimes long before.
        p.arrival = match r % 5 {
            0 => now + ms(50),
            1 => t0,
            _ => now,
        };
        for _ in 0..(r >> 8) % 3 {
            jb.push(now, &p);
        }
        if (r >> 16).is_multiple_of(2) {
            // Time may even stand still or go backwards between pops.
            let back = (r >> 20).is_multiple_of(50);
            let at = if back { now - ms(5).min(now - t0) } else { now };
            let _ = jb.pop(at);
            pops += 1;
        }
        now += ms((r >> 24) % 40);
        if i % 10_000 == 9_999 {
            jb.reset();
            assert_eq!(*jb.stats(), JitterStats::default());
            pops = 0;
        }
    }
    let s = jb.stats();
    assert_eq!(s.pops, pops);
    assert_eq!(s.pops, s.played + s.concealed + s.silence, "{s:?}");
    assert_eq!(
        s.received,
        s.accepted + s.duplicate + s.late + s.overflow + s.stray,
        "{s:?}"
    );
    assert!(s.target_delay <= jb.config().max_delay);
    assert!(jb.buffered() <= jb.config().capacity);
}
