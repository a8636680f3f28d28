//! A multi-tenant bot acts on each call with a Graph token of the call's own tenant (the
//! incoming notification token's verified `tid`): a call from a tenant that consented to the
//! app is answered — the emulator refuses a token of any other tenant with 403 `7504` — and
//! a call from a tenant that never consented fails cleanly (no token), without touching the
//! calls of the configured tenant.

#[path = "support/bot_emulator.rs"]
mod support;

use std::time::Duration;

use mediabot::adapters::demo_handler::DemoHandlerConfig;
use mediabot::call::{CallConfig, CallPhase};
use mediabot::emulator::RingRequest;
use mediabot::emulator::record::Outcome;
use mediabot::emulator::scenario::Scenario;

const WAIT: Duration = Duration::from_secs(10);

fn ring_in(tenant: &str, url: &str) -> RingRequest {
    let mut ring = RingRequest::new(url, Scenario::P2p);
    ring.tenant_id = Some(tenant.to_owned());
    ring
}

#[tokio::test]
async fn call_from_a_consented_tenant_is_answered_with_that_tenants_token() {
    let pair = support::start_demo(DemoHandlerConfig::default(), CallConfig::default()).await;
    let app = pair.emu.app().clone();
    assert!(
        pair.emu
            .identity()
            .consent_tenant(&app.client_id, "tenant-b")
    );
    let url = pair.bot.webhook_url().to_owned();

    let call = pair
        .ring_until_decided(ring_in("tenant-b", &url), WAIT)
        .await;
    assert_eq!(call.tenant_id, "tenant-b");
    assert_eq!(call.outcome, Outcome::Answered);
    // One answer, accepted at once: a token of the configured tenant would get 403 7504.
    let answers: Vec<(u16, Option<String>)> = call
        .requests()
        .filter(|r| r.path.ends_with("/answer"))
        .map(|r| (r.status, r.error_code.clone()))
        .collect();
    assert_eq!(answers, [(202, None)]);

    // The configured tenant's calls still work with the prefetched token.
    let call = pair
        .ring_until_decided(ring_in(&app.tenant_id, &url), WAIT)
        .await;
    assert_eq!(call.outcome, Outcome::Answered);
}

#[tokio::test]
async fn call_from_a_tenant_without_consent_fails_without_an_answer() {
    let pair = support::start_demo(DemoHandlerConfig::default(), CallConfig::default()).await;
    let url = pair.bot.webhook_url().to_owned();

    let id = pair.emu.ring(ring_in("tenant-c", &url)).expect("ring");
    let record = support::wait_bot(&pair.bot, &id, |r| r.phase == CallPhase::Failed, WAIT).await;
    assert!(
        record
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("invalid_client") || e.contains("token")),
        "{record:?}"
    );
    let call = pair.emu.call(&id).expect("known call");
    assert_eq!(call.outcome, Outcome::Pending);
    assert_eq!(call.requests().count(), 0);
}
