//! A call's recording writer: drains the room's recorder tap off the shard and writes the
//! caller's received Opus losslessly (Ogg Opus), the room's mix (WAV) and a sidecar (JSON)
//! that proves the timeline is whole.
//!
//! Files, in the recording directory, named after the call id (characters other than
//! `[A-Za-z0-9._-]` replaced by `_`):
//! - `{call}.caller.opus` — one Ogg Opus packet per 20 ms tick: the packet the caller's jitter
//!   buffer played, or a concealment packet for a tick without one;
//! - `{call}.mix.wav` — the room's limited full mix, 48 kHz mono 16-bit, one frame per tick;
//! - `{call}.json` — counts per kind of tick (`packets`, `fec`, `concealed`, `silence`,
//!   `absent`), ticks lost because the writer fell behind, and the file names.
//!
//! The writer is one tokio task per recorded call, waking every 20 ms; writes are buffered.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rtrb::Consumer;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::graph::CallId;
use crate::media::ogg_opus::OggOpusWriter;
use crate::media::recorder::{RecordEntry, RecordEvent, RecordStream, TimelineCheck};
use crate::media::room::MemberId;

/// Where a finished recording is.
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingFiles {
    /// The caller's received Opus, Ogg Opus.
    pub caller_opus: PathBuf,
    /// The mix, WAV.
    pub mix_wav: PathBuf,
    /// The sidecar, JSON.
    pub sidecar: PathBuf,
}

/// What the sidecar says.
#[derive(Clone, Debug, Default, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingSummary {
    /// The call.
    pub call_id: String,
    /// Ticks of the caller's stream seen (including lost ones).
    pub ticks: u64,
    /// Ticks with a received packet.
    pub packets: u64,
    /// Ticks rebuilt from FEC.
    pub fec: u64,
    /// Ticks concealed.
    pub concealed: u64,
    /// Ticks with nothing received.
    pub silence: u64,
    /// Ticks the leg was not in the room.
    pub absent: u64,
    /// Ticks lost because the writer fell behind (written as gaps).
    pub lost: u64,
    /// Mix frames written.
    pub mix_frames: u64,
    /// Write errors (the recording stops at the first one).
    pub write_errors: u64,
}

/// A running recording writer.
#[derive(Debug)]
pub struct Recording {
    stop: Arc<Notify>,
    task: JoinHandle<Option<RecordingFiles>>,
}

impl Recording {
    /// Creates the files in `dir` (created if missing) and starts draining `events`, the
    /// recorder tap's queue, whose caller stream is `leg`. Must be called inside a tokio
    /// runtime.
    ///
    /// # Errors
    /// The directory or a file could not be created.
    pub fn start(
        dir: &Path,
        call_id: &CallId,
        leg: MemberId,
        events: Consumer<RecordEvent>,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let name: String = call_id
            .as_str()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let files = RecordingFiles {
            caller_opus: dir.join(format!("{name}.caller.opus")),
            mix_wav: dir.join(format!("{name}.mix.wav")),
            sidecar: dir.join(format!("{name}.json")),
        };
        let opus = OggOpusWriter::new(
            BufWriter::new(File::create(&files.caller_opus)?),
            rand::random(),
        )?;
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = hound::WavWriter::create(&files.mix_wav, spec).map_err(io::Error::other)?;
        let writer = Writer {
            leg,
            events,
            opus: Some(opus),
            wav: Some(wav),
            timeline: TimelineCheck::new(),
            summary: RecordingSummary {
                call_id: call_id.to_string(),
                ..RecordingSummary::default()
            },
            pcm: vec![0i16; crate::media::frame::FRAME_SAMPLES],
        };
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(writer.run(Arc::clone(&stop), files));
        Ok(Self { stop, task })
    }

    /// Drains what is left, closes the files and writes the sidecar. `None` if the writer
    /// failed to finish its files.
    pub async fn finish(self) -> Option<RecordingFiles> {
        self.stop.notify_one();
        self.task.await.ok().flatten()
    }
}

struct Writer {
    leg: MemberId,
    events: Consumer<RecordEvent>,
    opus: Option<OggOpusWriter<BufWriter<File>>>,
    wav: Option<hound::WavWriter<BufWriter<File>>>,
    timeline: TimelineCheck,
    summary: RecordingSummary,
    pcm: Vec<i16>,
}

impl Writer {
    async fn run(mut self, stop: Arc<Notify>, files: RecordingFiles) -> Option<RecordingFiles> {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.drain(),
                () = stop.notified() => break,
            }
        }
        self.drain();
        self.close(&files).then_some(files)
    }

    fn drain(&mut self) {
        while let Ok(event) = self.events.pop() {
            if self.write(&event).is_err() {
                self.summary.write_errors += 1;
                self.opus = None;
                self.wav = None;
            }
        }
    }

    fn write(&mut self, event: &RecordEvent) -> io::Result<()> {
        match event.stream {
            RecordStream::Leg(id) if id == self.leg => {
                let Ok(lost) = self.timeline.observe(event) else {
                    return Ok(()); // a repeated tick (the tap never sends one)
                };
                self.summary.lost += lost;
                self.summary.ticks += lost + 1;
                let s = &mut self.summary;
                let Some(opus) = &mut self.opus else {
                    return Ok(());
                };
                for _ in 0..lost {
                    opus.write_gap()?;
                }
                match &event.entry {
                    RecordEntry::Packet { payload, .. } => {
                        s.packets += 1;
                        opus.write_packet(payload.as_slice())
                    }
                    other => {
                        match other {
                            RecordEntry::Fec => s.fec += 1,
                            RecordEntry::Concealed => s.concealed += 1,
                            RecordEntry::Absent => s.absent += 1,
                            _ => s.silence += 1,
                        }
                        opus.write_gap()
                    }
                }
            }
            RecordStream::Mix => {
                let RecordEntry::Mixed(frame) = &event.entry else {
                    return Ok(());
                };
                let Ok(lost) = self.timeline.observe(event) else {
                    return Ok(());
                };
                let Some(wav) = &mut self.wav else {
                    return Ok(());
                };
                // Lost mix ticks become silence, so the WAV keeps the call's timeline.
                let samples = self.pcm.len() as u64;
                for _ in 0..lost * samples {
                    wav.write_sample(0i16).map_err(io::Error::other)?;
                }
                frame.copy_to_i16(&mut self.pcm);
                let mut w = wav.get_i16_writer(self.pcm.len() as u32);
                for &s in &self.pcm {
                    w.write_sample(s);
                }
                w.flush().map_err(io::Error::other)?;
                self.summary.mix_frames += 1;
                Ok(())
            }
            RecordStream::Leg(_) => Ok(()),
        }
    }

    fn close(&mut self, files: &RecordingFiles) -> bool {
        let mut ok = self.summary.write_errors == 0;
        if let Some(opus) = self.opus.take() {
            ok &= opus.finish().is_ok();
        }
        if let Some(wav) = self.wav.take() {
            ok &= wav.finalize().is_ok();
        }
        let sidecar = serde_json::json!({
            "summary": &self.summary,
            "files": files,
        });
        let text = serde_json::to_vec_pretty(&sidecar).unwrap_or_default();
        ok &= std::fs::write(&files.sidecar, text).is_ok();
        ok
    }
}
