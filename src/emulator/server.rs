//! The running emulator: one HTTPS server on a loopback port serving the Graph REST surface,
//! the identity routes and the control API, a driver task for the model's timers, and the
//! notifier. [`Emulator::start`] returns an [`EmulatorHandle`] with the same functions as the
//! control API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::adapters::tls::{HttpsServer, TlsError, TlsIdentity, serve_https};

use super::control::{self, RingRequest};
use super::fault::Faults;
use super::identity::{IdentityService, RegisteredApp, identity_router};
use super::media::desk::{MediaDesk, MediaRecord};
use super::media::{MediaProcessorConfig, MediaReport};
use super::model::{Model, ModelConfig, ModelError, Output};
use super::notifier::Notifier;
use super::record::{CallRecord, CallSummary, Phase};
use super::replay::{ReplayError, ReplayReport};
use super::rest;
use super::signing::SigningError;

/// Default app id registered with the emulator's directory.
pub const DEFAULT_APP_ID: &str = "6e1fa9a0-0b1d-4a53-9bde-3c4c2f7ad6b1";
/// Default client secret of [`DEFAULT_APP_ID`].
pub const DEFAULT_APP_SECRET: &str = "emulator-secret";

/// How to start an emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Where to listen (`127.0.0.1:0` picks a free loopback port).
    pub listen: SocketAddr,
    /// The bot's app id registered in the emulated directory.
    pub app_id: String,
    /// Its client secret.
    pub app_secret: String,
    /// The service model's settings (answer windows, timeout resultInfo, tenant, seed; the
    /// default seed is random).
    pub model: ModelConfig,
    /// Global fault knobs (default for calls rung without their own).
    pub faults: Faults,
    /// Server certificate; `None` generates a self-signed one for localhost and loopback.
    pub tls: Option<TlsIdentity>,
    /// Extra certificates trusted when POSTing notifications (bots' self-signed certs).
    pub trusted_bot_certs: Vec<CertificateDer<'static>>,
    /// Accept any bot certificate (development only; off by default).
    pub accept_invalid_bot_certs: bool,
    /// Per-notification HTTP timeout.
    pub notification_timeout: Duration,
    /// The base URL bots use to reach the emulator (written into the OpenID metadata's
    /// `jwks_uri` and reported by the handle). `None`: `https://<bound address>`, or, when
    /// listening on an unspecified address, the request's `Host` for `jwks_uri`.
    pub public_url: Option<String>,
    /// The media processor that joins bots' app-hosted media for rings that ask for it
    /// ([`RingRequest::media`]); started on first use. Its certificate trust follows the
    /// notifier's (`trusted_bot_certs`, [`EmulatorHandle::trust_bot_certificate`]).
    pub media: MediaProcessorConfig,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            app_id: DEFAULT_APP_ID.into(),
            app_secret: DEFAULT_APP_SECRET.into(),
            // Fresh ids per run (the model's own default seed is fixed, for unit tests).
            model: ModelConfig {
                seed: rand::random(),
                ..ModelConfig::default()
            },
            faults: Faults::default(),
            tls: None,
            trusted_bot_certs: Vec::new(),
            accept_invalid_bot_certs: false,
            notification_timeout: Duration::from_secs(10),
            public_url: None,
            media: MediaProcessorConfig::default(),
        }
    }
}

/// What can go wrong starting or driving the emulator.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// Certificates, server or client setup.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Key generation or signing.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// A control operation the model refused.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// `wait_until` gave up.
    #[error("call {id}: condition not met within {waited:?}")]
    Timeout {
        /// The call.
        id: String,
        /// How long it waited.
        waited: Duration,
    },
    /// A notification could not be delivered (transport error).
    #[error("notification to {url} failed: {reason}")]
    Delivery {
        /// Where it went.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Namespace for [`Emulator::start`].
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Starts the emulator: registers the app, binds the HTTPS server (Graph REST under
    /// `/v1.0` and `/beta`, identity routes, control API under `/emulator/v1`) and the timer
    /// driver. Must be called inside a tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        let tls = match config.tls {
            Some(t) => t,
            None => {
                let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
                let ip = config.listen.ip();
                if !ip.is_unspecified() && !ip.is_loopback() {
                    names.push(ip.to_string());
                }
                TlsIdentity::self_signed(&names)?
            }
        };
        let identity = IdentityService::new()?;
        let app = RegisteredApp::new(&config.app_id, &config.app_secret, &config.model.tenant_id);
        identity.register_app(app.clone());
        let notifier = Arc::new(Notifier::new(
            identity.clone(),
            config.trusted_bot_certs,
            config.accept_invalid_bot_certs,
            config.notification_timeout,
        )?);
        let media = MediaDesk::new(MediaProcessorConfig {
            accept_invalid_certs: config.accept_invalid_bot_certs,
            ..config.media
        });
        let mut model = Model::new(config.model);
        model.set_default_faults(config.faults);
        let (changed, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            model: Mutex::new(model),
            identity: identity.clone(),
            notifier,
            wake: Notify::new(),
            changed,
            app,
            base_url: Mutex::new(String::new()),
            media,
        });
        let router = Router::new()
            .merge(rest::router(Arc::clone(&shared)))
            .merge(control::router(Arc::clone(&shared)))
            .merge(identity_router(identity));
        let server = serve_https(router, config.listen, &tls).await?;
        let public_known =
            config.public_url.is_some() || !server.local_addr().ip().is_unspecified();
        let base_url = config
            .public_url
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| server.base_url());
        *lock(&shared.base_url) = base_url.clone();
        // With an unspecified bind address and no public URL, `jwks_uri` follows the
        // request's `Host` (the bound loopback URL would not reach remote bots).
        if public_known {
            shared.identity.set_public_base_url(Some(base_url.clone()));
        }
        let driver = tokio::spawn(drive(Arc::clone(&shared)));
        Ok(EmulatorHandle {
            shared,
            server: Some(server),
            driver,
            tls,
            base_url,
        })
    }
}

