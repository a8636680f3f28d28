//! Call recording end to end on virtual time: real speech, Opus-encoded, through a seeded
//! impaired network (10 % loss, 5 % reorder, ±50 ms jitter) into a call leg of a `Room` with a
//! recorder tap, written by `RecordingWriter` to a temporary directory.
//!
//! What must hold: the Ogg file parses and every page CRC checks; granule positions advance
//! exactly 960 per tick with no missing or duplicated frame; received packets are in the file
//! byte for byte, each once, in order; the decoded file correlates with the source speech;
//! the sidecar's counts match the room's leg and jitter counters; the WAV has exactly
//! ticks × 960 samples. Recorder-queue overflow is counted and filled; a leg whose RTP stops
//! and that then leaves the room is marked silent, then absent, and the timeline stays exact.

mod room_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use mediabot::adapters::recording::{
    RecordingOptions, RecordingSidecar, RecordingSummary, RecordingWriter, StreamKind,
};

use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusDecoder, OpusEncoder};
use mediabot::media::frame::{AudioFrame, FRAME_SAMPLES, RTP_TICKS_PER_FRAME};
use mediabot::media::leg::LegPort;
use mediabot::media::member::{Member, MemberKind};
use mediabot::media::ogg_opus::{OggOpusFile, PLC_PACKET, SILENCE_PACKET};
use mediabot::media::packet::{OpusPacket, RtpMeta, RtpPacket};
use mediabot::media::recorder::RecorderConfig;
use mediabot::media::room::{MemberId, Room, RoomConfig, RoomId};
use mediabot::netem::{Netem, NetemConfig};
use room_support::{TICK, correlation_at, find_lag, leg_config, speech};

const RECORDER: MemberId = MemberId(90);

/// A fresh, empty directory under the system temp dir, removed on drop unless
/// `MEDIABOT_KEEP_RECORDINGS` is set (to play the files with other tools).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("mediabot-recording-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("MEDIABOT_KEEP_RECORDINGS").is_some() {
            println!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A talker's side of a leg: encodes speech into RTP packets (in-band FEC on, 10 % expected).
struct Talker {
    encoder: OpusEncoder,
    seq: u16,
    ts: u32,
    ssrc: u32,
    sent: Vec<OpusPacket>,
}

impl Talker {
    fn new(ssrc: u32) -> Self {
        let config = EncoderConfig {
            inband_fec: true,
            expected_loss_pct: 10,
            ..EncoderConfig::default()
        };
        Self {
            encoder: OpusEncoder::new(CodecBackend::default(), &config).expect("encoder"),
            seq: 65_500,
            ts: u32::MAX - 10 * RTP_TICKS_PER_FRAME,
            ssrc,
            sent: Vec::new(),
        }
    }

    fn packet(&mut self, frame: &AudioFrame, now: Instant) -> RtpPacket {
        let mut payload = OpusPacket::EMPTY;
        self.encoder.encode(frame, &mut payload).expect("encode");
        self.sent.push(payload);
        let packet = RtpPacket {
            meta: RtpMeta {
                seq: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
                marker: self.sent.len() == 1,
                audio_level: None,
            },
            payload,
            arrival: now,
        };
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(RTP_TICKS_PER_FRAME);
        packet
    }
}

fn room() -> Room {
    Room::new(RoomId(1), RoomConfig::default()).expect("room")
}

fn leg(id: u64) -> (Box<Member>, LegPort) {
    Member::call_leg_with_port(MemberId(id), &leg_config(id), 64).expect("leg")
}

fn options() -> RecordingOptions {
    RecordingOptions {
        started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        call_id: Some("call-1".into()),
        ..RecordingOptions::default()
    }
}

fn tap_ticks(room: &Room) -> u64 {
    match room.member(RECORDER).map(Member::kind) {
        Some(MemberKind::Recorder(tap)) => tap.ticks(),
        _ => panic!("recorder in the room"),
    }
}

fn tap_dropped(room: &Room) -> u64 {
    match room.member(RECORDER).map(Member::kind) {
        Some(MemberKind::Recorder(tap)) => tap.counters().dropped,
        _ => panic!("recorder in the room"),
    }
}

fn sidecar(summary: &RecordingSummary) -> RecordingSidecar {
    let bytes = std::fs::read(&summary.sidecar).expect("sidecar written");
    serde_json::from_slice(&bytes).expect("sidecar parses")
}

