//! The application's own audio endpoint in a room: PCM frames in and out through queues.
//!
//! Like the Microsoft SDK's AudioSocket, a bot that listens and speaks gets raw 20 ms frames:
//! every tick the room pushes what the bot hears (the mix, minus the bot's own voice when the
//! bot is among the speakers) and pops at most one frame the bot wants to say. An empty input
//! queue means the bot is silent this tick; a full output queue drops the frame and counts it.
//!
//! [`AppAudio`] is the application's side of both queues.
//!
//! # Realtime Safety
//! [`AppEndpoint::new`] allocates the two queues (off-shard). Everything else is
//! allocation-free and non-blocking.

use rtrb::{Consumer, Producer, RingBuffer};

use crate::media::frame::AudioFrame;
use crate::media::speaker::VoiceDetector;

/// Application-side ends of an endpoint's queues.
#[derive(Debug)]
pub struct AppAudio {
    to_room: Producer<AudioFrame>,
    from_room: Consumer<AudioFrame>,
    dropped: u64,
}

impl AppAudio {
    /// Queues a frame for the room to play (one is taken per tick); `false` and a counted drop
    /// when the queue is full.
    pub fn send(&mut self, frame: &AudioFrame) -> bool {
        if self.to_room.push(frame.clone()).is_ok() {
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// Takes the next frame the room produced for the application, if any.
    pub fn recv(&mut self) -> Option<AudioFrame> {
        self.from_room.pop().ok()
    }

    /// Splits into the raw queue ends — the producer into the room and the consumer of what
    /// the room delivers — so two threads (e.g. a sound card's capture and playback callbacks)
    /// can each own one. The drop counter stays behind: the new owners count their own.
    pub fn into_queues(self) -> (Producer<AudioFrame>, Consumer<AudioFrame>) {
        (self.to_room, self.from_room)
    }

    /// Frames the application offered while the room's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Per-endpoint counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointCounters {
    /// Frames taken from the application.
    pub frames_in: u64,
    /// Ticks with no frame from the application.
    pub empty_ticks: u64,
    /// Frames delivered to the application.
    pub frames_out: u64,
    /// Frames dropped because the application's queue was full.
    pub output_dropped: u64,
}

/// The room's side of an application endpoint.
#[derive(Debug)]
pub struct AppEndpoint {
    input: Consumer<AudioFrame>,
    output: Producer<AudioFrame>,
    counters: EndpointCounters,
}

impl AppEndpoint {
    /// Makes the queues (`capacity` frames each way) and returns the room side and the
    /// application side. Allocates.
    pub fn new(capacity: usize) -> (Self, AppAudio) {
        let (to_room, input) = RingBuffer::new(capacity);
        let (output, from_room) = RingBuffer::new(capacity);
        (
            Self {
                input,
                output,
                counters: EndpointCounters::default(),
            },
            AppAudio {
                to_room,
                from_room,
                dropped: 0,
            },
        )
    }

    /// Input phase: takes one frame from the application into `frame` (silence when none).
    pub(crate) fn receive(&mut self, vad: &mut VoiceDetector, frame: &mut AudioFrame) -> bool {
        // rtrb's read chunk copies in place: no AudioFrame moves through the stack twice.
        match self.input.read_chunk(1) {
            Ok(chunk) => {
                let (a, _) = chunk.as_slices();
                if let Some(f) = a.first() {
                    frame.samples.copy_from_slice(&f.samples);
                }
                chunk.commit_all();
                self.counters.frames_in += 1;
                vad.observe_frame(frame)
            }
            Err(_) => {
                self.counters.empty_ticks += 1;
                frame.clear();
                vad.observe_silence()
            }
        }
    }

    /// Output phase: delivers what the application hears this tick.
    pub(crate) fn deliver(&mut self, frame: &AudioFrame) {
        match self.output.write_chunk(1) {
            Ok(mut chunk) => {
                let (a, _) = chunk.as_mut_slices();
                if let Some(slot) = a.first_mut() {
                    slot.samples.copy_from_slice(&frame.samples);
                }
                chunk.commit_all();
                self.counters.frames_out += 1;
            }
            Err(_) => self.counters.output_dropped += 1,
        }
    }

    /// The endpoint's counters.
    pub fn counters(&self) -> &EndpointCounters {
        &self.counters
    }
}
