//! The Graph client: executes the call core's [`ApiCommand`]s over HTTPS with reqwest.
//!
//! - One `reqwest::Client` (built by `tls::https_client`, so it trusts the emulator's
//!   certificate when told to), built once.
//! - `Authorization: Bearer` from an [`AccessTokenSource`] (the client-credentials cache,
//!   prefetched at start so the first answer does not pay for a token; per tenant with
//!   [`TenantTokens`](super::tenant_tokens::TenantTokens): a command runs with a token of
//!   its call's tenant), a fresh `client-request-id` per request.
//! - Errors become a typed [`GraphApiError`] `{ status, code, message, retry }`: 429/503/504
//!   honour `Retry-After` (seconds, possibly fractional, or an HTTP-date), other 5xx and
//!   transport errors ask for backoff, other 4xx are never retried.
//! - The client does **not** retry throttling or server errors, nor sleep: the call state
//!   machine schedules those retries as `poll_timeout` values and never past the call's
//!   deadline. A request with a deadline gets a reqwest timeout that ends at the deadline.
//! - The one retry here is for 401 (`InvalidAuthenticationToken`): the cached token was
//!   refused (revoked, signing-key rollover), so it is dropped and the request is sent once
//!   more with a freshly fetched token.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::call::{ApiCommand, ApiOutcome, GraphApiError, Retry};
use crate::graph::{AnswerRequest, RedirectRequest, RejectRequest};

use super::clock;
use super::graph_token::{GraphTokenCache, TokenError};

/// A boxed `Send` future, the return type of the adapter traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that executes Graph commands: the real client, or a fake in tests.
pub trait GraphApi: Send + Sync + fmt::Debug {
    /// Sends one command and reports its outcome. Never retries, never sleeps.
    fn execute(&self, command: ApiCommand) -> BoxFuture<'static, ApiOutcome>;

    /// Sends one command on behalf of the call's `tenant` (the incoming notification's
    /// verified `tid`; `None` = the configured tenant). The default ignores the tenant.
    fn execute_for(
        &self,
        tenant: Option<&str>,
        command: ApiCommand,
    ) -> BoxFuture<'static, ApiOutcome> {
        let _ = tenant;
        self.execute(command)
    }
}

/// Where bearer tokens for Graph come from (the client-credentials cache).
pub trait AccessTokenSource: Send + Sync + fmt::Debug {
    /// A valid access token, from cache when possible.
    fn access_token(&self) -> BoxFuture<'_, Result<String, GraphApiError>>;

    /// A valid access token for `tenant` (`None` = the configured tenant). The default
    /// ignores the tenant (single-tenant sources).
    fn access_token_for<'a>(
        &'a self,
        tenant: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, GraphApiError>> {
        let _ = tenant;
        self.access_token()
    }

    /// Graph answered 401 to `token` (for `tenant`): drop it from the cache so the next
    /// request fetches a new one. The default does nothing (sources without a cache).
    fn token_rejected(&self, tenant: Option<&str>, token: &str) {
        let _ = (tenant, token);
    }
}

impl AccessTokenSource for GraphTokenCache {
    fn token_rejected(&self, _tenant: Option<&str>, token: &str) {
        if self.invalidate(token) {
            tracing::warn!("Graph refused the cached access token (401): fetching a new one");
        }
    }

    fn access_token(&self) -> BoxFuture<'_, Result<String, GraphApiError>> {
        Box::pin(async move {
            self.get()
                .await
                .map(|t| t.as_str().to_owned())
                .map_err(|e| GraphApiError {
                    status: 0,
                    code: "token".into(),
                    message: e.to_string(),
                    retry: match e {
                        TokenError::InvalidClient { .. } | TokenError::Rejected { .. } => {
                            Retry::Never
                        }
                        _ => Retry::Backoff,
                    },
                })
        })
    }
}

