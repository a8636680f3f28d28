//! The control API (`/emulator/v1`): ring bots with scripted callers, read calls and their
//! history, hang up, set fault knobs — for tests and bots written in any language.
//!
//! | route | body / query | answer |
//! | --- | --- | --- |
//! | `GET /emulator/v1` | – | 200 URLs (Graph, token, OpenID), app id, secret, tenant |
//! | `POST /emulator/v1/calls` | [`RingRequest`] | 201 `{id, scenario, answerWindowMs, …}` + `Location` |
//! | `GET /emulator/v1/calls` | – | 200 `{"value": [CallSummary…]}` |
//! | `GET /emulator/v1/calls/{id}` | – | 200 [`CallRecord`] (+ `media` when rung with media) / 404 |
//! | `GET /emulator/v1/calls/{id}/media` | – | 200 [`MediaRecord`](super::media::desk::MediaRecord) (state, `blob`, connect time, packets, round trip) / 404 |
//! | `GET /emulator/v1/unmatched` | – | 200 `{"value": [request…]}`: requests for unknown call ids (latest 1000) |
//! | `POST /emulator/v1/calls/{id}/hangup` | – | 202 / 404 / 409 (already terminated) |
//! | `GET /emulator/v1/calls/{id}/wait` | `state`, `outcome`, `settled=true`, `timeoutMs` (default 20000) | 200 record when it holds, 408 record when not |
//! | `GET`/`PUT /emulator/v1/faults` | [`Faults`] | 200 the global knobs |
//! | `POST /emulator/v1/trust` | PEM certificate(s) | 204: notifications trust them |
//! | `POST /emulator/v1/notify` | `{url, appId?, tenantId?, body}` | 200 `{status}`: sign and POST any notification |
//! | `POST /emulator/v1/replay` | `{botUrl, body}` | 200 [`ReplayReport`](super::replay::ReplayReport): take over the saved incoming call, sign and POST it, wait for the bot's decision |
//!
//! Control errors are `{"error": {"code", "message"}}` with 400/404/409.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::fault::Faults;
use super::media::desk::MediaRequest;
use super::model::{ModelError, Ring};
use super::record::CallRecord;
use super::scenario::{Scenario, Script};
use super::server::{EmulatorError, Shared, settled};

/// Body of `POST /emulator/v1/calls` (and the argument of
/// [`EmulatorHandle::ring`](super::EmulatorHandle::ring)).
///
/// ```json
/// { "botUrl": "https://127.0.0.1:9443/api/calling", "scenario": "p2p",
///   "appId": "…", "tenantId": "…", "hangupAfterMs": 3000, "cancelAfterMs": null,
///   "faults": { "throttle": { "count": 1, "retryAfterSecs": 2 } } }
/// ```
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RingRequest {
    /// The bot's calling webhook (https; http is tolerated for local experiments).
    pub bot_url: String,
    /// `p2p` (default), `pstn`, `meeting`, `groupCall` or `policyRecording`.
    #[serde(default)]
    pub scenario: Scenario,
    /// The bot's app id (default: the registered app).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Tenant of the call (default: the emulator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// What the caller does: `hangupAfterMs`, `cancelAfterMs`.
    #[serde(flatten)]
    pub script: Script,
    /// Fault knobs for this call (default: the global ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
    /// The call's media: `{"peer": "emulator"}` (the emulator's media processor joins when
    /// the bot answers with app-hosted media) or `{"peer": "external"}` (the blob is only
    /// handed out, in the call record's `media.blob`); none: no media handling. See
    /// [`super::media::desk`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaRequest>,
}

impl RingRequest {
    /// A `scenario` caller ringing `bot_url`, nothing else set.
    pub fn new(bot_url: impl Into<String>, scenario: Scenario) -> Self {
        Self {
            bot_url: bot_url.into(),
            scenario,
            ..Self::default()
        }
    }

    /// The caller hangs up this long after the call is established.
    #[must_use]
    pub fn hangup_after(mut self, after: Duration) -> Self {
        self.script.hangup_after_ms = Some(duration_ms(after));
        self
    }