/// A running emulator. Dropping it stops the server and the driver.
#[derive(Debug)]
pub struct EmulatorHandle {
    shared: Arc<Shared>,
    server: Option<HttpsServer>,
    driver: JoinHandle<()>,
    tls: TlsIdentity,
    base_url: String,
}

impl EmulatorHandle {
    /// `https://127.0.0.1:<port>` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The Graph base URL bots use: `<base>/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }

    /// The client-credentials token URL for the registered tenant.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.base_url, self.shared.app.tenant_id
        )
    }

    /// The OpenID metadata URL bots configure to verify notifications.
    pub fn openid_url(&self) -> String {
        format!("{}/v1/.well-known/OpenIdConfiguration", self.base_url)
    }

    /// The control API base: `<base>/emulator/v1`.
    pub fn control_url(&self) -> String {
        format!("{}/emulator/v1", self.base_url)
    }

    /// The server certificate (self-signed unless configured): trust it in the bot.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        self.tls.certificate()
    }

    /// The server certificate as PEM.
    pub fn certificate_pem(&self) -> String {
        self.tls.certificate_pem()
    }

    /// The identity service: token validation, the notification signing key and JWKS.
    pub fn identity(&self) -> &IdentityService {
        &self.shared.identity
    }

    /// The registered app (client id, secret, tenant).
    pub fn app(&self) -> &RegisteredApp {
        &self.shared.app
    }

    /// Trusts a bot's certificate for notifications from now on.
    pub fn trust_bot_certificate(
        &self,
        cert: CertificateDer<'static>,
    ) -> Result<(), EmulatorError> {
        Ok(self.shared.notifier.trust(cert)?)
    }

    /// Rings a bot with a scripted caller; returns the call id. The `created` notification
    /// is on its way when this returns. Call it inside the tokio runtime the emulator runs on
    /// (deliveries are spawned).
    pub fn ring(&self, ring: RingRequest) -> Result<String, EmulatorError> {
        self.shared.ring(ring)
    }

    /// Everything known about a call (state, outcome, history).
    pub fn call(&self, id: &str) -> Option<CallRecord> {
        self.shared.model().call(id).cloned()
    }

    /// All calls, in ring order.
    pub fn calls(&self) -> Vec<CallSummary> {
        self.shared.model().calls()
    }

    /// The caller hangs up (gives up, if still ringing). Inside the runtime, like [`Self::ring`].
    pub fn hangup(&self, id: &str) -> Result<(), EmulatorError> {
        self.shared.hangup(id)
    }

    /// Sets the global fault knobs (default for calls rung from now on).
    pub fn set_default_faults(&self, faults: Faults) {
        self.shared.model().set_default_faults(faults);
    }

    /// Waits until `pred` holds for the call (checked after every change), or `timeout`.
    pub async fn wait_until<P>(
        &self,
        id: &str,
        pred: P,
        timeout: Duration,
    ) -> Result<CallRecord, EmulatorError>
    where
        P: Fn(&CallRecord) -> bool,
    {
        self.shared.wait_until(id, pred, timeout).await
    }

    /// Waits until the call is terminated and every notification got its answer.
    pub async fn wait_settled(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<CallRecord, EmulatorError> {
        self.wait_until(id, settled, timeout).await
    }

    /// Signs `body` for `app_id`/`tenant_id` with the notification key and POSTs it to
    /// `url`; returns the bot's HTTP status (used by `mediabot replay`).
    pub async fn send_notification(
        &self,
        url: &str,
        app_id: &str,
        tenant_id: &str,
        body: &Value,
    ) -> Result<u16, EmulatorError> {
        self.shared
            .notifier
            .post_raw(url, app_id, tenant_id, body)
            .await
            .map_err(|reason| EmulatorError::Delivery {
                url: url.to_owned(),
                reason,
            })
    }

    /// Signs a saved `commsNotifications` body with the notification key, POSTs it to
    /// `bot_url` and reports what the bot did (see [`super::replay`]).
    pub async fn replay(&self, bot_url: &str, body: &[u8]) -> Result<ReplayReport, ReplayError> {
        super::replay::replay(&self.shared, bot_url, body).await
    }

    /// The media part of call `id` (for rings that asked for media): state, the bot's blob,
    /// connect time, packets, concealment, round trip.
    pub fn media(&self, id: &str) -> Option<MediaRecord> {
        self.shared.media.record(id)
    }

    /// Waits until `pred` holds for call `id`'s media record (checked after every change),
    /// or `timeout`; `None` on timeout or for a call without media.
    pub async fn wait_media<P>(&self, id: &str, pred: P, timeout: Duration) -> Option<MediaRecord>
    where
        P: Fn(&MediaRecord) -> bool,
    {
        self.shared.media.wait(id, pred, timeout).await
    }

    /// The final media report of call `id` — what each emulated participant sent and heard,
    /// with the audio — once its media has ended. Taken out of the emulator (it is large).
    pub fn take_media_report(&self, id: &str) -> Option<MediaReport> {
        self.shared.media.take_report(id)
    }

    /// Stops the server gracefully and the timer driver.
    pub async fn shutdown(mut self) {
        self.driver.abort();
        self.shared.media.stop();
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(1)).await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.driver.abort();
        self.shared.media.stop();
    }
}

