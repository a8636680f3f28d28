//! Cost of one full shard tick over N one-call rooms: `tick/calls/1`, `tick/calls/10`,
//! `tick/calls/100`.
//!
//! Each call is its own [`Room`] with one call leg fed real Opus speech
//! (`media/caller-48k.wav`, one packet per tick: one decode) and a looping prompt mixed in,
//! so the caller hears the prompt (one encode; ticks where the caller is silent let the
//! prompt play alone from its pre-encoded packets, as the room does in production). The
//! prompt is full-band speech (`media/caller2-48k.wav`) rather than the 16 kHz greeting: a
//! band-limited prompt is cheaper to encode than the speech `codec/encode_20ms/c5` encodes,
//! which would flatter the ratio below. One iteration is [`ShardCore::tick`] — the exact call the shard
//! thread makes each 20 ms — over all N rooms, with virtual time advancing 20 ms per
//! iteration and no sleeping. Feeding the legs' input queues and draining their output
//! queues (the transport's job, on other threads in production) happens outside the timed
//! region.
//!
//! Budget (issue 3): `tick/calls/100` ÷ 100 ÷ (`codec/decode_20ms` + `codec/encode_20ms/c5`)
//! ≤ 1.15. Run both benches in one session:
//! `cargo bench --bench codec --bench tick -- 'codec/decode_20ms|codec/encode_20ms/c5|tick/'`.
//! The backend is the build's: opus-rs by default, libopus with `--features libopus`.
//!
//! Because wall-clock figures on a shared machine swing with load, each size also prints a
//! load-independent cross-check: the benchmarking thread's CPU time (`/proc/thread-self/
//! schedstat`) per call, best of 5 passes, against one decode plus one complexity-5 encode of
//! the same speech measured the same way in the same process.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mediabot::adapters::shard::{Control, ShardConfig, ShardCore, ShardId};
use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusDecoder, OpusEncoder};
use mediabot::media::frame::{AudioFrame, FRAME_DURATION, FRAME_SAMPLES, RTP_TICKS_PER_FRAME};
use mediabot::media::leg::{CallLegConfig, LegPort};
use mediabot::media::member::{Member, MemberKind};
use mediabot::media::packet::{OpusPacket, RtpMeta, RtpPacket};
use mediabot::media::prompt::{PlayMode, Prompt};
use mediabot::media::room::{MemberId, Room, RoomConfig, RoomId, RoomStats};

/// The backend this build benches.
fn backend() -> CodecBackend {
    #[cfg(feature = "libopus")]
    return CodecBackend::Libopus;
    #[cfg(not(feature = "libopus"))]
    return CodecBackend::OpusRs;
}

fn media(name: &str) -> String {
    format!("{}/media/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `media/caller-48k.wav` encoded once at the default settings: what callers send.
fn speech_packets(backend: CodecBackend) -> Vec<OpusPacket> {
    let mut reader = hound::WavReader::open(media("caller-48k.wav")).expect("media file present");
    let pcm: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("valid wav"))
        .collect();
    let mut encoder = OpusEncoder::new(backend, &EncoderConfig::default()).expect("encoder");
    pcm.chunks_exact(FRAME_SAMPLES)
        .map(|c| {
            let mut frame = AudioFrame::silence();
            frame.copy_from_i16(c);
            let mut p = OpusPacket::EMPTY;
            encoder.encode(&frame, &mut p).expect("encode speech");
            p
        })
        .collect()
}

/// The far end of one call: sends the next speech packet each tick, drains what it gets.
struct Caller {
    port: LegPort,
    /// Where in the speech this caller starts: calls differ, as real ones do (identical
    /// streams would let caches and branch predictors flatter the per-call cost).
    offset: usize,
    seq: u16,
    ts: u32,
    ssrc: u32,
    received: u64,
}

impl Caller {
    fn send(&mut self, payload: OpusPacket, now: Instant) {
        let packet = RtpPacket {
            meta: RtpMeta {
                seq: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
                marker: false,
                audio_level: None,
            },
            payload,
            arrival: now,
        };
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(RTP_TICKS_PER_FRAME);
        let _ = self.port.push(packet);
    }

    fn drain(&mut self) {
        while self.port.pop().is_some() {
            self.received += 1;
        }
    }
}

/// A shard core holding `n` one-call rooms, its callers, and the speech they send.
struct Scene {
    core: ShardCore<Room>,
    callers: Vec<Caller>,
    speech: Vec<OpusPacket>,
    next: usize,
    now: Instant,
}

impl Scene {
    fn new(n: usize) -> Self {
        let backend = backend();
        let encoder = EncoderConfig::default();
        let config = ShardConfig {
            max_rooms_per_shard: n,
            control_capacity: n,
            ..ShardConfig::default()
        };
        let (mut core, mut queues) = ShardCore::<Room>::new(ShardId(0), &config);
        let prompt = Arc::new(
            Prompt::from_wav_file(media("caller2-48k.wav"), backend, &encoder).expect("prompt"),
        );
        let mut callers = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let room_config = RoomConfig {
                max_members: 2,
                max_speakers: 2,
                backend,
                encoder,
                ..RoomConfig::default()
            };
            let mut room = Room::new(RoomId(i), room_config).expect("room");
            let leg_config = CallLegConfig {
                ssrc: 0x5000 + i as u32,
                backend,
                encoder,
                ..CallLegConfig::default()
            };
            let (leg, port) =
                Member::call_leg_with_port(MemberId(1), &leg_config, 8).expect("call leg");
            room.add_member(leg).expect("room has a slot for the leg");
            let mut player = Member::prompt(MemberId(2), Arc::clone(&prompt), PlayMode::Loop);
            // Each room's prompt starts at a different place too.
            if let MemberKind::Prompt(p) = player.kind_mut() {
                for _ in 0..(i as usize * 53) % prompt.len_frames() {
                    p.advance();
                }
            }
            room.add_member(player)
                .expect("room has a slot for the prompt");
            queues
                .control
                .push(Control::AddRoom(Box::new(room)))
                .expect("control queue holds n rooms");
            callers.push(Caller {
                port,
                offset: i as usize * 37,
                seq: 1,
                ts: 0,
                ssrc: 0x9000 + i as u32,
                received: 0,
            });
        }
        while core.has_control() {
            core.apply_control();
        }
        assert_eq!(core.room_count(), n);
        let mut scene = Self {
            core,
            callers,
            speech: speech_packets(backend),
            next: 0,
            now: Instant::now(),
        };
        // Warm-up: fill the jitter buffers and settle the selection.
        for _ in 0..50 {
            scene.tick();
        }
        scene
    }

    /// One tick with its transport work around it; returns the time of the tick alone.
    fn tick(&mut self) -> Duration {
        let len = self.speech.len();
        for c in &mut self.callers {
            c.send(self.speech[(self.next + c.offset) % len], self.now);
        }
        self.next = (self.next + 1) % len;
        let start = Instant::now();
        let ticked = self.core.tick(black_box(self.now));
        let cost = start.elapsed();
        assert_eq!(ticked, self.callers.len());
        for c in &mut self.callers {
            c.drain();
        }
        self.now += FRAME_DURATION;
        cost
    }

    /// Room counters summed over the shard.
    fn totals(&self) -> RoomStats {
        let mut t = RoomStats::default();
        for r in self.core.rooms() {
            let s = r.stats();
            t.ticks += s.ticks;
            t.decodes += s.decodes;
            t.concealments += s.concealments;
            t.encodes += s.encodes;
            t.passthrough_ticks += s.passthrough_ticks;
            t.packets_sent += s.packets_sent;
        }
        t
    }
}

