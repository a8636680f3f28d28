//! A wire tap on each session's UDP sockets: a webrtc-rs [`Runtime`] that is tokio in every
//! respect except that the sockets it wraps report what crosses them.
//!
//! webrtc-rs 0.21 neither counts SRTP authentication failures nor tells when a packet
//! given to `write_rtp` reached the socket. The tap sees every datagram, classifies it by its
//! first byte (RFC 7983: STUN 0–3, DTLS 20–63, RTP/RTCP 128–191) and reads the plaintext RTP
//! header of SRTP packets (RFC 3711 leaves it unencrypted), so it can:
//! - count datagrams in, junk datagrams and SRTP datagrams (the stats compare the last with
//!   the RTP packets that came out of SRTP to count rejections);
//! - stamp each received SRTP packet's sequence number with its read time, so the reader task
//!   measures socket → inbound queue;
//! - match each sent SRTP packet's sequence number with the time the egress called
//!   `write_rtp`, so it measures `write_rtp` → kernel.
//!
//! Both time tables are 64-slot rings of packed `(seq, nanoseconds)` atomics: constant size,
//! no locks, no allocation per packet.
//!
//! It also turns UDP GRO off on each socket. webrtc-rs sizes its receive buffers for the
//! socket's GRO capacity — two 96 KB buffers (64 × 1500 bytes) per peer connection, the
//! largest part of a call's transport memory — and coalescing never pays at one audio
//! packet per 20 ms. With GRO off the kernel returns one datagram per read, and the
//! buffers are 2,000 bytes.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

use tokio::runtime::Handle;

use super::media_thread::MediaTask;
use super::stats::Counters;

/// The per-session tap state shared by the sockets, the reader task and the egress.
#[derive(Debug)]
pub(crate) struct WireTap {
    base: Instant,
    counters: Arc<Counters>,
    /// `write_rtp` call times by sequence number.
    sent: [AtomicU64; RING],
    /// Socket read times by sequence number.
    received: [AtomicU64; RING],
}

