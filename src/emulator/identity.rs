//! The emulator's identity service: the Entra ID token endpoint for client credentials, the
//! OpenID metadata and JWKS of the notification-signing key, and the check of the access
//! tokens the bot sends on every Graph request.
//!
//! Routes ([`identity_router`]):
//!
//! | route | what |
//! | --- | --- |
//! | `POST /{tenant}/oauth2/v2.0/token` | form body, `grant_type=client_credentials`, `client_id`, `client_secret`, `scope=https://graph.microsoft.com/.default` → `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":…}` |
//! | `GET /v1/.well-known/OpenIdConfiguration` | metadata; `jwks_uri` = `https://<Host>/v1/keys` (or the configured public base URL) |
//! | `GET /v1/keys` | `{"keys":[…]}`: the active notification key first, then any kept after a rotation |
//!
//! Token endpoint errors, with Entra's shapes (`error`, `error_description` starting with the
//! AADSTS code, `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`):
//!
//! | case | status | `error` |
//! | --- | --- | --- |
//! | wrong secret | 401 | `invalid_client` (AADSTS7000215) |
//! | unknown client id, or client neither registered in nor consented to by the path's tenant ([`IdentityService::consent_tenant`]; the token's `tid` is the path's tenant) | 401 | `invalid_client` (AADSTS700016; real Entra answers 400 `unauthorized_client` here) |
//! | `grant_type` other than `client_credentials` | 400 | `unsupported_grant_type` (AADSTS70003) |
//! | missing parameter | 400 | `invalid_request` (AADSTS900144) |
//! | scope other than `https://graph.microsoft.com/.default` | 400 | `invalid_scope` (AADSTS1002012) |
//!
//! Access tokens are RS256 JWTs (`aud` `https://graph.microsoft.com`, `iss`
//! `https://sts.windows.net/{tid}/`, `appid`, `tid`, `roles`, `idtyp` `app`) signed with a key of
//! their own; [`IdentityService::validate_access_token`] checks them for the REST layer.
//! Every endpoint is counted ([`IdentityService::counts`]) so tests can prove caching.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::signing::{
    JwtSigner, NOTIFICATION_ISSUER, NotificationClaims, SigningError, jwks, openid_configuration,
    unix_seconds,
};

/// The only scope the token endpoint grants.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// The audience of issued access tokens.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";

/// Default `expires_in` of issued access tokens (like Entra's).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// An application registered with the emulated directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredApp {
    /// The application (client) id — also the bot's Microsoft App ID.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// The tenant the app lives in.
    pub tenant_id: String,
    /// Application permissions written into the `roles` claim.
    pub roles: Vec<String>,
    /// Other tenants whose administrators consented to this (multi-tenant) app: the token
    /// endpoint of each issues tokens too, with `tid` = that tenant.
    pub consented_tenants: Vec<String>,
}

impl RegisteredApp {
    /// An app with the calling permissions (`Calls.AccessMedia.All`, `Calls.Initiate.All`,
    /// `Calls.JoinGroupCall.All`, `Calls.JoinGroupCallAsGuest.All`, `Calls.InitiateGroupCall.All`).
    pub fn new(client_id: &str, client_secret: &str, tenant_id: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            tenant_id: tenant_id.to_owned(),
            roles: [
                "Calls.AccessMedia.All",
                "Calls.Initiate.All",
                "Calls.InitiateGroupCall.All",
                "Calls.JoinGroupCall.All",
                "Calls.JoinGroupCallAsGuest.All",
            ]
            .map(String::from)
            .to_vec(),
            consented_tenants: Vec::new(),
        }
    }

    /// True when the app can get tokens in `tenant` (its home tenant or a consented one).
    pub fn serves_tenant(&self, tenant: &str) -> bool {
        self.tenant_id.eq_ignore_ascii_case(tenant)
            || self
                .consented_tenants
                .iter()
                .any(|t| t.eq_ignore_ascii_case(tenant))
    }
}

/// Who a valid access token was issued to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenInfo {
    /// The `appid` claim.
    pub app_id: String,
    /// The `tid` claim.
    pub tenant_id: String,
    /// The `roles` claim.
    pub roles: Vec<String>,
}

