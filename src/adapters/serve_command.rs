//! `mediabot serve`: the bot host as a process, against a Graph endpoint (real or emulator),
//! with the default behaviour of [`MediaBot`]: answer with an app-hosted media blob, greet,
//! echo the caller after a short delay, record the call. The client secret comes from
//! `MEDIABOT_APP_SECRET` unless `--app-secret` is given.
//!
//! ```text
//! mediabot serve --app-id <id> --tenant <tenant> [--graph-url URL] [--token-url URL]
//!                [--openid-url URL] [--listen ADDR] [--public-url URL]
//!                [--cert PEM --key PEM] [--trust PEM]…
//!                [--media-listen ADDR] [--media-public-url URL]
//!                [--greeting WAV | --no-greeting] [--echo-delay-ms MS]
//!                [--record-dir DIR | --no-record] [--device [NAME]]
//! ```
//!
//! `--device` (feature `device`) puts the person at this machine into the calls through a
//! sound device, one call at a time ([`crate::adapters::local_participant`]); without the
//! feature it fails at once, saying how to rebuild.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::bot::{BotConfig, BotError};
use super::graph_token::entra_token_url;
use super::local_participant::sound_device;
use super::media_bot::{MediaBot, MediaBotConfig, MediaBotError};
use super::metrics;
use super::notification_auth::SKYPE_OPENID_METADATA_URL;
use super::tls::{TlsError, TlsIdentity};
use crate::media::codec::CodecBackend;

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
    /// Where the media negotiation endpoint listens (HTTPS, same certificate).
    #[arg(long, default_value = "127.0.0.1:8445")]
    pub media_listen: SocketAddr,
    /// Base URL media processors use for the negotiation endpoint (NAT, proxy).
    #[arg(long)]
    pub media_public_url: Option<String>,
    /// The greeting prompt (WAV, any rate; resampled at load). Default:
    /// `media/greeting-16k.wav`.
    #[arg(long, conflicts_with = "no_greeting")]
    pub greeting: Option<PathBuf>,
    /// Do not greet.
    #[arg(long)]
    pub no_greeting: bool,
    /// Echo the caller back after this delay (ms); 0 = no echo.
    #[arg(long, default_value_t = 200)]
    pub echo_delay_ms: u64,
    /// Where recordings go (one directory per call).
    #[arg(long, default_value = "recordings", conflicts_with = "no_record")]
    pub record_dir: PathBuf,
    /// Do not record.
    #[arg(long)]
    pub no_record: bool,
    /// The Opus backend: `opus-rs` (pure Rust, the default) or, in a build with the
    /// `libopus` feature, `libopus`.
    #[arg(long, value_name = "NAME", default_value = "opus-rs", value_parser = parse_codec)]
    pub codec: CodecBackend,
    /// Put the person at this machine into the calls through a sound device (feature
    /// `device`): the default input and output, or the device NAME (exact name, else the
    /// first whose name or description contains NAME, ignoring case; `mediabot devices`
    /// lists them). One call at a time: the oldest connected call; when it ends the device
    /// moves to the next oldest, or waits for the next call.
    #[arg(long, value_name = "NAME", num_args = 0..=1)]
    pub device: Option<Option<String>>,
    /// Serve the bot's metrics (Prometheus text format, `GET /metrics`: calls, media
    /// sessions, each shard's ticks, deadline misses and tick cost) over plain HTTP on this
    /// address, e.g. `127.0.0.1:9464`. Off by default; keep it on loopback or an operations
    /// network.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

impl ServeArgs {
    /// Runs the bot until Ctrl-C.
    pub async fn run(self) -> Result<(), MediaBotError> {
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
        let mut media = MediaBotConfig::new(cfg);
        media.media.backend = self.codec;
        media.media_listen = self.media_listen;
        media.media_public_url = self.media_public_url.clone();
        if self.no_greeting {
            media.behaviour.greeting = None;
        } else if let Some(g) = &self.greeting {
            media.behaviour.greeting = Some(g.clone());
        }
        media.behaviour.echo_delay =
            (self.echo_delay_ms > 0).then(|| Duration::from_millis(self.echo_delay_ms));
        media.behaviour.record_dir = (!self.no_record).then(|| self.record_dir.clone());
        if let Some(name) = &self.device {
            media.media.local = Some(sound_device(name.as_deref())?);
        }
        let local = media.media.local.as_ref().map(|l| l.describe());
        let bot = MediaBot::start(media).await?;
        println!(
            "mediabot serving; calling webhook: {}; media negotiation: {}",
            bot.bot().webhook_url(),
            bot.media_url()
        );
        let metrics = match self.metrics_listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| BotError::Io(format!("metrics listener {addr}: {e}")))?;
                println!("metrics: http://{addr}/metrics");
                Some(tokio::spawn(metrics::serve_metrics(
                    listener,
                    bot.metrics(),
                )))
            }
            None => None,
        };
        if let Some(local) = local {
            println!(
                "{local} joins the oldest connected call, one call at a time (logged as it moves)"
            );
        }
        let _ = tokio::signal::ctrl_c().await;
        if let Some(task) = metrics {
            task.abort();
        }
        bot.shutdown(Duration::from_secs(2)).await;
        Ok(())
    }

    /// Builds a runtime, initialises logging (`RUST_LOG`, default `info`) and runs.
    pub fn run_blocking(self) -> Result<(), MediaBotError> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .try_init();
        let runtime = tokio::runtime::Runtime::new()
            .map_err(|e| MediaBotError::Bot(BotError::Io(e.to_string())))?;
        runtime.block_on(self.run())
    }
}

/// `--codec`: a backend compiled into this build, by [`CodecBackend::name`].
fn parse_codec(name: &str) -> Result<CodecBackend, String> {
    CodecBackend::ALL
        .iter()
        .copied()
        .find(|b| b.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = CodecBackend::ALL.iter().map(|b| b.name()).collect();
            format!(
                "unknown codec {name:?} (this build has: {})",
                names.join(", ")
            )
        })
}
