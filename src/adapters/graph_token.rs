//! The bot's outbound credential: an OAuth 2.0 client-credentials access token for Graph,
//! cached and refreshed ahead of expiry (reference §5.2).
//!
//! [`GraphTokenCache`] posts `grant_type=client_credentials&client_id=…&client_secret=…&scope=…`
//! to the configured token URL (real service: [`entra_token_url`]). Its contract:
//! - [`GraphTokenCache::prefetch`] fetches at start-up, so the first answer to an incoming call
//!   does not pay for a token (Microsoft's samples do, and miss the 5 s PBR window);
//! - a background task refreshes the token at `expiry - refresh_margin` (`expiry` = time the
//!   request was sent + `expires_in`) and retries with backoff if that fails; meanwhile
//!   [`GraphTokenCache::get`] keeps serving the old token while it has at least
//!   [`MIN_REMAINING_VALIDITY`] left, so callers never wait for a refresh;
//! - concurrent [`GraphTokenCache::get`] calls that find no usable token share one in-flight
//!   request;
//! - [`GraphTokenCache::get`] itself never retries or sleeps (the caller owns the deadline).
//!
//! Time is tokio's [`Instant`], so tests drive expiry with paused time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// A cached token with less validity left than this is not handed out any more.
pub const MIN_REMAINING_VALIDITY: Duration = Duration::from_secs(30);

/// The scope for application permissions on Graph.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Entra ID v2 token endpoint of `tenant` (GUID or domain).
pub fn entra_token_url(tenant: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
}

/// Settings of a [`GraphTokenCache`].
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentialsConfig {
    /// Token endpoint URL.
    pub token_url: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret (never printed by `Debug`).
    pub client_secret: String,
    /// Requested scope (default [`GRAPH_DEFAULT_SCOPE`]).
    pub scope: String,
    /// How long before expiry a token stops being served and is refreshed (default 5 min).
    pub refresh_margin: Duration,
    /// First delay before retrying a failed background refresh (default 1 s), doubling...
    pub retry_backoff_min: Duration,
    /// ...up to this (default 60 s).
    pub retry_backoff_max: Duration,
    /// Timeout of one token request (default 10 s).
    pub request_timeout: Duration,
}

impl ClientCredentialsConfig {
    /// Defaults for the given endpoint and credentials.
    pub fn new(token_url: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            token_url: token_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            scope: GRAPH_DEFAULT_SCOPE.to_owned(),
            refresh_margin: Duration::from_secs(5 * 60),
            retry_backoff_min: Duration::from_secs(1),
            retry_backoff_max: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for ClientCredentialsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentialsConfig")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .field("refresh_margin", &self.refresh_margin)
            .finish_non_exhaustive()
    }
}

/// An access token and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    secret: Arc<str>,
    expires_at: Instant,
}

impl AccessToken {
    /// The raw token.
    pub fn as_str(&self) -> &str {
        &self.secret
    }

    /// `Bearer <token>`, the `Authorization` header value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.secret)
    }

    /// When the token expires (receipt + `expires_in`).
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why no token could be obtained.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// The server refused the credentials (`invalid_client`: wrong secret or unknown app).
    /// Retrying will not help.
    #[error("client credentials refused: {description}")]
    InvalidClient {
        /// The server's `error_description` (e.g. `AADSTS7000215: Invalid client secret…`).
        description: String,
    },
    /// Another OAuth error (`unsupported_grant_type`, `invalid_scope`, `unauthorized_client`…).
    #[error("token request refused with HTTP {status} {error}: {description}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The OAuth `error` code.
        error: String,
        /// The `error_description`.
        description: String,
    },
    /// Connection, TLS or timeout failure.
    #[error("token endpoint {url} unreachable: {reason}")]
    Network {
        /// The token URL.
        url: String,
        /// The client's message.
        reason: String,
    },
    /// The answer was not a token response nor an OAuth error.
    #[error("unexpected answer from the token endpoint (HTTP {status}): {reason}")]
    BadResponse {
        /// HTTP status.
        status: u16,
        /// What was wrong.
        reason: String,
    },
}

/// The cached client-credentials token; cheap to clone (shared state). The background
/// refresh ends when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct GraphTokenCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientCredentialsConfig,
    http: reqwest::Client,
    token: RwLock<Option<AccessToken>>,
    /// Held while a request is in flight: callers queue here and then find the new token.
    fetching: Mutex<()>,
    fetches: AtomicU64,
    refresher: OnceLock<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.refresher.get() {
            task.abort();
        }
    }
}

