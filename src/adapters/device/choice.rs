//! Choosing a device configuration: the supported one closest to 48 kHz mono, or exactly what
//! was asked, with a clear error listing what the device supports otherwise.
//!
//! Preference, in order: a rate range containing 48 kHz (else the standard rate nearest to
//! it, else the nearest edge of the range); the fewest channels (mono, then stereo, …); the
//! sample format `f32`, then `i16`, `i32`, `i24`, and the rest. DSD formats are never chosen.

use cpal::{SampleFormat, SupportedBufferSize, SupportedStreamConfigRange};

use crate::adapters::device::{DeviceError, DeviceOptions, Direction};
use crate::media::frame::SAMPLE_RATE;
use crate::media::resample::Resampler;

/// The configuration a stream was opened with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamFormat {
    /// Device name.
    pub device: String,
    /// Sample format.
    pub sample_format: SampleFormat,
    /// Interleaved channels.
    pub channels: u16,
    /// Rate in Hz.
    pub sample_rate: u32,
    /// Callback size asked for, in device frames (`None`: the device's default).
    pub buffer_frames: Option<u32>,
}

impl StreamFormat {
    pub(crate) fn stream_config(&self) -> cpal::StreamConfig {
        cpal::StreamConfig {
            channels: self.channels,
            sample_rate: self.sample_rate,
            buffer_size: match self.buffer_frames {
                Some(n) => cpal::BufferSize::Fixed(n),
                None => cpal::BufferSize::Default,
            },
        }
    }
}

/// A range of configurations a device supports (consecutive channel counts with the same
/// format and rates are merged, and so are their callback size ranges).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupportedConfig {
    /// Sample format.
    pub sample_format: SampleFormat,
    /// Fewest channels.
    pub min_channels: u16,
    /// Most channels.
    pub max_channels: u16,
    /// Lowest rate (Hz).
    pub min_rate: u32,
    /// Highest rate (Hz).
    pub max_rate: u32,
    /// Callback sizes the device accepts (device frames), when it says.
    pub buffer_frames: Option<(u32, u32)>,
}

impl std::fmt::Display for SupportedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.sample_format)?;
        if self.min_channels == self.max_channels {
            write!(f, " {} ch", self.min_channels)?;
        } else {
            write!(f, " {}-{} ch", self.min_channels, self.max_channels)?;
        }
        if self.min_rate == self.max_rate {
            write!(f, " {} Hz", self.min_rate)?;
        } else {
            write!(f, " {}-{} Hz", self.min_rate, self.max_rate)?;
        }
        if let Some((lo, hi)) = self.buffer_frames {
            write!(f, " (callback {lo}-{hi} frames)")?;
        }
        Ok(())
    }
}

/// Merges cpal's per-channel-count ranges into [`SupportedConfig`]s.
pub(crate) fn summarize(ranges: &[SupportedStreamConfigRange]) -> Vec<SupportedConfig> {
    let mut out: Vec<SupportedConfig> = Vec::new();
    for r in ranges {
        let buffer_frames = match r.buffer_size() {
            SupportedBufferSize::Range { min, max } => Some((*min, *max)),
            SupportedBufferSize::Unknown => None,
        };
        let c = SupportedConfig {
            sample_format: r.sample_format(),
            min_channels: r.channels(),
            max_channels: r.channels(),
            min_rate: r.min_sample_rate(),
            max_rate: r.max_sample_rate(),
            buffer_frames,
        };
        match out.iter_mut().find(|o| {
            o.sample_format == c.sample_format
                && o.min_rate == c.min_rate
                && o.max_rate == c.max_rate
                && o.max_channels.checked_add(1) == Some(c.min_channels)
        }) {
            Some(o) => {
                o.max_channels = c.max_channels;
                o.buffer_frames = match (o.buffer_frames, c.buffer_frames) {
                    (Some((a, b)), Some((x, y))) => Some((a.min(x), b.max(y))),
                    (a, b) => a.or(b),
                };
            }
            None => out.push(c),
        }
    }
    out
}

/// Picks the configuration to open (see the module docs).
pub(crate) fn choose(
    device: &str,
    direction: Direction,
    ranges: &[SupportedStreamConfigRange],
    options: &DeviceOptions,
) -> Result<StreamFormat, DeviceError> {
    let unsupported = |requested: String| DeviceError::Unsupported {
        device: device.to_owned(),
        direction,
        requested,
        supported: summarize(ranges).iter().map(ToString::to_string).collect(),
    };
    let best = ranges
        .iter()
        .filter(|r| format_rank(r.sample_format()).is_some())
        .filter(|r| options.channels.is_none_or(|c| r.channels() == c))
        .filter_map(|r| {
            let rate = match options.sample_rate {
                Some(rate) => (r.min_sample_rate()..=r.max_sample_rate())
                    .contains(&rate)
                    .then_some(rate)?,
                None => closest_rate(r.min_sample_rate(), r.max_sample_rate()),
            };
            // A rate our resampler cannot convert is as good as unsupported.
            Resampler::new(rate, SAMPLE_RATE).ok()?;
            Some((r, rate))
        })
        .min_by_key(|(r, rate)| {
            (
                rate.abs_diff(SAMPLE_RATE),
                r.channels(),
                format_rank(r.sample_format()),
            )
        });
    let Some((range, rate)) = best else {
        let channels = options
            .channels
            .map_or("any channel count".to_owned(), |c| format!("{c} channels"));
        let rate = options
            .sample_rate
            .map_or("a usable rate".to_owned(), |r| format!("{r} Hz"));
        return Err(unsupported(format!(
            "{channels} at {rate} in a PCM sample format"
        )));
    };
    let buffer_frames = match (options.buffer_frames, range.buffer_size()) {
        (Some(n), _) => Some(n),
        (None, SupportedBufferSize::Range { min, max }) => {
            Some((rate / CALLBACKS_PER_SECOND).clamp(*min, *max))
        }
        (None, SupportedBufferSize::Unknown) => None,
    };
    Ok(StreamFormat {
        device: device.to_owned(),
        sample_format: range.sample_format(),
        channels: range.channels(),
        sample_rate: rate,
        buffer_frames,
    })
}

