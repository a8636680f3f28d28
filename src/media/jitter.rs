//! PLACEHOLDER jitter buffer so the mixer compiles before branch `jitter` lands.
//!
//! Same contract as the real one (`JitterBuffer::new(JitterConfig)`, `push(now, &RtpPacket)`,
//! `pop(now) -> Playout<'_>`, `stats()`), but only a fixed one-packet reorder window. When
//! merging branch `jitter`, take its version of this file.
//!
//! # Realtime Safety
//! Slots are allocated in [`JitterBuffer::new`]; push and pop never allocate.

use std::time::Instant;

use crate::media::packet::{OpusPacket, RtpPacket};

/// Jitter-buffer settings (placeholder: none used).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterConfig {}

/// What happened to a pushed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored.
    Stored,
    /// Too late or too far ahead: dropped.
    Dropped,
}

/// One tick's playout.
#[derive(Debug)]
pub enum Playout<'a> {
    /// Play this packet.
    Packet(&'a RtpPacket),
    /// The packet is missing: conceal, or use the next packet's FEC.
    Conceal {
        /// The next packet, if already here.
        fec: Option<&'a OpusPacket>,
    },
    /// Nothing to play.
    Silence,
}

/// Jitter-buffer counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed.
    pub received: u64,
    /// Packets dropped as late.
    pub late: u64,
}

/// Placeholder jitter buffer.
#[derive(Debug)]
pub struct JitterBuffer {
    slots: Vec<Option<RtpPacket>>,
    next_seq: Option<u16>,
    played: Option<RtpPacket>,
    misses: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(_config: JitterConfig) -> Self {
        Self {
            slots: vec![None; SLOTS],
            next_seq: None,
            played: None,
            misses: 0,
            stats: JitterStats::default(),
        }
    }

    /// Stores a packet.
    pub fn push(&mut self, _now: Instant, packet: &RtpPacket) -> PushOutcome {
        self.stats.received += 1;
        let mut next = *self.next_seq.get_or_insert(packet.meta.seq);
        if self.misses > 5 {
            // After an outage: resynchronise on whatever arrives.
            self.slots.iter_mut().for_each(|s| *s = None);
            next = packet.meta.seq;
            self.next_seq = Some(next);
            self.misses = 0;
        }
        let ahead = packet.meta.seq.wrapping_sub(next);
        if usize::from(ahead) >= SLOTS {
            self.stats.late += 1;
            return PushOutcome::Dropped;
        }
        self.slots[usize::from(packet.meta.seq) % SLOTS] = Some(*packet);
        PushOutcome::Stored
    }

    /// Takes this tick's playout.
    pub fn pop(&mut self, _now: Instant) -> Playout<'_> {
        let Some(next) = self.next_seq else {
            return Playout::Silence;
        };
        let idx = usize::from(next) % SLOTS;
        match self.slots[idx].take() {
            Some(p) if p.meta.seq == next => {
                self.next_seq = Some(next.wrapping_add(1));
                self.misses = 0;
                self.played = Some(p);
                match &self.played {
                    Some(p) => Playout::Packet(p),
                    None => Playout::Silence,
                }
            }
            _ => {
                self.misses += 1;
                if self.misses > 5 {
                    return Playout::Silence;
                }
                self.next_seq = Some(next.wrapping_add(1));
                let n = usize::from(next.wrapping_add(1)) % SLOTS;
                Playout::Conceal {
                    fec: self.slots[n].as_ref().map(|p| &p.payload),
                }
            }
        }
    }

    /// Counters.
    pub fn stats(&self) -> &JitterStats {
        &self.stats
    }
}

const SLOTS: usize = 16;
