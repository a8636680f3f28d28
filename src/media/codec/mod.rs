//! Opus 48 kHz mono encoding and decoding behind one small interface with two backends.
//!
//! - [`CodecBackend::OpusRs`] (the default): the pure-Rust `opus-rs` port of libopus 1.6. It
//!   needs no C toolchain, so a fresh machine builds with no install step, and untrusted packets
//!   are decoded by memory-safe code. It has no DTX.
//! - `CodecBackend::Libopus` (cargo feature `libopus`): reference libopus 1.6.1 through the
//!   `opus` crate (its bundled build needs cmake). It has DTX.
//!
//! Both speak the same bitstream: packets from either decode with the other
//! (`tests/codec-interop.rs` checks it by correlation against the source speech).
//!
//! The unit is one 20 ms frame ([`AudioFrame`], 960 samples): [`OpusEncoder::encode`] makes one
//! packet per frame and [`OpusDecoder::decode`] turns one packet into exactly one frame.
//! **Packets that do not last exactly 20 ms are rejected** with
//! [`CodecError::UnsupportedDuration`] rather than truncated or split: the jitter buffer, the
//! mixer and the RTP clock all advance in 960-sample steps and our SDP offers and answers
//! `ptime:20`, so a 10/40/60 ms packet means a peer that ignored the negotiation; dropping it
//! (counted by the caller, concealed by [`OpusDecoder::conceal`]) keeps every tick at exactly one
//! frame. A 20 ms packet made of several shorter Opus frames (codes 1–3, e.g. 2 × 10 ms) is
//! accepted. A 1-byte packet (TOC only, what a DTX encoder sends in silence) decodes as
//! concealment / comfort noise.
//!
//! Defaults (see [`EncoderConfig::default`]): 32 kbit/s, complexity 5, **CBR**. Measured on our
//! speech (`README.md`, section Codec), `opus-rs` 0.1.40 in VBR overshoots 32 kbit/s by 43–48 %,
//! while CBR lands on the target for both backends.
//!
//! # Realtime Safety
//! Encoders and decoders allocate everything in their constructors (call those off the shard
//! thread). [`OpusEncoder::encode`], [`OpusDecoder::decode`], [`OpusDecoder::conceal`] and
//! [`OpusDecoder::decode_fec`] never allocate, never lock and never block
//! (`tests/codec-no-alloc.rs` proves it with a counting allocator). They never panic on any
//! packet bytes: every packet is validated by [`packet_duration`] (RFC 6716 §3.4) before a
//! backend sees it, and backend failures come back as [`CodecError::Backend`].

mod pure_rust;
mod toc;

#[cfg(feature = "libopus")]
mod libopus;

pub use toc::{MAX_PACKET_SAMPLES, packet_duration};

use crate::media::frame::{AudioFrame, FRAME_SAMPLES};
use crate::media::packet::{MAX_OPUS_PACKET, OpusPacket};

/// Which Opus implementation an encoder or decoder uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CodecBackend {
    /// Pure-Rust `opus-rs` 0.1.40 (always available; the default).
    #[default]
    OpusRs,
    /// Reference libopus 1.6.1 through the `opus` crate (cargo feature `libopus`).
    #[cfg(feature = "libopus")]
    Libopus,
}

impl CodecBackend {
    /// Every backend compiled into this build, default first.
    pub const ALL: &'static [Self] = &[
        Self::OpusRs,
        #[cfg(feature = "libopus")]
        Self::Libopus,
    ];

    /// Short name for logs and reports: `"opus-rs"` or `"libopus"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::OpusRs => "opus-rs",
            #[cfg(feature = "libopus")]
            Self::Libopus => "libopus",
        }
    }

    /// Whether the backend can do discontinuous transmission ([`EncoderConfig::dtx`]).
    pub const fn supports_dtx(self) -> bool {
        match self {
            Self::OpusRs => false,
            #[cfg(feature = "libopus")]
            Self::Libopus => true,
        }
    }
}

