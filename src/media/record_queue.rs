//! The recorder tap's queue: [`RecordEvent`]s as variable-size records in one SPSC byte ring.
//!
//! A fixed-size queue slot must hold the largest event — a mix frame (1,920 bytes of PCM16)
//! or a 1,275-byte Opus packet — although a leg's event is usually a 20-byte header and a
//! 60–160-byte packet, and most ticks' marks (silence, concealed, absent) carry no body at all.
//! Every slot of a queue that turns over every few ticks is resident, so slots sized for the
//! worst case cost a call twice the memory its events need. Here each event takes its own
//! size: a fixed header, then its body.
//!
//! ```text
//! tick u64 | stream u8 (0 mix, 1 leg) | member u64 | kind u8 | body length u16 | body
//! body: Packet → seq u16, timestamp u32, ssrc u32, flags u8, level u8, payload
//!       Mixed  → 960 × i16
//!       others → empty
//! ```
//! (little-endian). The tap writes a whole record or nothing ([`RecordSink::push`] reports
//! a full queue and the tap counts the drop); the reader ([`RecordEvents::pop`]) only ever
//! sees whole records.
//!
//! # Realtime Safety
//! [`record_queue`] allocates the ring (off-shard). [`RecordSink::push`] copies bytes into
//! the ring: no allocation, no lock, no syscall.

use rtrb::{Consumer, Producer, RingBuffer};

use crate::media::frame::FRAME_SAMPLES;
use crate::media::packet::{AudioLevel, OpusPacket, RtpMeta};
use crate::media::recorder::{RecordEntry, RecordEvent, RecordStream};
use crate::media::room::MemberId;

/// Bytes of a record's header.
const HEADER: usize = 8 + 1 + 8 + 1 + 2;
/// Bytes of a packet's header fields before its payload.
const META: usize = 2 + 4 + 4 + 1 + 1;
/// Bytes of a mix frame's body.
const MIXED: usize = 2 * FRAME_SAMPLES;

/// What [`record_queue`] sizes a leg's event as: a header, RTP fields and a 160-byte payload
/// (64 kbit/s Opus in 20 ms; speech at the usual 24–40 kbit/s is 60–100 bytes).
pub const TYPICAL_LEG_EVENT: usize = HEADER + META + 160;
/// The size of a mix event.
pub const MIX_EVENT: usize = HEADER + MIXED;
/// The largest record (a mix frame, or a packet of the largest Opus payload).
pub const MAX_EVENT: usize = HEADER + max(MIXED, META + crate::media::packet::MAX_OPUS_PACKET);

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// A queue of `bytes` bytes (at least one largest record). Allocates.
pub fn record_queue(bytes: usize) -> (RecordSink, RecordEvents) {
    let (tx, rx) = RingBuffer::new(bytes.max(MAX_EVENT));
    (RecordSink { ring: tx }, RecordEvents { ring: rx })
}

/// The tap's end of the queue.
#[derive(Debug)]
pub struct RecordSink {
    ring: Producer<u8>,
}

/// The queue had no room for the whole record (nothing was written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFull;

impl RecordSink {
    /// Writes one record, whole, or nothing.
    ///
    /// # Errors
    /// [`QueueFull`] when the free space is smaller than the record.
    pub fn push(
        &mut self,
        tick: u64,
        stream: RecordStream,
        entry: Entry<'_>,
    ) -> Result<(), QueueFull> {
        let body = match entry {
            Entry::Packet { payload, .. } => META + payload.len(),
            Entry::Mixed(_) => MIXED,
            Entry::Mark(_) => 0,
        };
        let Ok(mut chunk) = self.ring.write_chunk(HEADER + body) else {
            return Err(QueueFull);
        };
        let (a, b) = chunk.as_mut_slices();
        let mut out = Cursor { a, b, at: 0 };
        let (stream_tag, member) = match stream {
            RecordStream::Mix => (0u8, 0u64),
            RecordStream::Leg(MemberId(m)) => (1, m),
        };
        out.put(&tick.to_le_bytes());
        out.put(&[stream_tag]);
        out.put(&member.to_le_bytes());
        out.put(&[entry.kind()]);
        // `body` ≤ MAX_EVENT, far below u16::MAX.
        out.put(&(body as u16).to_le_bytes());
        match entry {
            Entry::Packet { meta, payload } => {
                out.put(&meta.seq.to_le_bytes());
                out.put(&meta.timestamp.to_le_bytes());
                out.put(&meta.ssrc.to_le_bytes());
                let (flags, level) = match meta.audio_level {
                    Some(l) => (
                        u8::from(meta.marker) | 2 | (u8::from(l.voice) << 2),
                        l.level,
                    ),
                    None => (u8::from(meta.marker), 0),
                };
                out.put(&[flags, level]);
                out.put(payload.as_slice());
            }
            Entry::Mixed(pcm) => {
                for s in pcm {
                    out.put(&s.to_le_bytes());
                }
            }
            Entry::Mark(_) => {}
        }
        chunk.commit_all();
        Ok(())
    }
}

