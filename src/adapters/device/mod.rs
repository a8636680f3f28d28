//! A local sound device as a room member (feature `device`): the person at this machine talks
//! into the call through its microphone and hears it through its speakers.
//!
//! The room side is an ordinary application endpoint
//! ([`MemberKind::App`](crate::media::member::MemberKind::App)): the room hands it
//! the mix minus its own voice every tick and takes one frame from it. The device side is two
//! cpal streams whose callbacks own the two queue ends:
//!
//! ```text
//! input callback ─ format→f32, downmix, device rate→48 kHz, 960-sample frames ─▶ room
//! room ─▶ frames, 48 kHz→device rate, f32→format, copy to every channel ─ output callback
//! ```
//!
//! - [`open_device_member`] finds the device(s), picks the supported configuration closest to
//!   48 kHz mono (any sample format cpal knows but DSD, any channel count), starts both
//!   streams and returns the member (to add to a room) and a [`DeviceHandle`] (keep it: dropping
//!   it stops the streams and the member goes silent).
//! - [`list_devices`] describes every device and its supported configurations.
//! - Buffering (policies in the `capture` and `playback` submodules, counters in
//!   [`DeviceStats`]): each side absorbs the device's callback size and holds back at most
//!   20 ms standing; overruns, underruns and trims are counted.
//! - A stream that fails mid-call (device unplugged, sound server gone) is logged, counted and
//!   reported by [`DeviceHandle::stats`] / [`DeviceHandle::is_lost`]; the room goes on (the
//!   member is silent, its output is dropped and counted by the room). A fatal error is final
//!   for this handle; a stall (errors and no data for 500 ms) counts as lost only until the
//!   data callbacks resume.
//!
//! ALSA reads its configuration (`~/.asoundrc`, `ALSA_CONFIG_PATH`) once per process, so tests
//! that point it at fake devices run in a child process of their own (see
//! `tests/device-member.rs`).
//!
//! # Realtime Safety
//! Opening allocates (queues, resamplers, cpal's buffers). The data callbacks never allocate,
//! lock or block: preallocated frames, relaxed atomics and lock-free `rtrb` queues only
//! (`tests/device-member.rs` checks it with a counting allocator). The error callback is not
//! real-time (it logs).

mod capture;
mod choice;
mod meters;
mod participant;
mod playback;

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, Stream};

use crate::adapters::device::capture::Capture;
pub use crate::adapters::device::choice::{StreamFormat, SupportedConfig};
pub use crate::adapters::device::meters::DeviceStats;
use crate::adapters::device::meters::{LOST_FOR_GOOD, Meters};
pub use crate::adapters::device::participant::DeviceParticipant;
use crate::adapters::device::playback::Playback;
use crate::media::member::{Member, MemberError};
use crate::media::resample::ResampleError;
use crate::media::room::MemberId;

/// Builds a stream for a runtime [`SampleFormat`]: `$build!(T)` for the matching sample type.
macro_rules! with_format {
    ($format:expr, $build:ident) => {
        match $format {
            SampleFormat::I8 => $build!(i8),
            SampleFormat::I16 => $build!(i16),
            SampleFormat::I24 => $build!(cpal::I24),
            SampleFormat::I32 => $build!(i32),
            SampleFormat::I64 => $build!(i64),
            SampleFormat::U8 => $build!(u8),
            SampleFormat::U16 => $build!(u16),
            SampleFormat::U24 => $build!(cpal::U24),
            SampleFormat::U32 => $build!(u32),
            SampleFormat::U64 => $build!(u64),
            SampleFormat::F32 => $build!(f32),
            SampleFormat::F64 => $build!(f64),
            // `choice::choose` never picks another format.
            other => Err(cpal::Error::with_message(
                cpal::ErrorKind::UnsupportedConfig,
                format!("sample format {other} is not supported by mediabot"),
            )),
        }
    };
}

/// Capture or playback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Microphone → room.
    Input,
    /// Room → speakers.
    Output,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Input => "input",
            Self::Output => "output",
        })
    }
}

