//! End to end against the emulator's fault knobs: Graph answering 429 with `Retry-After: 2`
//! (the call is still answered in time, after waiting), 500 then success (retried with
//! backoff), and 503 until past the deadline (the bot gives up cleanly before the deadline and
//! marks the call failed).

#[path = "support/bot_emulator.rs"]
mod support;

use std::time::Duration;

use mediabot::adapters::demo_handler::DemoHandlerConfig;
use mediabot::call::{CallConfig, CallPhase};
use mediabot::emulator::RingRequest;
use mediabot::emulator::fault::{Faults, ServerErrors, Throttle};
use mediabot::emulator::record::{Outcome, Phase};
use mediabot::emulator::scenario::Scenario;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn throttled_with_retry_after_2_is_still_answered_in_time() {
    let pair = support::start_demo(DemoHandlerConfig::default(), CallConfig::default()).await;
    let faults = Faults {
        throttle: Some(Throttle {
            count: 1,
            retry_after_secs: 2.0,
        }),
        ..Faults::default()
    };
    let id = pair
        .emu
        .ring(RingRequest::new(pair.bot.webhook_url(), Scenario::P2p).faults(faults))
        .expect("ring");
    let call = pair
        .emu
        .wait_until(&id, |c| c.state == Phase::Established, WAIT)
        .await
        .expect("established");
    assert_eq!(call.outcome, Outcome::Answered);
    let answers: Vec<_> = call
        .requests()
        .filter(|r| r.path.ends_with("/answer"))
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].status, 429);
    assert_eq!(answers[0].retry_after_secs, Some(2.0));
    assert_eq!(answers[1].status, 202);
    // The retry honoured Retry-After and still landed inside the 15 s window.
    assert!(answers[1].at - answers[0].at >= Duration::from_secs(2));
    assert!(answers[1].at < call.answer_window);
    let record =
        support::wait_bot(&pair.bot, &id, |r| r.phase == CallPhase::Established, WAIT).await;
    assert_eq!(record.attempts, 2);
}

#[tokio::test]
async fn server_error_then_success_is_retried() {
    let pair = support::start_demo(DemoHandlerConfig::default(), CallConfig::default()).await;
    let faults = Faults {
        server_error: Some(ServerErrors {
            status: 500,
            count: Some(1),
            until_ms: None,
            retry_after_secs: None,
        }),
        ..Faults::default()
    };
    let id = pair
        .emu
        .ring(RingRequest::new(pair.bot.webhook_url(), Scenario::P2p).faults(faults))
        .expect("ring");
    let call = pair
        .emu
        .wait_until(&id, |c| c.state == Phase::Established, WAIT)
        .await
        .expect("established");
    let statuses: Vec<_> = call
        .requests()
        .filter(|r| r.path.ends_with("/answer"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![500, 202]);
    let record =
        support::wait_bot(&pair.bot, &id, |r| r.phase == CallPhase::Established, WAIT).await;
    assert_eq!(record.attempts, 2);
}

#[tokio::test]
async fn unavailable_until_past_the_deadline_gives_up_cleanly() {
    // A policy-recording invitation: 5 s window. Graph answers 503 (Retry-After 1) for 6 s.
    let pair = support::start_demo(DemoHandlerConfig::default(), CallConfig::default()).await;
    let faults = Faults {
        server_error: Some(ServerErrors {
            status: 503,
            count: None,
            until_ms: Some(6_000),
            retry_after_secs: Some(1.0),
        }),
        ..Faults::default()
    };
    let id = pair
        .emu
        .ring(RingRequest::new(pair.bot.webhook_url(), Scenario::PolicyRecording).faults(faults))
        .expect("ring");
    let record = support::wait_bot(&pair.bot, &id, |r| r.phase == CallPhase::Failed, WAIT).await;
    let failure = record.failure.expect("failure recorded");
    assert!(failure.contains("deadline"), "{failure}");
    assert!(record.last_error.expect("last error").contains("503"));
    assert!(record.attempts >= 2);
    let call = pair.emu.wait_settled(&id, WAIT).await.expect("settled");
    assert_eq!(call.outcome, Outcome::TimedOut);
    // Every attempt was made before the deadline; none after.
    let answers: Vec<_> = call
        .requests()
        .filter(|r| r.path.ends_with("/answer"))
        .collect();
    assert_eq!(answers.len() as u32, record.attempts);
    assert!(
        answers
            .iter()
            .all(|r| r.status == 503 && r.at < call.answer_window)
    );
}