/// The reqwest implementation of [`GraphApi`].
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base_url: String,
    tokens: Arc<dyn AccessTokenSource>,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// A client for `base_url` (e.g. `https://graph.microsoft.com/v1.0`, or the emulator's
    /// `https://127.0.0.1:port/v1.0`).
    pub fn new(
        http: reqwest::Client,
        base_url: impl Into<String>,
        tokens: Arc<dyn AccessTokenSource>,
    ) -> Self {
        Self {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            tokens,
        }
    }

    /// The URL a command goes to.
    pub fn url_for(&self, command: &ApiCommand) -> String {
        let id = command.call_id();
        match command {
            ApiCommand::Delete { .. } => format!("{}/communications/calls/{id}", self.base_url),
            _ => format!(
                "{}/communications/calls/{id}/{}",
                self.base_url,
                command.name()
            ),
        }
    }

    /// Sends one command with a token of the configured tenant. Requests with a deadline time
    /// out at the deadline. The only retry is the one after a 401 (see [`Self::send_for`]).
    pub async fn send(&self, command: &ApiCommand) -> ApiOutcome {
        self.send_for(None, command).await
    }

    /// Sends one command with a token of `tenant` (`None` = the configured one). Throttling
    /// and server errors are not retried here (the call state machine schedules those); a
    /// 401 means the cached token is no longer accepted (revoked, key rollover), so it is
    /// dropped and the request is sent once more with a new token, inside the same deadline.
    pub async fn send_for(&self, tenant: Option<&str>, command: &ApiCommand) -> ApiOutcome {
        let url = self.url_for(command);
        let mut retried = false;
        let response = loop {
            let left = match command.deadline() {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(clock::now());
                    if left.is_zero() {
                        return Err(local_error("timeout", "the call's deadline has passed"));
                    }
                    Some(left)
                }
                None => None,
            };
            let token = self.tokens.access_token_for(tenant).await?;
            let mut request = match command {
                ApiCommand::Delete { .. } => self.http.delete(&url),
                _ => self.http.post(&url).json(&request_body(command)),
            };
            request = request
                .bearer_auth(&token)
                .header("client-request-id", uuid::Uuid::new_v4().to_string());
            if let Some(t) = left {
                request = request.timeout(t);
            }
            let response = request.send().await.map_err(transport_error)?;
            if response.status() == reqwest::StatusCode::UNAUTHORIZED && !retried {
                retried = true;
                self.tokens.token_rejected(tenant, &token);
                continue;
            }
            break response;
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        Err(error_from_response(
            status,
            &headers,
            &body,
            SystemTime::now(),
        ))
    }
}

impl GraphApi for GraphClient {
    fn execute(&self, command: ApiCommand) -> BoxFuture<'static, ApiOutcome> {
        let client = self.clone();
        Box::pin(async move { client.send(&command).await })
    }

    fn execute_for(
        &self,
        tenant: Option<&str>,
        command: ApiCommand,
    ) -> BoxFuture<'static, ApiOutcome> {
        let client = self.clone();
        let tenant = tenant.map(str::to_owned);
        Box::pin(async move { client.send_for(tenant.as_deref(), &command).await })
    }
}

/// The JSON body of a command (`null` for `DELETE`).
pub fn request_body(command: &ApiCommand) -> serde_json::Value {
    let body = match command {
        ApiCommand::Answer {
            callback_uri,
            answer,
            ..
        } => serde_json::to_value(AnswerRequest {
            callback_uri: callback_uri.clone(),
            accepted_modalities: Some(answer.accepted_modalities.clone()),
            media_config: Some(answer.media_config.clone()),
            participant_capacity: answer
                .participant_capacity
                .map(|c| i32::try_from(c).unwrap_or(i32::MAX)),
            ..AnswerRequest::default()
        }),
        ApiCommand::Reject { reason, .. } => {
            serde_json::to_value(RejectRequest::new(reason.clone()))
        }
        ApiCommand::Redirect {
            targets,
            timeout,
            callback_uri,
            ..
        } => {
            let secs = timeout.map(|t| i32::try_from(t.as_secs()).unwrap_or(i32::MAX));
            let mut req = RedirectRequest::new(targets.clone(), secs);
            req.callback_uri = callback_uri.clone();
            serde_json::to_value(req)
        }
        ApiCommand::Delete { .. } => Ok(serde_json::Value::Null),
    };
    // Serializing these plain data types cannot fail (no maps with non-string keys).
    body.unwrap_or(serde_json::Value::Null)
}

