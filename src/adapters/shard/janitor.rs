//! The janitor thread: drains every shard's retired queue and drops what it finds, so
//! rooms and members are freed (files closed, codecs torn down) off the real-time threads.
//!
//! It parks until a shard unparks it (after a tick that retired something) or the pool
//! stops it; stopping drains once more before exiting. No timers: an idle pool costs no
//! wake-ups here either.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use rtrb::Consumer;

use super::ShardId;
use super::core::{Retired, ShardRoom};

/// Runs until `stop` is set, then drains one last time and returns.
pub(crate) fn run<R: ShardRoom>(
    mut queues: Vec<(ShardId, Consumer<Retired<R>>)>,
    stop: Arc<AtomicBool>,
) {
    loop {
        // Read the flag before draining: a retire pushed before the stop is always seen.
        let stopping = stop.load(Ordering::Acquire);
        for (shard, queue) in &mut queues {
            drain(*shard, queue);
        }
        if stopping {
            return;
        }
        thread::park();
    }
}

/// Pops and drops everything waiting in `queue`; returns how many values it freed.
pub(crate) fn drain<R: ShardRoom>(shard: ShardId, queue: &mut Consumer<Retired<R>>) -> usize {
    let mut n = 0;
    while let Ok(retired) = queue.pop() {
        match &retired {
            Retired::Room(_) | Retired::Member(..) => {
                tracing::trace!(%shard, ?retired, "dropping retired state");
            }
            Retired::RoomRejected(_) | Retired::MemberRejected(..) => {
                tracing::warn!(%shard, ?retired, "shard could not take this; dropped");
            }
        }
        drop(retired);
        n += 1;
    }
    n
}