/// What the tap writes: an [`RecordEntry`] by reference (nothing is copied twice).
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    /// A packet played this tick.
    Packet {
        /// Its RTP fields.
        meta: &'a RtpMeta,
        /// Its Opus payload.
        payload: &'a OpusPacket,
    },
    /// This tick's mix.
    Mixed(&'a [i16; FRAME_SAMPLES]),
    /// A body-less mark: [`RecordEntry::Fec`], `Concealed`, `Silence` or `Absent`.
    Mark(Mark),
}

/// The body-less entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// [`RecordEntry::Fec`].
    Fec,
    /// [`RecordEntry::Concealed`].
    Concealed,
    /// [`RecordEntry::Silence`].
    Silence,
    /// [`RecordEntry::Absent`].
    Absent,
}

impl Entry<'_> {
    fn kind(&self) -> u8 {
        match self {
            Entry::Packet { .. } => 0,
            Entry::Mark(Mark::Fec) => 1,
            Entry::Mark(Mark::Concealed) => 2,
            Entry::Mark(Mark::Silence) => 3,
            Entry::Mark(Mark::Absent) => 4,
            Entry::Mixed(_) => 5,
        }
    }
}

/// Eight bytes of a header field (the header is a fixed-size array: always present).
fn r8(field: &[u8]) -> [u8; 8] {
    let mut v = [0u8; 8];
    v.copy_from_slice(&field[..8]);
    v
}

/// Reads a record's body across the ring's two slices (the writer wrote every byte the
/// header counts; a missing byte would read as zero).
struct Bytes<I>(I);

impl<'a, I: Iterator<Item = &'a u8>> Bytes<I> {
    fn byte(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut v = [0u8; N];
        for slot in &mut v {
            *slot = self.byte();
        }
        v
    }
}

/// Writes across the ring's two slices.
struct Cursor<'a> {
    a: &'a mut [u8],
    b: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            match self.a.get_mut(self.at) {
                Some(slot) => *slot = byte,
                None => self.b[self.at - self.a.len()] = byte,
            }
            self.at += 1;
        }
    }
}

/// The writer's end of the queue: whole [`RecordEvent`]s, in order.
#[derive(Debug)]
pub struct RecordEvents {
    ring: Consumer<u8>,
}

/// Nothing is queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueEmpty;

impl RecordEvents {
    /// The next event.
    ///
    /// # Errors
    /// [`QueueEmpty`] when no whole record is queued.
    pub fn pop(&mut self) -> Result<RecordEvent, QueueEmpty> {
        let mut header = [0u8; HEADER];
        self.peek(&mut header)?;
        let body = usize::from(u16::from_le_bytes([header[18], header[19]]));
        let chunk = self
            .ring
            .read_chunk(HEADER + body)
            .map_err(|_| QueueEmpty)?;
        let (a, b) = chunk.as_slices();
        let mut r = Bytes(a.iter().chain(b.iter()).skip(HEADER));
        let tick = u64::from_le_bytes(r8(&header[0..8]));
        let stream = match header[8] {
            0 => RecordStream::Mix,
            _ => RecordStream::Leg(MemberId(u64::from_le_bytes(r8(&header[9..17])))),
        };
        let entry = match header[17] {
            0 => {
                let seq = u16::from_le_bytes(r.array());
                let timestamp = u32::from_le_bytes(r.array());
                let ssrc = u32::from_le_bytes(r.array());
                let [flags, level] = r.array();
                let meta = RtpMeta {
                    seq,
                    timestamp,
                    ssrc,
                    marker: flags & 1 != 0,
                    audio_level: (flags & 2 != 0).then_some(AudioLevel {
                        level,
                        voice: flags & 4 != 0,
                    }),
                };
                let len = body.saturating_sub(META);
                let mut payload = OpusPacket::EMPTY;
                for slot in payload.buffer_mut().iter_mut().take(len) {
                    *slot = r.byte();
                }
                payload.set_len(len);
                RecordEntry::Packet { meta, payload }
            }
            1 => RecordEntry::Fec,
            2 => RecordEntry::Concealed,
            3 => RecordEntry::Silence,
            5 => {
                let mut pcm = [0i16; FRAME_SAMPLES];
                for s in &mut pcm {
                    *s = i16::from_le_bytes(r.array());
                }
                RecordEntry::Mixed(pcm)
            }
            _ => RecordEntry::Absent,
        };
        chunk.commit_all();
        Ok(RecordEvent {
            tick,
            stream,
            entry,
        })
    }

    /// Copies the next record's header without taking it.
    fn peek(&mut self, header: &mut [u8; HEADER]) -> Result<(), QueueEmpty> {
        let chunk = self.ring.read_chunk(HEADER).map_err(|_| QueueEmpty)?;
        let (a, b) = chunk.as_slices();
        for (slot, byte) in header.iter_mut().zip(a.iter().chain(b.iter())) {
            *slot = *byte;
        }
        // A chunk dropped without a commit leaves its bytes queued.
        Ok(())
    }

