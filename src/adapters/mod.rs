//! Everything that does IO: webhook server, Graph client, token cache, JWT verification,
//! shard threads, clock.

#[cfg(feature = "device")]
pub mod device;
pub mod graph_token;
pub mod jwks;
pub mod notification_auth;
pub mod tls;
