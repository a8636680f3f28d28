//! The emulator's Graph REST surface, identity endpoints, notifier and control API over real
//! loopback HTTPS, driven with raw reqwest the way a bot written in any language would.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mediabot::adapters::tls::{HttpsServer, TlsIdentity, https_client, serve_https};
use mediabot::emulator::fault::{Faults, Throttle};
use mediabot::emulator::model::ModelConfig;
use mediabot::emulator::record::{EndReason, Outcome, Phase};
use mediabot::emulator::scenario::Scenario;
use mediabot::emulator::{Emulator, EmulatorConfig, EmulatorHandle, RingRequest};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// A bot that records every notification (headers, body) and answers 202.
struct FakeBot {
    _server: HttpsServer,
    url: String,
    rx: mpsc::UnboundedReceiver<(HeaderMap, Value)>,
}

impl FakeBot {
    async fn next(&mut self) -> (HeaderMap, Value) {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a notification within 10 s")
            .expect("bot channel open")
    }

    async fn next_state(&mut self) -> String {
        let (_, body) = self.next().await;
        state_of(&body)
    }
}

fn state_of(body: &Value) -> String {
    body["value"][0]["resourceData"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn start(model: ModelConfig) -> (EmulatorHandle, FakeBot, reqwest::Client) {
    let bot_tls = TlsIdentity::self_signed_localhost().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let router = Router::new()
        .route(
            "/api/calling",
            post(
                |State(tx): State<mpsc::UnboundedSender<(HeaderMap, Value)>>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let _ = tx.send((headers, v));
                    StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(tx.clone())
        .route(
            "/api/calls/{vm}",
            post(
                |State(tx): State<mpsc::UnboundedSender<(HeaderMap, Value)>>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let mut v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    v["_callback"] = Value::Bool(true);
                    let _ = tx.send((headers, v));
                    StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(tx);
    let server = serve_https(router, "127.0.0.1:0".parse().unwrap(), &bot_tls)
        .await
        .unwrap();
    let url = format!("{}/api/calling", server.base_url());
    let emu = Emulator::start(EmulatorConfig {
        model,
        trusted_bot_certs: vec![bot_tls.certificate().clone()],
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let client = https_client(&[emu.certificate().clone()]).unwrap();
    let bot = FakeBot {
        _server: server,
        url,
        rx,
    };
    (emu, bot, client)
}

async fn token(emu: &EmulatorHandle, client: &reqwest::Client) -> String {
    let app = emu.app();
    let resp = client
        .post(emu.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn answer_body(callback: &str) -> Value {
    json!({
        "callbackUri": callback,
        "acceptedModalities": ["audio"],
        "mediaConfig": { "@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": "{\"v\":1}" }
    })
}

async fn post_action(
    client: &reqwest::Client,
    emu: &EmulatorHandle,
    token: Option<&str>,
    id: &str,
    action: &str,
    body: &Value,
) -> reqwest::Response {
    let mut req = client
        .post(format!(
            "{}/communications/calls/{id}/{action}",
            emu.graph_url()
        ))
        .header("client-request-id", "11111111-2222-3333-4444-555555555555")
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn error_code(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code, body)
}

#[tokio::test]
async fn token_endpoint_checks_the_client_secret() {
    let (emu, _bot, client) = start(ModelConfig::default()).await;
    token(&emu, &client).await;
    let resp = client
        .post(emu.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", emu.app().client_id.as_str()),
            ("client_secret", "wrong"),
            ("scope", "https://graph.microsoft.com/.default"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
}

#[tokio::test]
async fn answer_is_validated_like_graph() {
    let (emu, mut bot, client) = start(ModelConfig::default()).await;
    let tok = token(&emu, &client).await;
    let id = emu.ring(RingRequest::new(&bot.url, Scenario::P2p)).unwrap();
    assert_eq!(bot.next_state().await, "incoming");

    let resp = post_action(&client, &emu, None, &id, "answer", &answer_body(&bot.url)).await;
    assert_eq!(error_code(resp).await.0, 401);

    let cases = [
        json!({ "mediaConfig": { "blob": "x" } }),
        json!({ "acceptedModalities": ["audio"] }),
        json!({ "acceptedModalities": ["audio"], "mediaConfig": { "blob": "x" }, "callbackUri": "http://127.0.0.1/cb" }),
    ];
    for body in cases {
        let resp = post_action(&client, &emu, Some(&tok), &id, "answer", &body).await;
        assert_eq!(
            resp.headers()["client-request-id"],
            "11111111-2222-3333-4444-555555555555"
        );
        let (status, code, err) = error_code(resp).await;
        assert_eq!((status, code.as_str()), (400, "invalidRequest"), "{body}");
        let inner = &err["error"]["innerError"];
        assert_eq!(
            inner["client-request-id"],
            "11111111-2222-3333-4444-555555555555"
        );
        assert!(inner["request-id"].is_string() && inner["date"].is_string());
    }
    let rec = emu.call(&id).unwrap();
    assert_eq!(rec.outcome, Outcome::Pending);
    assert_eq!(rec.requests().count(), 4);
    assert!(rec.requests().all(|r| r.status >= 400));
}

#[tokio::test]
async fn unknown_call_is_item_not_found() {
    let (emu, _bot, client) = start(ModelConfig::default()).await;
    let tok = token(&emu, &client).await;
    let resp = post_action(
        &client,
        &emu,
        Some(&tok),
        "no-such-call",
        "answer",
        &answer_body("https://127.0.0.1/x"),
    )
    .await;
    assert_eq!(error_code(resp).await.0, 404);
    let resp = client
        .get(format!(
            "{}/communications/calls/no-such-call",
            emu.graph_url()
        ))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (404, "itemNotFound"));
    let unmatched: Value = client
        .get(format!("{}/unmatched", emu.control_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths: Vec<&str> = unmatched["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/v1.0/communications/calls/no-such-call/answer",
            "/v1.0/communications/calls/no-such-call"
        ]
    );
}

#[tokio::test]
async fn a_call_is_decided_once_and_later_notifications_follow_the_callback_uri() {
    let (emu, mut bot, client) = start(ModelConfig::default()).await;
    let tok = token(&emu, &client).await;
    let id = emu
        .ring(RingRequest::new(&bot.url, Scenario::Pstn))
        .unwrap();
    let (_, incoming) = bot.next().await;
    assert_eq!(incoming["value"][0]["changeType"], "created");
    let callback = bot.url.replace("/api/calling", "/api/calls/vm-1");
    let resp = post_action(
        &client,
        &emu,
        Some(&tok),
        &id,
        "answer",
        &answer_body(&callback),
    )
    .await;
    assert_eq!(resp.status(), 202);
    let (_, establishing) = bot.next().await;
    assert_eq!(state_of(&establishing), "establishing");
    assert_eq!(establishing["_callback"], true);
    assert_eq!(bot.next_state().await, "established");

    let resp = post_action(
        &client,
        &emu,
        Some(&tok),
        &id,
        "reject",
        &json!({"reason": "busy"}),
    )
    .await;
    let (status, _, body) = error_code(resp).await;
    assert_eq!(status, 409, "{body}");

    let get = client
        .get(format!("{}/communications/calls/{id}", emu.graph_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let call: Value = get.json().await.unwrap();
    assert_eq!(call["state"], "established");

    let del = client
        .delete(format!("{}/communications/calls/{id}", emu.graph_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(bot.next_state().await, "terminating");
    let (_, terminated) = bot.next().await;
    assert_eq!(terminated["value"][0]["changeType"], "deleted");
    assert_eq!(
        terminated["value"][0]["resourceData"]["resultInfo"]["subcode"],
        7000
    );
    let rec = emu.wait_settled(&id, WAIT).await.unwrap();
    assert_eq!(rec.ended_by, Some(EndReason::BotHungUp));
    assert!(rec.notifications().all(|n| n.bot_status == Some(202)));
}

#[tokio::test]
async fn unanswered_call_times_out_and_a_late_answer_gets_8522() {
    let model = ModelConfig {
        answer_window: Duration::from_millis(300),
        ..ModelConfig::default()
    };
    let (emu, mut bot, client) = start(model).await;
    let tok = token(&emu, &client).await;
    let id = emu.ring(RingRequest::new(&bot.url, Scenario::P2p)).unwrap();
    assert_eq!(bot.next_state().await, "incoming");
    let rec = emu
        .wait_until(&id, |c| c.state == Phase::Terminated, WAIT)
        .await
        .unwrap();
    assert_eq!(rec.outcome, Outcome::TimedOut);
    assert_eq!(
        rec.result_info.as_ref().map(|r| (r.code, r.subcode)),
        Some((Some(408), Some(1106)))
    );
    let (_, terminated) = bot.next().await;
    assert_eq!(
        terminated["value"][0]["resourceData"]["resultInfo"]["code"],
        408
    );

    let resp = post_action(
        &client,
        &emu,
        Some(&tok),
        &id,
        "answer",
        &answer_body(&bot.url),
    )
    .await;
    let (status, code, body) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (404, "8522"));
    assert_eq!(body["error"]["message"], "Call not found.");
}

#[tokio::test]
async fn notifications_are_signed_with_a_published_key() {
    let (emu, mut bot, client) = start(ModelConfig::default()).await;
    let id = emu
        .ring(RingRequest::new(&bot.url, Scenario::Meeting))
        .unwrap();
    let (headers, body) = bot.next().await;
    assert_eq!(body["value"][0]["resourceData"]["id"], id.as_str());
    assert_eq!(headers["user-agent"], "Microsoft-Skype/3.0,(Calling/1.0)");
    let auth = headers["authorization"].to_str().unwrap();
    let jwt = auth.strip_prefix("Bearer ").expect("bearer token");

    let meta: Value = client
        .get(emu.openid_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_uri = meta["jwks_uri"].as_str().unwrap();
    let jwks: Value = client
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the token's kid is published");
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[emu.app().client_id.as_str()]);
    validation.set_issuer(&[meta["issuer"].as_str().unwrap()]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["aud"], emu.app().client_id.as_str());
    assert_eq!(claims["tid"], emu.app().tenant_id.as_str());
    assert_eq!(claims["tid"], body["value"][0]["resourceData"]["tenantId"]);
}

#[tokio::test]
async fn reorder_knob_sends_established_before_establishing() {
    let (emu, mut bot, client) = start(ModelConfig::default()).await;
    let tok = token(&emu, &client).await;
    let faults = Faults {
        reorder: true,
        ..Faults::default()
    };
    let id = emu
        .ring(RingRequest::new(&bot.url, Scenario::GroupCall).faults(faults))
        .unwrap();
    assert_eq!(bot.next_state().await, "incoming");
    let resp = post_action(
        &client,
        &emu,
        Some(&tok),
        &id,
        "answer",
        &answer_body(&bot.url),
    )
    .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(bot.next_state().await, "established");
    assert_eq!(bot.next_state().await, "establishing");
    assert_eq!(emu.call(&id).unwrap().state, Phase::Established);
}

#[tokio::test]
async fn throttle_knob_returns_retry_after_then_accepts() {
    let (emu, mut bot, client) = start(ModelConfig::default()).await;
    let tok = token(&emu, &client).await;
    let faults = Faults {
        throttle: Some(Throttle {
            count: 1,
            retry_after_secs: 2.0,
        }),
        ..Faults::default()
    };
    let id = emu
        .ring(RingRequest::new(&bot.url, Scenario::P2p).faults(faults))
        .unwrap();
    assert_eq!(bot.next_state().await, "incoming");
    let resp = post_action(
        &client,
        &emu,
        Some(&tok),
        &id,
        "answer",
        &answer_body(&bot.url),
    )
    .await;
    assert_eq!(resp.headers()["retry-after"], "2");
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (429, "TooManyRequests"));
    let resp = post_action(
        &client,
        &emu,
        Some(&tok),
        &id,
        "answer",
        &answer_body(&bot.url),
    )
    .await;
    assert_eq!(resp.status(), 202);
    let rec = emu.call(&id).unwrap();
    let statuses: Vec<u16> = rec.requests().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 202]);
}

#[tokio::test]
async fn sdk_serialized_requests_are_accepted() {
    let (emu, mut bot, client) = start(ModelConfig::default()).await;
    let tok = token(&emu, &client).await;
    // Kiota-generated SDKs: camelCase, @odata.type on nested objects, extra fields.
    let id = emu.ring(RingRequest::new(&bot.url, Scenario::P2p)).unwrap();
    bot.next().await;
    let kiota = json!({
        "acceptedModalities": ["audio"],
        "callOptions": { "@odata.type": "#microsoft.graph.incomingCallOptions", "isContentSharingNotificationEnabled": true },
        "callbackUri": bot.url,
        "mediaConfig": { "@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": "<blob>", "removeFromDefaultAudioGroup": false },
        "participantCapacity": 200
    });
    let resp = post_action(&client, &emu, Some(&tok), &id, "answer", &kiota).await;
    assert_eq!(resp.status(), 202);
    // The .NET communications SDK: PascalCase enum values.
    let id = emu.ring(RingRequest::new(&bot.url, Scenario::P2p)).unwrap();
    let resp = post_action(
        &client,
        &emu,
        Some(&tok),
        &id,
        "reject",
        &json!({"reason": "Busy", "@odata.type": "#microsoft.graph.rejectPostRequestBody"}),
    )
    .await;
    assert_eq!(resp.status(), 202);
    let id = emu
        .ring(RingRequest::new(&bot.url, Scenario::Pstn))
        .unwrap();
    let redirect = json!({
        "targets": [{
            "@odata.type": "#microsoft.graph.invitationParticipantInfo",
            "identity": { "@odata.type": "#microsoft.graph.identitySet",
                          "phone": { "@odata.type": "#microsoft.graph.identity", "id": "+12345678901" } }
        }],
        "timeout": 30,
        "callbackUri": bot.url
    });
    let resp = post_action(&client, &emu, Some(&tok), &id, "redirect", &redirect).await;
    assert_eq!(resp.status(), 202);
    // The beta endpoint is served too.
    let id = emu.ring(RingRequest::new(&bot.url, Scenario::P2p)).unwrap();
    let resp = client
        .post(format!(
            "{}/beta/communications/calls/{id}/reject",
            emu.base_url()
        ))
        .bearer_auth(&tok)
        .json(&json!({"reason": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn control_api_rings_reads_and_hangs_up() {
    let (emu, mut bot, client) = start(ModelConfig::default()).await;
    let tok = token(&emu, &client).await;
    let resp = client
        .post(format!("{}/calls", emu.control_url()))
        .json(&json!({ "botUrl": bot.url, "scenario": "policyRecording" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["answerWindowMs"], 5000);
    let (_, incoming) = bot.next().await;
    assert_eq!(
        incoming["value"][0]["resourceData"]["applicationMetadata"]["botData"]["inviteReasons"][0],
        "PolicyBasedRecording"
    );
    let resp = post_action(
        &client,
        &emu,
        Some(&tok),
        &id,
        "answer",
        &answer_body(&bot.url),
    )
    .await;
    assert_eq!(resp.status(), 202);
    let waited: Value = client
        .get(format!(
            "{}/calls/{id}/wait?state=established&timeoutMs=10000",
            emu.control_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(waited["state"], "established");
    let resp = client
        .post(format!("{}/calls/{id}/hangup", emu.control_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let rec: Value = client
        .get(format!(
            "{}/calls/{id}/wait?settled=true",
            emu.control_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rec["endedBy"], "callerHungUp");
    assert_eq!(rec["outcome"], "answered");
    let kinds: Vec<&str> = rec["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"request") && kinds.contains(&"notification"));
    let list: Value = client
        .get(format!("{}/calls", emu.control_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["value"][0]["id"], id.as_str());
    let again = client
        .post(format!("{}/calls/{id}/hangup", emu.control_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn server_error_and_delay_knobs_set_globally_through_the_control_api() {
    let (emu, mut bot, client) = start(ModelConfig::default()).await;
    let tok = token(&emu, &client).await;
    let faults = json!({
        "serverError": { "status": 503, "count": 2, "retryAfterSecs": 1 },
        "delayMs": 50,
        "duplicate": true
    });
    let resp = client
        .put(format!("{}/faults", emu.control_url()))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = emu.ring(RingRequest::new(&bot.url, Scenario::P2p)).unwrap();
    // The duplicate knob delivers the incoming notification twice.
    assert_eq!(bot.next_state().await, "incoming");
    assert_eq!(bot.next_state().await, "incoming");
    for _ in 0..2 {
        let resp = post_action(
            &client,
            &emu,
            Some(&tok),
            &id,
            "answer",
            &answer_body(&bot.url),
        )
        .await;
        assert_eq!(resp.headers()["retry-after"], "1");
        let (status, code, _) = error_code(resp).await;
        assert_eq!((status, code.as_str()), (503, "serviceNotAvailable"));
    }
    let resp = post_action(
        &client,
        &emu,
        Some(&tok),
        &id,
        "answer",
        &answer_body(&bot.url),
    )
    .await;
    assert_eq!(resp.status(), 202);
    let rec = emu.call(&id).unwrap();
    let seen: Vec<(u16, f64)> = rec
        .requests()
        .map(|r| (r.status, r.delay.as_secs_f64()))
        .collect();
    assert_eq!(seen, [(503, 0.05), (503, 0.05), (202, 0.05)]);
    assert!(rec.notifications().filter(|n| n.duplicate).count() >= 1);
    // A call rung with its own knobs ignores the global ones.
    let id = emu
        .ring(RingRequest::new(&bot.url, Scenario::P2p).faults(Faults::default()))
        .unwrap();
    let resp = post_action(
        &client,
        &emu,
        Some(&tok),
        &id,
        "answer",
        &answer_body(&bot.url),
    )
    .await;
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn an_unreachable_bot_is_recorded_and_the_call_times_out() {
    let model = ModelConfig {
        answer_window: Duration::from_millis(200),
        ..ModelConfig::default()
    };
    let (emu, _bot, _client) = start(model).await;
    // Nothing listens on port 9 of 127.0.0.1 (discard) in the test environment.
    let id = emu
        .ring(RingRequest::new(
            "https://127.0.0.1:9/api/calling",
            Scenario::Pstn,
        ))
        .unwrap();
    let rec = emu.wait_settled(&id, WAIT).await.unwrap();
    assert_eq!(rec.outcome, Outcome::TimedOut);
    let first = rec.notifications().next().unwrap();
    assert_eq!(first.bot_status, None);
    assert!(first.error.is_some());
}
