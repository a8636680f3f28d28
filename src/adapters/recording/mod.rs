//! The writer side of a room's recorder tap: drains its [`RecordEvent`]s off the shard and
//! writes one directory per call.
//!
//! ```text
//! <dir>/leg-<member>.opus   one per recorded call leg: Ogg Opus, the received packets unchanged
//! <dir>/mix.wav             the room's mix, 16-bit 48 kHz mono (if the tap records the mix)
//! <dir>/recording.json      the sidecar (see RecordingSidecar)
//! ```
//!
//! **Every file holds exactly one 20 ms frame per tick**, from the tick the tap joined the room
//! (tick 0) to the last tick of the recording, in every stream, so files line up with each
//! other and with the room's clock. A leg's tick becomes:
//!
//! | the room played | written to `leg-<member>.opus` |
//! | --- | --- |
//! | a received packet | the packet, byte for byte |
//! | a received packet that is not one valid 20 ms Opus packet | [`PLC_PACKET`] (counted `invalid`) |
//! | FEC / concealment | [`PLC_PACKET`]: a TOC-only packet; the player's decoder conceals, as the room did |
//! | silence, or the leg was absent | [`SILENCE_PACKET`]: decodes to digital silence, as the room played |
//! | nothing (event lost to recorder-queue overflow) | [`PLC_PACKET`] (counted `gapFilled`) |
//!
//! so granule positions advance exactly 960 per tick. A mix tick is its 960 samples, or 960
//! zeros for a tick whose event was lost. The sidecar counts each case per stream and gives a
//! verdict (`complete` when no tick had to be filled).
//!
//! [`RecordingWriter`] is a plain value: feed it events ([`RecordingWriter::write_event`],
//! [`RecordingWriter::drain`]) from any non-real-time thread or a tokio blocking task, then
//! [`RecordingWriter::finish`]. [`WriterThread`] runs that loop for every recording of a host
//! on one thread ([`RecordingHandle`]); [`RecordingWriter::spawn`] on a thread of its own.
//! It allocates and blocks on the file system freely: never run it on a shard.

mod sidecar;
mod thread;

pub use sidecar::{
    Integrity, RecordingSidecar, SIDECAR_FILE, SIDECAR_VERSION, SidecarStream, StreamCounts,
    StreamKind,
};
pub use thread::{RecordingHandle, WriterThread};

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::media::record_queue::RecordEvents;

use crate::media::codec::packet_duration;
use crate::media::frame::{FRAME_SAMPLES, RTP_TICKS_PER_FRAME, SAMPLE_RATE};
use crate::media::ogg_opus::{
    DEFAULT_PRE_SKIP, OggError, OggOpusWriter, OpusHead, PLC_PACKET, SILENCE_PACKET, VENDOR,
};
use crate::media::recorder::{RecordEntry, RecordEvent, RecordStream, RecorderConfig};

/// Why a recording could not be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    /// A file-system operation failed on `path`.
    #[error("{path}: {kind:?}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        kind: io::ErrorKind,
    },
    /// Writing an Ogg Opus file failed.
    #[error("{path}: {error}")]
    Ogg {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: OggError,
    },
    /// Writing the WAV file failed (hound's message).
    #[error("{path}: {message}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The writer thread panicked or could not be started.
    #[error("recording thread: {0}")]
    Thread(&'static str),
}

/// How to write a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingOptions {
    /// Wall-clock time of tick 0 (the sidecar's `startedAt`).
    pub started_at: SystemTime,
    /// The call's id, written into the sidecar and each Ogg file's tags.
    pub call_id: Option<String>,
    /// Ogg Opus pre-skip (default 312, libopus's lookahead; the senders' real value is unknown).
    pub pre_skip: u16,
    /// Opus packets per Ogg page (default 10 = 200 ms; 1..=42).
    pub packets_per_page: usize,
    /// Make the files readable on disk every this many ticks (Ogg page flushed, WAV header
    /// fixed), so a crash loses at most that much; 0 = only at the end. Default 50 (1 s).
    pub flush_every_ticks: u64,
}

impl Default for RecordingOptions {
    fn default() -> Self {
        Self {
            started_at: SystemTime::now(),
            call_id: None,
            pre_skip: DEFAULT_PRE_SKIP,
            packets_per_page: 10,
            flush_every_ticks: 50,
        }
    }
}

