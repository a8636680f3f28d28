//! A local emulator of the Graph calling service, shared by tests and `mediabot emulator`.

pub mod identity;
pub mod signing;