    /// The caller gives up ringing this long after the ring.
    #[must_use]
    pub fn cancel_after(mut self, after: Duration) -> Self {
        self.script.cancel_after_ms = Some(duration_ms(after));
        self
    }

    /// Fault knobs for this call.
    #[must_use]
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = Some(faults);
        self
    }

    /// What happens to the call's media when the bot answers.
    #[must_use]
    pub fn media(mut self, media: MediaRequest) -> Self {
        self.media = Some(media);
        self
    }

    /// The model's input, with `default_app_id` when none is given.
    pub(crate) fn into_ring(self, default_app_id: &str) -> Ring {
        Ring {
            bot_url: self.bot_url,
            scenario: self.scenario,
            app_id: self.app_id.unwrap_or_else(|| default_app_id.to_owned()),
            tenant_id: self.tenant_id,
            script: self.script,
            faults: self.faults,
        }
    }
}

/// The control routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/emulator/v1", get(info))
        .route("/emulator/v1/calls", post(ring).get(list))
        .route("/emulator/v1/calls/{id}", get(one))
        .route("/emulator/v1/calls/{id}/media", get(media))
        .route("/emulator/v1/unmatched", get(unmatched))
        .route("/emulator/v1/calls/{id}/hangup", post(hangup))
        .route("/emulator/v1/calls/{id}/wait", get(wait))
        .route("/emulator/v1/faults", get(get_faults).put(put_faults))
        .route("/emulator/v1/trust", post(trust))
        .route("/emulator/v1/notify", post(notify))
        .route("/emulator/v1/replay", post(replay))
        .with_state(shared)
}

async fn info(State(s): State<Arc<Shared>>) -> Response {
    let base = s.base_url();
    let app = &s.app;
    axum::Json(json!({
        "graphUrl": format!("{base}/v1.0"),
        "betaUrl": format!("{base}/beta"),
        "tokenUrl": format!("{base}/{}/oauth2/v2.0/token", app.tenant_id),
        "openIdConfigurationUrl": format!("{base}/v1/.well-known/OpenIdConfiguration"),
        "jwksUrl": format!("{base}/v1/keys"),
        "controlUrl": format!("{base}/emulator/v1"),
        "appId": app.client_id,
        "appSecret": app.client_secret,
        "tenantId": app.tenant_id,
        "notificationIssuer": s.identity.notification_issuer(),
        "scenarios": Scenario::ALL.map(Scenario::name),
    }))
    .into_response()
}

async fn ring(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: RingRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, "invalidRequest", &e.to_string()),
    };
    match s.ring(req) {
        Ok(id) => {
            let m = s.model();
            let Some(c) = m.call(&id) else {
                return control_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "call vanished",
                );
            };
            let location = format!("/emulator/v1/calls/{id}");
            (
                StatusCode::CREATED,
                [(header::LOCATION, location.clone())],
                axum::Json(json!({
                    "id": id,
                    "scenario": c.scenario,
                    "botUrl": c.bot_url,
                    "appId": c.app_id,
                    "tenantId": c.tenant_id,
                    "answerWindowMs": c.answer_window.as_millis() as u64,
                    "callUrl": location,
                    "graphPath": format!("/v1.0/communications/calls/{id}"),
                })),
            )
                .into_response()
        }
        Err(e) => emulator_error(&e),
    }
}

async fn list(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(json!({ "value": s.model().calls() })).into_response()
}

async fn unmatched(State(s): State<Arc<Shared>>) -> Response {
    let m = s.model();
    let value: Vec<_> = m.unmatched_requests().collect();
    axum::Json(json!({ "value": value })).into_response()
}

async fn one(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let record = s.model().call(&id).map(serde_json::to_value);
    match record {
        Some(Ok(mut v)) => {
            if let (Some(obj), Some(m)) = (v.as_object_mut(), s.media.record(&id)) {
                obj.insert("media".into(), json!(m));
            }
            axum::Json(v).into_response()
        }
        Some(Err(e)) => control_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
        None => unknown(&id),
    }
}

async fn media(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match s.media.record(&id) {
        Some(m) => axum::Json(m).into_response(),
        None if s.model().call(&id).is_some() => control_error(
            StatusCode::NOT_FOUND,
            "noMedia",
            "this call was rung without media",
        ),
        None => unknown(&id),
    }
}

