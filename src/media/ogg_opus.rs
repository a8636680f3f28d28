//! Ogg Opus (RFC 7845 over RFC 3533) for recordings: a writer into any [`io::Write`] and a
//! strict reader for checking what was written.
//!
//! The writer lays out one logical stream per file:
//! 1. page 0 (BOS): the `OpusHead` identification header, alone on its page;
//! 2. page 1: the `OpusTags` comment header (vendor `"mediabot"` by default), alone;
//! 3. audio pages of up to [`OggOpusWriter::packets_per_page`] whole packets each (packets are
//!    never split across pages), the last one flagged EOS.
//!
//! **Granule positions** count 48 kHz samples including the pre-skip (RFC 7845 §4): each page
//! carries the position at the end of its last packet. The caller states every packet's
//! duration, so a recording that writes one 960-sample packet per tick (received, or a gap
//! filler, see [`PLC_PACKET`] and [`SILENCE_PACKET`]) has granule positions that advance exactly
//! 960 per tick: the file's timeline is the room's.
//!
//! The page checksum is the Ogg CRC-32 (polynomial 0x04c11db7, initial value 0, no reflection,
//! no final xor) over the whole page with its CRC field zeroed.
//!
//! The reader ([`OggOpusFile::parse`]) checks capture patterns, versions, CRCs, the page
//! sequence, a single serial number, BOS/EOS flags and both headers, and rebuilds each packet's
//! end granule from the packet durations and the page granules (they must agree).
//!
//! Sans-IO in spirit: the writer only calls `write_all` on the sink it is given (a file, a
//! `Vec<u8>`), reads no clock and spawns nothing. Not for the shard: it allocates.

use std::io::{self, Write};

use crate::media::codec::packet_duration;

/// Pre-skip written when the encoder's lookahead is unknown: libopus's 6.5 ms at 48 kHz.
pub const DEFAULT_PRE_SKIP: u16 = 312;

/// Default vendor string of the `OpusTags` header.
pub const VENDOR: &str = "mediabot";

/// A 20 ms Opus packet with one **empty frame** (TOC only, code 0, CELT fullband 20 ms):
/// RFC 6716 §3.2.1 says a zero-length frame means no data was available (DTX or loss), so
/// decoders run their loss concealment for the TOC's duration. Written where the room
/// concealed a lost packet.
pub const PLC_PACKET: [u8; 1] = [0xf8];

/// A 20 ms CELT packet that decodes to **digital silence** (the CELT silence flag set; the
/// well-known `f8 ff fe` that WebRTC stacks send for muted audio). Written where the room
/// played silence (no stream yet, past the concealment limit, or the leg absent).
pub const SILENCE_PACKET: [u8; 3] = [0xf8, 0xff, 0xfe];

/// Largest number of lacing values on one page (RFC 3533 §6).
const MAX_SEGMENTS: usize = 255;
/// Page header length without the segment table.
const HEADER_LEN: usize = 27;

/// Why an Ogg Opus stream could not be written or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OggError {
    /// The sink failed.
    #[error("io: {0:?}")]
    Io(io::ErrorKind),
    /// A packet too large for one page (more than 255 × 255 − 1 bytes) or empty.
    #[error("packet of {0} bytes cannot be written")]
    BadPacket(usize),
    /// The input ended inside a page.
    #[error("truncated page at byte {0}")]
    Truncated(usize),
    /// A page that does not start with `OggS` or has a version other than 0.
    #[error("no Ogg page at byte {0}")]
    NotOgg(usize),
    /// A page whose CRC does not match its contents.
    #[error("CRC mismatch on page {page}")]
    Crc {
        /// The page's sequence number.
        page: u32,
    },
    /// Page sequence numbers not 0, 1, 2, …
    #[error("page {found} where page {expected} was expected")]
    PageSequence {
        /// The next sequence number expected.
        expected: u32,
        /// The one found.
        found: u32,
    },
    /// A violation of the stream layout (named).
    #[error("invalid Ogg Opus stream: {0}")]
    Invalid(&'static str),
    /// A page granule position that disagrees with the durations of its packets.
    #[error("page {page}: granule {found}, packets end at {expected}")]
    Granule {
        /// The page's sequence number.
        page: u32,
        /// Granule position implied by the packets.
        expected: u64,
        /// Granule position on the page.
        found: u64,
    },
}

impl From<io::Error> for OggError {
    fn from(e: io::Error) -> Self {
        Self::Io(e.kind())
    }
}

