//! What an emulated participant says: its speech WAV, loaded once as 48 kHz mono PCM.
//!
//! [`ParticipantMedia`] names a participant and its speech file (any rate and channel count
//! `hound` reads; resampled to 48 kHz with the media core's
//! [`crate::media::resample::Resampler`] and mixed down to mono), plus a lead of
//! silence before it starts and whether it loops. [`load_wav_48k`] does the loading and is
//! also used to read prompts for comparison (the greeting check).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::media::frame::SAMPLE_RATE;
use crate::media::resample::Resampler;

use super::error::MediaProcError;

/// Longest speech file a participant may use (bounds what is loaded into memory).
pub const MAX_SPEECH: Duration = Duration::from_secs(300);

/// One emulated participant's media: who it is and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipantMedia {
    /// A display name (`"caller"`, `"invitee-1"`, …), used in reports.
    pub name: String,
    /// The speech WAV it streams, paced in real time.
    pub speech_wav: PathBuf,
    /// Silence sent before the speech starts (e.g. to let a greeting play first).
    pub lead_silence: Duration,
    /// Start the speech again when it ends (otherwise silence follows it).
    pub repeat: bool,
}

impl ParticipantMedia {
    /// A participant saying `speech_wav` once, starting at once.
    pub fn new(name: impl Into<String>, speech_wav: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            speech_wav: speech_wav.into(),
            lead_silence: Duration::ZERO,
            repeat: false,
        }
    }

    /// The default caller: `media/caller-48k.wav`.
    pub fn caller() -> Self {
        Self::new("caller", media_dir().join("caller-48k.wav"))
    }

    /// The default second participant (meetings, invitees): `media/caller2-48k.wav`.
    pub fn second() -> Self {
        Self::new("participant-2", media_dir().join("caller2-48k.wav"))
    }

    /// Sets the silence before the speech (builder style).
    #[must_use]
    pub fn lead_silence(mut self, lead: Duration) -> Self {
        self.lead_silence = lead;
        self
    }

    /// Loops the speech (builder style).
    #[must_use]
    pub fn repeating(mut self) -> Self {
        self.repeat = true;
        self
    }
}

/// The project's `media/` folder: `./media` when it exists (the binary run from a checkout),
/// else the one next to this crate's manifest (tests, `cargo run` from elsewhere).
pub fn media_dir() -> PathBuf {
    let local = PathBuf::from("media");
    if local.join("caller-48k.wav").is_file() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("media")
    }
}

/// Reads a WAV file as 48 kHz mono `f32` samples (±1.0): integer (1–32 bit) or 32-bit float,
/// any channel count (averaged), any rate (resampled).
///
/// # Errors
/// [`MediaProcError::Speech`] when the file cannot be read, has an unsupported format, is
/// empty, longer than [`MAX_SPEECH`] or has a rate the resampler cannot convert.
pub fn load_wav_48k(path: &Path) -> Result<Vec<f32>, MediaProcError> {
    let err = |reason: String| MediaProcError::Speech {
        path: path.display().to_string(),
        reason,
    };
    let mut reader = hound::WavReader::open(path).map_err(|e| err(e.to_string()))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let max_samples = MAX_SPEECH.as_secs() as usize * spec.sample_rate as usize * channels;
    if reader.len() as usize > max_samples {
        return Err(err(format!("longer than {} s", MAX_SPEECH.as_secs())));
    }
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?,
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(|e| err(e.to_string()))?
        }
        (_, bits) => return Err(err(format!("unsupported sample format ({bits} bit)"))),
    };
    let mono: Vec<f32> = interleaved
        .chunks(channels)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect();
    if mono.is_empty() {
        return Err(err("no samples".into()));
    }
    if spec.sample_rate == SAMPLE_RATE {
        return Ok(mono);
    }
    let resampler =
        Resampler::new(spec.sample_rate, SAMPLE_RATE).map_err(|e| err(e.to_string()))?;
    Ok(resampler.process(&mono))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_callers_speech_at_48k() {
        let pcm = load_wav_48k(&ParticipantMedia::caller().speech_wav).expect("caller wav");
        // 9.69 s at 48 kHz.
        assert!(
            (pcm.len() as f32 / 48_000.0 - 9.69).abs() < 0.05,
            "{}",
            pcm.len()
        );
        assert!(pcm.iter().all(|s| s.abs() <= 1.0));
    }

    #[test]
    fn resamples_the_16k_greeting() {
        let pcm = load_wav_48k(&media_dir().join("greeting-16k.wav")).expect("greeting");
        assert!(
            (pcm.len() as f32 / 48_000.0 - 4.75).abs() < 0.05,
            "{}",
            pcm.len()
        );
    }

    #[test]
    fn missing_and_garbage_files_are_typed_errors() {
        let missing = load_wav_48k(Path::new("/nonexistent/x.wav"));
        assert!(matches!(missing, Err(MediaProcError::Speech { .. })));
        let dir =
            std::env::temp_dir().join(format!("mediaproc-garbage-{}.wav", std::process::id()));
        std::fs::write(&dir, b"RIFF not really a wav").expect("temp file");
        let garbage = load_wav_48k(&dir);
        let _ = std::fs::remove_file(&dir);
        assert!(matches!(garbage, Err(MediaProcError::Speech { .. })));
    }
}
