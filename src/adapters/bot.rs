//! `Bot`: wires the bot host together — HTTPS webhook, notification-token verifier, Graph
//! token cache (prefetched), Graph client, call driver — and hands back a [`BotHandle`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::call::{CallConfig, CallError, CallId, CallRecord, Calls};

use super::call_handler::CallHandler;
use super::call_records::CallRecords;
use super::driver::{BotEvent, CallDriver, DriverInput, DriverStats};
use super::graph_client::{GraphApi, GraphClient};
use super::graph_token::{ClientCredentialsConfig, GraphTokenCache, TokenError};
use super::notification_auth::{NotificationAuthConfig, NotificationVerifier};
use super::tenant_tokens::TenantTokens;
use super::tls::{HttpsServer, TlsError, TlsIdentity, https_client, serve_https};
use super::webhook::{self, NotificationAuth, WebhookCounts, WebhookState, WebhookStats};

/// Everything the bot host needs to run.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// The bot's Microsoft App ID (the notification tokens' audience, the client id).
    pub app_id: String,
    /// Client secret for the client-credentials grant.
    pub app_secret: String,
    /// The configured tenant: its Graph token is prefetched and used for calls whose
    /// notification names no other tenant; the token URL's path segment equal to it is
    /// replaced by a call's own tenant (`tid`) to fetch that tenant's token.
    pub tenant_id: String,
    /// Graph base URL, e.g. `https://graph.microsoft.com/v1.0`.
    pub graph_base_url: String,
    /// OAuth2 token endpoint.
    pub token_url: String,
    /// OpenID metadata URL of the notification-signing keys.
    pub openid_metadata_url: String,
    /// Extra trusted root certificates (e.g. the emulator's self-signed one).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Address the webhook listens on (port 0 = any).
    pub listen: SocketAddr,
    /// Public base URL for per-call `callbackUri`s (`None` = the bound URL).
    pub public_base_url: Option<String>,
    /// The bot's certificate (`None` = self-signed for localhost).
    pub tls: Option<TlsIdentity>,
    /// Global webhook path (default `/api/calling`).
    pub callback_path: String,
    /// Deadlines, margins, default decision, retry policy (its `callback_base` is filled in).
    pub call: CallConfig,
    /// Capacity of the driver's inbox (a full inbox answers 503).
    pub inbox_capacity: usize,
    /// Notification body limit in bytes.
    pub max_body: usize,
    /// Snapshots kept for the status endpoint.
    pub max_records: usize,
}

impl BotConfig {
    /// Defaults for a bot on 127.0.0.1 (any port) talking to `graph_base_url`.
    pub fn new(
        app_id: &str,
        app_secret: &str,
        tenant_id: &str,
        graph_base_url: &str,
        token_url: &str,
        openid_metadata_url: &str,
    ) -> Self {
        Self {
            app_id: app_id.into(),
            app_secret: app_secret.into(),
            tenant_id: tenant_id.into(),
            graph_base_url: graph_base_url.into(),
            token_url: token_url.into(),
            openid_metadata_url: openid_metadata_url.into(),
            extra_roots: Vec::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_base_url: None,
            tls: None,
            callback_path: "/api/calling".into(),
            call: CallConfig::default(),
            inbox_capacity: 1024,
            max_body: webhook::DEFAULT_MAX_BODY,
            max_records: 10_000,
        }
    }
}

