//! Asking the OS for real-time scheduling (SCHED_FIFO) for the calling thread: shard threads
//! and the WebRTC media threads ([`crate::adapters::webrtc`]).
//!
//! Linux grants SCHED_FIFO to processes with `CAP_SYS_NICE` or a non-zero `RLIMIT_RTPRIO`
//! (`ulimit -r`, or `LimitRTPRIO=` in a systemd unit). Refusal is normal on desktops and in
//! containers: the shard then runs at normal priority, and the refusal is logged once per
//! process.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};

/// Requests SCHED_FIFO at `priority` (1–99) for the calling thread (a `role` such as
/// "shard thread", for the log); returns whether the OS granted it. A refusal is logged (once
/// per process) with the reason.
pub(crate) fn request_realtime(role: &str, priority: i32) -> bool {
    match set_fifo(priority) {
        Ok(()) => {
            tracing::debug!(priority, "{role} runs with SCHED_FIFO");
            true
        }
        Err(error) => {
            static LOGGED: AtomicBool = AtomicBool::new(false);
            if !LOGGED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    priority,
                    %error,
                    "real-time priority refused; shards and media threads run at normal \
                     priority (grant CAP_SYS_NICE or raise RLIMIT_RTPRIO to enable it)"
                );
            }
            false
        }
    }
}

#[cfg(target_os = "linux")]
fn set_fifo(priority: i32) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `pthread_self()` always names the calling, live thread, and `param` is a valid,
    // initialised `sched_param` that outlives the call, which only reads it.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

#[cfg(not(target_os = "linux"))]
fn set_fifo(_priority: i32) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "SCHED_FIFO is only requested on Linux",
    ))
}