/// The `OpusHead` identification header (RFC 7845 §5.1), mono or stereo with mapping family 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusHead {
    /// Output channels (1 for our recordings).
    pub channels: u8,
    /// Samples (at 48 kHz) to discard from the decoder output at the start.
    pub pre_skip: u16,
    /// Sample rate of the original input (informational).
    pub input_sample_rate: u32,
    /// Output gain in Q7.8 dB.
    pub output_gain: i16,
}

impl Default for OpusHead {
    fn default() -> Self {
        Self {
            channels: 1,
            pre_skip: DEFAULT_PRE_SKIP,
            input_sample_rate: 48_000,
            output_gain: 0,
        }
    }
}

impl OpusHead {
    fn to_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(19);
        b.extend_from_slice(b"OpusHead");
        b.push(1); // version
        b.push(self.channels);
        b.extend_from_slice(&self.pre_skip.to_le_bytes());
        b.extend_from_slice(&self.input_sample_rate.to_le_bytes());
        b.extend_from_slice(&self.output_gain.to_le_bytes());
        b.push(0); // channel mapping family 0: mono or stereo, no table
        b
    }

    fn parse(b: &[u8]) -> Result<Self, OggError> {
        if b.len() < 19 || &b[..8] != b"OpusHead" {
            return Err(OggError::Invalid("first packet is not OpusHead"));
        }
        if b[8] >> 4 != 0 {
            return Err(OggError::Invalid("unsupported OpusHead major version"));
        }
        let head = Self {
            channels: b[9],
            pre_skip: u16::from_le_bytes([b[10], b[11]]),
            input_sample_rate: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            output_gain: i16::from_le_bytes([b[16], b[17]]),
        };
        if head.channels == 0 || (b[18] == 0 && head.channels > 2) {
            return Err(OggError::Invalid("bad channel count"));
        }
        Ok(head)
    }
}

/// Writes one Ogg Opus logical stream into `W`.
#[derive(Debug)]
pub struct OggOpusWriter<W: Write> {
    sink: W,
    serial: u32,
    sequence: u32,
    granule: u64,
    packets_per_page: usize,
    /// Packets of the page being filled: their bytes and lacing values.
    body: Vec<u8>,
    lacing: Vec<u8>,
    pending: usize,
    page: Vec<u8>,
}

impl<W: Write> OggOpusWriter<W> {
    /// Starts a stream: writes the `OpusHead` page (BOS) and the `OpusTags` page at once.
    /// `packets_per_page` is clamped to 1..=42 (42 packets of the largest size fit a page).
    ///
    /// # Errors
    /// [`OggError::Io`] if the sink fails.
    pub fn new(
        sink: W,
        serial: u32,
        head: OpusHead,
        vendor: &str,
        comments: &[(&str, &str)],
        packets_per_page: usize,
    ) -> Result<Self, OggError> {
        let mut w = Self {
            sink,
            serial,
            sequence: 0,
            granule: 0,
            packets_per_page: packets_per_page.clamp(1, 42),
            body: Vec::new(),
            lacing: Vec::new(),
            pending: 0,
            page: Vec::new(),
        };
        w.push_packet(&head.to_bytes())?;
        w.flush_page(0x02, 0)?;
        let mut tags = Vec::new();
        tags.extend_from_slice(b"OpusTags");
        push_string(&mut tags, vendor.as_bytes());
        tags.extend_from_slice(&u32_len(comments.len()).to_le_bytes());
        for (k, v) in comments {
            push_string(&mut tags, format!("{k}={v}").as_bytes());
        }
        w.push_packet(&tags)?;
        w.flush_page(0, 0)?;
        Ok(w)
    }

    /// Appends one audio packet lasting `samples` (48 kHz); the granule position advances by
    /// it. A page is written once it holds `packets_per_page` packets and another comes.
    ///
    /// # Errors
    /// [`OggError::BadPacket`] for an empty packet (nothing is written), [`OggError::Io`].
    pub fn write_packet(&mut self, packet: &[u8], samples: u32) -> Result<(), OggError> {
        if packet.is_empty() {
            return Err(OggError::BadPacket(0));
        }
        // A full page is written only when the next packet comes, so that the last page
        // (flagged EOS by `finish`) normally carries packets.
        if self.pending >= self.packets_per_page
            || self.lacing.len() + packet.len() / 255 + 1 > MAX_SEGMENTS
        {
            self.flush_page(0, self.granule)?;
        }
        self.push_packet(packet)?;
        self.granule += u64::from(samples);
        Ok(())
    }

