//! Media sessions as data: the blob a bot puts in its answer and the table of sessions waiting
//! for (or past) their WHIP-style negotiation.
//!
//! When the bot answers a call with app-hosted media, its answer carries
//! `appHostedMediaConfig.blob`: a [`blob::MediaSessionBlob`] serialized as JSON (version 1).
//! Whoever hosts the other end of the call's media (Teams' media processor, the emulator, a
//! browser) reads it, `POST`s its SDP offer to `negotiateUri` with `Authorization: Bearer
//! <token>` and gets the SDP answer back (`201 Created`). The [`registry::SessionRegistry`]
//! decides every outcome of that exchange — which session, whose token, too late, already
//! negotiated — without doing any IO: time comes in as `now`.
//!
//! The HTTP routes live in [`crate::adapters::negotiation`]; the host that turns a negotiated
//! session into a call leg in a room on a shard lives in [`crate::adapters::media_host`]. The
//! README section "Media sessions (blob v1)" is the wire contract for other WebRTC peers.
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use mediabot::graph::CallId;
//! use mediabot::session::blob::MediaSessionBlob;
//! use mediabot::session::registry::{RegistryConfig, SessionRegistry};
//!
//! let mut sessions = SessionRegistry::new(RegistryConfig::default());
//! let now = Instant::now();
//! let created = sessions.create(now, CallId::from("call-1"))?;
//! let blob = MediaSessionBlob::new(
//!     &created.session_id,
//!     &created.token,
//!     "https://bot.example.com:8445",
//!     SystemTime::now() + Duration::from_secs(60),
//! );
//! let json = blob.to_json();
//! let parsed = MediaSessionBlob::parse(&json)?;
//! assert_eq!(parsed, blob);
//! // The media processor presents the token with its offer:
//! let call = sessions.begin_offer(now, &parsed.session_id, parsed.token.as_str())?;
//! assert_eq!(call.as_str(), "call-1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod blob;
pub mod registry;
pub mod token;