impl std::fmt::Display for CodecBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why encoding or decoding failed. Small and `Copy`: creating one never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A zero-length packet (RFC 6716 R1: a packet has at least its TOC byte). To conceal a
    /// missing packet call [`OpusDecoder::conceal`].
    #[error("empty opus packet")]
    EmptyPacket,
    /// Longer than the 1275 bytes an [`OpusPacket`] holds.
    #[error("opus packet of {0} bytes exceeds 1275")]
    PacketTooLong(usize),
    /// Framing that violates RFC 6716 §3.4 (the rule is named).
    #[error("invalid opus packet: {0}")]
    InvalidPacket(&'static str),
    /// A valid packet that does not last exactly one 20 ms frame (its duration in 48 kHz samples).
    #[error("opus packet lasts {0} samples, not one 20 ms frame (960)")]
    UnsupportedDuration(u32),
    /// An [`EncoderConfig`] field out of range (the field is named).
    #[error("invalid encoder setting: {0}")]
    InvalidConfig(&'static str),
    /// The backend lacks a requested feature (e.g. DTX on opus-rs).
    #[error("{backend} does not support {feature}")]
    Unsupported {
        /// The backend asked.
        backend: CodecBackend,
        /// The missing feature.
        feature: &'static str,
    },
    /// The backend reported an error (its own message).
    #[error("{backend}: {context}")]
    Backend {
        /// The backend that failed.
        backend: CodecBackend,
        /// The backend's message.
        context: &'static str,
    },
}

/// Encoder settings. Fixed at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Target bitrate in bit/s, 6,000..=510,000 (default 32,000).
    pub bitrate_bps: u32,
    /// Encoder complexity 0 (cheapest) ..= 10 (best); default 5.
    pub complexity: u8,
    /// Add in-band forward error correction (SILK LBRR) so a lost packet can be rebuilt from the
    /// next one with [`OpusDecoder::decode_fec`]. Default off.
    pub inband_fec: bool,
    /// Expected packet loss in percent, 0..=100: how much redundancy FEC spends (default 0;
    /// FEC needs this above 0 to produce anything).
    pub expected_loss_pct: u8,
    /// Discontinuous transmission: 1-byte packets in silence. Only where
    /// [`CodecBackend::supports_dtx`]; asking opus-rs for it is [`CodecError::Unsupported`].
    pub dtx: bool,
    /// Constant bitrate (default on: opus-rs VBR overshoots the target, see the module docs).
    pub cbr: bool,
}

impl Default for EncoderConfig {
    /// 32 kbit/s, complexity 5, CBR, no FEC, no DTX.
    fn default() -> Self {
        Self {
            bitrate_bps: 32_000,
            complexity: 5,
            inband_fec: false,
            expected_loss_pct: 0,
            dtx: false,
            cbr: true,
        }
    }
}

impl EncoderConfig {
    /// Checks every field's range.
    ///
    /// # Errors
    /// [`CodecError::InvalidConfig`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), CodecError> {
        if !(6_000..=510_000).contains(&self.bitrate_bps) {
            return Err(CodecError::InvalidConfig(
                "bitrate_bps outside 6000..=510000",
            ));
        }
        if self.complexity > 10 {
            return Err(CodecError::InvalidConfig("complexity above 10"));
        }
        if self.expected_loss_pct > 100 {
            return Err(CodecError::InvalidConfig("expected_loss_pct above 100"));
        }
        Ok(())
    }
}

/// An Opus encoder for 20 ms frames of 48 kHz mono speech (application VOIP).
pub struct OpusEncoder {
    inner: EncoderImpl,
    config: EncoderConfig,
    /// Scratch copy for frames holding NaN or infinity (replaced by 0.0 before encoding).
    scrub: Box<[f32; FRAME_SAMPLES]>,
}

enum EncoderImpl {
    OpusRs(pure_rust::Encoder),
    #[cfg(feature = "libopus")]
    Libopus(libopus::Encoder),
}

impl OpusEncoder {
    /// Builds an encoder with `config` (allocates; call it off the real-time thread).
    ///
    /// # Errors
    /// [`CodecError::InvalidConfig`] for out-of-range settings, [`CodecError::Unsupported`] for
    /// DTX on a backend without it, [`CodecError::Backend`] if the backend refuses.
    pub fn new(backend: CodecBackend, config: &EncoderConfig) -> Result<Self, CodecError> {
        config.validate()?;
        if config.dtx && !backend.supports_dtx() {
            return Err(CodecError::Unsupported {
                backend,
                feature: "dtx",
            });
        }
        let inner = match backend {
            CodecBackend::OpusRs => EncoderImpl::OpusRs(pure_rust::Encoder::new(config)?),
            #[cfg(feature = "libopus")]
            CodecBackend::Libopus => EncoderImpl::Libopus(libopus::Encoder::new(config)?),
        };
        Ok(Self {
            inner,
            config: *config,
            scrub: Box::new([0.0; FRAME_SAMPLES]),
        })
    }

