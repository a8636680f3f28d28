//! Giving the heap that ended calls freed back to the operating system.
//!
//! glibc keeps freed memory in its arenas for reuse: after 60 calls the idle bot stays at
//! about 80 MiB of RSS against 17.5 MiB fresh. `malloc_trim(0)` returns every whole free page
//! of every arena. It walks the arenas under their locks, so it runs on a blocking-pool thread
//! (never a shard thread: shards do not allocate, so they never wait on it), and only when
//! calls have ended: [`TrimPolicy`] decides when, [`trim`] does it.
//!
//! The policy is sans-IO (time is a parameter): after a call ends it waits for the ending to
//! go quiet ([`TrimPolicy::QUIET`] without another end, so sixty calls hanging up together
//! cost one trim, not sixty), but trims at least every [`TrimPolicy::MAX_WAIT`] while calls
//! keep ending.

use std::time::{Duration, Instant};

/// When to trim the heap after calls end.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrimPolicy {
    /// First call end not yet followed by a trim.
    pending_since: Option<Instant>,
    /// The latest call end.
    last_end: Option<Instant>,
}

impl TrimPolicy {
    /// Quiet time after the latest call end before trimming.
    pub const QUIET: Duration = Duration::from_secs(1);
    /// Longest wait after a call end while others keep ending.
    pub const MAX_WAIT: Duration = Duration::from_secs(10);

    /// A call ended at `now`.
    pub fn call_ended(&mut self, now: Instant) {
        self.pending_since.get_or_insert(now);
        self.last_end = Some(now);
    }

    /// Whether to trim now; a `true` counts as the trim done.
    pub fn poll(&mut self, now: Instant) -> bool {
        let (Some(since), Some(last)) = (self.pending_since, self.last_end) else {
            return false;
        };
        let due = now.saturating_duration_since(last) >= Self::QUIET
            || now.saturating_duration_since(since) >= Self::MAX_WAIT;
        if due {
            *self = Self::default();
        }
        due
    }
}

/// Returns free heap pages to the OS (glibc `malloc_trim(0)`); true if memory was released.
/// Blocking (it takes every arena's lock in turn): call from a blocking-pool thread. Always
/// false off glibc.
pub fn trim() -> bool {
    malloc_trim()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn malloc_trim() -> bool {
    // SAFETY: malloc_trim only releases free memory of glibc's own arenas; it is thread-safe
    // (it locks each arena) and leaves every live allocation where it is.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn malloc_trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_after_a_burst_of_ends_goes_quiet() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = TrimPolicy::default();
        assert!(!p.poll(ms(5000)), "nothing ended");
        for n in 0..60 {
            p.call_ended(ms(n * 10));
        }
        assert!(!p.poll(ms(1000)), "590 ms after the last end");
        assert!(p.poll(ms(1590)));
        assert!(!p.poll(ms(3000)), "already trimmed");
    }

    #[test]
    fn trims_at_least_every_max_wait_while_calls_keep_ending() {
        let t0 = Instant::now();
        let mut p = TrimPolicy::default();
        let mut trims = Vec::new();
        for n in 0..100u64 {
            let now = t0 + Duration::from_millis(n * 500);
            p.call_ended(now);
            if p.poll(now) {
                trims.push(n);
            }
        }
        assert_eq!(trims, [20, 41, 62, 83]);
    }

    #[test]
    fn trim_runs_and_the_heap_still_works() {
        let freed: Vec<Vec<u8>> = (0..64).map(|i| vec![i; 64 * 1024]).collect();
        drop(freed);
        let released = trim();
        assert!(!released || cfg!(all(target_os = "linux", target_env = "gnu")));
        assert_eq!(vec![7u8; 4096][4095], 7);
    }
}