/// Why a device member could not be opened or devices not listed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The sound system could not be asked for devices.
    #[error("cannot list sound devices: {0}")]
    Host(String),
    /// No device was named and there is no usable default one.
    #[error(
        "no usable default {direction} device ({reason}); devices: {}",
        list(available)
    )]
    NoDevice {
        /// Which side.
        direction: Direction,
        /// Why the default is not usable (none, or what the sound system said opening it).
        reason: String,
        /// Names of the devices that exist.
        available: Vec<String>,
    },
    /// No device has this name.
    #[error("no {direction} device named {name:?}; devices: {}", list(available))]
    NotFound {
        /// The name asked for.
        name: String,
        /// Which side.
        direction: Direction,
        /// Names of the devices that exist.
        available: Vec<String>,
    },
    /// The device cannot do what was asked (or nothing this member can use).
    #[error(
        "{direction} device {device:?} cannot do {requested}; it supports: {}",
        list(supported)
    )]
    Unsupported {
        /// The device's name.
        device: String,
        /// Which side.
        direction: Direction,
        /// What was asked, e.g. `"7 channels at 48000 Hz"`.
        requested: String,
        /// Its supported configurations, one per entry.
        supported: Vec<String>,
    },
    /// The device exists but its stream could not be built or started.
    #[error("cannot open {direction} device {device:?}: {message}")]
    Open {
        /// The device's name.
        device: String,
        /// Which side.
        direction: Direction,
        /// What the sound system said.
        message: String,
    },
    /// The device's rate cannot be converted to 48 kHz.
    #[error("device rate: {0}")]
    Rate(#[from] ResampleError),
    /// The room-side member could not be built.
    #[error("member: {0}")]
    Member(#[from] MemberError),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

/// What to open. `Default` opens the default input and output at the configuration closest
/// to 48 kHz mono.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceOptions {
    /// Capture from an input device (default `true`).
    pub capture: bool,
    /// Play to an output device (default `true`).
    pub playback: bool,
    /// Input device name when it differs from the `name` given to [`open_device_member`].
    pub input_device: Option<String>,
    /// Output device name when it differs from the `name` given to [`open_device_member`].
    pub output_device: Option<String>,
    /// Require this sample rate (Hz) instead of choosing the closest to 48 kHz.
    pub sample_rate: Option<u32>,
    /// Require this channel count instead of choosing the fewest.
    pub channels: Option<u16>,
    /// Callback size in device frames (default: about 10 ms when the device lets us choose).
    pub buffer_frames: Option<u32>,
    /// Frames each room-side queue holds (default 8 = 160 ms: room for a device's large
    /// callbacks; the policies keep far less in them).
    pub queue_frames: usize,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        Self {
            capture: true,
            playback: true,
            input_device: None,
            output_device: None,
            sample_rate: None,
            channels: None,
            buffer_frames: None,
            queue_frames: 8,
        }
    }
}

/// One sound device and what it supports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The name to pass to [`open_device_member`] (the ALSA PCM name, e.g. `default`,
    /// `hw:CARD=0,DEV=0`).
    pub name: String,
    /// A human description (may be empty).
    pub description: String,
    /// Capture configurations (empty: no capture, or it could not be opened to ask).
    pub input: Vec<SupportedConfig>,
    /// Playback configurations.
    pub output: Vec<SupportedConfig>,
}

/// Keeps a device member's streams running; dropping it stops them (the member, still in its
/// room, goes silent).
pub struct DeviceHandle {
    input: Option<(StreamFormat, Stream)>,
    output: Option<(StreamFormat, Stream)>,
    meters: Arc<Meters>,
}

impl std::fmt::Debug for DeviceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceHandle")
            .field("input", &self.input.as_ref().map(|(c, _)| c))
            .field("output", &self.output.as_ref().map(|(c, _)| c))
            .field("stats", &self.stats())
            .finish()
    }
}

impl DeviceHandle {
    /// The counters so far.
    pub fn stats(&self) -> DeviceStats {
        self.meters.snapshot()
    }

    /// The capture stream's device and configuration, if capturing.
    pub fn input(&self) -> Option<&StreamFormat> {
        self.input.as_ref().map(|(c, _)| c)
    }

    /// The playback stream's device and configuration, if playing.
    pub fn output(&self) -> Option<&StreamFormat> {
        self.output.as_ref().map(|(c, _)| c)
    }

    /// True while a stream has failed (the call goes on without it): for good after a fatal
    /// error (the device is gone), or while it stalls (errors and no data callback for
    /// 500 ms; false again once its data callbacks resume).
    pub fn is_lost(&self) -> bool {
        self.meters.lost(Direction::Input) || self.meters.lost(Direction::Output)
    }

