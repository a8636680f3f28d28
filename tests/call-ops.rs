//! Property test: random operation sequences replayed against one call in the calls table,
//! with invariants checked after every step — no command after the call ended, at most one
//! decision (exactly one once the default is due), no decision request past the deadline,
//! `poll_timeout` never in the past.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use mediabot::call::wire::{CallState, MediaConfig, Modality, RejectReason, ResultInfo};
use mediabot::call::{
    Answer, ApiCommand, CallConfig, CallEvent, CallId, CallOutput, Calls, Decision, GraphApiError,
    Retry,
};

#[derive(Debug)]
enum Op {
    Incoming,
    State(CallState),
    Decide(bool),
    Advance(u64),
    ApiOk,
    ApiErr(u16, Retry),
    HangUp,
}

fn random_op(rng: &mut StdRng) -> Op {
    const STATES: [CallState; 6] = [
        CallState::Incoming,
        CallState::Establishing,
        CallState::Established,
        CallState::Terminating,
        CallState::Terminated,
        CallState::Hold,
    ];
    match rng.random_range(0..10) {
        0 => Op::Incoming,
        1 | 2 => Op::State(STATES[rng.random_range(0..STATES.len())].clone()),
        3 => Op::Decide(rng.random_bool(0.5)),
        4 | 5 => Op::Advance(rng.random_range(0..4000)),
        6 => Op::ApiOk,
        7 => Op::ApiErr(
            [429, 500, 503, 404, 403][rng.random_range(0..5)],
            [
                Retry::Never,
                Retry::Backoff,
                Retry::After(Duration::from_millis(rng.random_range(0..5000))),
            ][rng.random_range(0..3)],
        ),
        8 => Op::HangUp,
        _ => Op::Advance(rng.random_range(0..200)),
    }
}

fn decision(answer: bool) -> Decision {
    if answer {
        Decision::Answer(Answer {
            media_config: MediaConfig::app_hosted("{}"),
            accepted_modalities: vec![Modality::Audio],
            participant_capacity: None,
        })
    } else {
        Decision::Reject {
            reason: RejectReason::Busy,
        }
    }
}

#[test]
fn random_operation_sequences_keep_the_invariants() {
    for seed in 0..400u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let t0 = Instant::now();
        let mut now = t0;
        let mut calls = Calls::new(CallConfig::default());
        let id = CallId::from("c");
        calls.handle_incoming(now, id.clone(), rng.random_bool(0.3));
        let deadline = calls.get(&id).expect("inserted").deadline();
        let mut in_flight: Vec<ApiCommand> = Vec::new();
        let mut decided = 0;
        let mut ended = false;
        let mut removed = false;
        let mut ops = Vec::new();
        for _ in 0..60 {
            let op = random_op(&mut rng);
            match &op {
                Op::Incoming => {
                    calls.handle_incoming(now, id.clone(), false);
                }
                Op::State(s) => {
                    let info = (*s == CallState::Terminated).then(ResultInfo::default);
                    calls.handle_state(now, &id, s.clone(), info);
                }
                Op::Decide(a) => {
                    let _ = calls.decide(now, &id, decision(*a));
                }
                Op::Advance(n) => {
                    let target = now + Duration::from_millis(*n);
                    while let Some(t) = calls.poll_timeout().filter(|t| *t <= target) {
                        assert!(t >= now, "seed {seed}: poll_timeout in the past");
                        now = t;
                        calls.handle_timeout(now);
                        check(
                            &mut calls,
                            now,
                            deadline,
                            &mut in_flight,
                            &mut decided,
                            &mut ended,
                            &mut removed,
                            seed,
                            &ops,
                        );
                    }
                    now = target;
                }
                Op::ApiOk | Op::ApiErr(..) => {
                    if !in_flight.is_empty() {
                        let cmd = in_flight.remove(rng.random_range(0..in_flight.len()));
                        let outcome = match &op {
                            Op::ApiErr(status, retry) => Err(GraphApiError {
                                status: *status,
                                code: status.to_string(),
                                message: String::new(),
                                retry: *retry,
                            }),
                            _ => Ok(()),
                        };
                        calls.handle_api_outcome(now, cmd.request(), outcome);
                    }
                }
                Op::HangUp => {
                    let _ = calls.hang_up(now, &id);
                }
            }
            ops.push(op);
            check(
                &mut calls,
                now,
                deadline,
                &mut in_flight,
                &mut decided,
                &mut ended,
                &mut removed,
                seed,
                &ops,
            );
            if removed {
                // The id is free again; a later `created` would be a new call.
                break;
            }
            if let Some(t) = calls.poll_timeout() {
                // Timers may be due now (after a jump) but never before the last event.
                assert!(t + Duration::from_secs(3600) > now, "seed {seed}");
            }
        }
        assert!(decided <= 1, "seed {seed}: decided {decided} times");
        if now >= deadline && !ended {
            assert_eq!(
                decided, 1,
                "seed {seed}: no decision by the deadline: {ops:?}"
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check(
    calls: &mut Calls,
    now: Instant,
    deadline: Instant,
    in_flight: &mut Vec<ApiCommand>,
    decided: &mut u32,
    ended: &mut bool,
    removed: &mut bool,
    seed: u64,
    ops: &[Op],
) {
    while let Some(out) = calls.poll_output() {
        match out {
            CallOutput::Api(cmd) => {
                assert!(
                    !*ended,
                    "seed {seed}: command after the end: {cmd:?} after {ops:?}"
                );
                if cmd.deadline().is_some() {
                    assert!(
                        now < deadline,
                        "seed {seed}: decision request past the deadline"
                    );
                    assert_eq!(cmd.deadline(), Some(deadline));
                }
                in_flight.push(cmd);
            }
            CallOutput::Event(CallEvent::Decided { .. }) => *decided += 1,
            CallOutput::Event(CallEvent::Terminated { .. } | CallEvent::Failed { .. }) => {
                assert!(!*ended, "seed {seed}: ended twice: {ops:?}");
                *ended = true;
            }
            CallOutput::Event(CallEvent::Removed { .. }) => {
                assert!(*ended && !*removed, "seed {seed}");
                *removed = true;
            }
            CallOutput::Event(_) => {
                assert!(!*ended, "seed {seed}: event after the end: {ops:?}");
            }
        }
    }
}
