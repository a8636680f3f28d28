//! Prompts: audio the bot plays into a room, loaded once and pre-encoded once.
//!
//! A [`Prompt`] is built off the shard threads from a WAV file (any rate `hound` reads, 8–32
//! bit integer or 32-bit float, any channel count mixed down to mono), resampled to 48 kHz with
//! [`Resampler`] when needed, cut into 20 ms frames (the last one padded with silence), and
//! **encoded to Opus once, at load**, with the room's encoder settings. A prompt is immutable
//! and shared through an `Arc` by every player in every room.
//!
//! A [`PromptPlayer`] is the per-member cursor over a prompt, one-shot or looping. Each tick it
//! yields the index of the frame to play: the room mixes the PCM frame when others speak, and
//! when the prompt is the only source it sends the pre-encoded packet of that same index
//! straight to every listener — no encode at all.
//!
//! # Realtime Safety
//! [`Prompt`] construction allocates and does file IO (off-shard only).
//! [`PromptPlayer`] methods never allocate.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::media::codec::{CodecBackend, CodecError, EncoderConfig, OpusEncoder};
use crate::media::frame::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE};
use crate::media::packet::OpusPacket;
use crate::media::resample::{ResampleError, Resampler};

/// Why a prompt could not be loaded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PromptError {
    /// The WAV file could not be opened or parsed (hound's message).
    #[error("cannot read wav: {0}")]
    Wav(String),
    /// The file holds a sample format this loader does not convert.
    #[error("unsupported wav sample format: {bits} bit {format}")]
    UnsupportedFormat {
        /// Bits per sample.
        bits: u16,
        /// `"int"` or `"float"`.
        format: &'static str,
    },
    /// No samples at all.
    #[error("prompt has no audio")]
    Empty,
    /// Longer than [`MAX_PROMPT_FRAMES`] 20 ms frames.
    #[error("prompt of {0} frames is longer than the limit")]
    TooLong(usize),
    /// The sample rate cannot be converted.
    #[error("cannot resample: {0}")]
    Resample(#[from] ResampleError),
    /// Pre-encoding failed.
    #[error("cannot pre-encode: {0}")]
    Codec(#[from] CodecError),
}

/// An immutable, pre-decoded and pre-encoded prompt.
#[derive(Debug)]
pub struct Prompt {
    frames: Vec<AudioFrame>,
    packets: Vec<OpusPacket>,
    source_rate: u32,
    encoder: EncoderConfig,
}

impl Prompt {
    /// Loads a WAV file (off-shard: file IO and allocation).
    ///
    /// # Errors
    /// Any [`PromptError`].
    pub fn from_wav_file(
        path: impl AsRef<Path>,
        backend: CodecBackend,
        encoder: &EncoderConfig,
    ) -> Result<Self, PromptError> {
        let reader = hound::WavReader::open(path).map_err(|e| PromptError::Wav(e.to_string()))?;
        Self::from_wav(reader, backend, encoder)
    }

    /// Loads WAV data from any reader (off-shard).
    ///
    /// # Errors
    /// Any [`PromptError`].
    pub fn from_wav_reader<R: Read>(
        reader: R,
        backend: CodecBackend,
        encoder: &EncoderConfig,
    ) -> Result<Self, PromptError> {
        let reader = hound::WavReader::new(reader).map_err(|e| PromptError::Wav(e.to_string()))?;
        Self::from_wav(reader, backend, encoder)
    }

    /// Builds a prompt from mono samples (±1.0) at `rate` Hz (off-shard).
    ///
    /// # Errors
    /// [`PromptError::Empty`], [`PromptError::TooLong`], [`PromptError::Resample`] or
    /// [`PromptError::Codec`].
    pub fn from_samples(
        rate: u32,
        samples: &[f32],
        backend: CodecBackend,
        encoder: &EncoderConfig,
    ) -> Result<Self, PromptError> {
        if samples.is_empty() {
            return Err(PromptError::Empty);
        }
        let resampled;
        let pcm: &[f32] = if rate == SAMPLE_RATE {
            samples
        } else {
            resampled = Resampler::new(rate, SAMPLE_RATE)?.process(samples);
            &resampled
        };
        let n_frames = pcm.len().div_ceil(FRAME_SAMPLES);
        if n_frames > MAX_PROMPT_FRAMES {
            return Err(PromptError::TooLong(n_frames));
        }
        let mut frames = Vec::with_capacity(n_frames);
        for chunk in pcm.chunks(FRAME_SAMPLES) {
            let mut f = AudioFrame::silence();
            f.samples[..chunk.len()].copy_from_slice(chunk);
            frames.push(f);
        }
        let mut enc = OpusEncoder::new(backend, encoder)?;
        let mut packets = Vec::with_capacity(n_frames);
        for f in &frames {
            let mut p = OpusPacket::EMPTY;
            enc.encode(f, &mut p)?;
            packets.push(p);
        }
        Ok(Self {
            frames,
            packets,
            source_rate: rate,
            encoder: *encoder,
        })
    }

    fn from_wav<R: Read>(
        mut reader: hound::WavReader<R>,
        backend: CodecBackend,
        encoder: &EncoderConfig,
    ) -> Result<Self, PromptError> {
        let spec = reader.spec();
        let channels = usize::from(spec.channels.max(1));
        let wav_err = |e: hound::Error| PromptError::Wav(e.to_string());
        let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, 32) => reader
                .samples::<f32>()
                .collect::<Result<_, _>>()
                .map_err(wav_err)?,
            (hound::SampleFormat::Int, bits @ 1..=32) => {
                let scale = 1.0 / (1u64 << (bits - 1)) as f32;
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|s| s as f32 * scale))
                    .collect::<Result<_, _>>()
                    .map_err(wav_err)?
            }
            (format, bits) => {
                return Err(PromptError::UnsupportedFormat {
                    bits,
                    format: match format {
                        hound::SampleFormat::Float => "float",
                        hound::SampleFormat::Int => "int",
                    },
                });
            }
        };
        let mono: Vec<f32> = interleaved
            .chunks(channels)
            .map(|c| c.iter().sum::<f32>() / channels as f32)
            .collect();
        Self::from_samples(spec.sample_rate, &mono, backend, encoder)
    }

    /// The 48 kHz frames, in order.
    pub fn frames(&self) -> &[AudioFrame] {
        &self.frames
    }

    /// The pre-encoded packets, one per frame, in order.
    pub fn packets(&self) -> &[OpusPacket] {
        &self.packets
    }

    /// Length in 20 ms frames.
    pub fn len_frames(&self) -> usize {
        self.frames.len()
    }

    /// Sample rate of the source before resampling.
    pub fn source_rate(&self) -> u32 {
        self.source_rate
    }

    /// Encoder settings the packets were made with.
    pub fn encoder_config(&self) -> &EncoderConfig {
        &self.encoder
    }
}

