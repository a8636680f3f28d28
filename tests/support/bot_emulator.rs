//! Glue for end-to-end tests: the emulator and the bot on loopback HTTPS, trusting each other's
//! self-signed certificates (started by `mediabot::emulator::stack`), and small waiting
//! helpers.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use mediabot::adapters::bot::BotHandle;
use mediabot::adapters::call_handler::CallHandler;
use mediabot::adapters::demo_handler::{DemoHandler, DemoHandlerConfig};
use mediabot::call::{CallConfig, CallId, CallRecord};
use mediabot::emulator::EmulatorHandle;
use mediabot::emulator::stack::start_signaling;

/// An emulator and a bot wired to it.
pub struct Pair {
    /// The emulated Graph calling service.
    pub emu: EmulatorHandle,
    /// The bot under test.
    pub bot: BotHandle,
}

/// Starts the emulator and a bot using `handler` and `call` (deadlines, default decision),
/// with the library's harness.
pub async fn start(handler: Arc<dyn CallHandler>, call: CallConfig) -> Pair {
    let stack = start_signaling(handler, |cfg| cfg.call = call)
        .await
        .expect("emulator and bot start");
    Pair {
        emu: stack.emulator,
        bot: stack.bot,
    }
}

/// Starts a pair with the demo handler.
pub async fn start_demo(demo: DemoHandlerConfig, call: CallConfig) -> Pair {
    start(Arc::new(DemoHandler::new(demo)), call).await
}

/// Polls the bot's record of `id` until `pred` holds (panics after `timeout`).
pub async fn wait_bot(
    bot: &BotHandle,
    id: &str,
    pred: impl Fn(&CallRecord) -> bool,
    timeout: Duration,
) -> CallRecord {
    let id = CallId::from(id);
    let give_up = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(r) = bot.record(&id)
            && pred(&r)
        {
            return r;
        }
        if tokio::time::Instant::now() >= give_up {
            panic!("bot record of {id} never matched: {:?}", bot.record(&id));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls until `pred` holds for the bot's counters (panics after `timeout`).
pub async fn wait_stats(
    bot: &BotHandle,
    pred: impl Fn(&mediabot::adapters::driver::DriverStats) -> bool,
    timeout: Duration,
) {
    let give_up = tokio::time::Instant::now() + timeout;
    while !pred(&bot.driver_stats()) {
        if tokio::time::Instant::now() >= give_up {
            panic!("driver stats never matched: {:?}", bot.driver_stats());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Pair {
    /// Rings the bot with `ring` and waits (up to `timeout`) until the emulator has the
    /// call's outcome (answered, rejected, redirected, timed out…).
    pub async fn ring_until_decided(
        &self,
        ring: mediabot::emulator::RingRequest,
        timeout: Duration,
    ) -> mediabot::emulator::record::CallRecord {
        use mediabot::emulator::record::Outcome;
        let id = self.emu.ring(ring).expect("ring");
        self.emu
            .wait_until(&id, |c| c.outcome != Outcome::Pending, timeout)
            .await
            .expect("decided in time")
    }
}
