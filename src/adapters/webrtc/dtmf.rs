//! RFC 4733 telephone-events (DTMF): payload reading and writing, the sender's pacing of an
//! event over packet intervals, and the receiver's de-duplication of retransmitted packets.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::event::MediaEvent;

/// Payload type we register for `telephone-event/48000`.
pub const TELEPHONE_EVENT_PT: u8 = 101;

/// A DTMF key: RFC 4733 events 0–15 (`0`–`9`, `*`, `#`, `A`–`D`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DtmfDigit(u8);

impl DtmfDigit {
    /// The digit for a key character (`0-9 * # A-D`, case-insensitive).
    pub fn from_char(c: char) -> Option<Self> {
        let code = match c.to_ascii_uppercase() {
            d @ '0'..='9' => d as u8 - b'0',
            '*' => 10,
            '#' => 11,
            l @ 'A'..='D' => 12 + (l as u8 - b'A'),
            _ => return None,
        };
        Some(Self(code))
    }

    /// The digit for an RFC 4733 event code (0–15).
    pub fn from_event(code: u8) -> Option<Self> {
        (code <= 15).then_some(Self(code))
    }

    /// The RFC 4733 event code.
    pub fn event(self) -> u8 {
        self.0
    }

    /// The key character.
    pub fn as_char(self) -> char {
        match self.0 {
            d @ 0..=9 => (b'0' + d) as char,
            10 => '*',
            11 => '#',
            l => (b'A' + (l - 12)) as char,
        }
    }
}

impl std::fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// One decoded telephone-event payload (RFC 4733 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EventPayload {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    /// In RTP clock ticks (48 kHz here).
    pub duration: u16,
}

impl EventPayload {
    /// Reads a payload; `None` if shorter than 4 bytes.
    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        let [event, flags, d0, d1, ..] = *b else {
            return None;
        };
        Some(Self {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4 payload bytes.
    pub(crate) fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        let flags = if self.end { 0x80 } else { 0 } | (self.volume & 0x3f);
        [self.event, flags, d[0], d[1]]
    }
}

/// One telephone-event packet as the receiving session saw it (diagnostics and tests:
/// [`MediaSession::received_telephone_events`](super::MediaSession::received_telephone_events)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedTelephoneEvent {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (the event's start).
    pub timestamp: u32,
    /// RTP marker bit (first packet of an event).
    pub marker: bool,
    /// RFC 4733 event code.
    pub event: u8,
    /// The `E` bit.
    pub end: bool,
    /// Duration so far, in RTP clock ticks.
    pub duration: u16,
    /// When the reader took the packet.
    pub arrival: Instant,
}

/// How many received telephone-event packets a session remembers (the latest).
pub(crate) const RECEIVED_LOG: usize = 64;

/// Receiver side: turns a stream of telephone-event packets into one start and one end
/// [`MediaEvent::Dtmf`] per event. Events are told apart by their RTP timestamp (RFC 4733
/// §2.5.1.2: all packets of one event share the start timestamp) and event code.
#[derive(Debug, Default)]
pub(crate) struct DtmfReceiver {
    current: Option<(u32, u8)>,
    started: bool,
    ended: bool,
}

impl DtmfReceiver {
    /// Handles one packet; returns the event to report, if any.
    pub(crate) fn handle(
        &mut self,
        timestamp: u32,
        payload: &[u8],
        clock_rate: u32,
    ) -> Option<MediaEvent> {
        let p = EventPayload::parse(payload)?;
        let digit = DtmfDigit::from_event(p.event)?;
        if self.current != Some((timestamp, p.event)) {
            self.current = Some((timestamp, p.event));
            self.started = false;
            self.ended = false;
        }
        let duration =
            Duration::from_micros(u64::from(p.duration) * 1_000_000 / u64::from(clock_rate.max(1)));
        if p.end {
            if self.ended {
                return None;
            }
            self.ended = true;
            self.started = true;
            return Some(MediaEvent::Dtmf {
                digit,
                end: true,
                duration,
            });
        }
        if self.started || self.ended {
            return None;
        }
        self.started = true;
        Some(MediaEvent::Dtmf {
            digit,
            end: false,
            duration,
        })
    }
}

/// RTP clock ticks in one packet interval (20 ms at 48 kHz).
const INTERVAL_TICKS: u32 = 960;

/// Packet intervals left without an event between two queued digits.
const INTER_DIGIT_PAUSE: u8 = 1;

