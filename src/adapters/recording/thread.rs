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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::adapters::recording::RecordingOptions;
    use crate::media::recorder::{RecorderConfig, RecorderTap};
    use crate::media::room::MemberId;

    #[test]
    fn the_thread_finishes_by_itself_when_the_tap_is_dropped() {
        let dir =
            std::env::temp_dir().join(format!("mediabot-recording-thread-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = RecorderConfig {
            legs: vec![MemberId(1)],
            mix: true,
            capacity: 64,
        };
        let (mut tap, events) = RecorderTap::new(&config);
        let writer =
            RecordingWriter::create(&dir, &config, RecordingOptions::default()).expect("create");
        let handle = writer
            .spawn(events, Duration::from_millis(1))
            .expect("thread");
        for _ in 0..5 {
            tap.record_leg(MemberId(1), None);
            tap.record_mix(&crate::media::frame::AudioFrame::silence());
            tap.end_tick();
        }
        drop(tap);
        // Bounded wait for the thread to notice; the assertion is on what it wrote.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(handle.is_finished(), "ended without being told");
        let summary = handle.stop(None).expect("summary");
        assert_eq!(summary.ticks, 5);
        assert!(summary.integrity.complete);
        assert_eq!(summary.streams[0].counts.absent, 5);
        assert_eq!(summary.streams[1].counts.mixed, 5);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
