//! The notifier: POSTs signed `commsNotifications` to bots the way the real calling service
//! does, one ordered lane per call.
//!
//! Each notification carries `Authorization: Bearer <JWT>` signed with the emulator's
//! notification key (`iss` `https://api.botframework.com`, `aud` = the bot's app id, `tid` =
//! the call's tenant, `iat`/`nbf`/`exp`), and the headers seen on real deliveries
//! (reference §3.1): `Content-Type`/`Accept: application/json`,
//! `User-Agent: Microsoft-Skype/3.0,(Calling/1.0)`, `X-Microsoft-Skype-Chain-ID` (the call
//! chain id), `X-Microsoft-Skype-Message-ID`, `Scenario-Id`, `MS-Teams-Region` and
//! `MS-Teams-Partition`.
//!
//! Notifications of one call are delivered in the order the model produced them (a lane is a
//! task fed by an unbounded channel); different calls are delivered concurrently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::CertificateDer;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::adapters::tls::{TlsError, https_client_builder};

use super::identity::IdentityService;
use super::model::Delivery;
use super::signing::NotificationClaims;

/// `User-Agent` of the real calling service's notifications.
pub const USER_AGENT: &str = "Microsoft-Skype/3.0,(Calling/1.0)";

/// Signs and POSTs notifications; holds the HTTPS client and the per-call lanes.
#[derive(Debug)]
pub struct Notifier {
    identity: IdentityService,
    client: RwLock<reqwest::Client>,
    trusted: Mutex<Vec<CertificateDer<'static>>>,
    accept_invalid_certs: bool,
    timeout: Duration,
    lanes: Mutex<HashMap<String, mpsc::UnboundedSender<Delivery>>>,
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
}

/// A signed notification token reused for the same app and tenant, like the real service
/// (its tokens live about an hour): signing RSA-2048 per notification would cap throughput.
#[derive(Debug)]
struct CachedToken {
    token: String,
    kid: String,
    issued: SystemTime,
}

/// How long a cached notification token is reused (it is valid for 65 minutes).
pub const TOKEN_REUSE: Duration = Duration::from_secs(10 * 60);

/// What a delivery attempt produced: the bot's status, or the transport error.
pub type DeliveryResult = Result<u16, String>;

impl Notifier {
    /// A notifier trusting the platform roots plus `trusted` (bots' self-signed
    /// certificates); `accept_invalid_certs` switches bot certificate checks off entirely.
    pub fn new(
        identity: IdentityService,
        trusted: Vec<CertificateDer<'static>>,
        accept_invalid_certs: bool,
        timeout: Duration,
    ) -> Result<Self, TlsError> {
        let client = build_client(&trusted, accept_invalid_certs, timeout)?;
        Ok(Self {
            identity,
            client: RwLock::new(client),
            trusted: Mutex::new(trusted),
            accept_invalid_certs,
            timeout,
            lanes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The bots' certificates trusted so far (the media processor trusts the same).
    pub(crate) fn trusted_certs(&self) -> Vec<CertificateDer<'static>> {
        lock(&self.trusted).clone()
    }

    /// Trusts one more certificate (e.g. a bot's self-signed one) for later deliveries.
    pub fn trust(&self, cert: CertificateDer<'static>) -> Result<(), TlsError> {
        let mut trusted = lock(&self.trusted);
        if trusted.contains(&cert) {
            return Ok(());
        }
        trusted.push(cert);
        let client = build_client(&trusted, self.accept_invalid_certs, self.timeout)?;
        *self
            .client
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = client;
        Ok(())
    }

    /// Queues `d` on its call's lane, starting the lane if needed. `sending` is called with
    /// the instant each POST starts (token ready, request built: what follows is the bot's
    /// time and the network's). `report` is called with the outcome of each delivery, in
    /// order. `done` says whether the call needs no more deliveries (the lane then ends when
    /// it runs dry). Must run inside a tokio runtime.
    pub fn dispatch<S, R, D>(self: &Arc<Self>, d: Delivery, sending: S, report: R, done: D)
    where
        S: Fn(&Delivery, Instant) + Send + Sync + 'static,
        R: Fn(&Delivery, DeliveryResult) + Send + Sync + 'static,
        D: Fn(&str) -> bool + Send + Sync + 'static,
    {
        let mut lanes = lock(&self.lanes);
        let d = match lanes.get(&d.call_id) {
            Some(tx) => match tx.send(d) {
                Ok(()) => return,
                Err(mpsc::error::SendError(d)) => d,
            },
            None => d,
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        let call_id = d.call_id.clone();
        // The receiver is alive right here, so this send cannot fail.
        let _ = tx.send(d);
        lanes.insert(call_id.clone(), tx);
        drop(lanes);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let Some(d) = rx.recv().await else { break };
                let result = this
                    .send(&d.url, &d.app_id, &d.tenant_id, &d.body, |at| {
                        sending(&d, at)
                    })
                    .await;
                report(&d, result);
                if rx.is_empty() && done(&call_id) {
                    let mut lanes = lock(&this.lanes);
                    // Re-check under the lock: dispatch sends while holding it.
                    if rx.is_empty() {
                        lanes.remove(&call_id);
                        break;
                    }
                }
            }
        });
    }

