//! Cost of one 20 ms Opus frame at 48 kHz mono, 32 kbit/s, on speech (`media/caller-48k.wav`).
//!
//! Ids: `codec/decode_20ms`, `codec/encode_20ms/c0`, `codec/encode_20ms/c5`,
//! `codec/encode_20ms/c10`. Each iteration handles one frame, cycling through the file.
//! The backend is the build's: opus-rs by default, libopus with `--features libopus`, so
//! `cargo bench --bench codec` and `cargo bench --bench codec --features libopus` compare the
//! two under the same ids.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusDecoder, OpusEncoder};
use mediabot::media::frame::AudioFrame;
use mediabot::media::packet::OpusPacket;

/// The backend this build benches.
fn backend() -> CodecBackend {
    #[cfg(feature = "libopus")]
    return CodecBackend::Libopus;
    #[cfg(not(feature = "libopus"))]
    return CodecBackend::OpusRs;
}

/// Speech from the media folder, as 20 ms frames.
fn speech() -> Vec<AudioFrame> {
    mediabot::media::wav::media_frames("caller-48k.wav").expect("media file present")
}

fn bench(c: &mut Criterion) {
    let backend = backend();
    eprintln!("codec bench backend: {backend}");
    let frames = speech();
    let config = EncoderConfig::default();
    let mut group = c.benchmark_group("codec");

    // Packets from the same backend at the default settings (32 kbit/s CBR, complexity 5).
    let mut enc = OpusEncoder::new(backend, &config).expect("encoder");
    let packets: Vec<OpusPacket> = frames
        .iter()
        .map(|f| {
            let mut p = OpusPacket::EMPTY;
            enc.encode(f, &mut p).expect("encode speech");
            p
        })
        .collect();
    let mut dec = OpusDecoder::new(backend).expect("decoder");
    let mut out = AudioFrame::silence();
    let mut i = 0;
    group.bench_function("decode_20ms", |b| {
        b.iter(|| {
            dec.decode(black_box(packets[i].as_slice()), &mut out)
                .expect("decode");
            i = (i + 1) % packets.len();
            black_box(&out);
        });
    });

    for complexity in [0u8, 5, 10] {
        let mut enc = OpusEncoder::new(
            backend,
            &EncoderConfig {
                complexity,
                ..config
            },
        )
        .expect("encoder");
        let mut pkt = OpusPacket::EMPTY;
        let mut i = 0;
        group.bench_function(
            BenchmarkId::new("encode_20ms", format!("c{complexity}")),
            |b| {
                b.iter(|| {
                    enc.encode(black_box(&frames[i]), &mut pkt).expect("encode");
                    i = (i + 1) % frames.len();
                    black_box(&pkt);
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
