//! The emulated Graph REST surface: `/v1.0` (and `/beta`) `communications/calls` routes over
//! the model, with Graph's status codes, error bodies and headers.
//!
//! | route | success |
//! | --- | --- |
//! | `POST /{v}/communications/calls/{id}/answer` | 202, no body |
//! | `POST /{v}/communications/calls/{id}/reject` | 202, no body |
//! | `POST /{v}/communications/calls/{id}/redirect` | 202, no body |
//! | `DELETE /{v}/communications/calls/{id}` | 204 |
//! | `GET /{v}/communications/calls/{id}` | 200 + call |
//!
//! Other call actions (`transfer`, `keepAlive`, …) answer 501 `notSupported`. Errors carry
//! Graph's body `{"error":{"code","message","innerError":{"request-id","client-request-id",
//! "date"}}}`; every response echoes `client-request-id` (or makes one up) and carries a
//! `request-id`; 429 and some 5xx carry `Retry-After` in seconds. The rules behind the status
//! codes are in [`super::model`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::graph::GraphErrorBody;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::model::{ApiRequest, ApiResponse, Op, Reply};
use super::server::Shared;

/// Request headers copied into a call's history (lower-case).
pub const RECORDED_HEADERS: [&str; 8] = [
    "authorization",
    "client-request-id",
    "content-type",
    "user-agent",
    "scenario-id",
    "sdkversion",
    "return-client-request-id",
    "prefer",
];

/// The Graph routes, for both API versions.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut r = Router::new();
    for v in ["v1.0", "beta"] {
        r = r
            .route(
                &format!("/{v}/communications/calls/{{id}}"),
                get(call_resource).delete(call_resource),
            )
            .route(
                &format!("/{v}/communications/calls/{{id}}/{{action}}"),
                post(call_action),
            );
    }
    r.with_state(shared)
}

async fn call_resource(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let op = if method == Method::DELETE {
        Op::Delete
    } else {
        Op::Get
    };
    serve(&s, op, id, &method, &uri, &headers, body).await
}

async fn call_action(
    State(s): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let op = match action.to_ascii_lowercase().as_str() {
        "answer" => Op::Answer,
        "reject" => Op::Reject,
        "redirect" => Op::Redirect,
        _ => {
            let resp = ApiResponse {
                status: 501,
                body: Reply::Error {
                    code: "notSupported".into(),
                    message: format!("The emulator does not implement call action {action:?}."),
                },
                retry_after: None,
                delay: Duration::ZERO,
            };
            return render(resp, &headers);
        }
    };
    serve(&s, op, id, &method, &uri, &headers, body).await
}

async fn serve(
    s: &Arc<Shared>,
    op: Op,
    call_id: String,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    // The request's arrival (body read): where the bot's decision latency ends.
    let received = Instant::now();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = s
        .identity
        .validate_access_token(authorization)
        .map_err(|e| e.to_string());
    let tenant = token.as_ref().ok().map(|info| info.tenant_id.clone());
    let auth = token.map(|info| info.app_id);
    // An accepted answer hands the bot's media blob to the media desk.
    let answered = (op == Op::Answer).then(|| (call_id.clone(), body.clone()));
    let req = ApiRequest {
        op,
        call_id,
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: recorded_headers(headers),
        body: body.to_vec(),
        auth,
        tenant,
    };
    let resp = s.model().handle_request(received, req);
    s.pump();
    if let Some((id, body)) = answered
        && resp.status == 202
    {
        s.media.on_answer(s, &id, &body);
    }
    if !resp.delay.is_zero() {
        tokio::time::sleep(resp.delay).await;
    }
    render(resp, headers)
}

/// The headers of interest; `authorization` keeps only its scheme.
fn recorded_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    RECORDED_HEADERS
        .iter()
        .filter_map(|name| {
            let v = headers.get(*name)?.to_str().ok()?;
            let v = if *name == "authorization" {
                match v.split_once(' ') {
                    Some((scheme, _)) => format!("{scheme} …"),
                    None => "…".to_owned(),
                }
            } else {
                v.to_owned()
            };
            Some(((*name).to_owned(), v))
        })
        .collect()
}

/// Turns the model's reply into an HTTP response with Graph's headers and error body.
fn render(resp: ApiResponse, req_headers: &HeaderMap) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = req_headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = match resp.body {
        Reply::Empty => Response::new(Body::empty()),
        Reply::Json(v) => axum::Json(v).into_response(),
        Reply::Error { code, message } => {
            let body = if resp.status == 429 {
                GraphErrorBody::too_many_requests()
            } else {
                GraphErrorBody::new(code, message)
            };
            let body = body.with_request_ids(
                request_id.clone(),
                Some(client_request_id.clone()),
                graph_date(SystemTime::now()),
            );
            axum::Json(body).into_response()
        }
    };
    *out.status_mut() = status;
    let h = out.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&client_request_id) {
        h.insert("client-request-id", v);
    }
    if let Some(after) = resp.retry_after
        && let Ok(v) = HeaderValue::from_str(&retry_after(after))
    {
        h.insert(header::RETRY_AFTER, v);
    }
    out
}

/// `Retry-After` seconds: whole numbers plain (`2`), fractions with 3 decimals (`2.128`).
pub fn retry_after(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.3}", d.as_secs_f64())
    }
}

/// Graph's `innerError.date`: `2022-04-11T14:57:59` (UTC, no zone suffix).
fn graph_date(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .trim_end_matches('Z')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_formats() {
        assert_eq!(retry_after(Duration::from_secs(2)), "2");
        assert_eq!(retry_after(Duration::from_millis(2128)), "2.128");
    }

    #[test]
    fn authorization_is_redacted() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer secret.token"),
        );
        h.insert("client-request-id", HeaderValue::from_static("abc"));
        let r = recorded_headers(&h);
        assert_eq!(r["authorization"], "Bearer …");
        assert_eq!(r["client-request-id"], "abc");
    }

    #[test]
    fn graph_date_has_no_zone() {
        let d = graph_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_649_689_079));
        assert_eq!(d, "2022-04-11T14:57:59");
    }
}
