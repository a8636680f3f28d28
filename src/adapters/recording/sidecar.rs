//! The `recording.json` sidecar of a call recording: what each file holds, tick by tick, so a
//! recording's integrity can be proved without decoding it.
//!
//! Written by [`super::RecordingWriter`] twice: when the recording starts
//! (`"finished": false`, so a crashed recording is recognisable) and when it is finalized.
//! Both writes go to a temporary file renamed over the old one, so readers never see half a
//! sidecar. The schema (camelCase JSON) is documented in the README, section Recordings.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::media::frame::{FRAME_DURATION, RTP_TICKS_PER_FRAME, SAMPLE_RATE};
use crate::media::recorder::RecordStream;

/// Sidecar schema version.
pub const SIDECAR_VERSION: u32 = 1;

/// File name of the sidecar inside a recording's directory.
pub const SIDECAR_FILE: &str = "recording.json";

/// The whole sidecar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingSidecar {
    /// [`SIDECAR_VERSION`].
    pub version: u32,
    /// The call this recording belongs to, if the caller named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// `false` while recording; `true` once the files are finalized.
    pub finished: bool,
    /// Wall-clock time of tick 0 (RFC 3339, UTC).
    pub started_at: String,
    /// `startedAt` plus `ticks` × 20 ms: media time, not a second clock reading.
    pub ended_at: String,
    /// Sample rate of every stream (48 000).
    pub sample_rate: u32,
    /// Samples per tick (960 = 20 ms).
    pub frame_samples: u32,
    /// Ticks in every stream's file (0 until finished).
    pub ticks: u64,
    /// One entry per recorded stream.
    pub streams: Vec<SidecarStream>,
    /// The integrity verdict (meaningful once finished).
    pub integrity: Integrity,
}

/// What kind of stream a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StreamKind {
    /// A call leg's received Opus packets (Ogg Opus).
    Leg,
    /// The room's mix (16-bit WAV).
    Mix,
}

/// One stream's file and its per-tick accounting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarStream {
    /// Leg or mix.
    pub kind: StreamKind,
    /// The leg's member id (legs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<u64>,
    /// File name inside the recording directory.
    pub file: String,
    /// `"ogg-opus"` or `"wav-s16le-48000-mono"`.
    pub format: String,
    /// Ogg Opus pre-skip in samples (legs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_skip: Option<u16>,
    /// First tick in the file (always 0: the tick the recorder joined the room).
    pub first_tick: u64,
    /// Last tick in the file (absent while nothing is written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tick: Option<u64>,
    /// First tick with a received packet (legs; absent if none came).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_packet_tick: Option<u64>,
    /// Last tick with a received packet (legs; absent if none came).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_packet_tick: Option<u64>,
    /// Tick counts by what the file holds for them.
    #[serde(flatten)]
    pub counts: StreamCounts,
}

/// Per-stream tick counts. `frames` is the sum of all the others: every tick of the file is
/// exactly one of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamCounts {
    /// Frames in the file (one per tick).
    pub frames: u64,
    /// Ticks with a received packet, written unchanged.
    pub received: u64,
    /// Ticks with a received packet that is not one valid 20 ms Opus packet (the room could
    /// not decode it either): written as a PLC packet so the timeline stays exact.
    pub invalid: u64,
    /// Ticks the room rebuilt from the next packet's in-band FEC (written as a PLC packet).
    pub fec: u64,
    /// Ticks the room concealed (written as a PLC packet).
    pub concealed: u64,
    /// Ticks the room played silence (written as a silence packet).
    pub silent: u64,
    /// Ticks the leg was not in the room (written as a silence packet).
    pub absent: u64,
    /// Mix ticks written (mix stream).
    pub mixed: u64,
    /// Ticks whose event was lost to recorder-queue overflow: filled (PLC packet in Ogg,
    /// silence in WAV) so the file's timeline stays exact.
    pub gap_filled: u64,
    /// Events of the wrong shape for their stream (never from a room; filled like a gap).
    pub unexpected: u64,
}

/// Whether the recording holds exactly one frame per tick from start to end.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integrity {
    /// Every stream's file holds exactly `ticks` frames, tick `i` at position `i` (true by
    /// construction once finished; checked, not assumed).
    pub exact: bool,
    /// `exact`, and every tick's event arrived: nothing was filled, nothing repeated.
    pub complete: bool,
    /// Ticks (summed over streams) lost to recorder-queue overflow and filled.
    pub missing_ticks: u64,
    /// Events that repeated or went back in time (ignored; a room never sends them).
    pub duplicate_events: u64,
    /// One sentence saying the above.
    pub verdict: String,
}

impl RecordingSidecar {
    /// A sidecar for a recording that started at `started_at` and holds `ticks` ticks.
    pub(super) fn new(
        call_id: Option<String>,
        finished: bool,
        started_at: SystemTime,
        ticks: u64,
        streams: Vec<SidecarStream>,
        integrity: Integrity,
    ) -> Self {
        let media = FRAME_DURATION.saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX));
        Self {
            version: SIDECAR_VERSION,
            call_id,
            finished,
            started_at: rfc3339(started_at),
            ended_at: rfc3339(started_at + media),
            sample_rate: SAMPLE_RATE,
            frame_samples: RTP_TICKS_PER_FRAME,
            ticks,
            streams,
            integrity,
        }
    }
}

/// The sidecar entry of one stream; `packets` are its first and last packet ticks.
pub(super) fn stream_entry(
    stream: RecordStream,
    file: &str,
    counts: StreamCounts,
    pre_skip: u16,
    packets: (Option<u64>, Option<u64>),
) -> SidecarStream {
    let (kind, member, format, pre_skip) = match stream {
        RecordStream::Leg(id) => (StreamKind::Leg, Some(id.0), "ogg-opus", Some(pre_skip)),
        RecordStream::Mix => (StreamKind::Mix, None, "wav-s16le-48000-mono", None),
    };
    SidecarStream {
        kind,
        member,
        file: file.to_string(),
        format: format.to_string(),
        pre_skip,
        first_tick: 0,
        last_tick: counts.frames.checked_sub(1),
        first_packet_tick: packets.0,
        last_packet_tick: packets.1,
        counts,
    }
}

/// Writes `sidecar` to `dir/recording.json` through a temporary file and a rename.
pub(super) fn store(dir: &Path, sidecar: &RecordingSidecar) -> io::Result<()> {
    // Serializing plain structs of strings and integers cannot fail.
    let json = serde_json::to_vec_pretty(sidecar).expect("sidecar serializes");
    let tmp = dir.join(format!("{SIDECAR_FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(&json)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(SIDECAR_FILE))
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
