//! The call state machine and calls table with virtual time: duplicated and reordered
//! notifications, unknown calls, one decision per call, `resultInfo` kept, cleanup, and
//! retries scheduled as data within the deadline.

use std::time::{Duration, Instant};

use mediabot::call::wire::{
    CallState, InvitationParticipantInfo, MediaConfig, Modality, RejectReason, ResultInfo,
};
use mediabot::call::{
    Action, Answer, ApiCommand, CallConfig, CallError, CallEvent, CallFailure, CallId, CallOutput,
    CallPhase, Calls, Decision, DecisionSource, Disposition, GraphApiError, Retry,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn drain(calls: &mut Calls) -> Vec<CallOutput> {
    std::iter::from_fn(|| calls.poll_output()).collect()
}

fn only_command(out: Vec<CallOutput>) -> ApiCommand {
    let cmds: Vec<_> = out
        .into_iter()
        .filter_map(|o| match o {
            CallOutput::Api(c) => Some(c),
            CallOutput::Event(_) => None,
        })
        .collect();
    assert_eq!(cmds.len(), 1, "expected one command, got {cmds:?}");
    cmds.into_iter().next().expect("length checked")
}

fn answer() -> Decision {
    Decision::Answer(Answer {
        media_config: MediaConfig::app_hosted("{}"),
        accepted_modalities: vec![Modality::Audio],
        participant_capacity: None,
    })
}

fn graph_error(status: u16, retry: Retry) -> GraphApiError {
    GraphApiError {
        status,
        code: status.to_string(),
        message: "test".into(),
        retry,
    }
}

/// A call answered at t0+10ms whose answer request is in flight.
fn answered_call(t0: Instant) -> (Calls, CallId, ApiCommand) {
    let mut calls = Calls::new(CallConfig {
        callback_base: Some("https://bot.test/api/calling/calls".into()),
        ..CallConfig::default()
    });
    let id = CallId::from("call-1");
    assert_eq!(
        calls.handle_incoming(t0, id.clone(), false),
        Disposition::NewCall
    );
    let _ = drain(&mut calls);
    calls.decide(t0 + ms(10), &id, answer()).expect("decide");
    let cmd = only_command(drain(&mut calls));
    (calls, id, cmd)
}

#[test]
fn answer_carries_the_per_call_callback_uri_and_deadline() {
    let t0 = Instant::now();
    let (_calls, _id, cmd) = answered_call(t0);
    match cmd {
        ApiCommand::Answer {
            callback_uri,
            deadline,
            answer,
            ..
        } => {
            assert_eq!(
                callback_uri.as_deref(),
                Some("https://bot.test/api/calling/calls/call-1")
            );
            assert_eq!(deadline, t0 + Duration::from_secs(15));
            assert_eq!(answer.accepted_modalities, vec![Modality::Audio]);
        }
        other => panic!("expected answer, got {other:?}"),
    }
}

#[test]
fn duplicated_incoming_notification_is_idempotent() {
    let t0 = Instant::now();
    let mut calls = Calls::new(CallConfig::default());
    let id = CallId::from("dup");
    assert_eq!(
        calls.handle_incoming(t0, id.clone(), false),
        Disposition::NewCall
    );
    let first = drain(&mut calls);
    assert_eq!(first.len(), 1);
    assert_eq!(
        calls.handle_incoming(t0 + ms(100), id.clone(), false),
        Disposition::Duplicate
    );
    assert_eq!(
        calls.handle_state(t0 + ms(100), &id, CallState::Incoming, None),
        Disposition::Duplicate
    );
    assert!(drain(&mut calls).is_empty());
    // The deadline still counts from the first arrival.
    assert_eq!(calls.poll_timeout(), Some(t0 + ms(13_500)));
    assert_eq!(calls.stats().duplicates, 2);
    assert_eq!(calls.stats().incoming, 1);
}

#[test]
fn established_before_establishing_is_tolerated() {
    let t0 = Instant::now();
    let (mut calls, id, cmd) = answered_call(t0);
    calls.handle_api_outcome(t0 + ms(20), cmd.request(), Ok(()));
    assert_eq!(calls.get(&id).map(|c| c.phase()), Some(CallPhase::Accepted));
    assert_eq!(
        calls.handle_state(t0 + ms(30), &id, CallState::Established, None),
        Disposition::Applied
    );
    assert_eq!(
        calls.handle_state(t0 + ms(31), &id, CallState::Establishing, None),
        Disposition::Stale
    );
    assert_eq!(
        calls.handle_state(t0 + ms(32), &id, CallState::Established, None),
        Disposition::Duplicate
    );
    let out = drain(&mut calls);
    let phases: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            CallOutput::Event(CallEvent::PhaseChanged { phase, .. }) => Some(*phase),
            _ => None,
        })
        .collect();
    assert_eq!(phases, vec![CallPhase::Established]);
    assert_eq!(
        calls.get(&id).map(|c| c.phase()),
        Some(CallPhase::Established)
    );
    assert_eq!(calls.stats().stale, 1);
    assert_eq!(calls.stats().duplicates, 1);
}