/// One stream of a finished recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream.
    pub stream: RecordStream,
    /// Its file.
    pub path: PathBuf,
    /// What its ticks hold.
    pub counts: StreamCounts,
    /// First tick with a received packet (legs).
    pub first_packet_tick: Option<u64>,
    /// Last tick with a received packet (legs).
    pub last_packet_tick: Option<u64>,
}

/// What a finished recording wrote, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSummary {
    /// The recording's directory.
    pub dir: PathBuf,
    /// The sidecar's path.
    pub sidecar: PathBuf,
    /// Ticks in every file.
    pub ticks: u64,
    /// The streams, legs in the order first seen, then the mix.
    pub streams: Vec<StreamSummary>,
    /// The integrity verdict, as in the sidecar.
    pub integrity: Integrity,
}

enum Sink {
    Ogg(OggOpusWriter<BufWriter<File>>),
    Wav(hound::WavWriter<BufWriter<File>>),
}

struct StreamState {
    stream: RecordStream,
    file: String,
    path: PathBuf,
    sink: Sink,
    counts: StreamCounts,
    first_packet_tick: Option<u64>,
    last_packet_tick: Option<u64>,
}

/// What a tick of a stream holds, once decided.
enum Fill<'a> {
    Opus(&'a [u8]),
    Pcm(Option<&'a [i16; FRAME_SAMPLES]>),
}

/// Writes one call's recording from a recorder tap's events.
pub struct RecordingWriter {
    dir: PathBuf,
    options: RecordingOptions,
    streams: Vec<StreamState>,
    duplicates: u64,
    pcm: Vec<i16>,
}

impl std::fmt::Debug for RecordingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingWriter")
            .field("dir", &self.dir)
            .field("streams", &self.streams.len())
            .field("duplicates", &self.duplicates)
            .finish_non_exhaustive()
    }
}

