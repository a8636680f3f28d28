//! Counters of everything a [`super::JitterBuffer`] did with its packets and its ticks.
//!
//! Two identities always hold, which is what makes every frame accounted for:
//! - packets: `received == accepted + duplicate + late + overflow + stray`
//!   (a [`super::PushOutcome::Resync`] packet is counted in `accepted`);
//! - ticks: `pops == played + concealed + silence` (one [`super::Playout`] per pop).
//!
//! And, while the buffer is playing, each frame of the stream's timeline that the playout
//! head passes is exactly one of: played, `dropped` (discarded to shorten the delay) or
//! `lost` (missing at its playout time: concealed, or silent past the concealment limit).
//!
//! Concealment splits the same way: `concealed = inserted + paused_concealed +
//! pending_concealed + (concealed frames of real losses)`, where a run of missing frames is a
//! pause or a loss only in retrospect, once the next packet has played (until then its
//! concealed frames are `pending_concealed`).

use std::time::Duration;

/// Jitter-buffer counters (cumulative since construction or [`super::JitterBuffer::reset`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets given to `push`, whatever their outcome.
    pub received: u64,
    /// Packets stored for playout (including those that started a new timeline on a resync).
    pub accepted: u64,
    /// Packets whose media time was already buffered or played: dropped.
    pub duplicate: u64,
    /// Packets that arrived after their frame had played: dropped.
    pub late: u64,
    /// Packets too far ahead of the playout point for the buffer's capacity, or larger than a
    /// slot's inline payload (320 bytes) while every spill slot was taken: dropped.
    pub overflow: u64,
    /// The large packets among `overflow` (dropped for want of a spill slot).
    pub oversize: u64,
    /// Packets that did not fit the current stream (another SSRC, an absurd timestamp): held
    /// as a resync candidate, and dropped unless the next packet confirms a new timeline.
    pub stray: u64,
    /// Timeline restarts: a new SSRC, a timestamp jump, or a stream that came back after it
    /// had gone silent on a different timeline.
    pub resyncs: u64,
    /// Packets with a sequence number inconsistent with their timestamp (the timeline follows
    /// timestamps, so these are still played; counted so a misbehaving sender is visible).
    pub seq_jumps: u64,
    /// Buffered packets discarded by a resync or a reset.
    pub flushed: u64,
    /// Calls to `pop`.
    pub pops: u64,
    /// `Playout::Packet` results.
    pub played: u64,
    /// Frames whose packet was missing when their playout time came.
    pub lost: u64,
    /// The frames among `lost` found afterwards to be a pause of the sender, not a loss: a
    /// sender that sends nothing while silent (discontinuous transmission) advances its
    /// timestamps but not its sequence numbers, so when the next packet plays, of the run of
    /// `n` missing frames since the last one only as many as the sequence numbers skipped
    /// (`k`) had a packet; the other `n - k` were a pause (none if `k > n`: a sequence
    /// jump). `lost - sender_paused` is what the network (or the sender) really lost, plus
    /// the last run of a stream that has ended (no next packet tells).
    pub sender_paused: u64,
    /// The frames among `sender_paused` that were concealed ([`super::Playout::Conceal`]),
    /// the others being silence past the concealment limit: concealment the sender's pause
    /// caused, not a loss. In a run with `k` lost packets, the `k` losses are taken to be
    /// among its concealed frames (the run's concealed frames minus `k`: never overstated).
    pub paused_concealed: u64,
    /// The concealed frames of the current run of missing frames (since the last packet
    /// played), not yet known to be a pause or a loss — the next packet played tells. A
    /// gauge, not a running count: it returns to 0 when a packet plays, and a stream that
    /// has ended leaves its last run here.
    pub pending_concealed: u64,
    /// `Playout::Conceal` results (lost frames within the concealment limit, plus insertions).
    pub concealed: u64,
    /// `Playout::Conceal` results that offered in-band FEC from the next packet.
    pub fec_recovered: u64,
    /// Conceal frames inserted (without consuming a packet) to grow the delay to the target.
    pub inserted: u64,
    /// Packets discarded unplayed to shrink the delay to the target.
    pub dropped: u64,
    /// `Playout::Silence` results (not started, buffering, or past the concealment limit).
    pub silence: u64,
    /// Delay of the frame at the playout point at the last `pop`: time since the packet
    /// would have arrived on the fastest recently observed path.
    pub current_delay: Duration,
    /// The adaptive target delay at the last `pop`.
    pub target_delay: Duration,
}