#[test]
fn establishing_before_the_answer_response_counts_as_accepted() {
    let t0 = Instant::now();
    let (mut calls, id, cmd) = answered_call(t0);
    calls.handle_state(t0 + ms(15), &id, CallState::Establishing, None);
    calls.handle_state(t0 + ms(16), &id, CallState::Established, None);
    // The 202 arrives last and changes nothing.
    calls.handle_api_outcome(t0 + ms(17), cmd.request(), Ok(()));
    let out = drain(&mut calls);
    let accepted = out
        .iter()
        .filter(|o| matches!(o, CallOutput::Event(CallEvent::DecisionAccepted { .. })))
        .count();
    assert_eq!(accepted, 1);
    let call = calls.get(&id).expect("present");
    assert_eq!(call.phase(), CallPhase::Established);
    assert_eq!(call.timings().decision_accepted, Some(t0 + ms(15)));
    assert_eq!(call.timings().established, Some(t0 + ms(16)));
}

#[test]
fn update_for_an_unknown_call_is_counted_and_ignored() {
    let t0 = Instant::now();
    let mut calls = Calls::new(CallConfig::default());
    assert_eq!(
        calls.handle_state(t0, &CallId::from("nobody"), CallState::Established, None),
        Disposition::UnknownCall
    );
    assert!(drain(&mut calls).is_empty());
    assert!(calls.is_empty());
    assert_eq!(calls.stats().unknown_call, 1);
    assert_eq!(
        calls.decide(t0, &CallId::from("nobody"), answer()),
        Err(CallError::UnknownCall(CallId::from("nobody")))
    );
}

#[test]
fn a_call_is_decided_once() {
    let t0 = Instant::now();
    let (mut calls, id, _cmd) = answered_call(t0);
    let second = calls.decide(
        t0 + ms(11),
        &id,
        Decision::Reject {
            reason: RejectReason::Busy,
        },
    );
    assert_eq!(
        second,
        Err(CallError::AlreadyDecided {
            call_id: id.clone(),
            by: DecisionSource::Application
        })
    );
    assert!(drain(&mut calls).is_empty());
    assert_eq!(
        calls
            .get(&id)
            .and_then(|c| c.decision())
            .map(|d| d.decision.action()),
        Some(Action::Answer)
    );
}

#[test]
fn invalid_redirect_is_refused_and_the_call_stays_undecided() {
    let t0 = Instant::now();
    let mut calls = Calls::new(CallConfig::default());
    let id = CallId::from("r");
    calls.handle_incoming(t0, id.clone(), false);
    let bad = Decision::Redirect {
        targets: vec![InvitationParticipantInfo::default()],
        timeout: Some(Duration::from_secs(5)),
    };
    assert!(matches!(
        calls.decide(t0, &id, bad),
        Err(CallError::InvalidDecision { .. })
    ));
    assert_eq!(calls.get(&id).map(|c| c.phase()), Some(CallPhase::Incoming));
}