/// What the sender emits for one packet interval of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DtmfStep {
    /// Marker bit: set on the first packet of the event (only the first copy of `repeat`).
    pub marker: bool,
    /// The event's start timestamp, the same on every packet of the event.
    pub timestamp: u32,
    /// The payload (duration so far; `end` on the final packets).
    pub payload: EventPayload,
    /// How many times to send it back to back: 1, or 3 for the end (RFC 4733 §2.5.1.4).
    pub repeat: u8,
}

impl DtmfStep {
    /// For the end step: the timestamp just past the event (start + duration).
    pub(crate) fn end_timestamp(&self) -> Option<u32> {
        self.payload.end.then(|| {
            self.timestamp
                .wrapping_add(u32::from(self.payload.duration))
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct Sending {
    digit: DtmfDigit,
    timestamp: u32,
    /// Total duration in ticks.
    total: u16,
    /// Duration covered by the packets sent so far, in ticks.
    elapsed: u32,
}

/// Sender side: the queue of digits to send and the event in progress, paced by the
/// caller's clock (one [`tick`](Self::tick) per 20 ms packet interval), as RFC 4733 §2.5.1
/// describes and libwebrtc does:
/// - every packet of an event carries the event's start timestamp; the first has the marker;
/// - one packet per interval with the duration so far (960, 1920, … ticks at 48 kHz) and the
///   `E` bit clear, then, in the interval that reaches the requested duration, the final
///   duration with `E` set, three times back to back;
/// - while an event is in progress (or about to start) the stream's audio is held back
///   ([`holds_audio`](Self::holds_audio)): the event replaces it;
/// - queued digits follow one another with one packet interval of pause between them.
///
/// Durations are **capped** at 0xFFFF ticks (≈ 1.365 s at 48 kHz), the largest the payload
/// can carry; longer events are not segmented (RFC 4733 §2.5.2.3). A zero duration is sent as
/// one tick (a single interval: the three end packets only).
#[derive(Debug, Default)]
pub(crate) struct DtmfSender {
    queue: VecDeque<(DtmfDigit, Duration)>,
    current: Option<Sending>,
    pause: u8,
}

impl DtmfSender {
    /// Queues a digit.
    pub(crate) fn push(&mut self, digit: DtmfDigit, duration: Duration) {
        self.queue.push_back((digit, duration));
    }

    /// Forgets queued digits (the event in progress, if any, is finished).
    pub(crate) fn clear_queue(&mut self) {
        self.queue.clear();
    }

    /// True while the stream's audio must not be sent: an event is in progress, or one
    /// starts at the next tick.
    pub(crate) fn holds_audio(&self) -> bool {
        self.current.is_some() || (self.pause == 0 && !self.queue.is_empty())
    }

    /// One packet interval. Starts the next queued event, at `next_timestamp`, if none is in
    /// progress (and the inter-digit pause is over), and returns what to send now, if anything.
    pub(crate) fn tick(&mut self, next_timestamp: u32) -> Option<DtmfStep> {
        let first = self.current.is_none();
        if first {
            if self.pause > 0 {
                self.pause -= 1;
                return None;
            }
            let (digit, duration) = self.queue.pop_front()?;
            let ticks = (duration.as_micros() * 48 / 1000).clamp(1, u128::from(u16::MAX)) as u16;
            self.current = Some(Sending {
                digit,
                timestamp: next_timestamp,
                total: ticks,
                elapsed: 0,
            });
        }
        // Set just above (or still in progress from an earlier tick).
        let e = self.current.as_mut()?;
        e.elapsed += INTERVAL_TICKS;
        let end = e.elapsed >= u32::from(e.total);
        let step = DtmfStep {
            marker: first,
            timestamp: e.timestamp,
            payload: EventPayload {
                event: e.digit.event(),
                end,
                volume: 10,
                // Below `total` (a u16) unless `end`.
                duration: if end { e.total } else { e.elapsed as u16 },
            },
            repeat: if end { 3 } else { 1 },
        };
        if end {
            self.current = None;
            self.pause = INTER_DIGIT_PAUSE;
        }
        Some(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_round_trip() {
        for c in "0123456789*#ABCD".chars() {
            let d = DtmfDigit::from_char(c).unwrap();
            assert_eq!(d.as_char(), c);
            assert_eq!(DtmfDigit::from_event(d.event()), Some(d));
        }
        assert_eq!(DtmfDigit::from_char('x'), None);
        assert_eq!(DtmfDigit::from_event(16), None);
    }

    #[test]
    fn one_start_and_one_end_per_event() {
        let mut r = DtmfReceiver::default();
        let p = |end, dur| {
            EventPayload {
                event: 5,
                end,
                volume: 10,
                duration: dur,
            }
            .to_bytes()
        };
        let five = DtmfDigit::from_char('5').unwrap();
        assert_eq!(
            r.handle(1000, &p(false, 960), 48_000),
            Some(MediaEvent::Dtmf {
                digit: five,
                end: false,
                duration: Duration::from_millis(20)
            })
        );
        assert_eq!(r.handle(1000, &p(false, 1920), 48_000), None);
        let end = Some(MediaEvent::Dtmf {
            digit: five,
            end: true,
            duration: Duration::from_millis(100),
        });
        assert_eq!(r.handle(1000, &p(true, 4800), 48_000), end);
        assert_eq!(r.handle(1000, &p(true, 4800), 48_000), None);
        assert_eq!(r.handle(1000, &p(true, 4800), 48_000), None);
        // a new event (new timestamp) is reported again
        assert!(r.handle(9000, &p(false, 960), 48_000).is_some());
        // garbage is ignored
        assert_eq!(r.handle(9000, &[1, 2], 48_000), None);
        assert_eq!(r.handle(9999, &[200, 0, 0, 0], 48_000), None);
    }

    fn run(s: &mut DtmfSender, ts: u32) -> Vec<DtmfStep> {
        let mut out = Vec::new();
        for _ in 0..200 {
            if let Some(step) = s.tick(ts) {
                out.push(step);
            }
        }
        out
    }

    #[test]
    fn an_event_is_paced_one_packet_per_interval_then_three_ends() {
        let mut s = DtmfSender::default();
        assert!(!s.holds_audio());
        s.push(
            DtmfDigit::from_char('5').unwrap(),
            Duration::from_millis(100),
        );
        assert!(s.holds_audio());
        let mut steps = Vec::new();
        for i in 0..6 {
            steps.push(s.tick(7000 + 960 * i));
            assert_eq!(s.holds_audio(), i < 4, "interval {i}");
        }
        let update = |marker, duration| DtmfStep {
            marker,
            timestamp: 7000,
            payload: EventPayload {
                event: 5,
                end: false,
                volume: 10,
                duration,
            },
            repeat: 1,
        };
        let end = DtmfStep {
            marker: false,
            timestamp: 7000,
            payload: EventPayload {
                event: 5,
                end: true,
                volume: 10,
                duration: 4800,
            },
            repeat: 3,
        };
        assert_eq!(
            steps,
            vec![
                Some(update(true, 960)),
                Some(update(false, 1920)),
                Some(update(false, 2880)),
                Some(update(false, 3840)),
                Some(end),
                None,
            ]
        );
        assert_eq!(end.end_timestamp(), Some(7000 + 4800));
        assert_eq!(steps[0].unwrap().end_timestamp(), None);
    }

    #[test]
    fn digits_follow_one_another_after_a_pause() {
        let mut s = DtmfSender::default();
        s.push(
            DtmfDigit::from_char('1').unwrap(),
            Duration::from_millis(40),
        );
        s.push(
            DtmfDigit::from_char('1').unwrap(),
            Duration::from_millis(40),
        );
        let got: Vec<Option<(u8, bool, u16, u32)>> = (0..6)
            .map(|i| {
                s.tick(960 * i).map(|t| {
                    (
                        t.payload.event,
                        t.payload.end,
                        t.payload.duration,
                        t.timestamp,
                    )
                })
            })
            .collect();
        assert_eq!(
            got,
            vec![
                Some((1, false, 960, 0)),
                Some((1, true, 1920, 0)),
                None,
                Some((1, false, 960, 2880)),
                Some((1, true, 1920, 2880)),
                None,
            ]
        );
    }

    #[test]
    fn long_events_are_capped_and_short_ones_are_one_interval() {
        let mut s = DtmfSender::default();
        s.push(DtmfDigit::from_char('#').unwrap(), Duration::from_secs(5));
        let steps = run(&mut s, 100);
        assert_eq!(steps.len(), 69, "68 updates and the end");
        assert!(steps.iter().all(|t| t.timestamp == 100));
        assert!(steps[..68].iter().all(|t| !t.payload.end));
        assert_eq!(steps[67].payload.duration, 68 * 960);
        assert_eq!(steps[68].payload.duration, u16::MAX);
        assert!(steps[68].payload.end);

        s.push(DtmfDigit::from_char('0').unwrap(), Duration::ZERO);
        let steps = run(&mut s, 5);
        assert_eq!(steps.len(), 1);
        assert!(steps[0].marker && steps[0].payload.end && steps[0].repeat == 3);
        assert_eq!(steps[0].payload.duration, 1);
    }
}
