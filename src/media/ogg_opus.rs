//! Ogg Opus (RFC 7845) writing: a call's received Opus packets stored losslessly, one packet
//! per 20 ms tick, so the file's timeline is the call's timeline.
//!
//! A tick without a received packet (loss concealed, FEC, silence, leg absent) is written as a
//! one-byte Opus packet — a TOC byte with a zero-length frame (RFC 6716 §3.2.1), which a
//! decoder plays as concealment — so the file still has exactly one packet per tick.
//!
//! Writing goes to any [`Write`]; the caller chooses the file and when to flush. Every page
//! carries one packet (simple, and a crash loses at most the last page).

use std::io::{self, Write};

use crate::media::frame::FRAME_SAMPLES;

/// TOC byte of a 20 ms fullband CELT mono frame, code 0 (used for ticks without a packet
/// until a real packet shows the stream's mode).
pub const PLC_TOC: u8 = 0xF8;

/// Writes one mono Opus stream as Ogg pages.
#[derive(Debug)]
pub struct OggOpusWriter<W: Write> {
    out: W,
    serial: u32,
    page: u32,
    granule: u64,
    last_toc: u8,
    packets: u64,
    page_buf: Vec<u8>,
}

impl<W: Write> OggOpusWriter<W> {
    /// Writes the `OpusHead` and `OpusTags` pages (RFC 7845 §5) for a mono 48 kHz stream.
    ///
    /// # Errors
    /// The underlying writer failed.
    pub fn new(out: W, serial: u32) -> io::Result<Self> {
        let mut w = Self {
            out,
            serial,
            page: 0,
            granule: 0,
            last_toc: PLC_TOC,
            packets: 0,
            page_buf: Vec::with_capacity(2048),
        };
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(1); // channels
        head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
        head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family
        w.write_page(&head, 0, 0x02)?;
        let vendor = b"mediabot";
        let mut tags = Vec::with_capacity(24);
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
        w.write_page(&tags, 0, 0)?;
        Ok(w)
    }

    /// Writes one received 20 ms packet.
    ///
    /// # Errors
    /// The underlying writer failed.
    pub fn write_packet(&mut self, packet: &[u8]) -> io::Result<()> {
        let Some(&toc) = packet.first() else {
            return self.write_gap();
        };
        self.last_toc = toc & !0x03;
        self.granule += FRAME_SAMPLES as u64;
        self.packets += 1;
        self.write_page(packet, self.granule, 0)
    }

    /// Writes a tick without a packet (a TOC-only packet: the decoder conceals it).
    ///
    /// # Errors
    /// The underlying writer failed.
    pub fn write_gap(&mut self) -> io::Result<()> {
        self.granule += FRAME_SAMPLES as u64;
        self.packets += 1;
        let toc = [self.last_toc];
        self.write_page(&toc, self.granule, 0)
    }

    /// Packets (ticks) written.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Writes an empty end-of-stream page and returns the writer.
    ///
    /// # Errors
    /// The underlying writer failed.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_page(&[], self.granule, 0x04)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn write_page(&mut self, packet: &[u8], granule: u64, flags: u8) -> io::Result<()> {
        let b = &mut self.page_buf;
        b.clear();
        b.extend_from_slice(b"OggS");
        b.push(0);
        b.push(flags);
        b.extend_from_slice(&granule.to_le_bytes());
        b.extend_from_slice(&self.serial.to_le_bytes());
        b.extend_from_slice(&self.page.to_le_bytes());
        b.extend_from_slice(&[0; 4]); // CRC, filled below
        let full = packet.len() / 255;
        b.push((full + 1) as u8); // callers write ≤ 1275 bytes: at most 6 segments
        b.extend(std::iter::repeat_n(255u8, full));
        b.push((packet.len() % 255) as u8);
        b.extend_from_slice(packet);
        let crc = crc32(b);
        b[22..26].copy_from_slice(&crc.to_le_bytes());
        self.page += 1;
        self.out.write_all(b)
    }
}

/// The Ogg CRC-32 (polynomial 0x04C11DB7, no reflection, initial 0).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits Ogg bytes into (flags, granule, packet) per page, checking each CRC.
    fn pages(mut data: &[u8]) -> Vec<(u8, u64, Vec<u8>)> {
        let mut out = Vec::new();
        while !data.is_empty() {
            assert_eq!(&data[..4], b"OggS");
            let n = data[26] as usize;
            let lacing = &data[27..27 + n];
            let len: usize = lacing.iter().map(|&l| l as usize).sum();
            let total = 27 + n + len;
            let mut page = data[..total].to_vec();
            let crc = u32::from_le_bytes(page[22..26].try_into().unwrap());
            page[22..26].fill(0);
            assert_eq!(crc32(&page), crc, "page CRC");
            let granule = u64::from_le_bytes(data[6..14].try_into().unwrap());
            out.push((data[5], granule, data[27 + n..total].to_vec()));
            data = &data[total..];
        }
        out
    }

    #[test]
    fn crc_matches_the_ogg_reference_value() {
        // CRC-32/MPEG-2 without the final inversion and init 0 ("CRC-32/BZIP2" differs);
        // the Ogg check value for "123456789" is 0x89A1897F.
        assert_eq!(crc32(b"123456789"), 0x89A1_897F);
    }

    #[test]
    fn one_page_per_tick_with_gaps_kept() {
        let mut w = OggOpusWriter::new(Vec::new(), 7).unwrap();
        w.write_packet(&[0x48, 1, 2, 3]).unwrap();
        w.write_gap().unwrap();
        w.write_packet(&[0x4b; 600]).unwrap();
        assert_eq!(w.packets(), 3);
        let bytes = w.finish().unwrap();
        let p = pages(&bytes);
        assert_eq!(p.len(), 6);
        assert_eq!(p[0].0, 0x02);
        assert!(p[0].2.starts_with(b"OpusHead"));
        assert!(p[1].2.starts_with(b"OpusTags"));
        assert_eq!(p[2], (0, 960, vec![0x48, 1, 2, 3]));
        assert_eq!(p[3], (0, 1920, vec![0x48]));
        assert_eq!((p[4].1, p[4].2.len()), (2880, 600));
        assert_eq!((p[5].0, p[5].1, p[5].2.len()), (0x04, 2880, 0));
    }
}
