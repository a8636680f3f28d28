//! Reading 48 kHz mono PCM16 WAV files (the speech in `media/`) into 20 ms frames.
//!
//! Load-time IO for tests, benches and tools — never called on a shard thread. Prompts in other
//! formats go through [`crate::media::prompt::Prompt`], which resamples.

use std::path::Path;

use crate::media::frame::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE};

/// Why a WAV file could not be read as frames.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file could not be opened or decoded.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Not 48 kHz mono 16-bit PCM.
    #[error(
        "{path}: expected 48 kHz mono 16-bit PCM, found {rate} Hz, {channels} channel(s), {bits} bits"
    )]
    Format {
        /// The file.
        path: String,
        /// Its sample rate.
        rate: u32,
        /// Its channel count.
        channels: u16,
        /// Its bits per sample.
        bits: u16,
    },
}

/// Reads a 48 kHz mono 16-bit WAV file as 20 ms frames; a last partial frame is dropped.
pub fn read_frames(path: impl AsRef<Path>) -> Result<Vec<AudioFrame>, WavError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let read_err = |e: hound::Error| WavError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    };
    let mut reader = hound::WavReader::open(path).map_err(read_err)?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(WavError::Format {
            path: shown,
            rate: spec.sample_rate,
            channels: spec.channels,
            bits: spec.bits_per_sample,
        });
    }
    let pcm = reader
        .samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()
        .map_err(read_err)?;
    Ok(pcm
        .chunks_exact(FRAME_SAMPLES)
        .map(|c| {
            let mut f = AudioFrame::silence();
            f.copy_from_i16(c);
            f
        })
        .collect())
}

/// [`read_frames`] for a file in the crate's `media/` folder (e.g. `"caller-48k.wav"`).
pub fn media_frames(name: &str) -> Result<Vec<AudioFrame>, WavError> {
    read_frames(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("media")
            .join(name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_files_read_as_whole_frames() {
        let frames = media_frames("caller-48k.wav").unwrap();
        // 465,328 samples → 484 whole frames.
        assert_eq!(frames.len(), 465_328 / FRAME_SAMPLES);
        assert!(frames.iter().any(|f| f.level_dbov() > -30.0));
    }

    #[test]
    fn other_formats_are_refused_with_what_they_are() {
        let err = media_frames("greeting-16k.wav").unwrap_err();
        assert!(
            matches!(err, WavError::Format { rate: 16_000, .. }),
            "{err}"
        );
        assert!(matches!(
            media_frames("missing.wav").unwrap_err(),
            WavError::Read { .. }
        ));
    }
}
