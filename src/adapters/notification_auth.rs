//! Verification of the `Authorization: Bearer <JWT>` that the calling service puts on every
//! notification it POSTs to the bot (reference §5.1).
//!
//! [`NotificationVerifier`] checks, in this order: the header is `Bearer <token>`; the token is
//! three base64url parts with a JSON header; `alg` is `RS256` (anything else, `none` included,
//! is refused before any key is looked at); the `kid` names a key from the JWKS; the RSA
//! signature verifies; `iss` is one of the configured issuers; `aud` is the bot's app id; `exp`
//! and `nbf` hold within the allowed clock skew; `tid` is present. The result is a
//! [`VerifiedToken`] carrying the tenant for outbound calls.
//!
//! Keys come from an OpenID metadata document (real service:
//! [`SKYPE_OPENID_METADATA_URL`]) whose `jwks_uri` is fetched next. They are:
//! - fetched by [`NotificationVerifier::start`], which waits for the first attempt; if it fails
//!   the error (naming the URL) is logged and kept in [`NotificationVerifier::key_status`], and
//!   a background task retries with exponential backoff (`retry_backoff_min` doubling up to
//!   `retry_backoff_max`) until it succeeds;
//! - refreshed in the background every `refresh_interval` (2 h, like Microsoft's sample); a
//!   failed refresh keeps the old keys and retries with backoff;
//! - refreshed once when a token names an unknown `kid` (key rotation), at most once per
//!   `unknown_kid_refresh_gap` so that a flood of garbage `kid`s cannot hammer the JWKS.
//!
//! ## HTTP status for the webhook
//! [`NotificationAuthError::status_code`]: **503** (with `Retry-After`) for
//! [`NotificationAuthError::KeysUnavailable`] — we cannot judge the token, the platform may
//! retry — and **401** for every other error (the SDK's behaviour for an invalid token).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

pub use super::jwks::KeySourceError;
use super::jwks::{JwksCache, JwksSettings, SignatureCheck};

/// The calling service's OpenID metadata URL (the calling sample's).
pub const SKYPE_OPENID_METADATA_URL: &str =
    "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration";

/// Issuer of calling-service notification tokens.
pub const BOT_FRAMEWORK_ISSUER: &str = "https://api.botframework.com";

/// The other issuer Microsoft's sample accepts.
pub const GRAPH_ISSUER: &str = "https://graph.microsoft.com";

/// Longest `Authorization` value looked at; longer is [`NotificationAuthError::Malformed`].
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Settings of a [`NotificationVerifier`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationAuthConfig {
    /// The bot's Microsoft App ID: the only accepted `aud`.
    pub app_id: String,
    /// URL of the OpenID metadata document whose `jwks_uri` lists the signing keys.
    pub openid_metadata_url: String,
    /// Accepted `iss` values.
    pub valid_issuers: Vec<String>,
    /// Allowed clock difference for `exp` and `nbf` (default 5 min).
    pub clock_skew: Duration,
    /// Period of the background key refresh (default 2 h).
    pub refresh_interval: Duration,
    /// Minimum time between two refreshes triggered by unknown `kid`s (default 5 min).
    pub unknown_kid_refresh_gap: Duration,
    /// First retry delay after a failed fetch (default 1 s), doubled on each failure...
    pub retry_backoff_min: Duration,
    /// ...up to this (default 60 s).
    pub retry_backoff_max: Duration,
    /// Timeout of each HTTP request for metadata or keys (default 10 s).
    pub fetch_timeout: Duration,
}

impl NotificationAuthConfig {
    /// Defaults for `app_id` with keys from `openid_metadata_url` (use
    /// [`SKYPE_OPENID_METADATA_URL`] for the real service).
    pub fn new(app_id: &str, openid_metadata_url: &str) -> Self {
        Self {
            app_id: app_id.to_owned(),
            openid_metadata_url: openid_metadata_url.to_owned(),
            valid_issuers: vec![BOT_FRAMEWORK_ISSUER.to_owned(), GRAPH_ISSUER.to_owned()],
            clock_skew: Duration::from_secs(5 * 60),
            refresh_interval: Duration::from_secs(2 * 60 * 60),
            unknown_kid_refresh_gap: Duration::from_secs(5 * 60),
            retry_backoff_min: Duration::from_secs(1),
            retry_backoff_max: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(10),
        }
    }
}

/// What a valid notification token says.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedToken {
    /// `tid`: the tenant of the call (use it for outbound tokens).
    pub tenant_id: String,
    /// `iss`.
    pub issuer: String,
    /// The matched audience (the bot's app id).
    pub audience: String,
    /// `kid` of the key that verified the signature, if the token named one.
    pub key_id: Option<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
    /// All claims, for anything else the application wants.
    pub claims: Map<String, Value>,
}

