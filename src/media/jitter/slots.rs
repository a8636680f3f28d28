//! The jitter buffer's ring of frame slots: one per 20 ms frame of media time, addressed by
//! frame number modulo the capacity.
//!
//! A slot remembers which frame it holds, so a stale entry from a frame one lap earlier is
//! never mistaken for the current one, and it keeps a played packet's header until the slot is
//! reused, so duplicates of recently played packets are recognised.
//!
//! # Memory: a slab sized to real Opus packets
//! A slot stores the payload inline only up to [`INLINE_PAYLOAD`] bytes (320: 20 ms at
//! 128 kbit/s, far above voice — WebRTC/Teams voice runs at 6–64 kbit/s, 15–160 bytes with
//! in-band FEC). A larger packet (up to the Opus maximum of 1,275 bytes) goes to one of
//! [`SPILL_SLOTS`] full-size spill slots shared by the ring; the spill slot is given back as
//! soon as its packet is played, discarded or flushed. A large packet arriving while every
//! spill slot is taken is **dropped and counted** ([`Slots::store`] returns `false`; the
//! buffer counts it in `overflow` and `oversize`), never lost silently. 50 slots take about
//! 19 KB instead of 67 KB of full-size ones; the ring is written as it turns, so that is what
//! stays resident. The spill slots are zero-allocated and only touched by large packets.
//!
//! # Realtime Safety
//! [`Slots::new`] allocates the ring, the spill slots and one full-size output packet; nothing
//! else allocates. Storing copies the payload into its slot; [`Slots::play`] and
//! [`Slots::peek_payload`] copy it into the output packet and lend that.

use std::time::Instant;

use crate::media::packet::{MAX_OPUS_PACKET, OpusPacket, RtpMeta, RtpPacket};

/// Payload bytes a slot holds inline (20 ms of Opus at 128 kbit/s).
pub(crate) const INLINE_PAYLOAD: usize = 320;
/// Full-size slots for packets larger than [`INLINE_PAYLOAD`], shared by the ring (8 × 20 ms:
/// a stream of only large packets can still buffer 160 ms).
pub(crate) const SPILL_SLOTS: usize = 8;

/// Marks a slot whose payload is inline.
const NO_SPILL: u8 = u8::MAX;

/// Fixed ring of frame slots.
#[derive(Debug)]
pub(crate) struct Slots {
    ring: Box<[Slot]>,
    buffered: usize,
    /// Payloads larger than [`INLINE_PAYLOAD`]; zero-allocated, touched only when used.
    spill: Box<[[u8; MAX_OPUS_PACKET]]>,
    /// Bit `i` set: spill slot `i` holds a buffered packet's payload.
    spill_used: u8,
    /// The packet lent out by [`Self::play`] and [`Self::peek_payload`].
    out: RtpPacket,
}

