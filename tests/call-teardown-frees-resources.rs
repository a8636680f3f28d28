//! A call hung up by the caller ends its media session and frees everything it held: the
//! bot's room leaves its shard, and the process is back to its tokio tasks, threads and UDP
//! sockets of before the call (counted with the runtime's metrics and `/proc/self`).
//!
//! Alone in its test binary: the counts are process-wide.

use std::time::{Duration, Instant};

use mediabot::adapters::media_host::EndReason as MediaEnd;
use mediabot::adapters::process_stats::{ProcessSample, open_udp_sockets};
use mediabot::call::CallId;
use mediabot::emulator::media::MediaProcessorConfig;
use mediabot::emulator::media_call::{MediaCallSpec, run_call};
use mediabot::emulator::media_demo::{Stack, start_stack};
use mediabot::emulator::record::EndReason;
use mediabot::emulator::scenario::Scenario;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    tasks: usize,
    threads: u64,
    udp: usize,
    rooms: u64,
    live_calls: usize,
}

fn counts(stack: &Stack) -> Counts {
    Counts {
        tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        threads: ProcessSample::now().expect("/proc/self").threads,
        udp: open_udp_sockets().expect("/proc/self/net/udp"),
        rooms: stack.bot.host().shard_stats().iter().map(|s| s.rooms).sum(),
        live_calls: stack.bot.host().host_stats().live_calls,
    }
}

fn spec() -> MediaCallSpec {
    MediaCallSpec {
        label: "hung up by the caller".into(),
        scenario: Scenario::P2p,
        // The scenario's default participant: the caller.
        participants: Vec::new(),
        hold: Duration::from_secs(2),
    }
}

/// Places one call; checks while it is up that the counting sees its resources.
async fn one_call(stack: &Stack, before: Option<Counts>) {
    let ctx = stack.context(None);
    let call = tokio::spawn({
        let ctx = ctx.clone();
        async move { run_call(&ctx, 0, &spec()).await }
    });
    if let Some(before) = before {
        // While the call is up: a room on a shard, more tasks and UDP sockets than before.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = counts(stack);
            if now.rooms == 1 {
                assert!(now.udp > before.udp, "the call's sockets are seen: {now:?}");
                assert!(
                    now.tasks > before.tasks,
                    "the call's tasks are seen: {now:?}"
                );
                assert_eq!(now.live_calls, 1);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the call's room never reached a shard"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let outcome = call.await.expect("call task");
    assert_eq!(outcome.decision, "answer");
    assert_eq!(outcome.media_error, None);
    assert_eq!(outcome.ended_by(), Some(EndReason::CallerHungUp));
    let id = CallId::from(outcome.call_id.as_deref().expect("id"));
    let bot = stack
        .bot
        .media_ended(&id, Duration::from_secs(10))
        .await
        .expect("the bot saw the media");
    // The caller's hang-up reaches the bot twice: Graph's `terminated` (the call ended) and
    // the media processor's DELETE of the session; whichever lands first ends the media.
    assert!(
        matches!(bot.ended, Some(MediaEnd::CallEnded | MediaEnd::Deleted)),
        "the call's end ended the media: {:?}",
        bot.ended
    );
    assert!(
        stack.bot.host().stats(&id).is_none(),
        "the session is forgotten"
    );
}

#[test]
fn a_call_hung_up_by_the_caller_frees_its_tasks_threads_and_sockets() {
    // Idle blocking-pool threads (the transport's setup runs there) leave after 200 ms, so
    // thread counts settle quickly.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(200))
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // The counting itself: one more UDP socket is seen, then not.
        let udp = open_udp_sockets().expect("udp");
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        assert_eq!(open_udp_sockets(), Some(udp + 1));
        drop(socket);
        assert_eq!(open_udp_sockets(), Some(udp));

        let dir = std::env::temp_dir().join(format!("mediabot-teardown-{}", uuid::Uuid::new_v4()));
        let record_dir = dir.clone();
        let stack = start_stack(
            move |c| c.behaviour.record_dir = Some(record_dir),
            MediaProcessorConfig::default(),
        )
        .await
        .expect("stack");
        // A first call warms up what lives as long as the process: HTTP connection pools,
        // the shard threads' first wake-up, lazily started helpers.
        one_call(&stack, None).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = counts(&stack);
        println!("before: {before:?}");
        one_call(&stack, Some(before)).await;

        // Everything the call held goes away (teardown runs on tasks; allow it a moment).
        let deadline = Instant::now() + Duration::from_secs(10);
        let after = loop {
            let now = counts(&stack);
            let settled = now.tasks <= before.tasks
                && now.threads <= before.threads
                && now.udp <= before.udp
                && now.rooms == 0
                && now.live_calls == 0;
            if settled || Instant::now() > deadline {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        println!("after:  {after:?}");
        assert_eq!(after.rooms, 0, "the room left its shard");
        assert_eq!(after.live_calls, 0, "the media host holds no call");
        assert!(
            after.udp <= before.udp,
            "UDP sockets freed: {before:?} → {after:?}"
        );
        assert!(
            after.tasks <= before.tasks,
            "tasks freed: {before:?} → {after:?}"
        );
        assert!(
            after.threads <= before.threads,
            "threads freed: {before:?} → {after:?}"
        );
        stack.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
