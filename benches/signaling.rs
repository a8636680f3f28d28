//! Signaling latency on loopback, emulator and bot in one process, token cached.
//!
//! - `signaling/notification_to_answer`: one call per iteration, timed by the emulator's own
//!   monotonic stamps ([`Decision::after_notification`]): from the instant its notifier starts
//!   the POST of the signed `created` notification (token cached, request built) to the
//!   instant its REST handler has the bot's answer request. In between: TLS write → webhook
//!   receive → JWT verify → parse → calls table → demo decision → Graph client → TLS. The
//!   ring, the emulator's bookkeeping and the bench's polling for the outcome are outside.
//!   Criterion gets the sum of the measured spans (`iter_custom`); the run also prints
//!   p50/p99/max over every iteration, since the budget is a p99 (≤ 5 ms).
//! - `signaling/burst_1000_in_1s`: 1,000 incoming calls offered within one second; an
//!   iteration lasts until all are decided. Every call must be answered before its deadline
//!   (asserted). Prints the same stamps' p50/p99/max over the burst's calls.
//!
//! `cargo bench --bench signaling -- --quick`
//!
//! `SIGNALING_BENCH_RUNTIME=current` runs everything (emulator, bot, bench loop) on a
//! current-thread tokio runtime instead of the default multi-thread one (`Runtime::new()`, as
//! `mediabot` itself uses).
//!
//! [`Decision::after_notification`]: mediabot::emulator::record::Decision::after_notification

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mediabot::adapters::bot::BotHandle;
use mediabot::adapters::demo_handler::DemoHandler;
use mediabot::emulator::record::{CallRecord, Outcome};
use mediabot::emulator::scenario::Scenario;
use mediabot::emulator::stack::start_signaling;
use mediabot::emulator::{EmulatorHandle, RingRequest};

const WAIT: Duration = Duration::from_secs(30);

/// Rings the bot once and waits until the emulator has the decision.
async fn call(emu: &EmulatorHandle, url: &str) -> CallRecord {
    let id = emu
        .ring(RingRequest::new(url, Scenario::P2p))
        .expect("ring");
    emu.wait_until(&id, |c| c.outcome != Outcome::Pending, WAIT)
        .await
        .expect("decided")
}

/// The measured span of an answered call.
fn span(rec: &CallRecord) -> Duration {
    assert_eq!(
        rec.outcome,
        Outcome::Answered,
        "call {} not answered",
        rec.id
    );
    rec.decision
        .as_ref()
        .and_then(|d| d.after_notification)
        .expect("an accepted decision has its latency")
}

/// p50, p99 and max of `v` (sorted in place), in a printable line.
fn percentiles(what: &str, v: &mut [Duration]) -> String {
    if v.is_empty() {
        return format!("{what}: no samples");
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    format!(
        "{what} over {} calls: p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
        v.len(),
        ms(at(0.50)),
        ms(at(0.99)),
        ms(v[v.len() - 1])
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The bot's own view: webhook arrival → first answer request sent.
fn bot_side(bot: &BotHandle, ids: &[String]) -> Vec<Duration> {
    ids.iter()
        .filter_map(|id| bot.record(&id.as_str().into()))
        .filter_map(|r| r.timings.decision_sent)
        .map(|ms| Duration::from_secs_f64(ms / 1e3))
        .collect()
}

fn signaling(c: &mut Criterion) {
    let rt = match std::env::var("SIGNALING_BENCH_RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Runtime::new(),
    }
    .expect("runtime");
    let stack = rt
        .block_on(start_signaling(Arc::new(DemoHandler::default()), |cfg| {
            cfg.inbox_capacity = 4096;
        }))
        .expect("emulator and bot start");
    let (emu, bot) = (&stack.emulator, &stack.bot);
    let url = bot.webhook_url().to_owned();
    // Warm up connections (both ways) and the tokens.
    rt.block_on(async {
        for _ in 0..20 {
            span(&call(emu, &url).await);
        }
    });

    let mut group = c.benchmark_group("signaling");
    let spans = RefCell::new(Vec::<Duration>::new());
    let ids = RefCell::new(Vec::<String>::new());
    group.bench_function("notification_to_answer", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let rec = call(emu, &url).await;
                    let took = span(&rec);
                    spans.borrow_mut().push(took);
                    ids.borrow_mut().push(rec.id);
                    total += took;
                }
                total
            })
        });
    });
    eprintln!(
        "{}",
        percentiles("notification_to_answer", &mut spans.take())
    );
    eprintln!(
        "{}",
        percentiles(
            "  bot side (webhook arrival → answer sent)",
            &mut bot_side(bot, &ids.take())
        )
    );

    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let spans = RefCell::new(Vec::<Duration>::new());
    let ids = RefCell::new(Vec::<String>::new());
    group.bench_function("burst_1000_in_1s", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let mut burst = Vec::with_capacity(1000);
                    let mut tick = tokio::time::interval(Duration::from_millis(1));
                    for _ in 0..1000 {
                        tick.tick().await;
                        burst.push(
                            emu.ring(RingRequest::new(&url, Scenario::P2p))
                                .expect("ring"),
                        );
                    }
                    for id in &burst {
                        let rec = emu
                            .wait_until(id, |c| c.outcome != Outcome::Pending, WAIT)
                            .await
                            .expect("decided");
                        spans.borrow_mut().push(span(&rec));
                    }
                    total += start.elapsed();
                    ids.borrow_mut().extend(burst);
                }
                total
            })
        });
    });
    eprintln!("{}", percentiles("burst_1000_in_1s", &mut spans.take()));
    eprintln!(
        "{}",
        percentiles(
            "  bot side (webhook arrival → answer sent)",
            &mut bot_side(bot, &ids.take())
        )
    );
    group.finish();
    rt.block_on(stack.shutdown());
}

criterion_group!(benches, signaling);
criterion_main!(benches);
