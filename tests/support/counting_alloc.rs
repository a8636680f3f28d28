//! A counting global allocator for the no-allocation tests: counts the allocations and frees
//! made by threads that asked to be counted, and forwards every call to the system allocator.
//!
//! A test binary installs it itself (a global allocator is per binary):
//!
//! ```ignore
//! #[path = "support/counting_alloc.rs"]
//! mod counting_alloc;
//!
//! #[global_allocator]
//! static GLOBAL: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;
//! ```
//!
//! Two ways to count:
//! - [`count`]: what a closure does on the calling thread (per-thread counters, so tests
//!   running side by side do not see each other).
//! - [`count_this_thread`] plus [`shared`]: what another thread does (a shard thread, an audio
//!   callback) while it has switched counting on for itself, summed process-wide.
//!
//! Including this file also adds the test `counting_alloc::tests::the_counter_sees_allocations`
//! to the binary, which
//! fails if the binary forgot to install the allocator: a no-allocation test that cannot fail
//! is a defect.
#![allow(dead_code)]
#![allow(unsafe_code)] // A `GlobalAlloc` impl is unsafe by definition.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// The allocator: install it with `#[global_allocator]` in the test binary.
#[derive(Debug)]
pub struct CountingAlloc;

/// Allocations (including reallocations) and frees seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `alloc`, `alloc_zeroed` and `realloc` calls.
    pub allocs: u64,
    /// `dealloc` calls.
    pub frees: u64,
}

impl Counts {
    /// Allocations and frees together.
    pub fn total(self) -> u64 {
        self.allocs + self.frees
    }

    /// What happened between `earlier` and `self` (two readings of [`shared`]).
    pub fn since(self, earlier: Self) -> Self {
        Self {
            allocs: self.allocs - earlier.allocs,
            frees: self.frees - earlier.frees,
        }
    }
}

thread_local! {
    /// [`count`] is running on this thread.
    static LOCAL_ON: Cell<bool> = const { Cell::new(false) };
    static LOCAL_ALLOCS: Cell<u64> = const { Cell::new(0) };
    static LOCAL_FREES: Cell<u64> = const { Cell::new(0) };
    /// This thread adds to the process-wide counts ([`count_this_thread`]).
    static SHARED_ON: Cell<bool> = const { Cell::new(false) };
}

static SHARED_ALLOCS: AtomicU64 = AtomicU64::new(0);
static SHARED_FREES: AtomicU64 = AtomicU64::new(0);

/// Counts one event of the calling thread. Touches only const-initialised thread-locals
/// without destructors and static atomics; `try_with` because thread-locals may be gone while
/// a thread shuts down.
fn note(local: &'static std::thread::LocalKey<Cell<u64>>, shared: &AtomicU64) {
    if LOCAL_ON.try_with(Cell::get).unwrap_or(false) {
        let _ = local.try_with(|n| n.set(n.get() + 1));
    }
    if SHARED_ON.try_with(Cell::get).unwrap_or(false) {
        shared.fetch_add(1, SeqCst);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// const-initialised thread-locals and static atomics, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(&LOCAL_ALLOCS, &SHARED_ALLOCS);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(&LOCAL_ALLOCS, &SHARED_ALLOCS);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(&LOCAL_ALLOCS, &SHARED_ALLOCS);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(&LOCAL_FREES, &SHARED_FREES);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns its result with the allocations and frees it made on this thread.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, Counts) {
    LOCAL_ALLOCS.with(|n| n.set(0));
    LOCAL_FREES.with(|n| n.set(0));
    LOCAL_ON.with(|on| on.set(true));
    let r = f();
    LOCAL_ON.with(|on| on.set(false));
    let counts = Counts {
        allocs: LOCAL_ALLOCS.with(Cell::get),
        frees: LOCAL_FREES.with(Cell::get),
    };
    (r, counts)
}

/// Switches counting into [`shared`] on or off for the calling thread. Allocation-free, so it
/// can be called from the code under test (a tick observer, an audio callback hook).
pub fn count_this_thread(on: bool) {
    let _ = SHARED_ON.try_with(|c| c.set(on));
}

/// The allocations and frees of all threads while they had [`count_this_thread`] on, since
/// the process started.
pub fn shared() -> Counts {
    Counts {
        allocs: SHARED_ALLOCS.load(SeqCst),
        frees: SHARED_FREES.load(SeqCst),
    }
}

#[cfg(test)]
mod tests {
    /// The allocator is installed and sees this thread's allocations and frees.
    #[test]
    fn the_counter_sees_allocations() {
        let ((), c) = super::count(|| drop(std::hint::black_box(vec![1u8; 64])));
        assert!(c.allocs > 0 && c.frees > 0, "{c:?}");
        let ((), c) = super::count(|| ());
        assert_eq!(c, super::Counts::default());
    }
}
