//! Per-session counters and latency histograms, and the snapshot handed to the owner.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::media::histogram::Histogram;

use super::dtmf::{RECEIVED_LOG, ReceivedTelephoneEvent};
use super::event::FailureReason;

/// A snapshot of one media session's transport counters.
///
/// Inbound counts are RTP packets that came out of SRTP; `srtp_rejected` counts datagrams
/// that went in but did not (see [`TransportStats::srtp_rejected`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// RTP packets received (any payload type), after SRTP.
    pub packets_in: u64,
    /// RTP payload bytes received.
    pub bytes_in: u64,
    /// Opus packets pushed into the inbound queue.
    pub packets_queued: u64,
    /// Opus packets dropped because the inbound queue was full.
    pub inbound_full_drops: u64,
    /// Opus packets dropped because the payload was empty or longer than 1275 bytes.
    pub bad_payload_drops: u64,
    /// RTP packets dropped because the payload type was neither Opus nor telephone-event.
    pub unknown_pt_drops: u64,
    /// RTP packets written to the wire.
    pub packets_out: u64,
    /// RTP payload bytes written.
    pub bytes_out: u64,
    /// Outbound packets dropped: SSRC not the leg's, or webrtc-rs refused the write.
    pub outbound_drops: u64,
    /// DTMF events reported (start and end each count one).
    pub dtmf_events: u64,
    /// DTMF events sent with [`MediaSession::send_dtmf`](super::MediaSession::send_dtmf).
    pub dtmf_sent: u64,
    /// UDP datagrams received on the session's sockets (everything: STUN, DTLS, SRTP, junk).
    pub datagrams_in: u64,
    /// Received datagrams that are none of STUN, DTLS, SRTP/SRTCP (RFC 7983 first byte);
    /// webrtc-rs drops them.
    pub junk_datagrams_in: u64,
    /// SRTP (not SRTCP) datagrams received.
    pub srtp_datagrams_in: u64,
    /// SRTP datagrams received that never came out of the SRTP layer as RTP: authentication
    /// failures, replays, packets for unknown SSRCs or before DTLS completed. webrtc-rs 0.21
    /// only logs these, so this is `srtp_datagrams_in - packets_in` (saturating) and can lag
    /// by the packets in flight inside webrtc-rs at the moment of the snapshot.
    pub srtp_rejected: u64,
    /// Time from creation to `Connected` (ICE + DTLS), if it connected.
    pub connect_time: Option<Duration>,
    /// Why the session failed, if it did.
    pub failure: Option<FailureReason>,
    /// Host-added receive latency: datagram read from the socket → packet pushed into the
    /// inbound queue (SRTP decrypt, interceptors, webrtc-rs channels, our conversion).
    pub recv_to_queue: Histogram,
    /// Host-added send latency, first half: the shard produced the packet (its `arrival`
    /// field) → `write_rtp` called by the egress task (queue wait + wake-up).
    pub queue_to_write: Histogram,
    /// Host-added send latency, second half: `write_rtp` called → datagram handed to the
    /// kernel (webrtc-rs channel, interceptors, SRTP encrypt, `sendmsg`).
    pub write_to_wire: Histogram,
}

/// p50/p99/max of one histogram, for printing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Maximum.
    pub max: Duration,
}

impl LatencySummary {
    /// Summarises `h`.
    pub fn of(h: &Histogram) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.count(),
            p50: h.p50(),
            p99: h.p99(),
            max: h.max(),
        }
    }
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50={:.3}ms p99={:.3}ms max={:.3}ms",
            self.count,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3
        )
    }
}

/// The live counters of one session, shared by its tasks (atomics; histograms behind a
/// mutex that is only taken on tokio tasks, never on a shard thread).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub packets_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub packets_queued: AtomicU64,
    pub inbound_full_drops: AtomicU64,
    pub bad_payload_drops: AtomicU64,
    pub unknown_pt_drops: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub outbound_drops: AtomicU64,
    pub dtmf_events: AtomicU64,
    pub dtmf_sent: AtomicU64,
    pub datagrams_in: AtomicU64,
    pub junk_datagrams_in: AtomicU64,
    pub srtp_datagrams_in: AtomicU64,
    pub connect_time_us: AtomicU64,
    /// 0 = none, else `FailureReason` index + 1.
    pub failure: AtomicU64,
    pub recv_to_queue: Mutex<Histogram>,
    pub queue_to_write: Mutex<Histogram>,
    pub write_to_wire: Mutex<Histogram>,
    /// The latest received telephone-event packets (at most [`RECEIVED_LOG`]).
    pub telephone_events: Mutex<VecDeque<ReceivedTelephoneEvent>>,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub(crate) fn record(h: &Mutex<Histogram>, d: Duration) {
        // A poisoned lock only means another task panicked mid-record; the counts are
        // still usable.
        h.lock().unwrap_or_else(|e| e.into_inner()).record(d);
    }

    /// Remembers one received telephone-event packet, forgetting the oldest beyond
    /// [`RECEIVED_LOG`].
    pub(crate) fn log_telephone_event(&self, e: ReceivedTelephoneEvent) {
        let mut log = self
            .telephone_events
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if log.len() >= RECEIVED_LOG {
            log.pop_front();
        }
        log.push_back(e);
    }

    /// The remembered telephone-event packets, oldest first.
    pub(crate) fn telephone_events(&self) -> Vec<ReceivedTelephoneEvent> {
        let log = self
            .telephone_events
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        log.iter().copied().collect()
    }

    pub(crate) fn set_failure(&self, r: FailureReason) -> bool {
        let v = match r {
            FailureReason::ConnectTimeout => 1,
            FailureReason::IceFailed => 2,
            FailureReason::DtlsFailed => 3,
        };
        self.failure
            .compare_exchange(0, v, Relaxed, Relaxed)
            .is_ok()
    }

    pub(crate) fn snapshot(&self) -> TransportStats {
        let g = |c: &AtomicU64| c.load(Relaxed);
        let h = |m: &Mutex<Histogram>| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let packets_in = g(&self.packets_in);
        let srtp_in = g(&self.srtp_datagrams_in);
        let connect = g(&self.connect_time_us);
        TransportStats {
            packets_in,
            bytes_in: g(&self.bytes_in),
            packets_queued: g(&self.packets_queued),
            inbound_full_drops: g(&self.inbound_full_drops),
            bad_payload_drops: g(&self.bad_payload_drops),
            unknown_pt_drops: g(&self.unknown_pt_drops),
            packets_out: g(&self.packets_out),
            bytes_out: g(&self.bytes_out),
            outbound_drops: g(&self.outbound_drops),
            dtmf_events: g(&self.dtmf_events),
            dtmf_sent: g(&self.dtmf_sent),
            datagrams_in: g(&self.datagrams_in),
            junk_datagrams_in: g(&self.junk_datagrams_in),
            srtp_datagrams_in: srtp_in,
            srtp_rejected: srtp_in.saturating_sub(packets_in),
            connect_time: (connect != 0).then(|| Duration::from_micros(connect)),
            failure: match g(&self.failure) {
                1 => Some(FailureReason::ConnectTimeout),
                2 => Some(FailureReason::IceFailed),
                3 => Some(FailureReason::DtlsFailed),
                _ => None,
            },
            recv_to_queue: h(&self.recv_to_queue),
            queue_to_write: h(&self.queue_to_write),
            write_to_wire: h(&self.write_to_wire),
        }
    }
}
