//! SDP checks done before webrtc-rs sees the text, and small SDP text utilities.
//!
//! [`check`] rejects what the transport cannot use with a typed error — malformed text, no
//! audio section, no `opus/48000/2` — and reads the few things the transport needs from the
//! remote description: the Opus and telephone-event payload types and the RFC 6464 audio-level
//! extension id. It is a line scanner with limits (size, line count), so hostile input costs
//! little and never panics; webrtc-rs parses the text again when it is applied.

use std::net::{IpAddr, SocketAddr};

use super::error::TransportError;

/// Largest SDP accepted, in bytes (a real audio-only offer is 1–3 KB).
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// Largest number of lines accepted.
pub const MAX_SDP_LINES: usize = 2_000;
/// The RFC 6464 client-to-mixer audio level header extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// What the transport learned from a valid remote description.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdpSummary {
    /// Payload type of `opus/48000/2` in the (first usable) audio section.
    pub opus_pt: u8,
    /// Payload type of `telephone-event/48000`, if offered.
    pub telephone_event_pt: Option<u8>,
    /// Extension id of the RFC 6464 audio level, if offered.
    pub audio_level_id: Option<u8>,
}

/// Validates `sdp` and summarises its audio section.
///
/// # Errors
/// [`TransportError::MalformedSdp`] for text that is not SDP (first line not `v=0`, a line
/// not of the form `x=…`, a malformed `m=` line, too large), [`TransportError::NoAudio`] when
/// no `m=audio` section with a non-zero port exists, [`TransportError::NoOpus`] when no audio
/// section maps a listed payload type to `opus/48000/2`.
pub fn check(sdp: &str) -> Result<SdpSummary, TransportError> {
    let malformed = |why: &str| TransportError::MalformedSdp(why.to_owned());
    if sdp.len() > MAX_SDP_BYTES {
        return Err(malformed("larger than 64 KiB"));
    }
    let mut lines = sdp
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty());
    if lines.next() != Some("v=0") {
        return Err(malformed("first line is not v=0"));
    }
    let mut audio_sections = Vec::new();
    let mut current: Option<Section> = None;
    for (n, line) in lines.enumerate() {
        if n >= MAX_SDP_LINES {
            return Err(malformed("too many lines"));
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || !bytes[0].is_ascii_lowercase() || bytes[1] != b'=' {
            return Err(TransportError::MalformedSdp(format!(
                "line {} is not of the form x=value",
                n + 2
            )));
        }
        let value = &line[2..];
        match bytes[0] {
            b'm' => {
                if let Some(s) = current.take() {
                    audio_sections.push(s);
                }
                let mut tok = value.split_ascii_whitespace();
                let (Some(media), Some(port), Some(_proto)) = (tok.next(), tok.next(), tok.next())
                else {
                    return Err(malformed("m= line has fewer than 3 fields"));
                };
                let port = port.split('/').next().unwrap_or("");
                let Ok(port) = port.parse::<u16>() else {
                    return Err(malformed("m= line port is not a number"));
                };
                let fmts: Vec<u8> = tok.filter_map(|t| t.parse().ok()).collect();
                current = (media == "audio" && port != 0).then(|| Section {
                    fmts,
                    ..Section::default()
                });
            }
            b'a' => {
                if let Some(s) = current.as_mut() {
                    s.attribute(value);
                }
            }
            _ => {}
        }
    }
    if let Some(s) = current.take() {
        audio_sections.push(s);
    }
    if audio_sections.is_empty() {
        return Err(TransportError::NoAudio);
    }
    audio_sections
        .iter()
        .find_map(|s| {
            let opus_pt = s.opus_pt.filter(|pt| s.fmts.contains(pt))?;
            Some(SdpSummary {
                opus_pt,
                telephone_event_pt: s.telephone_event_pt.filter(|pt| s.fmts.contains(pt)),
                audio_level_id: s.audio_level_id,
            })
        })
        .ok_or(TransportError::NoOpus)
}

/// The host/srflx/relay candidate addresses (UDP) listed in `sdp`, in order. Unparsable
/// candidate lines are skipped.
pub fn candidate_addrs(sdp: &str) -> Vec<SocketAddr> {
    sdp.lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("a=candidate:"))
        .filter_map(|c| {
            let f: Vec<&str> = c.split_ascii_whitespace().collect();
            if f.len() < 6 || !f[2].eq_ignore_ascii_case("udp") {
                return None;
            }
            let ip: IpAddr = f[4].parse().ok()?;
            let port: u16 = f[5].parse().ok()?;
            Some(SocketAddr::new(ip, port))
        })
        .collect()
}