/// Why a notification's token was refused.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotificationAuthError {
    /// No (or an empty) `Authorization` header.
    #[error("no Authorization header")]
    MissingHeader,
    /// The header is not `Bearer <token>`.
    #[error("Authorization header is not a bearer token")]
    NotBearer,
    /// Not a compact JWS with JSON header and claims, or too long.
    #[error("malformed token: {reason}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
    },
    /// `alg` is not `RS256` (e.g. `none`, `HS256`).
    #[error("token algorithm {alg:?} is not allowed (only RS256)")]
    AlgorithmNotAllowed {
        /// The header's `alg` (empty if absent).
        alg: String,
    },
    /// The signature does not verify with the key.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is past, beyond the allowed skew.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future, beyond the allowed skew.
    #[error("token not yet valid")]
    NotYetValid,
    /// `aud` is not the bot's app id.
    #[error("token audience {found:?} is not this bot")]
    WrongAudience {
        /// The token's `aud`.
        found: String,
    },
    /// `iss` is not an accepted issuer.
    #[error("token issuer {found:?} is not accepted")]
    WrongIssuer {
        /// The token's `iss`.
        found: String,
    },
    /// No `tid` claim.
    #[error("token has no tenant (tid) claim")]
    MissingTenant,
    /// No published key has the token's `kid`, even after a refresh.
    #[error("no signing key with kid {kid:?}")]
    UnknownKey {
        /// The token's `kid` (empty if absent).
        kid: String,
    },
    /// No keys have been loaded yet (metadata or JWKS unreachable).
    #[error("signing keys unavailable from {url}: {reason}")]
    KeysUnavailable {
        /// The metadata URL.
        url: String,
        /// The last fetch error.
        reason: String,
    },
}

impl NotificationAuthError {
    /// The HTTP status the webhook answers with: 503 for
    /// [`NotificationAuthError::KeysUnavailable`], 401 otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::KeysUnavailable { .. } => 503,
            _ => 401,
        }
    }
}

/// Verifies notification tokens; cheap to clone (shared state). The background key refresh
/// ends when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct NotificationVerifier {
    config: Arc<NotificationAuthConfig>,
    keys: JwksCache,
}

impl NotificationVerifier {
    /// Builds the verifier, waits for the first key fetch, and starts the background
    /// refresh. Never fails: if the keys cannot be fetched the error is logged (naming the
    /// URL), kept in [`Self::key_status`], retried in the background, and tokens fail with
    /// [`NotificationAuthError::KeysUnavailable`] until it succeeds. `http` should come from
    /// [`crate::adapters::tls::https_client`]. Must run inside a tokio runtime.
    pub async fn start(config: NotificationAuthConfig, http: reqwest::Client) -> Self {
        let settings = JwksSettings {
            openid_metadata_url: config.openid_metadata_url.clone(),
            refresh_interval: config.refresh_interval,
            unknown_kid_refresh_gap: config.unknown_kid_refresh_gap,
            retry_backoff_min: config.retry_backoff_min,
            retry_backoff_max: config.retry_backoff_max,
            fetch_timeout: config.fetch_timeout,
        };
        Self {
            keys: JwksCache::start(settings, http).await,
            config: Arc::new(config),
        }
    }

    /// Verifies an `Authorization` header value against the current time.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
    ) -> Result<VerifiedToken, NotificationAuthError> {
        self.verify_at(authorization, SystemTime::now()).await
    }

    /// Verifies an `Authorization` header value as of `now` (wall clock).
    pub async fn verify_at(
        &self,
        authorization: Option<&str>,
        now: SystemTime,
    ) -> Result<VerifiedToken, NotificationAuthError> {
        let token = parse_bearer(authorization)?;
        let jws = Jws::parse(token)?;
        let kid = jws
            .header
            .get("kid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut check = self.check_signature(&jws, kid.as_deref());
        if check == SignatureCheck::UnknownKid {
            // Maybe the keys rotated: one (rate-limited) refresh, then look again.
            let kid = kid.as_deref().unwrap_or("");
            self.keys.refresh_for_unknown_kid(kid).await;
            check = self.check_signature(&jws, Some(kid));
        }
        match check {
            SignatureCheck::Verified => {}
            SignatureCheck::BadSignature => return Err(NotificationAuthError::BadSignature),
            SignatureCheck::UnknownKid => {
                return Err(NotificationAuthError::UnknownKey {
                    kid: kid.unwrap_or_default(),
                });
            }
            SignatureCheck::NoKeys(e) => {
                return Err(NotificationAuthError::KeysUnavailable {
                    url: self.config.openid_metadata_url.clone(),
                    reason: e.to_string(),
                });
            }
        }
        let claims: Map<String, Value> =
            decode_json(jws.claims_b64).ok_or(NotificationAuthError::Malformed {
                reason: "claims are not a JSON object",
            })?;
        self.check_claims(claims, kid, now)
    }

    /// `Ok(number of keys)` when keys are loaded, else the last fetch error.
    pub fn key_status(&self) -> Result<usize, KeySourceError> {
        self.keys.key_status()
    }

    /// Resolves once keys are loaded (at once if they are).
    pub async fn wait_for_keys(&self) {
        self.keys.wait_for_keys().await;
    }

    /// Fetches metadata and keys now (outside the rate limit), replacing the key set on
    /// success and keeping the old one on failure.
    pub async fn refresh_now(&self) -> Result<usize, KeySourceError> {
        self.keys.refresh_now().await
    }

    /// How many metadata+JWKS fetches were attempted since start.
    pub fn fetch_count(&self) -> u64 {
        self.keys.fetch_count()
    }

    /// The configuration in use.
    pub fn config(&self) -> &NotificationAuthConfig {
        &self.config
    }

    fn check_signature(&self, jws: &Jws<'_>, kid: Option<&str>) -> SignatureCheck {
        self.keys
            .verify_rs256(kid, jws.signed.as_bytes(), &jws.signature)
    }

    fn check_claims(
        &self,
        claims: Map<String, Value>,
        key_id: Option<String>,
        now: SystemTime,
    ) -> Result<VerifiedToken, NotificationAuthError> {
        let string = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let issuer = string("iss");
        if !self.config.valid_issuers.contains(&issuer) {
            return Err(NotificationAuthError::WrongIssuer { found: issuer });
        }
        let app_id = &self.config.app_id;
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == app_id,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(app_id)),
            _ => false,
        };
        if !audience_ok {
            let found = match claims.get("aud") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            return Err(NotificationAuthError::WrongAudience { found });
        }
        let now = unix_seconds(now);
        let skew = i64::try_from(self.config.clock_skew.as_secs()).unwrap_or(i64::MAX);
        let Some(exp) = claims.get("exp").and_then(as_seconds) else {
            return Err(NotificationAuthError::Malformed {
                reason: "no numeric exp claim",
            });
        };
        if now > exp.saturating_add(skew) {
            return Err(NotificationAuthError::Expired);
        }
        if let Some(nbf) = claims.get("nbf").and_then(as_seconds)
            && now.saturating_add(skew) < nbf
        {
            return Err(NotificationAuthError::NotYetValid);
        }
        let tenant_id = string("tid");
        if tenant_id.is_empty() {
            return Err(NotificationAuthError::MissingTenant);
        }
        Ok(VerifiedToken {
            tenant_id,
            issuer,
            audience: app_id.clone(),
            key_id,
            expires_at: exp,
            claims,
        })
    }
}

