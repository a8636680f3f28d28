//! Sans-IO call state machines and the calls table: `handle_*(now, …)` in, `poll_*` out.
//!
//! - [`Call`] is one incoming call: incoming → decision (answer | reject | redirect, by the
//!   application or, if it is silent until `deadline - margin`, the configured default) →
//!   establishing/established in either order → terminated with `resultInfo` kept. The
//!   deadline is 15 s from the incoming notification's arrival, 5 s for policy-based
//!   recording invitations.
//! - [`Calls`] is the table keyed by [`CallId`]: routes notifications, ignores duplicates,
//!   counts unknown calls, removes ended calls after a grace period.
//! - Commands to Graph are data ([`ApiCommand`]); results come back through
//!   `handle_api_outcome(now, request, outcome)`; retries are `poll_timeout` values.
//!
//! Drain rule: after any `handle_*`, `decide` or `hang_up`, drain `poll_output` until `None`,
//! then sleep until `poll_timeout` and call `handle_timeout(now)`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use mediabot::call::{CallConfig, CallId, CallOutput, Calls};
//!
//! let t0 = Instant::now();
//! let mut calls = Calls::new(CallConfig::default());
//! calls.handle_incoming(t0, CallId::from("c1"), false);
//! // The application stays silent: the default decision is due 1.5 s before the 15 s deadline.
//! let due = calls.poll_timeout().unwrap();
//! assert_eq!(due - t0, Duration::from_millis(13_500));
//! calls.handle_timeout(due);
//! let mut sent = 0;
//! while let Some(out) = calls.poll_output() {
//!     if let CallOutput::Api(cmd) = out {
//!         assert_eq!(cmd.name(), "reject");
//!         sent += 1;
//!     }
//! }
//! assert_eq!(sent, 1);
//! ```

mod api;
mod config;
mod deadline_index;
mod decision;
mod error;
mod incoming;
mod machine;
mod output;
mod record;
mod registry;
mod state;
pub mod wire;

pub use crate::graph::CallId;
pub use api::{ApiCommand, ApiOutcome, GraphApiError, RequestId, Retry};
pub use config::CallConfig;
pub use deadline_index::DeadlineIndex;
pub use decision::{Action, Answer, Decision, DecisionSource};
pub use error::CallError;
pub use incoming::{CallerKind, IncomingCall, is_policy_recording};
pub use machine::{Call, CallTimings, DecisionRecord, StateDisposition};
pub use output::{CallEvent, CallFailure, CallOutput};
pub use record::{CallRecord, TimingsMs};
pub use registry::{Calls, CallsStats, Disposition};
pub use state::CallPhase;
