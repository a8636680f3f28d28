//! Egress: how packets the shard put in the outbound queues get onto the wire promptly.
//!
//! # Design
//!
//! The shard thread is real-time: it may not lock, block, allocate or await, so it cannot call
//! webrtc-rs (`write_rtp` is async and locks). Each call's room, right after its tick pushed
//! the call's packet into the leg's outbound queue, calls [`EgressSignal::notify`]: one
//! non-blocking `send(2)` of one byte on a Unix datagram socket pair (no allocation, no lock;
//! a full socket buffer just means a wake-up is already pending). The call's [`Egress`] task
//! waits for that socket to become readable (tokio's reactor, epoll), drains the wake-up
//! bytes, then drains its legs' outbound queues and writes each packet with `write_rtp`.
//!
//! The task runs on the session's media thread ([`super::media_thread`]): a dedicated
//! current-thread runtime at real-time priority that also runs the session's peer-connection
//! driver (which takes the packet from `write_rtp`'s channel, runs the interceptors and SRTP
//! and calls `sendmsg`) and its reader. So a packet crosses one OS thread boundary (shard →
//! media thread), the wake-up preempts whatever normal-priority work the machine is doing,
//! and the egress → driver hop is a same-thread task wake-up.
//!
//! Why this and not the alternatives:
//! - a tokio `Notify`/channel from the shard would take a lock inside tokio and may allocate
//!   (waker lists); an eventfd would need `unsafe` (the crate denies it) or a new dependency;
//! - polling the queues on a timer adds up to a timer period of latency and burns CPU per
//!   idle call; with a wake-up per room the packet leaves as soon as that room is done, not
//!   after the rest of the shard's rooms (measured in
//!   [`TransportStats::queue_to_write`](super::TransportStats));
//! - on the application's multi-thread runtime (as before), the wake-up, the egress task and
//!   the driver each waited behind signaling and other sessions' tasks and behind every
//!   normal-priority process on the machine: p99 frame ready → wire was 15–160 ms at 70 calls
//!   on a loaded 2-core VM, against ≈ 0.5 ms on the media threads (README, load section).
//!
//! The egress also writes DTMF for [`MediaSession::send_dtmf`](super::MediaSession::send_dtmf),
//! in the same sequence-number space as the audio (see [`LegSink`]).

use std::collections::VecDeque;
use std::io;
use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UnixDatagram;
use tokio::runtime::Handle;
use tokio::sync::{Notify, mpsc};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use crate::media::packet::RtpPacket;

use super::dtmf::{DtmfDigit, EventPayload};
use super::media_thread::{self, MediaClass};
use super::stats::Counters;
use super::wire::WireTap;

/// The shard thread's end: the room rings it right after pushing its tick's packet.
///
/// # Realtime Safety
/// [`notify`](Self::notify) is one non-blocking `send(2)` of one byte: no allocation, no lock,
/// never blocks.
#[derive(Debug)]
pub struct EgressSignal {
    tx: StdUnixDatagram,
}

impl EgressSignal {
    /// Tells the egress task that packets are in the outbound queue. Never
    /// blocks; if the socket buffer is full a wake-up is already pending, so nothing is lost.
    pub fn notify(&self) {
        let _ = self.tx.send(&[1]);
    }
}

/// A handle on one egress task, used to attach legs (cheap to clone).
#[derive(Clone, Debug)]
pub struct EgressHandle {
    legs: mpsc::UnboundedSender<EgressLeg>,
    kick: Arc<Notify>,
    /// The media thread the egress task runs on (`None`: the spawning runtime); the
    /// session's driver and reader are pinned to it too.
    runtime: Option<Handle>,
}

/// Starts egress tasks.
#[derive(Debug)]
pub struct Egress;

impl Egress {
    /// Spawns one egress task on the next media thread (on the current tokio runtime if no
    /// media thread could be started) and returns the signal for the room and a handle for
    /// attaching legs; the session built with that handle runs on the same media thread. The task ends when every [`EgressHandle`] clone has been
    /// dropped and every attached leg has closed.
    ///
    /// # Errors
    /// The socket pair could not be created or registered with tokio.
    pub fn spawn() -> io::Result<(EgressSignal, EgressHandle)> {
        Self::spawn_in(MediaClass::Host)
    }

