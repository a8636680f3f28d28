//! Media threads: where each WebRTC session's per-packet work runs, off the application's
//! tokio runtime.
//!
//! # Why
//!
//! A packet the shard queued goes through three async steps before it is on the wire: the
//! egress task wakes on the shard's ring and calls `write_rtp`, webrtc-rs's peer-connection
//! driver takes it from a channel (interceptors, SRTP) and calls `sendmsg`. Inbound, the
//! driver decrypts and the session's reader task pushes the packet into the shard's queue.
//! On the shared multi-thread runtime each step waited behind signaling, supervisor and
//! other sessions' tasks, and each hop between tasks on different workers was an OS wake-up;
//! on a loaded machine those waits were the whole of the host-added latency (tens of ms at
//! p99, see the load section of the README).
//!
//! # How
//!
//! A process-wide pool of [`MEDIA_THREADS`]-per-core dedicated threads, each running a
//! current-thread tokio runtime and nothing else, started with the first
//! [`MediaTransport`](super::MediaTransport) and kept for the life of the process. A session is pinned
//! to one of them (round-robin when its [`Egress`](super::Egress) is spawned) and its egress
//! task, its peer-connection driver (webrtc-rs's `Runtime::spawn_reactor`, see
//! [`TapRuntime`](super::wire)) and its reader task all run there, so a packet crosses one OS
//! thread boundary each way (shard ↔ media thread) and the hops between the three tasks are
//! same-thread wake-ups.
//!
//! Each media thread asks for `SCHED_FIFO` at [`MEDIA_RT_PRIORITY`], one above the shards'
//! default, so that when rung it preempts a shard in the middle of a long tick instead of
//! waiting for it (its work per packet is a few microseconds; the shard has most of its
//! 20 ms period spare). When the OS refuses (no `CAP_SYS_NICE`, `RLIMIT_RTPRIO` 0) the
//! threads run at normal priority and the refusal is logged once.
//!
//! A load generator in the same process (the emulator's media processor, for `mediabot
//! load`) gets its own pool of *background* media threads one below the shards
//! ([`BACKGROUND_RT_PRIORITY`]): its packet work then never interrupts the host's ticks, and
//! its wake-ups batch behind the shards instead of each preempting one.
//!
//! # Cost and risks (measured with `mediabot load`, README)
//!
//! - Each host room's ring wakes a media thread at once, preempting the shard (no batching),
//!   so the host's media work lands inside the ticks: at 70 in-process calls on 2 cores the
//!   bot's tick p99 is ≈ 8.7–9.4 ms against 8.4–8.7 ms with these tasks on the shared runtime,
//!   while frame ready → wire p99 fell from 14 ms (quiet machine) to 1.1 s (busy) down to
//!   ≈ 0.4 ms. The process uses 5–9 points more of the machine's CPU at 70 calls (78 % against
//!   69–73 %), most likely for these un-batched real-time wake-ups; one egress per shard, rung
//!   once every few rooms, would cut them. With the emulator's sessions on the host's threads too
//!   the ticks grew to 11 ms p99 and the process used ≈ 7 points more CPU.
//! - Connection setup (ICE, DTLS handshakes) runs here too, above the shards: a burst of
//!   connecting calls can delay ticks (one 30-call run saw 2 deadline misses before the
//!   emulator had its own threads; another a 19.7 ms tick, without a miss).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;

use crate::adapters::shard::priority::request_realtime;

/// Media threads per core.
pub(crate) const MEDIA_THREADS: usize = 1;

/// `SCHED_FIFO` priority of the media threads: one above the shards' default (10).
pub(crate) const MEDIA_RT_PRIORITY: i32 = 11;

/// `SCHED_FIFO` priority of the background media threads (a load generator's sessions): one
/// below the shards, so their packet work never interrupts a tick.
pub(crate) const BACKGROUND_RT_PRIORITY: i32 = 9;

/// Which pool a session's media thread comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaClass {
    /// The host's own sessions: above the shards ([`MEDIA_RT_PRIORITY`]).
    Host,
    /// Sessions of a load generator or test peer in the same process (the emulator): below
    /// the shards ([`BACKGROUND_RT_PRIORITY`]), in their own threads.
    Background,
}

struct Pool {
    threads: Vec<Handle>,
    next: AtomicUsize,
}

/// Starts the host media threads (once per process; later calls do nothing).
pub(crate) fn start() {
    pool(MediaClass::Host);
}

/// The media thread of `class` the next session is pinned to, or `None` when no thread could
/// be started (the session's tasks then run on the caller's runtime).
pub(crate) fn pick(class: MediaClass) -> Option<Handle> {
    let pool = pool(class);
    if pool.threads.is_empty() {
        return None;
    }
    let i = pool.next.fetch_add(1, Ordering::Relaxed) % pool.threads.len();
    Some(pool.threads[i].clone())
}

fn pool(class: MediaClass) -> &'static Pool {
    static HOST: OnceLock<Pool> = OnceLock::new();
    static BACKGROUND: OnceLock<Pool> = OnceLock::new();
    let (cell, name, priority) = match class {
        MediaClass::Host => (&HOST, "mediabot-media", MEDIA_RT_PRIORITY),
        MediaClass::Background => (&BACKGROUND, "mediabot-bgmed", BACKGROUND_RT_PRIORITY),
    };
    cell.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get()) * MEDIA_THREADS;
        Pool {
            threads: (0..n)
                .filter_map(|i| start_thread(name, i, priority))
                .collect(),
            next: AtomicUsize::new(0),
        }
    })
}

/// Starts media thread `i` of a pool; `None` if the runtime or the thread could not be
/// created.
fn start_thread(name: &str, i: usize, priority: i32) -> Option<Handle> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name(format!("{name}{i}"))
        .spawn(move || {
            request_realtime("media thread", priority);
            // Parked here for the life of the process, driving whatever is spawned on it.
            rt.block_on(std::future::pending::<()>());
        })
        .ok()?;
    Some(handle)
}

/// A task on a media thread, as webrtc-rs's [`Runtime`](webrtc::runtime::Runtime) hands it
/// back. Dropping it detaches the task (tokio's behaviour, which is the trait's contract).
pub(crate) struct MediaTask(tokio::task::JoinHandle<()>);

impl MediaTask {
    /// Spawns `future` on `rt`.
    pub(crate) fn spawn(rt: &Handle, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Self {
        Self(rt.spawn(future))
    }
}

impl webrtc::runtime::JoinHandle for MediaTask {
    fn detach(&self) {}

    fn abort(&self) {
        self.0.abort();
    }

    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}
