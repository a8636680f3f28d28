//! Counters shared between a sound device's callbacks and its [`DeviceHandle`]: atomics the
//! callbacks bump, and the plain snapshot [`DeviceStats`] the handle reads.
//!
//! [`DeviceHandle`]: crate::adapters::device::DeviceHandle
//!
//! # Realtime Safety
//! The data callbacks only do relaxed atomic loads, stores, adds and max/min updates; the
//! mutex holds the last error's text and is touched by the error callbacks and the handle.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::adapters::device::Direction;

/// A snapshot of a device member's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Capture callbacks run.
    pub capture_callbacks: u64,
    /// Smallest capture callback, in device frames (0 before the first).
    pub capture_callback_min: u64,
    /// Largest capture callback, in device frames.
    pub capture_callback_max: u64,
    /// 20 ms frames pushed into the room.
    pub capture_frames: u64,
    /// Frames dropped because the room had not taken the earlier ones (queue at its limit).
    pub capture_overruns: u64,
    /// Frames dropped to cut a standing backlog (≥ 1 frame waiting for a whole second).
    pub capture_trimmed: u64,
    /// Most frames found waiting in the room's queue when a new one was pushed.
    pub capture_queued_max: u64,
    /// Playback callbacks run.
    pub playback_callbacks: u64,
    /// Smallest playback callback, in device frames (0 before the first).
    pub playback_callback_min: u64,
    /// Largest playback callback, in device frames.
    pub playback_callback_max: u64,
    /// 20 ms frames taken from the room and played.
    pub playback_frames: u64,
    /// Callbacks that ran out of audio part-way (the rest was silence; playback re-primes).
    pub playback_underruns: u64,
    /// Callbacks answered with silence while priming (before the first frames, after an
    /// underrun).
    pub playback_priming: u64,
    /// Frames dropped to cut a standing backlog (≥ 20 ms spare for a whole second).
    pub playback_trimmed: u64,
    /// Largest reserve after a callback was served, in 48 kHz samples: the audio held back
    /// beyond what the device asked for (the latency this buffering adds at that moment).
    pub playback_reserve_max: u64,
    /// Reserve after the last callback, in 48 kHz samples.
    pub playback_reserve_last: u64,
    /// Largest standing reserve (the smallest reserve over a one-second window, before that
    /// window's trim), in 48 kHz samples: the latency this buffering held on to.
    pub playback_standing_max: u64,
    /// Errors the streams reported (logged: the first few, then every 1000th).
    pub stream_errors: u64,
    /// Of those, xruns: a callback came too late and the backend restarted the stream.
    pub xruns: u64,
    /// The capture stream has failed (the member is silent): for good after a fatal error
    /// (device gone), or while it stalls (errors and no data callback for 500 ms; cleared
    /// when its data callbacks resume).
    pub input_lost: bool,
    /// The playback stream has failed (the member's output is dropped), as `input_lost`.
    pub output_lost: bool,
}

/// The live counters behind [`DeviceStats`].
#[derive(Debug, Default)]
pub(crate) struct Meters {
    pub(crate) capture_callbacks: AtomicU64,
    pub(crate) capture_callback_min: AtomicU64,
    pub(crate) capture_callback_max: AtomicU64,
    pub(crate) capture_frames: AtomicU64,
    pub(crate) capture_overruns: AtomicU64,
    pub(crate) capture_trimmed: AtomicU64,
    pub(crate) capture_queued_max: AtomicU64,
    pub(crate) playback_callbacks: AtomicU64,
    pub(crate) playback_callback_min: AtomicU64,
    pub(crate) playback_callback_max: AtomicU64,
    pub(crate) playback_frames: AtomicU64,
    pub(crate) playback_underruns: AtomicU64,
    pub(crate) playback_priming: AtomicU64,
    pub(crate) playback_trimmed: AtomicU64,
    pub(crate) playback_reserve_max: AtomicU64,
    pub(crate) playback_reserve_last: AtomicU64,
    pub(crate) playback_standing_max: AtomicU64,
    pub(crate) stream_errors: AtomicU64,
    pub(crate) xruns: AtomicU64,
    pub(crate) input_lost: AtomicBool,
    pub(crate) output_lost: AtomicBool,
    /// The side's callback count when it was marked lost; [`LOST_FOR_GOOD`] after a fatal
    /// error. A side whose callbacks went on since is not lost any more.
    pub(crate) input_lost_at: AtomicU64,
    /// As `input_lost_at`.
    pub(crate) output_lost_at: AtomicU64,
    /// The last stream error's text (written only by the error callbacks, never by the
    /// data callbacks).
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Meters {
    pub(crate) fn snapshot(&self) -> DeviceStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DeviceStats {
            capture_callbacks: l(&self.capture_callbacks),
            capture_callback_min: l(&self.capture_callback_min),
            capture_callback_max: l(&self.capture_callback_max),
            capture_frames: l(&self.capture_frames),
            capture_overruns: l(&self.capture_overruns),
            capture_trimmed: l(&self.capture_trimmed),
            capture_queued_max: l(&self.capture_queued_max),
            playback_callbacks: l(&self.playback_callbacks),
            playback_callback_min: l(&self.playback_callback_min),
            playback_callback_max: l(&self.playback_callback_max),
            playback_frames: l(&self.playback_frames),
            playback_underruns: l(&self.playback_underruns),
            playback_priming: l(&self.playback_priming),
            playback_trimmed: l(&self.playback_trimmed),
            playback_reserve_max: l(&self.playback_reserve_max),
            playback_reserve_last: l(&self.playback_reserve_last),
            playback_standing_max: l(&self.playback_standing_max),
            stream_errors: l(&self.stream_errors),
            xruns: l(&self.xruns),
            input_lost: self.lost(Direction::Input),
            output_lost: self.lost(Direction::Output),
        }
    }

    /// The flag, the callback count when lost and the callback counter of one side.
    pub(crate) fn side(&self, direction: Direction) -> (&AtomicBool, &AtomicU64, &AtomicU64) {
        match direction {
            Direction::Input => (
                &self.input_lost,
                &self.input_lost_at,
                &self.capture_callbacks,
            ),
            Direction::Output => (
                &self.output_lost,
                &self.output_lost_at,
                &self.playback_callbacks,
            ),
        }
    }

    /// True while `direction` is lost: for good after a fatal error; after a stall, until
    /// its data callbacks run again.
    pub(crate) fn lost(&self, direction: Direction) -> bool {
        let (lost, at, callbacks) = self.side(direction);
        if !lost.load(Ordering::Relaxed) {
            return false;
        }
        let at = at.load(Ordering::Relaxed);
        at == LOST_FOR_GOOD || callbacks.load(Ordering::Relaxed) == at
    }
}

/// `*_lost_at` of a side that failed for good.
pub(crate) const LOST_FOR_GOOD: u64 = u64::MAX;

/// Adds one to a counter.
#[inline]
pub(crate) fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// Records a callback size in a (min, max) pair; a min of 0 means "none yet".
#[inline]
pub(crate) fn note_size(min: &AtomicU64, max: &AtomicU64, n: u64) {
    max.fetch_max(n, Ordering::Relaxed);
    let m = min.load(Ordering::Relaxed);
    if m == 0 || n < m {
        min.store(n, Ordering::Relaxed);
    }
}
