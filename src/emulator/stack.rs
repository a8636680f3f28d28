//! The harness every end-to-end user shares: the emulator and a bot wired to it on loopback
//! HTTPS, each trusting the other's self-signed certificate.
//!
//! [`EmulatorHandle::bot_config`] is the bot configuration that points at an emulator (its
//! registered app's credentials, its Graph, token and OpenID URLs, its certificate as an extra
//! root); [`start_signaling`] starts the emulator and a signaling-only [`Bot`] with it. The
//! signaling demo and `mediabot replay` ([`super::demo::start_pair`]), the integration tests
//! and `benches/signaling.rs` start their pair here; the media stack
//! ([`super::media_demo::start_stack`]) builds its bot from [`EmulatorHandle::bot_config`].
//!
//! ```no_run
//! # async fn run() -> Result<(), mediabot::emulator::stack::StackError> {
//! use std::sync::Arc;
//! use mediabot::adapters::demo_handler::DemoHandler;
//! use mediabot::emulator::stack::start_signaling;
//!
//! let stack = start_signaling(Arc::new(DemoHandler::default()), |cfg| {
//!     cfg.inbox_capacity = 4096;
//! })
//! .await?;
//! println!("bot at {}", stack.bot.webhook_url());
//! stack.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::bot::{Bot, BotConfig, BotError, BotHandle};
use crate::adapters::call_handler::CallHandler;

use super::server::{Emulator, EmulatorConfig, EmulatorError, EmulatorHandle};

/// The emulator and a signaling bot wired to it (each trusts the other's certificate).
#[derive(Debug)]
pub struct SignalingStack {
    /// The emulated Graph calling service.
    pub emulator: EmulatorHandle,
    /// The bot.
    pub bot: BotHandle,
}

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The emulator failed.
    #[error("emulator: {0}")]
    Emulator(#[from] EmulatorError),
    /// The bot failed to start.
    #[error("bot: {0}")]
    Bot(#[from] BotError),
}

impl EmulatorHandle {
    /// A bot configuration pointing at this emulator: its registered app's id, secret and
    /// tenant, its Graph, token and OpenID metadata URLs, and its certificate as an extra
    /// trusted root. Everything else is [`BotConfig::new`]'s default.
    pub fn bot_config(&self) -> BotConfig {
        let app = self.app();
        let mut cfg = BotConfig::new(
            &app.client_id,
            &app.client_secret,
            &app.tenant_id,
            &self.graph_url(),
            &self.token_url(),
            &self.openid_url(),
        );
        cfg.extra_roots = vec![self.certificate().clone()];
        cfg
    }
}

impl SignalingStack {
    /// Stops the bot (waiting up to 1 s for in-flight work), then the emulator.
    pub async fn shutdown(self) {
        self.bot.shutdown(Duration::from_secs(1)).await;
        self.emulator.shutdown().await;
    }
}

/// Starts an emulator with its default configuration and a bot deciding with `handler`,
/// configured from [`EmulatorHandle::bot_config`] and then by `configure` (deadlines, inbox,
/// …), and makes the emulator trust the bot's certificate.
///
/// # Errors
/// The emulator or the bot failing to start.
pub async fn start_signaling(
    handler: Arc<dyn CallHandler>,
    configure: impl FnOnce(&mut BotConfig),
) -> Result<SignalingStack, StackError> {
    let emulator = Emulator::start(EmulatorConfig::default()).await?;
    let mut cfg = emulator.bot_config();
    configure(&mut cfg);
    let bot = Bot::start(cfg, handler).await?;
    emulator.trust_bot_certificate(bot.certificate().clone())?;
    Ok(SignalingStack { emulator, bot })
}