/// Maps a non-success response to a [`GraphApiError`]: the Graph error body's `code` and
/// `message` (or the status text), and the retry rule for the status.
pub fn error_from_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> GraphApiError {
    let (code, message) = parse_error_body(body).unwrap_or_else(|| {
        (
            status.as_u16().to_string(),
            status.canonical_reason().unwrap_or("error").to_owned(),
        )
    });
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    let retry = match status.as_u16() {
        429 | 503 | 504 => retry_after.map_or(Retry::Backoff, Retry::After),
        500..=599 => retry_after.map_or(Retry::Backoff, Retry::After),
        _ => Retry::Never,
    };
    GraphApiError {
        status: status.as_u16(),
        code,
        message,
        retry,
    }
}

/// Parses `Retry-After`: delay-seconds (fractional allowed, as Graph sends `2.128`) or an
/// HTTP-date (a date in the past means "now"). `None` if unreadable.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (0.0..1e9)
            .contains(&secs)
            .then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `error.code` and `error.message` of a Graph error body, if it is one.
fn parse_error_body(body: &[u8]) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let err = v.get("error")?;
    let code = err.get("code").map(|c| match c {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })?;
    let message = err
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_owned();
    Some((code, message))
}

fn transport_error(e: reqwest::Error) -> GraphApiError {
    if e.is_timeout() {
        local_error("timeout", "request timed out at the call's deadline")
    } else {
        local_error("transport", &e.to_string())
    }
}

fn local_error(code: &str, message: &str) -> GraphApiError {
    GraphApiError {
        status: 0,
        code: code.to_owned(),
        message: message.to_owned(),
        retry: Retry::Backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry_after: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = retry_after {
            h.insert(RETRY_AFTER, v.parse().expect("valid header value"));
        }
        h
    }

    #[test]
    fn throttled_with_retry_after_seconds() {
        let body = br#"{"error":{"code":"TooManyRequests","message":"Please retry again later.","innerError":{"code":"429"}}}"#;
        let e = error_from_response(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(Some("2")),
            body,
            SystemTime::now(),
        );
        assert_eq!(e.status, 429);
        assert_eq!(e.code, "TooManyRequests");
        assert_eq!(e.message, "Please retry again later.");
        assert_eq!(e.retry, Retry::After(Duration::from_secs(2)));
    }

    #[test]
    fn fractional_and_date_retry_after() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("2.128", now),
            Some(Duration::from_millis(2128))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
    }

    #[test]
    fn server_errors_back_off_and_client_errors_do_not_retry() {
        let now = SystemTime::now();
        let e = error_from_response(StatusCode::INTERNAL_SERVER_ERROR, &headers(None), b"", now);
        assert_eq!((e.status, e.retry), (500, Retry::Backoff));
        assert_eq!(e.code, "500");
        let e = error_from_response(StatusCode::SERVICE_UNAVAILABLE, &headers(None), b"{}", now);
        assert_eq!(e.retry, Retry::Backoff);
        let e = error_from_response(
            StatusCode::NOT_FOUND,
            &headers(Some("1")),
            br#"{"error":{"code":"8522","message":"Call not found."}}"#,
            now,
        );
        assert_eq!((e.code.as_str(), e.retry), ("8522", Retry::Never));
        let e = error_from_response(StatusCode::BAD_REQUEST, &headers(None), b"not json", now);
        assert_eq!(e.retry, Retry::Never);
    }

    #[test]
    fn numeric_code_is_kept_as_text() {
        let e = error_from_response(
            StatusCode::FORBIDDEN,
            &headers(None),
            br#"{"error":{"code":7504,"message":"Insufficient enterprise tenant permissions"}}"#,
            SystemTime::now(),
        );
        assert_eq!(e.code, "7504");
    }
}
