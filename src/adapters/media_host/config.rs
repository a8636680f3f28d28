//! How a media host runs and what it does with each call's media.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::local_participant::LocalParticipant;
use crate::adapters::shard::ShardConfig;
use crate::adapters::webrtc::{MediaTransportConfig, sdp};
use crate::media::codec::{CodecBackend, EncoderConfig};
use crate::media::prompt::{Prompt, PromptError};
use crate::session::registry::RegistryConfig;

/// How a [`MediaHost`](super::MediaHost) runs.
#[derive(Clone, Debug)]
pub struct MediaHostConfig {
    /// Advertised base of `negotiateUri` (scheme, host, port as peers reach the negotiation
    /// endpoint, e.g. behind a NAT or a proxy): `https://bot.example.com:8445`.
    pub negotiate_base: String,
    /// Session expiry and table size.
    pub registry: RegistryConfig,
    /// WebRTC transport: host candidate addresses, public address/port for NAT, timeouts.
    pub transport: MediaTransportConfig,
    /// Shard threads.
    pub shards: ShardConfig,
    /// Slots in each call leg's packet queues (each way; 16 ≈ 320 ms of packets, ~42 KB for
    /// both: the shard drains the inbound queue every 20 ms tick and the egress task the
    /// outbound one within milliseconds — 320 ms is ten times the p99 stalls measured under
    /// load).
    pub leg_queue_capacity: usize,
    /// Largest SDP offer accepted by the negotiation endpoint, in bytes.
    pub max_sdp_bytes: usize,
    /// Encoder settings of every room.
    pub encoder: EncoderConfig,
    /// Codec implementation.
    pub backend: CodecBackend,
    /// Capacity of the event channel returned by [`MediaHost::start`](super::MediaHost::start); events beyond it are
    /// dropped and counted ([`MediaHostStats::events_dropped`](super::MediaHostStats::events_dropped)).
    pub event_capacity: usize,
    /// The person at this machine (a sound device), put into one call at a time: see
    /// [`crate::adapters::local_participant`] for which call gets it. `None`: no one.
    pub local: Option<Arc<dyn LocalParticipant>>,
}

impl Default for MediaHostConfig {
    fn default() -> Self {
        Self {
            negotiate_base: "https://127.0.0.1:8445".into(),
            registry: RegistryConfig::default(),
            transport: MediaTransportConfig::default(),
            shards: ShardConfig::default(),
            leg_queue_capacity: 16,
            max_sdp_bytes: sdp::MAX_SDP_BYTES,
            encoder: EncoderConfig::default(),
            backend: CodecBackend::default(),
            event_capacity: 1024,
            local: None,
        }
    }
}

/// What the bot does with a call's media, set per call at [`MediaHost::create_session`](super::MediaHost::create_session).
///
/// Cheap to clone (the prompt is shared).
#[derive(Clone, Debug, Default)]
pub struct CallBehaviour {
    /// A prompt played once when media connects.
    pub greeting: Option<Arc<Prompt>>,
    /// Echo the caller back after this delay (rounded to 20 ms frames, at most 10 s).
    pub echo_delay: Option<Duration>,
    /// Record the call into this directory (created if missing): one directory per call,
    /// see [`crate::adapters::recording`].
    pub record_dir: Option<PathBuf>,
}

/// [`CallBehaviour`] as configured (paths instead of loaded prompts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BehaviourConfig {
    /// WAV file of the greeting.
    pub greeting: Option<PathBuf>,
    /// Echo delay.
    pub echo_delay: Option<Duration>,
    /// Recording directory.
    pub record_dir: Option<PathBuf>,
}

impl CallBehaviour {
    /// The default bot behaviour: greet with `greeting`, echo the caller after 200 ms, record
    /// into `record_dir`.
    ///
    /// # Errors
    /// The greeting could not be loaded.
    pub fn demo(greeting: &Path, record_dir: Option<PathBuf>) -> Result<Self, PromptError> {
        Self::load(
            &BehaviourConfig {
                greeting: Some(greeting.to_owned()),
                echo_delay: Some(Duration::from_millis(200)),
                record_dir,
            },
            CodecBackend::default(),
            &EncoderConfig::default(),
        )
    }

    /// Loads the greeting (decoded and pre-encoded once, shared by every call).
    ///
    /// # Errors
    /// The greeting could not be loaded.
    pub fn load(
        config: &BehaviourConfig,
        backend: CodecBackend,
        encoder: &EncoderConfig,
    ) -> Result<Self, PromptError> {
        let greeting = match &config.greeting {
            Some(path) => Some(Arc::new(Prompt::from_wav_file(path, backend, encoder)?)),
            None => None,
        };
        Ok(Self {
            greeting,
            echo_delay: config.echo_delay,
            record_dir: config.record_dir.clone(),
        })
    }
}