    /// Writes any buffered packets as a page (not EOS) and flushes the sink, so a reader sees
    /// everything written so far.
    ///
    /// # Errors
    /// [`OggError::Io`].
    pub fn flush(&mut self) -> Result<(), OggError> {
        if self.pending > 0 {
            self.flush_page(0, self.granule)?;
        }
        self.sink.flush()?;
        Ok(())
    }

    /// Ends the stream: writes the last page flagged EOS (an empty one if nothing is
    /// buffered, i.e. right after [`Self::flush`]), flushes and returns the sink.
    ///
    /// # Errors
    /// [`OggError::Io`].
    pub fn finish(mut self) -> Result<W, OggError> {
        self.flush_page(0x04, self.granule)?;
        self.sink.flush()?;
        Ok(self.sink)
    }

    /// Granule position after the packets written so far.
    pub fn granule(&self) -> u64 {
        self.granule
    }

    /// Packets per audio page.
    pub fn packets_per_page(&self) -> usize {
        self.packets_per_page
    }

    fn push_packet(&mut self, packet: &[u8]) -> Result<(), OggError> {
        let segments = packet.len() / 255 + 1;
        if segments > MAX_SEGMENTS {
            return Err(OggError::BadPacket(packet.len()));
        }
        self.lacing
            .extend(std::iter::repeat_n(255, packet.len() / 255));
        // In range: the remainder of a division by 255.
        self.lacing.push((packet.len() % 255) as u8);
        self.body.extend_from_slice(packet);
        self.pending += 1;
        Ok(())
    }

    fn flush_page(&mut self, flags: u8, granule: u64) -> Result<(), OggError> {
        let p = &mut self.page;
        p.clear();
        p.extend_from_slice(b"OggS");
        p.push(0);
        p.push(flags);
        p.extend_from_slice(&granule.to_le_bytes());
        p.extend_from_slice(&self.serial.to_le_bytes());
        p.extend_from_slice(&self.sequence.to_le_bytes());
        p.extend_from_slice(&[0; 4]);
        // At most MAX_SEGMENTS lacing values are ever buffered (checked on push).
        p.push(self.lacing.len() as u8);
        p.extend_from_slice(&self.lacing);
        p.extend_from_slice(&self.body);
        let crc = crc32(p);
        p[22..26].copy_from_slice(&crc.to_le_bytes());
        self.sink.write_all(p)?;
        self.sequence += 1;
        self.lacing.clear();
        self.body.clear();
        self.pending = 0;
        Ok(())
    }
}

fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32_len(s.len()).to_le_bytes());
    out.extend_from_slice(s);
}

fn u32_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One audio packet read back, with the granule position at its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OggPacket {
    /// The packet's bytes.
    pub data: Vec<u8>,
    /// Granule position after this packet (48 kHz samples including the pre-skip).
    pub granule: u64,
    /// Sequence number of the page it ended on.
    pub page: u32,
}

/// A whole Ogg Opus file read back and checked (see the module docs for what is checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OggOpusFile {
    /// The identification header.
    pub head: OpusHead,
    /// The `OpusTags` vendor string.
    pub vendor: String,
    /// The `OpusTags` user comments (`KEY=value`).
    pub comments: Vec<String>,
    /// The stream's serial number.
    pub serial: u32,
    /// Number of pages (headers included).
    pub pages: u32,
    /// Granule positions of the audio pages that end packets, in order (an empty EOS page,
    /// written when a stream ends right after a flush, is checked but not listed).
    pub page_granules: Vec<u64>,
    /// The audio packets in order.
    pub packets: Vec<OggPacket>,
}

