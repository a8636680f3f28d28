//! End to end: a handler that never decides on a policy-based-recording invitation — the
//! configured default decision reaches the emulator before the 5 s deadline.

#[path = "support/bot_emulator.rs"]
mod support;

use std::time::Duration;

use mediabot::adapters::demo_handler::{DemoAction, DemoHandlerConfig};
use mediabot::call::wire::RejectReason;
use mediabot::call::{Action, CallConfig, Decision, DecisionSource};
use mediabot::emulator::RingRequest;
use mediabot::emulator::record::Outcome;
use mediabot::emulator::scenario::Scenario;

#[tokio::test]
async fn silent_handler_gets_the_default_decision_before_5_seconds() {
    let demo = DemoHandlerConfig {
        policy_recording: DemoAction::Ignore,
        ..DemoHandlerConfig::default()
    };
    let call_cfg = CallConfig {
        default_decision: Decision::Reject {
            reason: RejectReason::Forbidden,
        },
        ..CallConfig::default()
    };
    let pair = support::start_demo(demo, call_cfg).await;
    let id = pair
        .emu
        .ring(RingRequest::new(
            pair.bot.webhook_url(),
            Scenario::PolicyRecording,
        ))
        .expect("ring");
    let call = pair
        .emu
        .wait_settled(&id, Duration::from_secs(20))
        .await
        .expect("settled");
    assert_eq!(call.answer_window, Duration::from_secs(5));
    assert_eq!(call.outcome, Outcome::Rejected, "not timed out");
    let decision = call.decision.expect("decision");
    assert_eq!(decision.body["reason"], "forbidden");
    assert!(decision.at < Duration::from_secs(5), "{:?}", decision.at);
    let record = pair
        .bot
        .record(&id.as_str().into())
        .expect("bot kept a record");
    assert!(record.policy_recording);
    assert_eq!(record.deadline_ms, 5_000);
    assert_eq!(record.decide_by_ms, 4_000);
    assert_eq!(record.action, Some(Action::Reject));
    assert_eq!(record.decision_source, Some(DecisionSource::Default));
}