#[test]
fn terminated_keeps_result_info_and_the_call_is_cleaned_up_after_grace() {
    let t0 = Instant::now();
    let (mut calls, id, cmd) = answered_call(t0);
    calls.handle_api_outcome(t0 + ms(20), cmd.request(), Ok(()));
    calls.handle_state(t0 + ms(30), &id, CallState::Established, None);
    let info = ResultInfo::new(200, 4521, "ended by the other participant");
    let t_end = t0 + Duration::from_secs(60);
    calls.handle_state(t_end, &id, CallState::Terminated, Some(info.clone()));
    // A duplicated terminated notification without resultInfo keeps the first one.
    assert_eq!(
        calls.handle_state(t_end + ms(1), &id, CallState::Terminated, None),
        Disposition::Duplicate
    );
    let out = drain(&mut calls);
    assert!(out.contains(&CallOutput::Event(CallEvent::Terminated {
        call_id: id.clone(),
        result_info: Some(info.clone()),
    })));
    let call = calls.get(&id).expect("kept during grace");
    assert_eq!(call.phase(), CallPhase::Terminated);
    assert_eq!(call.result_info(), Some(&info));
    // No output after terminated, hang-up refused.
    assert_eq!(
        calls.hang_up(t_end, &id),
        Err(CallError::AlreadyEnded(id.clone()))
    );
    assert!(drain(&mut calls).is_empty());

    let grace = calls.config().cleanup_grace;
    assert_eq!(calls.poll_timeout(), Some(t_end + grace));
    calls.handle_timeout(t_end + grace);
    assert_eq!(
        drain(&mut calls),
        vec![CallOutput::Event(CallEvent::Removed {
            call_id: id.clone()
        })]
    );
    assert!(calls.get(&id).is_none());
    assert_eq!(calls.poll_timeout(), None);
    assert_eq!(calls.stats().removed, 1);
}

#[test]
fn caller_hangs_up_before_the_decision() {
    let t0 = Instant::now();
    let mut calls = Calls::new(CallConfig::default());
    let id = CallId::from("gone");
    calls.handle_incoming(t0, id.clone(), false);
    calls.handle_state(t0 + ms(500), &id, CallState::Terminated, None);
    let _ = drain(&mut calls);
    assert_eq!(
        calls.decide(t0 + ms(600), &id, answer()),
        Err(CallError::AlreadyEnded(id.clone()))
    );
    // The default never fires for an ended call.
    let due = calls.poll_timeout().expect("cleanup");
    calls.handle_timeout(due);
    assert!(
        drain(&mut calls)
            .iter()
            .all(|o| !matches!(o, CallOutput::Api(_)))
    );
}

#[test]
fn throttled_answer_is_retried_after_retry_after_and_lands_in_time() {
    let t0 = Instant::now();
    let (mut calls, id, cmd) = answered_call(t0);
    calls.handle_api_outcome(
        t0 + ms(20),
        cmd.request(),
        Err(graph_error(429, Retry::After(Duration::from_secs(2)))),
    );
    assert!(drain(&mut calls).is_empty());
    assert_eq!(calls.poll_timeout(), Some(t0 + ms(2020)));
    calls.handle_timeout(t0 + ms(2020));
    let retry = only_command(drain(&mut calls));
    assert_eq!(retry.request().seq, 2);
    assert_eq!(retry.name(), "answer");
    // A late outcome for the first attempt is ignored.
    calls.handle_api_outcome(t0 + ms(2021), cmd.request(), Ok(()));
    assert_eq!(calls.get(&id).map(|c| c.phase()), Some(CallPhase::Deciding));
    calls.handle_api_outcome(t0 + ms(2030), retry.request(), Ok(()));
    let call = calls.get(&id).expect("present");
    assert_eq!(call.phase(), CallPhase::Accepted);
    assert_eq!(call.decision().map(|d| d.attempts), Some(2));
}

#[test]
fn server_error_then_success_uses_backoff() {
    let t0 = Instant::now();
    let (mut calls, id, cmd) = answered_call(t0);
    calls.handle_api_outcome(
        t0 + ms(20),
        cmd.request(),
        Err(graph_error(500, Retry::Backoff)),
    );
    let at = calls.poll_timeout().expect("retry scheduled");
    assert_eq!(at, t0 + ms(20) + calls.config().backoff_initial);
    calls.handle_timeout(at);
    let retry = only_command(drain(&mut calls));
    calls.handle_api_outcome(at + ms(5), retry.request(), Ok(()));
    assert_eq!(calls.get(&id).map(|c| c.phase()), Some(CallPhase::Accepted));
}

