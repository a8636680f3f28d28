//! What one shard does each tick, without the thread: apply control, tick the rooms.
//!
//! [`ShardCore`] owns a shard's rooms and its two queue ends. The shard thread
//! ([`super::worker`]) runs one tick per 20 ms deadline in two phases, [`ShardCore::gather`]
//! then [`ShardCore::mix`]; benches and tests call the same methods (or [`ShardCore::tick`],
//! both at once) without a thread or a sleep.
//!
//! # Two phases
//!
//! 1. **gather**: control is applied, then every non-idle room takes its inputs
//!    ([`ShardRoom::gather`]: jitter pull and Opus decode for call legs), room after room.
//! 2. **mix**: every non-idle room selects, mixes, encodes and sends ([`ShardRoom::tick`]),
//!    in the same order.
//!
//! So a packet's decoded frame is ready once the decode phase ends, not after the encodes of
//! the rooms ticked before its own (the inbound half of the host-added latency), and each
//! room's outbound packet still leaves right after its own mix (the outbound half). Nothing
//! changes between the phases: control is applied only before `gather`.
//!
//! # Queues
//!
//! - **control** (pool → shard): [`Control`] values carrying *pre-built* state. Boxes are
//!   allocated by the sender and only moved on the shard.
//! - **retired** (shard → janitor): [`Retired`] values carrying every box the shard lets go
//!   of (removed rooms and members, rejected additions), so nothing is freed on the shard.
//!
//! Every control command produces at most one retired value, so the shard pops a command
//! only while the retired queue has a free slot. When the janitor falls behind, commands
//! wait in the control queue (counted as `retire_stalls`) and the control queue, filling up,
//! pushes back on the senders — nothing is dropped or freed on the shard.
//!
//! # Realtime Safety
//! After construction, [`ShardCore::gather`], [`ShardCore::mix`] and [`ShardCore::tick`]
//! never allocate, free, lock or block: the room list has a fixed capacity
//! (`max_rooms_per_shard`), queue operations are wait-free, and counters are relaxed atomics. What the rooms themselves do is their contract.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

use rtrb::{Consumer, Producer, RingBuffer};

use super::stats::ShardCounters;
use super::{ShardConfig, ShardId};
use crate::media::member::Member;
use crate::media::room::{MemberId, Room, RoomId};

/// Most control commands one tick applies; the rest wait for the next tick, bounding the
/// time control can take from the audio work.
pub const MAX_CONTROL_PER_TICK: usize = 64;

/// What a shard needs from a room: implemented by [`crate::media::room::Room`]; unit tests
/// use small doubles.
pub trait ShardRoom: Send + 'static {
    /// Room identifier (unique within a pool).
    type Id: Copy + Debug + Eq + Hash + Send + 'static;
    /// Member identifier (unique within a room).
    type MemberId: Copy + Debug + Eq + Send + 'static;
    /// A member, moved in and out boxed.
    type Member: Send + 'static;

    /// This room's id.
    fn id(&self) -> Self::Id;
    /// First phase of a 20 ms tick at `now`: take this tick's inputs (decode). The shard
    /// calls it for every room before it calls [`ShardRoom::tick`] on any. Must not
    /// allocate, lock or block. The default does nothing (a room that does all in `tick`).
    fn gather(&mut self, now: Instant) {
        let _ = now;
    }
    /// Second phase of a 20 ms tick at `now`, after [`ShardRoom::gather`]: mix, encode,
    /// send. Must not allocate, lock or block.
    fn tick(&mut self, now: Instant);
    /// True when a tick would do nothing; the shard then skips it.
    fn is_idle(&self) -> bool;
    /// Adds a member; gives it back when the room cannot take it.
    fn add_member(&mut self, member: Box<Self::Member>) -> Result<(), Box<Self::Member>>;
    /// Removes a member, handing it back (to be retired), or `None` when unknown.
    fn remove_member(&mut self, id: Self::MemberId) -> Option<Box<Self::Member>>;
}

impl ShardRoom for Room {
    type Id = RoomId;
    type MemberId = MemberId;
    type Member = Member;

    fn id(&self) -> RoomId {
        Self::id(self)
    }

    fn gather(&mut self, now: Instant) {
        Self::gather(self, now);
    }

    fn tick(&mut self, now: Instant) {
        Self::mix(self, now);
    }

    fn is_idle(&self) -> bool {
        Self::is_idle(self)
    }

    fn add_member(&mut self, member: Box<Member>) -> Result<(), Box<Member>> {
        Self::add_member(self, member)
    }

    fn remove_member(&mut self, id: MemberId) -> Option<Box<Member>> {
        Self::remove_member(self, id)
    }
}

