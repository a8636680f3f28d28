//! A loaded shard thread allocates and frees nothing after warm-up: 1,000 ticks of a real
//! [`ShardPool`] shard counted by a global allocator.
//!
//! The scene: three rooms on one shard — speakers and listeners on call legs fed real Opus
//! (`media/caller-48k.wav`, `media/caller2-48k.wav`) through their input queues by a
//! transport thread with packet loss (every 7th packet of each speaker skipped), a looping
//! prompt, a recorder tap and an application endpoint; every output queue drained. During the
//! measured ticks the test also adds and removes members through the control queue, so the
//! control and retire paths are measured too.
//!
//! Only the shard thread is counted: the pool's tick observer (a plain `fn` called on the
//! shard thread after every tick) sets a const thread-local "armed" flag after the warm-up
//! ticks and clears it after the measured ones; the allocator counts allocations,
//! reallocations and frees made while the calling thread's flag is set.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use mediabot::adapters::shard::{ShardConfig, ShardId, ShardPool};
use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusDecoder, OpusEncoder};
use mediabot::media::endpoint::AppAudio;
use mediabot::media::frame::{AudioFrame, FRAME_DURATION, RTP_TICKS_PER_FRAME};
use mediabot::media::leg::{CallLegConfig, LegPort};
use mediabot::media::member::Member;
use mediabot::media::packet::{OpusPacket, RtpMeta, RtpPacket};
use mediabot::media::prompt::{PlayMode, Prompt};
use mediabot::media::record_queue::RecordEvents;
use mediabot::media::recorder::RecorderConfig;
use mediabot::media::room::{MemberId, Room, RoomConfig, RoomId};

const WARMUP_TICKS: u64 = 100;
const MEASURED_TICKS: u64 = 1_000;

#[global_allocator]
static GLOBAL: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;

// ---- the shard-thread observer ----

static MEASURED: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicBool = AtomicBool::new(false);
static OBSERVED_ON_SHARD: AtomicBool = AtomicBool::new(false);

/// Called on the shard thread after each tick; `ticks` counts from 1.
fn observe(_shard: ShardId, ticks: u64) {
    if ticks == WARMUP_TICKS {
        OBSERVED_ON_SHARD.store(true, SeqCst);
        counting_alloc::count_this_thread(true);
    } else if ticks > WARMUP_TICKS && ticks <= WARMUP_TICKS + MEASURED_TICKS {
        MEASURED.fetch_add(1, SeqCst);
        if ticks == WARMUP_TICKS + MEASURED_TICKS {
            counting_alloc::count_this_thread(false);
            DONE.store(true, SeqCst);
        }
    }
}

// ---- the far ends ----