    /// Like [`spawn`](Self::spawn), for a session of a load generator in the same process as
    /// a host (the emulator's media processor): its egress, driver and reader run on separate
    /// media threads *below* the shards' priority, so the generator's packet work never
    /// interrupts the host's ticks nor competes with the host's media threads.
    ///
    /// # Errors
    /// The socket pair could not be created or registered with tokio.
    pub fn spawn_background() -> io::Result<(EgressSignal, EgressHandle)> {
        Self::spawn_in(MediaClass::Background)
    }

    fn spawn_in(class: MediaClass) -> io::Result<(EgressSignal, EgressHandle)> {
        let (tx, rx) = StdUnixDatagram::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        let (legs_tx, legs_rx) = mpsc::unbounded_channel();
        let kick = Arc::new(Notify::new());
        let runtime = media_thread::pick(class);
        match &runtime {
            Some(rt) => {
                // Registered with the media thread's reactor, so its wake-ups are read there.
                let _entered = rt.enter();
                let rx = UnixDatagram::from_std(rx)?;
                rt.spawn(run(rx, legs_rx, kick.clone()));
            }
            None => {
                let rx = UnixDatagram::from_std(rx)?;
                tokio::spawn(run(rx, legs_rx, kick.clone()));
            }
        }
        Ok((
            EgressSignal { tx },
            EgressHandle {
                legs: legs_tx,
                kick,
                runtime,
            },
        ))
    }
}

impl EgressHandle {
    pub(crate) fn attach(&self, leg: EgressLeg) {
        // If the task is gone the leg is dropped with it; the session reports its own end.
        let _ = self.legs.send(leg);
        self.kick.notify_one();
    }

    pub(crate) fn kick(&self) {
        self.kick.notify_one();
    }

    /// The media thread this egress runs on, where the session's other tasks belong.
    pub(crate) fn runtime(&self) -> Option<&Handle> {
        self.runtime.as_ref()
    }
}

/// One leg as the egress task holds it.
#[derive(Debug)]
pub(crate) struct EgressLeg {
    pub outbound: rtrb::Consumer<RtpPacket>,
    pub sink: Arc<LegSink>,
}

/// The send side of one session, shared by the session (state, DTMF requests) and the egress
/// task (writes).
///
/// Sequence numbers: audio goes out with the shard's sequence number plus an offset that
/// starts at 0 and grows by the number of DTMF packets inserted, so the stream stays
/// contiguous for the receiver. Until the first DTMF is sent the shard's numbers go out as
/// they are.
pub(crate) struct LegSink {
    pub track: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    pub opus_pt: u8,
    pub telephone_event_pt: Option<u8>,
    pub connected: AtomicBool,
    pub closed: AtomicBool,
    pub counters: Arc<Counters>,
    pub tap: Arc<WireTap>,
    pub send: Mutex<SendState>,
}

impl std::fmt::Debug for LegSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegSink")
            .field("ssrc", &self.ssrc)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub(crate) struct SendState {
    pub seq_offset: u16,
    pub last_seq: Option<u16>,
    pub last_ts: u32,
    pub dtmf: VecDeque<(DtmfDigit, Duration)>,
}

impl LegSink {
    fn lock(&self) -> std::sync::MutexGuard<'_, SendState> {
        // Only tokio tasks take this lock and none panics while holding it.
        self.send.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn write(&self, pkt: rtc::rtp::packet::Packet) -> bool {
        let seq = pkt.header.sequence_number;
        let len = pkt.payload.len() as u64;
        self.tap.mark_write(seq, Instant::now());
        match self.track.write_rtp(pkt).await {
            Ok(()) => {
                Counters::add(&self.counters.packets_out, 1);
                Counters::add(&self.counters.bytes_out, len);
                true
            }
            Err(_) => {
                Counters::add(&self.counters.outbound_drops, 1);
                false
            }
        }
    }

