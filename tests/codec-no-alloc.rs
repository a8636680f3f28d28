//! Encoding, decoding, concealment and FEC decoding never allocate after construction, for
//! every backend (the real-time rule for shard threads).
//!
//! A counting global allocator counts allocations made by this thread while a measurement is
//! running. libopus allocates through C `malloc`, which this allocator cannot see; libopus's
//! encode/decode calls use stack arrays and no `malloc` (only `opus_*_create` does).
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusDecoder, OpusEncoder};
use mediabot::media::frame::AudioFrame;
use mediabot::media::packet::OpusPacket;

#[global_allocator]
static GLOBAL: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    counting_alloc::count(f).1.allocs
}

/// Speech from the media folder, as 20 ms frames.
fn speech() -> Vec<AudioFrame> {
    mediabot::media::wav::media_frames("caller-48k.wav").expect("media file present")
}

#[test]
fn codec_calls_do_not_allocate() {
    let frames = speech();
    for &backend in CodecBackend::ALL {
        for complexity in [0, 5, 10] {
            let config = EncoderConfig {
                complexity,
                inband_fec: true,
                expected_loss_pct: 10,
                ..EncoderConfig::default()
            };
            let mut enc = OpusEncoder::new(backend, &config).unwrap();
            let mut dec = OpusDecoder::new(backend).unwrap();
            let mut packets = vec![OpusPacket::EMPTY; frames.len()];
            let mut out = AudioFrame::silence();
            let mut garbage = [0x5au8; 300];
            garbage[0] = 15 << 3; // Hybrid FB 20 ms
            let mut nan = AudioFrame::silence();
            nan.samples[3] = f32::NAN;
            // Warm-up and measurement are the same work: construction is the only allocation.
            let n = allocations(|| {
                for (f, p) in frames.iter().zip(packets.iter_mut()) {
                    enc.encode(f, p).unwrap();
                }
                enc.encode(&nan, &mut packets[0]).unwrap();
                for (i, p) in packets.iter().enumerate() {
                    match i % 7 {
                        3 => dec.conceal(&mut out).unwrap(),
                        5 if i + 1 < packets.len() => {
                            dec.decode_fec(packets[i + 1].as_slice(), &mut out).unwrap();
                        }
                        _ => dec.decode(p.as_slice(), &mut out).unwrap(),
                    }
                }
                // Error paths too.
                let _ = dec.decode(&[], &mut out);
                let _ = dec.decode(&[0; 2000], &mut out);
                let _ = dec.decode(&[3], &mut out);
                let _ = dec.decode(&garbage, &mut out);
            });
            assert_eq!(n, 0, "{backend} complexity {complexity}: {n} allocations");
        }
    }
    // The counter works: a Vec allocates.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 64]))) > 0);
}
