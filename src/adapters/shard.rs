//! Media shards: real-time threads that tick rooms every 20 ms, and the pool that feeds them.
//!
//! A [`ShardPool`] runs N shard threads (default: one per core). Each owns a set of rooms
//! and ticks them on absolute 20 ms deadlines ([`crate::media::ticker::Ticker`]: no drift,
//! overruns skipped and counted), reading the clock once per tick and passing that `now`
//! to every room, in two phases: every room's decode ([`ShardRoom::gather`]), then every
//! room's mix, encode and send ([`ShardRoom::tick`]) — see [`ShardCore`]. Real-time (SCHED_FIFO) priority is requested where the OS allows; a
//! refusal is logged once and is not fatal.
//!
//! ```text
//!  tokio tasks ──add_room / add_member / remove_*──▶ ShardPool (Mutex, non-real-time side)
//!                                                      │ control: rtrb SPSC, fixed-size values
//!                                                      ▼   (pre-built Box<Room>, Box<Member>, ids)
//!                                              shard thread ×N ── tick(now) every 20 ms
//!                                                      │ retired: rtrb SPSC
//!                                                      ▼
//!                                               janitor thread ── drops retired state
//!        stats(): relaxed atomics per shard, read without locks ◀── shard threads
//! ```
//!
//! # Policies
//!
//! - **Placement**: a new room goes to the least-loaded shard, load = rooms + members the
//!   pool added (ties: lowest shard id). A shard at `max_rooms_per_shard` takes no more.
//! - **Full control queue**: the command is not sent; it comes back to the caller inside
//!   the error ([`Rejected`]) and the shard's `control_full` counter goes up. Nothing is lost
//!   silently. Commands are applied at the start of the shard's next tick (≤ 20 ms), at most
//!   [`MAX_CONTROL_PER_TICK`] per tick.
//! - **Retired queue**: the shard frees nothing. Removed and rejected state travels back to
//!   the janitor; if the janitor lags, the shard leaves commands queued (`retire_stalls`).
//! - **Idle**: a shard with no rooms parks — no timer, no wake-ups — until a command
//!   arrives. A room whose [`ShardRoom::is_idle`] is true is skipped by the tick.
//! - **Shutdown**: [`ShardPool::shutdown`] stops and joins every shard, drops their rooms on
//!   the calling thread, then stops and joins the janitor. Dropping the pool does the same.
//!
//! The control side is used from many tokio tasks, so it sits behind a `std::sync::Mutex`
//! held only for a queue push and some bookkeeping; the shard threads never lock.

mod config;
mod core;
mod error;
#[cfg(test)]
mod fake;
mod janitor;
pub(crate) mod priority;
mod stats;
mod worker;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle, Thread};

use rtrb::{Producer, PushError};

use self::config::validate;
pub use self::config::{ShardConfig, TickObserver};
pub use self::core::{Control, MAX_CONTROL_PER_TICK, Retired, ShardCore, ShardQueues, ShardRoom};
pub use self::error::{Rejected, ShardError};
pub use self::stats::{ShardCounters, ShardStats};
use self::worker::Worker;
use crate::media::room::Room;

/// Index of a shard in its pool.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct ShardId(pub usize);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard-{}", self.0)
    }
}

/// N shard threads plus a janitor, and the control side that feeds them.
///
/// The room type defaults to [`Room`]; name it when starting the pool, since nothing else
/// pins it down at that point:
///
/// ```no_run
/// use mediabot::adapters::shard::{ShardConfig, ShardPool};
/// use mediabot::media::room::{Room, RoomConfig, RoomId};
///
/// let pool: ShardPool = ShardPool::start(ShardConfig::default())?;
/// let room = Room::new(RoomId(1), RoomConfig::default())?;
/// let shard = pool.add_room(room).map_err(|r| r.error)?;
/// println!("room 1 ticks on {shard}");
/// pool.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShardPool<R: ShardRoom = Room> {
    control: Mutex<ControlSide<R>>,
    shards: Vec<ShardHandle>,
    joins: Mutex<Joins<R>>,
    stop_shards: Arc<AtomicBool>,
    stop_janitor: Arc<AtomicBool>,
}

