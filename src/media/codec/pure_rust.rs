//! The default backend: the pure-Rust `opus-rs` 0.1.40 port of libopus 1.6.
//!
//! `opus-rs` keeps its codec state and scratch buffers in fixed-capacity vectors allocated by
//! its constructors, so encode and decode calls do not allocate. It has no DTX.

use super::{CodecBackend, CodecError, EncoderConfig};
use crate::media::frame::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::media::packet::MAX_OPUS_PACKET;

/// Turns an `opus-rs` message into a typed error.
fn backend_error(context: &'static str) -> CodecError {
    CodecError::Backend {
        backend: CodecBackend::OpusRs,
        context,
    }
}

/// `opus-rs` encoder for 48 kHz mono VOIP.
pub(super) struct Encoder {
    enc: Box<opus_rs::OpusEncoder>,
}

impl Encoder {
    pub(super) fn new(config: &EncoderConfig) -> Result<Self, CodecError> {
        let mut enc = opus_rs::OpusEncoder::new(SAMPLE_RATE as i32, 1, opus_rs::Application::Voip)
            .map_err(backend_error)?;
        // Ranges were validated by `EncoderConfig::validate`, so the casts are lossless.
        enc.bitrate_bps = config.bitrate_bps as i32;
        enc.complexity = i32::from(config.complexity);
        enc.use_cbr = config.cbr;
        enc.use_inband_fec = config.inband_fec;
        enc.packet_loss_perc = i32::from(config.expected_loss_pct);
        Ok(Self { enc: Box::new(enc) })
    }

    pub(super) fn encode(
        &mut self,
        pcm: &[f32; FRAME_SAMPLES],
        out: &mut [u8; MAX_OPUS_PACKET],
    ) -> Result<usize, CodecError> {
        self.enc
            .encode(pcm, FRAME_SAMPLES, out)
            .map_err(backend_error)
    }
}

/// `opus-rs` decoder for 48 kHz mono.
pub(super) struct Decoder {
    dec: Box<opus_rs::OpusDecoder>,
}

impl Decoder {
    pub(super) fn new() -> Result<Self, CodecError> {
        let dec = opus_rs::OpusDecoder::new(SAMPLE_RATE as i32, 1).map_err(backend_error)?;
        Ok(Self { dec: Box::new(dec) })
    }

    pub(super) fn decode(
        &mut self,
        packet: &[u8],
        out: &mut [f32; FRAME_SAMPLES],
    ) -> Result<usize, CodecError> {
        self.dec
            .decode(packet, FRAME_SAMPLES, out)
            .map_err(backend_error)
    }

    pub(super) fn conceal(&mut self, out: &mut [f32; FRAME_SAMPLES]) -> Result<usize, CodecError> {
        // An empty packet asks opus-rs for concealment of `frame_size` samples.
        self.dec
            .decode(&[], FRAME_SAMPLES, out)
            .map_err(backend_error)
    }

    pub(super) fn decode_fec(
        &mut self,
        next_packet: &[u8],
        out: &mut [f32; FRAME_SAMPLES],
    ) -> Result<usize, CodecError> {
        self.dec
            .decode_fec(next_packet, FRAME_SAMPLES, out)
            .map_err(backend_error)
    }
}
