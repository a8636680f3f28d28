//! Graph refuses the bot's cached access token (401 `InvalidAuthenticationToken`, as after a
//! revocation or a signing-key rollover): the bot drops that token, fetches a new one and
//! sends the answer again, inside the call's deadline.

#[path = "support/bot_emulator.rs"]
mod support;

use std::time::Duration;

use mediabot::adapters::demo_handler::DemoHandlerConfig;
use mediabot::call::CallConfig;
use mediabot::emulator::RingRequest;
use mediabot::emulator::record::Outcome;
use mediabot::emulator::scenario::Scenario;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_revoked_token_is_replaced_and_the_call_is_still_answered() {
    let pair = support::start_demo(DemoHandlerConfig::default(), CallConfig::default()).await;
    let url = pair.bot.webhook_url().to_owned();

    // A first call with the prefetched token.
    let call = pair
        .ring_until_decided(RingRequest::new(&url, Scenario::P2p), WAIT)
        .await;
    assert_eq!(call.outcome, Outcome::Answered);
    let issued = pair.emu.identity().counts().tokens_issued;

    pair.emu.identity().revoke_issued_tokens();
    let call = pair
        .ring_until_decided(RingRequest::new(&url, Scenario::P2p), WAIT)
        .await;
    assert_eq!(call.outcome, Outcome::Answered);
    let answered_at = call.requests().last().map(|r| r.at).expect("requests");
    assert!(answered_at < call.answer_window);
    let answers: Vec<(u16, Option<String>)> = call
        .requests()
        .filter(|r| r.path.ends_with("/answer"))
        .map(|r| (r.status, r.error_code.clone()))
        .collect();
    assert_eq!(
        answers,
        [
            (401, Some("InvalidAuthenticationToken".to_owned())),
            (202, None)
        ]
    );
    // Exactly one new token was fetched for the retry (the background refresh did not run).
    assert_eq!(pair.emu.identity().counts().tokens_issued, issued + 1);

    // The new token serves the next call without another fetch.
    let call = pair
        .ring_until_decided(RingRequest::new(&url, Scenario::P2p), WAIT)
        .await;
    assert_eq!(call.outcome, Outcome::Answered);
    assert_eq!(call.requests().count(), 1);
    assert_eq!(pair.emu.identity().counts().tokens_issued, issued + 1);
}
