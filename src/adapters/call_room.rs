//! The room the shard ticks for one answered call: the mixing [`Room`] plus what the call's
//! behaviour adds around it, the ring of the call's egress, and counters the host can read.
//!
//! Each tick, on the shard thread, in the shard's two phases:
//! 1. **gather** ([`ShardRoom::gather`], run for every room on the shard first): the room
//!    takes its inputs ([`Room::gather`]: the call leg pulls its jitter buffer and decodes,
//!    the echo member plays its delayed frame, the prompt steps);
//! 2. **tick** ([`ShardRoom::tick`], then for every room in the same order):
//!    1. the room mixes ([`Room::mix`]: prompt / echo / leg are mixed, the leg's packet is
//!       queued for the transport, the recorder tap reports, the echo member takes the
//!       caller's decoded frame — see [`crate::media::echo::EchoMember`]);
//!    2. the leg's and the echo's counters are published to [`CallCounters`] (relaxed atomic
//!       stores);
//!    3. the call's [`EgressSignal`] is rung, so the packet is written at once.
//!
//! Each phase runs at the room's own start of it (one clock reading per room and phase, not
//! the shard's reading for the whole tick), so the outbound packet's `arrival` stamp is the
//! moment this room's frame is mixed and encoded: the egress's `queue_to_write` histogram
//! measures frame ready → `write_rtp`, without the rooms mixed before this one on the same
//! shard. The inbound side, packet in → decoded frame ready, is bounded by the tick's
//! deadline → end of the decode phase (`ShardStats::deadline_to_decoded`): no room's decode
//! waits for another room's encode.
//!
//! # Realtime Safety
//! [`CallRoom::new`] allocates (off-shard). [`ShardRoom::gather`] and [`ShardRoom::tick`] copy
//! frames in place, store atomics and make one non-blocking `send(2)`: no allocation, no lock,
//! no await.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use super::shard::ShardRoom;
use super::webrtc::EgressSignal;
use crate::media::member::{Member, MemberKind};
use crate::media::room::{MemberId, Room, RoomId};

/// Counters of one call's media as seen by its room, published every tick.
#[derive(Debug, Default)]
pub struct CallCounters {
    ticks: AtomicU64,
    received: AtomicU64,
    decodes: AtomicU64,
    concealed: AtomicU64,
    fec: AtomicU64,
    decode_errors: AtomicU64,
    silent_ticks: AtomicU64,
    sent: AtomicU64,
    output_dropped: AtomicU64,
    echo_frames: AtomicU64,
    jitter_lost: AtomicU64,
    jitter_paused: AtomicU64,
    jitter_paused_concealed: AtomicU64,
    jitter_pending_concealed: AtomicU64,
    jitter_inserted: AtomicU64,
    jitter_dropped: AtomicU64,
    jitter_late: AtomicU64,
}

/// A snapshot of [`CallCounters`].
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct CallRoomStats {
    /// Ticks the room ran.
    pub ticks: u64,
    /// Packets the caller leg took from the transport into its jitter buffer.
    pub packets_received: u64,
    /// Packets decoded.
    pub decodes: u64,
    /// Frames concealed (PLC), including after failed decodes.
    pub concealed_frames: u64,
    /// Frames rebuilt from in-band FEC.
    pub fec_frames: u64,
    /// Packets the decoder rejected.
    pub decode_errors: u64,
    /// Ticks with nothing to play from the caller.
    pub silent_ticks: u64,
    /// Packets the room queued for the transport.
    pub packets_sent: u64,
    /// Packets dropped because the transport's queue was full.
    pub output_dropped: u64,
    /// Frames the echo member played.
    pub echo_frames: u64,
    /// Jitter buffer: frames whose packet was missing at its playout time (concealed or
    /// silent), whatever the reason.
    pub jitter_lost: u64,
    /// The frames among `jitter_lost` that were the caller's pause (no sequence gap:
    /// discontinuous transmission), not a loss.
    pub jitter_paused: u64,
    /// The frames among `jitter_paused` that were concealed (the others were silence past
    /// the concealment limit): concealment caused by the caller's pauses, not by loss
    /// (counted in `concealed_frames` too).
    pub jitter_paused_concealed: u64,
    /// Jitter buffer: the concealed frames since the last packet played, not yet known to be
    /// a pause or a loss (in the final figures: the call's last run, after the caller's last
    /// packet).
    pub jitter_pending_concealed: u64,
    /// Jitter buffer: frames inserted to grow its delay towards the target (concealed
    /// without a loss; counted in `concealed_frames` too).
    pub jitter_inserted: u64,
    /// Jitter buffer: packets discarded unplayed to shrink its delay.
    pub jitter_dropped: u64,
    /// Jitter buffer: packets that arrived after their frame had played.
    pub jitter_late: u64,
}

