//! Everything that does IO: webhook server, Graph client, token cache, JWT verification,
//! shard threads, clock.

pub mod graph_token;
pub mod notification_auth;
pub mod tls;