/// True once the call is terminated and every notification has a response or an error.
pub fn settled(c: &CallRecord) -> bool {
    c.state == Phase::Terminated
        && c.notifications()
            .all(|n| n.bot_status.is_some() || n.error.is_some())
}

/// State shared by the HTTP handlers, the driver and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    model: Mutex<Model>,
    pub(crate) identity: IdentityService,
    notifier: Arc<Notifier>,
    wake: Notify,
    changed: watch::Sender<u64>,
    pub(crate) app: RegisteredApp,
    base_url: Mutex<String>,
    pub(crate) media: MediaDesk,
}

impl Shared {
    /// The model, locked. Never held across an `.await`.
    pub(crate) fn model(&self) -> MutexGuard<'_, Model> {
        lock(&self.model)
    }

    pub(crate) fn base_url(&self) -> String {
        lock(&self.base_url).clone()
    }

    pub(crate) fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    pub(crate) fn ring(self: &Arc<Self>, ring: RingRequest) -> Result<String, EmulatorError> {
        let media = ring.media.clone();
        let ring = ring.into_ring(&self.app.client_id);
        let id = self.model().handle_ring(Instant::now(), ring)?;
        self.media.register(&id, media);
        self.pump();
        Ok(id)
    }

    pub(crate) fn hangup(self: &Arc<Self>, id: &str) -> Result<(), EmulatorError> {
        self.model().handle_hangup(Instant::now(), id)?;
        self.pump();
        Ok(())
    }

    /// Drains the model's outputs into the notifier, wakes the driver (timers may have
    /// changed) and tells waiters something changed. Call after every `handle_*`.
    pub(crate) fn pump(self: &Arc<Self>) {
        self.dispatch_outputs();
        self.wake.notify_one();
    }

    /// Drains the model's outputs into the notifier and tells waiters something changed.
    fn dispatch_outputs(self: &Arc<Self>) {
        let outputs: Vec<Output> = {
            let mut m = self.model();
            std::iter::from_fn(|| m.poll_output()).collect()
        };
        for Output::Notify(d) in outputs {
            let sending = {
                let shared = Arc::clone(self);
                move |d: &super::model::Delivery, at: Instant| {
                    shared.model().handle_sending(at, &d.call_id, d.seq);
                }
            };
            let report = {
                let shared = Arc::clone(self);
                move |d: &super::model::Delivery, result| {
                    shared
                        .model()
                        .handle_delivery(Instant::now(), &d.call_id, d.seq, result);
                    shared.changed.send_modify(|v| *v += 1);
                }
            };
            let done = {
                let shared = Arc::clone(self);
                move |id: &str| {
                    shared
                        .model()
                        .call(id)
                        .is_none_or(|c| c.state == Phase::Terminated)
                }
            };
            self.notifier.dispatch(d, sending, report, done);
        }
        self.changed.send_modify(|v| *v += 1);
    }

    pub(crate) async fn wait_until<P>(
        &self,
        id: &str,
        pred: P,
        timeout: Duration,
    ) -> Result<CallRecord, EmulatorError>
    where
        P: Fn(&CallRecord) -> bool,
    {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            {
                let m = self.model();
                let call = m
                    .call(id)
                    .ok_or_else(|| ModelError::UnknownCall(id.to_owned()))?;
                if pred(call) {
                    return Ok(call.clone());
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    return Err(EmulatorError::Timeout {
                        id: id.to_owned(),
                        waited: timeout,
                    });
                }
            }
        }
    }
}

/// Fires the model's timers on time.
async fn drive(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut m = shared.model();
            m.handle_timeout(Instant::now());
            m.poll_timeout()
        };
        shared.dispatch_outputs();
        let sleep = match next {
            Some(at) => tokio::time::sleep_until(at.into()),
            None => tokio::time::sleep(Duration::from_secs(3600)),
        };
        tokio::select! {
            () = sleep => {}
            () = shared.wake.notified() => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
