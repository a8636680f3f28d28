//! The bot's HTTPS webhook (axum): Graph posts `commsNotifications` here.
//!
//! - `POST {callback_path}` (the bot's registered calling webhook, default `/api/calling`) and
//!   `POST {callback_path}/calls/{callId}` (the per-call `callbackUri` the answer names).
//! - `Authorization: Bearer <JWT>` is verified first ([`NotificationAuth`]); missing or bad →
//!   401 with a Graph-style error body and `WWW-Authenticate: Bearer`.
//! - Body over the limit (1 MiB by default) → 413; malformed JSON → 400; a legacy Skype-format
//!   body → 204 (Graph then resends it in Graph format, reference §3.1).
//! - A valid batch is pushed into the call driver's bounded inbox and acknowledged with **202
//!   before any work is done**. A full inbox → 503 with `Retry-After: 1`, counted.
//! - `GET /mediabot/v1/calls/{callId}` returns the call's [`CallRecord`] (decision, deadline,
//!   phase, timings); `GET /mediabot/v1/calls` lists them. Read-only, unauthenticated: bind the
//!   bot to a trusted interface or put it behind a proxy that filters `/mediabot/`.
//!
//! No handler panics on input: every failure is a status code with a body.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::mpsc;

use crate::call::{CallId, CallRecord};
use crate::graph::{is_legacy_skype_body, parse_notifications};

use super::call_records::CallRecords;
use super::clock;
use super::driver::DriverInput;
use super::graph_client::BoxFuture;
use super::notification_auth::NotificationVerifier;

/// Default limit on a notification body: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Verifies the `Authorization` header of a notification.
pub trait NotificationAuth: Send + Sync + fmt::Debug {
    /// Checks the header value (`Bearer <JWT>`). `Ok` carries the `tid` claim; `Err` the
    /// HTTP status to answer (401, or 503 when the keys are unavailable) and why.
    fn verify<'a>(
        &'a self,
        authorization: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, AuthRejection>>;
}

/// A refused notification token.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct AuthRejection {
    /// 401, or 503 when the signing keys could not be fetched.
    pub status: u16,
    /// Why.
    pub reason: String,
}

impl NotificationAuth for NotificationVerifier {
    fn verify<'a>(
        &'a self,
        authorization: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, AuthRejection>> {
        Box::pin(async move {
            Self::verify(self, authorization)
                .await
                .map(|t| t.tenant_id)
                .map_err(|e| AuthRejection {
                    status: e.status_code(),
                    reason: e.to_string(),
                })
        })
    }
}

/// Everything the webhook handlers share.
#[derive(Clone, Debug)]
pub struct WebhookState {
    /// Token verification.
    pub auth: Arc<dyn NotificationAuth>,
    /// The call driver's bounded inbox.
    pub inbox: mpsc::Sender<DriverInput>,
    /// Snapshots for the status endpoint.
    pub records: CallRecords,
    /// Counters.
    pub stats: Arc<WebhookStats>,
    /// Body limit in bytes.
    pub max_body: usize,
}

/// Webhook counters.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Batches accepted (202).
    pub accepted: AtomicU64,
    /// Token missing or invalid (401), or keys unavailable (503).
    pub unauthorized: AtomicU64,
    /// Body over the limit (413).
    pub too_large: AtomicU64,
    /// Not a notification batch (400).
    pub malformed: AtomicU64,
    /// Legacy Skype bodies answered 204.
    pub legacy: AtomicU64,
    /// Refused because the driver's inbox was full (503).
    pub inbox_full: AtomicU64,
}

/// A copy of the counters.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct WebhookCounts {
    /// 202s.
    pub accepted: u64,
    /// 401s.
    pub unauthorized: u64,
    /// 413s.
    pub too_large: u64,
    /// 400s.
    pub malformed: u64,
    /// 204s.
    pub legacy: u64,
    /// 503s.
    pub inbox_full: u64,
}