/// A command from the pool to a shard: pre-built state or an id, never a `Vec`.
pub enum Control<R: ShardRoom> {
    /// Start ticking this room.
    AddRoom(Box<R>),
    /// Stop ticking this room and retire it.
    RemoveRoom(R::Id),
    /// Add a member to a room.
    AddMember(R::Id, Box<R::Member>),
    /// Remove a member from a room and retire it.
    RemoveMember(R::Id, R::MemberId),
}

/// State the shard lets go of, travelling back to be dropped off the shard thread.
pub enum Retired<R: ShardRoom> {
    /// A room removed by [`Control::RemoveRoom`].
    Room(Box<R>),
    /// A room the shard could not take (its room list was full).
    RoomRejected(Box<R>),
    /// A member removed by [`Control::RemoveMember`].
    Member(R::Id, Box<R::Member>),
    /// A member that could not be added: its room is not on this shard, or it refused it.
    MemberRejected(R::Id, Box<R::Member>),
}

/// The pool's ends of one shard's queues.
pub struct ShardQueues<R: ShardRoom> {
    /// Send commands here (then unpark the shard thread, if there is one).
    pub control: Producer<Control<R>>,
    /// Retired state comes out here; drop it off the shard thread.
    pub retired: Consumer<Retired<R>>,
}

/// One shard's rooms and queue ends: the state the shard thread ticks.
pub struct ShardCore<R: ShardRoom> {
    id: ShardId,
    rooms: Vec<Box<R>>,
    control: Consumer<Control<R>>,
    retired: Producer<Retired<R>>,
    counters: Arc<ShardCounters>,
    retired_since_take: bool,
}

impl<R: ShardRoom> ShardCore<R> {
    /// Builds a shard and its queues with the capacities in `config`. All allocation happens
    /// here: the room list, both ring buffers and the counters.
    pub fn new(id: ShardId, config: &ShardConfig) -> (Self, ShardQueues<R>) {
        let (control_tx, control_rx) = RingBuffer::new(config.control_capacity);
        let (retired_tx, retired_rx) = RingBuffer::new(config.retired_capacity);
        let core = Self {
            id,
            rooms: Vec::with_capacity(config.max_rooms_per_shard),
            control: control_rx,
            retired: retired_tx,
            counters: Arc::new(ShardCounters::new()),
            retired_since_take: false,
        };
        let queues = ShardQueues {
            control: control_tx,
            retired: retired_rx,
        };
        (core, queues)
    }

    /// One tick at `now` on virtual time (every room starts at `now`): [`ShardCore::gather`]
    /// then [`ShardCore::mix`]. Returns the number of rooms ticked.
    pub fn tick(&mut self, now: Instant) -> usize {
        self.gather(now, || now);
        self.mix(now, || now)
    }

    /// First phase of a tick at `now`: applies up to [`MAX_CONTROL_PER_TICK`] control
    /// commands, then gathers (decodes) every room that is not idle, in the order they were
    /// added. Returns the number of rooms gathered. Call [`ShardCore::mix`] next.
    ///
    /// Each room is handed its own start, `now.max(clock())`: the rooms before it took part
    /// of the tick, and its jitter buffer should take the packets queued until then. The
    /// worker passes `Instant::now`; virtual time passes `|| now`.
    pub fn gather(&mut self, now: Instant, mut clock: impl FnMut() -> Instant) -> usize {
        self.apply_control();
        let mut gathered = 0;
        for room in &mut self.rooms {
            if !room.is_idle() {
                room.gather(now.max(clock()));
                gathered += 1;
            }
        }
        gathered
    }

    /// Second phase of a tick at `now`, after [`ShardCore::gather`] with no control between:
    /// mixes and sends ([`ShardRoom::tick`]) every room that is not idle, in the same order.
    /// Returns the number of rooms ticked.
    ///
    /// Each room is handed its own start of mixing, `now.max(clock())`, so the packets it
    /// queues are stamped when its frame is mixed and encoded (frame ready → `write_rtp` is
    /// measured from there), not when the shard woke.
    pub fn mix(&mut self, now: Instant, mut clock: impl FnMut() -> Instant) -> usize {
        let mut ticked = 0;
        for room in &mut self.rooms {
            if !room.is_idle() {
                room.tick(now.max(clock()));
                ticked += 1;
            }
        }
        ticked
    }