/// Rewrites the address and/or port of every `typ host` candidate in `sdp` (the NAT 1:1
/// mapping; rtc 0.21.1 stores `with_nat_1to1_ips` but never applies it). Other lines are
/// kept byte for byte.
pub fn rewrite_host_candidates(sdp: &str, ip: Option<IpAddr>, port: Option<u16>) -> String {
    let mut out = String::with_capacity(sdp.len() + 16);
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        let Some(cand) = body.strip_prefix("a=candidate:") else {
            out.push_str(line);
            continue;
        };
        let mut f: Vec<String> = cand.split(' ').map(str::to_owned).collect();
        let is_host = f.windows(2).any(|w| w[0] == "typ" && w[1] == "host");
        if f.len() >= 6 && is_host && f[5].parse::<u16>().is_ok() {
            if let Some(ip) = ip {
                f[4] = ip.to_string();
            }
            if let Some(port) = port {
                f[5] = port.to_string();
            }
            out.push_str("a=candidate:");
            out.push_str(&f.join(" "));
            out.push_str(ending);
        } else {
            out.push_str(line);
        }
    }
    out
}

#[derive(Default)]
struct Section {
    fmts: Vec<u8>,
    opus_pt: Option<u8>,
    telephone_event_pt: Option<u8>,
    audio_level_id: Option<u8>,
}

impl Section {
    fn attribute(&mut self, value: &str) {
        if let Some(map) = value.strip_prefix("rtpmap:") {
            let mut it = map.splitn(2, ' ');
            let (Some(pt), Some(enc)) = (it.next(), it.next()) else {
                return;
            };
            let Ok(pt) = pt.trim().parse::<u8>() else {
                return;
            };
            let enc = enc.trim();
            if enc.eq_ignore_ascii_case("opus/48000/2") && self.opus_pt.is_none() {
                self.opus_pt = Some(pt);
            } else if enc.eq_ignore_ascii_case("telephone-event/48000")
                && self.telephone_event_pt.is_none()
            {
                self.telephone_event_pt = Some(pt);
            }
        } else if let Some(ext) = value.strip_prefix("extmap:") {
            let mut it = ext.split_ascii_whitespace();
            let (Some(id), Some(uri)) = (it.next(), it.next()) else {
                return;
            };
            let id = id.split('/').next().and_then(|i| i.parse::<u8>().ok());
            if uri == AUDIO_LEVEL_URI {
                self.audio_level_id = id.filter(|i| (1..=14).contains(i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 101\r\nc=IN IP4 0.0.0.0\r\n\
        a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
        a=rtpmap:101 telephone-event/48000\r\n\
        a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
        a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n";

    #[test]
    fn summarises_a_valid_offer() {
        assert_eq!(
            check(OFFER),
            Ok(SdpSummary {
                opus_pt: 111,
                telephone_event_pt: Some(101),
                audio_level_id: Some(1),
            })
        );
    }

    #[test]
    fn rejects_non_sdp_no_audio_and_no_opus() {
        assert!(matches!(check(""), Err(TransportError::MalformedSdp(_))));
        assert!(matches!(
            check("hello"),
            Err(TransportError::MalformedSdp(_))
        ));
        assert!(matches!(
            check("v=0\r\nthis is not sdp\r\n"),
            Err(TransportError::MalformedSdp(_))
        ));
        assert!(matches!(
            check("v=0\r\nm=audio\r\n"),
            Err(TransportError::MalformedSdp(_))
        ));
        assert_eq!(
            check("v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"),
            Err(TransportError::NoAudio)
        );
        assert_eq!(
            check("v=0\r\nm=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"),
            Err(TransportError::NoAudio)
        );
        assert_eq!(
            check("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n"),
            Err(TransportError::NoOpus)
        );
        // opus mapped but not listed in the m= line
        assert_eq!(
            check("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:111 opus/48000/2\r\n"),
            Err(TransportError::NoOpus)
        );
        let huge = format!("v=0\r\n{}", "a=x\r\n".repeat(20_000));
        assert!(matches!(check(&huge), Err(TransportError::MalformedSdp(_))));
    }

    #[test]
    fn finds_and_rewrites_candidates() {
        assert_eq!(
            candidate_addrs(OFFER),
            vec!["127.0.0.1:40000".parse::<SocketAddr>().unwrap()]
        );
        let rewritten = rewrite_host_candidates(OFFER, None, Some(3478));
        assert_eq!(
            candidate_addrs(&rewritten),
            vec!["127.0.0.1:3478".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(rewritten.len(), OFFER.len() - 1);
        let rewritten = rewrite_host_candidates(OFFER, "198.51.100.9".parse().ok(), None);
        assert_eq!(
            candidate_addrs(&rewritten),
            vec!["198.51.100.9:40000".parse::<SocketAddr>().unwrap()]
        );
    }
}