    /// The text of the last error a stream reported, if any.
    pub fn last_error(&self) -> Option<String> {
        self.meters
            .last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// Restarts the peak gauges (`capture_queued_max`, `playback_reserve_max`,
    /// `playback_standing_max`), e.g. once
    /// the streams have settled, to measure the steady state.
    pub fn reset_peaks(&self) {
        self.meters.capture_queued_max.store(0, Ordering::Relaxed);
        self.meters.playback_reserve_max.store(0, Ordering::Relaxed);
        self.meters
            .playback_standing_max
            .store(0, Ordering::Relaxed);
    }
}

/// Test instrumentation: `hook(true)` is called as each data callback starts and
/// `hook(false)` as it ends, on the callback's thread (a counting allocator uses it to count
/// only what the callbacks allocate). Set once per process; later calls are ignored.
#[doc(hidden)]
pub fn set_callback_hook(hook: fn(bool)) {
    let _ = CALLBACK_HOOK.set(hook);
}

static CALLBACK_HOOK: OnceLock<fn(bool)> = OnceLock::new();

/// Calls the test hook, if any (one atomic load otherwise).
#[inline]
fn hook(entering: bool) {
    if let Some(f) = CALLBACK_HOOK.get() {
        f(entering);
    }
}

/// Opens a sound device as room member `id`: `name` picks the device for both sides (the
/// default devices when `None`; [`DeviceOptions::input_device`] / `output_device` override
/// per side). A name matches, in this order: a device whose name or description is exactly
/// `name`; the same ignoring case; else the first device (in [`list_devices`] order) that can
/// capture (resp. play) and whose name or description contains `name`, ignoring case — so
/// `usb` finds `hw:CARD=USB,DEV=0` or a device described as "USB Audio". Returns the member, to add to a room, and the handle that keeps it running.
///
/// # Errors
/// [`DeviceError::NotFound`] / [`DeviceError::NoDevice`] (listing the devices that exist),
/// [`DeviceError::Unsupported`] (listing what the device supports), [`DeviceError::Open`],
/// [`DeviceError::Rate`], [`DeviceError::Host`].
pub fn open_device_member(
    id: MemberId,
    name: Option<&str>,
    options: &DeviceOptions,
) -> Result<(Box<Member>, DeviceHandle), DeviceError> {
    let host = cpal::default_host();
    let (member, app) = Member::app_endpoint(id, options.queue_frames)?;
    let (to_room, from_room) = app.into_queues();
    let meters = Arc::new(Meters::default());
    let mut handle = DeviceHandle {
        input: None,
        output: None,
        meters: meters.clone(),
    };
    if options.capture {
        let wanted = options.input_device.as_deref().or(name);
        let device = find(&host, wanted, Direction::Input)?;
        let dev_name = device_name(&device);
        let ranges = ranges(&device, Direction::Input, &dev_name)?;
        let format = choice::choose(&dev_name, Direction::Input, &ranges, options)?;
        let mut chain = Capture::new(format.channels, format.sample_rate, to_room, meters.clone())?;
        let config = format.stream_config();
        let errors = on_error(meters.clone(), Direction::Input, dev_name.clone());
        let open_err = |e: cpal::Error| DeviceError::Open {
            device: dev_name.clone(),
            direction: Direction::Input,
            message: e.to_string(),
        };
        macro_rules! build_input {
            ($t:ty) => {
                device.build_input_stream::<$t, _, _>(
                    config,
                    move |data: &[$t], _: &cpal::InputCallbackInfo| {
                        hook(true);
                        chain.process(data);
                        hook(false);
                    },
                    errors,
                    None,
                )
            };
        }
        let stream = with_format!(format.sample_format, build_input).map_err(open_err)?;
        stream.play().map_err(open_err)?;
        handle.input = Some((format, stream));
    }
    if options.playback {
        let wanted = options.output_device.as_deref().or(name);
        let device = find(&host, wanted, Direction::Output)?;
        let dev_name = device_name(&device);
        let ranges = ranges(&device, Direction::Output, &dev_name)?;
        let format = choice::choose(&dev_name, Direction::Output, &ranges, options)?;
        let mut chain = Playback::new(
            format.channels,
            format.sample_rate,
            from_room,
            meters.clone(),
        )?;
        let config = format.stream_config();
        let errors = on_error(meters, Direction::Output, dev_name.clone());
        let open_err = |e: cpal::Error| DeviceError::Open {
            device: dev_name.clone(),
            direction: Direction::Output,
            message: e.to_string(),
        };
        macro_rules! build_output {
            ($t:ty) => {
                device.build_output_stream::<$t, _, _>(
                    config,
                    move |data: &mut [$t], _: &cpal::OutputCallbackInfo| {
                        hook(true);
                        chain.process(data);
                        hook(false);
                    },
                    errors,
                    None,
                )
            };
        }
        let stream = with_format!(format.sample_format, build_output).map_err(open_err)?;
        stream.play().map_err(open_err)?;
        handle.output = Some((format, stream));
    }
    tracing::info!(input = ?handle.input(), output = ?handle.output(), "sound device member open");
    Ok((member, handle))
}

/// Every device the sound system knows, with its supported configurations (a device that
/// cannot be opened to ask shows none).
///
/// # Errors
/// [`DeviceError::Host`] when the sound system cannot be asked.
pub fn list_devices() -> Result<Vec<DeviceInfo>, DeviceError> {
    let host = cpal::default_host();
    let devices = host
        .devices()
        .map_err(|e| DeviceError::Host(e.to_string()))?;
    Ok(devices
        .map(|d| {
            let name = device_name(&d);
            let description = d.description().map(|x| x.to_string()).unwrap_or_default();
            let input = ranges(&d, Direction::Input, &name)
                .map(|r| choice::summarize(&r))
                .unwrap_or_default();
            let output = ranges(&d, Direction::Output, &name)
                .map(|r| choice::summarize(&r))
                .unwrap_or_default();
            DeviceInfo {
                name,
                description,
                input,
                output,
            }
        })
        .collect())
}

fn device_name(device: &cpal::Device) -> String {
    device
        .id()
        .map(|id| id.id().to_owned())
        .unwrap_or_else(|_| device.to_string())
}

fn find(
    host: &cpal::Host,
    name: Option<&str>,
    direction: Direction,
) -> Result<cpal::Device, DeviceError> {
    let available = || -> Vec<String> {
        host.devices()
            .map(|ds| {
                ds.filter(|d| match direction {
                    Direction::Input => d.supports_input(),
                    Direction::Output => d.supports_output(),
                })
                .map(|d| device_name(&d))
                .collect()
            })
            .unwrap_or_default()
    };
    let Some(name) = name else {
        let device = match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        let device = device.ok_or_else(|| DeviceError::NoDevice {
            direction,
            reason: "there is none".to_owned(),
            available: available(),
        })?;
        // A default that cannot even say what it supports (no sound card behind it) is as
        // good as none: say which devices exist.
        let name = device_name(&device);
        return match ranges(&device, direction, &name) {
            Ok(_) => Ok(device),
            Err(e) => Err(DeviceError::NoDevice {
                direction,
                reason: e.to_string(),
                available: available(),
            }),
        };
    };
    let devices: Vec<cpal::Device> = host
        .devices()
        .map_err(|e| DeviceError::Host(e.to_string()))?
        .collect();
    if let Some(d) = matching(&devices, name, direction) {
        return Ok(d.clone());
    }
    Err(DeviceError::NotFound {
        name: name.to_owned(),
        direction,
        available: available(),
    })
}

/// The device `name` names, in this order: a device whose name (or description) is exactly
/// `name`; the same ignoring case; the first device (in listing order) able to do
/// `direction` whose name or description contains `name`, ignoring case.
fn matching<'a>(
    devices: &'a [cpal::Device],
    name: &str,
    direction: Direction,
) -> Option<&'a cpal::Device> {
    let names: Vec<(String, String)> = devices
        .iter()
        .map(|d| {
            let described = d
                .description()
                .map(|x| x.name().to_owned())
                .unwrap_or_default();
            (device_name(d), described)
        })
        .collect();
    let exact = |ignore_case: bool| {
        names.iter().position(|(id, described)| {
            if ignore_case {
                id.eq_ignore_ascii_case(name) || described.eq_ignore_ascii_case(name)
            } else {
                id == name || described == name
            }
        })
    };
    let lower = name.to_lowercase();
    let can = |d: &cpal::Device| match direction {
        Direction::Input => d.supports_input(),
        Direction::Output => d.supports_output(),
    };
    let found = exact(false).or_else(|| exact(true)).or_else(|| {
        names.iter().zip(devices).position(|((id, described), d)| {
            (id.to_lowercase().contains(&lower) || described.to_lowercase().contains(&lower))
                && can(d)
        })
    })?;
    devices.get(found)
}

