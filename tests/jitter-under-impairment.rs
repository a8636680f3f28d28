//! Real speech, Opus-encoded, through a seeded impaired network into the jitter buffer, popped
//! once per 20 ms tick on virtual time: every tick yields exactly one output, every frame of the
//! stream is played, concealed or deliberately dropped exactly once, concealment matches what
//! the network lost, the delay stays in bounds, a 1 s outage recovers, and the decoded audio
//! still correlates with the source. `push` and `pop` never allocate.
//!
//! Time is fabricated (`t0` plus durations); nothing sleeps. Seeds are fixed.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mediabot::media::analysis::{align, correlation, overlap, snr_db};
use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusDecoder, OpusEncoder};
use mediabot::media::frame::{AudioFrame, FRAME_DURATION, FRAME_SAMPLES, RTP_TICKS_PER_FRAME};
use mediabot::media::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout, PushOutcome};
use mediabot::media::packet::{AudioLevel, OpusPacket, RtpMeta, RtpPacket};
use mediabot::netem::{GilbertElliott, Netem, NetemConfig};

#[global_allocator]
static GLOBAL: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;

// ---- the sender: real speech, real Opus ----

const SSRC: u32 = 0x5eed_0001;
/// Start close to both wrap-arounds so every run crosses them.
const SEQ0: u16 = 65_400;
const TS0: u32 = u32::MAX - 50 * RTP_TICKS_PER_FRAME;
/// Pops happen 7 ms into each 20 ms sender period.
const PHASE: Duration = Duration::from_millis(7);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Source {
    frames: Vec<AudioFrame>,
    packets: Vec<OpusPacket>,
    /// The packets decoded straight, without network or jitter buffer.
    decoded: Vec<f32>,
    /// Codec delay in samples: how late `decoded` is against the source.
    lag: isize,
}

/// `media/caller-48k.wav` as 20 ms frames, encoded with in-band FEC (10 % expected loss);
/// built once and shared by the tests.
fn source() -> &'static Source {
    static SOURCE: OnceLock<Source> = OnceLock::new();
    SOURCE.get_or_init(load_source)
}

fn load_source() -> Source {
    let frames = mediabot::media::wav::media_frames("caller-48k.wav").expect("media file present");
    let config = EncoderConfig {
        inband_fec: true,
        expected_loss_pct: 10,
        ..EncoderConfig::default()
    };
    let mut enc = OpusEncoder::new(CodecBackend::default(), &config).expect("encoder");
    let packets = frames
        .iter()
        .map(|f| {
            let mut p = OpusPacket::EMPTY;
            enc.encode(f, &mut p).expect("encode speech");
            p
        })
        .collect::<Vec<_>>();
    let mut dec = OpusDecoder::new(CodecBackend::default()).expect("decoder");
    let mut out = AudioFrame::silence();
    let decoded: Vec<f32> = packets
        .iter()
        .flat_map(|p| {
            dec.decode(p.as_slice(), &mut out).expect("decode");
            out.samples
        })
        .collect();
    let reference: Vec<f32> = frames.iter().flat_map(|f| f.samples).collect();
    let (a, b) = (48_000, 96_000); // 1–2 s: speech
    let lag = align(&reference[a..b], &decoded[a..b], 480).lag;
    Source {
        frames,
        packets,
        decoded,
        lag,
    }
}

/// Packet `k` of the stream, as a browser would send it (with an RFC 6464 level).
fn rtp(src: &Source, k: usize, sent: Instant) -> RtpPacket {
    let level = (-src.frames[k].level_dbov()).clamp(0.0, 127.0) as u8;
    RtpPacket {
        meta: RtpMeta {
            seq: SEQ0.wrapping_add(k as u16),
            timestamp: TS0.wrapping_add(k as u32 * RTP_TICKS_PER_FRAME),
            ssrc: SSRC,
            marker: k == 0,
            audio_level: Some(AudioLevel {
                level,
                voice: level < 50,
            }),
        },
        payload: src.packets[k],
        arrival: sent,
    }
}

fn frame_of(p: &RtpPacket) -> usize {
    usize::from(p.meta.seq.wrapping_sub(SEQ0))
}

