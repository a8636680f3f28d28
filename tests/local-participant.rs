//! The media host's local participant (what `--device` plugs a sound device into), with a
//! stand-in participant so it runs in every build: it joins the first call to connect, moves
//! to the next connected call when that one ends, and a participant that cannot join is
//! reported on the call, which goes on without it.

use std::sync::Arc;
use std::time::Duration;

use mediabot::adapters::local_participant::{LocalParticipant, LocalSession};
use mediabot::adapters::media_bot::MediaOutcome;
use mediabot::call::CallId;
use mediabot::emulator::media::MediaProcessorConfig;
use mediabot::emulator::media_call::{MediaCallOutcome, MediaCallSpec, run_call};
use mediabot::emulator::media_demo::{Stack, speaker, start_stack};
use mediabot::emulator::scenario::Scenario;
use mediabot::media::endpoint::AppAudio;
use mediabot::media::member::Member;
use mediabot::media::room::MemberId;

/// An application endpoint standing in for a sound device (or failing to open, like a
/// device that was unplugged).
#[derive(Debug)]
struct StandIn {
    fail: bool,
}

#[derive(Debug)]
struct StandInSession(#[allow(dead_code)] AppAudio);

impl LocalSession for StandInSession {
    fn is_lost(&self) -> bool {
        false
    }
}

impl LocalParticipant for StandIn {
    fn describe(&self) -> String {
        "stand-in".to_owned()
    }

    fn join(&self, id: MemberId) -> Result<(Box<Member>, Box<dyn LocalSession>), String> {
        if self.fail {
            return Err("the stand-in is unplugged".to_owned());
        }
        let (member, audio) = Member::app_endpoint(id, 4).map_err(|e| e.to_string())?;
        Ok((member, Box::new(StandInSession(audio))))
    }
}

async fn stack(fail: bool) -> Stack {
    start_stack(
        move |c| {
            c.behaviour.greeting = None;
            c.behaviour.record_dir = None;
            c.media.local = Some(Arc::new(StandIn { fail }));
        },
        MediaProcessorConfig::default(),
    )
    .await
    .unwrap()
}

fn call(hold_ms: u64) -> MediaCallSpec {
    MediaCallSpec {
        label: "call".into(),
        scenario: Scenario::P2p,
        participants: vec![speaker("caller", "caller-48k.wav", Duration::ZERO)],
        hold: Duration::from_millis(hold_ms),
    }
}

async fn outcome(stack: &Stack, out: &MediaCallOutcome) -> MediaOutcome {
    let id = CallId::from(out.call_id.as_deref().expect("rung"));
    stack
        .bot
        .media_ended(&id, Duration::from_secs(10))
        .await
        .expect("the bot saw the call")
}

/// Waits until the local participant is in a call other than `not`.
async fn wait_for_local(stack: &Stack, not: Option<&CallId>) -> CallId {
    for _ in 0..1000 {
        if let Some(id) = stack.bot.local_call()
            && Some(&id) != not
        {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the local participant joined no call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_the_first_call_and_moves_to_the_next_when_it_ends() {
    let stack = stack(false).await;
    let ctx = stack.context(None);
    let first = {
        let ctx = ctx.clone();
        tokio::spawn(async move { run_call(&ctx, 0, &call(1500)).await })
    };
    let holder = wait_for_local(&stack, None).await;
    let second = {
        let ctx = ctx.clone();
        tokio::spawn(async move { run_call(&ctx, 1, &call(4000)).await })
    };
    let first = first.await.unwrap();
    assert_eq!(first.call_id.as_deref(), Some(holder.as_str()));
    // The first call is over: the participant moves to the second.
    let moved = wait_for_local(&stack, Some(&holder)).await;
    let second = second.await.unwrap();
    assert_eq!(second.call_id.as_deref(), Some(moved.as_str()));
    let (a, b) = (
        outcome(&stack, &first).await,
        outcome(&stack, &second).await,
    );
    assert_eq!(stack.bot.local_call(), None, "no call left to be in");
    drop(ctx);
    stack.shutdown().await;
    assert_eq!(a.local.as_deref(), Some("stand-in"));
    assert_eq!(b.local.as_deref(), Some("stand-in"));
    assert_eq!((a.local_error, b.local_error), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_that_cannot_join_leaves_the_call_running() {
    let stack = stack(true).await;
    let ctx = stack.context(None);
    let out = run_call(&ctx, 0, &call(1500)).await;
    let bot = outcome(&stack, &out).await;
    drop(ctx);
    stack.shutdown().await;
    assert_eq!(out.decision, "answer");
    assert_eq!(
        out.media_error, None,
        "the call went on to the caller's hang-up"
    );
    assert!(out.media.is_some());
    assert_eq!(bot.local, None);
    assert_eq!(
        bot.local_error.as_deref(),
        Some("the stand-in is unplugged")
    );
}
