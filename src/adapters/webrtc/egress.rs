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
//! in the same sequence-number space as the audio, paced by the room's ticks: one RFC 4733
//! packet per 20 ms tick, in place of the audio (see [`LegSink`]).

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

use super::dtmf::{DtmfDigit, DtmfSender};
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
/// starts at 0, so until the first DTMF the shard's numbers go out as they are. DTMF packets
/// take the numbers after the last packet sent; after an event the offset is set again so the
/// first audio packet follows the event's last packet: the stream stays contiguous for the
/// receiver across audio → event → audio.
///
/// Timestamps and pacing ([`DtmfSender`]): one DTMF packet interval per room tick (each
/// wake-up byte the room sent is one tick; [`EgressHandle::kick`] wake-ups are not ticks). An
/// event starts at the timestamp after the last audio packet sent and replaces the audio
/// while it lasts: audio packets the room queues meanwhile are not sent, nor afterwards those
/// whose timestamp falls before the event's end, so audio timestamps stay monotonic and never
/// overlap an event.
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
    /// The last sequence number sent (audio or DTMF).
    pub last_seq: Option<u16>,
    /// The last audio timestamp sent, or the last interval an event covered.
    pub last_ts: u32,
    /// True once an audio packet was sent (timestamps before that mean nothing).
    pub audio_sent: bool,
    /// After an event: the next audio packet sets `seq_offset` to follow `last_seq`.
    pub resync: bool,
    /// After an event: audio timestamped before this is not sent.
    pub resume_ts: Option<u32>,
    pub dtmf: DtmfSender,
}

/// Wake-up bytes taken as ticks in one pass at most: after a long stall the event catches up
/// by this many intervals at once, not more.
const MAX_TICKS_PER_PASS: u32 = 5;

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

    /// The sequence number for an audio packet, or `None` if a DTMF event replaces it.
    fn audio_seq(&self, seq: u16, timestamp: u32) -> Option<u16> {
        let mut s = self.lock();
        if self.telephone_event_pt.is_some() && s.dtmf.holds_audio() {
            return None;
        }
        if let Some(r) = s.resume_ts {
            // Held back only when just behind the event's end (at most one event's length):
            // anything else is a jump in the room's timeline, not audio the event covered.
            let behind = r.wrapping_sub(timestamp);
            if behind != 0 && behind <= u32::from(u16::MAX) {
                return None;
            }
            s.resume_ts = None;
        }
        if s.resync {
            s.resync = false;
            s.seq_offset = s
                .last_seq
                .map_or(0, |q| q.wrapping_add(1))
                .wrapping_sub(seq);
        }
        let out = seq.wrapping_add(s.seq_offset);
        s.last_seq = Some(out);
        s.last_ts = timestamp;
        s.audio_sent = true;
        Some(out)
    }

    /// Writes every packet queued for this leg (unless a DTMF event replaces it), then
    /// advances the DTMF event by `ticks` packet intervals.
    async fn drain(&self, outbound: &mut rtrb::Consumer<RtpPacket>, ticks: u32) {
        let live = self.connected.load(Ordering::Acquire) && !self.closed.load(Ordering::Acquire);
        while let Ok(p) = outbound.pop() {
            if !live || p.meta.ssrc != self.ssrc {
                Counters::add(&self.counters.outbound_drops, 1);
                continue;
            }
            let Some(seq) = self.audio_seq(p.meta.seq, p.meta.timestamp) else {
                continue;
            };
            let now = Instant::now();
            Counters::record(
                &self.counters.queue_to_write,
                now.saturating_duration_since(p.arrival),
            );
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
            for _ in 0..ticks.min(MAX_TICKS_PER_PASS) {
                self.send_dtmf().await;
            }
        }
    }

    /// One packet interval of DTMF (RFC 4733 §2.5): the next packet of the event in
    /// progress, or the first of the next queued event, or nothing (see [`DtmfSender`]).
    async fn send_dtmf(&self) {
        let Some(pt) = self.telephone_event_pt else {
            self.lock().dtmf.clear_queue();
            return;
        };
        let (step, first_seq) = {
            let mut s = self.lock();
            let next_ts = s.last_ts.wrapping_add(960);
            let Some(step) = s.dtmf.tick(next_ts) else {
                return;
            };
            let first = s.last_seq.map_or(0, |q| q.wrapping_add(1));
            s.last_seq = Some(first.wrapping_add(u16::from(step.repeat) - 1));
            if let Some(end) = step.end_timestamp() {
                // A next event (with no audio between) starts where this one ended.
                s.last_ts = end.wrapping_sub(960);
                s.resync = true;
                if s.audio_sent {
                    s.resume_ts = Some(end);
                }
            }
            (step, first)
        };
        let bytes = Bytes::copy_from_slice(&step.payload.to_bytes());
        for i in 0..u16::from(step.repeat) {
            let pkt = rtc::rtp::packet::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: step.marker && i == 0,
                    payload_type: pt,
                    sequence_number: first_seq.wrapping_add(i),
                    timestamp: step.timestamp,
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload: bytes.clone(),
            };
            self.write(pkt).await;
        }
        if step.end_timestamp().is_some() {
            Counters::add(&self.counters.dtmf_sent, 1);
        }
    }

    pub(crate) fn queue_dtmf(&self, digit: DtmfDigit, duration: Duration) {
        self.lock().dtmf.push(digit, duration);
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
        // Wake-up bytes read in this pass: one per room tick, the DTMF pacing clock.
        let mut ticks = 0u32;
        tokio::select! {
            r = rx.readable() => {
                if r.is_err() {
                    break;
                }
                loop {
                    match rx.try_recv(&mut buf) {
                        Ok(n) => ticks = ticks.saturating_add(n as u32),
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
            leg.sink.drain(&mut leg.outbound, ticks).await;
        }
        legs.retain(|l| !l.sink.closed.load(Ordering::Acquire));
        if !handles_alive && legs.is_empty() {
            break;
        }
    }
}
