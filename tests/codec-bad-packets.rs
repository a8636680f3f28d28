//! Malformed Opus payloads from the network become typed errors, never panics, and the decoder
//! keeps working afterwards. Covers issue 3's bad inputs for the codec: a payload over 1275
//! bytes, a zero-length payload, invalid TOC/framing (including truncated code-3 packets),
//! packets that are not 20 ms, and thousands of random packets through every backend.

use mediabot::media::codec::{
    CodecBackend, CodecError, EncoderConfig, OpusDecoder, OpusEncoder, packet_duration,
};
use mediabot::media::frame::AudioFrame;
use mediabot::media::packet::OpusPacket;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// TOC bytes for 20 ms packets: SILK WB (config 9), Hybrid FB (15) and CELT FB (31), code 0.
const TOC_20MS: [u8; 3] = [9 << 3, 15 << 3, 31 << 3];

/// One well-formed packet from a real encoder, to prove a decoder still works after garbage.
fn good_packet(backend: CodecBackend) -> OpusPacket {
    let mut enc = OpusEncoder::new(backend, &EncoderConfig::default()).unwrap();
    let mut frame = AudioFrame::silence();
    for (i, s) in frame.samples.iter_mut().enumerate() {
        *s = 0.3 * (i as f32 * 0.05).sin();
    }
    let mut p = OpusPacket::EMPTY;
    enc.encode(&frame, &mut p).unwrap();
    p
}

fn each_decoder(mut check: impl FnMut(&mut OpusDecoder)) {
    for &backend in CodecBackend::ALL {
        let mut dec = OpusDecoder::new(backend).unwrap();
        check(&mut dec);
        // Still decodes a good packet afterwards.
        let mut out = AudioFrame::silence();
        dec.decode(good_packet(backend).as_slice(), &mut out)
            .unwrap_or_else(|e| panic!("{backend}: decoder broken after bad input: {e}"));
        assert!(out.samples.iter().all(|s| s.is_finite()));
    }
}

#[test]
fn zero_length_payload_is_an_error() {
    assert_eq!(packet_duration(&[]), Err(CodecError::EmptyPacket));
    each_decoder(|dec| {
        let mut out = AudioFrame::silence();
        assert_eq!(dec.decode(&[], &mut out), Err(CodecError::EmptyPacket));
        assert_eq!(dec.decode_fec(&[], &mut out), Err(CodecError::EmptyPacket));
    });
}

#[test]
fn payload_over_1275_bytes_is_an_error() {
    for len in [1_276, 1_500, 65_536] {
        let mut p = vec![0u8; len];
        p[0] = TOC_20MS[2];
        assert_eq!(packet_duration(&p), Err(CodecError::PacketTooLong(len)));
        each_decoder(|dec| {
            let mut out = AudioFrame::silence();
            assert_eq!(
                dec.decode(&p, &mut out),
                Err(CodecError::PacketTooLong(len))
            );
            assert_eq!(
                dec.decode_fec(&p, &mut out),
                Err(CodecError::PacketTooLong(len))
            );
        });
    }
    // The largest legal packet is accepted by the framing check.
    let mut p = vec![0u8; 1_275];
    p[0] = TOC_20MS[2];
    assert_eq!(packet_duration(&p), Ok(960));
}

#[test]
fn invalid_toc_framing_is_an_error() {
    let celt20 = 31 << 3;
    let cases: &[(&str, &[u8])] = &[
        ("code 1 with odd payload", &[celt20 | 1, 1, 2, 3]),
        ("code 2 without length", &[(30 << 3) | 2]),
        ("code 2 truncated 2-byte length", &[(30 << 3) | 2, 253]),
        ("code 2 first frame past end", &[(30 << 3) | 2, 9, 1, 2]),
        ("code 3 without count byte", &[celt20 | 3]),
        ("code 3 zero frames", &[celt20 | 3, 0, 1, 2]),
        ("code 3 over 120 ms", &[celt20 | 3, 7, 1, 2, 3, 4, 5, 6, 7]),
        ("code 3 max count byte", &[celt20 | 3, 0xff, 0xff]),
        ("code 3 truncated padding", &[celt20 | 3, 0x41, 255]),
        ("code 3 padding past end", &[celt20 | 3, 0x41, 50, 1, 2]),
        ("code 3 CBR uneven", &[(30 << 3) | 3, 2, 1, 2, 3]),
        ("code 3 VBR lengths truncated", &[(29 << 3) | 3, 0x84, 1, 1]),
        (
            "code 3 VBR frame past end",
            &[(30 << 3) | 3, 0x82, 200, 1, 2],
        ),
    ];
    for (what, p) in cases {
        assert!(
            matches!(packet_duration(p), Err(CodecError::InvalidPacket(_))),
            "{what}: {:?}",
            packet_duration(p)
        );
        each_decoder(|dec| {
            let mut out = AudioFrame::silence();
            assert!(
                matches!(dec.decode(p, &mut out), Err(CodecError::InvalidPacket(_))),
                "{what}"
            );
            assert!(
                matches!(
                    dec.decode_fec(p, &mut out),
                    Err(CodecError::InvalidPacket(_))
                ),
                "{what}"
            );
        });
    }
}

