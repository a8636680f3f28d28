//! The jitter buffer's ring of frame slots: one per 20 ms frame of media time, addressed by
//! frame number modulo the capacity.
//!
//! A slot remembers which frame it holds, so a stale entry from a frame one lap earlier is
//! never mistaken for the current one, and it keeps a played packet until the slot is reused,
//! so duplicates of recently played packets are recognised.
//!
//! # Realtime Safety
//! [`Slots::new`] allocates the ring; nothing else allocates. Storing copies the packet
//! (about 1.3 KB) into its slot.

use crate::media::packet::RtpPacket;

/// Fixed ring of frame slots.
#[derive(Debug)]
pub(crate) struct Slots {
    ring: Box<[Slot]>,
    buffered: usize,
}

impl Slots {
    /// A ring of `capacity` empty slots (`capacity` ≥ 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            ring: vec![Slot::EMPTY; capacity.max(1)].into_boxed_slice(),
            buffered: 0,
        }
    }

    /// Packets waiting to be played.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// Empties every slot (played packets are forgotten too).
    pub(crate) fn clear(&mut self) {
        for slot in self.ring.iter_mut() {
            slot.state = SlotState::Empty;
        }
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
        slot.state == SlotState::Played
            && slot.frame == frame
            && slot.packet.as_ref().is_some_and(|p| p.meta.seq == seq)
    }

    /// Stores `packet` as `frame`, replacing whatever the slot held. The caller has checked
    /// that `frame` is not already buffered and lies within one lap of the playout head.
    pub(crate) fn store(&mut self, frame: i64, packet: &RtpPacket) {
        let i = self.index(frame);
        let slot = &mut self.ring[i];
        if slot.state == SlotState::Buffered {
            // Unreachable while the caller keeps frames within one lap; keep the count right.
            self.buffered -= 1;
        }
        slot.state = SlotState::Buffered;
        slot.frame = frame;
        slot.packet = Some(*packet);
        self.buffered += 1;
    }

    /// Discards `frame`'s buffered packet unplayed; false if it was not buffered.
    pub(crate) fn discard(&mut self, frame: i64) -> bool {
        if !self.is_buffered(frame) {
            return false;
        }
        let i = self.index(frame);
        self.ring[i].state = SlotState::Empty;
        self.buffered -= 1;
        true
    }

    /// Marks `frame`'s buffered packet played and returns it; `None` if it was not buffered.
    pub(crate) fn play(&mut self, frame: i64) -> Option<&RtpPacket> {
        if !self.is_buffered(frame) {
            return None;
        }
        let i = self.index(frame);
        self.buffered -= 1;
        let slot = &mut self.ring[i];
        slot.state = SlotState::Played;
        slot.packet.as_ref()
    }

    /// `frame`'s packet if it is buffered.
    pub(crate) fn get(&self, frame: i64) -> Option<&RtpPacket> {
        if !self.is_buffered(frame) {
            return None;
        }
        self.slot(frame).packet.as_ref()
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
    /// Kept after playout to recognise duplicates.
    Played,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    state: SlotState,
    frame: i64,
    /// `Some` whenever `state` is not `Empty` (set together in `store`).
    packet: Option<RtpPacket>,
}

impl Slot {
    const EMPTY: Self = Self {
        state: SlotState::Empty,
        frame: 0,
        packet: None,
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
        assert_eq!(s.play(-3).map(|p| p.meta.seq), Some(1));
        assert!(s.was_played(-3, 1) && !s.was_played(-3, 2) && !s.was_played(1, 1));
        assert_eq!((s.buffered(), s.play(-3).is_none()), (0, true));
        s.store(1, &packet(2));
        assert!(!s.was_played(-3, 1), "reused for the next lap");
        assert_eq!(s.get(1).map(|p| p.meta.seq), Some(2));
        assert!(s.discard(1) && !s.discard(1));
        s.store(2, &packet(3));
        s.clear();
        assert_eq!((s.buffered(), s.get(2).is_none()), (0, true));
    }
}
