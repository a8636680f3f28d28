//! Opus packet framing (RFC 6716 §3.1–§3.4): the TOC byte, frame counts and durations.
//!
//! [`packet_duration`] validates a whole packet against the RFC's requirements R1–R7 before any
//! decoder sees it, so malformed network input becomes a typed [`CodecError`] here and never
//! reaches codec state.
//!
//! # Realtime Safety
//! Pure arithmetic over the borrowed bytes: no allocation, no panics on any input.

use super::CodecError;
use crate::media::packet::MAX_OPUS_PACKET;

/// Largest duration of one packet: 120 ms at 48 kHz (RFC 6716 §3.2.5, R5).
pub const MAX_PACKET_SAMPLES: u32 = 5_760;

/// Largest compressed frame (RFC 6716 §3.2.1, R2).
const MAX_FRAME_BYTES: usize = 1_275;

/// What the framing of a valid packet says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PacketShape {
    /// Number of Opus frames in the packet (1..=48).
    pub frames: u32,
    /// Samples per frame at 48 kHz (120, 240, 480, 960, 1920 or 2880).
    pub frame_samples: u32,
}

impl PacketShape {
    /// Total duration in samples at 48 kHz.
    pub(crate) fn samples(self) -> u32 {
        self.frames * self.frame_samples
    }
}

/// Duration of an Opus packet in samples at 48 kHz (960 = 20 ms), from its TOC byte and framing.
///
/// The whole packet is validated (RFC 6716 §3.4): at least one byte, at most 1275 bytes (the
/// largest [`crate::media::packet::OpusPacket`]), code-1 payloads of even length, code-2 and
/// code-3 length fields that fit, code-3 frame counts of at least one with at most 120 ms in
/// total, padding that fits and no frame over 1275 bytes. A 1-byte packet (TOC only, one empty
/// frame) is valid: it is what a DTX encoder sends, and decoders conceal it.
///
/// # Errors
/// [`CodecError::EmptyPacket`], [`CodecError::PacketTooLong`] or
/// [`CodecError::InvalidPacket`] naming the violated rule.
pub fn packet_duration(packet: &[u8]) -> Result<u32, CodecError> {
    parse(packet).map(PacketShape::samples)
}

/// Validates `packet` and returns its shape (see [`packet_duration`]).
pub(crate) fn parse(packet: &[u8]) -> Result<PacketShape, CodecError> {
    let Some((&toc, rest)) = packet.split_first() else {
        return Err(CodecError::EmptyPacket);
    };
    if packet.len() > MAX_OPUS_PACKET {
        return Err(CodecError::PacketTooLong(packet.len()));
    }
    let frame_samples = frame_samples(toc);
    let frames = match toc & 0x03 {
        0 => 1,
        1 => {
            // R3: two frames of equal size.
            if rest.len() % 2 != 0 {
                return Err(CodecError::InvalidPacket("code 1 payload length is odd"));
            }
            2
        }
        2 => {
            // R4: the first frame's length must fit in what follows it.
            let (first, used) = frame_length(rest)?;
            if first > rest.len() - used {
                return Err(CodecError::InvalidPacket(
                    "code 2 first frame exceeds packet",
                ));
            }
            check_frame_len(rest.len() - used - first)?;
            2
        }
        _ => code3(rest, frame_samples)?,
    };
    Ok(PacketShape {
        frames,
        frame_samples,
    })
}

/// Samples per frame at 48 kHz for a TOC's configuration number (RFC 6716 Table 2).
fn frame_samples(toc: u8) -> u32 {
    let config = toc >> 3;
    match config {
        // SILK-only: 10, 20, 40, 60 ms.
        0..=11 => [480, 960, 1_920, 2_880][usize::from(config % 4)],
        // Hybrid: 10, 20 ms.
        12..=15 => [480, 960][usize::from(config % 2)],
        // CELT-only: 2.5, 5, 10, 20 ms.
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    }
}

/// Reads a 1- or 2-byte frame length (RFC 6716 §3.2.1); returns (length, bytes used).
fn frame_length(data: &[u8]) -> Result<(usize, usize), CodecError> {
    match data {
        [] => Err(CodecError::InvalidPacket("frame length missing")),
        [b0, ..] if *b0 < 252 => Ok((usize::from(*b0), 1)),
        [_] => Err(CodecError::InvalidPacket("2-byte frame length truncated")),
        [b0, b1, ..] => Ok((usize::from(*b0) + 4 * usize::from(*b1), 2)),
    }
}

/// R2: no frame is longer than 1275 bytes.
fn check_frame_len(len: usize) -> Result<(), CodecError> {
    if len > MAX_FRAME_BYTES {
        return Err(CodecError::InvalidPacket("frame longer than 1275 bytes"));
    }
    Ok(())
}

