//! The WHIP-style negotiation endpoint (RFC 9725 shape) of a [`MediaHost`]: the media
//! processor (or any WebRTC peer) posts its SDP offer, gets the answer, and deletes the
//! session when it is done.
//!
//! | request | success | failures |
//! | --- | --- | --- |
//! | `POST /media/v1/sessions/{id}`, `Content-Type: application/sdp`, `Authorization: Bearer <blob token>`, body = offer | `201 Created`, `Content-Type: application/sdp`, `Location: /media/v1/sessions/{id}`, body = answer (complete, non-trickle) | 400 bad SDP / no audio / no Opus, 401 missing, wrong or reused token, 404 unknown or expired session, 409 already negotiated, 413 body over the limit, 415 not `application/sdp`, 503 host failure (retry allowed) |
//! | `DELETE /media/v1/sessions/{id}`, `Authorization: Bearer <blob token>` | `200 OK`, empty body: the media session ends | 401 missing or wrong token, 404 unknown, expired or already ended |
//!
//! **Authorization of the session resource.** As in WHIP, the resource named by `Location`
//! is protected by the same bearer token as the offer: `DELETE` needs the blob's token. The
//! token is single use for *offers* only (see [`crate::session::registry`]): after the 201 it
//! still authorizes the `DELETE`.
//!
//! **Error bodies** are Graph-style JSON, `Content-Type: application/json`:
//! `{"error":{"code":"noOpus","message":"the offer's audio does not include opus/48000/2"}}`.
//! `code` is stable ([`NegotiationError::code`], plus `payloadTooLarge` and
//! `unsupportedMediaType`); `message` is for people. A 401 also carries
//! `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750).
//!
//! **Browsers.** `OPTIONS` answers the CORS preflight, and every response carries
//! `Access-Control-Allow-Origin: *` and `Access-Control-Expose-Headers: location`: the
//! endpoint is authorized by the bearer token, never by cookies, so any origin may use it.
//!
//! Nothing here panics on input: unknown paths or ids, missing headers, non-UTF-8 or
//! oversized bodies and hostile SDP all become one of the responses above.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::media_host::MediaHost;
use crate::graph::{GraphErrorBody, GraphErrorDetail};
use crate::session::blob::NEGOTIATE_PATH;
use crate::session::registry::NegotiationError;
use crate::session::token::SessionId;

/// `Content-Type` of offers and answers.
pub const APPLICATION_SDP: &str = "application/sdp";

/// The negotiation routes over `host`, with the body limit of
/// [`super::media_host::MediaHostConfig::max_sdp_bytes`]. Merge it into the bot's HTTPS router
/// (or serve it alone with [`super::tls::serve_https`]).
pub fn router(host: MediaHost) -> Router {
    let limit = host.config().max_sdp_bytes;
    Router::new()
        .route(
            &format!("{NEGOTIATE_PATH}/{{id}}"),
            post(offer).delete(delete).options(preflight),
        )
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_response(cors))
        .with_state(host)
}

async fn offer(
    State(host): State<MediaHost>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(id) = session_id(id) else {
        return refuse(&NegotiationError::UnknownSession);
    };
    let Some(token) = bearer(&headers) else {
        return refuse(&NegotiationError::WrongToken);
    };
    if !is_sdp(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupportedMediaType",
            "the offer must be sent as Content-Type: application/sdp",
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payloadTooLarge",
                &format!(
                    "the offer is larger than {} bytes",
                    host.config().max_sdp_bytes
                ),
            );
        }
        Err(rejection) => {
            return refuse(&NegotiationError::MalformedSdp(rejection.body_text()));
        }
    };
    match host.negotiate_bytes(id.as_str(), token, &body).await {
        Ok(answer) => {
            let location = format!("{NEGOTIATE_PATH}/{id}");
            let mut response = (StatusCode::CREATED, answer).into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(APPLICATION_SDP),
            );
            // A UUID path is always a valid header value.
            if let Ok(v) = HeaderValue::from_str(&location) {
                h.insert(header::LOCATION, v);
            }
            response
        }
        Err(e) => refuse(&e),
    }
}

async fn delete(
    State(host): State<MediaHost>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = session_id(id) else {
        return refuse(&NegotiationError::UnknownSession);
    };
    let Some(token) = bearer(&headers) else {
        return refuse(&NegotiationError::WrongToken);
    };
    match host.delete(id.as_str(), token).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => refuse(&e),
    }
}

/// CORS preflight: browsers ask before a cross-origin POST with `Authorization` and
/// `Content-Type: application/sdp`.
async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

/// Every response may be read by a page of any origin (authorization is the bearer token,
/// never a cookie), and a page may read `Location`.
async fn cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("location"),
    );
    response
}

fn session_id(id: Result<Path<String>, PathRejection>) -> Option<SessionId> {
    let Path(id) = id.ok()?;
    SessionId::parse(&id)
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// True for `application/sdp`, with or without parameters, in any case.
fn is_sdp(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(APPLICATION_SDP))
}

fn refuse(e: &NegotiationError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = error(status, e.code(), &e.to_string());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = GraphErrorBody {
        error: GraphErrorDetail {
            code: code.to_owned(),
            message: message.to_owned(),
            ..GraphErrorDetail::default()
        },
    };
    (status, axum::Json(body)).into_response()
}

/// Compile-time check: the handlers' futures are `Send` (axum needs it).
fn _assert_send(host: MediaHost) {
    fn send<T: Send>(_: T) {}
    send(host.negotiate("", "", ""));
    send(host.delete("", ""));
    send(host.end_session(&crate::graph::CallId::from("x")));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens_are_read_leniently_about_the_scheme_only() {
        assert_eq!(
            bearer(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer(&headers(&[("authorization", "bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(bearer(&headers(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer ")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer")])), None);
        assert_eq!(bearer(&headers(&[])), None);
    }

    #[test]
    fn only_application_sdp_is_an_offer() {
        assert!(is_sdp(&headers(&[("content-type", "application/sdp")])));
        assert!(is_sdp(&headers(&[(
            "content-type",
            "Application/SDP; charset=utf-8"
        )])));
        assert!(!is_sdp(&headers(&[("content-type", "text/plain")])));
        assert!(!is_sdp(&headers(&[])));
    }

    #[test]
    fn refusals_carry_status_code_and_challenge() {
        let r = refuse(&NegotiationError::WrongToken);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
        let r = refuse(&NegotiationError::AlreadyNegotiated);
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            HeaderValue::from_static("application/json")
        );
    }
}