/// CPU time consumed so far by the calling thread (Linux `schedstat`), if available.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Least CPU time per call of `f` over `passes` passes of `calls` calls each (best pass:
/// what the work costs when nothing else preempts it).
fn best_cpu_per_call(passes: usize, calls: usize, mut f: impl FnMut()) -> Option<Duration> {
    let mut best: Option<Duration> = None;
    for _ in 0..passes {
        let start = thread_cpu()?;
        for _ in 0..calls {
            f();
        }
        let per = (thread_cpu()? - start) / calls as u32;
        best = Some(best.map_or(per, |b| b.min(per)));
    }
    best
}

/// Load-independent cross-check of the budget: CPU time per call of one decode plus one
/// complexity-5 encode of the same speech, in this process.
fn codec_cpu_per_call() -> Option<Duration> {
    let backend = backend();
    let packets = speech_packets(backend);
    let mut decoder = OpusDecoder::new(backend).expect("decoder");
    let mut encoder = OpusEncoder::new(backend, &EncoderConfig::default()).expect("encoder");
    let mut frame = AudioFrame::silence();
    let mut out = OpusPacket::EMPTY;
    let mut i = 0;
    best_cpu_per_call(5, packets.len(), || {
        decoder
            .decode(black_box(packets[i % packets.len()].as_slice()), &mut frame)
            .expect("decode");
        encoder.encode(black_box(&frame), &mut out).expect("encode");
        i += 1;
    })
}

fn bench(c: &mut Criterion) {
    eprintln!("tick bench backend: {}", backend().name());
    let codec_cpu = codec_cpu_per_call();
    let mut group = c.benchmark_group("tick");
    for n in [1usize, 10, 100] {
        let mut scene = Scene::new(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("calls", n), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| scene.tick()).sum());
        });
        let t = scene.totals();
        let received: u64 = scene.callers.iter().map(|c| c.received).sum();
        eprintln!(
            "tick/calls/{n}: per room-tick {:.3} decodes, {:.3} concealments, {:.3} encodes, \
             {:.3} prompt-alone passthrough, {:.3} packets sent (callers got {received})",
            t.decodes as f64 / t.ticks as f64,
            t.concealments as f64 / t.ticks as f64,
            t.encodes as f64 / t.ticks as f64,
            t.passthrough_ticks as f64 / t.ticks as f64,
            t.packets_sent as f64 / t.ticks as f64,
        );
        assert!(
            t.decodes > 0 && t.encodes > 0 && received > 0,
            "audio must flow"
        );
        let passes = if n >= 100 { 30 } else { 200 };
        let tick_cpu = best_cpu_per_call(5, passes, || {
            scene.tick();
        });
        if let (Some(tick), Some(codec)) = (tick_cpu, codec_cpu) {
            // Includes the feed/drain around each tick (untimed by criterion): a slight
            // overestimate of the shard's own cost.
            let per_call = tick / n as u32;
            eprintln!(
                "tick/calls/{n}: CPU per call {per_call:?} (best of 5 passes) vs decode + \
                 encode c5 {codec:?} -> ratio {:.3}",
                per_call.as_secs_f64() / codec.as_secs_f64()
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