impl GraphTokenCache {
    /// A cache with no token yet; no IO happens until [`Self::prefetch`] or [`Self::get`].
    /// `http` should come from [`crate::adapters::tls::https_client`].
    pub fn new(config: ClientCredentialsConfig, http: reqwest::Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                token: RwLock::new(None),
                fetching: Mutex::new(()),
                fetches: AtomicU64::new(0),
                refresher: OnceLock::new(),
            }),
        }
    }

    /// Fetches a token now (unless a fresh one is cached) and starts the background refresh.
    /// Call at start-up; an error here (e.g. [`TokenError::InvalidClient`]) is worth
    /// reporting loudly. Must run inside a tokio runtime.
    pub async fn prefetch(&self) -> Result<AccessToken, TokenError> {
        self.get().await
    }

    /// A token from cache when possible: one outside the refresh margin, or — while the
    /// background refresh is due, in flight or failing — the old one as long as it has
    /// [`MIN_REMAINING_VALIDITY`] left. Only with no such token does the caller wait for a
    /// request (shared with concurrent callers).
    pub async fn get(&self) -> Result<AccessToken, TokenError> {
        if let Some(token) = self.inner.usable() {
            return Ok(token);
        }
        let _in_flight = self.inner.fetching.lock().await;
        // Whoever held the lock before us may have fetched a token.
        if let Some(token) = self.inner.usable() {
            return Ok(token);
        }
        let token = self.inner.fetch().await?;
        self.start_refresher();
        Ok(token)
    }

    /// Drops the cached token if it is `rejected` (Graph answered 401 to it), so the next
    /// [`Self::get`] fetches a new one. A different cached token (already replaced by a
    /// concurrent caller) is kept. True if the token was dropped.
    pub fn invalidate(&self, rejected: &str) -> bool {
        let mut token = self
            .inner
            .token
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if token.as_ref().is_some_and(|t| t.as_str() == rejected) {
            *token = None;
            true
        } else {
            false
        }
    }

    /// How many token requests were sent since creation.
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientCredentialsConfig {
        &self.inner.config
    }

    fn start_refresher(&self) {
        if self.inner.refresher.get().is_none() {
            let task = tokio::spawn(refresh_loop(Arc::downgrade(&self.inner)));
            if let Err(dup) = self.inner.refresher.set(task.abort_handle()) {
                dup.abort();
            }
        }
    }
}

impl Inner {
    /// The cached token if it is outside the refresh margin.
    fn fresh(&self) -> Option<AccessToken> {
        let token = read(&self.token).clone()?;
        (Instant::now() + self.config.refresh_margin < token.expires_at).then_some(token)
    }

    /// The cached token if it has at least [`MIN_REMAINING_VALIDITY`] left.
    fn usable(&self) -> Option<AccessToken> {
        let token = read(&self.token).clone()?;
        (Instant::now() + MIN_REMAINING_VALIDITY < token.expires_at).then_some(token)
    }

    /// When the background task should refresh: `expires_at - refresh_margin`.
    fn refresh_due(&self) -> Option<Instant> {
        let token = read(&self.token).clone()?;
        Some(
            token
                .expires_at
                .checked_sub(self.config.refresh_margin)
                .unwrap_or_else(Instant::now),
        )
    }

    async fn fetch(&self) -> Result<AccessToken, TokenError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let c = &self.config;
        let url = &c.token_url;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &c.client_id)
            .append_pair("client_secret", &c.client_secret)
            .append_pair("scope", &c.scope)
            .finish();
        let network = |e: reqwest::Error| TokenError::Network {
            url: url.clone(),
            reason: error_chain(&e),
        };
        let sent_at = Instant::now();
        let response = self
            .http
            .post(url)
            .timeout(c.request_timeout)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(network)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(network)?;
        let bad = |reason: String| TokenError::BadResponse { status, reason };
        let json: Value = serde_json::from_slice(&body).map_err(|e| {
            bad(format!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        })?;
        let text = |k: &str| json.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        if !(200..300).contains(&status) {
            let error = text("error");
            let description = text("error_description");
            return Err(match error.as_str() {
                "invalid_client" => TokenError::InvalidClient { description },
                "" => bad(format!("no OAuth error in {json}")),
                _ => TokenError::Rejected {
                    status,
                    error,
                    description,
                },
            });
        }
        let access_token = text("access_token");
        if access_token.is_empty() {
            return Err(bad("no access_token".into()));
        }
        // Entra sends a number; some servers send a string.
        let expires_in = match json.get("expires_in") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| bad("no numeric expires_in".into()))?;
        // Measured from when the request was sent: errs on the early side.
        let token = AccessToken {
            secret: access_token.into(),
            expires_at: sent_at + Duration::from_secs(expires_in),
        };
        *write(&self.token) = Some(token.clone());
        Ok(token)
    }
}

/// Refreshes the token at `expires_at - refresh_margin`; retries failures with backoff.
async fn refresh_loop(inner: Weak<Inner>) {
    let mut backoff: Option<Duration> = None;
    loop {
        let delay = {
            let Some(inner) = inner.upgrade() else { return };
            let c = &inner.config;
            match backoff {
                Some(b) => b,
                None => inner.refresh_due().map_or(c.retry_backoff_min, |due| {
                    due.saturating_duration_since(Instant::now())
                }),
            }
        };
        tokio::time::sleep(delay).await;
        let Some(inner) = inner.upgrade() else { return };
        let _in_flight = inner.fetching.lock().await;
        if inner.fresh().is_some() {
            // A caller refreshed it meanwhile.
            backoff = None;
            continue;
        }
        match inner.fetch().await {
            Ok(_) => backoff = None,
            Err(e) => {
                let c = &inner.config;
                let next =
                    backoff.map_or(c.retry_backoff_min, |b| (b * 2).min(c.retry_backoff_max));
                tracing::warn!(error = %e, retry_in = ?next, "background token refresh failed");
                backoff = Some(next);
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // Poisoning only means a panic elsewhere mid-update of plain data; keep going.
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let c = ClientCredentialsConfig::new(&entra_token_url("contoso.com"), "id", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(
            c.token_url,
            "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
        );
        let t = AccessToken {
            secret: "tok".into(),
            expires_at: Instant::now(),
        };
        assert!(!format!("{t:?}").contains("tok"));
        assert_eq!(t.bearer(), "Bearer tok");
    }
}
