//! TLS plumbing shared by the bot and the emulator: certificates, HTTPS servers and clients.
//!
//! - [`TlsIdentity`] is a certificate chain plus its private key: either generated on the spot
//!   (self-signed, for `localhost`, `127.0.0.1` and `::1` by default) or loaded from PEM files.
//! - [`serve_https`] / [`serve_https_on`] run an axum [`Router`] over rustls and return an
//!   [`HttpsServer`] with the bound address (port 0 allowed) and graceful shutdown.
//! - [`https_client`] builds a reqwest client that trusts the system roots **plus** the given
//!   certificates, so the bot can trust the emulator's self-signed certificate (and vice versa)
//!   without ever switching verification off.
//!
//! One rustls crypto provider is used everywhere: aws-lc-rs ([`crypto_provider`]). Every
//! config built here names it explicitly, and [`install_crypto_provider`] (called by
//! [`serve_https`] and [`https_client`], idempotent) installs it as the process default so
//! that no library can hit rustls' "no process-level CryptoProvider" panic.
//!
//! # Wiring a bot to the emulator's identity service
//!
//! ```no_run
//! # async fn wire() -> Result<(), Box<dyn std::error::Error>> {
//! use mediabot::adapters::graph_token::{ClientCredentialsConfig, GraphTokenCache};
//! use mediabot::adapters::notification_auth::{NotificationAuthConfig, NotificationVerifier};
//! use mediabot::adapters::tls::{TlsIdentity, https_client, serve_https};
//! use mediabot::emulator::identity::{IdentityService, RegisteredApp, identity_router};
//!
//! // Emulator side: its own certificate, token endpoint, OpenID metadata and JWKS.
//! let emulator_tls = TlsIdentity::self_signed_localhost()?;
//! let identity = IdentityService::new()?;
//! identity.register_app(RegisteredApp::new("app-id", "secret", "tenant-id"));
//! let emulator = serve_https(identity_router(identity.clone()), "127.0.0.1:0".parse()?, &emulator_tls).await?;
//!
//! // Bot side: trust the emulator's certificate, fetch keys and a token before any call.
//! let http = https_client(&[emulator_tls.certificate().clone()])?;
//! let base = emulator.base_url();
//! let metadata = format!("{base}/v1/.well-known/OpenIdConfiguration");
//! let verifier = NotificationVerifier::start(NotificationAuthConfig::new("app-id", &metadata), http.clone()).await;
//! let token_url = format!("{base}/tenant-id/oauth2/v2.0/token");
//! let tokens = GraphTokenCache::new(ClientCredentialsConfig::new(&token_url, "app-id", "secret"), http);
//! tokens.prefetch().await?;
//!
//! // Per notification: `verifier.verify(authorization_header).await` → tenant, or 401/503.
//! // Per Graph request: `Authorization: {tokens.get().await?.bearer()}`.
//! # Ok(()) }
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::task::JoinHandle;

/// What can go wrong building TLS material, servers or clients.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate for {names:?}: {reason}")]
    Generate {
        /// The subject alternative names asked for.
        names: Vec<String>,
        /// The generator's message.
        reason: String,
    },
    /// A PEM file could not be read or parsed.
    #[error("cannot load {what} from {path}: {reason}")]
    Pem {
        /// `"certificate"` or `"private key"`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The certificate file contained no certificate.
    #[error("no certificate found in {0}")]
    NoCertificate(PathBuf),
    /// rustls refused the certificate/key pair.
    #[error("invalid TLS server configuration: {0}")]
    ServerConfig(String),
    /// Binding or configuring the listening socket failed.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        reason: String,
    },
    /// Building the HTTPS client failed.
    #[error("cannot build the HTTPS client: {0}")]
    Client(String),
}

