//! The bot's notification-token verifier against the emulator's identity service, over real
//! loopback HTTPS: valid tokens pass, every kind of bad token gets its own typed error, key
//! rotation costs exactly one JWKS refresh, garbage `kid`s cannot hammer the JWKS, and an
//! unreachable JWKS at start is reported and recovered from without help.

#[path = "support/identity_server.rs"]
mod identity_server;

use std::time::{Duration, SystemTime};

use identity_server::IdentityServer;
use mediabot::adapters::notification_auth::{
    KeySourceError, NotificationAuthConfig, NotificationAuthError, NotificationVerifier,
};
use mediabot::adapters::tls::{HttpsServer, TlsIdentity, https_client, serve_https_on};
use mediabot::emulator::identity::{IdentityService, identity_router};
use mediabot::emulator::signing::{JwtSigner, NotificationClaims, unsigned_token};
use serde_json::json;

const APP_ID: &str = "8d3c9b2e-5a4f-4c1e-9b7a-2f6e1d0c3b4a";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

struct Setup {
    identity: IdentityService,
    _server: HttpsServer,
    verifier: NotificationVerifier,
}

async fn setup() -> Setup {
    let idp = IdentityServer::start().await;
    let verifier = idp.verifier(APP_ID).await;
    assert_eq!(verifier.key_status(), Ok(1));
    Setup {
        identity: idp.identity,
        _server: idp.server,
        verifier,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn claims() -> NotificationClaims {
    NotificationClaims::new(APP_ID, TENANT, SystemTime::now())
}

#[tokio::test]
async fn valid_token_is_accepted_and_names_the_tenant() {
    let s = setup().await;
    let token = s.identity.sign_notification_token(&claims()).expect("sign");
    let verified = s
        .verifier
        .verify(Some(&bearer(&token)))
        .await
        .expect("valid token");
    assert_eq!(verified.tenant_id, TENANT);
    assert_eq!(verified.issuer, "https://api.botframework.com");
    assert_eq!(verified.audience, APP_ID);
    assert_eq!(
        verified.key_id.as_deref(),
        Some(s.identity.notification_signer().kid())
    );

    // The sample's second issuer is accepted too.
    let mut graph = claims();
    graph.iss = "https://graph.microsoft.com".into();
    let token = s.identity.sign_notification_token(&graph).expect("sign");
    assert!(s.verifier.verify(Some(&bearer(&token))).await.is_ok());
    // Within the 5 min skew: expired 1 min ago still passes.
    let mut late = claims();
    late.exp = Some(late.exp.expect("exp") - 66 * 60);
    let token = s.identity.sign_notification_token(&late).expect("sign");
    assert!(s.verifier.verify(Some(&bearer(&token))).await.is_ok());
}

#[tokio::test]
async fn each_bad_token_gets_its_typed_error() {
    let s = setup().await;
    let signer = s.identity.notification_signer();
    let sign = |c: &NotificationClaims| bearer(&signer.sign_notification_token(c).expect("sign"));
    let now = claims().iat.expect("iat");

    let mut expired = claims();
    (expired.iat, expired.nbf, expired.exp) = (Some(now - 7200), Some(now - 7200), Some(now - 600));
    let mut early = claims();
    early.nbf = Some(now + 600);
    let mut wrong_aud = claims();
    wrong_aud.aud = "someone-else".into();
    let mut wrong_iss = claims();
    wrong_iss.iss = "https://evil.example.com".into();
    let mut no_tid = claims();
    no_tid.tid = None;
    let mut no_exp = claims();
    no_exp.exp = None;
    // Right kid, wrong key.
    let other = JwtSigner::generate().expect("other key");
    let forged = other
        .sign_with_header(
            &json!({"alg": "RS256", "typ": "JWT", "kid": signer.kid()}),
            &claims(),
        )
        .expect("sign");
    // A valid token with its signature from another token.
    let valid = signer.sign_notification_token(&claims()).expect("sign");
    let spliced = {
        let other_sig = sign(&no_tid);
        let (head, _) = valid.rsplit_once('.').expect("three parts");
        format!(
            "Bearer {head}.{}",
            other_sig.rsplit_once('.').expect("parts").1
        )
    };
    let hs256 = {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": signer.kid()});
        signer.sign_with_header(&header, &claims()).expect("sign")
    };

    let cases: Vec<(&str, Option<String>, NotificationAuthError)> = vec![
        ("missing header", None, NotificationAuthError::MissingHeader),
        (
            "empty header",
            Some(String::new()),
            NotificationAuthError::MissingHeader,
        ),
        (
            "basic auth",
            Some("Basic dXNlcjpwYXNz".into()),
            NotificationAuthError::NotBearer,
        ),
        (
            "raw token",
            Some(valid.clone()),
            NotificationAuthError::NotBearer,
        ),
        (
            "unsigned (alg none)",
            Some(bearer(&unsigned_token(&claims()).expect("unsigned"))),
            NotificationAuthError::AlgorithmNotAllowed { alg: "none".into() },
        ),
        (
            "HS256",
            Some(bearer(&hs256)),
            NotificationAuthError::AlgorithmNotAllowed {
                alg: "HS256".into(),
            },
        ),
        (
            "wrong key",
            Some(bearer(&forged)),
            NotificationAuthError::BadSignature,
        ),
        (
            "spliced signature",
            Some(spliced),
            NotificationAuthError::BadSignature,
        ),
        (
            "expired",
            Some(sign(&expired)),
            NotificationAuthError::Expired,
        ),
        (
            "not yet valid",
            Some(sign(&early)),
            NotificationAuthError::NotYetValid,
        ),
        (
            "wrong audience",
            Some(sign(&wrong_aud)),
            NotificationAuthError::WrongAudience {
                found: "someone-else".into(),
            },
        ),
        (
            "wrong issuer",
            Some(sign(&wrong_iss)),
            NotificationAuthError::WrongIssuer {
                found: "https://evil.example.com".into(),
            },
        ),
        (
            "missing tid",
            Some(sign(&no_tid)),
            NotificationAuthError::MissingTenant,
        ),
        (
            "no exp",
            Some(sign(&no_exp)),
            NotificationAuthError::Malformed {
                reason: "no numeric exp claim",
            },
        ),
    ];
    for (name, header, want) in cases {
        let got = s.verifier.verify(header.as_deref()).await;
        assert_eq!(got, Err(want), "{name}");
        assert_eq!(got.unwrap_err().status_code(), 401, "{name}");
    }

    let garbage = [
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer ...",
        "Bearer eyJhbGciOiJSUzI1NiJ9.!!!.???",
        "Bearer eyJhbGciOiJSUzI1NiJ9.e30.not*base64",
        "Bearer \u{1F600}.\u{1F600}.\u{1F600}",
    ];
    for header in garbage {
        let got = s.verifier.verify(Some(header)).await;
        assert!(
            matches!(got, Err(NotificationAuthError::Malformed { .. })),
            "{header}: {got:?}"
        );
    }
    let huge = format!("Bearer {}", "A".repeat(1 << 20));
    assert!(matches!(
        s.verifier.verify(Some(&huge)).await,
        Err(NotificationAuthError::Malformed { .. })
    ));

    // None of these (all with a known kid or no usable kid) made the verifier refetch keys.
    assert_eq!(s.identity.counts().keys, 1);
    assert_eq!(s.verifier.fetch_count(), 1);
}

#[tokio::test]
async fn unknown_kid_after_rotation_refreshes_once_then_accepts() {
    let s = setup().await;
    let new_key = s.identity.rotate_notification_key(false).expect("rotate");
    let token = new_key.sign_notification_token(&claims()).expect("sign");

    let verified = s
        .verifier
        .verify(Some(&bearer(&token)))
        .await
        .expect("accepted after refresh");
    assert_eq!(verified.key_id.as_deref(), Some(new_key.kid()));
    assert_eq!(s.identity.counts().keys, 2, "one refresh");

    let again = new_key.sign_notification_token(&claims()).expect("sign");
    assert!(s.verifier.verify(Some(&bearer(&again))).await.is_ok());
    assert_eq!(s.identity.counts().keys, 2, "known now: no further refresh");
}

#[tokio::test]
async fn flood_of_unknown_kids_refreshes_at_most_once() {
    let s = setup().await;
    let stranger = JwtSigner::generate().expect("key");
    let tokens: Vec<String> = (0..50)
        .map(|i| {
            let header = json!({"alg": "RS256", "typ": "JWT", "kid": format!("garbage-{i}")});
            bearer(&stranger.sign_with_header(&header, &claims()).expect("sign"))
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens.clone() {
        let verifier = s.verifier.clone();
        tasks.spawn(async move { verifier.verify(Some(&token)).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert!(matches!(
            result.expect("task"),
            Err(NotificationAuthError::UnknownKey { .. })
        ));
    }
    for token in &tokens {
        assert!(matches!(
            s.verifier.verify(Some(token)).await,
            Err(NotificationAuthError::UnknownKey { .. })
        ));
    }
    assert_eq!(
        s.identity.counts().keys,
        2,
        "start + one rate-limited refresh"
    );
    assert_eq!(s.identity.counts().openid_configuration, 2);
}

#[tokio::test]
async fn unreachable_jwks_at_start_is_reported_and_recovered_from() {
    let tls = TlsIdentity::self_signed_localhost().expect("certificate");
    let identity = IdentityService::new().expect("keys");
    // A bound but not listening socket: connections are refused, and the port is ours.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let addr = socket.local_addr().expect("addr");
    let url = format!("https://{addr}/v1/.well-known/OpenIdConfiguration");
    let mut config = NotificationAuthConfig::new(APP_ID, &url);
    config.retry_backoff_min = Duration::from_millis(20);
    config.retry_backoff_max = Duration::from_millis(100);
    let http = https_client(&[tls.certificate().clone()]).expect("client");
    let verifier = NotificationVerifier::start(config, http).await;

    let status = verifier.key_status();
    assert!(
        matches!(&status, Err(KeySourceError::Unreachable { url: u, .. }) if *u == url),
        "{status:?}"
    );
    assert!(
        status.unwrap_err().to_string().contains(&url),
        "the error names the URL"
    );
    let token = identity.sign_notification_token(&claims()).expect("sign");
    let refused = verifier.verify(Some(&bearer(&token))).await.unwrap_err();
    assert!(matches!(&refused, NotificationAuthError::KeysUnavailable { url: u, .. } if *u == url));
    assert_eq!(refused.status_code(), 503);

    // The service comes up on that port; the verifier notices by itself.
    let listener = socket
        .listen(64)
        .expect("listen")
        .into_std()
        .expect("std listener");
    let _server = serve_https_on(identity_router(identity.clone()), listener, &tls)
        .await
        .expect("serve");
    tokio::time::timeout(Duration::from_secs(30), verifier.wait_for_keys())
        .await
        .expect("keys loaded by the background retry");
    assert_eq!(verifier.key_status(), Ok(1));
    let verified = verifier
        .verify(Some(&bearer(&token)))
        .await
        .expect("valid now");
    assert_eq!(verified.tenant_id, TENANT);
    assert!(verifier.fetch_count() >= 2);
}

#[tokio::test]
async fn a_later_key_service_outage_keeps_the_loaded_keys() {
    let s = setup().await;
    s.identity.set_unavailable(true);
    let err = s.verifier.refresh_now().await.unwrap_err();
    assert!(
        matches!(err, KeySourceError::Status { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(s.verifier.key_status(), Ok(1), "old keys kept");
    let token = s.identity.sign_notification_token(&claims()).expect("sign");
    let verified = s
        .verifier
        .verify(Some(&bearer(&token)))
        .await
        .expect("still verifiable");
    assert_eq!(verified.tenant_id, TENANT);
}

#[tokio::test]
async fn clock_skew_is_bounded_at_exactly_five_minutes() {
    let s = setup().await;
    let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_737_600);
    let token = bearer(
        &s.identity
            .sign_notification_token(&NotificationClaims::new(APP_ID, TENANT, issued))
            .expect("sign"),
    );
    let expiry = issued + Duration::from_secs(65 * 60);
    let skew = Duration::from_secs(300);
    let at = |t: SystemTime| s.verifier.verify_at(Some(&token), t);

    assert!(at(issued).await.is_ok());
    assert!(at(issued - skew).await.is_ok(), "nbf minus skew");
    assert_eq!(
        at(issued - skew - Duration::from_secs(1)).await,
        Err(NotificationAuthError::NotYetValid)
    );
    assert!(at(expiry + skew).await.is_ok(), "exp plus skew");
    assert_eq!(
        at(expiry + skew + Duration::from_secs(1)).await,
        Err(NotificationAuthError::Expired)
    );
}