impl<R: ShardRoom> ShardPool<R> {
    /// Builds every shard (rooms lists, queues, counters), starts the janitor, then the shard
    /// threads. Shards start parked: they cost nothing until a room arrives.
    pub fn start(config: ShardConfig) -> Result<Self, ShardError> {
        let n = validate(&config)?;
        let stop_shards = Arc::new(AtomicBool::new(false));
        let stop_janitor = Arc::new(AtomicBool::new(false));
        let mut cores = Vec::with_capacity(n);
        let mut producers = Vec::with_capacity(n);
        let mut retired = Vec::with_capacity(n);
        for i in 0..n {
            let (core, queues) = ShardCore::<R>::new(ShardId(i), &config);
            cores.push(core);
            producers.push(queues.control);
            retired.push((ShardId(i), queues.retired));
        }
        let stop = Arc::clone(&stop_janitor);
        let janitor = spawn("mediabot-janitor".into(), move || {
            janitor::run(retired, stop)
        })?;
        let mut pool = Self {
            control: Mutex::new(ControlSide {
                producers,
                rooms: HashMap::new(),
                load: vec![Load::default(); n],
                max_rooms: config.max_rooms_per_shard,
                shut_down: false,
            }),
            shards: Vec::with_capacity(n),
            joins: Mutex::new(Joins {
                shards: Vec::with_capacity(n),
                janitor: Some(janitor),
            }),
            stop_shards,
            stop_janitor,
        };
        let janitor_thread = pool
            .joins_lock()
            .janitor
            .as_ref()
            .map(|j| j.thread().clone());
        // The janitor handle was stored just above.
        let janitor_thread = janitor_thread.expect("janitor handle present");
        for core in cores {
            let id = core.id();
            let counters = Arc::clone(core.counters());
            let worker = Worker::new(
                core,
                &config,
                Arc::clone(&pool.stop_shards),
                janitor_thread.clone(),
            );
            // On failure `pool` drops here, which stops and joins what was started.
            let join = spawn(format!("mediabot-shard-{}", id.0), move || worker.run())?;
            pool.shards.push(ShardHandle {
                id,
                thread: join.thread().clone(),
                counters,
            });
            pool.joins_lock().shards.push((id, join));
        }
        Ok(pool)
    }

    /// Moves `room` to the least-loaded shard; returns which. On error the room comes back.
    pub fn add_room(&self, room: impl Into<Box<R>>) -> Result<ShardId, Rejected<Box<R>>> {
        let room = room.into();
        let mut control = self.control_lock();
        let id = room.id();
        let shard = match control.admit(id) {
            Ok(shard) => shard,
            Err(error) => return Err(Rejected { error, value: room }),
        };
        match control.producers[shard.0].push(Control::AddRoom(room)) {
            Ok(()) => {
                control.rooms.insert(id, RoomEntry { shard, members: 0 });
                control.load[shard.0].rooms += 1;
                drop(control);
                self.shards[shard.0].thread.unpark();
                Ok(shard)
            }
            Err(PushError::Full(Control::AddRoom(room))) => Err(self.full(shard, room)),
            Err(PushError::Full(_)) => unreachable!("push returns the value it was given"),
        }
    }

    /// Sends `member` to room `room`'s shard. On error the member comes back. A member the
    /// room itself refuses is retired by the shard (counted as `members_rejected`).
    pub fn add_member(
        &self,
        room: R::Id,
        member: impl Into<Box<R::Member>>,
    ) -> Result<(), Rejected<Box<R::Member>>> {
        let member = member.into();
        let mut control = self.control_lock();
        let shard = match control.lookup(room) {
            Ok(shard) => shard,
            Err(error) => {
                return Err(Rejected {
                    error,
                    value: member,
                });
            }
        };
        match control.producers[shard.0].push(Control::AddMember(room, member)) {
            Ok(()) => {
                control.count_member(room, shard, true);
                drop(control);
                self.shards[shard.0].thread.unpark();
                Ok(())
            }
            Err(PushError::Full(Control::AddMember(_, member))) => Err(self.full(shard, member)),
            Err(PushError::Full(_)) => unreachable!("push returns the value it was given"),
        }
    }

    /// Asks room `room`'s shard to remove member `member` and retire it.
    pub fn remove_member(&self, room: R::Id, member: R::MemberId) -> Result<(), ShardError> {
        let mut control = self.control_lock();
        let shard = control.lookup(room)?;
        if control.producers[shard.0]
            .push(Control::RemoveMember(room, member))
            .is_err()
        {
            return Err(self.full(shard, ()).error);
        }
        control.count_member(room, shard, false);
        drop(control);
        self.shards[shard.0].thread.unpark();
        Ok(())
    }