#[test]
fn packets_that_are_not_20_ms_are_rejected() {
    let cases: &[(&[u8], u32)] = &[
        (&[28 << 3, 1], 120),                  // CELT 2.5 ms
        (&[0, 1, 2], 480),                     // SILK 10 ms
        (&[(30 << 3) | 3, 3, 1, 2, 3], 1_440), // 3 x CELT 10 ms
        (&[2 << 3, 1], 1_920),                 // SILK 40 ms
        (&[(11 << 3) | 1, 1, 2], 5_760),       // 2 x SILK 60 ms
    ];
    for &(p, samples) in cases {
        assert_eq!(packet_duration(p), Ok(samples));
        each_decoder(|dec| {
            let mut out = AudioFrame::silence();
            assert_eq!(
                dec.decode(p, &mut out),
                Err(CodecError::UnsupportedDuration(samples))
            );
            assert_eq!(
                dec.decode_fec(p, &mut out),
                Err(CodecError::UnsupportedDuration(samples))
            );
        });
    }
}

/// Outcome counts of a fuzz run, to show the random packets reached the backends.
#[derive(Debug, Default)]
struct Outcomes {
    ok: usize,
    framing: usize,
    duration: usize,
    backend: usize,
}

#[test]
fn random_packets_never_panic_any_backend() {
    const PACKETS: usize = 4_000;
    for &backend in CodecBackend::ALL {
        let mut rng = StdRng::seed_from_u64(0x0b05_0b05);
        let mut dec = OpusDecoder::new(backend).unwrap();
        let mut out = AudioFrame::silence();
        let mut seen = Outcomes::default();
        let mut buf = [0u8; 1_400];
        for i in 0..PACKETS {
            let len = match i % 4 {
                0 => rng.random_range(0..=8),
                1 => rng.random_range(0..=200),
                _ => rng.random_range(0..=1_400),
            };
            let p = &mut buf[..len];
            rng.fill(&mut p[..]);
            // Half the packets get valid 20 ms framing so that they reach the backend: one
            // frame (code 0), two 10 ms frames (code 1), or four CELT 5 ms frames (code 3 CBR).
            if i % 2 == 1 && len > 0 {
                let stereo = p[0] & 0x04;
                match (i / 2) % 3 {
                    0 => p[0] = TOC_20MS[rng.random_range(0..TOC_20MS.len())] | stereo,
                    1 if len % 2 == 1 => p[0] = [8 << 3, 14 << 3, 30 << 3][i % 3] | stereo | 1,
                    _ if len >= 2 && (len - 2) % 4 == 0 => {
                        p[0] = (29 << 3) | stereo | 3;
                        p[1] = 4;
                    }
                    _ => p[0] = TOC_20MS[0] | stereo,
                }
            }
            let result = if i % 5 == 0 {
                dec.decode_fec(p, &mut out)
            } else {
                dec.decode(p, &mut out)
            };
            match result {
                Ok(()) => {
                    assert!(
                        out.samples.iter().all(|s| s.is_finite()),
                        "{backend}: non-finite output"
                    );
                    seen.ok += 1;
                }
                Err(CodecError::UnsupportedDuration(_)) => seen.duration += 1,
                Err(CodecError::Backend { backend: b, .. }) => {
                    assert_eq!(b, backend);
                    seen.backend += 1;
                }
                Err(
                    CodecError::EmptyPacket
                    | CodecError::PacketTooLong(_)
                    | CodecError::InvalidPacket(_),
                ) => seen.framing += 1,
                Err(e) => panic!("{backend}: unexpected error {e}"),
            }
            if i % 97 == 0 {
                dec.conceal(&mut out).unwrap();
            }
        }
        eprintln!("{backend}: {PACKETS} random packets: {seen:?}");
        // Many random packets were decoded for real, so the backend's own parser was exercised.
        assert!(seen.ok > PACKETS / 4, "{backend}: only {} decoded", seen.ok);
        assert!(seen.framing > 0 && seen.duration > 0);
        // The decoder still works.
        dec.decode(good_packet(backend).as_slice(), &mut out)
            .unwrap();
    }
}
