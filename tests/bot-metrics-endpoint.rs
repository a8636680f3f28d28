//! The bot's `GET /metrics` (what `mediabot serve --metrics-listen ADDR` serves), scraped
//! over real loopback HTTP before and after a real call (emulator, WebRTC, Opus): the
//! signaling and media counters count the call, and the shard that ran its room reports its
//! ticks, its deadline misses and a tick-cost summary.

use std::time::Duration;

use mediabot::adapters::metrics::{samples, serve_metrics};
use mediabot::emulator::media::MediaProcessorConfig;
use mediabot::emulator::media_call::{MediaCallSpec, run_call};
use mediabot::emulator::media_demo::{speaker, start_stack};
use mediabot::emulator::scenario::Scenario;

fn total(text: &str, name: &str) -> f64 {
    samples(text, name).iter().map(|(_, v)| v).sum()
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.expect("metrics answer");
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_real_call_and_its_shard_ticks() {
    let stack = start_stack(|_| {}, MediaProcessorConfig::default())
        .await
        .expect("stack");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let server = tokio::spawn(serve_metrics(listener, stack.bot.metrics()));

    let before = scrape(&url).await;
    assert_eq!(total(&before, "mediabot_calls_incoming_total"), 0.0);
    assert_eq!(
        total(&before, "mediabot_media_sessions_negotiated_total"),
        0.0
    );

    let ctx = stack.context(None);
    let spec = MediaCallSpec {
        label: "metrics".into(),
        scenario: Scenario::P2p,
        participants: vec![speaker("caller", "caller-48k.wav", Duration::ZERO)],
        hold: Duration::from_secs(2),
    };
    let out = run_call(&ctx, 0, &spec).await;
    assert_eq!(out.decision, "answer");
    let call = mediabot::call::CallId::from(out.call_id.as_deref().expect("rung"));
    stack
        .bot
        .media_ended(&call, Duration::from_secs(10))
        .await
        .expect("media ended");

    let after = scrape(&url).await;
    assert_eq!(total(&after, "mediabot_calls_incoming_total"), 1.0);
    assert!(total(&after, "mediabot_graph_requests_total") >= 1.0);
    assert_eq!(total(&after, "mediabot_media_sessions_created_total"), 1.0);
    assert_eq!(
        total(&after, "mediabot_media_sessions_negotiated_total"),
        1.0
    );
    assert_eq!(total(&after, "mediabot_media_sessions_ended_total"), 1.0);
    // Two seconds of media: about a hundred 20 ms ticks on the shard that had the room.
    let ticks = total(&after, "mediabot_shard_ticks_total");
    assert!(ticks >= 50.0, "{after}");
    let counted = total(&after, "mediabot_shard_tick_seconds_count");
    assert_eq!(counted, ticks, "every tick is in the summary");
    assert!(total(&after, "mediabot_shard_tick_seconds_sum") > 0.0);
    // Each shard reports misses (a quiet loopback call has none to speak of).
    let misses = samples(&after, "mediabot_shard_deadline_misses_total");
    assert_eq!(
        misses.len(),
        samples(&after, "mediabot_shard_rooms").len(),
        "{after}"
    );
    let p99 = samples(&after, "mediabot_shard_tick_seconds")
        .into_iter()
        .filter(|(labels, _)| labels.contains("quantile=\"0.99\""))
        .map(|(_, v)| v)
        .fold(0.0, f64::max);
    assert!(p99 > 0.0 && p99 < 0.020, "tick p99 {p99} s");

    server.abort();
    drop(ctx);
    stack.shutdown().await;
}
