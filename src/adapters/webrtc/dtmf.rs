//! RFC 4733 telephone-events (DTMF): payload reading and writing, and the receiver's
//! de-duplication of retransmitted packets.

use std::time::Duration;

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
}
