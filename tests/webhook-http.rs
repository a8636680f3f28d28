//! The webhook's HTTP edge with `Router::oneshot` (no socket for the webhook; the JWKS is
//! served by the emulator's identity service on loopback HTTPS): bad tokens → 401 with a
//! Graph error body, 10 MiB → 413, malformed JSON → 400, legacy Skype body → 204, valid → 202
//! with the batch in the driver's inbox, full inbox → 503 + Retry-After, status endpoint.

#[path = "support/identity_server.rs"]
mod identity_server;

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use identity_server::IdentityServer;
use mediabot::adapters::call_records::CallRecords;
use mediabot::adapters::driver::DriverInput;
use mediabot::adapters::notification_auth::{NotificationAuthConfig, NotificationVerifier};
use mediabot::adapters::tls::{HttpsServer, https_client};
use mediabot::adapters::webhook::{DEFAULT_MAX_BODY, WebhookState, WebhookStats, router};
use mediabot::call::{CallConfig, CallId, CallRecord, Calls};
use mediabot::emulator::identity::IdentityService;
use mediabot::emulator::signing::{NotificationClaims, unsigned_token};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower::ServiceExt;

const APP_ID: &str = "8d3c9b2e-5a4f-4c1e-9b7a-2f6e1d0c3b4a";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

struct Setup {
    identity: IdentityService,
    _jwks: HttpsServer,
    app: Router,
    inbox: mpsc::Receiver<DriverInput>,
    records: CallRecords,
    stats: Arc<WebhookStats>,
}

async fn setup(inbox_capacity: usize) -> Setup {
    let idp = IdentityServer::start().await;
    let verifier = idp.verifier(APP_ID).await;
    let (tx, rx) = mpsc::channel(inbox_capacity);
    let records = CallRecords::new(100);
    let stats = Arc::new(WebhookStats::default());
    let app = router(
        WebhookState {
            auth: Arc::new(verifier),
            inbox: tx,
            records: records.clone(),
            stats: Arc::clone(&stats),
            max_body: DEFAULT_MAX_BODY,
        },
        "/api/calling",
    );
    Setup {
        identity: idp.identity,
        _jwks: idp.server,
        app,
        inbox: rx,
        records,
        stats,
    }
}

fn claims() -> NotificationClaims {
    NotificationClaims::new(APP_ID, TENANT, SystemTime::now())
}

fn incoming_body(call_id: &str) -> String {
    json!({
        "@odata.type": "#microsoft.graph.commsNotifications",
        "value": [{
            "@odata.type": "#microsoft.graph.commsNotification",
            "changeType": "created",
            "resourceUrl": format!("/communications/calls/{call_id}"),
            "resourceData": {
                "@odata.type": "#microsoft.graph.call",
                "id": call_id,
                "state": "incoming",
                "direction": "incoming",
                "source": {"identity": {"user": {"id": "u1", "displayName": "Ada"}}},
                "tenantId": TENANT
            }
        }]
    })
    .to_string()
}

fn post(path: &str, token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(body.into()).expect("request")
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

fn assert_graph_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(body["error"]["message"].is_string(), "body: {body}");
    assert!(
        body["error"]["innerError"]["request-id"].is_string(),
        "body: {body}"
    );
}