// ---- the run ----

/// One tick's output, frames named by their index in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Play(usize),
    /// A lost frame, concealed (with the index of the FEC packet, if offered).
    Lost {
        frame: usize,
        fec: Option<usize>,
    },
    /// A lost frame past the concealment limit.
    LostSilent(usize),
    /// A concealment frame inserted to grow the delay.
    Inserted,
    /// Silence before playout started.
    Waiting,
}

struct Run {
    outs: Vec<Out>,
    /// `(tick, current delay, target delay)` for every tick while playing.
    delays: Vec<(usize, Duration, Duration)>,
    /// Per source frame: copies delivered, and how many were accepted by the buffer.
    delivered: Vec<u32>,
    accepted: Vec<u32>,
    /// Tick at which each frame's first copy arrived.
    arrived_tick: Vec<Option<usize>>,
    stats: JitterStats,
    netem_lost: u64,
    /// Decoded output placed at each frame's media position (lost frames concealed).
    track: Vec<f32>,
    allocations: u64,
}

/// Sends every source frame every 20 ms through `netem` (reconfigured by `plan` at given
/// frames) into a jitter buffer, pops once per tick, decodes what it says.
fn run(src: &Source, netem: NetemConfig, plan: &[(usize, NetemConfig)]) -> Run {
    let n = src.frames.len();
    let t0 = Instant::now();
    let mut net: Netem<RtpPacket> = Netem::new(netem);
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut dec = OpusDecoder::new(CodecBackend::default()).expect("decoder");
    let mut frame = AudioFrame::silence();
    let mut r = Run {
        outs: Vec::new(),
        delays: Vec::new(),
        delivered: vec![0; n],
        accepted: vec![0; n],
        arrived_tick: vec![None; n],
        stats: JitterStats::default(),
        netem_lost: 0,
        track: vec![0.0; n * FRAME_SAMPLES],
        allocations: 0,
    };
    // Run long enough for the last frame to come out at the maximum delay.
    let ticks = n + 30;
    let (mut sent, mut tick) = (0usize, 0usize);
    let mut expect: Option<usize> = None;
    while tick < ticks {
        let t_tick = t0 + PHASE + FRAME_DURATION * tick as u32;
        let t_send = (sent < n).then(|| t0 + FRAME_DURATION * sent as u32);
        let t_net = net.poll_timeout();
        if let Some(at) = t_net.filter(|at| *at <= t_tick && t_send.is_none_or(|s| *at <= s)) {
            let mut p = net.poll_packet(at).expect("due packet");
            p.arrival = at;
            let f = frame_of(&p);
            r.delivered[f] += 1;
            r.arrived_tick[f].get_or_insert(tick);
            let (outcome, counted) = counting_alloc::count(|| jb.push(at, &p));
            r.allocations += counted.total();
            match outcome {
                PushOutcome::Accepted => r.accepted[f] += 1,
                PushOutcome::Duplicate | PushOutcome::Late => {}
                other => panic!("unexpected {other:?} for frame {f}"),
            }
            continue;
        }
        if let Some(at) = t_send.filter(|s| *s <= t_tick) {
            if let Some((_, c)) = plan.iter().find(|(k, _)| *k == sent) {
                net.set_config(*c);
            }
            net.handle_packet(at, rtp(src, sent, at));
            sent += 1;
            continue;
        }
        let before_stats = *jb.stats();
        let (playout, counted) = counting_alloc::count(|| jb.pop(t_tick));
        r.allocations += counted.total();
        let out = match playout {
            Playout::Packet(p) => {
                dec.decode(p.payload.as_slice(), &mut frame)
                    .expect("decode");
                Out::Play(frame_of(p))
            }
            Playout::Conceal { fec } => {
                match fec {
                    Some(next) => dec.decode_fec(next.as_slice(), &mut frame).expect("fec"),
                    None => dec.conceal(&mut frame).expect("plc"),
                }
                let offered = fec.is_some();
                let after = jb.stats();
                if after.inserted > before_stats.inserted {
                    Out::Inserted
                } else {
                    let f = expect.expect("a frame is lost only after playout started");
                    Out::Lost {
                        frame: f,
                        fec: offered.then_some(f + 1),
                    }
                }
            }
            Playout::Silence => {
                frame.clear();
                let after = jb.stats();
                if after.lost > before_stats.lost {
                    Out::LostSilent(expect.expect("lost only after playout started"))
                } else {
                    Out::Waiting
                }
            }
        };
        let after = *jb.stats();
        // Keep the media-time head in step: a played frame fixes it, a lost one advances it,
        // a dropped packet skips one.
        match out {
            Out::Play(f) => {
                if let Some(e) = expect {
                    let dropped = (after.dropped - before_stats.dropped) as usize;
                    assert_eq!(f, e + dropped, "tick {tick}: timeline broken");
                }
                expect = Some(f + 1);
            }
            Out::Lost { frame: f, .. } | Out::LostSilent(f) => expect = Some(f + 1),
            Out::Inserted | Out::Waiting => {}
        }
        if let Out::Play(f) | Out::Lost { frame: f, .. } | Out::LostSilent(f) = out
            && f < n
        {
            r.track[f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES].copy_from_slice(&frame.samples);
        }
        if !matches!(out, Out::Waiting) {
            r.delays
                .push((tick, after.current_delay, after.target_delay));
        }
        r.outs.push(out);
        tick += 1;
    }
    r.stats = *jb.stats();
    r.netem_lost = net.stats().lost;
    r
}