async fn hangup(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match s.hangup(&id) {
        Ok(()) => (StatusCode::ACCEPTED, axum::Json(json!({ "id": id }))).into_response(),
        Err(e) => emulator_error(&e),
    }
}

/// Query of `GET /emulator/v1/calls/{id}/wait`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WaitQuery {
    state: Option<String>,
    outcome: Option<String>,
    #[serde(default)]
    settled: bool,
    timeout_ms: Option<u64>,
}

async fn wait(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Response {
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(20_000).min(600_000));
    let pred = |c: &CallRecord| {
        let matches = |have: String, want: &Option<String>| {
            want.as_deref().is_none_or(|w| have.eq_ignore_ascii_case(w))
        };
        matches(name(&c.state), &q.state)
            && matches(name(&c.outcome), &q.outcome)
            && (!q.settled || settled(c))
    };
    match s.wait_until(&id, pred, timeout).await {
        Ok(c) => axum::Json(c).into_response(),
        Err(EmulatorError::Timeout { .. }) => match s.model().call(&id) {
            Some(c) => (StatusCode::REQUEST_TIMEOUT, axum::Json(c)).into_response(),
            None => unknown(&id),
        },
        Err(e) => emulator_error(&e),
    }
}

async fn get_faults(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(s.model().default_faults().clone()).into_response()
}

async fn put_faults(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            s.model().set_default_faults(f.clone());
            axum::Json(f).into_response()
        }
        Err(e) => control_error(StatusCode::BAD_REQUEST, "invalidRequest", &e.to_string()),
    }
}

async fn trust(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&body)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return control_error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "the body must hold at least one PEM certificate",
        );
    }
    for c in certs {
        if let Err(e) = s.notifier().trust(c) {
            return control_error(StatusCode::BAD_REQUEST, "invalidRequest", &e.to_string());
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Body of `POST /emulator/v1/notify`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotifyRequest {
    url: String,
    app_id: Option<String>,
    tenant_id: Option<String>,
    body: Value,
}

async fn notify(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: NotifyRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, "invalidRequest", &e.to_string()),
    };
    let app_id = req.app_id.unwrap_or_else(|| s.app.client_id.clone());
    let tenant_id = req.tenant_id.unwrap_or_else(|| s.app.tenant_id.clone());
    match s
        .notifier()
        .post_raw(&req.url, &app_id, &tenant_id, &req.body)
        .await
    {
        Ok(status) => axum::Json(json!({ "status": status })).into_response(),
        Err(e) => control_error(StatusCode::BAD_GATEWAY, "deliveryFailed", &e),
    }
}

/// Body of `POST /emulator/v1/replay`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplayRequest {
    bot_url: String,
    body: Value,
}

async fn replay(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: ReplayRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, "invalidRequest", &e.to_string()),
    };
    let raw = req.body.to_string();
    match super::replay::replay(&s, &req.bot_url, raw.as_bytes()).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(super::replay::ReplayError::Parse(m)) => {
            control_error(StatusCode::BAD_REQUEST, "invalidRequest", &m)
        }
        Err(super::replay::ReplayError::Emulator(EmulatorError::Delivery { url, reason })) => {
            control_error(
                StatusCode::BAD_GATEWAY,
                "deliveryFailed",
                &format!("{url}: {reason}"),
            )
        }
        Err(super::replay::ReplayError::Emulator(e)) => emulator_error(&e),
    }
}

fn emulator_error(e: &EmulatorError) -> Response {
    match e {
        EmulatorError::Model(ModelError::UnknownCall(id)) => unknown(id),
        EmulatorError::Model(ModelError::Terminated(_)) => {
            control_error(StatusCode::CONFLICT, "terminated", &e.to_string())
        }
        EmulatorError::Model(_) => {
            control_error(StatusCode::BAD_REQUEST, "invalidRequest", &e.to_string())
        }
        _ => control_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

fn unknown(id: &str) -> Response {
    control_error(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        &format!("no call with id {id}"),
    )
}

fn control_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The control API's spelling of a record enum (`established`, `timedOut`, …).
fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