impl WebhookStats {
    /// Reads all counters.
    pub fn snapshot(&self) -> WebhookCounts {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WebhookCounts {
            accepted: r(&self.accepted),
            unauthorized: r(&self.unauthorized),
            too_large: r(&self.too_large),
            malformed: r(&self.malformed),
            legacy: r(&self.legacy),
            inbox_full: r(&self.inbox_full),
        }
    }
}

/// The webhook and status routes. `callback_path` is the global webhook path, e.g.
/// `/api/calling`; per-call callbacks live under `{callback_path}/calls/{callId}`.
pub fn router(state: WebhookState, callback_path: &str) -> Router {
    let base = format!("/{}", callback_path.trim_matches('/'));
    Router::new()
        .route(&base, post(notifications))
        .route(
            &format!("{base}/calls/{{call_id}}"),
            post(call_notifications),
        )
        .route("/mediabot/v1/calls", get(list_calls))
        .route("/mediabot/v1/calls/{call_id}", get(call_status))
        // The body limit is enforced by the handler, which answers with a Graph error body.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Input pushed to the driver for a verified batch.
fn input(
    received: Instant,
    tenant: String,
    batch: crate::graph::CommsNotifications,
) -> DriverInput {
    DriverInput::Notifications {
        received,
        tenant: Some(tenant),
        batch,
    }
}

async fn call_notifications(
    State(st): State<WebhookState>,
    Path(_call_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(st, headers, body).await
}

async fn notifications(State(st): State<WebhookState>, headers: HeaderMap, body: Body) -> Response {
    handle(st, headers, body).await
}

async fn handle(st: WebhookState, headers: HeaderMap, body: Body) -> Response {
    let received = clock::now();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let tenant = match st.auth.verify(authorization).await {
        Ok(tenant) => tenant,
        Err(rejection) => {
            st.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
            tracing::info!(reason = %rejection.reason, "notification token rejected");
            return unauthorized(&rejection);
        }
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.max_body as u64) {
        st.stats.too_large.fetch_add(1, Ordering::Relaxed);
        return too_large(st.max_body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, st.max_body).await else {
        // Over the limit while streaming (or the client gave up mid-body).
        st.stats.too_large.fetch_add(1, Ordering::Relaxed);
        return too_large(st.max_body);
    };
    if is_legacy_skype_body(&bytes) {
        st.stats.legacy.fetch_add(1, Ordering::Relaxed);
        return StatusCode::NO_CONTENT.into_response();
    }
    let batch = match parse_notifications(&bytes) {
        Ok(b) => b,
        Err(e) => {
            st.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return graph_error(StatusCode::BAD_REQUEST, "invalidRequest", &e.to_string());
        }
    };
    match st.inbox.try_send(input(received, tenant, batch)) {
        Ok(()) => {
            st.stats.accepted.fetch_add(1, Ordering::Relaxed);
            StatusCode::ACCEPTED.into_response()
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            st.stats.inbox_full.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("driver inbox full: notification refused with 503");
            let mut r = graph_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "the bot is overloaded; retry",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Err(mpsc::error::TrySendError::Closed(_)) => graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "the bot is shutting down",
        ),
    }
}

async fn call_status(State(st): State<WebhookState>, Path(call_id): Path<String>) -> Response {
    match st.records.get(&CallId::new(call_id)) {
        Some(record) => axum::Json(record).into_response(),
        None => graph_error(StatusCode::NOT_FOUND, "itemNotFound", "no such call"),
    }
}

async fn list_calls(State(st): State<WebhookState>) -> axum::Json<Vec<CallRecord>> {
    axum::Json(st.records.all())
}

fn unauthorized(rejection: &AuthRejection) -> Response {
    if rejection.status == 503 {
        let mut r = graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            &rejection.reason,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    }
    let mut r = graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        &rejection.reason,
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

fn too_large(max: usize) -> Response {
    graph_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "requestTooLarge",
        &format!("notification body exceeds {max} bytes"),
    )
}

/// A Graph-style error response: `{"error":{"code","message","innerError":{…}}}`.
pub fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "request-id": uuid::Uuid::new_v4().to_string(),
                "date": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            }
        }
    });
    (status, axum::Json(body)).into_response()
}