/// Why an access token was refused. The REST layer answers 401 with
/// [`AccessTokenError::graph_error_body`].
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessTokenError {
    /// No `Authorization` header.
    #[error("access token is empty")]
    Missing,
    /// The header is not `Bearer <token>`.
    #[error("authorization header is not a bearer token")]
    NotBearer,
    /// Not a JWT, or not one of ours (wrong key, alg, or missing claims).
    #[error("access token validation failure: {0}")]
    Invalid(String),
    /// `exp` has passed.
    #[error("lifetime validation failed, the token is expired")]
    Expired,
    /// `aud` is not Graph.
    #[error("access token validation failure: invalid audience")]
    WrongAudience,
    /// Issued before [`IdentityService::revoke_issued_tokens`] (fault knob: the client must
    /// drop its cached token and fetch a new one).
    #[error("access token validation failure: the token has been revoked")]
    Revoked,
}

impl AccessTokenError {
    /// Graph's error body for this refusal (`code` `InvalidAuthenticationToken`), HTTP 401.
    pub fn graph_error_body(&self) -> Value {
        json!({ "error": {
            "code": "InvalidAuthenticationToken",
            "message": capitalize(&self.to_string()),
            "innerError": { "date": now_rfc3339(), "request-id": uuid::Uuid::new_v4().to_string() }
        }})
    }
}

/// Requests served per endpoint since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdentityCounts {
    /// `POST …/oauth2/v2.0/token`, whatever the outcome.
    pub token_requests: u64,
    /// Access tokens issued.
    pub tokens_issued: u64,
    /// `GET /v1/.well-known/OpenIdConfiguration`.
    pub openid_configuration: u64,
    /// `GET /v1/keys`.
    pub keys: u64,
}

/// The identity service; cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct IdentityService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    apps: RwLock<HashMap<String, RegisteredApp>>,
    /// Published notification keys; `[0]` signs.
    notification_keys: RwLock<Vec<Arc<JwtSigner>>>,
    access_key: JwtSigner,
    token_lifetime_secs: AtomicU64,
    public_base_url: RwLock<Option<String>>,
    token_requests: AtomicU64,
    tokens_issued: AtomicU64,
    openid_configuration: AtomicU64,
    keys: AtomicU64,
    /// Fault knob: every identity endpoint answers 503.
    unavailable: AtomicBool,
    /// Access tokens carry the generation they were issued in (claim [`GENERATION_CLAIM`]);
    /// those of an older generation are refused as revoked.
    generation: AtomicU64,
}

/// Emulator-private claim: the token generation an access token was issued in.
pub const GENERATION_CLAIM: &str = "xms_emu_gen";

impl IdentityService {
    /// A service with fresh keys and no registered apps.
    ///
    /// Generates two RSA-2048 keys (in parallel; RSA key generation takes ~50–250 ms each on
    /// a loaded machine): call it at start-up, not on a latency-sensitive path.
    pub fn new() -> Result<Self, SigningError> {
        let (notification_key, access_key) = std::thread::scope(|scope| {
            let other = scope.spawn(JwtSigner::generate);
            let access_key = JwtSigner::generate();
            // `generate` returns errors as values; a panic there is a bug worth propagating.
            let notification_key = other
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            (notification_key, access_key)
        });
        Ok(Self {
            inner: Arc::new(Inner {
                apps: RwLock::default(),
                notification_keys: RwLock::new(vec![Arc::new(notification_key?)]),
                access_key: access_key?,
                token_lifetime_secs: AtomicU64::new(DEFAULT_TOKEN_LIFETIME.as_secs()),
                public_base_url: RwLock::default(),
                token_requests: AtomicU64::new(0),
                tokens_issued: AtomicU64::new(0),
                openid_configuration: AtomicU64::new(0),
                keys: AtomicU64::new(0),
                unavailable: AtomicBool::new(false),
                generation: AtomicU64::new(0),
            }),
        })
    }

    /// Registers (or replaces) an application.
    pub fn register_app(&self, app: RegisteredApp) {
        write(&self.inner.apps).insert(app.client_id.clone(), app);
    }

    /// Records that `tenant`'s administrator consented to app `client_id`: its token endpoint
    /// issues tokens for the app from now on. False if the app is not registered.
    pub fn consent_tenant(&self, client_id: &str, tenant: &str) -> bool {
        match write(&self.inner.apps).get_mut(client_id) {
            Some(app) => {
                if !app.serves_tenant(tenant) {
                    app.consented_tenants.push(tenant.to_owned());
                }
                true
            }
            None => false,
        }
    }