    /// Signs a token for `d` and POSTs it; returns the bot's HTTP status.
    pub async fn post(&self, d: &Delivery) -> DeliveryResult {
        self.send(&d.url, &d.app_id, &d.tenant_id, &d.body, |_| {})
            .await
    }

    /// Signs a token for `app_id`/`tenant_id` and POSTs `body` to `url` (used by `replay`).
    pub async fn post_raw(
        &self,
        url: &str,
        app_id: &str,
        tenant_id: &str,
        body: &Value,
    ) -> DeliveryResult {
        self.send(url, app_id, tenant_id, body, |_| {}).await
    }

    /// Builds the signed request, calls `sending` with the instant the POST starts, sends it.
    async fn send(
        &self,
        url: &str,
        app_id: &str,
        tenant_id: &str,
        body: &Value,
        sending: impl FnOnce(Instant),
    ) -> DeliveryResult {
        let token = self.token(app_id, tenant_id)?;
        let first = body
            .get("value")
            .and_then(|v| v.get(0))
            .and_then(|n| n.get("resourceData"));
        let chain_id = first
            .and_then(|r| r.get("callChainId"))
            .and_then(Value::as_str)
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        let client = self
            .client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let request = client
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("user-agent", USER_AGENT)
            .header("x-microsoft-skype-chain-id", chain_id)
            .header(
                "x-microsoft-skype-message-id",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("scenario-id", uuid::Uuid::new_v4().to_string())
            .header("ms-teams-region", "amer")
            .header("ms-teams-partition", "emulator")
            .body(body.to_string())
            .build()
            .map_err(|e| error_chain(&e))?;
        sending(Instant::now());
        let resp = client.execute(request).await.map_err(|e| error_chain(&e))?;
        Ok(resp.status().as_u16())
    }
}

impl Notifier {
    /// GETs `url` with the notifier's client (it trusts the bots) and reads JSON; non-2xx is
    /// an error. Used to read a mediabot bot's status endpoint.
    pub async fn get_json(&self, url: &str) -> Result<Value, String> {
        let client = self
            .client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let resp = client.get(url).send().await.map_err(|e| error_chain(&e))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        resp.json().await.map_err(|e| error_chain(&e))
    }
}

impl Notifier {
    /// A token for `app_id`/`tenant_id`: the cached one while it is younger than
    /// [`TOKEN_REUSE`] and signed by the active key, else a fresh one.
    fn token(&self, app_id: &str, tenant_id: &str) -> Result<String, String> {
        let now = SystemTime::now();
        let signer = self.identity.notification_signer();
        let key = (app_id.to_owned(), tenant_id.to_owned());
        if let Some(c) = lock(&self.tokens).get(&key)
            && c.kid == signer.kid()
            && now
                .duration_since(c.issued)
                .is_ok_and(|age| age < TOKEN_REUSE)
        {
            return Ok(c.token.clone());
        }
        let claims = NotificationClaims::new(app_id, tenant_id, now);
        let token = signer
            .sign_notification_token(&claims)
            .map_err(|e| format!("signing failed: {e}"))?;
        lock(&self.tokens).insert(
            key,
            CachedToken {
                token: token.clone(),
                kid: signer.kid().to_owned(),
                issued: now,
            },
        );
        Ok(token)
    }
}

fn build_client(
    trusted: &[CertificateDer<'static>],
    accept_invalid_certs: bool,
    timeout: Duration,
) -> Result<reqwest::Client, TlsError> {
    https_client_builder(trusted)?
        .danger_accept_invalid_certs(accept_invalid_certs)
        .timeout(timeout)
        .build()
        .map_err(|e| TlsError::Client(e.to_string()))
}

/// The error and its sources on one line (reqwest hides the interesting part in sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier() -> (IdentityService, Notifier) {
        let identity = IdentityService::new().unwrap();
        let n = Notifier::new(identity.clone(), Vec::new(), false, Duration::from_secs(1)).unwrap();
        (identity, n)
    }

    #[test]
    fn tokens_are_reused_per_app_and_tenant_until_the_key_rotates() {
        let (identity, n) = notifier();
        let a = n.token("app", "t1").unwrap();
        assert_eq!(n.token("app", "t1").unwrap(), a);
        assert_ne!(n.token("app", "t2").unwrap(), a);
        assert_ne!(n.token("other", "t1").unwrap(), a);
        identity.rotate_notification_key(false).unwrap();
        let b = n.token("app", "t1").unwrap();
        assert_ne!(b, a);
        assert!(identity.notification_signer().verify(&b).is_ok());
    }
}
