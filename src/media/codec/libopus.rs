//! The `libopus` backend: reference libopus 1.6.1 through the `opus` crate (cargo feature
//! `libopus`; the bundled C build needs cmake).
//!
//! libopus allocates its state once in `opus_encoder_create` / `opus_decoder_create` and uses
//! stack arrays per call, so encode and decode calls do not allocate. It has DTX.

use super::{CodecBackend, CodecError, EncoderConfig};
use crate::media::frame::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::media::packet::MAX_OPUS_PACKET;

/// Turns an `opus` crate error into a typed error (its description is a static C string).
fn backend_error(e: opus::Error) -> CodecError {
    CodecError::Backend {
        backend: CodecBackend::Libopus,
        context: e.description(),
    }
}

/// libopus encoder for 48 kHz mono VOIP.
pub(super) struct Encoder {
    enc: opus::Encoder,
}

impl Encoder {
    pub(super) fn new(config: &EncoderConfig) -> Result<Self, CodecError> {
        let mut enc =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
                .map_err(backend_error)?;
        // Ranges were validated by `EncoderConfig::validate`, so the casts are lossless.
        enc.set_bitrate(opus::Bitrate::Bits(config.bitrate_bps as i32))
            .map_err(backend_error)?;
        enc.set_complexity(i32::from(config.complexity))
            .map_err(backend_error)?;
        enc.set_vbr(!config.cbr).map_err(backend_error)?;
        enc.set_inband_fec(config.inband_fec)
            .map_err(backend_error)?;
        enc.set_packet_loss_perc(i32::from(config.expected_loss_pct))
            .map_err(backend_error)?;
        enc.set_dtx(config.dtx).map_err(backend_error)?;
        Ok(Self { enc })
    }

    pub(super) fn encode(
        &mut self,
        pcm: &[f32; FRAME_SAMPLES],
        out: &mut [u8; MAX_OPUS_PACKET],
    ) -> Result<usize, CodecError> {
        self.enc.encode_float(pcm, out).map_err(backend_error)
    }
}

/// libopus decoder for 48 kHz mono.
pub(super) struct Decoder {
    dec: opus::Decoder,
}

impl Decoder {
    pub(super) fn new() -> Result<Self, CodecError> {
        let dec = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).map_err(backend_error)?;
        Ok(Self { dec })
    }

    pub(super) fn decode(
        &mut self,
        packet: &[u8],
        out: &mut [f32; FRAME_SAMPLES],
    ) -> Result<usize, CodecError> {
        self.dec
            .decode_float(packet, out, false)
            .map_err(backend_error)
    }

    pub(super) fn conceal(&mut self, out: &mut [f32; FRAME_SAMPLES]) -> Result<usize, CodecError> {
        // The `opus` crate passes a NULL packet for an empty slice: libopus conceals the
        // output's length (960 samples).
        self.dec
            .decode_float(&[], out, false)
            .map_err(backend_error)
    }

    pub(super) fn decode_fec(
        &mut self,
        next_packet: &[u8],
        out: &mut [f32; FRAME_SAMPLES],
    ) -> Result<usize, CodecError> {
        self.dec
            .decode_float(next_packet, out, true)
            .map_err(backend_error)
    }
}