/// The rustls crypto provider used by the whole crate (aws-lc-rs).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Installs aws-lc-rs as the process-wide rustls provider if none is installed yet.
///
/// Idempotent and cheap; an already installed provider (ours or the application's) is kept.
pub fn install_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // Err means another thread installed one in between: that is fine, keep it.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// The names a generated certificate covers when none are configured.
pub const DEFAULT_CERT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate chain (leaf first) and its private key.
#[derive(Debug)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl TlsIdentity {
    /// Generates a self-signed certificate (ECDSA P-256) for `names`: DNS names or IP
    /// addresses (`"localhost"`, `"127.0.0.1"`, `"::1"`); IPs become IP SANs.
    pub fn self_signed<S: AsRef<str>>(names: &[S]) -> Result<Self, TlsError> {
        let names: Vec<String> = names.iter().map(|n| n.as_ref().to_owned()).collect();
        let certified =
            rcgen::generate_simple_self_signed(names.clone()).map_err(|e| TlsError::Generate {
                names: names.clone(),
                reason: e.to_string(),
            })?;
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        Ok(Self {
            chain: vec![certified.cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(key),
        })
    }

    /// Generates a self-signed certificate for [`DEFAULT_CERT_NAMES`].
    pub fn self_signed_localhost() -> Result<Self, TlsError> {
        Self::self_signed(&DEFAULT_CERT_NAMES)
    }

    /// Loads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or
    /// SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let pem_err = |what: &'static str, path: &Path, e: &dyn std::fmt::Display| TlsError::Pem {
            what,
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| pem_err("certificate", cert, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err("certificate", cert, &e))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate(cert.to_owned()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err("private key", key, &e))?;
        Ok(Self { chain, key })
    }

    /// Loads `cert`+`key` when both are configured, otherwise generates a self-signed
    /// certificate for `names` ([`DEFAULT_CERT_NAMES`] when empty).
    pub fn load_or_generate<S: AsRef<str>>(
        files: Option<(&Path, &Path)>,
        names: &[S],
    ) -> Result<Self, TlsError> {
        match files {
            Some((cert, key)) => Self::from_pem_files(cert, key),
            None if names.is_empty() => Self::self_signed_localhost(),
            None => Self::self_signed(names),
        }
    }

    /// The leaf certificate: what a peer adds to [`https_client`]'s `extra_roots` to trust a
    /// self-signed server.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        // A TlsIdentity is only built with a non-empty chain (checked in both constructors).
        &self.chain[0]
    }

    /// The whole chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate as PEM text (to print or write for other-language clients).
    pub fn certificate_pem(&self) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.certificate().as_ref());
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            // base64 output is ASCII, so every chunk is valid UTF-8.
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// A rustls server config (aws-lc-rs, TLS 1.2 + 1.3, ALPN `h2` and `http/1.1`).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::ServerConfig(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::ServerConfig(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A running HTTPS server. Dropping it shuts the server down at once; use
/// [`HttpsServer::shutdown`] for a graceful stop.
#[derive(Debug)]
pub struct HttpsServer {
    local_addr: SocketAddr,
    handle: Handle,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl HttpsServer {
    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://<ip>:<port>` for the bound address (IPv6 in brackets), no trailing slash.
    /// An unspecified bind address (`0.0.0.0`, `::`) is reported as the loopback address.
    pub fn base_url(&self) -> String {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("https://{}", SocketAddr::new(ip, self.local_addr.port()))
    }

    /// Stops accepting, lets open connections finish for up to `grace`, then waits for the
    /// server task to end.
    pub async fn shutdown(mut self, grace: Duration) {
        self.handle.graceful_shutdown(Some(grace));
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.handle.shutdown();
        }
    }
}

/// Binds `addr` (port 0 allowed) and serves `router` over HTTPS with `tls`.
///
/// Handlers may extract `axum::extract::ConnectInfo<SocketAddr>`. Must be called inside a
/// tokio runtime (it spawns the server task).
pub async fn serve_https(
    router: Router,
    addr: SocketAddr,
    tls: &TlsIdentity,
) -> Result<HttpsServer, TlsError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| TlsError::Bind {
        addr,
        reason: e.to_string(),
    })?;
    serve_https_on(router, listener, tls).await
}

/// Serves `router` over HTTPS on an already bound (and listening) std listener — for callers
/// that must know or reserve the port before serving.
pub async fn serve_https_on(
    router: Router,
    listener: std::net::TcpListener,
    tls: &TlsIdentity,
) -> Result<HttpsServer, TlsError> {
    install_crypto_provider();
    let bind_err = |addr: SocketAddr, e: std::io::Error| TlsError::Bind {
        addr,
        reason: e.to_string(),
    };
    let unknown: SocketAddr = (Ipv4Addr::UNSPECIFIED, 0).into();
    let local_addr = listener.local_addr().map_err(|e| bind_err(unknown, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| bind_err(local_addr, e))?;
    let config = RustlsConfig::from_config(tls.server_config()?);
    let handle = Handle::new();
    let server = axum_server::from_tcp_rustls(listener, config).handle(handle.clone());
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move { server.serve(service).await });
    Ok(HttpsServer {
        local_addr,
        handle,
        task: Some(task),
    })
}

/// A reqwest client (rustls, aws-lc-rs) that trusts the platform's roots plus
/// `extra_roots` (e.g. a peer's self-signed [`TlsIdentity::certificate`]).
///
/// Certificate and host-name verification stay on: a server whose certificate chains to
/// neither is rejected. With no extra roots this is an ordinary client for real Graph.
pub fn https_client(extra_roots: &[CertificateDer<'static>]) -> Result<reqwest::Client, TlsError> {
    https_client_builder(extra_roots)?
        .build()
        .map_err(|e| TlsError::Client(e.to_string()))
}

/// Like [`https_client`] but returns the builder, to add timeouts or default headers.
pub fn https_client_builder(
    extra_roots: &[CertificateDer<'static>],
) -> Result<reqwest::ClientBuilder, TlsError> {
    install_crypto_provider();
    let certs = extra_roots
        .iter()
        .map(|c| reqwest::Certificate::from_der(c.as_ref()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Client(e.to_string()))?;
    Ok(reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_merge(certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_has_a_usable_server_config() {
        let id = TlsIdentity::self_signed_localhost().expect("generate");
        assert_eq!(id.chain().len(), 1);
        assert!(
            id.certificate_pem()
                .starts_with("-----BEGIN CERTIFICATE-----\n")
        );
        let config = id.server_config().expect("server config");
        assert_eq!(config.alpn_protocols[0], b"h2");
    }

    #[test]
    fn missing_pem_file_is_a_typed_error() {
        let err = TlsIdentity::from_pem_files(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Pem {
                    what: "certificate",
                    ..
                }
            ),
            "{err}"
        );
    }
}
