//! How to run a [`super::ShardPool`]: thread count, tick period, priority, capacities.

use std::thread;
use std::time::Duration;

use super::{ShardError, ShardId};
use crate::media::frame::FRAME_DURATION;

/// Called on the shard thread after every tick with the shard and its tick count so far.
/// A plain `fn` (no captures, no allocation): for tests and profiling hooks.
pub type TickObserver = fn(ShardId, u64);

/// How to run a [`super::ShardPool`].
#[derive(Clone, Debug)]
pub struct ShardConfig {
    /// Shard threads to start; 0 means one per core (`available_parallelism`).
    pub shards: usize,
    /// Tick period (20 ms: one Opus frame).
    pub period: Duration,
    /// How late after its deadline a tick may start before it counts as late.
    pub late_threshold: Duration,
    /// SCHED_FIFO priority to request (1–99), or `None` to stay at normal priority.
    pub rt_priority: Option<i32>,
    /// Room capacity of each shard, allocated up front.
    pub max_rooms_per_shard: usize,
    /// Slots in each shard's control queue.
    pub control_capacity: usize,
    /// Slots in each shard's retired queue.
    pub retired_capacity: usize,
    /// Optional hook called on the shard thread after each tick.
    pub tick_observer: Option<TickObserver>,
}

impl Default for ShardConfig {
    fn default() -> Self {
        Self {
            shards: 0,
            period: FRAME_DURATION,
            late_threshold: FRAME_DURATION / 4,
            rt_priority: Some(10),
            max_rooms_per_shard: 1024,
            control_capacity: 256,
            retired_capacity: 256,
            tick_observer: None,
        }
    }
}

/// Checks `config`; returns the number of shards to start.
pub(crate) fn validate(config: &ShardConfig) -> Result<usize, ShardError> {
    if config.period.is_zero() {
        return Err(ShardError::InvalidConfig("period must be > 0"));
    }
    if config.max_rooms_per_shard == 0 {
        return Err(ShardError::InvalidConfig("max_rooms_per_shard must be > 0"));
    }
    if config.control_capacity == 0 || config.retired_capacity == 0 {
        return Err(ShardError::InvalidConfig("queue capacities must be > 0"));
    }
    if let Some(p) = config.rt_priority
        && !(1..=99).contains(&p)
    {
        return Err(ShardError::InvalidConfig("rt_priority must be 1..=99"));
    }
    Ok(match config.shards {
        0 => thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    })
}