    /// Asks room `room`'s shard to stop ticking it and retire it.
    pub fn remove_room(&self, room: R::Id) -> Result<(), ShardError> {
        let mut control = self.control_lock();
        let shard = control.lookup(room)?;
        if control.producers[shard.0]
            .push(Control::RemoveRoom(room))
            .is_err()
        {
            return Err(self.full(shard, ()).error);
        }
        if let Some(entry) = control.rooms.remove(&room) {
            let load = &mut control.load[shard.0];
            load.rooms -= 1;
            load.members = load.members.saturating_sub(entry.members);
        }
        drop(control);
        self.shards[shard.0].thread.unpark();
        Ok(())
    }

    /// The shard a room was placed on, if it is in the pool.
    pub fn shard_of(&self, room: R::Id) -> Option<ShardId> {
        self.control_lock().rooms.get(&room).map(|e| e.shard)
    }

    /// Number of shard threads.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// A snapshot of every shard's counters and tick-cost histogram (read without locking
    /// the shards; allocates, so call it off the real-time path).
    pub fn stats(&self) -> Vec<ShardStats> {
        self.shards
            .iter()
            .map(|s| s.counters.snapshot(s.id))
            .collect()
    }

    /// Stops and joins every shard (their rooms are dropped on this thread), then the
    /// janitor. Idempotent; later control calls fail with [`ShardError::ShutDown`]. Returns
    /// the first shard panic found, after joining everything.
    pub fn shutdown(&self) -> Result<(), ShardError> {
        self.control_lock().shut_down = true;
        self.stop_shards.store(true, Ordering::Release);
        for s in &self.shards {
            s.thread.unpark();
        }
        let (shards, janitor) = {
            let mut joins = self.joins_lock();
            (std::mem::take(&mut joins.shards), joins.janitor.take())
        };
        let mut result = Ok(());
        for (id, join) in shards {
            match join.join() {
                Ok(core) => drop(core.into_rooms()),
                Err(_) => {
                    if result.is_ok() {
                        result = Err(ShardError::Panicked(id));
                    }
                }
            }
        }
        self.stop_janitor.store(true, Ordering::Release);
        if let Some(janitor) = janitor {
            janitor.thread().unpark();
            // A janitor panic means a room's or member's `Drop` panicked; nothing to add.
            let _ = janitor.join();
        }
        result
    }

    fn full<T>(&self, shard: ShardId, value: T) -> Rejected<T> {
        ShardCounters::bump(&self.shards[shard.0].counters.control_full);
        Rejected {
            error: ShardError::ControlQueueFull(shard),
            value,
        }
    }

