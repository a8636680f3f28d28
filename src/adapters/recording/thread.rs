//! [`WriterThread`]: one (non-real-time) thread that writes every recording of a media host.
//!
//! Each recording is a [`RecordingWriter`] and the consumer end of its tap's queue. The
//! thread drains every recording's queue each `poll`, sleeping in between on its command
//! channel, so it never spins and acts on a stop at once. A recording ends when its
//! [`RecordingHandle::stop`] is called (its queue is drained first), or by itself once its
//! tap is dropped (the room retired it) and everything queued is written, or on a write
//! error; its result goes back through the handle. The thread ends once every
//! [`WriterThread`] handle is gone and its last recording has ended.
//!
//! One thread for all calls instead of one per call: a thread's stack and allocator cache
//! cost tens of KiB of RSS per call and an OS thread per call does not scale to thousands of
//! calls. The price: a write that blocks (a stalled disk) delays every recording's drain,
//! and a tap whose queue fills meanwhile drops events, counted and filled as gaps (see the
//! module above), never a stalled shard.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{RecordingError, RecordingSummary, RecordingWriter};
use crate::media::record_queue::RecordEvents;

/// A running writer thread; clone it freely (every clone adds to the same thread).
#[derive(Clone, Debug)]
pub struct WriterThread {
    commands: mpsc::Sender<Command>,
}

enum Command {
    Add(Box<Active>),
    Stop { id: u64, tap_ticks: Option<u64> },
}

/// One recording the thread writes.
struct Active {
    id: u64,
    writer: RecordingWriter,
    events: RecordEvents,
    done: mpsc::SyncSender<Result<RecordingSummary, RecordingError>>,
}

impl WriterThread {
    /// Starts the thread; it drains every recording's queue each `poll`.
    ///
    /// # Errors
    /// [`RecordingError::Thread`] if the thread cannot be started.
    pub fn start(poll: Duration) -> Result<Self, RecordingError> {
        let (commands, inbox) = mpsc::channel();
        std::thread::Builder::new()
            .name("recording".into())
            .spawn(move || run(&inbox, poll))
            .map_err(|_| RecordingError::Thread("could not spawn"))?;
        Ok(Self { commands })
    }

    /// Hands a recording to the thread: it writes what `events` delivers until stopped (or
    /// until the tap is dropped and its queue is empty).
    ///
    /// # Errors
    /// [`RecordingError::Thread`] if the thread has ended (it panicked).
    pub fn add(
        &self,
        writer: RecordingWriter,
        events: RecordEvents,
    ) -> Result<RecordingHandle, RecordingError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (done, result) = mpsc::sync_channel(1);
        self.commands
            .send(Command::Add(Box::new(Active {
                id,
                writer,
                events,
                done,
            })))
            .map_err(|_| RecordingError::Thread("the writer thread has ended"))?;
        Ok(RecordingHandle {
            id,
            commands: self.commands.clone(),
            result,
            finished: None,
        })
    }
}

/// The thread's loop.
fn run(inbox: &mpsc::Receiver<Command>, poll: Duration) {
    let mut active: Vec<Active> = Vec::new();
    let mut next_poll = Instant::now() + poll;
    let mut open = true;
    while open || !active.is_empty() {
        // Wait for a command or the next poll; with no recordings, only for a command.
        let command = if active.is_empty() {
            inbox.recv().ok()
        } else if !open {
            // Every handle is gone: no command can come; just keep polling.
            std::thread::sleep(next_poll.saturating_duration_since(Instant::now()));
            None
        } else {
            match inbox.recv_timeout(next_poll.saturating_duration_since(Instant::now())) {
                Ok(c) => Some(c),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    open = false;
                    None
                }
            }
        };
        match command {
            Some(Command::Add(rec)) => active.push(*rec),
            Some(Command::Stop { id, tap_ticks }) => {
                if let Some(i) = active.iter().position(|r| r.id == id) {
                    let mut rec = active.swap_remove(i);
                    let result = rec
                        .writer
                        .drain(&mut rec.events)
                        .and_then(|_| rec.writer.finish(tap_ticks));
                    let _ = rec.done.send(result);
                }
            }
            None if active.is_empty() => open = false,
            None => {}
        }
        if Instant::now() < next_poll {
            continue;
        }
        next_poll = Instant::now() + poll;
        let mut i = 0;
        while i < active.len() {
            let rec = &mut active[i];
            let outcome = match rec.writer.drain(&mut rec.events) {
                Err(e) => Some(Err(e)),
                Ok(_) if rec.events.is_abandoned() && rec.events.is_empty() => Some(Ok(())),
                Ok(_) => None,
            };
            match outcome {
                None => i += 1,
                Some(ended) => {
                    let rec = active.swap_remove(i);
                    let result = ended.and_then(|()| rec.writer.finish(None));
                    let _ = rec.done.send(result);
                }
            }
        }
    }
}