impl RecordingWriter {
    /// Creates `dir` (and its parents) and one file per stream `config` records, and writes a
    /// first sidecar (`"finished": false`). Existing files are never overwritten.
    ///
    /// # Errors
    /// [`RecordingError::Io`] (e.g. `AlreadyExists` when `dir` already holds a recording),
    /// [`RecordingError::Ogg`], [`RecordingError::Wav`].
    pub fn create(
        dir: impl Into<PathBuf>,
        config: &RecorderConfig,
        options: RecordingOptions,
    ) -> Result<Self, RecordingError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, &e))?;
        let sidecar = dir.join(SIDECAR_FILE);
        if sidecar.exists() {
            return Err(RecordingError::Io {
                path: sidecar,
                kind: io::ErrorKind::AlreadyExists,
            });
        }
        let mut writer = Self {
            dir,
            options,
            streams: Vec::new(),
            duplicates: 0,
            pcm: vec![0; FRAME_SAMPLES],
        };
        let legs = config
            .legs
            .iter()
            .take(crate::media::recorder::MAX_RECORDED_LEGS);
        for &leg in legs {
            writer.stream_index(RecordStream::Leg(leg))?;
        }
        if config.mix {
            writer.stream_index(RecordStream::Mix)?;
        }
        writer.write_sidecar(false, 0, writer.sidecar_streams(), Integrity::default())?;
        Ok(writer)
    }

    /// Writes one event. A tick missing before it (lost to recorder-queue overflow) is filled
    /// and counted first; an event that repeats or goes back in time is ignored and counted.
    ///
    /// # Errors
    /// An IO, Ogg or WAV error; the recording is then incomplete.
    pub fn write_event(&mut self, event: &RecordEvent) -> Result<(), RecordingError> {
        let i = self.stream_index(event.stream)?;
        let done = self.streams[i].counts.frames;
        if event.tick < done {
            self.duplicates += 1;
            return Ok(());
        }
        self.fill_gap(i, event.tick)?;
        self.write_tick(i, event.tick, &event.entry)
    }

    /// Writes every event waiting in `events`; returns how many.
    ///
    /// # Errors
    /// As [`Self::write_event`].
    pub fn drain(&mut self, events: &mut RecordEvents) -> Result<usize, RecordingError> {
        let mut n = 0;
        while let Ok(event) = events.pop() {
            self.write_event(&event)?;
            n += 1;
        }
        Ok(n)
    }

    /// Ticks written so far in the longest stream.
    pub fn ticks(&self) -> u64 {
        self.streams
            .iter()
            .map(|s| s.counts.frames)
            .max()
            .unwrap_or(0)
    }

    /// Finalizes: pads every stream to the same length (`tap_ticks`, the tap's
    /// [`crate::media::recorder::RecorderTap::ticks`] when known, so trailing ticks lost to
    /// overflow are counted too; else the longest stream), ends the Ogg streams, fixes the WAV
    /// header, writes the final sidecar and returns the summary.
    ///
    /// # Errors
    /// An IO, Ogg or WAV error.
    pub fn finish(mut self, tap_ticks: Option<u64>) -> Result<RecordingSummary, RecordingError> {
        let ticks = tap_ticks.unwrap_or(0).max(self.ticks());
        for i in 0..self.streams.len() {
            self.fill_gap(i, ticks)?;
        }
        let integrity = self.integrity(ticks);
        let entries = self.sidecar_streams();
        let mut streams = Vec::with_capacity(self.streams.len());
        for s in self.streams.drain(..) {
            match s.sink {
                Sink::Ogg(w) => {
                    w.finish().map_err(|error| RecordingError::Ogg {
                        path: s.path.clone(),
                        error,
                    })?;
                }
                Sink::Wav(w) => w.finalize().map_err(|e| wav_err(&s.path, &e))?,
            }
            streams.push(StreamSummary {
                stream: s.stream,
                path: s.path,
                counts: s.counts,
                first_packet_tick: s.first_packet_tick,
                last_packet_tick: s.last_packet_tick,
            });
        }
        let sidecar = self.dir.join(SIDECAR_FILE);
        let summary = RecordingSummary {
            dir: self.dir.clone(),
            sidecar,
            ticks,
            streams,
            integrity,
        };
        self.write_sidecar(true, ticks, entries, summary.integrity.clone())?;
        Ok(summary)
    }

    fn stream_index(&mut self, stream: RecordStream) -> Result<usize, RecordingError> {
        if let Some(i) = self.streams.iter().position(|s| s.stream == stream) {
            return Ok(i);
        }
        let file = match stream {
            RecordStream::Leg(id) => format!("leg-{}.opus", id.0),
            RecordStream::Mix => "mix.wav".to_string(),
        };
        let path = self.dir.join(&file);
        let out = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err(&path, &e))?;
        let out = BufWriter::new(out);
        let sink = match stream {
            RecordStream::Leg(id) => {
                let head = OpusHead {
                    pre_skip: self.options.pre_skip,
                    ..OpusHead::default()
                };
                let member = id.0.to_string();
                let mut tags = vec![("MEMBER", member.as_str())];
                if let Some(call) = &self.options.call_id {
                    tags.push(("CALL_ID", call.as_str()));
                }
                let serial = rand::random::<u32>();
                let w = OggOpusWriter::new(
                    out,
                    serial,
                    head,
                    VENDOR,
                    &tags,
                    self.options.packets_per_page,
                )
                .map_err(|error| RecordingError::Ogg {
                    path: path.clone(),
                    error,
                })?;
                Sink::Ogg(w)
            }
            RecordStream::Mix => {
                let spec = hound::WavSpec {
                    channels: 1,
                    sample_rate: SAMPLE_RATE,
                    bits_per_sample: 16,
                    sample_format: hound::SampleFormat::Int,
                };
                Sink::Wav(hound::WavWriter::new(out, spec).map_err(|e| wav_err(&path, &e))?)
            }
        };
        self.streams.push(StreamState {
            stream,
            file,
            path,
            sink,
            counts: StreamCounts::default(),
            first_packet_tick: None,
            last_packet_tick: None,
        });
        Ok(self.streams.len() - 1)
    }

    /// Fills stream `i` up to (not including) `tick` with gap frames.
    fn fill_gap(&mut self, i: usize, tick: u64) -> Result<(), RecordingError> {
        while self.streams[i].counts.frames < tick {
            self.streams[i].counts.gap_filled += 1;
            let fill = match self.streams[i].stream {
                RecordStream::Leg(_) => Fill::Opus(&PLC_PACKET),
                RecordStream::Mix => Fill::Pcm(None),
            };
            self.put(i, fill)?;
        }
        Ok(())
    }

    fn write_tick(
        &mut self,
        i: usize,
        tick: u64,
        entry: &RecordEntry,
    ) -> Result<(), RecordingError> {
        let leg = matches!(self.streams[i].stream, RecordStream::Leg(_));
        let s = &mut self.streams[i];
        let fill = match (leg, entry) {
            (true, RecordEntry::Packet { payload, .. }) => {
                s.counts.received += 1;
                s.first_packet_tick.get_or_insert(tick);
                s.last_packet_tick = Some(tick);
                let bytes = payload.as_slice();
                if packet_duration(bytes) == Ok(RTP_TICKS_PER_FRAME) {
                    Fill::Opus(bytes)
                } else {
                    s.counts.invalid += 1;
                    Fill::Opus(&PLC_PACKET)
                }
            }
            (true, RecordEntry::Fec) => {
                s.counts.fec += 1;
                Fill::Opus(&PLC_PACKET)
            }
            (true, RecordEntry::Concealed) => {
                s.counts.concealed += 1;
                Fill::Opus(&PLC_PACKET)
            }
            (true, RecordEntry::Silence) => {
                s.counts.silent += 1;
                Fill::Opus(&SILENCE_PACKET)
            }
            (true, RecordEntry::Absent) => {
                s.counts.absent += 1;
                Fill::Opus(&SILENCE_PACKET)
            }
            (false, RecordEntry::Mixed(frame)) => {
                s.counts.mixed += 1;
                Fill::Pcm(Some(frame))
            }
            (true, RecordEntry::Mixed(_)) => {
                s.counts.unexpected += 1;
                Fill::Opus(&PLC_PACKET)
            }
            (false, _) => {
                s.counts.unexpected += 1;
                Fill::Pcm(None)
            }
        };
        self.put(i, fill)
    }

    /// Appends one tick's frame to stream `i`.
    fn put(&mut self, i: usize, fill: Fill<'_>) -> Result<(), RecordingError> {
        let every = self.options.flush_every_ticks;
        let s = &mut self.streams[i];
        s.counts.frames += 1;
        let flush = every > 0 && s.counts.frames.is_multiple_of(every);
        match (&mut s.sink, fill) {
            (Sink::Ogg(w), Fill::Opus(bytes)) => {
                let ogg = |error| RecordingError::Ogg {
                    path: s.path.clone(),
                    error,
                };
                w.write_packet(bytes, RTP_TICKS_PER_FRAME).map_err(ogg)?;
                if flush {
                    w.flush().map_err(ogg)?;
                }
            }
            (Sink::Wav(w), fill) => {
                match fill {
                    Fill::Pcm(Some(frame)) => self.pcm.copy_from_slice(frame),
                    _ => self.pcm.fill(0),
                }
                let mut samples = w.get_i16_writer(FRAME_SAMPLES as u32);
                for &x in &self.pcm {
                    samples.write_sample(x);
                }
                samples.flush().map_err(|e| wav_err(&s.path, &e))?;
                if flush {
                    w.flush().map_err(|e| wav_err(&s.path, &e))?;
                }
            }
            // `write_tick` and `fill_gap` pick the fill from the stream's kind.
            (Sink::Ogg(_), Fill::Pcm(_)) => unreachable!("PCM fill for an Ogg stream"),
        }
        Ok(())
    }

    fn integrity(&self, ticks: u64) -> Integrity {
        let exact = self.streams.iter().all(|s| s.counts.frames == ticks);
        let missing: u64 = self.streams.iter().map(|s| s.counts.gap_filled).sum();
        let unexpected: u64 = self.streams.iter().map(|s| s.counts.unexpected).sum();
        let complete = exact && missing == 0 && unexpected == 0 && self.duplicates == 0;
        let verdict = if !exact {
            "streams differ in length: the timeline is not exact".to_string()
        } else if complete {
            format!("complete: exactly one frame per tick in every stream, ticks 0..{ticks}")
        } else {
            format!(
                "exact with gaps filled: {missing} stream-ticks lost to recorder-queue \
                 overflow were filled (PLC packets in Ogg, silence in WAV) and {} events \
                 ignored, so every file still holds one frame per tick, ticks 0..{ticks}",
                self.duplicates + unexpected
            )
        };
        Integrity {
            exact,
            complete,
            missing_ticks: missing,
            duplicate_events: self.duplicates,
            verdict,
        }
    }

    fn sidecar_streams(&self) -> Vec<SidecarStream> {
        self.streams
            .iter()
            .map(|s| {
                sidecar::stream_entry(
                    s.stream,
                    &s.file,
                    s.counts,
                    self.options.pre_skip,
                    (s.first_packet_tick, s.last_packet_tick),
                )
            })
            .collect()
    }

    fn write_sidecar(
        &self,
        finished: bool,
        ticks: u64,
        streams: Vec<SidecarStream>,
        integrity: Integrity,
    ) -> Result<(), RecordingError> {
        let doc = RecordingSidecar::new(
            self.options.call_id.clone(),
            finished,
            self.options.started_at,
            ticks,
            streams,
            integrity,
        );
        sidecar::store(&self.dir, &doc).map_err(|e| io_err(&self.dir.join(SIDECAR_FILE), &e))
    }
}

