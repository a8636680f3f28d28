//! Cost of one room tick: `mixer/room/50x3/shared`, `mixer/room/50x3/naive`, `mixer/room/2x1`.
//!
//! - `50x3`: 50 call legs, 3 of them talking real speech (the three files in `media/`, each
//!   looping); the other 47 send Opus silence marked RFC 6464 level 127, as a browser does,
//!   so the room skips their decodes. `shared` is the room's default (speakers get their own
//!   mix-minus encode, all listeners share one encode); `naive` sets
//!   `RoomConfig::shared_encode = false`, one encode per listener as Janus does — the same code
//!   path otherwise.
//! - `2x1`: a two-party call, one side talking.
//!
//! One iteration = one 20 ms tick: push that tick's packet into every leg's input queue, run
//! `Room::tick`, drain every leg's output queue. Time is virtual (+20 ms per iteration).
//! Budget (issue 3): `50x3/shared` ÷ `50x3/naive` ≤ 0.30.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusEncoder};
use mediabot::media::frame::{AudioFrame, FRAME_SAMPLES, RTP_TICKS_PER_FRAME};
use mediabot::media::leg::{CallLegConfig, LegPort};
use mediabot::media::member::Member;
use mediabot::media::packet::{AudioLevel, OpusPacket, RtpMeta, RtpPacket};
use mediabot::media::resample::Resampler;
use mediabot::media::room::{MemberId, Room, RoomConfig, RoomId};

/// The backend this build benches.
fn backend() -> CodecBackend {
    #[cfg(feature = "libopus")]
    return CodecBackend::Libopus;
    #[cfg(not(feature = "libopus"))]
    return CodecBackend::OpusRs;
}

/// A media file as Opus packets (what a talking client sends), with RFC 6464 levels.
fn talk(file: &str, backend: CodecBackend) -> Vec<(OpusPacket, AudioLevel)> {
    let path = format!("{}/media/{file}", env!("CARGO_MANIFEST_DIR"));
    let mut reader = hound::WavReader::open(&path).expect("media file present");
    let rate = reader.spec().sample_rate;
    let mut pcm: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| f32::from(s.expect("valid wav")) / 32768.0)
        .collect();
    if rate != 48_000 {
        pcm = Resampler::new(rate, 48_000).expect("ratio").process(&pcm);
    }
    let mut enc = OpusEncoder::new(backend, &EncoderConfig::default()).expect("encoder");
    pcm.chunks_exact(FRAME_SAMPLES)
        .map(|c| {
            let mut f = AudioFrame::silence();
            f.samples.copy_from_slice(c);
            let mut p = OpusPacket::EMPTY;
            enc.encode(&f, &mut p).expect("encode");
            let level = AudioLevel {
                level: (-f.level_dbov()).clamp(0.0, 127.0) as u8,
                voice: f.level_dbov() > -50.0,
            };
            (p, level)
        })
        .collect()
}

/// A room plus the far ends of its legs, ticked in virtual time.
struct Scenario {
    room: Room,
    ports: Vec<LegPort>,
    voices: Vec<Vec<(OpusPacket, AudioLevel)>>,
    silence: OpusPacket,
    now: Instant,
    tick: usize,
    seq: u16,
}

impl Scenario {
    fn new(members: usize, talkers: usize, shared_encode: bool) -> Self {
        let backend = backend();
        let config = RoomConfig {
            max_members: members,
            max_speakers: 3,
            backend,
            shared_encode,
            ..RoomConfig::default()
        };
        let mut room = Room::new(RoomId(1), config).expect("room");
        let mut ports = Vec::new();
        for id in 0..members {
            let leg = CallLegConfig {
                ssrc: 0x100 + id as u32,
                backend,
                ..CallLegConfig::default()
            };
            let (member, port) =
                Member::call_leg_with_port(MemberId(id as u64), &leg, 8).expect("leg");
            room.add_member(member).expect("capacity");
            ports.push(port);
        }
        let files = ["caller-48k.wav", "caller2-48k.wav", "greeting-16k.wav"];
        let voices = files[..talkers].iter().map(|f| talk(f, backend)).collect();
        let mut enc = OpusEncoder::new(backend, &EncoderConfig::default()).expect("encoder");
        let mut silence = OpusPacket::EMPTY;
        enc.encode(&AudioFrame::silence(), &mut silence)
            .expect("encode");
        let mut s = Self {
            room,
            ports,
            voices,
            silence,
            now: Instant::now(),
            tick: 0,
            seq: 0,
        };
        // Warm up: fill jitter buffers, settle speaker selection.
        for _ in 0..100 {
            s.step();
        }
        s
    }

    /// One tick: push every leg's packet, tick the room, drain every output.
    fn step(&mut self) -> usize {
        for (i, port) in self.ports.iter_mut().enumerate() {
            let (payload, level) = match self.voices.get(i) {
                Some(v) => v[self.tick % v.len()],
                None => (
                    self.silence,
                    AudioLevel {
                        level: 127,
                        voice: false,
                    },
                ),
            };
            let packet = RtpPacket {
                meta: RtpMeta {
                    seq: self.seq,
                    timestamp: (self.seq as u32).wrapping_mul(RTP_TICKS_PER_FRAME),
                    ssrc: 0x9000 + i as u32,
                    marker: false,
                    audio_level: Some(level),
                },
                payload,
                arrival: self.now,
            };
            port.push(packet);
        }
        self.room.tick(self.now);
        let mut out = 0;
        for port in &mut self.ports {
            while let Some(p) = port.pop() {
                out += p.payload.len();
            }
        }
        self.tick += 1;
        self.seq = self.seq.wrapping_add(1);
        self.now += Duration::from_millis(20);
        out
    }
}

fn bench(c: &mut Criterion) {
    eprintln!("mixer bench backend: {}", backend());
    let mut group = c.benchmark_group("mixer/room");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    for (id, members, talkers, shared) in [
        ("50x3/shared", 50, 3, true),
        ("50x3/naive", 50, 3, false),
        ("2x1", 2, 1, true),
    ] {
        let mut s = Scenario::new(members, talkers, shared);
        group.bench_function(id, |b| b.iter(|| black_box(s.step())));
        let st = s.room.stats();
        eprintln!(
            "{id}: {} ticks, {:.2} encodes/tick ({} shared, {} personal), {:.2} decodes/tick, \
             {:.2} skipped decodes/tick, {} dropped",
            st.ticks,
            st.encodes as f64 / st.ticks as f64,
            st.shared_encodes,
            st.personal_encodes,
            st.decodes as f64 / st.ticks as f64,
            st.skipped_decodes as f64 / st.ticks as f64,
            st.output_dropped,
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