/// Validates a code-3 packet body (everything after the TOC) and returns its frame count.
fn code3(rest: &[u8], frame_samples: u32) -> Result<u32, CodecError> {
    let Some((&count_byte, mut data)) = rest.split_first() else {
        return Err(CodecError::InvalidPacket("code 3 frame count byte missing"));
    };
    let vbr = count_byte & 0x80 != 0;
    let padded = count_byte & 0x40 != 0;
    let frames = u32::from(count_byte & 0x3f);
    // R5: at least one frame, at most 120 ms.
    if frames == 0 {
        return Err(CodecError::InvalidPacket("code 3 frame count is zero"));
    }
    if frames * frame_samples > MAX_PACKET_SAMPLES {
        return Err(CodecError::InvalidPacket(
            "code 3 packet longer than 120 ms",
        ));
    }
    if padded {
        // Padding length: each 255 adds 254 and continues (RFC 6716 §3.2.5).
        let mut padding = 0usize;
        loop {
            let Some((&b, tail)) = data.split_first() else {
                return Err(CodecError::InvalidPacket("code 3 padding length truncated"));
            };
            data = tail;
            if b == 255 {
                padding += 254;
            } else {
                padding += usize::from(b);
                break;
            }
        }
        // R6/R7: the padding must fit.
        let Some(len) = data.len().checked_sub(padding) else {
            return Err(CodecError::InvalidPacket("code 3 padding exceeds packet"));
        };
        data = &data[..len];
    }
    let frames_usize = frames as usize;
    if vbr {
        // R7: M-1 length fields, each frame fitting in what is left.
        let mut total = 0usize;
        for _ in 1..frames_usize {
            let (len, used) = frame_length(data)?;
            data = &data[used..];
            check_frame_len(len)?;
            total += len;
        }
        let Some(last) = data.len().checked_sub(total) else {
            return Err(CodecError::InvalidPacket("code 3 frames exceed packet"));
        };
        check_frame_len(last)?;
    } else {
        // R6: CBR frames share the remaining bytes equally.
        if data.len() % frames_usize != 0 {
            return Err(CodecError::InvalidPacket(
                "code 3 CBR payload not a multiple of the frame count",
            ));
        }
        check_frame_len(data.len() / frames_usize)?;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_of_every_config() {
        // SILK 20 ms (config 1), code 0.
        assert_eq!(packet_duration(&[1 << 3, 0xaa]), Ok(960));
        // Hybrid FB 20 ms (config 15), code 0.
        assert_eq!(packet_duration(&[15 << 3, 0xaa]), Ok(960));
        // CELT FB 2.5 ms (config 28) and 20 ms (config 31).
        assert_eq!(packet_duration(&[28 << 3, 0]), Ok(120));
        assert_eq!(packet_duration(&[31 << 3, 0]), Ok(960));
        // SILK 60 ms (config 3).
        assert_eq!(packet_duration(&[3 << 3]), Ok(2_880));
        // Code 1: two 10 ms SILK frames of 2 bytes each.
        assert_eq!(packet_duration(&[1, 1, 2, 3, 4]), Ok(960));
        // Code 2: two CELT 10 ms frames, first 1 byte.
        assert_eq!(packet_duration(&[(30 << 3) | 2, 1, 9, 8, 7]), Ok(960));
        // Code 3 CBR: four CELT 5 ms frames of 1 byte.
        assert_eq!(packet_duration(&[(29 << 3) | 3, 4, 1, 2, 3, 4]), Ok(960));
        // Code 3 VBR with padding: 2 frames, 1 padding byte.
        assert_eq!(
            packet_duration(&[(30 << 3) | 3, 0xc2, 1, 1, 7, 8, 9, 0]),
            Ok(960)
        );
    }

    #[test]
    fn rejects_malformed_framing() {
        assert_eq!(packet_duration(&[]), Err(CodecError::EmptyPacket));
        assert_eq!(
            packet_duration(&[0; 1276]),
            Err(CodecError::PacketTooLong(1276))
        );
        assert!(matches!(
            packet_duration(&[1, 1, 2, 3]),
            Err(CodecError::InvalidPacket(_))
        ));
        assert!(matches!(
            packet_duration(&[2, 5, 1]),
            Err(CodecError::InvalidPacket(_))
        ));
        assert!(matches!(
            packet_duration(&[2, 252]),
            Err(CodecError::InvalidPacket(_))
        ));
        assert!(matches!(
            packet_duration(&[3]),
            Err(CodecError::InvalidPacket(_))
        ));
        assert!(matches!(
            packet_duration(&[3, 0]),
            Err(CodecError::InvalidPacket(_))
        ));
        // 7 frames of 20 ms = 140 ms.
        assert!(matches!(
            packet_duration(&[(1 << 3) | 3, 7]),
            Err(CodecError::InvalidPacket(_))
        ));
        // CBR 3 frames over 4 bytes.
        assert!(matches!(
            packet_duration(&[(31 << 3) | 3, 3, 1, 2, 3, 4]),
            Err(CodecError::InvalidPacket(_))
        ));
        // Padding longer than the packet.
        assert!(matches!(
            packet_duration(&[(31 << 3) | 3, 0x41, 200, 1]),
            Err(CodecError::InvalidPacket(_))
        ));
        // VBR lengths past the end.
        assert!(matches!(
            packet_duration(&[(30 << 3) | 3, 0x82, 9, 1]),
            Err(CodecError::InvalidPacket(_))
        ));
    }

    #[test]
    fn never_panics_on_short_garbage() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let _ = packet_duration(&[a, b]);
                let _ = packet_duration(&[a, b, a ^ b]);
            }
        }
    }
}
