//! The emulator's identity service (OpenID configuration, JWKS, token endpoint) served on
//! loopback HTTPS with a fresh self-signed certificate, and an HTTPS client that trusts it.
#![allow(dead_code)]

use mediabot::adapters::notification_auth::{NotificationAuthConfig, NotificationVerifier};
use mediabot::adapters::tls::{HttpsServer, TlsIdentity, https_client, serve_https};
use mediabot::emulator::identity::{IdentityService, identity_router};

/// A running identity service.
pub struct IdentityServer {
    /// The service (shared state: keys, registered apps).
    pub identity: IdentityService,
    /// The HTTPS server in front of it, on 127.0.0.1.
    pub server: HttpsServer,
    /// A client that trusts the server's certificate.
    pub http: reqwest::Client,
}

impl IdentityServer {
    /// Fresh keys and certificate, served on an ephemeral loopback port.
    pub async fn start() -> Self {
        let tls = TlsIdentity::self_signed_localhost().expect("certificate");
        let identity = IdentityService::new().expect("keys");
        let server = serve_https(
            identity_router(identity.clone()),
            ([127, 0, 0, 1], 0).into(),
            &tls,
        )
        .await
        .expect("serve");
        let http = https_client(&[tls.certificate().clone()]).expect("client");
        Self {
            identity,
            server,
            http,
        }
    }

    /// A notification verifier for `app_id` that reads this server's OpenID configuration.
    pub async fn verifier(&self, app_id: &str) -> NotificationVerifier {
        let url = format!(
            "{}/v1/.well-known/OpenIdConfiguration",
            self.server.base_url()
        );
        NotificationVerifier::start(NotificationAuthConfig::new(app_id, &url), self.http.clone())
            .await
    }
}
