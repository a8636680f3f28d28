//! A JSON Web Key Set reached through an OpenID metadata document, cached and kept fresh:
//! the key source of [`super::notification_auth::NotificationVerifier`].
//!
//! [`JwksCache::start`] fetches the metadata, then its `jwks_uri`, and keeps the RSA keys by
//! `kid`. A background task refreshes them every `refresh_interval`; while fetching fails
//! (unreachable at start, or a later outage) it retries with exponential backoff, and a failed
//! refresh keeps the keys already loaded. [`JwksCache::refresh_for_unknown_kid`] refreshes at
//! most once per `unknown_kid_refresh_gap`, so a flood of tokens with made-up `kid`s cannot
//! turn into a flood of JWKS requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio::sync::{Mutex, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Largest metadata or JWKS document accepted.
const MAX_DOCUMENT_LEN: usize = 1024 * 1024;

/// Where the keys come from and how they are kept fresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksSettings {
    /// URL of the OpenID metadata document whose `jwks_uri` lists the keys.
    pub openid_metadata_url: String,
    /// Period of the background refresh.
    pub refresh_interval: Duration,
    /// Minimum time between two refreshes triggered by unknown `kid`s.
    pub unknown_kid_refresh_gap: Duration,
    /// First retry delay after a failed fetch, doubled on each failure...
    pub retry_backoff_min: Duration,
    /// ...up to this.
    pub retry_backoff_max: Duration,
    /// Timeout of each HTTP request.
    pub fetch_timeout: Duration,
}

/// Why the signing keys could not be fetched.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySourceError {
    /// Connection, TLS or timeout failure.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// The client's message.
        reason: String,
    },
    /// A non-2xx answer.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The document is not the expected JSON (or has no usable RSA key).
    #[error("unusable document from {url}: {reason}")]
    BadDocument {
        /// The URL requested.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// Keys were never fetched yet.
    #[error("keys not fetched yet")]
    NotFetched,
}

/// The outcome of an RS256 signature check against the cached keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// A key verified the signature.
    Verified,
    /// The key named by `kid` (or, without `kid`, every key) rejected it.
    BadSignature,
    /// No key has that `kid`.
    UnknownKid,
    /// No keys are loaded; the last fetch error.
    NoKeys(KeySourceError),
}

/// The cached key set; cheap to clone. The background task ends with the last clone.
#[derive(Clone, Debug)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: JwksSettings,
    http: reqwest::Client,
    keys: RwLock<Option<KeySet>>,
    last_error: RwLock<KeySourceError>,
    /// Serialises unknown-kid refreshes; holds when the last one happened.
    forced_refresh: Mutex<Option<Instant>>,
    ready: watch::Sender<bool>,
    fetches: AtomicU64,
    task: OnceLock<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

#[derive(Debug)]
struct KeySet {
    /// Keys by `kid` (`""` for keys published without one).
    by_kid: HashMap<String, RsaKey>,
    fetched_at: Instant,
}