/// Parses an Ogg Opus file (CRCs, page order, headers) and checks its timeline: one 20 ms
/// packet per tick, granule positions 960, 1920, … with no gap or repeat.
fn read_exact_ogg(path: &Path, ticks: u64) -> OggOpusFile {
    let bytes = std::fs::read(path).expect("ogg written");
    let file = OggOpusFile::parse(&bytes).expect("valid Ogg Opus with good CRCs");
    assert_eq!(file.head.channels, 1);
    assert_eq!(file.head.pre_skip, 312);
    assert_eq!(file.vendor, "mediabot");
    assert_eq!(file.packets.len() as u64, ticks, "one packet per tick");
    for (i, p) in file.packets.iter().enumerate() {
        assert_eq!(p.granule, (i as u64 + 1) * 960, "granule of packet {i}");
    }
    let mut last = 0;
    for &g in &file.page_granules {
        assert!(
            g > last && (g - last) % 960 == 0,
            "page granules {last} -> {g}"
        );
        last = g;
    }
    assert_eq!(last, ticks * 960);
    file
}

fn wav_samples(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).expect("wav written");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 48_000, 16)
    );
    reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect()
}

fn decode_all(file: &OggOpusFile) -> Vec<f32> {
    let mut dec = OpusDecoder::new(CodecBackend::default()).expect("decoder");
    let mut frame = AudioFrame::silence();
    let mut out = Vec::with_capacity(file.packets.len() * FRAME_SAMPLES);
    for p in &file.packets {
        dec.decode(&p.data, &mut frame)
            .expect("every packet in the file decodes");
        out.extend_from_slice(&frame.samples);
    }
    out
}

#[test]
fn speech_through_an_impaired_network_is_recorded_frame_exact() {
    let tmp = TempDir::new("impaired");
    let voice = speech("caller-48k.wav", 485);
    let ticks = voice.len() as u64 + 25;
    let config = RecorderConfig {
        legs: vec![MemberId(1)],
        mix: true,
        capacity: 64,
    };
    let mut room = room();
    let (member, mut port) = leg(1);
    room.add_member(member).expect("leg joins");
    let (rec, mut events) = Member::recorder(RECORDER, &config);
    room.add_member(rec).expect("recorder joins");
    let mut writer = RecordingWriter::create(&tmp.0, &config, options()).expect("create");
    let mut net = Netem::new(NetemConfig {
        seed: 0x5eed_4ec0,
        latency: Duration::from_millis(60),
        jitter: Duration::from_millis(50),
        loss: 0.10,
        reorder: 0.05,
        reorder_delay: Duration::from_millis(40),
        ..NetemConfig::default()
    });
    let mut talker = Talker::new(0xcafe);

    let t0 = Instant::now();
    for tick in 0..ticks {
        let start = t0 + TICK * tick as u32;
        if let Some(frame) = voice.get(tick as usize) {
            net.handle_packet(start, talker.packet(frame, start));
        }
        // Deliver in 1 ms steps so arrival times carry the network's jitter.
        for ms in 0..20 {
            let now = start + Duration::from_millis(ms);
            while let Some(mut p) = net.poll_packet(now) {
                p.arrival = now;
                assert!(port.push(p), "leg queue has room");
            }
        }
        room.tick(start + Duration::from_millis(19));
        writer.drain(&mut events).expect("write");
    }
    assert_eq!(tap_dropped(&room), 0);
    let summary = writer.finish(Some(tap_ticks(&room))).expect("finish");
    assert_eq!(summary.ticks, ticks);
    assert!(
        summary.integrity.exact && summary.integrity.complete,
        "{:?}",
        summary.integrity
    );

    // The Ogg file: parses, CRCs check, one packet per tick.
    let leg_path = tmp.0.join("leg-1.opus");
    assert_eq!(summary.streams[0].path, leg_path);
    let ogg = read_exact_ogg(&leg_path, ticks);
    assert!(ogg.comments.contains(&"CALL_ID=call-1".to_string()));

    // Received packets are in the file unchanged, each exactly once and in send order.
    let received: Vec<&[u8]> = ogg
        .packets
        .iter()
        .map(|p| p.data.as_slice())
        .filter(|d| *d != PLC_PACKET.as_slice() && *d != SILENCE_PACKET.as_slice())
        .collect();
    let mut next = 0;
    for bytes in &received {
        let at = talker.sent[next..]
            .iter()
            .position(|s| s.as_slice() == *bytes)
            .expect("a sent packet, not repeated, in order");
        next += at + 1;
    }

    // The sidecar agrees with the room's counters.
    let side = sidecar(&summary);
    assert!(side.finished);
    assert_eq!(side.started_at, "2026-11-18T11:06:40.000Z");
    assert_eq!(side.ticks, ticks);
    assert_eq!(side.streams.len(), 2);
    let s = &side.streams[0];
    assert_eq!(
        (s.kind, s.member, s.file.as_str()),
        (StreamKind::Leg, Some(1), "leg-1.opus")
    );
    let c = s.counts;
    let (lc, js) = match room.member(MemberId(1)).map(Member::kind) {
        Some(MemberKind::CallLeg(leg)) => (*leg.counters(), *leg.jitter_stats()),
        _ => panic!("leg in the room"),
    };
    assert_eq!(c.frames, ticks);
    assert_eq!(c.frames, room.stats().ticks);
    assert_eq!(c.received, js.played);
    assert_eq!(
        c.received,
        lc.decodes + lc.skipped_decodes + lc.decode_errors
    );
    assert_eq!(c.received as usize, received.len() + c.invalid as usize);
    assert_eq!(c.fec, lc.fec_decodes);
    assert_eq!(c.concealed, lc.concealments - lc.decode_errors);
    assert_eq!(c.fec + c.concealed, js.concealed);
    assert_eq!(c.silent, lc.silent_ticks);
    assert_eq!(c.silent, js.silence);
    assert_eq!(
        (c.absent, c.gap_filled, c.invalid, c.unexpected),
        (0, 0, 0, 0)
    );
    assert_eq!(c.received + c.fec + c.concealed + c.silent, ticks);
    assert!(c.fec + c.concealed >= 20, "10 % loss shows: {c:?}");
    assert_eq!(s.last_tick, Some(ticks - 1));
    assert_eq!(side.integrity.missing_ticks, 0);
    assert!(side.integrity.complete);

    // The mix: exactly ticks × 960 samples.
    let mix = &side.streams[1];
    assert_eq!((mix.kind, mix.counts.mixed), (StreamKind::Mix, ticks));
    let wav = wav_samples(&tmp.0.join("mix.wav"));
    assert_eq!(wav.len() as u64, ticks * 960);

    // The recorded leg, decoded with our decoder, is the caller's speech.
    let decoded = decode_all(&ogg);
    let source: Vec<f32> = voice.iter().flat_map(|f| f.samples).collect();
    let lag = find_lag(&source, &decoded, 9_600);
    let corr = correlation_at(&source, &decoded, lag);
    println!("leg vs source: lag {lag} samples, correlation {corr:.3}; counts {c:?}");
    assert!(corr >= 0.7, "correlation {corr} at lag {lag}");
    // And the mix the room heard lines up with the recorded leg.
    let mix_f: Vec<f32> = wav.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let mix_corr = correlation_at(&decoded, &mix_f, 0);
    println!("leg file vs mix.wav at lag 0: correlation {mix_corr:.3}");
    assert!(mix_corr >= 0.8, "mix correlation {mix_corr}");
    // The file is about as faithful as what the room itself played (FEC ticks are PLC in it).
    let live = correlation_at(&source, &mix_f, find_lag(&source, &mix_f, 9_600));
    println!("mix.wav vs source: correlation {live:.3}");
    assert!(corr >= live - 0.1, "file {corr} vs live {live}");
}

