//! The bot's client-credentials token cache against the emulator's token endpoint, over real
//! loopback HTTPS, jumping tokio's clock forward (pause, advance, resume — the network itself
//! runs in real time, so no request timeout fires early): a token is fetched once, served from cache,
//! refreshed in the background before it expires, shared by concurrent callers, and wrong
//! credentials come back as typed errors.

#[path = "support/identity_server.rs"]
mod identity_server;

use std::time::Duration;

use identity_server::IdentityServer;
use mediabot::adapters::graph_token::{ClientCredentialsConfig, GraphTokenCache, TokenError};
use mediabot::adapters::tls::HttpsServer;
use mediabot::emulator::identity::{IdentityService, RegisteredApp};

const APP_ID: &str = "8d3c9b2e-5a4f-4c1e-9b7a-2f6e1d0c3b4a";
const SECRET: &str = "Xq8~s3cret.value";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// Moves tokio's clock forward by `by`, firing due timers, then lets real time run again.
async fn jump(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
    // Let woken tasks (the background refresh) run before the test goes on.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

struct Setup {
    identity: IdentityService,
    server: HttpsServer,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let IdentityServer {
        identity,
        server,
        http,
    } = IdentityServer::start().await;
    identity.register_app(RegisteredApp::new(APP_ID, SECRET, TENANT));
    Setup {
        identity,
        server,
        http,
    }
}

impl Setup {
    fn cache(&self, secret: &str) -> GraphTokenCache {
        let url = format!("{}/{TENANT}/oauth2/v2.0/token", self.server.base_url());
        GraphTokenCache::new(
            ClientCredentialsConfig::new(&url, APP_ID, secret),
            self.http.clone(),
        )
    }
}

#[tokio::test]
async fn right_secret_gets_a_token_that_is_then_served_from_cache() {
    let s = setup().await;
    let cache = s.cache(SECRET);
    let token = cache.prefetch().await.expect("token");
    let info = s
        .identity
        .validate_access_token(Some(&token.bearer()))
        .expect("the emulator accepts it");
    assert_eq!(
        (info.app_id.as_str(), info.tenant_id.as_str()),
        (APP_ID, TENANT)
    );
    assert_eq!(s.identity.counts().token_requests, 1);

    jump(Duration::from_secs(1800)).await;
    let again = cache.get().await.expect("cached token");
    assert_eq!(again, token);
    assert_eq!(
        s.identity.counts().token_requests,
        1,
        "second get did not hit the endpoint"
    );
    assert_eq!(cache.fetch_count(), 1);
}

#[tokio::test]
async fn token_is_refreshed_in_the_background_before_it_expires() {
    let s = setup().await;
    s.identity.set_token_lifetime(Duration::from_secs(3600));
    let cache = s.cache(SECRET); // refresh margin: 5 min
    let first = cache.prefetch().await.expect("token");

    jump(Duration::from_secs(3600 - 300 - 5)).await;
    assert_eq!(s.identity.counts().token_requests, 1, "not due yet");
    assert_eq!(cache.get().await.expect("cached"), first);

    jump(Duration::from_secs(10)).await;
    // The refresh was due 5 s ago; wait (real time, bounded) until its token is in the cache.
    // Meanwhile `get` keeps answering from cache with the old token.
    let mut second = cache.get().await.expect("token");
    for _ in 0..5000 {
        if second != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        second = cache.get().await.expect("token");
    }
    assert_ne!(second, first, "refreshed without a caller asking");
    assert_eq!(s.identity.counts().tokens_issued, 2);
    assert!(second.expires_at() > first.expires_at());
    assert!(
        tokio::time::Instant::now() < first.expires_at(),
        "refreshed before expiry"
    );
    assert_eq!(
        s.identity.counts().token_requests,
        2,
        "the caller paid nothing"
    );
}

#[tokio::test]
async fn wrong_secret_is_invalid_client() {
    let s = setup().await;
    let err = s.cache("not-the-secret").prefetch().await.unwrap_err();
    let TokenError::InvalidClient { description } = &err else {
        panic!("expected InvalidClient, got {err:?}");
    };
    assert!(
        description.starts_with("AADSTS7000215: Invalid client secret provided."),
        "{description}"
    );

    let unknown = {
        let url = format!("{}/{TENANT}/oauth2/v2.0/token", s.server.base_url());
        GraphTokenCache::new(
            ClientCredentialsConfig::new(&url, "no-such-app", SECRET),
            s.http.clone(),
        )
    };
    assert!(matches!(
        unknown.get().await,
        Err(TokenError::InvalidClient { .. })
    ));
}

#[tokio::test]
async fn other_refusals_and_failures_are_typed() {
    let s = setup().await;
    let url = format!("{}/{TENANT}/oauth2/v2.0/token", s.server.base_url());
    let mut config = ClientCredentialsConfig::new(&url, APP_ID, SECRET);
    config.scope = "User.Read".into();
    let err = GraphTokenCache::new(config, s.http.clone())
        .get()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TokenError::Rejected { status: 400, error, .. } if error == "invalid_scope"),
        "{err:?}"
    );

    let not_found = format!("{}/nowhere", s.server.base_url());
    let err = GraphTokenCache::new(
        ClientCredentialsConfig::new(&not_found, APP_ID, SECRET),
        s.http.clone(),
    )
    .get()
    .await
    .unwrap_err();
    assert!(
        matches!(err, TokenError::BadResponse { status: 404, .. }),
        "{err:?}"
    );

    // Connection refused: a bound, non-listening port.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let refused = format!(
        "https://{}/t/oauth2/v2.0/token",
        socket.local_addr().expect("addr")
    );
    let err = GraphTokenCache::new(
        ClientCredentialsConfig::new(&refused, APP_ID, SECRET),
        s.http.clone(),
    )
    .get()
    .await
    .unwrap_err();
    assert!(
        matches!(&err, TokenError::Network { url, .. } if *url == refused),
        "{err:?}"
    );
}

#[tokio::test]
async fn concurrent_gets_share_one_fetch() {
    let s = setup().await;
    let cache = s.cache(SECRET);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let cache = cache.clone();
        tasks.spawn(async move { cache.get().await });
    }
    let mut tokens = Vec::new();
    while let Some(result) = tasks.join_next().await {
        tokens.push(result.expect("task").expect("token"));
    }
    assert_eq!(tokens.len(), 20);
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "everyone got the same token"
    );
    assert_eq!(s.identity.counts().token_requests, 1, "one fetch");
}

#[tokio::test]
async fn failed_background_refresh_keeps_serving_the_unexpired_token() {
    let s = setup().await;
    s.identity.set_token_lifetime(Duration::from_secs(3600));
    let cache = s.cache(SECRET);
    let first = cache.prefetch().await.expect("token");
    // The secret is rotated on the server: every refresh from now on is refused.
    s.identity
        .register_app(RegisteredApp::new(APP_ID, "rotated-secret", TENANT));

    jump(Duration::from_secs(3600 - 300 + 1)).await;
    for _ in 0..5000 {
        if s.identity.counts().token_requests >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        s.identity.counts().token_requests >= 2,
        "the background refresh was tried"
    );
    assert_eq!(cache.get().await.expect("old token still usable"), first);

    // Once the old token is about to expire, the caller gets the real error.
    jump(Duration::from_secs(300 - 30)).await;
    assert!(matches!(
        cache.get().await,
        Err(TokenError::InvalidClient { .. })
    ));
    assert_eq!(s.identity.counts().tokens_issued, 1);
}
