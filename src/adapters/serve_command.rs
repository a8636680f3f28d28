//! `mediabot serve`: the bot host as a process, against a Graph endpoint (real or emulator),
//! with the [`DemoHandler`] as its application. The client secret comes from
//! `MEDIABOT_APP_SECRET` unless `--app-secret` is given.
//!
//! ```text
//! mediabot serve --app-id <id> --tenant <tenant> [--graph-url URL] [--token-url URL]
//!                [--openid-url URL] [--listen ADDR] [--public-url URL]
//!                [--cert PEM --key PEM] [--trust PEM]…
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::bot::{Bot, BotConfig, BotError};
use super::demo_handler::{DemoHandler, DemoHandlerConfig};
use super::graph_token::entra_token_url;
use super::notification_auth::SKYPE_OPENID_METADATA_URL;
use super::tls::{TlsError, TlsIdentity};

/// Flags of `mediabot serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// The bot's Microsoft App ID.
    #[arg(long)]
    pub app_id: String,
    /// Client secret; default: the `MEDIABOT_APP_SECRET` environment variable (preferred).
    #[arg(long)]
    pub app_secret: Option<String>,
    /// Tenant id (used in the default token URL).
    #[arg(long)]
    pub tenant: String,
    /// Graph base URL.
    #[arg(long, default_value = "https://graph.microsoft.com/v1.0")]
    pub graph_url: String,
    /// OAuth2 token URL (default: Entra ID v2 for the tenant).
    #[arg(long)]
    pub token_url: Option<String>,
    /// OpenID metadata URL of the notification-signing keys.
    #[arg(long, default_value = SKYPE_OPENID_METADATA_URL)]
    pub openid_url: String,
    /// Webhook listen address.
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub listen: SocketAddr,
    /// Public base URL of this instance (per-call callbackUri); default: the bound URL.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Certificate chain (PEM); self-signed for localhost when absent.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Extra trusted root certificates (PEM), e.g. the emulator's.
    #[arg(long)]
    pub trust: Vec<PathBuf>,
}

impl ServeArgs {
    /// Runs the bot until Ctrl-C.
    pub async fn run(self) -> Result<(), BotError> {
        let token_url = self
            .token_url
            .clone()
            .unwrap_or_else(|| entra_token_url(&self.tenant));
        let secret = match &self.app_secret {
            Some(s) => s.clone(),
            None => std::env::var("MEDIABOT_APP_SECRET").map_err(|_| {
                BotError::Io("no client secret: set MEDIABOT_APP_SECRET or --app-secret".into())
            })?,
        };
        let mut cfg = BotConfig::new(
            &self.app_id,
            &secret,
            &self.tenant,
            &self.graph_url,
            &token_url,
            &self.openid_url,
        );
        cfg.listen = self.listen;
        cfg.public_base_url = self.public_url.clone();
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            cfg.tls = Some(TlsIdentity::from_pem_files(cert, key)?);
        }
        for path in &self.trust {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TlsError::Pem {
                    what: "trusted certificate",
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            cfg.extra_roots.extend(certs);
        }
        let demo = DemoHandlerConfig {
            media_base_url: cfg
                .public_base_url
                .clone()
                .unwrap_or_else(|| format!("https://{}", self.listen)),
            ..DemoHandlerConfig::default()
        };
        let bot = Bot::start(cfg, Arc::new(DemoHandler::new(demo))).await?;
        println!("mediabot serving; calling webhook: {}", bot.webhook_url());
        let _ = tokio::signal::ctrl_c().await;
        bot.shutdown(Duration::from_secs(2)).await;
        Ok(())
    }

    /// Builds a runtime, initialises logging (`RUST_LOG`, default `info`) and runs.
    pub fn run_blocking(self) -> Result<(), BotError> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .try_init();
        let runtime = tokio::runtime::Runtime::new().map_err(|e| BotError::Io(e.to_string()))?;
        runtime.block_on(self.run())
    }
}