#[tokio::test]
async fn bad_tokens_get_401_with_a_graph_error_body() {
    let mut s = setup(8).await;
    let mut expired = claims();
    expired.exp = Some(expired.exp.expect("exp") - 2 * 65 * 60);
    expired.nbf = Some(expired.nbf.expect("nbf") - 2 * 65 * 60);
    let mut wrong_aud = claims();
    wrong_aud.aud = "someone-else".into();
    let mut wrong_iss = claims();
    wrong_iss.iss = "https://evil.example.com".into();
    let cases = [
        ("missing", None),
        (
            "unsigned",
            Some(unsigned_token(&claims()).expect("unsigned")),
        ),
        (
            "expired",
            Some(s.identity.sign_notification_token(&expired).expect("sign")),
        ),
        (
            "wrong audience",
            Some(
                s.identity
                    .sign_notification_token(&wrong_aud)
                    .expect("sign"),
            ),
        ),
        (
            "wrong issuer",
            Some(
                s.identity
                    .sign_notification_token(&wrong_iss)
                    .expect("sign"),
            ),
        ),
        ("garbage", Some("not.a.jwt".to_owned())),
    ];
    for (name, token) in &cases {
        let (status, headers, body) = send(
            &s.app,
            post("/api/calling", token.as_deref(), incoming_body("c1")),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            headers.get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()),
            Some(&b"Bearer"[..]),
            "{name}"
        );
        assert_graph_error(&body, "InvalidAuthenticationToken");
    }
    assert_eq!(s.stats.snapshot().unauthorized, cases.len() as u64);
    assert!(s.inbox.try_recv().is_err(), "nothing reached the driver");
}

