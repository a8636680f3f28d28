//! HTTPS between the bot and the emulator without turning verification off: a client built
//! with the peer's self-signed certificate connects; a client without it (or trusting another
//! certificate) is refused during the handshake. Also: PEM files, IPv6 loopback, and graceful
//! shutdown.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use mediabot::adapters::tls::{HttpsServer, TlsIdentity, https_client, serve_https};

fn hello_router() -> Router {
    Router::new().route("/hello", get(|| async { "hello over tls" }))
}

async fn serve(tls: &TlsIdentity) -> HttpsServer {
    serve_https(hello_router(), ([127, 0, 0, 1], 0).into(), tls)
        .await
        .expect("serve")
}

/// `GET /hello` on `server`.
async fn get_hello(
    client: &reqwest::Client,
    server: &HttpsServer,
) -> reqwest::Result<reqwest::Response> {
    client
        .get(format!("{}/hello", server.base_url()))
        .send()
        .await
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[tokio::test]
async fn client_trusting_the_certificate_talks_to_the_server() {
    let tls = TlsIdentity::self_signed_localhost().expect("certificate");
    let server = serve(&tls).await;
    assert_ne!(server.local_addr().port(), 0);
    let client = https_client(&[tls.certificate().clone()]).expect("client");

    let response = get_hello(&client, &server).await.expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN offers h2"
    );
    assert_eq!(response.text().await.expect("body"), "hello over tls");

    // The DNS name in the certificate works too.
    let by_name = format!("https://localhost:{}/hello", server.local_addr().port());
    let response = client.get(by_name).send().await.expect("request by name");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn clients_without_the_certificate_are_refused() {
    let tls = TlsIdentity::self_signed_localhost().expect("certificate");
    let server = serve(&tls).await;

    let plain = https_client(&[]).expect("client");
    let err = get_hello(&plain, &server)
        .await
        .expect_err("unknown issuer must be refused");
    let chain = error_chain(&err);
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");

    let stranger = TlsIdentity::self_signed_localhost().expect("another certificate");
    let wrong = https_client(&[stranger.certificate().clone()]).expect("client");
    let err = get_hello(&wrong, &server)
        .await
        .expect_err("another self-signed cert is no trust");
    assert!(error_chain(&err).to_lowercase().contains("certificate"));

    // A certificate for other names is refused even when trusted.
    let other_names = TlsIdentity::self_signed(&["bot.example.com"]).expect("certificate");
    let server2 = serve(&other_names).await;
    let trusting = https_client(&[other_names.certificate().clone()]).expect("client");
    let err = get_hello(&trusting, &server2)
        .await
        .expect_err("name mismatch");
    assert!(error_chain(&err).to_lowercase().contains("certificate"));
}

#[tokio::test]
async fn pem_files_are_loaded() {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("generate");
    let dir = std::env::temp_dir().join(format!("mediabot-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, generated.cert.pem()).expect("write cert");
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).expect("write key");

    let tls = TlsIdentity::load_or_generate(
        Some((cert_path.as_path(), key_path.as_path())),
        &[] as &[&str],
    )
    .expect("load PEM");
    assert_eq!(tls.certificate().as_ref(), generated.cert.der().as_ref());
    let server = serve(&tls).await;
    let client = https_client(&[tls.certificate().clone()]).expect("client");
    let response = get_hello(&client, &server).await.expect("request");
    assert_eq!(response.status(), 200);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn ipv6_loopback_is_covered_by_the_default_certificate() {
    let tls = TlsIdentity::self_signed_localhost().expect("certificate");
    let Ok(server) = serve_https(hello_router(), "[::1]:0".parse().expect("addr"), &tls).await
    else {
        eprintln!("no IPv6 loopback on this machine; skipping");
        return;
    };
    assert!(
        server.base_url().starts_with("https://[::1]:"),
        "{}",
        server.base_url()
    );
    let client = https_client(&[tls.certificate().clone()]).expect("client");
    let response = get_hello(&client, &server).await.expect("request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn graceful_shutdown_stops_the_server() {
    let tls = TlsIdentity::self_signed_localhost().expect("certificate");
    let server = serve(&tls).await;
    let url = format!("{}/hello", server.base_url());
    let client = https_client(&[tls.certificate().clone()]).expect("client");
    assert_eq!(client.get(&url).send().await.expect("up").status(), 200);

    server.shutdown(Duration::from_secs(1)).await;
    let fresh = https_client(&[tls.certificate().clone()]).expect("client");
    assert!(
        fresh.get(&url).send().await.is_err(),
        "nothing listens after shutdown"
    );
}