impl Run {
    fn played(&self) -> Vec<usize> {
        self.outs
            .iter()
            .filter_map(|o| match o {
                Out::Play(f) => Some(*f),
                _ => None,
            })
            .collect()
    }

    /// First and last frame the playout head passed (played or lost) within the source.
    fn span(&self) -> (usize, usize) {
        let frames = self.outs.iter().filter_map(|o| match o {
            Out::Play(f) | Out::Lost { frame: f, .. } | Out::LostSilent(f) => Some(*f),
            _ => None,
        });
        let n = self.delivered.len();
        let first = frames.clone().min().expect("something played");
        let last = frames.filter(|f| *f < n).max().expect("something played");
        (first, last)
    }

    /// Checks exactly-once accounting of every frame and of every tick.
    fn check_timeline(&self, ticks: usize) {
        let s = &self.stats;
        assert_eq!(self.outs.len(), ticks, "one output per tick");
        assert_eq!(s.pops as usize, ticks);
        assert_eq!(s.pops, s.played + s.concealed + s.silence, "{s:?}");
        assert_eq!(
            s.received,
            s.accepted + s.duplicate + s.late + s.overflow + s.stray,
            "{s:?}"
        );
        let played = self.played();
        assert!(
            played.windows(2).all(|w| w[0] < w[1]),
            "no frame played twice or out of order"
        );
        // Every frame in the span is played, lost (never accepted in time) or dropped.
        let (first, last) = self.span();
        let mut lost_frames = 0;
        for f in first..=last {
            let was_played = played.binary_search(&f).is_ok();
            let accepted = self.accepted[f] > 0;
            if was_played {
                assert!(accepted);
            }
            if !accepted {
                lost_frames += 1;
                assert!(!was_played);
            }
        }
        let in_span_played = played.iter().filter(|f| (first..=last).contains(f)).count();
        let span = last - first + 1;
        assert_eq!(
            in_span_played as u64 + s.dropped + lost_frames,
            span as u64,
            "played + dropped + lost = frames"
        );
        // The buffer's lost counter matches: frames lost in the span plus the tail after the
        // stream ended.
        let lost_outs = self
            .outs
            .iter()
            .filter(|o| matches!(o, Out::Lost { .. } | Out::LostSilent(_)))
            .count() as u64;
        assert_eq!(s.lost, lost_outs);
        let tail = self
            .outs
            .iter()
            .filter(|o| matches!(o, Out::Lost { frame: f, .. } | Out::LostSilent(f) if *f > last))
            .count() as u64;
        assert_eq!(
            s.lost - tail,
            lost_frames,
            "lost counter = frames never there in time"
        );
        // Concealment: every lost frame within the limit, plus insertions.
        let silent = self
            .outs
            .iter()
            .filter(|o| matches!(o, Out::LostSilent(_)))
            .count() as u64;
        assert_eq!(s.concealed, s.lost - silent + s.inserted);
    }

