//! A handler that never decides: the configured default decision is applied before Graph's
//! deadline — 15 s for regular calls, 5 s for policy-based-recording invitations — with
//! virtual time (no sleeping).

use std::time::{Duration, Instant};

use mediabot::call::wire::RejectReason;
use mediabot::call::{
    Action, ApiCommand, CallConfig, CallError, CallEvent, CallId, CallOutput, CallPhase, Calls,
    Decision, DecisionSource,
};

fn drain(calls: &mut Calls) -> Vec<CallOutput> {
    std::iter::from_fn(|| calls.poll_output()).collect()
}

fn commands(out: &[CallOutput]) -> Vec<&ApiCommand> {
    out.iter()
        .filter_map(|o| match o {
            CallOutput::Api(c) => Some(c),
            CallOutput::Event(_) => None,
        })
        .collect()
}

/// Jumps virtual time to each `poll_timeout` until `until`, collecting outputs with the time
/// they were produced.
fn run_until(calls: &mut Calls, mut now: Instant, until: Instant) -> Vec<(Instant, CallOutput)> {
    let mut seen: Vec<(Instant, CallOutput)> = drain(calls).into_iter().map(|o| (now, o)).collect();
    for _ in 0..1000 {
        match calls.poll_timeout() {
            Some(t) if t <= until => {
                assert!(t >= now, "poll_timeout went backwards");
                now = t;
                calls.handle_timeout(now);
                seen.extend(drain(calls).into_iter().map(|o| (now, o)));
            }
            _ => return seen,
        }
    }
    panic!("livelock: more than 1000 timeouts");
}

#[test]
fn default_decision_lands_before_the_15_second_deadline() {
    let t0 = Instant::now();
    let mut calls = Calls::new(CallConfig::default());
    let id = CallId::from("regular");
    calls.handle_incoming(t0, id.clone(), false);
    let seen = run_until(&mut calls, t0, t0 + Duration::from_secs(14));

    let sent: Vec<_> = seen
        .iter()
        .filter_map(|(t, o)| match o {
            CallOutput::Api(c) => Some((*t, c.clone())),
            CallOutput::Event(_) => None,
        })
        .collect();
    assert_eq!(sent.len(), 1, "exactly one decision request: {sent:?}");
    let (at, cmd) = &sent[0];
    assert!(matches!(
        cmd,
        ApiCommand::Reject {
            reason: RejectReason::Busy,
            ..
        }
    ));
    assert_eq!(cmd.deadline(), Some(t0 + Duration::from_secs(15)));
    assert!(*at < t0 + Duration::from_secs(15));
    assert_eq!(*at, t0 + Duration::from_millis(13_500));
    let call = calls.get(&id).expect("call still in the table");
    let record = call.decision().expect("decided");
    assert_eq!(record.source, DecisionSource::Default);
    assert_eq!(call.phase(), CallPhase::Deciding);

    // Graph never reports back on the request: the call is marked failed after the deadline.
    let after = run_until(
        &mut calls,
        t0 + Duration::from_secs(14),
        t0 + Duration::from_secs(20),
    );
    assert!(after.iter().any(
        |(t, o)| matches!(o, CallOutput::Event(CallEvent::Failed { .. }))
            && *t > t0 + Duration::from_secs(15)
    ));
    assert!(after.iter().all(|(_, o)| !matches!(o, CallOutput::Api(_))));
    assert_eq!(calls.get(&id).map(|c| c.phase()), Some(CallPhase::Failed));
}

#[test]
fn policy_recording_invitation_gets_the_default_before_5_seconds() {
    let t0 = Instant::now();
    let cfg = CallConfig {
        default_decision: Decision::Reject {
            reason: RejectReason::Forbidden,
        },
        ..CallConfig::default()
    };
    let mut calls = Calls::new(cfg);
    let id = CallId::from("pbr");
    calls.handle_incoming(t0, id.clone(), true);
    let first = drain(&mut calls);
    assert!(matches!(
        &first[..],
        [CallOutput::Event(CallEvent::Incoming { deadline, decide_by, .. })]
            if *deadline == t0 + Duration::from_secs(5) && *decide_by == t0 + Duration::from_secs(4)
    ));
    let seen = run_until(&mut calls, t0, t0 + Duration::from_secs(10));
    let (at, cmd) = seen
        .iter()
        .find_map(|(t, o)| match o {
            CallOutput::Api(c) => Some((*t, c)),
            CallOutput::Event(_) => None,
        })
        .expect("a default decision was sent");
    assert!(at < t0 + Duration::from_secs(5), "sent at {:?}", at - t0);
    assert!(matches!(
        cmd,
        ApiCommand::Reject {
            reason: RejectReason::Forbidden,
            ..
        }
    ));
    assert_eq!(
        calls.get(&id).map(|c| c.window()),
        Some(Duration::from_secs(5))
    );
}

#[test]
fn late_application_decision_is_an_error_and_sends_nothing() {
    let t0 = Instant::now();
    let mut calls = Calls::new(CallConfig::default());
    let id = CallId::from("late");
    calls.handle_incoming(t0, id.clone(), false);
    let _ = run_until(&mut calls, t0, t0 + Duration::from_secs(14));
    let err = calls
        .decide(
            t0 + Duration::from_secs(14),
            &id,
            Decision::Reject {
                reason: RejectReason::None,
            },
        )
        .expect_err("the default already decided");
    assert_eq!(
        err,
        CallError::AlreadyDecided {
            call_id: id.clone(),
            by: DecisionSource::Default
        }
    );
    assert!(commands(&drain(&mut calls)).is_empty());
}

#[test]
fn application_decision_in_time_cancels_the_default() {
    let t0 = Instant::now();
    let mut calls = Calls::new(CallConfig::default());
    let id = CallId::from("prompt");
    calls.handle_incoming(t0, id.clone(), false);
    let _ = drain(&mut calls);
    calls
        .decide(
            t0 + Duration::from_millis(30),
            &id,
            Decision::Reject {
                reason: RejectReason::None,
            },
        )
        .expect("first decision");
    let out = drain(&mut calls);
    assert!(out.contains(&CallOutput::Event(CallEvent::Decided {
        call_id: id.clone(),
        action: Action::Reject,
        source: DecisionSource::Application,
    })));
    assert_eq!(commands(&out).len(), 1);
    // The request is in flight; nothing more is sent up to and past the default's time.
    let later = run_until(&mut calls, t0, t0 + Duration::from_secs(16));
    assert!(later.iter().all(|(_, o)| !matches!(o, CallOutput::Api(_))));
}

#[test]
fn margin_larger_than_window_applies_the_default_at_once() {
    let t0 = Instant::now();
    let cfg = CallConfig {
        policy_recording_margin: Duration::from_secs(9),
        ..CallConfig::default()
    };
    let mut calls = Calls::new(cfg);
    calls.handle_incoming(t0, CallId::from("x"), true);
    assert_eq!(calls.poll_timeout(), Some(t0));
}