    /// Whether no whole record is queued.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Whether the tap's end is gone (the room retired it).
    pub fn is_abandoned(&self) -> bool {
        self.ring.is_abandoned()
    }

    /// Bytes queued.
    pub fn queued_bytes(&self) -> usize {
        self.ring.slots()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(seq: u16, level: Option<AudioLevel>) -> RtpMeta {
        RtpMeta {
            seq,
            timestamp: 0xdead_beef ^ u32::from(seq),
            ssrc: 0x0102_0304,
            marker: seq.is_multiple_of(2),
            audio_level: level,
        }
    }

    fn packet(len: usize, fill: u8) -> OpusPacket {
        let bytes: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
        OpusPacket::from_slice(&bytes).unwrap()
    }

    /// Every kind of entry comes back exactly as written, including records that straddle
    /// the ring's end (a small ring, many laps).
    #[test]
    fn every_entry_round_trips_across_the_ring_end() {
        let (mut tx, mut rx) = record_queue(MAX_EVENT + 7);
        let mut pcm = [0i16; FRAME_SAMPLES];
        for (i, s) in pcm.iter_mut().enumerate() {
            *s = (i as i16).wrapping_mul(37).wrapping_sub(9000);
        }
        let levels = [
            None,
            Some(AudioLevel {
                level: 127,
                voice: false,
            }),
            Some(AudioLevel {
                level: 3,
                voice: true,
            }),
        ];
        for round in 0..40u16 {
            let leg = RecordStream::Leg(MemberId(u64::from(round) << 40 | 7));
            let m = meta(round, levels[usize::from(round) % 3]);
            let p = packet([1, 80, 1275][usize::from(round) % 3], round as u8);
            let cases: [(RecordStream, Entry<'_>, RecordEntry); 6] = [
                (
                    leg,
                    Entry::Packet {
                        meta: &m,
                        payload: &p,
                    },
                    RecordEntry::Packet {
                        meta: m,
                        payload: p,
                    },
                ),
                (leg, Entry::Mark(Mark::Fec), RecordEntry::Fec),
                (leg, Entry::Mark(Mark::Concealed), RecordEntry::Concealed),
                (leg, Entry::Mark(Mark::Silence), RecordEntry::Silence),
                (leg, Entry::Mark(Mark::Absent), RecordEntry::Absent),
                (
                    RecordStream::Mix,
                    Entry::Mixed(&pcm),
                    RecordEntry::Mixed(pcm),
                ),
            ];
            for (tick, (stream, entry, expected)) in cases.into_iter().enumerate() {
                let tick = u64::from(round) * 10 + tick as u64;
                tx.push(tick, stream, entry).expect("room for one record");
                let got = rx.pop().expect("a whole record");
                assert_eq!(
                    got,
                    RecordEvent {
                        tick,
                        stream,
                        entry: expected
                    }
                );
                assert!(rx.is_empty());
            }
        }
    }

    /// A record that does not fit is not written at all; the reader never sees part of one.
    #[test]
    fn a_full_queue_refuses_whole_records() {
        let (mut tx, mut rx) = record_queue(MIX_EVENT);
        let pcm = [5i16; FRAME_SAMPLES];
        let leg = RecordStream::Leg(MemberId(1));
        tx.push(0, leg, Entry::Mark(Mark::Silence)).unwrap();
        assert_eq!(
            tx.push(0, RecordStream::Mix, Entry::Mixed(&pcm)),
            Err(QueueFull)
        );
        assert_eq!(rx.queued_bytes(), HEADER);
        assert_eq!(rx.pop().unwrap().entry, RecordEntry::Silence);
        assert_eq!(rx.pop(), Err(QueueEmpty));
        tx.push(1, RecordStream::Mix, Entry::Mixed(&pcm)).unwrap();
        assert_eq!(rx.pop().unwrap().entry, RecordEntry::Mixed(pcm));
        drop(tx);
        assert!(rx.is_abandoned() && rx.is_empty());
    }

    /// A mix frame and a leg's typical packet take what they need, not the largest record.
    #[test]
    fn records_take_their_own_size() {
        let (mut tx, rx) = record_queue(16 * 1024);
        let m = meta(1, None);
        let p = packet(80, 0);
        let leg = RecordStream::Leg(MemberId(1));
        tx.push(
            0,
            leg,
            Entry::Packet {
                meta: &m,
                payload: &p,
            },
        )
        .unwrap();
        assert_eq!(rx.queued_bytes(), HEADER + META + 80);
        tx.push(0, leg, Entry::Mark(Mark::Absent)).unwrap();
        assert_eq!(rx.queued_bytes(), 2 * HEADER + META + 80);
    }
}