impl OggOpusFile {
    /// Parses and checks a complete single-stream Ogg Opus file.
    ///
    /// # Errors
    /// An [`OggError`] naming the first problem found.
    pub fn parse(bytes: &[u8]) -> Result<Self, OggError> {
        let mut at = 0;
        let mut raw: Vec<(u32, u64, u8, Vec<Vec<u8>>)> = Vec::new();
        let mut serial = None;
        let mut partial: Vec<u8> = Vec::new();
        while at < bytes.len() {
            let page = read_page(bytes, at)?;
            let expected = u32_len(raw.len());
            if page.sequence != expected {
                return Err(OggError::PageSequence {
                    expected,
                    found: page.sequence,
                });
            }
            if *serial.get_or_insert(page.serial) != page.serial {
                return Err(OggError::Invalid("more than one serial number"));
            }
            let continued = page.flags & 0x01 != 0;
            if continued == partial.is_empty() {
                return Err(OggError::Invalid("continuation flag disagrees with lacing"));
            }
            let mut done = Vec::new();
            let mut pos = 0;
            for &lace in page.lacing {
                let n = usize::from(lace);
                partial.extend_from_slice(&page.body[pos..pos + n]);
                pos += n;
                if lace < 255 {
                    done.push(std::mem::take(&mut partial));
                }
            }
            raw.push((page.sequence, page.granule, page.flags, done));
            at = page.end;
        }
        if !partial.is_empty() {
            return Err(OggError::Invalid("stream ends inside a packet"));
        }
        let (first, last) = match (raw.first(), raw.last()) {
            (Some(f), Some(l)) if raw.len() >= 2 => (f, l),
            _ => return Err(OggError::Invalid("fewer than two pages")),
        };
        if first.2 & 0x02 == 0 || raw[1..].iter().any(|p| p.2 & 0x02 != 0) {
            return Err(OggError::Invalid("BOS flag must be on the first page only"));
        }
        if last.2 & 0x04 == 0 || raw[..raw.len() - 1].iter().any(|p| p.2 & 0x04 != 0) {
            return Err(OggError::Invalid("EOS flag must be on the last page only"));
        }
        let [head_packet] = first.3.as_slice() else {
            return Err(OggError::Invalid(
                "OpusHead must be alone on the first page",
            ));
        };
        let head = OpusHead::parse(head_packet)?;
        let [tags] = raw[1].3.as_slice() else {
            return Err(OggError::Invalid("OpusTags must be alone on its page"));
        };
        let (vendor, comments) = parse_tags(tags)?;
        let mut file = Self {
            head,
            vendor,
            comments,
            serial: serial.unwrap_or_default(),
            pages: u32_len(raw.len()),
            page_granules: Vec::new(),
            packets: Vec::new(),
        };
        let mut granule = 0u64;
        for (sequence, page_granule, _, packets) in raw.into_iter().skip(2) {
            for data in packets {
                let samples = packet_duration(&data)
                    .map_err(|_| OggError::Invalid("audio packet with invalid Opus framing"))?;
                granule += u64::from(samples);
                file.packets.push(OggPacket {
                    data,
                    granule,
                    page: sequence,
                });
            }
            if page_granule != granule {
                return Err(OggError::Granule {
                    page: sequence,
                    expected: granule,
                    found: page_granule,
                });
            }
            if file.packets.last().is_some_and(|p| p.page == sequence) {
                file.page_granules.push(page_granule);
            }
        }
        Ok(file)
    }
}

fn parse_tags(b: &[u8]) -> Result<(String, Vec<String>), OggError> {
    const BAD: OggError = OggError::Invalid("malformed OpusTags");
    let rest = b.strip_prefix(b"OpusTags").ok_or(BAD)?;
    let mut cursor = rest;
    let take_str = |cursor: &mut &[u8]| -> Result<String, OggError> {
        let len = take_u32(cursor).ok_or(BAD)? as usize;
        let s = cursor.get(..len).ok_or(BAD)?;
        *cursor = &cursor[len..];
        Ok(String::from_utf8_lossy(s).into_owned())
    };
    let vendor = take_str(&mut cursor)?;
    let count = take_u32(&mut cursor).ok_or(BAD)?;
    let mut comments = Vec::new();
    for _ in 0..count {
        comments.push(take_str(&mut cursor)?);
    }
    Ok((vendor, comments))
}

fn take_u32(cursor: &mut &[u8]) -> Option<u32> {
    let (n, rest) = cursor.split_first_chunk::<4>()?;
    *cursor = rest;
    Some(u32::from_le_bytes(*n))
}

struct RawPage<'a> {
    flags: u8,
    granule: u64,
    serial: u32,
    sequence: u32,
    lacing: &'a [u8],
    body: &'a [u8],
    end: usize,
}

fn read_page(bytes: &[u8], at: usize) -> Result<RawPage<'_>, OggError> {
    let h = bytes
        .get(at..at + HEADER_LEN)
        .ok_or(OggError::Truncated(at))?;
    if &h[..4] != b"OggS" || h[4] != 0 {
        return Err(OggError::NotOgg(at));
    }
    let le32 = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let mut g = [0u8; 8];
    g.copy_from_slice(&h[6..14]);
    let segments = usize::from(h[26]);
    let lacing = bytes
        .get(at + HEADER_LEN..at + HEADER_LEN + segments)
        .ok_or(OggError::Truncated(at))?;
    let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
    let start = at + HEADER_LEN + segments;
    let body = bytes
        .get(start..start + body_len)
        .ok_or(OggError::Truncated(at))?;
    let sequence = le32(18);
    let mut page = bytes[at..start + body_len].to_vec();
    page[22..26].fill(0);
    if crc32(&page) != le32(22) {
        return Err(OggError::Crc { page: sequence });
    }
    Ok(RawPage {
        flags: h[5],
        granule: u64::from_le_bytes(g),
        serial: le32(14),
        sequence,
        lacing,
        body,
        end: start + body_len,
    })
}