#[derive(Debug)]
struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl JwksCache {
    /// Fetches the keys once (waiting for that attempt) and starts the background refresh.
    /// Never fails: a failed first fetch is logged with the URL, kept for
    /// [`Self::key_status`], and retried in the background. Must run inside a tokio runtime.
    pub async fn start(settings: JwksSettings, http: reqwest::Client) -> Self {
        let inner = Arc::new(Inner {
            settings,
            http,
            keys: RwLock::new(None),
            last_error: RwLock::new(KeySourceError::NotFetched),
            forced_refresh: Mutex::new(None),
            ready: watch::channel(false).0,
            fetches: AtomicU64::new(0),
            task: OnceLock::new(),
        });
        let first = inner.fetch_and_store().await;
        if let Err(e) = &first {
            tracing::error!(
                url = %inner.settings.openid_metadata_url,
                error = %e,
                "signing keys unavailable; retrying in the background"
            );
        }
        let task = tokio::spawn(refresh_loop(Arc::downgrade(&inner), first.is_ok()));
        let _ = inner.task.set(task.abort_handle());
        Self { inner }
    }

    /// Checks an RS256 signature over `signed` with the key named `kid` (without `kid`: any
    /// key).
    pub fn verify_rs256(
        &self,
        kid: Option<&str>,
        signed: &[u8],
        signature: &[u8],
    ) -> SignatureCheck {
        let keys = read(&self.inner.keys);
        let Some(set) = keys.as_ref() else {
            return SignatureCheck::NoKeys(read(&self.inner.last_error).clone());
        };
        let verify = |key: &RsaKey| {
            PublicKeyComponents {
                n: &key.n,
                e: &key.e,
            }
            .verify(&RSA_PKCS1_2048_8192_SHA256, signed, signature)
            .is_ok()
        };
        let verified = match kid {
            Some(kid) => match set.by_kid.get(kid) {
                Some(key) => verify(key),
                None => return SignatureCheck::UnknownKid,
            },
            None => set.by_kid.values().any(verify),
        };
        if verified {
            SignatureCheck::Verified
        } else {
            SignatureCheck::BadSignature
        }
    }

    /// Refreshes the keys because a token named `kid`, unless it is known by now or the last
    /// such refresh was less than `unknown_kid_refresh_gap` ago.
    pub async fn refresh_for_unknown_kid(&self, kid: &str) {
        self.inner.refresh_for_unknown_kid(kid).await;
    }

    /// `Ok(number of keys)` when keys are loaded, else the last fetch error.
    pub fn key_status(&self) -> Result<usize, KeySourceError> {
        match read(&self.inner.keys).as_ref() {
            Some(set) => Ok(set.by_kid.len()),
            None => Err(read(&self.inner.last_error).clone()),
        }
    }

    /// Resolves once keys are loaded (at once if they are).
    pub async fn wait_for_keys(&self) {
        let mut rx = self.inner.ready.subscribe();
        // The sender lives in `inner`, which we hold: `wait_for` cannot see a closed channel.
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Fetches metadata and keys now (outside the rate limit), replacing the key set on
    /// success and keeping the old one on failure.
    pub async fn refresh_now(&self) -> Result<usize, KeySourceError> {
        self.inner.fetch_and_store().await
    }

    /// How many metadata+JWKS fetches were attempted since start.
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The settings in use.
    pub fn settings(&self) -> &JwksSettings {
        &self.inner.settings
    }
}

impl Inner {
    async fn refresh_for_unknown_kid(&self, kid: &str) {
        let mut last = self.forced_refresh.lock().await;
        // Someone may have refreshed while we waited for the lock.
        if read(&self.keys)
            .as_ref()
            .is_some_and(|s| s.by_kid.contains_key(kid))
        {
            return;
        }
        let now = Instant::now();
        if last.is_some_and(|t| now < t + self.settings.unknown_kid_refresh_gap) {
            tracing::debug!(kid, "unknown kid; key refresh rate-limited");
            return;
        }
        *last = Some(now);
        tracing::info!(kid, "unknown kid; refreshing signing keys");
        if let Err(e) = self.fetch_and_store().await {
            tracing::warn!(error = %e, "key refresh for unknown kid failed");
        }
    }

    async fn fetch_and_store(&self) -> Result<usize, KeySourceError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch_keys().await {
            Ok(by_kid) => {
                let n = by_kid.len();
                *write(&self.keys) = Some(KeySet {
                    by_kid,
                    fetched_at: Instant::now(),
                });
                self.ready.send_replace(true);
                Ok(n)
            }
            Err(e) => {
                *write(&self.last_error) = e.clone();
                Err(e)
            }
        }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, RsaKey>, KeySourceError> {
        let metadata_url = &self.settings.openid_metadata_url;
        let metadata = self.get_json(metadata_url).await?;
        let Some(jwks_uri) = metadata.get("jwks_uri").and_then(Value::as_str) else {
            return Err(KeySourceError::BadDocument {
                url: metadata_url.clone(),
                reason: "no jwks_uri".into(),
            });
        };
        let jwks = self.get_json(jwks_uri).await?;
        let bad = |reason: &str| KeySourceError::BadDocument {
            url: jwks_uri.to_owned(),
            reason: reason.to_owned(),
        };
        let entries = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no keys array"))?;
        let mut by_kid = HashMap::new();
        for jwk in entries {
            let field = |name: &str| jwk.get(name).and_then(Value::as_str);
            if field("kty") != Some("RSA") || field("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let component = |name: &str| {
                field(name).and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok())
            };
            let (Some(n), Some(e)) = (component("n"), component("e")) else {
                continue;
            };
            by_kid.insert(field("kid").unwrap_or("").to_owned(), RsaKey { n, e });
        }
        if by_kid.is_empty() {
            return Err(bad("no usable RSA signing key"));
        }
        Ok(by_kid)
    }

    async fn get_json(&self, url: &str) -> Result<Value, KeySourceError> {
        let unreachable = |e: reqwest::Error| KeySourceError::Unreachable {
            url: url.to_owned(),
            reason: error_chain(&e),
        };
        let mut response = self
            .http
            .get(url)
            .timeout(self.settings.fetch_timeout)
            .send()
            .await
            .map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(KeySourceError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_LEN {
                return Err(KeySourceError::BadDocument {
                    url: url.to_owned(),
                    reason: "document larger than 1 MiB".into(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| KeySourceError::BadDocument {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }
}

/// Periodic refresh, and retries with backoff while fetching fails.
async fn refresh_loop(inner: Weak<Inner>, mut healthy: bool) {
    let mut backoff: Option<Duration> = None;
    loop {
        let delay = {
            let Some(inner) = inner.upgrade() else { return };
            let c = &inner.settings;
            if healthy {
                backoff = None;
                let fetched_at = read(&inner.keys).as_ref().map(|s| s.fetched_at);
                let due = fetched_at.map_or_else(Instant::now, |t| t + c.refresh_interval);
                due.saturating_duration_since(Instant::now())
            } else {
                let next =
                    backoff.map_or(c.retry_backoff_min, |b| (b * 2).min(c.retry_backoff_max));
                backoff = Some(next);
                next
            }
        };
        tokio::time::sleep(delay).await;
        let Some(inner) = inner.upgrade() else { return };
        match inner.fetch_and_store().await {
            Ok(n) => {
                if !healthy {
                    tracing::info!(url = %inner.settings.openid_metadata_url, keys = n, "notification signing keys loaded");
                }
                healthy = true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "notification signing key refresh failed; retrying");
                healthy = false;
            }
        }
    }
}

/// The error and its sources, `: `-joined (reqwest's top-level message is terse).
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