#[test]
fn recorder_queue_overflow_is_counted_and_filled() {
    let tmp = TempDir::new("overflow");
    let voice = speech("caller-48k.wav", 60);
    let config = RecorderConfig {
        legs: vec![MemberId(1)],
        mix: true,
        capacity: 4, // two ticks of (leg + mix)
    };
    let mut room = room();
    let (member, mut port) = leg(1);
    room.add_member(member).expect("leg joins");
    let (rec, mut events) = Member::recorder(RECORDER, &config);
    room.add_member(rec).expect("recorder joins");
    let mut writer = RecordingWriter::create(&tmp.0, &config, options()).expect("create");
    let mut talker = Talker::new(7);
    let t0 = Instant::now();
    for (tick, frame) in voice.iter().enumerate() {
        let now = t0 + TICK * tick as u32;
        port.push(talker.packet(frame, now));
        room.tick(now);
        // The writer falls behind: it drains every 5th tick only, and not at all at the end.
        if tick % 5 == 4 && tick < 50 {
            writer.drain(&mut events).expect("write");
        }
    }
    writer.drain(&mut events).expect("write");
    let dropped = tap_dropped(&room);
    assert!(dropped > 0);
    let ticks = voice.len() as u64;
    let summary = writer.finish(Some(tap_ticks(&room))).expect("finish");
    assert_eq!(summary.ticks, ticks);
    let side = sidecar(&summary);
    let filled: u64 = side.streams.iter().map(|s| s.counts.gap_filled).sum();
    assert_eq!(filled, dropped, "every dropped event is a filled tick");
    assert_eq!(side.integrity.missing_ticks, dropped);
    assert!(side.integrity.exact && !side.integrity.complete);
    assert!(
        side.integrity.verdict.contains("filled"),
        "{}",
        side.integrity.verdict
    );
    for s in &side.streams {
        assert_eq!(s.counts.frames, ticks);
    }
    read_exact_ogg(&tmp.0.join("leg-1.opus"), ticks);
    assert_eq!(
        wav_samples(&tmp.0.join("mix.wav")).len() as u64,
        ticks * 960
    );
}

