//! End to end against the emulator: the application rejects a Teams caller with a reason, and
//! redirects a phone caller to another number; the emulator captured the bodies and the bot
//! saw the call end.

#[path = "support/bot_emulator.rs"]
mod support;

use std::time::Duration;

use mediabot::adapters::demo_handler::{DemoAction, DemoHandlerConfig};
use mediabot::call::wire::RejectReason;
use mediabot::call::{Action, CallConfig, CallPhase};
use mediabot::emulator::RingRequest;
use mediabot::emulator::record::{EndReason, Outcome};
use mediabot::emulator::scenario::Scenario;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn teams_caller_is_rejected_with_busy() {
    let demo = DemoHandlerConfig {
        teams_user: DemoAction::Reject(RejectReason::Busy),
        ..DemoHandlerConfig::default()
    };
    let pair = support::start_demo(demo, CallConfig::default()).await;
    let id = pair
        .emu
        .ring(RingRequest::new(pair.bot.webhook_url(), Scenario::P2p))
        .expect("ring");
    let call = pair.emu.wait_settled(&id, WAIT).await.expect("settled");
    assert_eq!(call.outcome, Outcome::Rejected);
    assert_eq!(call.ended_by, Some(EndReason::Rejected));
    let decision = call.decision.as_ref().expect("decision");
    assert_eq!(decision.body["reason"], "busy");
    assert_eq!(call.requests().count(), 1, "no answer, no retry");
    let record =
        support::wait_bot(&pair.bot, &id, |r| r.phase == CallPhase::Terminated, WAIT).await;
    assert_eq!(record.action, Some(Action::Reject));
    assert!(record.timings.decision_accepted.is_some());
}

#[tokio::test]
async fn phone_caller_is_redirected_to_another_number() {
    let demo = DemoHandlerConfig {
        phone: DemoAction::RedirectToPhone("+15555550123".into()),
        ..DemoHandlerConfig::default()
    };
    let pair = support::start_demo(demo, CallConfig::default()).await;
    let id = pair
        .emu
        .ring(RingRequest::new(pair.bot.webhook_url(), Scenario::Pstn))
        .expect("ring");
    let call = pair.emu.wait_settled(&id, WAIT).await.expect("settled");
    assert_eq!(call.outcome, Outcome::Redirected);
    let body = &call.decision.expect("decision").body;
    assert_eq!(
        body["targets"][0]["identity"]["phone"]["id"],
        "+15555550123"
    );
    assert_eq!(
        body["targets"][0]["@odata.type"],
        "#microsoft.graph.invitationParticipantInfo"
    );
    assert_eq!(body["timeout"], 30);
    let record =
        support::wait_bot(&pair.bot, &id, |r| r.phase == CallPhase::Terminated, WAIT).await;
    assert_eq!(record.action, Some(Action::Redirect));
}