    fn control_lock(&self) -> MutexGuard<'_, ControlSide<R>> {
        // A panic while holding this lock leaves only bookkeeping behind; keep going.
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn joins_lock(&self) -> MutexGuard<'_, Joins<R>> {
        self.joins.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<R: ShardRoom> Drop for ShardPool<R> {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl<R: ShardRoom> fmt::Debug for ShardPool<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardPool")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// The non-real-time side's bookkeeping, behind the pool's mutex.
struct ControlSide<R: ShardRoom> {
    producers: Vec<Producer<Control<R>>>,
    rooms: HashMap<R::Id, RoomEntry>,
    load: Vec<Load>,
    max_rooms: usize,
    shut_down: bool,
}

impl<R: ShardRoom> ControlSide<R> {
    /// Picks the shard for a new room.
    fn admit(&self, id: R::Id) -> Result<ShardId, ShardError> {
        if self.shut_down {
            return Err(ShardError::ShutDown);
        }
        if self.rooms.contains_key(&id) {
            return Err(ShardError::DuplicateRoom);
        }
        self.load
            .iter()
            .enumerate()
            .filter(|(_, l)| l.rooms < self.max_rooms)
            .min_by_key(|(i, l)| (l.rooms + l.members, *i))
            .map(|(i, _)| ShardId(i))
            .ok_or(ShardError::PoolFull)
    }

    fn lookup(&self, room: R::Id) -> Result<ShardId, ShardError> {
        if self.shut_down {
            return Err(ShardError::ShutDown);
        }
        self.rooms
            .get(&room)
            .map(|e| e.shard)
            .ok_or(ShardError::UnknownRoom)
    }

    fn count_member(&mut self, room: R::Id, shard: ShardId, added: bool) {
        let Some(entry) = self.rooms.get_mut(&room) else {
            return;
        };
        let load = &mut self.load[shard.0];
        if added {
            entry.members += 1;
            load.members += 1;
        } else if entry.members > 0 {
            entry.members -= 1;
            load.members -= 1;
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct RoomEntry {
    shard: ShardId,
    members: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct Load {
    rooms: usize,
    members: usize,
}

struct ShardHandle {
    id: ShardId,
    thread: Thread,
    counters: Arc<ShardCounters>,
}

struct Joins<R: ShardRoom> {
    shards: Vec<(ShardId, JoinHandle<ShardCore<R>>)>,
    janitor: Option<JoinHandle<()>>,
}

fn spawn<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, ShardError> {
    thread::Builder::new()
        .name(name.clone())
        .spawn(f)
        .map_err(|e| ShardError::Spawn {
            thread: name,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::SeqCst;
    use std::time::{Duration, Instant};

    use super::fake::{FakeRoom, Probe};
    use super::*;

    type Pool = ShardPool<FakeRoom>;

    fn config(shards: usize) -> ShardConfig {
        ShardConfig {
            shards,
            rt_priority: None,
            max_rooms_per_shard: 8,
            control_capacity: 4,
            retired_capacity: 4,
            ..ShardConfig::default()
        }
    }

    /// Waits (generously) for a condition the shard threads will make true; the bound is
    /// only there so a broken shard fails the test instead of hanging it.
    fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < give_up, "never happened: {what}");
            thread::sleep(Duration::from_millis(2));
        }
    }

    fn add(pool: &Pool, id: u64) -> (ShardId, Arc<Probe>) {
        let (room, probe) = FakeRoom::new(id);
        (pool.add_room(room).expect("room accepted"), probe)
    }

    #[test]
    fn rooms_are_ticked_and_placed_on_the_least_loaded_shard() {
        let pool = Pool::start(config(2)).unwrap();
        let (s1, p1) = add(&pool, 1);
        let (s2, p2) = add(&pool, 2);
        assert_eq!((s1, s2), (ShardId(0), ShardId(1)));
        // A member makes shard 0 heavier: the next room goes to shard 1.
        let member = FakeRoom::new(99).0.member(5);
        pool.add_member(1, member).unwrap();
        let (s3, _) = add(&pool, 3);
        assert_eq!(s3, ShardId(1));
        assert_eq!(pool.shard_of(3), Some(ShardId(1)));
        eventually("both rooms ticked", || {
            p1.ticks.load(SeqCst) >= 3 && p2.ticks.load(SeqCst) >= 3
        });
        let stats = pool.stats();
        assert_eq!(stats.len(), 2);
        assert!(
            stats
                .iter()
                .all(|s| s.ticks >= 3 && s.tick_cost.count() >= 3)
        );
        assert_eq!(stats[1].rooms, 2);
        pool.shutdown().unwrap();
    }

    #[test]
    fn idle_shard_parks_and_wakes_for_control() {
        let pool = Pool::start(config(1)).unwrap();
        eventually("shard parked at start", || pool.stats()[0].parked);
        let before = pool.stats()[0].ticks;
        thread::sleep(Duration::from_millis(60));
        assert_eq!(
            pool.stats()[0].ticks,
            before,
            "a parked shard must not tick"
        );
        let (_, probe) = add(&pool, 1);
        eventually("room ticked", || probe.ticks.load(SeqCst) >= 2);
        assert!(!pool.stats()[0].parked);
        pool.remove_room(1).unwrap();
        eventually("parked again", || {
            let s = pool.stats()[0].clone();
            s.parked && s.parks >= 2
        });
        // Parked time is not a deadline miss: 400 ms parked would be 20 missed deadlines
        // if the ticker were not re-anchored on wake-up.
        let misses = pool.stats()[0].deadline_misses;
        thread::sleep(Duration::from_millis(400));
        let (_, probe) = add(&pool, 2);
        eventually("second room ticked", || probe.ticks.load(SeqCst) >= 2);
        assert!(pool.stats()[0].deadline_misses < misses + 10);
    }

    #[test]
    fn full_control_queue_gives_the_command_back_and_counts_it() {
        let pool = Pool::start(config(1)).unwrap();
        let (_, probe) = add(&pool, 1);
        // Hold the shard inside room 1's tick so nothing drains the control queue; the
        // guard releases it even if an assertion fails, so the pool can shut down.
        struct Release(Arc<Probe>);
        impl Drop for Release {
            fn drop(&mut self) {
                self.0.hold.store(false, SeqCst);
            }
        }
        let _release = Release(Arc::clone(&probe));
        probe.hold.store(true, SeqCst);
        eventually("shard holding", || probe.holding.load(SeqCst));
        let mut sent = 0;
        let rejected = loop {
            let (room, _) = FakeRoom::new(100 + sent);
            match pool.add_room(room) {
                Ok(_) => sent += 1,
                Err(r) => break r,
            }
            assert!(sent <= 4, "capacity is 4");
        };
        assert_eq!(rejected.error, ShardError::ControlQueueFull(ShardId(0)));
        assert_eq!(rejected.value.id, 100 + sent);
        assert!(
            pool.shard_of(100 + sent).is_none(),
            "a refused room is not booked"
        );
        let member = FakeRoom::new(0).0.member(3);
        let rejected = pool.add_member(1, member).unwrap_err();
        assert_eq!(rejected.value.id, 3);
        assert_eq!(
            pool.remove_room(1),
            Err(ShardError::ControlQueueFull(ShardId(0)))
        );
        assert_eq!(pool.stats()[0].control_full, 3);
        probe.hold.store(false, SeqCst);
        eventually("queued rooms applied", || pool.stats()[0].rooms == 1 + sent);
    }

    #[test]
    fn bad_requests_are_typed_errors() {
        let pool = Pool::start(ShardConfig {
            max_rooms_per_shard: 1,
            ..config(1)
        })
        .unwrap();
        add(&pool, 1);
        let dup = pool.add_room(FakeRoom::new(1).0).unwrap_err();
        assert_eq!(dup.error, ShardError::DuplicateRoom);
        let full = pool.add_room(FakeRoom::new(2).0).unwrap_err();
        assert_eq!(full.error, ShardError::PoolFull);
        assert_eq!(pool.remove_room(7), Err(ShardError::UnknownRoom));
        assert_eq!(pool.remove_member(7, 1), Err(ShardError::UnknownRoom));
        let m = FakeRoom::new(0).0.member(1);
        assert_eq!(
            pool.add_member(7, m).unwrap_err().error,
            ShardError::UnknownRoom
        );
        pool.shutdown().unwrap();
        let after = pool.add_room(FakeRoom::new(3).0).unwrap_err();
        assert_eq!(after.error, ShardError::ShutDown);
        assert_eq!(pool.remove_room(1), Err(ShardError::ShutDown));
        // Idempotent.
        pool.shutdown().unwrap();
    }

    #[test]
    fn invalid_configs_are_refused() {
        let bad = [
            ShardConfig {
                period: Duration::ZERO,
                ..config(1)
            },
            ShardConfig {
                max_rooms_per_shard: 0,
                ..config(1)
            },
            ShardConfig {
                control_capacity: 0,
                ..config(1)
            },
            ShardConfig {
                rt_priority: Some(0),
                ..config(1)
            },
        ];
        for c in bad {
            assert!(matches!(Pool::start(c), Err(ShardError::InvalidConfig(_))));
        }
    }

    #[test]
    fn retired_state_is_dropped_off_the_shard_thread() {
        let pool = Pool::start(config(1)).unwrap();
        let (room, p1) = FakeRoom::new(1);
        let member = room.member(4);
        pool.add_room(room).unwrap();
        pool.add_member(1, member).unwrap();
        let (_, p2) = add(&pool, 2);
        eventually("member added", || p1.members.load(SeqCst) == 1);
        pool.remove_member(1, 4).unwrap();
        pool.remove_room(1).unwrap();
        eventually("retired and dropped", || p1.dropped_on().len() == 2);
        assert_eq!(
            p1.dropped_on(),
            ["member@mediabot-janitor", "room@mediabot-janitor"]
        );
        // Rooms still on a shard at shutdown are dropped by the thread that shuts down.
        pool.shutdown().unwrap();
        let d = p2.dropped_on();
        assert_eq!(d.len(), 1);
        assert!(!d[0].contains("mediabot-shard"), "{d:?}");
    }

    #[test]
    fn observer_runs_on_the_shard_thread_after_each_tick() {
        static SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        fn observe(shard: ShardId, ticks: u64) {
            let on_shard = thread::current().name() == Some("mediabot-shard-0");
            if shard == ShardId(0) && on_shard {
                SEEN.store(ticks, SeqCst);
            }
        }
        let pool = Pool::start(ShardConfig {
            tick_observer: Some(observe),
            rt_priority: Some(10),
            ..config(1)
        })
        .unwrap();
        add(&pool, 1);
        eventually("observed ticks", || SEEN.load(SeqCst) >= 3);
        // Whatever the OS decided about SCHED_FIFO, the shard runs.
        let s = pool.stats()[0].clone();
        tracing::info!(rt_priority = s.rt_priority, "priority outcome");
    }
}