    /// Sets `expires_in` of tokens issued from now on (whole seconds).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.inner
            .token_lifetime_secs
            .store(lifetime.as_secs(), Ordering::Relaxed);
    }

    /// Sets the base URL written into `jwks_uri` (e.g. `https://127.0.0.1:8443`); `None`
    /// (the default) uses the request's `Host`.
    pub fn set_public_base_url(&self, url: Option<String>) {
        *write(&self.inner.public_base_url) = url.map(|u| u.trim_end_matches('/').to_owned());
    }

    /// Fault knob: while `true`, the token endpoint, the metadata and the JWKS all answer
    /// 503 (`temporarily_unavailable`); requests are still counted.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.inner.unavailable.store(unavailable, Ordering::Relaxed);
    }

    /// Fault knob: every access token issued so far is refused from now on (401
    /// `InvalidAuthenticationToken`), as after a revocation or a signing-key rollover; tokens
    /// issued afterwards are valid. A client must drop its cached token and fetch another.
    pub fn revoke_issued_tokens(&self) {
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// The key that signs notification tokens now.
    pub fn notification_signer(&self) -> Arc<JwtSigner> {
        // The list is never empty: built with one key, rotation replaces or prepends.
        Arc::clone(&read(&self.inner.notification_keys)[0])
    }

    /// Signs a notification token with the active key.
    pub fn sign_notification_token(
        &self,
        claims: &NotificationClaims,
    ) -> Result<String, SigningError> {
        self.notification_signer().sign_notification_token(claims)
    }

    /// Replaces the active notification key with a new one; with `keep_previous` the old keys
    /// stay published (a real rotation overlaps), otherwise only the new key is.
    pub fn rotate_notification_key(
        &self,
        keep_previous: bool,
    ) -> Result<Arc<JwtSigner>, SigningError> {
        let key = Arc::new(JwtSigner::generate()?);
        let mut keys = write(&self.inner.notification_keys);
        if !keep_previous {
            keys.clear();
        }
        keys.insert(0, Arc::clone(&key));
        Ok(key)
    }

    /// The issuer written in notification tokens and the metadata.
    pub fn notification_issuer(&self) -> &'static str {
        NOTIFICATION_ISSUER
    }

    /// Checks `Authorization: Bearer <access token>` of a Graph request (now).
    pub fn validate_access_token(
        &self,
        authorization: Option<&str>,
    ) -> Result<AccessTokenInfo, AccessTokenError> {
        self.validate_access_token_at(authorization, SystemTime::now())
    }

    /// [`Self::validate_access_token`] at a given wall-clock time.
    pub fn validate_access_token_at(
        &self,
        authorization: Option<&str>,
        now: SystemTime,
    ) -> Result<AccessTokenInfo, AccessTokenError> {
        let header = authorization.ok_or(AccessTokenError::Missing)?.trim();
        if header.is_empty() {
            return Err(AccessTokenError::Missing);
        }
        let token = bearer(header).ok_or(AccessTokenError::NotBearer)?;
        let claims = self
            .inner
            .access_key
            .verify(token)
            .map_err(|e| AccessTokenError::Invalid(e.to_string()))?;
        let str_claim = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        if str_claim("aud").as_deref() != Some(GRAPH_AUDIENCE) {
            return Err(AccessTokenError::WrongAudience);
        }
        let exp = claims.get("exp").and_then(Value::as_i64);
        match exp {
            Some(exp) if exp > unix_seconds(now) => {}
            Some(_) => return Err(AccessTokenError::Expired),
            None => return Err(AccessTokenError::Invalid("no exp".into())),
        }
        let generation = claims.get(GENERATION_CLAIM).and_then(Value::as_u64);
        if generation != Some(self.inner.generation.load(Ordering::Relaxed)) {
            return Err(AccessTokenError::Revoked);
        }
        let missing = |c: &str| AccessTokenError::Invalid(format!("no {c}"));
        Ok(AccessTokenInfo {
            app_id: str_claim("appid").ok_or_else(|| missing("appid"))?,
            tenant_id: str_claim("tid").ok_or_else(|| missing("tid"))?,
            roles: claims
                .get("roles")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Requests served per endpoint so far.
    pub fn counts(&self) -> IdentityCounts {
        let i = &self.inner;
        IdentityCounts {
            token_requests: i.token_requests.load(Ordering::Relaxed),
            tokens_issued: i.tokens_issued.load(Ordering::Relaxed),
            openid_configuration: i.openid_configuration.load(Ordering::Relaxed),
            keys: i.keys.load(Ordering::Relaxed),
        }
    }

    /// Handles a token request (form body) for `tenant`: the status and JSON body to send.
    pub fn handle_token_request(
        &self,
        tenant: &str,
        form: &[u8],
        now: SystemTime,
    ) -> (StatusCode, Value) {
        self.inner.token_requests.fetch_add(1, Ordering::Relaxed);
        let params: HashMap<String, String> =
            url::form_urlencoded::parse(form).into_owned().collect();
        let param = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let Some(grant_type) = param("grant_type") else {
            return entra_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
                now,
            );
        };
        if grant_type != "client_credentials" {
            return entra_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type 'client_credentials' is the only one supported by this emulator.",
                now,
            );
        }
        let Some(client_id) = param("client_id") else {
            return entra_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
                now,
            );
        };
        let app = read(&self.inner.apps).get(client_id).cloned();
        let Some(app) = app.filter(|a| a.serves_tenant(tenant)) else {
            let msg = format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            );
            return entra_error(401, "invalid_client", 700016, &msg, now);
        };
        let Some(secret) = param("client_secret") else {
            return entra_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                now,
            );
        };
        if secret != app.client_secret {
            let msg = format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            );
            return entra_error(401, "invalid_client", 7000215, &msg, now);
        }
        match param("scope") {
            Some(GRAPH_DEFAULT_SCOPE) => {}
            Some(scope) => {
                let msg = format!(
                    "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                );
                return entra_error(400, "invalid_scope", 1002012, &msg, now);
            }
            None => {
                return entra_error(
                    400,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'scope'.",
                    now,
                );
            }
        }
        let lifetime = self.inner.token_lifetime_secs.load(Ordering::Relaxed) as i64;
        let iat = unix_seconds(now);
        let claims = json!({
            "aud": GRAPH_AUDIENCE,
            "iss": format!("https://sts.windows.net/{tenant}/"),
            "iat": iat, "nbf": iat, "exp": iat + lifetime,
            "appid": app.client_id, "appidacr": "1", "idp": format!("https://sts.windows.net/{tenant}/"),
            "idtyp": "app", "oid": uuid::Uuid::new_v4().to_string(), "roles": app.roles,
            "sub": app.client_id, "tid": tenant, "ver": "1.0",
            "uti": uuid::Uuid::new_v4().simple().to_string(),
            GENERATION_CLAIM: self.inner.generation.load(Ordering::Relaxed),
        });
        match self.inner.access_key.sign_claims(&claims) {
            Ok(token) => {
                self.inner.tokens_issued.fetch_add(1, Ordering::Relaxed);
                (
                    StatusCode::OK,
                    json!({
                        "token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                        "access_token": token,
                    }),
                )
            }
            Err(e) => entra_error(
                500,
                "server_error",
                50000,
                &format!("Token signing failed: {e}"),
                now,
            ),
        }
    }
}

