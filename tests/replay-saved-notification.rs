//! `mediabot replay`'s engine: a saved notification is signed with the emulator's key, sent to
//! a bot that trusts the emulator, and the report says what the bot did.

use std::time::Duration;

use mediabot::adapters::demo_handler::DemoHandlerConfig;
use mediabot::adapters::tls::https_client;
use mediabot::call::CallConfig;
use mediabot::emulator::demo::{Pair, start_pair};
use serde_json::{Value, json};

const P2P: &[u8] = include_bytes!("fixtures/incoming-p2p.json");
const PBR_DOTNET: &[u8] = include_bytes!("fixtures/incoming-policy-recording-dotnet.json");

async fn pair() -> Pair {
    start_pair(DemoHandlerConfig::default(), CallConfig::default())
        .await
        .expect("emulator and demo bot start")
}

#[tokio::test]
async fn replayed_incoming_call_is_answered_and_the_request_captured() {
    let pair = pair().await;
    let report = pair
        .emulator
        .replay(pair.bot.webhook_url(), P2P)
        .await
        .unwrap();
    assert_eq!(report.status, 202);
    assert_eq!(report.action, "answer");
    assert_eq!(report.deadline_ms, Some(15_000));
    assert_eq!(report.deadline_source.as_deref(), Some("bot"));
    let req = report.request.expect("the answer request was captured");
    assert_eq!(
        req.path,
        "/v1.0/communications/calls/57dab8b1-894c-409a-b240-bd8beae78896/answer"
    );
    assert_eq!(req.status, 202);
    assert_eq!(req.body["acceptedModalities"], json!(["audio"]));
    assert!(req.body["mediaConfig"]["blob"].is_string());
    // The emulator carries the call on: establishing/established reach the bot.
    let rec = pair
        .emulator
        .wait_until(
            "57dab8b1-894c-409a-b240-bd8beae78896",
            |c| c.notifications().count() >= 2,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        rec.notifications().next().map(|n| n.state.as_str()),
        Some("establishing")
    );
}

#[tokio::test]
async fn replayed_dotnet_policy_recording_invite_gets_the_5_s_deadline() {
    let pair = pair().await;
    let report = pair
        .emulator
        .replay(pair.bot.webhook_url(), PBR_DOTNET)
        .await
        .unwrap();
    assert_eq!(report.status, 202);
    assert_eq!(report.action, "answer");
    assert_eq!(report.deadline_ms, Some(5_000));
}

#[tokio::test]
async fn a_state_notification_is_sent_but_decides_nothing() {
    let pair = pair().await;
    let update = json!({
        "value": [{
            "changeType": "updated",
            "resourceUrl": "/communications/calls/0b1c2d3e-0000-4000-8000-000000000000",
            "resourceData": { "@odata.type": "#microsoft.graph.call", "state": "established" }
        }]
    });
    let report = pair
        .emulator
        .replay(pair.bot.webhook_url(), update.to_string().as_bytes())
        .await
        .unwrap();
    assert!((200..300).contains(&report.status), "{}", report.status);
    assert_eq!(report.action, "none");
    assert_eq!(report.deadline_ms, None);
    assert!(report.request.is_none());
}

#[tokio::test]
async fn not_a_notification_is_refused() {
    let pair = pair().await;
    let err = pair
        .emulator
        .replay(pair.bot.webhook_url(), b"[1, 2")
        .await
        .unwrap_err();
    assert!(matches!(err, mediabot::emulator::ReplayError::Parse(_)));
}

#[tokio::test]
async fn control_api_replays_for_bots_in_any_language() {
    let pair = pair().await;
    let client = https_client(&[pair.emulator.certificate().clone()]).unwrap();
    let fixture: Value = serde_json::from_slice(P2P).unwrap();
    let resp = client
        .post(format!("{}/replay", pair.emulator.control_url()))
        .json(&json!({ "botUrl": pair.bot.webhook_url(), "body": fixture }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    assert_eq!(report["status"], 202);
    assert_eq!(report["action"], "answer");
    assert_eq!(report["deadlineMs"], 15_000);
    assert_eq!(report["request"]["status"], 202);
}
