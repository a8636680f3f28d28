//! [`RecordingWriter::spawn`]: a recording's writer on its own (non-real-time) thread.
//!
//! The thread drains the tap's queue every `poll`, sleeping in between on a stop channel, so it
//! ends promptly when told and never spins. It also ends by itself once the tap is dropped
//! (the room retired it) and everything queued is written.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rtrb::Consumer;

use super::{RecordingError, RecordingSummary, RecordingWriter};
use crate::media::recorder::RecordEvent;

impl RecordingWriter {
    /// Runs the writer on its own thread: it drains `events` every `poll` until
    /// [`RecordingHandle::stop`] (or until the tap is dropped and its queue is empty), then
    /// finishes.
    ///
    /// # Errors
    /// [`RecordingError::Thread`] if the thread cannot be started.
    pub fn spawn(
        self,
        mut events: Consumer<RecordEvent>,
        poll: Duration,
    ) -> Result<RecordingHandle, RecordingError> {
        let (stop, stopped) = mpsc::channel::<Option<u64>>();
        let thread = std::thread::Builder::new()
            .name("recording".into())
            .spawn(move || {
                let mut writer = self;
                loop {
                    writer.drain(&mut events)?;
                    match stopped.recv_timeout(poll) {
                        Ok(tap_ticks) => {
                            writer.drain(&mut events)?;
                            return writer.finish(tap_ticks);
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            if events.is_abandoned() && events.is_empty() {
                                return writer.finish(None);
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            writer.drain(&mut events)?;
                            return writer.finish(None);
                        }
                    }
                }
            })
            .map_err(|_| RecordingError::Thread("could not spawn"))?;
        Ok(RecordingHandle { stop, thread })
    }
}

/// The running writer thread of [`RecordingWriter::spawn`].
#[derive(Debug)]
pub struct RecordingHandle {
    stop: mpsc::Sender<Option<u64>>,
    thread: JoinHandle<Result<RecordingSummary, RecordingError>>,
}

impl RecordingHandle {
    /// Stops the thread after it has written every queued event, and finishes the recording
    /// (see [`RecordingWriter::finish`] for `tap_ticks`). Take the tap out of its room first,
    /// so no event arrives after the final drain.
    ///
    /// # Errors
    /// The writer's error, or [`RecordingError::Thread`] if it panicked.
    pub fn stop(self, tap_ticks: Option<u64>) -> Result<RecordingSummary, RecordingError> {
        // A send error means the thread already ended (error or abandoned tap): join tells.
        let _ = self.stop.send(tap_ticks);
        self.thread
            .join()
            .map_err(|_| RecordingError::Thread("panicked"))?
    }

    /// Whether the thread has ended (e.g. after its tap was dropped, or on an error).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}