impl Slots {
    /// A ring of `capacity` empty slots (`capacity` ≥ 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            ring: vec![Slot::EMPTY; capacity.max(1)].into_boxed_slice(),
            buffered: 0,
            spill: vec![[0u8; MAX_OPUS_PACKET]; SPILL_SLOTS].into_boxed_slice(),
            spill_used: 0,
            out: RtpPacket {
                meta: RtpMeta::default(),
                payload: OpusPacket::EMPTY,
                arrival: Instant::now(),
            },
        }
    }

    /// Packets waiting to be played.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// Spill slots holding a buffered packet's payload.
    #[cfg(test)]
    pub(crate) fn spilled(&self) -> u32 {
        self.spill_used.count_ones()
    }

    /// Empties every slot (played packets are forgotten too).
    pub(crate) fn clear(&mut self) {
        for slot in self.ring.iter_mut() {
            slot.state = SlotState::Empty;
            slot.spill = NO_SPILL;
        }
        self.spill_used = 0;
        self.buffered = 0;
    }

    /// Whether `frame`'s packet is waiting to be played.
    pub(crate) fn is_buffered(&self, frame: i64) -> bool {
        let slot = self.slot(frame);
        slot.state == SlotState::Buffered && slot.frame == frame
    }

    /// Whether the packet with sequence number `seq` was played as `frame` (and is still
    /// remembered).
    pub(crate) fn was_played(&self, frame: i64, seq: u16) -> bool {
        let slot = self.slot(frame);
        slot.state == SlotState::Played && slot.frame == frame && slot.meta.seq == seq
    }

    /// Stores `packet` as `frame`, replacing whatever the slot held. The caller has checked
    /// that `frame` is not already buffered and lies within one lap of the playout head.
    /// `false` (nothing stored) for a packet larger than [`INLINE_PAYLOAD`] while every spill
    /// slot is taken.
    pub(crate) fn store(&mut self, frame: i64, packet: &RtpPacket) -> bool {
        let i = self.index(frame);
        if self.ring[i].state == SlotState::Buffered {
            // Unreachable while the caller keeps frames within one lap; keep the count right.
            self.release(i);
            self.ring[i].state = SlotState::Empty;
            self.buffered -= 1;
        }
        let payload = packet.payload.as_slice();
        let spill = if payload.len() > INLINE_PAYLOAD {
            let free = !self.spill_used;
            if free == 0 {
                return false;
            }
            let k = free.trailing_zeros() as usize;
            self.spill_used |= 1 << k;
            self.spill[k][..payload.len()].copy_from_slice(payload);
            k as u8
        } else {
            self.ring[i].inline[..payload.len()].copy_from_slice(payload);
            NO_SPILL
        };
        let slot = &mut self.ring[i];
        slot.state = SlotState::Buffered;
        slot.frame = frame;
        slot.meta = packet.meta;
        slot.arrival = Some(packet.arrival);
        slot.len = payload.len() as u16;
        slot.spill = spill;
        self.buffered += 1;
        true
    }

    /// Discards `frame`'s buffered packet unplayed; false if it was not buffered.
    pub(crate) fn discard(&mut self, frame: i64) -> bool {
        if !self.is_buffered(frame) {
            return false;
        }
        let i = self.index(frame);
        self.release(i);
        self.ring[i].state = SlotState::Empty;
        self.buffered -= 1;
        true
    }

    /// Marks `frame`'s buffered packet played and lends a copy of it; `None` if it was not
    /// buffered. The slot keeps the header (duplicate detection), not the payload.
    pub(crate) fn play(&mut self, frame: i64) -> Option<&RtpPacket> {
        if !self.is_buffered(frame) {
            return None;
        }
        let i = self.index(frame);
        self.copy_out(i);
        self.release(i);
        self.buffered -= 1;
        self.ring[i].state = SlotState::Played;
        Some(&self.out)
    }

    /// The header of `frame`'s packet if it is buffered.
    pub(crate) fn meta(&self, frame: i64) -> Option<&RtpMeta> {
        self.is_buffered(frame).then(|| &self.slot(frame).meta)
    }

    /// A copy of `frame`'s payload if it is buffered (it stays buffered).
    pub(crate) fn peek_payload(&mut self, frame: i64) -> Option<&OpusPacket> {
        if !self.is_buffered(frame) {
            return None;
        }
        self.copy_out(self.index(frame));
        Some(&self.out.payload)
    }

    /// Copies slot `i`'s packet into `out`.
    fn copy_out(&mut self, i: usize) {
        let slot = &self.ring[i];
        let len = usize::from(slot.len);
        let bytes = match slot.spill {
            NO_SPILL => &slot.inline[..len],
            k => &self.spill[usize::from(k)][..len],
        };
        // Stored packets are 1..=MAX_OPUS_PACKET bytes (`OpusPacket` guarantees it).
        self.out.payload.buffer_mut()[..len].copy_from_slice(bytes);
        self.out.payload.set_len(len);
        self.out.meta = slot.meta;
        // Set whenever the slot is not empty (in `store`).
        if let Some(arrival) = slot.arrival {
            self.out.arrival = arrival;
        }
    }

    /// Gives slot `i`'s spill slot back, if it has one.
    fn release(&mut self, i: usize) {
        let slot = &mut self.ring[i];
        if slot.spill != NO_SPILL {
            self.spill_used &= !(1 << slot.spill);
            slot.spill = NO_SPILL;
        }
    }

    fn slot(&self, frame: i64) -> &Slot {
        &self.ring[self.index(frame)]
    }

    fn index(&self, frame: i64) -> usize {
        frame.rem_euclid(self.ring.len() as i64) as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Empty,
    Buffered,
    /// Kept after playout (header only) to recognise duplicates.
    Played,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    state: SlotState,
    frame: i64,
    meta: RtpMeta,
    /// `Some` whenever `state` is not `Empty` (set in `store`).
    arrival: Option<Instant>,
    /// Payload length in bytes.
    len: u16,
    /// The spill slot holding the payload, or [`NO_SPILL`] when it is in `inline`.
    spill: u8,
    inline: [u8; INLINE_PAYLOAD],
}

