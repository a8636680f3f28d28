//! The one place adapters read monotonic time. Uses tokio's clock so that tests running with
//! paused time (`#[tokio::test(start_paused = true)]`) see virtual time everywhere.

use std::time::Instant;

/// Now, as a `std::time::Instant` for the sans-IO core.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Sleeps until `at` (tokio timer).
pub async fn sleep_until(at: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
}