impl WireTap {
    pub(crate) fn new(counters: Arc<Counters>) -> Self {
        Self {
            base: Instant::now(),
            counters,
            sent: std::array::from_fn(|_| AtomicU64::new(0)),
            received: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The egress is about to call `write_rtp` for `seq` at `now`.
    pub(crate) fn mark_write(&self, seq: u16, now: Instant) {
        self.sent[usize::from(seq) % RING].store(self.pack(seq, now), Relaxed);
    }

    /// When the datagram carrying `seq` was read from the socket, if the tap saw it.
    pub(crate) fn take_arrival(&self, seq: u16) -> Option<Instant> {
        let v = self.received[usize::from(seq) % RING].swap(0, Relaxed);
        self.unpack(seq, v)
    }

    fn on_sent(&self, datagram: &[u8], now: Instant) {
        if let Some(seq) = srtp_seq(datagram) {
            let v = self.sent[usize::from(seq) % RING].swap(0, Relaxed);
            if let Some(t) = self.unpack(seq, v) {
                Counters::record(
                    &self.counters.write_to_wire,
                    now.saturating_duration_since(t),
                );
            }
        }
    }

    fn on_received(&self, datagram: &[u8], now: Instant) {
        Counters::add(&self.counters.datagrams_in, 1);
        match datagram.first() {
            Some(0..=3 | 20..=63) => {}
            Some(128..=191) => {
                if let Some(seq) = srtp_seq(datagram) {
                    Counters::add(&self.counters.srtp_datagrams_in, 1);
                    self.received[usize::from(seq) % RING].store(self.pack(seq, now), Relaxed);
                }
            }
            _ => Counters::add(&self.counters.junk_datagrams_in, 1),
        }
    }

    fn pack(&self, seq: u16, t: Instant) -> u64 {
        let ns = t.saturating_duration_since(self.base).as_nanos() as u64 & NS_MASK;
        (u64::from(seq) << 48) | ns.max(1)
    }

    fn unpack(&self, seq: u16, v: u64) -> Option<Instant> {
        (v != 0 && (v >> 48) as u16 == seq).then(|| self.base + Duration::from_nanos(v & NS_MASK))
    }
}

/// The sequence number of an SRTP (not SRTCP) datagram.
fn srtp_seq(d: &[u8]) -> Option<u16> {
    if d.len() < 12 || !(128..=191).contains(&d[0]) || (64..=95).contains(&(d[1] & 0x7f)) {
        return None;
    }
    Some(u16::from_be_bytes([d[2], d[3]]))
}

/// Tokio, with tapped UDP sockets, and the peer-connection driver (webrtc-rs's
/// `spawn_reactor`) on the session's media thread ([`super::media_thread`]).
#[derive(Debug)]
pub(crate) struct TapRuntime {
    inner: TokioRuntime,
    tap: Arc<WireTap>,
    /// The session's media thread: its peer-connection driver runs there.
    media: Option<Handle>,
}

impl TapRuntime {
    pub(crate) fn new(tap: Arc<WireTap>, media: Option<Handle>) -> Self {
        Self {
            inner: TokioRuntime,
            tap,
            media,
        }
    }
}

impl Runtime for TapRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        match &self.media {
            Some(rt) => Box::new(MediaTask::spawn(rt, future)),
            None => self.inner.spawn_reactor(reactor_pool_size, future),
        }
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        use std::os::fd::AsRawFd;
        let fd = socket.as_raw_fd();
        // The tokio runtime (quinn-udp) turns GRO on while wrapping: turn it off afterwards.
        let inner = self.inner.wrap_udp_socket(socket)?;
        let gro_segments = if disable_gro(fd) {
            1
        } else {
            inner.max_gro_segments()
        };
        Ok(Arc::new(TapSocket {
            inner,
            tap: self.tap.clone(),
            gro_segments,
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio+tap"
    }
}

#[derive(Debug)]
struct TapSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    tap: Arc<WireTap>,
    /// What the socket may coalesce per read: 1 once GRO is off.
    gro_segments: usize,
}

impl AsyncUdpSocket for TapSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let r = self.inner.poll_send(cx, transmit);
        if let Poll::Ready(Ok(_)) = r {
            let now = Instant::now();
            match transmit.segment_size {
                Some(s) if s > 0 => {
                    for d in transmit.contents.chunks(s) {
                        self.tap.on_sent(d, now);
                    }
                }
                _ => self.tap.on_sent(transmit.contents, now),
            }
        }
        r
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let r = self.inner.poll_recv(cx, bufs, meta);
        if let Poll::Ready(Ok(n)) = r {
            let now = Instant::now();
            for (buf, m) in bufs.iter().zip(meta.iter()).take(n) {
                let len = m.len.min(buf.len());
                let stride = m.stride.max(1);
                for d in buf[..len].chunks(stride) {
                    self.tap.on_received(d, now);
                }
            }
        }
        r
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.gro_segments
    }
}

/// Turns UDP generic receive offload off on `fd` (Linux `UDP_GRO`); true when the socket
/// now returns one datagram per read. Elsewhere GRO does not exist: true.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn disable_gro(fd: std::os::fd::RawFd) -> bool {
    let off: libc::c_int = 0;
    // SAFETY: `fd` is an open UDP socket owned by the wrapped socket we hold; the option
    // value is a live `c_int` whose size is passed alongside; setsockopt does not keep it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&raw const off).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn disable_gro(_fd: std::os::fd::RawFd) -> bool {
    true
}

const RING: usize = 64;
const NS_MASK: u64 = (1 << 48) - 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_and_times_datagrams() {
        let c = Arc::new(Counters::default());
        let tap = WireTap::new(c.clone());
        let t0 = Instant::now();
        let rtp = [0x80, 111, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 1, 0xaa];
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        tap.on_received(&rtp, t0);
        tap.on_received(&rtcp, t0);
        tap.on_received(&[0x00, 0x01, 0, 0], t0); // STUN
        tap.on_received(&[0xff; 20], t0); // junk
        assert_eq!(c.datagrams_in.load(Relaxed), 4);
        assert_eq!(c.srtp_datagrams_in.load(Relaxed), 1);
        assert_eq!(c.junk_datagrams_in.load(Relaxed), 1);
        assert!(tap.take_arrival(0x1234).is_some());
        assert!(tap.take_arrival(0x1234).is_none(), "taken once");
        assert!(tap.take_arrival(0x1235).is_none());

        tap.mark_write(0x1234, t0);
        tap.on_sent(&rtp, t0 + Duration::from_micros(300));
        let h = c.write_to_wire.lock().unwrap();
        assert_eq!(h.count(), 1);
        assert!(h.max() >= Duration::from_micros(290));
    }
}