/// The identity routes (token endpoint, OpenID metadata, JWKS) over `identity`; merge into
/// the emulator's server.
pub fn identity_router(identity: IdentityService) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint))
        .route("/v1/.well-known/OpenIdConfiguration", get(openid_endpoint))
        .route("/v1/keys", get(keys_endpoint))
        .with_state(identity)
}

async fn token_endpoint(
    State(id): State<IdentityService>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    if id.inner.unavailable.load(Ordering::Relaxed) {
        id.inner.token_requests.fetch_add(1, Ordering::Relaxed);
        return unavailable_response();
    }
    let (status, body) = id.handle_token_request(&tenant, &body, SystemTime::now());
    (
        status,
        [(header::CACHE_CONTROL, "no-store, no-cache")],
        axum::Json(body),
    )
        .into_response()
}

async fn openid_endpoint(
    State(id): State<IdentityService>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    id.inner
        .openid_configuration
        .fetch_add(1, Ordering::Relaxed);
    if id.inner.unavailable.load(Ordering::Relaxed) {
        return unavailable_response();
    }
    let base = read(&id.inner.public_base_url).clone().unwrap_or_else(|| {
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "localhost".to_owned());
        format!("https://{host}")
    });
    axum::Json(openid_configuration(
        NOTIFICATION_ISSUER,
        &format!("{base}/v1/keys"),
    ))
    .into_response()
}

