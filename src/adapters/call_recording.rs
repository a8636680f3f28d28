//! A call's recording as the media host runs it: the room's recorder tap drained by a
//! [`RecordingWriter`] in one tokio task, into `<record_dir>/<call-id>/`.
//!
//! The directory holds what [`super::recording`] writes: `leg-<member>.opus` (the caller's
//! received Opus, one packet per tick), `mix.wav` (the room's mix) and `recording.json` (the
//! sidecar). The call id becomes one path component: characters other than `[A-Za-z0-9._-]`
//! are replaced by `_`, and a call that already has a recording there gets `-2`, `-3`, … .
//!
//! The task wakes every 20 ms and writes what the tap queued (buffered writes; the recorder
//! queue holds a few ticks of slack). It ends when told ([`CallRecording::finish`]) or when
//! the tap is dropped and everything queued is written.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rtrb::Consumer;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::recording::{
    RecordingError, RecordingOptions, RecordingSummary, RecordingWriter, SIDECAR_FILE,
};
use crate::graph::CallId;
use crate::media::recorder::{RecordEvent, RecorderConfig};
use crate::media::room::MemberId;

/// Where a finished call recording is.
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingFiles {
    /// The call's recording directory.
    pub dir: PathBuf,
    /// The caller's received Opus, Ogg Opus (`leg-<member>.opus`).
    pub caller_opus: PathBuf,
    /// The room's mix, WAV (`mix.wav`).
    pub mix_wav: PathBuf,
    /// The sidecar, JSON (`recording.json`).
    pub sidecar: PathBuf,
    /// Ticks recorded.
    pub ticks: u64,
    /// Every tick's event arrived: nothing was filled (see [`super::recording::Integrity`]).
    pub complete: bool,
}

/// A running call recording.
#[derive(Debug)]
pub struct CallRecording {
    stop: Arc<Notify>,
    task: JoinHandle<Result<RecordingSummary, RecordingError>>,
    files: RecordingFiles,
}

impl CallRecording {
    /// Creates `<dir>/<call-id>/` and its files and starts draining `events`, the queue of a
    /// recorder tap configured by `config` whose caller leg is `leg`. Must be called inside a
    /// tokio runtime.
    ///
    /// # Errors
    /// The directory or a file could not be created.
    pub fn start(
        dir: &Path,
        call_id: &CallId,
        leg: MemberId,
        config: &RecorderConfig,
        events: Consumer<RecordEvent>,
    ) -> Result<Self, RecordingError> {
        let name = path_component(call_id.as_str());
        let mut call_dir = dir.join(&name);
        let mut n = 1;
        while call_dir.join(SIDECAR_FILE).exists() && n < 1000 {
            n += 1;
            call_dir = dir.join(format!("{name}-{n}"));
        }
        let options = RecordingOptions {
            call_id: Some(call_id.to_string()),
            ..RecordingOptions::default()
        };
        let writer = RecordingWriter::create(&call_dir, config, options)?;
        let files = RecordingFiles {
            caller_opus: call_dir.join(format!("leg-{}.opus", leg.0)),
            mix_wav: call_dir.join("mix.wav"),
            sidecar: call_dir.join(SIDECAR_FILE),
            dir: call_dir,
            ticks: 0,
            complete: false,
        };
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(run(writer, events, Arc::clone(&stop)));
        Ok(Self { stop, task, files })
    }

    /// The files being written.
    pub fn files(&self) -> &RecordingFiles {
        &self.files
    }

    /// Writes what is left, closes the files and writes the final sidecar. `None` if the
    /// writer failed (the files may then be incomplete; the error is logged).
    pub async fn finish(self) -> Option<RecordingFiles> {
        self.stop.notify_one();
        match self.task.await {
            Ok(Ok(summary)) => Some(RecordingFiles {
                ticks: summary.ticks,
                complete: summary.integrity.complete,
                ..self.files
            }),
            Ok(Err(e)) => {
                tracing::warn!(dir = %self.files.dir.display(), error = %e, "recording failed");
                None
            }
            Err(e) => {
                tracing::warn!(dir = %self.files.dir.display(), error = %e, "recording task");
                None
            }
        }
    }
}

async fn run(
    mut writer: RecordingWriter,
    mut events: Consumer<RecordEvent>,
    stop: Arc<Notify>,
) -> Result<RecordingSummary, RecordingError> {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                writer.drain(&mut events)?;
                if events.is_abandoned() && events.is_empty() {
                    break;
                }
            }
            () = stop.notified() => break,
        }
    }
    writer.drain(&mut events)?;
    writer.finish(None)
}

/// `id` as one safe path component.
fn path_component(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.as_str() {
        "" | "." | ".." => format!("call{s}"),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_become_one_safe_path_component() {
        assert_eq!(path_component("a1-b2.c_3"), "a1-b2.c_3");
        assert_eq!(path_component("../x/y"), ".._x_y");
        assert_eq!(path_component(".."), "call..");
        assert_eq!(path_component(""), "call");
    }
}