    /// Applies queued control commands (at most [`MAX_CONTROL_PER_TICK`]), stopping early
    /// when the retired queue has no free slot. Returns the number applied.
    pub fn apply_control(&mut self) -> usize {
        let mut applied = 0;
        while applied < MAX_CONTROL_PER_TICK && !self.control.is_empty() {
            if self.retired.is_full() {
                ShardCounters::bump(&self.counters.retire_stalls);
                break;
            }
            let Ok(command) = self.control.pop() else {
                break;
            };
            self.apply(command);
            applied += 1;
        }
        if applied > 0 {
            ShardCounters::add(&self.counters.control_applied, applied as u64);
            ShardCounters::set(&self.counters.rooms, self.rooms.len() as u64);
        }
        applied
    }

    /// This shard's id.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// Number of rooms on the shard.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// True when control commands are waiting.
    pub fn has_control(&self) -> bool {
        !self.control.is_empty()
    }

    /// The rooms, in tick order (for tests and inspection off the real-time path).
    pub fn rooms(&self) -> impl Iterator<Item = &R> {
        self.rooms.iter().map(|r| &**r)
    }

    /// The shard's counters, shared with whoever publishes its stats.
    pub fn counters(&self) -> &Arc<ShardCounters> {
        &self.counters
    }

    /// True (once) when something was pushed to the retired queue since the last call:
    /// the shard thread then wakes the janitor.
    pub fn take_retired_signal(&mut self) -> bool {
        std::mem::take(&mut self.retired_since_take)
    }

    /// Gives up every room (shutdown): the caller drops them off the shard thread.
    pub fn into_rooms(self) -> Vec<Box<R>> {
        self.rooms
    }

    fn apply(&mut self, command: Control<R>) {
        match command {
            Control::AddRoom(room) => {
                if self.rooms.len() < self.rooms.capacity() {
                    self.rooms.push(room);
                } else {
                    self.retire(Retired::RoomRejected(room));
                }
            }
            Control::RemoveRoom(id) => match self.position(id) {
                Some(i) => {
                    // `remove`, not `swap_remove`: the remaining rooms keep their tick order.
                    let room = self.rooms.remove(i);
                    self.retire(Retired::Room(room));
                }
                None => ShardCounters::bump(&self.counters.unknown_targets),
            },
            Control::AddMember(id, member) => match self.position(id) {
                Some(i) => {
                    if let Err(member) = self.rooms[i].add_member(member) {
                        ShardCounters::bump(&self.counters.members_rejected);
                        self.retire(Retired::MemberRejected(id, member));
                    }
                }
                None => {
                    ShardCounters::bump(&self.counters.members_rejected);
                    self.retire(Retired::MemberRejected(id, member));
                }
            },
            Control::RemoveMember(id, member_id) => {
                let removed = self
                    .position(id)
                    .and_then(|i| self.rooms[i].remove_member(member_id));
                match removed {
                    Some(member) => self.retire(Retired::Member(id, member)),
                    None => ShardCounters::bump(&self.counters.unknown_targets),
                }
            }
        }
    }

    fn position(&self, id: R::Id) -> Option<usize> {
        self.rooms.iter().position(|r| r.id() == id)
    }

    fn retire(&mut self, value: Retired<R>) {
        // `apply_control` pops a command only when a retired slot is free, and each
        // command retires at most one value, so this push cannot fail. Should it ever,
        // leaking is the real-time-safe fallback: freeing here would break the contract.
        if let Err(rtrb::PushError::Full(value)) = self.retired.push(value) {
            ShardCounters::bump(&self.counters.retire_stalls);
            std::mem::forget(value);
        }
        self.retired_since_take = true;
    }
}

impl<R: ShardRoom> Debug for ShardCore<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardCore")
            .field("id", &self.id)
            .field("rooms", &self.rooms.len())
            .finish_non_exhaustive()
    }
}

impl<R: ShardRoom> Debug for Control<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AddRoom(r) => f.debug_tuple("AddRoom").field(&r.id()).finish(),
            Self::RemoveRoom(id) => f.debug_tuple("RemoveRoom").field(id).finish(),
            Self::AddMember(id, _) => f.debug_tuple("AddMember").field(id).finish(),
            Self::RemoveMember(id, m) => f.debug_tuple("RemoveMember").field(id).field(m).finish(),
        }
    }
}

impl<R: ShardRoom> Debug for Retired<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Room(r) => f.debug_tuple("Room").field(&r.id()).finish(),
            Self::RoomRejected(r) => f.debug_tuple("RoomRejected").field(&r.id()).finish(),
            Self::Member(id, _) => f.debug_tuple("Member").field(id).finish(),
            Self::MemberRejected(id, _) => f.debug_tuple("MemberRejected").field(id).finish(),
        }
    }
}