    /// Writes every packet queued for this leg, then any pending DTMF.
    async fn drain(&self, outbound: &mut rtrb::Consumer<RtpPacket>) {
        let live = self.connected.load(Ordering::Acquire) && !self.closed.load(Ordering::Acquire);
        while let Ok(p) = outbound.pop() {
            if !live || p.meta.ssrc != self.ssrc {
                Counters::add(&self.counters.outbound_drops, 1);
                continue;
            }
            let now = Instant::now();
            Counters::record(
                &self.counters.queue_to_write,
                now.saturating_duration_since(p.arrival),
            );
            let seq = {
                let mut s = self.lock();
                let seq = p.meta.seq.wrapping_add(s.seq_offset);
                s.last_seq = Some(seq);
                s.last_ts = p.meta.timestamp;
                seq
            };
            let pkt = rtc::rtp::packet::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: p.meta.marker,
                    payload_type: self.opus_pt,
                    sequence_number: seq,
                    timestamp: p.meta.timestamp,
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload: Bytes::copy_from_slice(p.payload.as_slice()),
            };
            self.write(pkt).await;
        }
        if live {
            self.send_dtmf().await;
        }
    }

    /// Writes each pending DTMF event as one burst: a start packet (marker set) and three
    /// end packets carrying the full duration (RFC 4733 §2.5.1.4 redundancy). Not paced.
    async fn send_dtmf(&self) {
        let Some(pt) = self.telephone_event_pt else {
            self.lock().dtmf.clear();
            return;
        };
        loop {
            let (packets, _) = {
                let mut s = self.lock();
                let Some((digit, duration)) = s.dtmf.pop_front() else {
                    return;
                };
                let ticks = (duration.as_micros() * 48 / 1000).min(u128::from(u16::MAX)) as u16;
                let first = s.last_seq.map_or(0, |q| q.wrapping_add(1));
                let ts = s.last_ts.wrapping_add(960);
                let mk = |i: u16, end: bool, dur: u16| rtc::rtp::packet::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        marker: i == 0,
                        payload_type: pt,
                        sequence_number: first.wrapping_add(i),
                        timestamp: ts,
                        ssrc: self.ssrc,
                        ..Default::default()
                    },
                    payload: Bytes::copy_from_slice(
                        &EventPayload {
                            event: digit.event(),
                            end,
                            volume: 10,
                            duration: dur,
                        }
                        .to_bytes(),
                    ),
                };
                let packets = [
                    mk(0, false, 0),
                    mk(1, true, ticks),
                    mk(2, true, ticks),
                    mk(3, true, ticks),
                ];
                s.seq_offset = s.seq_offset.wrapping_add(4);
                s.last_seq = Some(first.wrapping_add(3));
                // The next event (or audio the shard has not caught up with) starts later.
                s.last_ts = ts.wrapping_add(u32::from(ticks));
                (packets, ())
            };
            for p in packets {
                self.write(p).await;
            }
            Counters::add(&self.counters.dtmf_sent, 1);
        }
    }

    pub(crate) fn queue_dtmf(&self, digit: DtmfDigit, duration: Duration) {
        self.lock().dtmf.push_back((digit, duration));
    }
}

async fn run(
    rx: UnixDatagram,
    mut new_legs: mpsc::UnboundedReceiver<EgressLeg>,
    kick: Arc<Notify>,
) {
    let mut legs: Vec<EgressLeg> = Vec::new();
    let mut buf = [0u8; 64];
    let mut handles_alive = true;
    loop {
        tokio::select! {
            r = rx.readable() => {
                if r.is_err() {
                    break;
                }
                loop {
                    match rx.try_recv(&mut buf) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
            }
            leg = new_legs.recv(), if handles_alive => match leg {
                Some(leg) => legs.push(leg),
                None => handles_alive = false,
            },
            () = kick.notified() => {}
        }
        while let Ok(leg) = new_legs.try_recv() {
            legs.push(leg);
        }
        for leg in &mut legs {
            leg.sink.drain(&mut leg.outbound).await;
        }
        legs.retain(|l| !l.sink.closed.load(Ordering::Acquire));
        if !handles_alive && legs.is_empty() {
            break;
        }
    }
}