fn ranges(
    device: &cpal::Device,
    direction: Direction,
    name: &str,
) -> Result<Vec<cpal::SupportedStreamConfigRange>, DeviceError> {
    let r = match direction {
        Direction::Input => device.supported_input_configs().map(Iterator::collect),
        Direction::Output => device.supported_output_configs().map(Iterator::collect),
    };
    r.map_err(|e| DeviceError::Open {
        device: name.to_owned(),
        direction,
        message: e.to_string(),
    })
}

/// The stream error callback: log (the first few, then every 1000th), count, and mark the
/// side lost when the device is gone.
///
/// - A fatal error kind (device not available, stream invalidated, device changed) marks it
///   lost for good: cpal does not restart such a stream.
/// - Errors (xruns aside) for [`LOST_AFTER`] with no data callback in between mark it lost
///   *while the stall lasts*: a loaded sound server (PulseAudio under load) can fail a stream
///   with EIO for longer than that and then carry on, so once the side's data callbacks run
///   again it is not lost any more ([`Meters::lost`]); the next error logs that it came back.
fn on_error(meters: Arc<Meters>, direction: Direction, device: String) -> impl FnMut(cpal::Error) {
    let mut callbacks_seen = u64::MAX;
    let mut failing_since: Option<Instant> = None;
    move |e: cpal::Error| {
        let n = meters.stream_errors.fetch_add(1, Ordering::Relaxed) + 1;
        let (lost, lost_at, callbacks) = meters.side(direction);
        let callbacks = callbacks.load(Ordering::Relaxed);
        let now = Instant::now();
        if e.kind() == cpal::ErrorKind::Xrun {
            // A late callback; the backend restarts the stream. Count it and go on.
            meters.xruns.fetch_add(1, Ordering::Relaxed);
        } else if callbacks != callbacks_seen {
            failing_since = Some(now);
        }
        callbacks_seen = callbacks;
        let failing_for = failing_since.map_or(Duration::ZERO, |t| now - t);
        let fatal = matches!(
            e.kind(),
            cpal::ErrorKind::DeviceNotAvailable
                | cpal::ErrorKind::StreamInvalidated
                | cpal::ErrorKind::DeviceChanged
        );
        if let Ok(mut last) = meters.last_error.lock() {
            *last = Some(format!("{direction} {device}: {e}"));
        }
        if lost.load(Ordering::Relaxed) {
            let at = lost_at.load(Ordering::Relaxed);
            if at != LOST_FOR_GOOD && at != callbacks {
                // It ran again since it stalled: it came back (and may be stalling anew).
                lost.store(false, Ordering::Relaxed);
                tracing::info!(%device, %direction, "sound device is back after a stall");
            } else {
                // Some backends retry a vanished device forever: do not let that spin a core.
                std::thread::sleep(LOST_RETRY_PAUSE);
                return;
            }
        }
        if fatal || failing_for >= LOST_AFTER {
            lost_at.store(
                if fatal { LOST_FOR_GOOD } else { callbacks },
                Ordering::Relaxed,
            );
            if !lost.swap(true, Ordering::Relaxed) {
                tracing::warn!(%device, %direction, error = %e, fatal, "sound device lost; the call goes on without it");
            }
            return;
        }
        if n <= 5 || n.is_multiple_of(1000) {
            tracing::warn!(%device, %direction, error = %e, errors = n, "sound device stream error");
        }
        // This thread is failing, not playing: retry at most every millisecond.
        std::thread::sleep(ERROR_RETRY_PAUSE);
    }
}

/// Pause per error once a side is lost (the error callback runs on the dead stream's thread).
const LOST_RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Pause per error before that.
const ERROR_RETRY_PAUSE: Duration = Duration::from_millis(1);
/// How long a side may fail with no data callback before it counts as lost.
const LOST_AFTER: Duration = Duration::from_millis(500);