impl<R: ShardRoom> Debug for ShardQueues<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardQueues")
            .field("control_free", &self.control.slots())
            .field("retired_waiting", &self.retired.slots())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::{Relaxed, SeqCst};
    use std::time::Duration;

    use super::super::fake::{FakeMember, FakeRoom, PhaseLog};
    use super::*;

    fn config() -> ShardConfig {
        ShardConfig {
            max_rooms_per_shard: 4,
            control_capacity: 8,
            retired_capacity: 8,
            ..ShardConfig::default()
        }
    }

    fn shard() -> (ShardCore<FakeRoom>, ShardQueues<FakeRoom>) {
        ShardCore::new(ShardId(0), &config())
    }

    fn send(q: &mut ShardQueues<FakeRoom>, c: Control<FakeRoom>) {
        q.control
            .push(c)
            .expect("control queue has room in these tests");
    }

    fn retired(q: &mut ShardQueues<FakeRoom>) -> Vec<String> {
        std::iter::from_fn(|| q.retired.pop().ok())
            .map(|r| match r {
                Retired::Room(r) => format!("room {}", r.id),
                Retired::RoomRejected(r) => format!("room-rejected {}", r.id),
                Retired::Member(room, m) => format!("member {room}/{}", m.id),
                Retired::MemberRejected(room, m) => format!("member-rejected {room}/{}", m.id),
            })
            .collect()
    }

    #[test]
    fn ticks_rooms_in_order_with_the_given_now_and_skips_idle_ones() {
        let (mut core, mut q) = shard();
        let (a, pa) = FakeRoom::new(1);
        let (mut b, pb) = FakeRoom::new(2);
        b.idle = true;
        send(&mut q, Control::AddRoom(Box::new(a)));
        send(&mut q, Control::AddRoom(Box::new(b)));
        let t0 = Instant::now();
        assert_eq!(core.tick(t0), 1);
        assert_eq!(core.tick(t0 + Duration::from_millis(20)), 1);
        assert_eq!(pa.ticks.load(SeqCst), 2);
        assert_eq!(pb.ticks.load(SeqCst), 0);
        let ids: Vec<u64> = core.rooms().map(|r| r.id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(
            core.rooms().next().unwrap().last_now,
            Some(t0 + Duration::from_millis(20))
        );
        assert_eq!(core.counters().rooms.load(Relaxed), 2);
        assert_eq!(core.counters().control_applied.load(Relaxed), 2);
    }

    #[test]
    fn every_room_gathers_before_any_room_mixes() {
        let (mut core, mut q) = shard();
        let log: PhaseLog = Arc::default();
        let mut probes = Vec::new();
        for id in 1..=4 {
            let (mut room, probe) = FakeRoom::new(id);
            room.idle = id == 3;
            room.log = Some(Arc::clone(&log));
            send(&mut q, Control::AddRoom(Box::new(room)));
            probes.push(probe);
        }
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(20);
        assert_eq!(core.tick(t0), 3);
        assert_eq!(core.gather(t1, || t1), 3);
        assert_eq!(core.mix(t1, || t1), 3);
        let calls: Vec<(&str, u64, Instant)> = log.lock().unwrap().clone();
        let want: Vec<(&str, u64, Instant)> = [t0, t1]
            .into_iter()
            .flat_map(|t| {
                let rooms = [1, 2, 4];
                let gathers = rooms.map(|id| ("gather", id, t));
                let ticks = rooms.map(|id| ("tick", id, t));
                gathers.into_iter().chain(ticks)
            })
            .collect();
        assert_eq!(calls, want);
        let counts: Vec<(u64, u64)> = probes
            .iter()
            .map(|p| (p.gathers.load(SeqCst), p.ticks.load(SeqCst)))
            .collect();
        assert_eq!(counts, [(2, 2), (2, 2), (0, 0), (2, 2)]);
    }

    #[test]
    fn control_is_applied_before_the_gather_phase() {
        let (mut core, mut q) = shard();
        let (a, pa) = FakeRoom::new(1);
        send(&mut q, Control::AddRoom(Box::new(a)));
        assert_eq!(core.gather(Instant::now(), Instant::now), 1);
        assert_eq!(pa.gathers.load(SeqCst), 1);
        // Control arriving between the phases waits for the next gather.
        send(&mut q, Control::RemoveRoom(1));
        assert_eq!(core.mix(Instant::now(), Instant::now), 1);
        assert_eq!(pa.ticks.load(SeqCst), 1);
        assert!(core.has_control());
        assert_eq!(core.gather(Instant::now(), Instant::now), 0);
        assert_eq!(retired(&mut q), ["room 1"]);
    }

    #[test]
    fn removed_rooms_and_members_are_retired_not_dropped() {
        let (mut core, mut q) = shard();
        let (a, pa) = FakeRoom::new(1);
        let m = a.member(7);
        let (b, _) = FakeRoom::new(2);
        let (c, _) = FakeRoom::new(3);
        send(&mut q, Control::AddRoom(Box::new(a)));
        send(&mut q, Control::AddRoom(Box::new(b)));
        send(&mut q, Control::AddRoom(Box::new(c)));
        send(&mut q, Control::AddMember(1, Box::new(m)));
        core.tick(Instant::now());
        assert_eq!(pa.members.load(SeqCst), 1);
        send(&mut q, Control::RemoveMember(1, 7));
        send(&mut q, Control::RemoveRoom(2));
        core.tick(Instant::now());
        assert!(core.take_retired_signal());
        assert!(!core.take_retired_signal());
        assert!(pa.dropped_on().is_empty());
        assert_eq!(retired(&mut q), ["member 1/7", "room 2"]);
        // Tick order of the rest is kept.
        let ids: Vec<u64> = core.rooms().map(|r| r.id).collect();
        assert_eq!(ids, [1, 3]);
    }

    #[test]
    fn members_for_unknown_or_full_rooms_come_back_rejected() {
        let (mut core, mut q) = shard();
        let (a, _) = FakeRoom::new(1);
        let members: Vec<FakeMember> = (0..3).map(|i| a.member(i)).collect();
        let stray = a.member(9);
        send(&mut q, Control::AddRoom(Box::new(a)));
        for m in members {
            send(&mut q, Control::AddMember(1, Box::new(m)));
        }
        send(&mut q, Control::AddMember(42, Box::new(stray)));
        core.tick(Instant::now());
        // The fake room holds two members: the third is refused.
        assert_eq!(
            retired(&mut q),
            ["member-rejected 1/2", "member-rejected 42/9"]
        );
        assert_eq!(core.counters().members_rejected.load(Relaxed), 2);
    }

    #[test]
    fn removing_unknown_targets_is_counted() {
        let (mut core, mut q) = shard();
        let (a, _) = FakeRoom::new(1);
        send(&mut q, Control::AddRoom(Box::new(a)));
        send(&mut q, Control::RemoveRoom(5));
        send(&mut q, Control::RemoveMember(1, 3));
        send(&mut q, Control::RemoveMember(5, 3));
        core.tick(Instant::now());
        assert_eq!(core.counters().unknown_targets.load(Relaxed), 3);
        assert!(retired(&mut q).is_empty());
        assert_eq!(core.room_count(), 1);
    }

    #[test]
    fn full_room_list_rejects_the_room_back() {
        let (mut core, mut q) = shard();
        for id in 0..5 {
            send(&mut q, Control::AddRoom(Box::new(FakeRoom::new(id).0)));
        }
        core.tick(Instant::now());
        assert_eq!(core.room_count(), 4);
        assert_eq!(retired(&mut q), ["room-rejected 4"]);
    }

    #[test]
    fn full_retired_queue_holds_commands_back_instead_of_freeing() {
        let cfg = ShardConfig {
            retired_capacity: 1,
            ..config()
        };
        let (mut core, mut q) = ShardCore::<FakeRoom>::new(ShardId(0), &cfg);
        for id in 0..3 {
            send(&mut q, Control::AddRoom(Box::new(FakeRoom::new(id).0)));
        }
        core.tick(Instant::now());
        send(&mut q, Control::RemoveRoom(0));
        send(&mut q, Control::RemoveRoom(1));
        core.tick(Instant::now());
        // One slot: the first removal is retired, the second waits in the control queue.
        assert_eq!(core.room_count(), 2);
        assert!(core.has_control());
        assert_eq!(core.counters().retire_stalls.load(Relaxed), 1);
        assert_eq!(retired(&mut q), ["room 0"]);
        core.tick(Instant::now());
        assert_eq!(retired(&mut q), ["room 1"]);
        assert_eq!(core.room_count(), 1);
    }

    #[test]
    fn control_per_tick_is_bounded() {
        let cfg = ShardConfig {
            control_capacity: 100,
            ..config()
        };
        let (mut core, mut q) = ShardCore::<FakeRoom>::new(ShardId(0), &cfg);
        for id in 0..100 {
            send(&mut q, Control::RemoveRoom(id));
        }
        assert_eq!(core.apply_control(), MAX_CONTROL_PER_TICK);
        assert_eq!(core.apply_control(), 100 - MAX_CONTROL_PER_TICK);
        assert!(!core.has_control());
    }
}