/// Whether a player stops at the end of the prompt or starts over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlayMode {
    /// Play once, then fall silent.
    #[default]
    Once,
    /// Start over at the end, forever.
    Loop,
}

/// A cursor playing one [`Prompt`] tick by tick.
#[derive(Debug)]
pub struct PromptPlayer {
    prompt: Arc<Prompt>,
    mode: PlayMode,
    next: usize,
    current: Option<usize>,
}

impl PromptPlayer {
    /// A player at the start of `prompt`.
    pub fn new(prompt: Arc<Prompt>, mode: PlayMode) -> Self {
        Self {
            prompt,
            mode,
            next: 0,
            current: None,
        }
    }

    /// Advances one tick; returns the index of this tick's frame, or `None` once a one-shot
    /// prompt has ended.
    pub fn advance(&mut self) -> Option<usize> {
        let len = self.prompt.len_frames();
        if self.next >= len {
            match self.mode {
                PlayMode::Loop if len > 0 => self.next = 0,
                _ => {
                    self.current = None;
                    return None;
                }
            }
        }
        self.current = Some(self.next);
        self.next += 1;
        self.current
    }

    /// This tick's frame (after [`Self::advance`]).
    pub fn frame(&self) -> Option<&AudioFrame> {
        self.current.and_then(|i| self.prompt.frames.get(i))
    }

