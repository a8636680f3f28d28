//! The shard thread: sleep to the next absolute deadline, read the clock, tick, repeat;
//! park when there is nothing to tick.
//!
//! ```text
//! loop {
//!     stop requested?            → return the core (its rooms are dropped by the joiner)
//!     no rooms and no control?   → park (no wake-ups) until a command or stop unparks us,
//!                                  then re-anchor the ticker so the pause is not a "miss"
//!     now = Instant::now()       ← the tick's clock reading, passed to every room (a call's
//!                                  room may read its own start too, see `call_room.rs`)
//!     ticker.handle_timeout(now) → not due: sleep to the deadline
//!     core.gather(now, clock)    → control, then every non-idle room's decode (phase 1)
//!     decoded = Instant::now()   ← deadline → end of the decode phase (histogram)
//!     core.mix(now, clock)       → every non-idle room's mix, encode, send (phase 2)
//!     end = Instant::now()       ← measures the cost and deadline → end (histograms), and
//!                                  the sleep
//!     publish counters, wake the janitor if something was retired, call the observer
//!     sleep until ticker.poll_timeout()
//! }
//! ```
//!
//! # Realtime Safety
//! After the thread starts (priority request, first ticker), the loop allocates nothing,
//! takes no lock and blocks only in its own sleep or park.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::media::ticker::Ticker;

use super::core::{ShardCore, ShardRoom};
use super::priority::request_realtime;
use super::stats::ShardCounters;
use super::{ShardConfig, TickObserver};

/// Everything a shard thread owns.
pub(crate) struct Worker<R: ShardRoom> {
    pub(crate) core: ShardCore<R>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) janitor: Thread,
    pub(crate) period: Duration,
    pub(crate) late_threshold: Duration,
    pub(crate) rt_priority: Option<i32>,
    pub(crate) observer: Option<TickObserver>,
}

impl<R: ShardRoom> Worker<R> {
    pub(crate) fn new(
        core: ShardCore<R>,
        config: &ShardConfig,
        stop: Arc<AtomicBool>,
        janitor: Thread,
    ) -> Self {
        Self {
            core,
            stop,
            janitor,
            period: config.period,
            late_threshold: config.late_threshold,
            rt_priority: config.rt_priority,
            observer: config.tick_observer,
        }
    }

    /// Runs until stop is requested, then hands the core back to the joining thread.
    pub(crate) fn run(mut self) -> ShardCore<R> {
        let counters = Arc::clone(self.core.counters());
        if let Some(priority) = self.rt_priority {
            let granted = request_realtime("shard thread", priority);
            counters.rt_priority.store(granted, Ordering::Relaxed);
        }
        let id = self.core.id();
        let mut ticker =
            Ticker::new(Instant::now(), self.period).with_late_threshold(self.late_threshold);
        let mut rebase = false;
        loop {
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            if self.core.room_count() == 0 && !self.core.has_control() {
                counters.parked.store(true, Ordering::Relaxed);
                ShardCounters::bump(&counters.parks);
                // Spurious returns are fine: the loop re-checks stop, rooms and control.
                thread::park();
                counters.parked.store(false, Ordering::Relaxed);
                rebase = true;
                continue;
            }
            let now = Instant::now();
            if rebase {
                ticker.rebase(now);
                rebase = false;
            }
            let due = ticker.handle_timeout(now);
            if !due.is_due() {
                thread::sleep(ticker.poll_timeout().saturating_duration_since(now));
                continue;
            }
            self.core.gather(now, Instant::now);
            let decoded = Instant::now();
            self.core.mix(now, Instant::now);
            let end = Instant::now();
            counters.record_tick(
                ticker.stats(),
                due.late_by,
                decoded.saturating_duration_since(now),
                end.saturating_duration_since(now),
            );
            if self.core.take_retired_signal() {
                self.janitor.unpark();
            }
            if let Some(observe) = self.observer {
                observe(id, ticker.stats().ticks);
            }
            let next = ticker.poll_timeout();
            if next > end {
                thread::sleep(next - end);
            }
        }
        self.core
    }
}
