//! The default encoder settings hit the requested bitrate on speech, for every backend.
//!
//! `cargo test --test codec-bitrate -- --nocapture` prints the VBR/CBR table quoted in the
//! README (section Codec).

use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusEncoder};
use mediabot::media::frame::AudioFrame;
use mediabot::media::packet::OpusPacket;

const SPEECH: [&str; 2] = ["media/caller-48k.wav", "media/caller2-48k.wav"];

/// The file (a path under the crate root) as 20 ms frames.
fn frames(path: &str) -> Vec<AudioFrame> {
    mediabot::media::wav::read_frames(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .expect("media file present")
}

/// Average bitrate in kbit/s of `frames` encoded with `config`.
fn kbps(backend: CodecBackend, config: &EncoderConfig, frames: &[AudioFrame]) -> f64 {
    let mut enc = OpusEncoder::new(backend, config).expect("valid config");
    let mut pkt = OpusPacket::EMPTY;
    let mut bytes = 0usize;
    for f in frames {
        enc.encode(f, &mut pkt).expect("encode speech");
        bytes += pkt.len();
    }
    bytes as f64 * 8.0 / (frames.len() as f64 * 0.020) / 1000.0
}

#[test]
fn default_settings_hit_32_kbits_on_speech() {
    let default = EncoderConfig::default();
    assert_eq!(default.bitrate_bps, 32_000);
    for &backend in CodecBackend::ALL {
        for path in SPEECH {
            let speech = frames(path);
            let vbr = kbps(
                backend,
                &EncoderConfig {
                    cbr: false,
                    ..default
                },
                &speech,
            );
            let cbr = kbps(
                backend,
                &EncoderConfig {
                    cbr: true,
                    ..default
                },
                &speech,
            );
            let fec = kbps(
                backend,
                &EncoderConfig {
                    inband_fec: true,
                    expected_loss_pct: 10,
                    ..default
                },
                &speech,
            );
            let got = kbps(backend, &default, &speech);
            eprintln!(
                "{backend:<8} {path:<22} 32k c5: VBR {vbr:5.1}  CBR {cbr:5.1}  default {got:5.1}  default+FEC10% {fec:5.1} kbit/s"
            );
            assert!(
                (30.4..=33.6).contains(&got),
                "{backend} {path}: default settings give {got:.1} kbit/s, want 32 ± 5 %"
            );
            assert!(
                (28.8..=35.2).contains(&fec),
                "{backend} {path}: FEC settings give {fec:.1} kbit/s, want 32 ± 10 %"
            );
        }
    }
}
