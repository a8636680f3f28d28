//! Everything that does IO: webhook server, Graph client, token cache, JWT verification,
//! shard threads, WebRTC transport, media sessions and their negotiation endpoint, recording
//! writers, clock.

pub mod bot;
pub mod call_handler;
pub mod call_records;
pub mod call_room;
pub mod clock;
pub mod demo_handler;
#[cfg(feature = "device")]
pub mod device;
pub mod driver;
pub mod graph_client;
pub mod graph_token;
pub mod jwks;
pub mod local_participant;
pub mod malloc_arenas;
pub mod media_bot;
pub mod media_handler;
pub mod media_host;
pub mod memory_trim;
pub mod metrics;
pub mod negotiation;
pub mod notification_auth;
pub mod process_stats;
pub mod recording;
pub mod serve_command;
pub mod shard;
pub mod tenant_tokens;
pub mod tls;
pub mod webhook;
pub mod webrtc;