    /// Encodes one 20 ms frame into `out` (replacing its contents). Samples are ±1.0; NaN and
    /// infinities are encoded as 0.0. With DTX on, a 1-byte packet marks silence.
    ///
    /// # Errors
    /// [`CodecError::Backend`] if the backend fails; `out` is then left empty.
    pub fn encode(&mut self, frame: &AudioFrame, out: &mut OpusPacket) -> Result<(), CodecError> {
        let pcm: &[f32; FRAME_SAMPLES] = if frame.samples.iter().all(|s| s.is_finite()) {
            &frame.samples
        } else {
            for (d, s) in self.scrub.iter_mut().zip(frame.samples.iter()) {
                *d = if s.is_finite() { *s } else { 0.0 };
            }
            &self.scrub
        };
        let result = match &mut self.inner {
            EncoderImpl::OpusRs(e) => e.encode(pcm, out.buffer_mut()),
            #[cfg(feature = "libopus")]
            EncoderImpl::Libopus(e) => e.encode(pcm, out.buffer_mut()),
        };
        match result {
            Ok(len) if (1..=MAX_OPUS_PACKET).contains(&len) => {
                out.set_len(len);
                Ok(())
            }
            Ok(_) => {
                out.set_len(0);
                Err(CodecError::Backend {
                    backend: self.backend(),
                    context: "encoder returned an empty or oversized packet",
                })
            }
            Err(e) => {
                out.set_len(0);
                Err(e)
            }
        }
    }

    /// The settings this encoder was built with.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The backend in use.
    pub fn backend(&self) -> CodecBackend {
        match self.inner {
            EncoderImpl::OpusRs(_) => CodecBackend::OpusRs,
            #[cfg(feature = "libopus")]
            EncoderImpl::Libopus(_) => CodecBackend::Libopus,
        }
    }
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("backend", &self.backend())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An Opus decoder producing 20 ms frames of 48 kHz mono, with loss concealment and in-band FEC.
pub struct OpusDecoder {
    inner: DecoderImpl,
}

enum DecoderImpl {
    OpusRs(pure_rust::Decoder),
    #[cfg(feature = "libopus")]
    Libopus(libopus::Decoder),
}

impl OpusDecoder {
    /// Builds a decoder (allocates; call it off the real-time thread).
    ///
    /// # Errors
    /// [`CodecError::Backend`] if the backend refuses.
    pub fn new(backend: CodecBackend) -> Result<Self, CodecError> {
        let inner = match backend {
            CodecBackend::OpusRs => DecoderImpl::OpusRs(pure_rust::Decoder::new()?),
            #[cfg(feature = "libopus")]
            CodecBackend::Libopus => DecoderImpl::Libopus(libopus::Decoder::new()?),
        };
        Ok(Self { inner })
    }

    /// Decodes one packet lasting exactly 20 ms into `out`. A 1-byte packet (DTX) conceals.
    ///
    /// # Errors
    /// [`CodecError::EmptyPacket`], [`CodecError::PacketTooLong`],
    /// [`CodecError::InvalidPacket`], [`CodecError::UnsupportedDuration`] (the decoder state is
    /// untouched; conceal instead), or [`CodecError::Backend`] when the backend rejects the
    /// payload. On error `out` holds unspecified audio; use [`Self::conceal`] for the tick.
    pub fn decode(&mut self, packet: &[u8], out: &mut AudioFrame) -> Result<(), CodecError> {
        check_20ms(packet)?;
        let n = match &mut self.inner {
            DecoderImpl::OpusRs(d) => d.decode(packet, &mut out.samples),
            #[cfg(feature = "libopus")]
            DecoderImpl::Libopus(d) => d.decode(packet, &mut out.samples),
        }?;
        self.check_samples(n)
    }

    /// Conceals one missing 20 ms frame (packet loss concealment, extrapolated from the last
    /// decoded audio; fades towards silence over repeated calls).
    ///
    /// # Errors
    /// [`CodecError::Backend`] if the backend fails.
    pub fn conceal(&mut self, out: &mut AudioFrame) -> Result<(), CodecError> {
        let n = match &mut self.inner {
            DecoderImpl::OpusRs(d) => d.conceal(&mut out.samples),
            #[cfg(feature = "libopus")]
            DecoderImpl::Libopus(d) => d.conceal(&mut out.samples),
        }?;
        self.check_samples(n)
    }

