//! A seeded, sans-IO network impairment emulator (in the manner of str0m's `netem`).
//!
//! [`Netem`] sits between a sender and a receiver. Feed it packets with
//! [`Netem::handle_packet`]; take them out, impaired, with [`Netem::poll_packet`] once their
//! delivery time has come; ask [`Netem::poll_timeout`] when that next is. It never reads the
//! clock, never sleeps and draws every random decision from its own generator seeded by
//! [`NetemConfig::seed`], so the same inputs at the same `now`s always give the same outputs:
//! tests drive it on virtual time, and the emulator's media processor can impair real calls
//! with it by passing `Instant::now()`.
//!
//! Impairments, applied to each packet in this order:
//! 1. **Loss**: uniform ([`NetemConfig::loss`]) and bursty Gilbert–Elliott
//!    ([`NetemConfig::burst_loss`]); a packet survives only if neither drops it.
//! 2. **Duplication** ([`NetemConfig::duplicate`]): a second copy travels independently.
//! 3. **Delay**: [`NetemConfig::latency`] plus a uniform jitter in
//!    `±`[`NetemConfig::jitter`] (like `tc netem delay L J`), floored at zero. Packets overtake
//!    each other whenever the jitter exceeds their spacing, so reordering emerges naturally.
//! 4. **Explicit reordering** ([`NetemConfig::reorder`]): the packet is held back a further
//!    [`NetemConfig::reorder_delay`], so that it arrives after packets sent after it.
//!
//! # Realtime Safety
//! Not for shard threads: the delivery queue is a heap that grows with the packets in flight.
//! It is meant for tests and for the emulator's (tokio-side) media processor.

mod loss;
mod rng;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

pub use loss::GilbertElliott;
use loss::LossState;
pub use rng::Rng;

/// What the emulated path does to packets. The default is a perfect path (no delay, no loss).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetemConfig {
    /// Seed of the random generator: the whole run is a function of it.
    pub seed: u64,
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Each packet's delay varies uniformly in `latency ± jitter` (never below zero).
    pub jitter: Duration,
    /// Probability in `[0, 1]` that a packet is lost, independently of the others.
    pub loss: f64,
    /// Bursty loss on top of [`Self::loss`], if set.
    pub burst_loss: Option<GilbertElliott>,
    /// Probability in `[0, 1]` that a packet is also delivered a second time.
    pub duplicate: f64,
    /// Probability in `[0, 1]` that a packet is held back by [`Self::reorder_delay`].
    pub reorder: f64,
    /// Extra delay of a reordered packet.
    pub reorder_delay: Duration,
}

impl Default for NetemConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            burst_loss: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(40),
        }
    }
}

/// Counters of what the emulator did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetemStats {
    /// Packets handed to [`Netem::handle_packet`].
    pub sent: u64,
    /// Packets dropped by uniform or burst loss.
    pub lost: u64,
    /// Extra copies created by duplication.
    pub duplicated: u64,
    /// Packets held back by explicit reordering.
    pub reordered: u64,
    /// Packets (copies included) returned by [`Netem::poll_packet`].
    pub delivered: u64,
}

/// The emulated network path: a seeded impairment model and a delivery queue.
#[derive(Debug)]
pub struct Netem<T> {
    config: NetemConfig,
    rng: Rng,
    burst: LossState,
    queue: BinaryHeap<InFlight<T>>,
    next_id: u64,
    stats: NetemStats,
}

impl<T: Clone> Netem<T> {
    /// An emulator with `config`; its generator is seeded from `config.seed`.
    pub fn new(config: NetemConfig) -> Self {
        Self {
            config,
            rng: Rng::new(config.seed),
            burst: LossState::default(),
            queue: BinaryHeap::new(),
            next_id: 0,
            stats: NetemStats::default(),
        }
    }

    /// Changes the impairments for packets handled from now on (packets in flight keep their
    /// delivery times; the generator is *not* reseeded, so runs stay reproducible).
    pub fn set_config(&mut self, config: NetemConfig) {
        self.config = config;
    }

    /// Sends `packet` into the path at `now`; it is lost, or queued (maybe twice) for delivery.
    pub fn handle_packet(&mut self, now: Instant, packet: T) {
        self.stats.sent += 1;
        let uniform = self.rng.chance(self.config.loss);
        // Always step the burst chain so its state evolves per packet, loss or not.
        let burst = match &self.config.burst_loss {
            Some(model) => self.burst.lose(model, &mut self.rng),
            None => false,
        };
        if uniform || burst {
            self.stats.lost += 1;
            return;
        }
        if self.rng.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            let at = self.delivery_time(now);
            self.enqueue(at, packet.clone());
        }
        let at = self.delivery_time(now);
        self.enqueue(at, packet);
    }

    /// The next packet whose delivery time is at or before `now`, in delivery order (ties in
    /// the order they were queued). Call until `None` after every change of `now`.
    #[must_use]
    pub fn poll_packet(&mut self, now: Instant) -> Option<T> {
        if self.queue.peek()?.at > now {
            return None;
        }
        let item = self.queue.pop()?;
        self.stats.delivered += 1;
        Some(item.packet)
    }

    /// When the next packet is due, or `None` when nothing is in flight. Changes after
    /// [`Self::handle_packet`] and [`Self::poll_packet`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.peek().map(|p| p.at)
    }

    /// Packets currently in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// What the emulator has done so far.
    pub fn stats(&self) -> &NetemStats {
        &self.stats
    }

    /// The current configuration.
    pub fn config(&self) -> &NetemConfig {
        &self.config
    }

    fn delivery_time(&mut self, now: Instant) -> Instant {
        let c = &self.config;
        let jitter = c.jitter.as_secs_f64();
        let offset = (self.rng.next_f64() * 2.0 - 1.0) * jitter;
        let mut delay = (c.latency.as_secs_f64() + offset).max(0.0);
        if self.rng.chance(c.reorder) {
            self.stats.reordered += 1;
            delay += c.reorder_delay.as_secs_f64();
        }
        // Delays are bounded by the configuration, so this cannot overflow in practice;
        // saturate anyway rather than panic on an absurd configuration.
        let delay = Duration::try_from_secs_f64(delay).unwrap_or(Duration::MAX);
        now.checked_add(delay).unwrap_or(now)
    }

    fn enqueue(&mut self, at: Instant, packet: T) {
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push(InFlight { at, id, packet });
    }
}