/// Why the bot could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// Certificate or HTTPS server problem.
    #[error("certificate or HTTPS server setup failed")]
    Tls(#[from] TlsError),
    /// The prefetched Graph token could not be obtained.
    #[error("could not get a Graph token at start-up")]
    Token(#[from] TokenError),
    /// The default decision breaks a documented limit.
    #[error("call refused or invalid configuration")]
    Config(#[from] CallError),
    /// Process-level failure (runtime, missing setting).
    #[error("{0}")]
    Io(String),
    /// The driver has stopped.
    #[error("the bot has stopped")]
    Stopped,
}

/// The bot host.
#[derive(Debug)]
pub struct Bot;

impl Bot {
    /// Starts the bot: prefetches the Graph token (an error here is returned), starts the
    /// notification verifier (an unreachable JWKS is logged and retried in the background;
    /// notifications get 503 until the keys arrive), the driver and the HTTPS webhook.
    pub async fn start(
        cfg: BotConfig,
        handler: Arc<dyn CallHandler>,
    ) -> Result<BotHandle, BotError> {
        let http = https_client(&cfg.extra_roots)?;
        let tokens = GraphTokenCache::new(
            ClientCredentialsConfig::new(&cfg.token_url, &cfg.app_id, &cfg.app_secret),
            http.clone(),
        );
        tokens.prefetch().await?;
        let tokens = TenantTokens::new(&cfg.tenant_id, tokens, http.clone());
        let verifier = NotificationVerifier::start(
            NotificationAuthConfig::new(&cfg.app_id, &cfg.openid_metadata_url),
            http.clone(),
        )
        .await;
        let graph = GraphClient::new(http, cfg.graph_base_url.clone(), Arc::new(tokens));
        Self::start_with(cfg, handler, Arc::new(verifier), Arc::new(graph)).await
    }

    /// Starts the bot with given token verification and Graph client (tests, custom stacks).
    pub async fn start_with(
        mut cfg: BotConfig,
        handler: Arc<dyn CallHandler>,
        auth: Arc<dyn NotificationAuth>,
        graph: Arc<dyn GraphApi>,
    ) -> Result<BotHandle, BotError> {
        cfg.call.default_decision.validate()?;
        let tls = match cfg.tls.take() {
            Some(tls) => tls,
            None => TlsIdentity::self_signed_localhost()?,
        };
        let records = CallRecords::new(cfg.max_records);
        let stats = Arc::new(WebhookStats::default());
        let (inbox_tx, inbox_rx) = mpsc::channel(cfg.inbox_capacity.max(1));
        let state = WebhookState {
            auth,
            inbox: inbox_tx.clone(),
            records: records.clone(),
            stats: Arc::clone(&stats),
            max_body: cfg.max_body,
        };
        let router = webhook::router(state, &cfg.callback_path);
        let server = serve_https(router, cfg.listen, &tls).await?;
        let url = server.base_url();
        let public = cfg
            .public_base_url
            .clone()
            .unwrap_or_else(|| url.clone())
            .trim_end_matches('/')
            .to_owned();
        let callback_path = format!("/{}", cfg.callback_path.trim_matches('/'));
        cfg.call.callback_base = Some(format!("{public}{callback_path}/calls"));
        let (events, _) = broadcast::channel(4096);
        let driver_stats = Arc::new(Mutex::new(DriverStats::default()));
        let driver = CallDriver::new(
            Calls::new(cfg.call.clone()),
            graph,
            handler,
            inbox_rx,
            records.clone(),
            events.clone(),
            Arc::clone(&driver_stats),
        );
        let driver = tokio::spawn(driver.run());
        tracing::info!(%url, "bot listening");
        Ok(BotHandle {
            webhook_url: format!("{url}{callback_path}"),
            url,
            certificate: tls.certificate().clone(),
            records,
            events,
            inbox: inbox_tx,
            webhook_stats: stats,
            driver_stats,
            server: Some(server),
            driver,
        })
    }
}

/// A running bot.
#[derive(Debug)]
pub struct BotHandle {
    url: String,
    webhook_url: String,
    certificate: CertificateDer<'static>,
    records: CallRecords,
    events: broadcast::Sender<BotEvent>,
    inbox: mpsc::Sender<DriverInput>,
    webhook_stats: Arc<WebhookStats>,
    driver_stats: Arc<Mutex<DriverStats>>,
    server: Option<HttpsServer>,
    driver: JoinHandle<()>,
}

impl BotHandle {
    /// The bound base URL, e.g. `https://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The global calling webhook URL (`{url}/api/calling`): register this with the emulator.
    pub fn webhook_url(&self) -> &str {
        &self.webhook_url
    }

    /// The bot's TLS certificate (trust it in clients of a self-signed bot).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// One call's snapshot (also served at `GET /mediabot/v1/calls/{id}`).
    pub fn record(&self, id: &CallId) -> Option<CallRecord> {
        self.records.get(id)
    }

    /// Every call's snapshot, oldest first.
    pub fn records(&self) -> Vec<CallRecord> {
        self.records.all()
    }

    /// Call events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BotEvent> {
        self.events.subscribe()
    }

    /// Hangs up an answered call (`DELETE`).
    pub async fn hang_up(&self, id: &CallId) -> Result<(), BotError> {
        let (reply, rx) = oneshot::channel();
        self.inbox
            .send(DriverInput::HangUp {
                call_id: id.clone(),
                reply,
            })
            .await
            .map_err(|_| BotError::Stopped)?;
        rx.await
            .map_err(|_| BotError::Stopped)?
            .map_err(BotError::Config)
    }

    /// Webhook counters.
    pub fn webhook_counts(&self) -> WebhookCounts {
        self.webhook_stats.snapshot()
    }

    /// Driver and calls-table counters.
    pub fn driver_stats(&self) -> DriverStats {
        *self.driver_stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the webhook (in-flight requests get `grace`), then the driver.
    pub async fn shutdown(mut self, grace: Duration) {
        if let Some(server) = self.server.take() {
            server.shutdown(grace).await;
        }
        self.driver.abort();
    }
}