fn io_err(path: &Path, e: &io::Error) -> RecordingError {
    RecordingError::Io {
        path: path.to_path_buf(),
        kind: e.kind(),
    }
}

fn wav_err(path: &Path, e: &hound::Error) -> RecordingError {
    RecordingError::Wav {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::packet::{OpusPacket, RtpMeta};
    use crate::media::room::MemberId;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mediabot-recording-unit-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn event(tick: u64, stream: RecordStream, entry: RecordEntry) -> RecordEvent {
        RecordEvent {
            tick,
            stream,
            entry,
        }
    }

    fn leg_only() -> RecorderConfig {
        RecorderConfig {
            legs: vec![MemberId(3)],
            mix: false,
            capacity: 8,
        }
    }

    #[test]
    fn an_existing_recording_is_never_overwritten() {
        let dir = temp_dir("exists");
        let first = RecordingWriter::create(&dir, &leg_only(), RecordingOptions::default());
        assert!(first.is_ok());
        let again = RecordingWriter::create(&dir, &leg_only(), RecordingOptions::default());
        assert!(matches!(
            again,
            Err(RecordingError::Io {
                kind: io::ErrorKind::AlreadyExists,
                ..
            })
        ));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn repeats_are_ignored_invalid_packets_replaced_and_unknown_streams_backfilled() {
        let dir = temp_dir("repeats");
        let mut w = RecordingWriter::create(&dir, &leg_only(), RecordingOptions::default())
            .expect("create");
        let leg = RecordStream::Leg(MemberId(3));
        let good = OpusPacket::from_slice(&SILENCE_PACKET).expect("packet");
        // A 40 ms packet (code 1, two 20 ms frames): valid Opus, but not one tick.
        let long = OpusPacket::from_slice(&[0xf9, 0xff, 0xfe]).expect("packet");
        let packet = |payload| RecordEntry::Packet {
            meta: RtpMeta::default(),
            payload,
        };
        w.write_event(&event(0, leg, packet(good))).expect("write");
        w.write_event(&event(0, leg, packet(good))).expect("repeat");
        w.write_event(&event(1, leg, packet(long))).expect("write");
        // A leg the config did not name shows up at tick 2: ticks 0 and 1 were lost.
        let other = RecordStream::Leg(MemberId(4));
        w.write_event(&event(2, other, RecordEntry::Concealed))
            .expect("write");
        let summary = w.finish(Some(4)).expect("finish");
        assert_eq!(summary.ticks, 4);
        let c3 = summary.streams[0].counts;
        assert_eq!(
            (c3.frames, c3.received, c3.invalid, c3.gap_filled),
            (4, 2, 1, 2)
        );
        let c4 = summary.streams[1].counts;
        assert_eq!((c4.frames, c4.concealed, c4.gap_filled), (4, 1, 3));
        assert_eq!(summary.integrity.duplicate_events, 1);
        assert!(summary.integrity.exact && !summary.integrity.complete);
        let bytes = fs::read(dir.join("leg-3.opus")).expect("file");
        let file = crate::media::ogg_opus::OggOpusFile::parse(&bytes).expect("valid");
        let data: Vec<&[u8]> = file.packets.iter().map(|p| p.data.as_slice()).collect();
        assert_eq!(
            data,
            [&SILENCE_PACKET[..], &PLC_PACKET, &PLC_PACKET, &PLC_PACKET]
        );
        assert!(dir.join("leg-4.opus").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_first_sidecar_marks_a_recording_in_progress() {
        let dir = temp_dir("progress");
        let _w = RecordingWriter::create(&dir, &leg_only(), RecordingOptions::default())
            .expect("create");
        let side: RecordingSidecar =
            serde_json::from_slice(&fs::read(dir.join(SIDECAR_FILE)).expect("sidecar"))
                .expect("json");
        assert!(!side.finished);
        assert_eq!(side.streams[0].file, "leg-3.opus");
        let _ = fs::remove_dir_all(&dir);
    }
}