/// A queued packet; the heap orders by earliest delivery, then by queueing order.
#[derive(Debug)]
struct InFlight<T> {
    at: Instant,
    id: u64,
    packet: T,
}

impl<T> PartialEq for InFlight<T> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.id == other.id
    }
}

impl<T> Eq for InFlight<T> {}

impl<T> PartialOrd for InFlight<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for InFlight<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse so the earliest delivery comes out first.
        (other.at, other.id).cmp(&(self.at, self.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Sends `n` packets 20 ms apart and drains them on virtual time; returns (arrival, id).
    fn run(config: NetemConfig, n: u32) -> (Vec<(Duration, u32)>, NetemStats) {
        let t0 = Instant::now();
        let mut net = Netem::new(config);
        let mut out = Vec::new();
        for i in 0..n {
            let now = t0 + 20 * MS * i;
            while let Some(at) = net.poll_timeout().filter(|at| *at <= now) {
                let p = net.poll_packet(at).expect("due packet");
                out.push((at - t0, p));
            }
            net.handle_packet(now, i);
        }
        while let Some(at) = net.poll_timeout() {
            let p = net.poll_packet(at).expect("due packet");
            out.push((at - t0, p));
        }
        (out, *net.stats())
    }

    #[test]
    fn perfect_path_delivers_everything_in_order_after_latency() {
        let (out, stats) = run(
            NetemConfig {
                latency: 30 * MS,
                ..NetemConfig::default()
            },
            50,
        );
        assert_eq!(out.len(), 50);
        for (i, (at, id)) in out.iter().enumerate() {
            assert_eq!(*id, i as u32);
            assert_eq!(*at, 20 * MS * i as u32 + 30 * MS);
        }
        assert_eq!(stats.delivered, 50);
    }

    #[test]
    fn impairments_are_seeded_and_roughly_as_configured() {
        let config = NetemConfig {
            seed: 11,
            latency: 50 * MS,
            jitter: 30 * MS,
            loss: 0.05,
            burst_loss: Some(GilbertElliott::bursty(0.05, 3.0)),
            duplicate: 0.05,
            reorder: 0.05,
            reorder_delay: 60 * MS,
        };
        let n = 20_000;
        let (a, sa) = run(config, n);
        let (b, _) = run(config, n);
        assert_eq!(a, b, "same seed, same run");
        let (c, _) = run(NetemConfig { seed: 12, ..config }, n);
        assert_ne!(a, c);

        let lost = sa.lost as f64 / f64::from(n);
        assert!((0.08..0.12).contains(&lost), "loss {lost}");
        let dup = sa.duplicated as f64 / (f64::from(n) - sa.lost as f64);
        assert!((0.04..0.06).contains(&dup), "dup {dup}");
        assert_eq!(sa.delivered, u64::from(n) - sa.lost + sa.duplicated);
        // Delays stay in latency ± jitter (+ reorder delay), and packets overtake each other.
        for (at, id) in &a {
            let delay = *at - 20 * MS * *id;
            assert!(delay >= 20 * MS && delay <= 140 * MS, "{delay:?}");
        }
        let overtaken = a.windows(2).filter(|w| w[1].1 < w[0].1).count();
        assert!(overtaken > 1000, "{overtaken}");
        // Delivery order is by time.
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn config_change_applies_to_later_packets_only() {
        let t0 = Instant::now();
        let mut net = Netem::new(NetemConfig {
            latency: 10 * MS,
            ..NetemConfig::default()
        });
        net.handle_packet(t0, 1u8);
        net.set_config(NetemConfig {
            loss: 1.0,
            ..NetemConfig::default()
        });
        net.handle_packet(t0, 2u8);
        assert_eq!(net.in_flight(), 1);
        assert_eq!(net.poll_packet(t0), None);
        assert_eq!(net.poll_timeout(), Some(t0 + 10 * MS));
        assert_eq!(net.poll_packet(t0 + 10 * MS), Some(1));
        assert_eq!(net.poll_timeout(), None);
        assert_eq!(net.stats().lost, 1);
    }
}