/// 48 kHz if the range has it, else the standard rate nearest to it, else the nearer edge.
fn closest_rate(min: u32, max: u32) -> u32 {
    if (min..=max).contains(&SAMPLE_RATE) {
        return SAMPLE_RATE;
    }
    STANDARD_RATES
        .iter()
        .copied()
        .filter(|r| (min..=max).contains(r))
        .min_by_key(|r| r.abs_diff(SAMPLE_RATE))
        .unwrap_or(if max < SAMPLE_RATE { max } else { min })
}

/// Lower is better; `None` for formats we do not convert (DSD).
fn format_rank(f: SampleFormat) -> Option<u8> {
    Some(match f {
        SampleFormat::F32 => 0,
        SampleFormat::I16 => 1,
        SampleFormat::I32 => 2,
        SampleFormat::I24 => 3,
        SampleFormat::F64 => 4,
        SampleFormat::U16 => 5,
        SampleFormat::I8 | SampleFormat::U8 => 6,
        SampleFormat::U24 | SampleFormat::U32 | SampleFormat::I64 | SampleFormat::U64 => 7,
        _ => return None,
    })
}

const STANDARD_RATES: [u32; 11] = [
    8_000, 11_025, 16_000, 22_050, 24_000, 32_000, 44_100, 88_200, 96_000, 176_400, 192_000,
];
/// Default callback size: 10 ms.
const CALLBACKS_PER_SECOND: u32 = 100;

#[cfg(test)]
mod tests {
    use super::*;

    fn range(ch: u16, lo: u32, hi: u32, f: SampleFormat) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(
            ch,
            lo,
            hi,
            SupportedBufferSize::Range { min: 64, max: 8192 },
            f,
        )
    }

    #[test]
    fn prefers_48k_mono_f32_and_merges_channel_counts() {
        let rs = vec![
            range(2, 44_100, 44_100, SampleFormat::F32),
            range(1, 8_000, 96_000, SampleFormat::I16),
            range(2, 8_000, 96_000, SampleFormat::I16),
            range(1, 8_000, 96_000, SampleFormat::F32),
            range(1, 8_000, 96_000, SampleFormat::DsdU8),
        ];
        let f = choose("d", Direction::Output, &rs, &DeviceOptions::default()).unwrap();
        assert_eq!(
            (f.sample_format, f.channels, f.sample_rate, f.buffer_frames),
            (SampleFormat::F32, 1, 48_000, Some(480))
        );
        let s = summarize(&rs);
        assert_eq!(
            s[1].to_string(),
            "i16 1-2 ch 8000-96000 Hz (callback 64-8192 frames)"
        );
    }

    #[test]
    fn falls_back_to_nearest_standard_rate_and_stereo() {
        let rs = vec![range(2, 44_100, 44_100, SampleFormat::U16)];
        let f = choose("d", Direction::Input, &rs, &DeviceOptions::default()).unwrap();
        assert_eq!((f.channels, f.sample_rate), (2, 44_100));
        let rs = vec![range(4, 22_050, 32_000, SampleFormat::I32)];
        let f = choose("d", Direction::Input, &rs, &DeviceOptions::default()).unwrap();
        assert_eq!((f.channels, f.sample_rate), (4, 32_000));
    }

    #[test]
    fn impossible_request_lists_what_is_supported() {
        let rs = vec![range(2, 44_100, 48_000, SampleFormat::I16)];
        let opts = DeviceOptions {
            channels: Some(7),
            ..DeviceOptions::default()
        };
        let e = choose("card", Direction::Output, &rs, &opts).unwrap_err();
        assert_eq!(
            e.to_string(),
            "output device \"card\" cannot do 7 channels at a usable rate in a PCM sample \
             format; it supports: i16 2 ch 44100-48000 Hz (callback 64-8192 frames)"
        );
        let dsd = vec![range(1, 48_000, 48_000, SampleFormat::DsdU8)];
        assert!(matches!(
            choose("card", Direction::Input, &dsd, &DeviceOptions::default()),
            Err(DeviceError::Unsupported { .. })
        ));
    }
}
