//! A local emulator of the Graph calling service, shared by tests and `mediabot emulator`.
//!
//! The heart is [`model::Model`], a sans-IO state machine (inputs `handle_*(now, …)`,
//! outputs `poll_*`) holding every emulated call, its answer window and its history; its
//! rules (status codes, resultInfos, what counts as late) are listed there.
//! [`scenario`] builds the scripted callers, [`request`] validates the bot's decisions the
//! way Graph does, [`fault`] holds the fault knobs and [`record`] the call views the control
//! API returns.
//!
//! The IO around it: [`server`] ([`Emulator::start`] → [`EmulatorHandle`]) serves over HTTPS
//! the Graph REST surface ([`rest`]), the identity routes ([`identity`], keys in [`signing`])
//! and the control API ([`control`]), drives the model's timers, and hands notifications to
//! the [`notifier`], which signs and POSTs them in order per call. [`replay`] sends a saved
//! notification to a bot and reports what it did; [`demo`] runs the emulator and the demo bot
//! together (signaling only). With media: [`media_call`] places one call whose media the
//! emulator's desk joins and reports on, [`media_demo`] is `mediabot demo` (the emulator and
//! the [`MediaBot`](crate::adapters::media_bot::MediaBot) in one process, concurrent calls
//! with real audio) and [`load`] is `mediabot load`. [`media`] is the media processor that
//! joins bots' app-hosted media for rings that ask for it (`RingRequest::media`), as Teams'
//! media processor would. [`stack`] is the shared harness: the emulator and a bot wired to it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use mediabot::emulator::{Emulator, EmulatorConfig, RingRequest};
//! use mediabot::emulator::record::Phase;
//! use mediabot::emulator::scenario::Scenario;
//!
//! let emu = Emulator::start(EmulatorConfig::default()).await?;
//! // Configure the bot with emu.graph_url(), emu.token_url(), emu.openid_url(), emu.app()
//! // and trust emu.certificate(); then trust the bot's certificate here:
//! // emu.trust_bot_certificate(bot_cert)?;
//! let id = emu.ring(RingRequest::new("https://127.0.0.1:9443/api/calling", Scenario::Pstn))?;
//! let call = emu
//!     .wait_until(&id, |c| c.state == Phase::Established, Duration::from_secs(15))
//!     .await?;
//! println!("answered after {:?}", call.decision.and_then(|d| d.after_notification));
//! # Ok(())
//! # }
//! ```

pub mod concealment;
pub mod control;
pub mod demo;
mod emulated_call;
pub mod fault;
pub mod identity;
pub mod load;
pub mod media;
pub mod media_call;
pub mod media_demo;
pub mod model;
pub mod notifier;
pub mod record;
pub mod replay;
pub mod request;
pub mod rest;
pub mod scenario;
pub mod server;
pub mod signing;
pub mod stack;

pub use control::RingRequest;
pub use replay::{ReplayError, ReplayReport};
pub use server::{Emulator, EmulatorConfig, EmulatorError, EmulatorHandle};
