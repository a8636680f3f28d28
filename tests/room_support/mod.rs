//! Helpers shared by the room tests: speech sources, an RTP sender per leg and a receiver that
//! decodes what the room sent back, placed on the tick timeline by its RTP timestamp.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusDecoder, OpusEncoder};
use mediabot::media::frame::{AudioFrame, FRAME_SAMPLES, RTP_TICKS_PER_FRAME};
use mediabot::media::leg::{CallLegConfig, LegPort};
use mediabot::media::member::Member;
use mediabot::media::packet::{AudioLevel, OpusPacket, RtpMeta, RtpPacket};
use mediabot::media::resample::Resampler;
use mediabot::media::room::MemberId;

pub const TICK: Duration = Duration::from_millis(20);

/// A speech file as 48 kHz frames, `ticks` long (padded with silence).
pub fn speech(path: &str, ticks: usize) -> Vec<AudioFrame> {
    let path = format!("{}/media/{path}", env!("CARGO_MANIFEST_DIR"));
    let mut reader = hound::WavReader::open(&path).expect("media file present");
    let rate = reader.spec().sample_rate;
    let mut pcm: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| f32::from(s.expect("valid wav")) / 32768.0)
        .collect();
    if rate != 48_000 {
        pcm = Resampler::new(rate, 48_000).expect("ratio").process(&pcm);
    }
    let mut frames: Vec<AudioFrame> = pcm
        .chunks(FRAME_SAMPLES)
        .map(|c| {
            let mut f = AudioFrame::silence();
            f.samples[..c.len()].copy_from_slice(c);
            f
        })
        .collect();
    frames.resize(ticks, AudioFrame::silence());
    frames
}

/// The three test voices, `ticks` long.
pub fn three_voices(ticks: usize) -> [Vec<AudioFrame>; 3] {
    [
        speech("caller-48k.wav", ticks),
        speech("caller2-48k.wav", ticks),
        speech("greeting-16k.wav", ticks),
    ]
}

pub fn concat(frames: &[AudioFrame]) -> Vec<f32> {
    frames.iter().flat_map(|f| f.samples).collect()
}

/// A call leg's config with a distinct SSRC per member.
pub fn leg_config(id: u64) -> CallLegConfig {
    CallLegConfig {
        ssrc: 0x1000 + id as u32,
        initial_seq: 65_530, // wraps during the test
        initial_timestamp: u32::MAX - 2 * RTP_TICKS_PER_FRAME, // wraps too
        ..CallLegConfig::default()
    }
}

/// A call leg member plus the far end that talks to it and listens to it.
pub fn leg(id: u64, capacity: usize) -> (Box<Member>, Peer) {
    let (member, port) =
        Member::call_leg_with_port(MemberId(id), &leg_config(id), capacity).expect("leg");
    (member, Peer::new(id, port))
}

/// The remote side of a call leg: encodes and sends its voice, decodes what it receives.
pub struct Peer {
    pub port: LegPort,
    encoder: OpusEncoder,
    decoder: OpusDecoder,
    seq: u16,
    ts: u32,
    ssrc: u32,
    /// Every packet received from the room, in order.
    pub received: Vec<RtpPacket>,
    /// Decoded audio per tick (silence where nothing came).
    pub heard: Vec<AudioFrame>,
}

impl Peer {
    pub fn new(id: u64, port: LegPort) -> Self {
        Self::with_encoder(id, port, &EncoderConfig::default())
    }

    /// A peer whose own sender uses `config` (e.g. in-band FEC).
    pub fn with_encoder(id: u64, port: LegPort, config: &EncoderConfig) -> Self {
        Self {
            port,
            encoder: OpusEncoder::new(CodecBackend::default(), config).expect("encoder"),
            decoder: OpusDecoder::new(CodecBackend::default()).expect("decoder"),
            seq: 100,
            ts: 5_000,
            ssrc: 0xa000 + id as u32,
            received: Vec::new(),
            heard: Vec::new(),
        }
    }

    /// Encodes `frame` and pushes it to the room, with an RFC 6464 level if asked.
    pub fn say(&mut self, frame: &AudioFrame, level: Option<AudioLevel>, now: Instant) -> bool {
        let mut payload = OpusPacket::EMPTY;
        self.encoder.encode(frame, &mut payload).expect("encode");
        self.send_payload(payload, level, now)
    }

    pub fn send_payload(
        &mut self,
        payload: OpusPacket,
        level: Option<AudioLevel>,
        now: Instant,
    ) -> bool {
        let packet = RtpPacket {
            meta: RtpMeta {
                seq: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
                marker: false,
                audio_level: level,
            },
            payload,
            arrival: now,
        };
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(RTP_TICKS_PER_FRAME);
        self.port.push(packet)
    }

    /// Loses the next packet on the way (its sequence number and timestamp are spent).
    pub fn lose(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(RTP_TICKS_PER_FRAME);
    }

    /// Drains what the room sent this tick; decodes it (one frame per tick, silence if none).
    pub fn listen(&mut self) {
        let mut got = None;
        while let Some(p) = self.port.pop() {
            self.received.push(p);
            got = Some(p);
        }
        let mut frame = AudioFrame::silence();
        if let Some(p) = got {
            self.decoder
                .decode(p.payload.as_slice(), &mut frame)
                .expect("room sends valid opus");
        }
        self.heard.push(frame);
    }

    pub fn heard_signal(&self) -> Vec<f32> {
        concat(&self.heard)
    }
}

/// RFC 6464 level of a frame, as a sender would compute it.
pub fn level_of(frame: &AudioFrame) -> AudioLevel {
    let dbov = frame.level_dbov();
    AudioLevel {
        level: (-dbov).clamp(0.0, 127.0) as u8,
        voice: dbov > -50.0,
    }
}

/// Delay (in samples) of `test` behind `reference`: coarse search on 8× decimated signals,
/// then a fine search at full rate. Cheap enough for unoptimised test builds.
pub fn find_lag(reference: &[f32], test: &[f32], max_lag: usize) -> isize {
    use mediabot::media::analysis::{align, overlap};
    const D: usize = 8;
    let dec = |x: &[f32]| -> Vec<f32> { x.chunks(D).map(|c| c.iter().sum::<f32>()).collect() };
    let coarse = align(&dec(reference), &dec(test), max_lag / D + 1).lag * D as isize;
    let (r, t) = overlap(reference, test, coarse);
    let n = r.len().min(t.len()).min(96_000);
    coarse + align(&r[..n], &t[..n], 2 * D).lag
}

/// Correlation of `test` with `reference` delayed by `lag`.
pub fn correlation_at(reference: &[f32], test: &[f32], lag: isize) -> f32 {
    use mediabot::media::analysis::{correlation, overlap};
    let (r, t) = overlap(reference, test, lag);
    correlation(r, t)
}