/// One recording on a [`WriterThread`].
#[derive(Debug)]
pub struct RecordingHandle {
    id: u64,
    commands: mpsc::Sender<Command>,
    result: mpsc::Receiver<Result<RecordingSummary, RecordingError>>,
    /// The result, once [`Self::is_finished`] has seen it.
    finished: Option<Result<RecordingSummary, RecordingError>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Add(rec) => write!(f, "Add({})", rec.id),
            Self::Stop { id, tap_ticks } => write!(f, "Stop({id}, {tap_ticks:?})"),
        }
    }
}

impl RecordingHandle {
    /// Writes every queued event and finishes the recording (see [`RecordingWriter::finish`]
    /// for `tap_ticks`); blocks until the writer thread has done so. Take the tap out of its
    /// room first, so no event arrives after the final drain.
    ///
    /// # Errors
    /// The writer's error, or [`RecordingError::Thread`] if the thread died.
    pub fn stop(mut self, tap_ticks: Option<u64>) -> Result<RecordingSummary, RecordingError> {
        if let Some(result) = self.finished.take() {
            return result;
        }
        // A send error means the thread is gone; the receive below then says so.
        let _ = self.commands.send(Command::Stop {
            id: self.id,
            tap_ticks,
        });
        self.result
            .recv()
            .map_err(|_| RecordingError::Thread("the writer thread died"))?
    }

    /// Whether the recording has ended by itself (its tap was dropped, or a write failed).
    pub fn is_finished(&mut self) -> bool {
        if self.finished.is_none() {
            match self.result.try_recv() {
                Ok(result) => self.finished = Some(result),
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.finished = Some(Err(RecordingError::Thread("the writer thread died")));
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
        }
        self.finished.is_some()
    }
}

impl RecordingWriter {
    /// Runs this recording on a writer thread of its own (a [`WriterThread`] with one
    /// recording; it ends with it): it drains `events` every `poll` until
    /// [`RecordingHandle::stop`] (or until the tap is dropped and its queue is empty).
    ///
    /// # Errors
    /// [`RecordingError::Thread`] if the thread cannot be started.
    pub fn spawn(
        self,
        events: RecordEvents,
        poll: Duration,
    ) -> Result<RecordingHandle, RecordingError> {
        WriterThread::start(poll)?.add(self, events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::recording::RecordingOptions;
    use crate::media::frame::AudioFrame;
    use crate::media::recorder::{RecorderConfig, RecorderTap};
    use crate::media::room::MemberId;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mediabot-recording-thread-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn tap() -> (RecorderTap, RecordEvents, RecorderConfig) {
        let config = RecorderConfig {
            legs: vec![MemberId(1)],
            mix: true,
            capacity: 64,
        };
        let (tap, events) = RecorderTap::new(&config);
        (tap, events, config)
    }

    fn ticks(tap: &mut RecorderTap, n: usize) {
        for _ in 0..n {
            tap.record_leg(MemberId(1), None);
            tap.record_mix(&AudioFrame::silence());
            tap.end_tick();
        }
    }

    #[test]
    fn the_recording_finishes_by_itself_when_the_tap_is_dropped() {
        let dir = temp_dir("dropped");
        let (mut tap, events, config) = tap();
        let writer =
            RecordingWriter::create(&dir, &config, RecordingOptions::default()).expect("create");
        let mut handle = writer
            .spawn(events, Duration::from_millis(1))
            .expect("thread");
        ticks(&mut tap, 5);
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

    /// One thread writes several recordings side by side; stopping one leaves the others
    /// running, and each gets its own complete result.
    #[test]
    fn one_thread_writes_several_recordings() {
        let thread = WriterThread::start(Duration::from_millis(1)).expect("thread");
        let dirs: Vec<_> = (0..3).map(|i| temp_dir(&format!("several-{i}"))).collect();
        let mut recordings: Vec<_> = dirs
            .iter()
            .map(|dir| {
                let (tap, events, config) = tap();
                let writer = RecordingWriter::create(dir, &config, RecordingOptions::default())
                    .expect("create");
                (tap, thread.add(writer, events).expect("add"))
            })
            .collect();
        for (n, (tap, _)) in recordings.iter_mut().enumerate() {
            ticks(tap, 3 + n);
        }
        // Stop the middle one; the others keep being written.
        let (tap, handle) = recordings.remove(1);
        drop(tap);
        assert_eq!(handle.stop(Some(4)).expect("summary").ticks, 4);
        for (tap, _) in &mut recordings {
            ticks(tap, 10);
        }
        for ((tap, handle), expected) in recordings.into_iter().zip([13, 15]) {
            drop(tap);
            let summary = handle.stop(None).expect("summary");
            assert_eq!(summary.ticks, expected);
            assert!(summary.integrity.complete);
        }
        for dir in dirs {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
