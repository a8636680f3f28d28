//! Fixed-size packet values that cross from the network side into the shards.
//!
//! # Realtime Safety
//! No type here owns heap memory: an [`RtpPacket`] is about 1.3 KB inline, so it can be pushed
//! through a bounded SPSC queue and stored in preallocated jitter-buffer slots without
//! allocating.

use std::time::Instant;

/// Largest Opus packet (RFC 6716 §3.2.1: 1275 bytes for one frame).
pub const MAX_OPUS_PACKET: usize = 1275;

/// Why a payload could not become an [`OpusPacket`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Longer than [`MAX_OPUS_PACKET`].
    #[error("opus payload of {0} bytes exceeds 1275")]
    TooLong(usize),
    /// Zero bytes (RFC 6716 §3.1: a packet has at least the TOC byte).
    #[error("empty opus payload")]
    Empty,
}

/// One Opus packet stored inline (no `Vec`).
#[derive(Clone, Copy)]
pub struct OpusPacket {
    len: u16,
    data: [u8; MAX_OPUS_PACKET],
}

impl OpusPacket {
    /// An empty packet (length 0), used as a reusable output slot for encoders.
    pub const EMPTY: Self = Self {
        len: 0,
        data: [0; MAX_OPUS_PACKET],
    };

    /// Copies `payload` into a packet. Empty and over-long payloads are errors.
    pub fn from_slice(payload: &[u8]) -> Result<Self, PacketError> {
        let mut p = Self::EMPTY;
        p.set(payload)?;
        Ok(p)
    }

    /// Replaces the contents with `payload` (same rules as [`Self::from_slice`]).
    pub fn set(&mut self, payload: &[u8]) -> Result<(), PacketError> {
        if payload.is_empty() {
            return Err(PacketError::Empty);
        }
        if payload.len() > MAX_OPUS_PACKET {
            return Err(PacketError::TooLong(payload.len()));
        }
        self.data[..payload.len()].copy_from_slice(payload);
        self.len = payload.len() as u16;
        Ok(())
    }

    /// The packet bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }

    /// The whole backing buffer, for encoders that write in place; follow with [`Self::set_len`].
    pub fn buffer_mut(&mut self) -> &mut [u8; MAX_OPUS_PACKET] {
        &mut self.data
    }

    /// Sets the length after writing into [`Self::buffer_mut`] (clamped to the buffer size).
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(MAX_OPUS_PACKET) as u16;
    }

    /// Number of bytes in the packet.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when the packet holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for OpusPacket {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl PartialEq for OpusPacket {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for OpusPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusPacket")
            .field("len", &self.len)
            .field("toc", &self.as_slice().first())
            .finish()
    }
}

/// RFC 6464 client-to-mixer audio level, when the sender included the header extension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AudioLevel {
    /// Level in -dBov, 0 (loudest) ..= 127 (silence).
    pub level: u8,
    /// The sender's voice-activity flag (the extension's V bit).
    pub voice: bool,
}

/// RTP header fields the media core uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpMeta {
    /// RTP sequence number (wraps at 2^16).
    pub seq: u16,
    /// RTP timestamp in 48 kHz ticks (wraps at 2^32).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Marker bit (start of a talk spurt for audio).
    pub marker: bool,
    /// RFC 6464 audio level, if present.
    pub audio_level: Option<AudioLevel>,
}

/// A received (or to-be-sent) RTP packet carrying Opus, with the time it arrived.
#[derive(Clone, Copy, Debug)]
pub struct RtpPacket {
    /// Header fields.
    pub meta: RtpMeta,
    /// The Opus payload.
    pub payload: OpusPacket,
    /// When the transport received it (the jitter buffer measures arrival jitter from this).
    pub arrival: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_and_oversized_payloads() {
        assert_eq!(OpusPacket::from_slice(&[]), Err(PacketError::Empty));
        assert_eq!(
            OpusPacket::from_slice(&[0u8; 1276]),
            Err(PacketError::TooLong(1276))
        );
        let p = OpusPacket::from_slice(&[0xfc; 1275]).unwrap();
        assert_eq!(p.len(), 1275);
    }
}