fn media(name: &str) -> String {
    format!("{}/media/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn encode_wav(name: &str) -> Vec<OpusPacket> {
    let mut encoder =
        OpusEncoder::new(CodecBackend::default(), &EncoderConfig::default()).expect("encoder");
    mediabot::media::wav::media_frames(name)
        .expect("media file present")
        .iter()
        .map(|frame| {
            let mut p = OpusPacket::EMPTY;
            encoder.encode(frame, &mut p).expect("encode");
            p
        })
        .collect()
}

/// A remote participant: sends `voice` (looping; silence packets for listeners), loses every
/// 7th packet when it speaks, and decodes everything it gets back.
struct Far {
    port: LegPort,
    voice: Arc<Vec<OpusPacket>>,
    lossy: bool,
    next: usize,
    seq: u16,
    ts: u32,
    ssrc: u32,
    sent: u64,
    lost: u64,
    received: u64,
    decoder: OpusDecoder,
    heard_energy: f64,
}

impl Far {
    fn new(id: u64, port: LegPort, voice: Arc<Vec<OpusPacket>>, lossy: bool) -> Self {
        Self {
            port,
            voice,
            lossy,
            next: 0,
            seq: 7,
            ts: 1_000,
            ssrc: 0xf000 + id as u32,
            sent: 0,
            lost: 0,
            received: 0,
            decoder: OpusDecoder::new(CodecBackend::default()).expect("decoder"),
            heard_energy: 0.0,
        }
    }

    fn step(&mut self, now: Instant) {
        let payload = self.voice[self.next % self.voice.len()];
        self.next += 1;
        if self.lossy && self.next.is_multiple_of(7) {
            self.lost += 1;
        } else {
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
            if self.port.push(packet) {
                self.sent += 1;
            }
        }
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(RTP_TICKS_PER_FRAME);
        let mut frame = AudioFrame::silence();
        while let Some(p) = self.port.pop() {
            self.received += 1;
            if self
                .decoder
                .decode(p.payload.as_slice(), &mut frame)
                .is_ok()
            {
                self.heard_energy += f64::from(frame.energy());
            }
        }
    }
}

/// What the transport thread looks after.
struct Transport {
    fars: Vec<Far>,
    recorder: RecordEvents,
    app: AppAudio,
    record_events: u64,
    app_frames: u64,
}

impl Transport {
    /// Feeds and drains on the 20 ms grid until `stop`.
    fn run(mut self, stop: Arc<AtomicBool>) -> Self {
        let start = Instant::now();
        let mut k = 0u32;
        while !stop.load(SeqCst) {
            let now = Instant::now();
            for far in &mut self.fars {
                far.step(now);
            }
            while self.recorder.pop().is_ok() {
                self.record_events += 1;
            }
            while self.app.recv().is_some() {
                self.app_frames += 1;
            }
            k += 1;
            let next = start + FRAME_DURATION * k;
            thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        self
    }
}

fn room(id: u64) -> Room {
    let config = RoomConfig {
        max_members: 8,
        ..RoomConfig::default()
    };
    Room::new(RoomId(id), config).expect("room")
}

fn leg(id: u64) -> (Box<Member>, LegPort) {
    let config = CallLegConfig {
        ssrc: 0x100 + id as u32,
        ..CallLegConfig::default()
    };
    Member::call_leg_with_port(MemberId(id), &config, 64).expect("leg")
}

#[test]
fn loaded_shard_thread_allocates_nothing_after_warm_up() {
    let speech1 = Arc::new(encode_wav("caller-48k.wav"));
    let speech2 = Arc::new(encode_wav("caller2-48k.wav"));
    let silence = {
        let mut enc =
            OpusEncoder::new(CodecBackend::default(), &EncoderConfig::default()).expect("enc");
        let mut p = OpusPacket::EMPTY;
        enc.encode(&AudioFrame::silence(), &mut p).expect("encode");
        Arc::new(vec![p])
    };
    let prompt = Arc::new(
        Prompt::from_wav_file(
            media("greeting-16k.wav"),
            CodecBackend::default(),
            &EncoderConfig::default(),
        )
        .expect("prompt"),
    );

    // Room 1: two speakers, one listener, a prompt, a recorder of everything.
    // Room 2: one speaker, one listener, an application endpoint.
    // Room 3: one speaker, three listeners (they share one encode).
    let plan: [(u64, &[(u64, bool)]); 3] = [
        (1, &[(11, true), (12, true), (13, false)]),
        (2, &[(21, true), (22, false)]),
        (3, &[(31, true), (32, false), (33, false), (34, false)]),
    ];
    let mut rooms = Vec::new();
    let mut fars = Vec::new();
    for (room_id, legs) in plan {
        let mut r = room(room_id);
        for &(id, speaks) in legs {
            let (member, port) = leg(id);
            r.add_member(member).expect("slot");
            let voice = match (speaks, id % 2) {
                (false, _) => Arc::clone(&silence),
                (true, 0) => Arc::clone(&speech2),
                (true, _) => Arc::clone(&speech1),
            };
            fars.push(Far::new(id, port, voice, speaks));
        }
        rooms.push(r);
    }
    rooms[0]
        .add_member(Member::prompt(
            MemberId(19),
            Arc::clone(&prompt),
            PlayMode::Loop,
        ))
        .expect("slot");
    let recorder_config = RecorderConfig {
        legs: vec![MemberId(11), MemberId(12), MemberId(13)],
        mix: true,
        capacity: 256,
    };
    let (tap, recorder) = Member::recorder(MemberId(18), &recorder_config);
    rooms[0].add_member(tap).expect("slot");
    let (endpoint, app) = Member::app_endpoint(MemberId(29), 16).expect("endpoint");
    rooms[1].add_member(endpoint).expect("slot");

    // Members that join and leave during the measured ticks (built here, off the shard).
    let (late_leg, _late_port) = leg(35);

    let pool: ShardPool = ShardPool::start(ShardConfig {
        shards: 1,
        tick_observer: Some(observe),
        ..ShardConfig::default()
    })
    .expect("pool");
    for r in rooms {
        pool.add_room(r).map_err(|r| r.error).expect("room placed");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let transport = {
        let t = Transport {
            fars,
            recorder,
            app,
            record_events: 0,
            app_frames: 0,
        };
        let stop = Arc::clone(&stop);
        thread::spawn(move || t.run(stop))
    };

    // Control while armed: one member joins room 3, one leaves room 2.
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let give_up = Instant::now() + Duration::from_secs(120);
        while !cond() {
            assert!(Instant::now() < give_up, "never happened: {what}");
            thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for("measurement half way", &|| {
        MEASURED.load(SeqCst) >= MEASURED_TICKS / 2
    });
    pool.add_member(RoomId(3), late_leg)
        .map_err(|r| r.error)
        .expect("member sent");
    pool.remove_member(RoomId(2), MemberId(22))
        .expect("removal sent");
    let applied_before = pool.stats()[0].control_applied;
    wait_for("control applied", &|| {
        pool.stats()[0].control_applied >= applied_before + 2
    });
    wait_for("measurement done", &|| DONE.load(SeqCst));

    let stats = pool.stats().remove(0);
    stop.store(true, SeqCst);
    let transport = transport.join().expect("transport thread");
    pool.shutdown().expect("clean shutdown");
    let counted = counting_alloc::shared();

    // The measurement really ran on the shard thread, over the ticks it claims.
    assert!(OBSERVED_ON_SHARD.load(SeqCst));
    assert_eq!(MEASURED.load(SeqCst), MEASURED_TICKS);
    assert!(stats.ticks >= WARMUP_TICKS + MEASURED_TICKS);
    assert_eq!(stats.rooms, 3);
    assert_eq!(stats.members_rejected + stats.unknown_targets, 0);
    // Audio really flowed both ways, with loss.
    let sent: u64 = transport.fars.iter().map(|f| f.sent).sum();
    let lost: u64 = transport.fars.iter().map(|f| f.lost).sum();
    let received: u64 = transport.fars.iter().map(|f| f.received).sum();
    eprintln!(
        "shard: {} ticks, tick cost p50 {:?} p99 {:?} max {:?}, {} late, {} missed; \
         {sent} packets in, {lost} lost, {received} out, {} recorder events, {} app frames, \
         rt priority {}; armed allocations {} frees {}",
        stats.ticks,
        stats.tick_cost.p50(),
        stats.tick_cost.p99(),
        stats.tick_cost.max(),
        stats.late_ticks,
        stats.deadline_misses,
        transport.record_events,
        transport.app_frames,
        stats.rt_priority,
        counted.allocs,
        counted.frees,
    );
    assert!(sent > 5 * MEASURED_TICKS, "sent {sent}");
    assert!(lost > MEASURED_TICKS / 2, "lost {lost}");
    assert!(received > 3 * MEASURED_TICKS, "received {received}");
    let listener = transport
        .fars
        .iter()
        .find(|f| f.port_is(13))
        .expect("leg 13");
    assert!(
        listener.heard_energy > 0.01,
        "the listener heard the speakers: {}",
        listener.heard_energy
    );
    assert!(transport.record_events > MEASURED_TICKS);
    assert!(transport.app_frames > MEASURED_TICKS / 2);
    // The point of it all.
    assert_eq!(
        counted.allocs, 0,
        "allocations on the shard thread after warm-up"
    );
    assert_eq!(counted.frees, 0, "frees on the shard thread after warm-up");
    // The shared counter works: a thread that switched counting on is seen.
    counting_alloc::count_this_thread(true);
    drop(std::hint::black_box(vec![1u8; 64]));
    counting_alloc::count_this_thread(false);
    let after = counting_alloc::shared().since(counted);
    assert!(after.allocs > 0 && after.frees > 0, "{after:?}");
}

impl Far {
    fn port_is(&self, id: u64) -> bool {
        self.ssrc == 0xf000 + id as u32
    }
}
