//! `CallHandler`: the application's side of a call — decide on incoming calls, hear events.

use crate::call::{CallEvent, Decision, IncomingCall};

use super::graph_client::BoxFuture;

/// The application. The bot asks it to decide on each incoming call; if the future has not
/// resolved by `incoming.decide_by` the configured default decision is applied, and a later
/// answer is reported as an error (logged) and not sent.
pub trait CallHandler: Send + Sync + std::fmt::Debug {
    /// Decide on an incoming call. Runs on its own task; must not block.
    fn on_incoming(&self, call: IncomingCall) -> BoxFuture<'static, Decision>;

    /// Every event of every call (decided, accepted, established, terminated, failed, …).
    /// Called on the driver task: keep it short.
    fn on_event(&self, _event: &CallEvent) {}
}
