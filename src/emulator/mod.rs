//! A local emulator of the Graph calling service, shared by tests and `mediabot emulator`.
//!
//! The heart is [`model::Model`], a sans-IO state machine (inputs `handle_*(now, …)`,
//! outputs `poll_*`) holding every emulated call, its answer window and its history.
//! [`scenario`] builds the scripted callers, [`request`] validates the bot's decisions the
//! way Graph does, [`fault`] holds the fault knobs and [`record`] the call views the control
//! API returns.

pub mod control;
pub mod demo;
pub mod fault;
pub mod identity;
pub mod model;
pub mod notifier;
pub mod record;
pub mod replay;
pub mod request;
pub mod rest;
pub mod scenario;
pub mod server;
pub mod signing;

pub use control::RingRequest;
pub use replay::{ReplayError, ReplayReport};
pub use server::{Emulator, EmulatorConfig, EmulatorError, EmulatorHandle};