impl CallCounters {
    /// A snapshot.
    pub fn snapshot(&self) -> CallRoomStats {
        CallRoomStats {
            ticks: self.ticks.load(Relaxed),
            packets_received: self.received.load(Relaxed),
            decodes: self.decodes.load(Relaxed),
            concealed_frames: self.concealed.load(Relaxed),
            fec_frames: self.fec.load(Relaxed),
            decode_errors: self.decode_errors.load(Relaxed),
            silent_ticks: self.silent_ticks.load(Relaxed),
            packets_sent: self.sent.load(Relaxed),
            output_dropped: self.output_dropped.load(Relaxed),
            echo_frames: self.echo_frames.load(Relaxed),
            jitter_lost: self.jitter_lost.load(Relaxed),
            jitter_paused: self.jitter_paused.load(Relaxed),
            jitter_paused_concealed: self.jitter_paused_concealed.load(Relaxed),
            jitter_pending_concealed: self.jitter_pending_concealed.load(Relaxed),
            jitter_inserted: self.jitter_inserted.load(Relaxed),
            jitter_dropped: self.jitter_dropped.load(Relaxed),
            jitter_late: self.jitter_late.load(Relaxed),
        }
    }
}

/// One call's room as its shard ticks it.
#[derive(Debug)]
pub struct CallRoom {
    room: Room,
    leg: MemberId,
    echo: Option<MemberId>,
    egress: EgressSignal,
    counters: Arc<CallCounters>,
}

impl CallRoom {
    /// Wraps `room`, whose caller leg is member `leg` and whose echo (if any) is member `echo`.
    /// Returns the room and its counters.
    pub fn new(
        room: Room,
        leg: MemberId,
        echo: Option<MemberId>,
        egress: EgressSignal,
    ) -> (Self, Arc<CallCounters>) {
        let counters = Arc::new(CallCounters::default());
        (
            Self {
                room,
                leg,
                echo,
                egress,
                counters: Arc::clone(&counters),
            },
            counters,
        )
    }

    /// The inner room.
    pub fn room(&self) -> &Room {
        &self.room
    }

    fn publish(&self) {
        let c = &self.counters;
        c.ticks.store(self.room.stats().ticks, Relaxed);
        if let Some(MemberKind::Echo(echo)) = self
            .echo
            .and_then(|id| self.room.member(id))
            .map(Member::kind)
        {
            c.echo_frames.store(echo.frames(), Relaxed);
        }
        let Some(MemberKind::CallLeg(leg)) = self.room.member(self.leg).map(Member::kind) else {
            return;
        };
        let l = leg.counters();
        c.received.store(l.received, Relaxed);
        c.decodes.store(l.decodes, Relaxed);
        c.concealed.store(l.concealments, Relaxed);
        c.fec.store(l.fec_decodes, Relaxed);
        c.decode_errors.store(l.decode_errors, Relaxed);
        c.silent_ticks.store(l.silent_ticks, Relaxed);
        c.sent.store(l.sent, Relaxed);
        c.output_dropped.store(l.output_dropped, Relaxed);
        let j = leg.jitter_stats();
        c.jitter_lost.store(j.lost, Relaxed);
        c.jitter_paused.store(j.sender_paused, Relaxed);
        c.jitter_paused_concealed.store(j.paused_concealed, Relaxed);
        c.jitter_pending_concealed
            .store(j.pending_concealed, Relaxed);
        c.jitter_inserted.store(j.inserted, Relaxed);
        c.jitter_dropped.store(j.dropped, Relaxed);
        c.jitter_late.store(j.late, Relaxed);
    }
}

impl ShardRoom for CallRoom {
    type Id = RoomId;
    type MemberId = MemberId;
    type Member = Member;

    fn id(&self) -> RoomId {
        self.room.id()
    }

    fn gather(&mut self, now: Instant) {
        // `now` is this room's own start of decoding (the shard core hands each room its own).
        self.room.gather(now);
    }

    fn tick(&mut self, now: Instant) {
        // `now` is this room's own start of mixing, so the packet it queues is stamped
        // (`arrival`) when this room's frame is mixed and encoded: `queue_to_write` then
        // measures frame ready → `write_rtp`.
        self.room.mix(now);
        self.publish();
        self.egress.notify();
    }

    fn is_idle(&self) -> bool {
        self.room.is_idle()
    }

    fn add_member(&mut self, member: Box<Member>) -> Result<(), Box<Member>> {
        self.room.add_member(member)
    }

    fn remove_member(&mut self, id: MemberId) -> Option<Box<Member>> {
        self.room.remove_member(id)
    }
}