    /// Correlation with the source speech over `frames` (shifted by the codec delay: frames
    /// sit at their media positions, so no other shift is needed).
    fn vs_source(&self, src: &Source, frames: std::ops::Range<usize>) -> f32 {
        let reference: Vec<f32> = src.frames.iter().flat_map(|f| f.samples).collect();
        let (r, t) = overlap(&reference, &self.track, src.lag);
        let (r, t) = (excerpt(r, frames.clone()), excerpt(t, frames));
        correlation(r, t)
    }

    /// Correlation and SNR against the clean decode (same packets, no network) over `frames`:
    /// what the jitter buffer's choices cost, apart from the codec.
    fn vs_clean(&self, src: &Source, frames: std::ops::Range<usize>) -> (f32, f32) {
        let (r, t) = (
            excerpt(&src.decoded, frames.clone()),
            excerpt(&self.track, frames),
        );
        (correlation(r, t), snr_db(r, t))
    }
}

fn excerpt(x: &[f32], frames: std::ops::Range<usize>) -> &[f32] {
    let end = (frames.end * FRAME_SAMPLES).min(x.len());
    &x[(frames.start * FRAME_SAMPLES).min(end)..end]
}

/// How well a clean decode matches the source: the ceiling for any run.
fn codec_correlation(src: &Source) -> f32 {
    let reference: Vec<f32> = src.frames.iter().flat_map(|f| f.samples).collect();
    let (r, t) = overlap(&reference, &src.decoded, src.lag);
    correlation(r, t)
}

fn clean() -> NetemConfig {
    NetemConfig {
        seed: 1,
        latency: ms(30),
        jitter: ms(1),
        ..NetemConfig::default()
    }
}

