//! Everything that does IO: webhook server, Graph client, token cache, JWT verification,
//! shard threads, clock.
pub mod shard;
pub mod webrtc;
