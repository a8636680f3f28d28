//! # mediabot
//!
//! A Linux-native host for **app-hosted media calling bots**. It speaks the bot side of the
//! Microsoft Graph cloud-communications calling API and hosts the call's media itself, and it
//! ships a local emulator of the Graph calling service so bots can be developed and tested
//! without a tenant.
//!
//! ## Architecture: a sans-IO core and IO adapters
//!
//! The folder says where IO is allowed.
//!
//! | module | role | IO? |
//! | --- | --- | --- |
//! | [`graph`] | the calling API as data: serde models, lenient reading, canonical writing | no |
//! | [`call`] | call state machines and the calls table: `handle_*(now, …)` in, `poll_*` out | no |
//! | [`media`] | the real-time core: frames, packets, jitter buffer, codec, mixer, rooms | no |
//! | [`session`] | media sessions as data: the blob v1, tokens, the negotiation registry | no |
//! | [`adapters`] | webhook server, Graph client, tokens, JWT verification, shard threads, clock | yes |
//! | [`emulator`] | the local Graph calling service: REST, tokens, signed notifications, scenarios | yes |
//! | [`netem`] | seeded network impairment (latency, jitter, bursty loss, reorder, duplication) | no |
//!
//! Core modules never read the clock, never spawn, never touch sockets and never use tokio.
//! They take `now: Instant` as a parameter and return commands as data
//! (`poll_output()`/`poll_timeout()`); adapters execute the commands and feed results back.
//! After any `handle_*` call, drain `poll_*` until it returns `None`.
//!
//! ## Three kinds of time
//!
//! - `now: Instant` — monotonic time, passed into every core call; adapters read it once per
//!   event (the shard reads it once per tick).
//! - RTP media time — 48 kHz ticks, +960 per 20 ms frame (RFC 7587).
//! - Wall clock — only for wire formats (JWT `exp`, `expiresAt`), read at the edges.
//!
//! ## Real-time rules (shard threads)
//!
//! 1. Everything is allocated at construction; after warm-up nothing on a shard thread
//!    allocates or frees (`tests/rt-no-alloc.rs` proves it with a counting allocator).
//! 2. No locks, no `.await`, no blocking syscalls: queues are bounded SPSC and return
//!    full/empty at once. Full means drop and count; empty means conceal or play silence.
//! 3. Queue elements are fixed-size values ([`media::packet::RtpPacket`],
//!    [`media::frame::AudioFrame`]), never `Vec`s.
//! 4. State is built off-thread, moved in through a queue, and sent back out to be dropped.
//!
//! ## Errors and panics
//!
//! Each module has its own error enum; `anyhow` appears only in `main.rs`. Input from the
//! network — notifications, HTTP requests, SDP, RTP, Opus payloads — **never panics the
//! process**: it becomes an HTTP error with a Graph-style body, a counted drop, or a typed
//! error. A panic means a broken internal invariant (a bug). `unwrap()`/`expect()` are used
//! only where the invariant is local and obvious, with a comment saying why it holds.

pub mod adapters;
pub mod call;
pub mod emulator;
pub mod graph;
pub mod media;
pub mod netem;
pub mod session;