#[test]
fn clean_path_plays_every_frame_at_20_to_40_ms() {
    let src = source();
    let r = run(src, clean(), &[]);
    let n = src.frames.len();
    r.check_timeline(n + 30);
    assert_eq!(r.played(), (0..n).collect::<Vec<_>>());
    let s = &r.stats;
    assert_eq!(
        (s.late, s.inserted, s.dropped, s.resyncs),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert!(
        !r.outs
            .iter()
            .any(|o| matches!(o, Out::Lost { frame, .. } if *frame < n)),
        "nothing concealed while the stream flows"
    );
    // While frames flow, the delay sits between 20 and 40 ms.
    for (tick, current, target) in r.delays.iter().filter(|(t, ..)| *t < n) {
        assert_eq!(*target, ms(20), "tick {tick}");
        assert!(
            *current >= ms(20) && *current <= ms(40),
            "tick {tick}: {current:?}"
        );
    }
    let ceiling = codec_correlation(src);
    let corr = r.vs_source(src, 0..n);
    let (same, snr) = r.vs_clean(src, 0..n);
    eprintln!("clean: vs source {corr} (codec alone {ceiling}), vs clean decode {same} / {snr} dB");
    assert!(ceiling > 0.8, "codec alone correlates {ceiling}");
    assert!(corr >= ceiling - 0.001, "{corr} < {ceiling}");
    assert!(same > 0.999 && snr > 40.0, "{same}, {snr} dB");
    assert_eq!(r.allocations, 0, "push/pop allocated");
}

#[test]
fn loss_reorder_and_50_ms_jitter_lose_no_frame_from_the_timeline() {
    let src = source();
    let config = NetemConfig {
        seed: 7,
        latency: ms(80),
        jitter: ms(50),
        loss: 0.0,
        burst_loss: Some(GilbertElliott::bursty(0.10, 2.0)),
        duplicate: 0.02,
        reorder: 0.05,
        reorder_delay: ms(40),
    };
    let r = run(src, config, &[]);
    let n = src.frames.len();
    r.check_timeline(n + 30);
    let s = &r.stats;
    eprintln!("{s:?}, netem lost {}", r.netem_lost);
    // The network really was that bad, and the buffer saw all of it.
    assert!(r.netem_lost as f64 > 0.07 * n as f64, "{}", r.netem_lost);
    assert!(s.duplicate > 0 && s.fec_recovered > 0);
    // Every frame the network lost is concealed (none played), and nothing else is lost
    // except the few packets later than the adapted target.
    let (first, last) = r.span();
    let never: Vec<usize> = (first..=last).filter(|f| r.delivered[*f] == 0).collect();
    assert!(never.iter().all(|f| !r.played().contains(f)));
    let lost_in_span = (first..=last).filter(|f| r.accepted[*f] == 0).count();
    assert!(lost_in_span >= never.len());
    assert!(
        (lost_in_span - never.len()) as f64 <= 0.05 * n as f64,
        "{} frames lost to lateness",
        lost_in_span - never.len()
    );
    assert_eq!((s.resyncs, s.stray, s.overflow), (0, 0, 0));
    // The target adapted up to the jitter but stayed within bounds.
    let max = JitterConfig::default().max_delay;
    let (_, _, late_target) = *r.delays.last().expect("played");
    assert!(
        late_target >= ms(60) && late_target <= max,
        "{late_target:?}"
    );
    assert!(
        r.delays
            .iter()
            .all(|(_, c, t)| *t <= max && *c <= max + FRAME_DURATION)
    );
    let ceiling = codec_correlation(src);
    let corr = r.vs_source(src, 0..n);
    let (same, snr) = r.vs_clean(src, 0..n);
    eprintln!(
        "impaired: vs source {corr} (codec alone {ceiling}), vs clean decode {same} / {snr} dB"
    );
    assert!(corr > 0.65 && same > 0.7, "{corr}, {same}, {snr} dB");
    assert_eq!(r.allocations, 0, "push/pop allocated");
}

#[test]
fn one_second_outage_goes_silent_after_the_limit_and_recovers_within_a_few_ticks() {
    let src = source();
    let blackout = NetemConfig {
        loss: 1.0,
        ..clean()
    };
    let (from, to) = (150, 200);
    let r = run(src, clean(), &[(from, blackout), (to, clean())]);
    let n = src.frames.len();
    r.check_timeline(n + 30);
    let i = r
        .outs
        .iter()
        .position(|o| *o == Out::Play(from - 1))
        .unwrap();
    let limit = (JitterConfig::default().max_concealment.as_millis() / 20) as usize;
    for (k, o) in r.outs[i + 1..=i + (to - from)].iter().enumerate() {
        let f = from + k;
        if k < limit {
            assert!(
                matches!(o, Out::Lost { frame, .. } if *frame == f),
                "{k}: {o:?}"
            );
        } else {
            assert_eq!(*o, Out::LostSilent(f));
        }
    }
    // The first packet after the outage plays within a few ticks of its arrival.
    let j = r.outs.iter().position(|o| *o == Out::Play(to)).unwrap();
    let arrived = r.arrived_tick[to].unwrap();
    assert!(
        j >= arrived && j - arrived <= 2,
        "arrived {arrived}, played {j}"
    );
    assert_eq!(r.played(), (0..from).chain(to..n).collect::<Vec<_>>());
    let s = &r.stats;
    assert_eq!((s.resyncs, s.late, s.dropped), (0, 0, 0));
    assert_eq!(r.netem_lost, (to - from) as u64);
    // The decoded audio after the outage is back to the source.
    let (before, _) = r.vs_clean(src, 0..from);
    let (after, snr) = r.vs_clean(src, to + 3..n);
    let speech = r.vs_source(src, to + 3..n);
    eprintln!(
        "outage: vs clean decode before {before}, after {after} ({snr} dB); vs source after {speech}"
    );
    assert!(
        before > 0.999 && after > 0.95,
        "before {before}, after {after}"
    );
    assert!(speech > 0.8, "{speech}");
    // The outage itself is concealment fading into digital silence.
    let silent = &r.track[(from + limit) * FRAME_SAMPLES..to * FRAME_SAMPLES];
    assert!(silent.iter().all(|s| *s == 0.0));
    assert_eq!(r.allocations, 0, "push/pop allocated");
}