    /// Rebuilds the missing frame *before* `next_packet` from `next_packet`'s in-band FEC
    /// (SILK LBRR), or conceals it like [`Self::conceal`] when `next_packet` carries none
    /// (CELT-only packets, encoders without FEC). `next_packet` itself is not consumed: decode it
    /// with [`Self::decode`] on the next tick.
    ///
    /// # Errors
    /// As [`Self::decode`] for a malformed or non-20 ms `next_packet` (nothing is decoded; call
    /// [`Self::conceal`] instead), or [`CodecError::Backend`].
    pub fn decode_fec(
        &mut self,
        next_packet: &[u8],
        out: &mut AudioFrame,
    ) -> Result<(), CodecError> {
        check_20ms(next_packet)?;
        let n = match &mut self.inner {
            DecoderImpl::OpusRs(d) => d.decode_fec(next_packet, &mut out.samples),
            #[cfg(feature = "libopus")]
            DecoderImpl::Libopus(d) => d.decode_fec(next_packet, &mut out.samples),
        }?;
        self.check_samples(n)
    }

    /// The backend in use.
    pub fn backend(&self) -> CodecBackend {
        match self.inner {
            DecoderImpl::OpusRs(_) => CodecBackend::OpusRs,
            #[cfg(feature = "libopus")]
            DecoderImpl::Libopus(_) => CodecBackend::Libopus,
        }
    }

    fn check_samples(&self, n: usize) -> Result<(), CodecError> {
        if n == FRAME_SAMPLES {
            return Ok(());
        }
        Err(CodecError::Backend {
            backend: self.backend(),
            context: "decoder did not produce exactly 960 samples",
        })
    }
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// Validates framing and requires exactly one 20 ms frame's worth of audio.
fn check_20ms(packet: &[u8]) -> Result<(), CodecError> {
    let samples = packet_duration(packet)?;
    if samples as usize != FRAME_SAMPLES {
        return Err(CodecError::UnsupportedDuration(samples));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn codec_state_moves_between_threads() {
        assert_send::<OpusEncoder>();
        assert_send::<OpusDecoder>();
    }

    #[test]
    fn rejects_out_of_range_settings_and_missing_dtx() {
        let bad = |f: fn(&mut EncoderConfig)| {
            let mut c = EncoderConfig::default();
            f(&mut c);
            OpusEncoder::new(CodecBackend::OpusRs, &c).map(|_| ())
        };
        assert!(matches!(
            bad(|c| c.bitrate_bps = 1_000),
            Err(CodecError::InvalidConfig(_))
        ));
        assert!(matches!(
            bad(|c| c.complexity = 11),
            Err(CodecError::InvalidConfig(_))
        ));
        assert!(matches!(
            bad(|c| c.expected_loss_pct = 101),
            Err(CodecError::InvalidConfig(_))
        ));
        assert_eq!(
            bad(|c| c.dtx = true),
            Err(CodecError::Unsupported {
                backend: CodecBackend::OpusRs,
                feature: "dtx"
            })
        );
    }

    #[test]
    fn encodes_silence_and_non_finite_samples() {
        for &backend in CodecBackend::ALL {
            let mut enc = OpusEncoder::new(backend, &EncoderConfig::default()).unwrap();
            let mut dec = OpusDecoder::new(backend).unwrap();
            let mut pkt = OpusPacket::EMPTY;
            let mut frame = AudioFrame::silence();
            frame.samples[10] = f32::NAN;
            frame.samples[20] = f32::INFINITY;
            for _ in 0..5 {
                enc.encode(&frame, &mut pkt).unwrap();
                assert_eq!(packet_duration(pkt.as_slice()), Ok(960));
                let mut out = AudioFrame::silence();
                dec.decode(pkt.as_slice(), &mut out).unwrap();
                assert!(out.samples.iter().all(|s| s.is_finite()));
            }
            assert_eq!(enc.backend(), backend);
            assert_eq!(dec.backend(), backend);
        }
    }

    #[test]
    fn rejects_packets_that_are_not_20_ms() {
        let mut dec = OpusDecoder::new(CodecBackend::OpusRs).unwrap();
        let mut out = AudioFrame::silence();
        // SILK 10 ms and 40 ms, code 0.
        assert_eq!(
            dec.decode(&[0, 1, 2], &mut out),
            Err(CodecError::UnsupportedDuration(480))
        );
        assert_eq!(
            dec.decode(&[2 << 3, 1, 2], &mut out),
            Err(CodecError::UnsupportedDuration(1_920))
        );
        assert_eq!(dec.decode(&[], &mut out), Err(CodecError::EmptyPacket));
        assert_eq!(dec.decode_fec(&[], &mut out), Err(CodecError::EmptyPacket));
        // A TOC-only 20 ms packet conceals.
        assert_eq!(dec.decode(&[1 << 3], &mut out), Ok(()));
    }
}