/// The Ogg page checksum (CRC-32, polynomial 0x04c11db7, MSB first, initial 0, no final xor).
pub fn crc32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ CRC_TABLE[usize::from((crc >> 24) as u8 ^ b)]
    })
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04c1_1db7
            } else {
                r << 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::{CodecBackend, OpusDecoder};
    use crate::media::frame::AudioFrame;

    fn write(packets: &[&[u8]], per_page: usize) -> Vec<u8> {
        let mut w = OggOpusWriter::new(
            Vec::new(),
            7,
            OpusHead::default(),
            VENDOR,
            &[("TITLE", "t")],
            per_page,
        )
        .unwrap();
        for p in packets {
            w.write_packet(p, 960).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn crc_matches_the_ogg_reference_value() {
        // CRC-32/MPEG-2 without its init/xorout is the Ogg CRC; "123456789" checks to this.
        assert_eq!(crc32(b"123456789"), 0x89a1_897f);
    }

    #[test]
    fn round_trips_headers_packets_and_granules() {
        let big = vec![0xfcu8; 600];
        let packets: Vec<&[u8]> = vec![&PLC_PACKET, &SILENCE_PACKET, &big, &PLC_PACKET, &big];
        let bytes = write(&packets, 2);
        let file = OggOpusFile::parse(&bytes).unwrap();
        assert_eq!(file.head, OpusHead::default());
        assert_eq!(file.vendor, "mediabot");
        assert_eq!(file.comments, vec!["TITLE=t".to_string()]);
        assert_eq!(file.serial, 7);
        // 2 header pages + 3 audio pages (2 + 2 + 1 packets); EOS on the last.
        assert_eq!(file.pages, 5);
        assert_eq!(file.page_granules, vec![1920, 3840, 4800]);
        let got: Vec<&[u8]> = file.packets.iter().map(|p| p.data.as_slice()).collect();
        assert_eq!(got, packets);
        let granules: Vec<u64> = file.packets.iter().map(|p| p.granule).collect();
        assert_eq!(granules, vec![960, 1920, 2880, 3840, 4800]);
    }

    #[test]
    fn an_empty_stream_still_ends_with_an_eos_page() {
        let file = OggOpusFile::parse(&write(&[], 4)).unwrap();
        assert_eq!(file.pages, 3);
        assert!(file.packets.is_empty());
    }

    #[test]
    fn reader_rejects_corruption_and_truncation() {
        let bytes = write(&[&SILENCE_PACKET, &SILENCE_PACKET], 1);
        let mut bad = bytes.clone();
        // The granule field of the last (empty, EOS) page.
        let at = bad.len() - HEADER_LEN + 6;
        bad[at] ^= 0x40;
        assert!(matches!(
            OggOpusFile::parse(&bad),
            Err(OggError::Crc { .. })
        ));
        assert!(matches!(
            OggOpusFile::parse(&bytes[..bytes.len() - 2]),
            Err(OggError::Truncated(_))
        ));
        assert_eq!(OggOpusFile::parse(b"RIFF"), Err(OggError::Truncated(0)));
        let mut not_ogg = bytes;
        not_ogg[0] = b'X';
        assert_eq!(OggOpusFile::parse(&not_ogg), Err(OggError::NotOgg(0)));
    }

    #[test]
    fn empty_packets_are_refused() {
        let mut w = OggOpusWriter::new(Vec::new(), 1, OpusHead::default(), VENDOR, &[], 1).unwrap();
        assert_eq!(w.write_packet(&[], 960), Err(OggError::BadPacket(0)));
        assert_eq!(w.granule(), 0);
    }

    #[test]
    fn gap_fillers_are_20ms_and_decode_as_concealment_and_silence() {
        assert_eq!(packet_duration(&PLC_PACKET), Ok(960));
        assert_eq!(packet_duration(&SILENCE_PACKET), Ok(960));
        let mut dec = OpusDecoder::new(CodecBackend::default()).unwrap();
        let mut frame = AudioFrame::silence();
        dec.decode(&SILENCE_PACKET, &mut frame).unwrap();
        assert!(frame.samples.iter().all(|&s| s.abs() < 1e-6));
        dec.decode(&PLC_PACKET, &mut frame).unwrap();
        assert!(frame.samples.iter().all(|s| s.is_finite()));
    }
}