#[test]
fn unavailable_until_past_the_deadline_gives_up_cleanly() {
    let t0 = Instant::now();
    let (mut calls, id, cmd) = answered_call(t0);
    let deadline = t0 + Duration::from_secs(15);
    let mut now = t0 + ms(20);
    let mut request = cmd.request().clone();
    let mut attempts = 1;
    loop {
        calls.handle_api_outcome(
            now,
            &request,
            Err(graph_error(503, Retry::After(Duration::from_secs(3)))),
        );
        let out = drain(&mut calls);
        if out
            .iter()
            .any(|o| matches!(o, CallOutput::Event(CallEvent::Failed { .. })))
        {
            assert!(out.iter().all(|o| !matches!(o, CallOutput::Api(_))));
            break;
        }
        now = calls.poll_timeout().expect("retry scheduled");
        assert!(now < deadline, "retry past the deadline");
        calls.handle_timeout(now);
        request = only_command(drain(&mut calls)).request().clone();
        attempts += 1;
        assert!(attempts < 20);
    }
    let call = calls.get(&id).expect("kept");
    assert_eq!(call.phase(), CallPhase::Failed);
    assert!(matches!(
        call.failure(),
        Some(CallFailure::DeadlineExceeded { last_error: Some(e) }) if e.status == 503
    ));
    assert_eq!(
        attempts, 5,
        "t=0,3,6,9,12 s; 15 s would be past the deadline"
    );
}

#[test]
fn client_error_is_not_retried() {
    let t0 = Instant::now();
    let (mut calls, id, cmd) = answered_call(t0);
    calls.handle_api_outcome(
        t0 + ms(20),
        cmd.request(),
        Err(graph_error(403, Retry::Never)),
    );
    let out = drain(&mut calls);
    assert!(out.iter().all(|o| !matches!(o, CallOutput::Api(_))));
    assert!(matches!(
        calls.get(&id).and_then(|c| c.failure()),
        Some(CallFailure::Refused(e)) if e.status == 403
    ));
}

#[test]
fn hang_up_sends_delete_and_waits_for_terminated() {
    let t0 = Instant::now();
    let (mut calls, id, cmd) = answered_call(t0);
    calls.handle_api_outcome(t0 + ms(20), cmd.request(), Ok(()));
    calls.handle_state(t0 + ms(30), &id, CallState::Established, None);
    let _ = drain(&mut calls);
    calls.hang_up(t0 + ms(40), &id).expect("answered");
    let del = only_command(drain(&mut calls));
    assert!(matches!(del, ApiCommand::Delete { .. }));
    calls.handle_api_outcome(t0 + ms(45), del.request(), Ok(()));
    assert_eq!(
        calls.get(&id).map(|c| c.phase()),
        Some(CallPhase::Established)
    );
    calls.handle_state(t0 + ms(50), &id, CallState::Terminating, None);
    calls.handle_state(t0 + ms(60), &id, CallState::Terminated, None);
    assert_eq!(
        calls.get(&id).map(|c| c.phase()),
        Some(CallPhase::Terminated)
    );
}

#[test]
fn terminating_while_the_decision_is_in_flight_is_not_an_acceptance() {
    let t0 = Instant::now();
    let (mut calls, id, cmd) = answered_call(t0);
    calls.handle_state(t0 + ms(15), &id, CallState::Terminating, None);
    calls.handle_state(t0 + ms(16), &id, CallState::Terminated, None);
    // The answer's outcome arrives after the end and changes nothing.
    calls.handle_api_outcome(t0 + ms(17), cmd.request(), Ok(()));
    let out = drain(&mut calls);
    assert!(
        out.iter()
            .all(|o| !matches!(o, CallOutput::Event(CallEvent::DecisionAccepted { .. }))),
        "{out:?}"
    );
    let call = calls.get(&id).expect("present");
    assert_eq!(call.phase(), CallPhase::Terminated);
    assert_eq!(call.timings().decision_accepted, None);
}