    /// This tick's pre-encoded packet (after [`Self::advance`]).
    pub fn packet(&self) -> Option<&OpusPacket> {
        self.current.and_then(|i| self.prompt.packets.get(i))
    }

    /// Whether a one-shot prompt has played to its end.
    pub fn is_finished(&self) -> bool {
        self.mode == PlayMode::Once
            && self.next >= self.prompt.len_frames()
            && self.current.is_none()
    }

    /// Starts again from the first frame.
    pub fn restart(&mut self) {
        self.next = 0;
        self.current = None;
    }

    /// The prompt being played.
    pub fn prompt(&self) -> &Arc<Prompt> {
        &self.prompt
    }

    /// The play mode.
    pub fn mode(&self) -> PlayMode {
        self.mode
    }
}

/// Longest prompt accepted: 5 minutes of 20 ms frames.
pub const MAX_PROMPT_FRAMES: usize = 15_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(frames: usize) -> Arc<Prompt> {
        let samples: Vec<f32> = (0..frames * FRAME_SAMPLES)
            .map(|i| 0.3 * (i as f32 * 0.05).sin())
            .collect();
        Arc::new(
            Prompt::from_samples(
                SAMPLE_RATE,
                &samples,
                CodecBackend::default(),
                &EncoderConfig::default(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn one_shot_plays_each_frame_once_then_ends() {
        let p = prompt(3);
        assert_eq!(p.len_frames(), 3);
        assert_eq!(p.packets().len(), 3);
        assert!(p.packets().iter().all(|p| !p.is_empty()));
        let mut player = PromptPlayer::new(p, PlayMode::Once);
        let got: Vec<_> = (0..5).map(|_| player.advance()).collect();
        assert_eq!(got, [Some(0), Some(1), Some(2), None, None]);
        assert!(player.is_finished());
        assert!(player.frame().is_none() && player.packet().is_none());
        player.restart();
        assert_eq!(player.advance(), Some(0));
    }

    #[test]
    fn looping_wraps_around() {
        let mut player = PromptPlayer::new(prompt(2), PlayMode::Loop);
        let got: Vec<_> = (0..5).map(|_| player.advance().unwrap()).collect();
        assert_eq!(got, [0, 1, 0, 1, 0]);
        assert!(!player.is_finished());
    }

    #[test]
    fn loads_16k_greeting_and_resamples_to_48k() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/media/greeting-16k.wav");
        let p = Prompt::from_wav_file(path, CodecBackend::default(), &EncoderConfig::default())
            .unwrap();
        assert_eq!(p.source_rate(), 16_000);
        // 4.8 s at 16 kHz → about 240 frames at 48 kHz.
        assert!((235..=245).contains(&p.len_frames()), "{}", p.len_frames());
        let loud = p.frames().iter().filter(|f| f.level_dbov() > -30.0).count();
        assert!(loud > 50, "{loud}");
    }

    #[test]
    fn bad_input_is_an_error() {
        let e = Prompt::from_samples(
            48_000,
            &[],
            CodecBackend::default(),
            &EncoderConfig::default(),
        );
        assert_eq!(e.unwrap_err(), PromptError::Empty);
        let e = Prompt::from_wav_reader(
            &b"not a wav file"[..],
            CodecBackend::default(),
            &EncoderConfig::default(),
        );
        assert!(matches!(e, Err(PromptError::Wav(_))));
    }
}
