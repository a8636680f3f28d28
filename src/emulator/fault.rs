//! Fault knobs: ways the emulated Graph service misbehaves on purpose, so a bot's retry,
//! deadline and ordering logic can be tested.
//!
//! A [`Faults`] value is set per call when it rings (the control API's `faults` field) or
//! globally (it then becomes the default for calls rung afterwards). The model keeps a
//! [`FaultState`] per call that counts down the injected errors.
//!
//! JSON shape (control API), every field optional:
//!
//! ```json
//! { "throttle": { "count": 2, "retryAfterSecs": 2 },
//!   "serverError": { "status": 503, "count": 1, "untilMs": 20000, "retryAfterSecs": 1 },
//!   "delayMs": 250, "reorder": true, "duplicate": true }
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Misbehaviour injected into one call's REST requests and notifications.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Answer the first `count` Graph requests on the call with 429 and `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
    /// Answer Graph requests on the call with a 5xx, `count` times and/or until a time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_error: Option<ServerErrors>,
    /// Delay every REST response on the call by this many milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Send `established` before `establishing` (the docs warn they may arrive out of order).
    pub reorder: bool,
    /// Deliver every notification of the call twice (same body, back to back).
    pub duplicate: bool,
}

/// 429 Too Many Requests, `count` times, with a `Retry-After` header.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttle {
    /// How many requests get a 429 before the service behaves again.
    pub count: u32,
    /// Value of `Retry-After` in (possibly fractional) seconds.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: f64,
}

/// 5xx answers, `count` times, or until `until_ms` after the call rang, or both (whichever
/// lasts longer ends them: a request fails while either condition holds).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerErrors {
    /// HTTP status to return (500–599; other values are clamped to 500).
    #[serde(default = "default_server_status")]
    pub status: u16,
    /// How many requests fail (`None`: only `until_ms` decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Requests arriving earlier than this many milliseconds after the ring fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// Optional `Retry-After` in seconds (Graph sends it with some 503s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<f64>,
}

/// What the fault layer decided for one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Injected {
    /// Answer 429 with this `Retry-After`.
    Throttled(Duration),
    /// Answer with this 5xx status and optional `Retry-After`.
    ServerError(u16, Option<Duration>),
}

/// A call's fault knobs plus the counters consumed so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultState {
    faults: Faults,
    throttled: u32,
    server_errors: u32,
}

impl FaultState {
    /// Starts counting for `faults`.
    pub fn new(faults: Faults) -> Self {
        Self {
            faults,
            throttled: 0,
            server_errors: 0,
        }
    }

    /// The knobs this call was rung with.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Decides whether the request arriving `since_ring` after the ring gets an injected error.
    /// Throttling is consumed first, then server errors.
    pub fn on_request(&mut self, since_ring: Duration) -> Option<Injected> {
        if let Some(t) = self.faults.throttle
            && self.throttled < t.count
        {
            self.throttled += 1;
            return Some(Injected::Throttled(secs(t.retry_after_secs)));
        }
        if let Some(e) = self.faults.server_error {
            let by_count = e.count.is_some_and(|n| self.server_errors < n);
            let by_time = e
                .until_ms
                .is_some_and(|ms| since_ring < Duration::from_millis(ms));
            if by_count || by_time {
                self.server_errors += 1;
                let status = if (500..=599).contains(&e.status) {
                    e.status
                } else {
                    500
                };
                return Some(Injected::ServerError(status, e.retry_after_secs.map(secs)));
            }
        }
        None
    }

    /// Extra latency added to every REST response on the call.
    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.faults.delay_ms.unwrap_or(0))
    }
}

/// Seconds as a `Duration`, clamping negative, NaN and absurd values to 0..=1 hour.
fn secs(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(3600.0))
    } else {
        Duration::ZERO
    }
}

fn default_retry_after() -> f64 {
    1.0
}

fn default_server_status() -> u16 {
    503
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_count_times_then_passes() {
        let mut s = FaultState::new(Faults {
            throttle: Some(Throttle {
                count: 2,
                retry_after_secs: 2.0,
            }),
            ..Faults::default()
        });
        let t = Duration::ZERO;
        assert_eq!(
            s.on_request(t),
            Some(Injected::Throttled(Duration::from_secs(2)))
        );
        assert_eq!(
            s.on_request(t),
            Some(Injected::Throttled(Duration::from_secs(2)))
        );
        assert_eq!(s.on_request(t), None);
    }

    #[test]
    fn server_errors_until_a_time() {
        let mut s = FaultState::new(Faults {
            server_error: Some(ServerErrors {
                status: 503,
                count: None,
                until_ms: Some(20_000),
                retry_after_secs: None,
            }),
            ..Faults::default()
        });
        assert_eq!(
            s.on_request(Duration::from_secs(19)),
            Some(Injected::ServerError(503, None))
        );
        assert_eq!(s.on_request(Duration::from_secs(20)), None);
    }

    #[test]
    fn server_error_once_then_success_and_bad_status_clamped() {
        let mut s = FaultState::new(Faults {
            server_error: Some(ServerErrors {
                status: 200,
                count: Some(1),
                until_ms: None,
                retry_after_secs: Some(-3.0),
            }),
            ..Faults::default()
        });
        assert_eq!(
            s.on_request(Duration::ZERO),
            Some(Injected::ServerError(500, Some(Duration::ZERO)))
        );
        assert_eq!(s.on_request(Duration::ZERO), None);
    }

    #[test]
    fn parses_control_json() {
        let f: Faults = serde_json::from_str(
            r#"{"throttle":{"count":1},"serverError":{"count":2},"delayMs":5,"reorder":true}"#,
        )
        .unwrap();
        assert_eq!(f.throttle.unwrap().retry_after_secs, 1.0);
        assert_eq!(f.server_error.unwrap().status, 503);
        assert_eq!(f.delay_ms, Some(5));
        assert!(f.reorder && !f.duplicate);
    }
}