#[tokio::test]
async fn valid_notification_is_acknowledged_202_and_queued() {
    let mut s = setup(8).await;
    let token = s.identity.sign_notification_token(&claims()).expect("sign");
    let (status, _, _) = send(
        &s.app,
        post("/api/calling", Some(&token), incoming_body("c1")),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Per-call callback URIs are accepted the same way.
    let (status, _, _) = send(
        &s.app,
        post("/api/calling/calls/c2", Some(&token), incoming_body("c2")),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for expected in ["c1", "c2"] {
        match s.inbox.try_recv() {
            Ok(DriverInput::Notifications { tenant, batch, .. }) => {
                assert_eq!(tenant.as_deref(), Some(TENANT));
                assert_eq!(batch.value.len(), 1);
                assert_eq!(batch.value[0].call_id(), Some(CallId::from(expected)));
            }
            other => panic!("expected a batch, got {other:?}"),
        }
    }
    assert_eq!(s.stats.snapshot().accepted, 2);
}

#[tokio::test]
async fn ten_mebibyte_body_is_413() {
    let mut s = setup(8).await;
    let token = s.identity.sign_notification_token(&claims()).expect("sign");
    // No Content-Length header (as if streamed): the limit is enforced while reading.
    let big = vec![b' '; 10 << 20];
    let (status, _, body) = send(&s.app, post("/api/calling", Some(&token), big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_graph_error(&body, "requestTooLarge");
    // A declared Content-Length over the limit is refused before reading.
    let mut req = post("/api/calling", Some(&token), incoming_body("c1"));
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, (10u64 << 20).into());
    let (status, _, _) = send(&s.app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(s.inbox.try_recv().is_err());
    assert_eq!(s.stats.snapshot().too_large, 2);
}

#[tokio::test]
async fn malformed_json_is_400_and_legacy_body_is_204() {
    let mut s = setup(8).await;
    let token = s.identity.sign_notification_token(&claims()).expect("sign");
    for bad in [&b"{not json"[..], b"[1,2,3]", b"", b"\xff\xfe"] {
        let (status, _, body) =
            send(&s.app, post("/api/calling", Some(&token), bad.to_vec())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_graph_error(&body, "invalidRequest");
    }
    let legacy = json!({
        "id": "legacy-1",
        "participants": [{"identity": {"user": {"id": "u"}}, "originator": true}],
        "isMultiparty": false,
        "presentedModalityTypes": ["audio"],
        "callState": "incoming",
        "tenantId": TENANT
    })
    .to_string();
    let (status, _, _) = send(&s.app, post("/api/calling", Some(&token), legacy)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(s.inbox.try_recv().is_err());
    let counts = s.stats.snapshot();
    assert_eq!((counts.malformed, counts.legacy), (4, 1));
}

#[tokio::test]
async fn full_inbox_is_503_with_retry_after() {
    let s = setup(1).await;
    let token = s.identity.sign_notification_token(&claims()).expect("sign");
    let (first, _, _) = send(
        &s.app,
        post("/api/calling", Some(&token), incoming_body("a")),
    )
    .await;
    assert_eq!(first, StatusCode::ACCEPTED);
    let (second, headers, body) = send(
        &s.app,
        post("/api/calling", Some(&token), incoming_body("b")),
    )
    .await;
    assert_eq!(second, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        headers.get(header::RETRY_AFTER).map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_graph_error(&body, "serviceNotAvailable");
    assert_eq!(s.stats.snapshot().inbox_full, 1);
}

#[tokio::test]
async fn status_endpoint_serves_call_records() {
    let s = setup(1).await;
    let (status, _, body) = send(
        &s.app,
        Request::get("/mediabot/v1/calls/nope")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_graph_error(&body, "itemNotFound");

    let mut calls = Calls::new(CallConfig::default());
    let id = CallId::from("rec-1");
    calls.handle_incoming(std::time::Instant::now(), id.clone(), true);
    s.records
        .put(CallRecord::of(calls.get(&id).expect("present")));
    let (status, _, body) = send(
        &s.app,
        Request::get("/mediabot/v1/calls/rec-1")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["callId"], "rec-1");
    assert_eq!(body["deadlineMs"], 5000);
    assert_eq!(body["decideByMs"], 4000);
    assert_eq!(body["phase"], "incoming");
    assert_eq!(body["policyRecording"], true);
    assert_eq!(body["action"], Value::Null);
}

#[tokio::test]
async fn random_and_mutated_bodies_never_panic_or_5xx() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let mut s = setup(4096).await;
    let token = s.identity.sign_notification_token(&claims()).expect("sign");
    let valid = incoming_body("fuzz");
    let mut rng = StdRng::seed_from_u64(7);
    for i in 0..300 {
        let body: Vec<u8> = match i % 3 {
            // Random bytes.
            0 => (0..rng.random_range(0..512))
                .map(|_| rng.random())
                .collect(),
            // A valid body with a few bytes flipped.
            1 => {
                let mut b = valid.clone().into_bytes();
                for _ in 0..rng.random_range(1..6) {
                    let at = rng.random_range(0..b.len());
                    b[at] = rng.random();
                }
                b
            }
            // A valid body cut short.
            _ => valid.as_bytes()[..rng.random_range(0..valid.len())].to_vec(),
        };
        let (status, _, _) = send(&s.app, post("/api/calling", Some(&token), body)).await;
        assert!(
            matches!(status.as_u16(), 202 | 204 | 400),
            "case {i}: unexpected {status}"
        );
        while s.inbox.try_recv().is_ok() {}
    }
}

#[tokio::test]
async fn unreachable_jwks_at_start_answers_503_with_retry_after_not_401() {
    let http = https_client(&[]).expect("client");
    let verifier = NotificationVerifier::start(
        NotificationAuthConfig::new(
            APP_ID,
            "https://127.0.0.1:1/v1/.well-known/OpenIdConfiguration",
        ),
        http,
    )
    .await;
    assert!(verifier.key_status().is_err(), "keys cannot have loaded");
    let (tx, mut rx) = mpsc::channel(8);
    let app = router(
        WebhookState {
            auth: Arc::new(verifier),
            inbox: tx,
            records: CallRecords::new(10),
            stats: Arc::new(WebhookStats::default()),
            max_body: DEFAULT_MAX_BODY,
        },
        "/api/calling",
    );
    // Any well-formed token: it cannot be judged without keys.
    let identity = IdentityService::new().expect("keys");
    let token = identity.sign_notification_token(&claims()).expect("sign");
    let (status, headers, body) = send(
        &app,
        post("/api/calling", Some(&token), incoming_body("c1")),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_graph_error(&body, "serviceNotAvailable");
    assert!(rx.try_recv().is_err());
}