impl Slot {
    const EMPTY: Self = Self {
        state: SlotState::Empty,
        frame: 0,
        meta: RtpMeta {
            seq: 0,
            timestamp: 0,
            ssrc: 0,
            marker: false,
            audio_level: None,
        },
        arrival: None,
        len: 0,
        spill: NO_SPILL,
        inline: [0; INLINE_PAYLOAD],
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::packet::{OpusPacket, RtpMeta};
    use std::time::Instant;

    fn packet(seq: u16) -> RtpPacket {
        RtpPacket {
            meta: RtpMeta {
                seq,
                ..RtpMeta::default()
            },
            payload: OpusPacket::from_slice(&[1]).unwrap(),
            arrival: Instant::now(),
        }
    }

    #[test]
    fn frames_one_lap_apart_share_a_slot_but_never_alias() {
        let mut s = Slots::new(4);
        s.store(-3, &packet(1));
        assert!(s.is_buffered(-3) && !s.is_buffered(1) && !s.is_buffered(5));
        assert_eq!(s.meta(-3).map(|m| m.seq), Some(1));
        assert_eq!(s.play(-3).map(|p| p.meta.seq), Some(1));
        assert!(s.was_played(-3, 1) && !s.was_played(-3, 2) && !s.was_played(1, 1));
        assert_eq!((s.buffered(), s.play(-3).is_none()), (0, true));
        s.store(1, &packet(2));
        assert!(!s.was_played(-3, 1), "reused for the next lap");
        assert_eq!(s.meta(1).map(|m| m.seq), Some(2));
        assert!(s.discard(1) && !s.discard(1));
        s.store(2, &packet(3));
        s.clear();
        assert_eq!((s.buffered(), s.meta(2).is_none()), (0, true));
    }

    fn sized(seq: u16, len: usize) -> RtpPacket {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + usize::from(seq)) as u8).collect();
        RtpPacket {
            payload: OpusPacket::from_slice(&bytes).unwrap(),
            ..packet(seq)
        }
    }

    #[test]
    fn small_and_large_packets_come_back_byte_for_byte() {
        let mut s = Slots::new(16);
        let sizes = [
            1,
            80,
            INLINE_PAYLOAD,
            INLINE_PAYLOAD + 1,
            700,
            MAX_OPUS_PACKET,
        ];
        for (f, &len) in sizes.iter().enumerate() {
            assert!(s.store(f as i64, &sized(f as u16, len)));
        }
        assert_eq!(s.spilled(), 3);
        let peeked = s.peek_payload(3).unwrap().as_slice().to_vec();
        assert_eq!(peeked, sized(3, INLINE_PAYLOAD + 1).payload.as_slice());
        for (f, &len) in sizes.iter().enumerate() {
            let want = sized(f as u16, len);
            let got = s.play(f as i64).unwrap();
            assert_eq!((got.meta, got.payload), (want.meta, want.payload));
        }
        assert_eq!(
            (s.buffered(), s.spilled()),
            (0, 0),
            "spill slots given back on play"
        );
    }

    #[test]
    fn large_packets_beyond_the_spill_slots_are_refused_and_small_ones_still_fit() {
        let mut s = Slots::new(50);
        for f in 0..SPILL_SLOTS as i64 {
            assert!(s.store(f, &sized(f as u16, 1000)));
        }
        let f = SPILL_SLOTS as i64;
        assert!(!s.store(f, &sized(99, 1000)), "every spill slot taken");
        assert!(!s.is_buffered(f));
        assert!(
            s.store(f, &sized(99, 100)),
            "a normal packet still fits inline"
        );
        assert!(s.discard(0));
        assert!(
            s.store(f + 1, &sized(100, 1000)),
            "discard gave a spill slot back"
        );
        s.clear();
        assert_eq!(s.spilled(), 0);
        for f in 0..SPILL_SLOTS as i64 {
            assert!(s.store(f, &sized(f as u16, 1275)));
        }
    }
}