#[test]
fn a_leg_that_stops_sending_then_leaves_is_marked_and_the_timeline_stays_exact() {
    let tmp = TempDir::new("stops");
    let ticks = 250u64;
    let voice1 = speech("caller-48k.wav", 100);
    let voice2 = speech("caller2-48k.wav", ticks as usize);
    let config = RecorderConfig {
        legs: vec![MemberId(1), MemberId(2)],
        mix: true,
        capacity: 3 * ticks as usize, // the writer thread may lag: never overflow here
    };
    let mut room = room();
    let (member1, mut port1) = leg(1);
    room.add_member(member1).expect("leg 1 joins");
    let (rec, events) = Member::recorder(RECORDER, &config);
    room.add_member(rec).expect("recorder joins");
    let writer = RecordingWriter::create(&tmp.0, &config, options()).expect("create");
    let handle = writer
        .spawn(events, Duration::from_millis(2))
        .expect("writer thread");
    let (mut talker1, mut talker2) = (Talker::new(1), Talker::new(2));
    let mut port2 = None;
    let t0 = Instant::now();
    for tick in 0..ticks {
        let now = t0 + TICK * tick as u32;
        if tick == 50 {
            // Leg 2 joins late: absent before.
            let (member2, p) = leg(2);
            room.add_member(member2).expect("leg 2 joins");
            port2 = Some(p);
        }
        if tick == 200 {
            // Leg 1 (silent since tick 100) leaves: absent after.
            assert!(room.remove_member(MemberId(1)).is_some());
        }
        if let Some(frame) = voice1.get(tick as usize) {
            port1.push(talker1.packet(frame, now));
        }
        if let Some(p) = port2.as_mut() {
            p.push(talker2.packet(&voice2[tick as usize], now));
        }
        room.tick(now);
    }
    let summary = handle.stop(Some(tap_ticks(&room))).expect("stopped");
    assert_eq!(summary.ticks, ticks);
    assert!(summary.integrity.complete, "{:?}", summary.integrity);
    let side = sidecar(&summary);
    let leg1 = &side.streams[0];
    let c1 = leg1.counts;
    assert_eq!(leg1.member, Some(1));
    assert_eq!(c1.frames, ticks);
    assert_eq!(c1.absent, 50, "ticks 200..250");
    assert_eq!(c1.received, 100, "{c1:?}");
    assert!(
        leg1.first_packet_tick.is_some_and(|t| t < 5),
        "jitter buffer start-up"
    );
    assert!(
        leg1.last_packet_tick
            .is_some_and(|t| (99..110).contains(&t))
    );
    assert!(c1.silent >= 80, "silence after the stream stopped: {c1:?}");
    assert_eq!(
        c1.received + c1.fec + c1.concealed + c1.silent + c1.absent,
        ticks
    );
    let leg2 = &side.streams[1];
    assert_eq!((leg2.member, leg2.counts.frames), (Some(2), ticks));
    assert_eq!(leg2.counts.absent, 50, "ticks 0..50");
    assert!(leg2.first_packet_tick.is_some_and(|t| t >= 50));
    assert_eq!(
        leg2.counts.received,
        200 - (leg2.first_packet_tick.unwrap() - 50)
    );

    let ogg1 = read_exact_ogg(&tmp.0.join("leg-1.opus"), ticks);
    for p in &ogg1.packets[200..] {
        assert_eq!(p.data, SILENCE_PACKET, "absent ticks are silence packets");
    }
    let tail = decode_all(&ogg1);
    assert!(
        tail[200 * 960..].iter().all(|s| s.abs() < 1e-6),
        "absent ticks decode to silence"
    );
    let ogg2 = read_exact_ogg(&tmp.0.join("leg-2.opus"), ticks);
    assert!(ogg2.packets[..50].iter().all(|p| p.data == SILENCE_PACKET));
    assert_eq!(
        wav_samples(&tmp.0.join("mix.wav")).len() as u64,
        ticks * 960
    );
}
