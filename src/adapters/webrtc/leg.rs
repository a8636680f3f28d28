//! The queues between one session and its call's shard, and the reader that converts received
//! RTP into [`RtpPacket`] values.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::media::packet::{AudioLevel, OpusPacket, RtpMeta, RtpPacket};

use super::dtmf::{DtmfReceiver, EventPayload, ReceivedTelephoneEvent};
use super::egress::EgressHandle;
use super::event::MediaEvent;
use super::sdp::SdpSummary;
use super::stats::Counters;
use super::wire::WireTap;

/// Everything a session needs to exchange media with its call's shard.
///
/// Values in the queues are fixed-size [`RtpPacket`]s; a full inbound queue drops the packet
/// and counts it ([`TransportStats::inbound_full_drops`](super::TransportStats)).
#[derive(Debug)]
pub struct LegQueues {
    /// Received Opus RTP, converted to [`RtpPacket`] (`arrival` = when the reader took it).
    pub inbound: rtrb::Producer<RtpPacket>,
    /// Packets to send, filled by the shard: seq, timestamp (+960 per 20 ms), SSRC and marker
    /// go on the wire as given; `arrival` must be when the shard produced the packet (the
    /// egress measures queue wait from it). The SSRC must equal [`Self::ssrc`].
    pub outbound: rtrb::Consumer<RtpPacket>,
    /// Lifecycle and DTMF events. Sent with `try_send`: keep room (capacity ≥ 16) and drain
    /// it, or events are lost.
    pub events: mpsc::Sender<MediaEvent>,
    /// The SSRC of our outbound stream (announced in our SDP; webrtc-rs refuses other SSRCs).
    pub ssrc: u32,
    /// The egress task of the shard that owns `outbound`.
    pub egress: EgressHandle,
}

/// The shard's (or a test's) ends of a [`LegQueues`], made by [`LegQueues::new`].
#[derive(Debug)]
pub struct LegEnds {
    /// Pop received packets here.
    pub inbound: rtrb::Consumer<RtpPacket>,
    /// Push packets to send here, then ring the shard's [`EgressSignal`](super::EgressSignal).
    pub outbound: rtrb::Producer<RtpPacket>,
    /// Session events.
    pub events: mpsc::Receiver<MediaEvent>,
}

impl LegQueues {
    /// Makes a leg with queues of `capacity` packets each and a 32-event channel, returning
    /// the session's half and the shard's half.
    pub fn new(capacity: usize, ssrc: u32, egress: EgressHandle) -> (Self, LegEnds) {
        let (in_tx, in_rx) = rtrb::RingBuffer::new(capacity);
        let (out_tx, out_rx) = rtrb::RingBuffer::new(capacity);
        let (ev_tx, ev_rx) = mpsc::channel(32);
        (
            Self {
                inbound: in_tx,
                outbound: out_rx,
                events: ev_tx,
                ssrc,
                egress,
            },
            LegEnds {
                inbound: in_rx,
                outbound: out_tx,
                events: ev_rx,
            },
        )
    }
}

/// The receive half of a session, moved into its reader task on the first remote track.
#[derive(Debug)]
pub(crate) struct Ingress {
    pub inbound: rtrb::Producer<RtpPacket>,
    pub events: mpsc::Sender<MediaEvent>,
    pub remote: SdpSummary,
    pub counters: Arc<Counters>,
    pub tap: Arc<WireTap>,
    pub dtmf: DtmfReceiver,
}

impl Ingress {
    /// Reads the remote track until it ends.
    pub(crate) async fn run(mut self, track: Arc<dyn TrackRemote>) {
        while let Some(ev) = track.poll().await {
            match ev {
                TrackRemoteEvent::OnRtpPacket(pkt) => self.handle(&pkt.header, &pkt.payload),
                TrackRemoteEvent::OnEnded => break,
                _ => {}
            }
        }
    }

    fn handle(&mut self, h: &rtc::rtp::header::Header, payload: &[u8]) {
        let c = &self.counters;
        Counters::add(&c.packets_in, 1);
        Counters::add(&c.bytes_in, payload.len() as u64);
        if h.payload_type == self.remote.opus_pt {
            let Ok(payload) = OpusPacket::from_slice(payload) else {
                Counters::add(&c.bad_payload_drops, 1);
                return;
            };
            let audio_level = self.remote.audio_level_id.and_then(|id| {
                let ext = h.get_extension(id)?;
                let b = *ext.first()?;
                Some(AudioLevel {
                    level: b & 0x7f,
                    voice: b & 0x80 != 0,
                })
            });
            let arrival = Instant::now();
            let packet = RtpPacket {
                meta: RtpMeta {
                    seq: h.sequence_number,
                    timestamp: h.timestamp,
                    ssrc: h.ssrc,
                    marker: h.marker,
                    audio_level,
                },
                payload,
                arrival,
            };
            if self.inbound.push(packet).is_err() {
                Counters::add(&c.inbound_full_drops, 1);
                return;
            }
            Counters::add(&c.packets_queued, 1);
            if let Some(t) = self.tap.take_arrival(h.sequence_number) {
                Counters::record(
                    &c.recv_to_queue,
                    Instant::now().saturating_duration_since(t),
                );
            }
        } else if Some(h.payload_type) == self.remote.telephone_event_pt {
            if let Some(p) = EventPayload::parse(payload) {
                c.log_telephone_event(ReceivedTelephoneEvent {
                    seq: h.sequence_number,
                    timestamp: h.timestamp,
                    marker: h.marker,
                    event: p.event,
                    end: p.end,
                    duration: p.duration,
                    arrival: Instant::now(),
                });
            }
            if let Some(ev) = self.dtmf.handle(h.timestamp, payload, 48_000) {
                Counters::add(&c.dtmf_events, 1);
                let _ = self.events.try_send(ev);
            }
        } else {
            Counters::add(&c.unknown_pt_drops, 1);
        }
    }
}
