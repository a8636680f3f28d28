//! A test double with the [`ShardRoom`] shape: counts gathers and ticks, can log them in
//! one list shared by several rooms (to check the phase order), records where it was dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::core::ShardRoom;

/// What a test can observe about a [`FakeRoom`] from outside the shard.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    pub(crate) gathers: AtomicU64,
    pub(crate) ticks: AtomicU64,
    pub(crate) members: AtomicU64,
    /// While set, `tick` waits (holding its shard) until it is cleared.
    pub(crate) hold: AtomicBool,
    /// Set by `tick` while it is waiting on `hold`.
    pub(crate) holding: AtomicBool,
    /// Names of the threads that dropped this room and its members.
    pub(crate) dropped_on: Mutex<Vec<String>>,
}

impl Probe {
    pub(crate) fn dropped_on(&self) -> Vec<String> {
        self.dropped_on.lock().unwrap().clone()
    }
}

#[derive(Debug)]
pub(crate) struct FakeRoom {
    pub(crate) id: u64,
    pub(crate) idle: bool,
    pub(crate) max_members: usize,
    /// Boxed like the real room's members: they move in and out as boxes, never reallocated.
    #[allow(clippy::vec_box)]
    pub(crate) members: Vec<Box<FakeMember>>,
    pub(crate) probe: Arc<Probe>,
    pub(crate) last_now: Option<Instant>,
    /// When set, every `gather` and `tick` appends `("gather" | "tick", id, now)` here.
    pub(crate) log: Option<PhaseLog>,
}

/// Phase calls of several rooms, in the order they happened.
pub(crate) type PhaseLog = Arc<Mutex<Vec<(&'static str, u64, Instant)>>>;

#[derive(Debug)]
pub(crate) struct FakeMember {
    pub(crate) id: u32,
    pub(crate) probe: Arc<Probe>,
}

impl FakeRoom {
    pub(crate) fn new(id: u64) -> (Self, Arc<Probe>) {
        let probe = Arc::new(Probe::default());
        let room = Self {
            id,
            idle: false,
            max_members: 2,
            members: Vec::with_capacity(2),
            probe: Arc::clone(&probe),
            last_now: None,
            log: None,
        };
        (room, probe)
    }

    pub(crate) fn member(&self, id: u32) -> FakeMember {
        FakeMember {
            id,
            probe: Arc::clone(&self.probe),
        }
    }
}

impl ShardRoom for FakeRoom {
    type Id = u64;
    type MemberId = u32;
    type Member = FakeMember;

    fn id(&self) -> u64 {
        self.id
    }

    fn gather(&mut self, now: Instant) {
        self.probe.gathers.fetch_add(1, SeqCst);
        if let Some(log) = &self.log {
            log.lock().unwrap().push(("gather", self.id, now));
        }
    }

    fn tick(&mut self, now: Instant) {
        if let Some(log) = &self.log {
            log.lock().unwrap().push(("tick", self.id, now));
        }
        while self.probe.hold.load(SeqCst) {
            self.probe.holding.store(true, SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.probe.holding.store(false, SeqCst);
        self.last_now = Some(now);
        self.probe.ticks.fetch_add(1, SeqCst);
    }

    fn is_idle(&self) -> bool {
        self.idle
    }

    fn add_member(&mut self, member: Box<FakeMember>) -> Result<(), Box<FakeMember>> {
        if self.members.len() == self.max_members {
            return Err(member);
        }
        self.members.push(member);
        self.probe.members.fetch_add(1, SeqCst);
        Ok(())
    }

    fn remove_member(&mut self, id: u32) -> Option<Box<FakeMember>> {
        let i = self.members.iter().position(|m| m.id == id)?;
        self.probe.members.fetch_sub(1, SeqCst);
        Some(self.members.remove(i))
    }
}

fn record_drop(probe: &Probe, what: &str) {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("?");
    probe
        .dropped_on
        .lock()
        .unwrap()
        .push(format!("{what}@{name}"));
}

impl Drop for FakeRoom {
    fn drop(&mut self) {
        record_drop(&self.probe, "room");
    }
}

impl Drop for FakeMember {
    fn drop(&mut self) {
        record_drop(&self.probe, "member");
    }
}