async fn keys_endpoint(State(id): State<IdentityService>) -> Response {
    id.inner.keys.fetch_add(1, Ordering::Relaxed);
    if id.inner.unavailable.load(Ordering::Relaxed) {
        return unavailable_response();
    }
    let keys = read(&id.inner.notification_keys).clone();
    axum::Json(jwks(keys.iter().map(|k| k.as_ref()))).into_response()
}

/// 503 with Entra's `temporarily_unavailable` body and `Retry-After: 1`.
fn unavailable_response() -> Response {
    let (status, body) = entra_error(
        503,
        "temporarily_unavailable",
        50_196,
        "The server is temporarily unavailable (emulator fault knob).",
        SystemTime::now(),
    );
    (status, [(header::RETRY_AFTER, "1")], axum::Json(body)).into_response()
}

/// Entra's error body.
fn entra_error(
    status: u16,
    error: &str,
    code: u32,
    message: &str,
    now: SystemTime,
) -> (StatusCode, Value) {
    let trace = uuid::Uuid::new_v4().to_string();
    let correlation = uuid::Uuid::new_v4().to_string();
    let timestamp = rfc3339(now);
    let description = format!(
        "AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"
    );
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        json!({
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `YYYY-MM-DD hh:mm:ssZ`-style UTC timestamp (civil-from-days, no time crate needed).
fn rfc3339(t: SystemTime) -> String {
    let secs = unix_seconds(t);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere mid-update of plain data; keep serving.
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

    fn service() -> IdentityService {
        let id = IdentityService::new().expect("keys");
        id.register_app(RegisteredApp::new("app-1", "s3cret", "tenant-1"));
        id
    }

    fn form(secret: &str, grant: &str) -> Vec<u8> {
        format!("grant_type={grant}&client_id=app-1&client_secret={secret}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default").into_bytes()
    }

    #[test]
    fn issues_tokens_that_validate_and_expire() {
        let id = service();
        let now = SystemTime::now();
        let (status, body) =
            id.handle_token_request("tenant-1", &form("s3cret", "client_credentials"), now);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["expires_in"], 3599);
        let token = body["access_token"].as_str().expect("token");
        let info = id
            .validate_access_token_at(Some(&format!("Bearer {token}")), now)
            .expect("valid");
        assert_eq!(info.app_id, "app-1");
        assert_eq!(info.tenant_id, "tenant-1");
        assert!(info.roles.contains(&"Calls.AccessMedia.All".to_owned()));
        let later = now + Duration::from_secs(3600);
        assert_eq!(
            id.validate_access_token_at(Some(&format!("Bearer {token}")), later),
            Err(AccessTokenError::Expired)
        );
        assert_eq!(
            id.validate_access_token(None),
            Err(AccessTokenError::Missing)
        );
        assert_eq!(
            id.validate_access_token(Some("Basic abc")),
            Err(AccessTokenError::NotBearer)
        );
        assert!(matches!(
            id.validate_access_token(Some("Bearer x.y.z")),
            Err(AccessTokenError::Invalid(_))
        ));
        assert_eq!(id.counts().tokens_issued, 1);
    }

    #[test]
    fn refuses_bad_credentials_like_entra() {
        let id = service();
        let now = SystemTime::now();
        let (status, body) =
            id.handle_token_request("tenant-1", &form("wrong", "client_credentials"), now);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid_client");
        assert!(
            body["error_description"]
                .as_str()
                .expect("desc")
                .starts_with("AADSTS7000215: Invalid client secret provided.")
        );
        let (status, body) = id.handle_token_request("tenant-1", &form("s3cret", "password"), now);
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
        );
        let (status, body) =
            id.handle_token_request("other", &form("s3cret", "client_credentials"), now);
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client"))
        );
        let (status, body) = id.handle_token_request(
            "tenant-1",
            b"grant_type=client_credentials&client_id=app-1&client_secret=s3cret&scope=User.Read",
            now,
        );
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_scope"))
        );
        assert_eq!(
            id.counts(),
            IdentityCounts {
                token_requests: 4,
                ..IdentityCounts::default()
            }
        );
    }

    #[test]
    fn formats_utc_timestamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_737_600 + 3_723);
        assert_eq!(rfc3339(t), "2026-11-27T01:02:03Z");
    }
}