/// A compact JWS split and decoded as far as the signature check needs.
struct Jws<'a> {
    header: Map<String, Value>,
    claims_b64: &'a str,
    signed: &'a str,
    signature: Vec<u8>,
}

impl<'a> Jws<'a> {
    fn parse(token: &'a str) -> Result<Self, NotificationAuthError> {
        let malformed = |reason| NotificationAuthError::Malformed { reason };
        if token.len() > MAX_TOKEN_LEN {
            return Err(malformed("token too long"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not three dot-separated parts"));
        };
        let header: Map<String, Value> =
            decode_json(h).ok_or(malformed("header is not base64url JSON object"))?;
        match header.get("alg").and_then(Value::as_str) {
            Some("RS256") => {}
            other => {
                return Err(NotificationAuthError::AlgorithmNotAllowed {
                    alg: other.unwrap_or("").to_owned(),
                });
            }
        }
        let signature = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| malformed("signature is not base64url"))?;
        Ok(Self {
            header,
            claims_b64: c,
            signed: &token[..h.len() + 1 + c.len()],
            signature,
        })
    }
}

fn parse_bearer(authorization: Option<&str>) -> Result<&str, NotificationAuthError> {
    let value = authorization.map(str::trim).unwrap_or("");
    if value.is_empty() {
        return Err(NotificationAuthError::MissingHeader);
    }
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(NotificationAuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(NotificationAuthError::NotBearer);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(NotificationAuthError::Malformed {
            reason: "empty bearer token",
        });
    }
    Ok(token)
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A NumericDate claim (integer or float seconds).
fn as_seconds(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(
            parse_bearer(None),
            Err(NotificationAuthError::MissingHeader)
        );
        assert_eq!(
            parse_bearer(Some("  ")),
            Err(NotificationAuthError::MissingHeader)
        );
        assert_eq!(
            parse_bearer(Some("Basic abc")),
            Err(NotificationAuthError::NotBearer)
        );
        assert_eq!(
            parse_bearer(Some("Bearer")),
            Err(NotificationAuthError::NotBearer)
        );
        assert_eq!(parse_bearer(Some("bearer a.b.c")), Ok("a.b.c"));
    }

    #[test]
    fn garbage_never_panics_and_is_malformed() {
        for junk in [
            "",
            ".",
            "..",
            "a.b.c",
            "a.b.c.d",
            "€€€.€.€",
            "eyJ.eyJ.",
            &"A".repeat(20_000),
        ] {
            assert!(
                matches!(
                    Jws::parse(junk),
                    Err(NotificationAuthError::Malformed { .. })
                ),
                "{junk:.20}"
            );
        }
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        assert_eq!(
            Jws::parse(&format!("{none_header}.e30.")).err(),
            Some(NotificationAuthError::AlgorithmNotAllowed { alg: "none".into() })
        );
    }

    #[test]
    fn keys_unavailable_maps_to_503_and_the_rest_to_401() {
        let e = NotificationAuthError::KeysUnavailable {
            url: "u".into(),
            reason: "r".into(),
        };
        assert_eq!(e.status_code(), 503);
        assert_eq!(NotificationAuthError::Expired.status_code(), 401);
    }
}
