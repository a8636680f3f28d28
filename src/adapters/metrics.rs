//! The bot's metrics in Prometheus' text exposition format (0.0.4), and a small HTTP server
//! for them (`mediabot serve --metrics-listen ADDR`, `GET /metrics`).
//!
//! What a media host's operator watches: the signaling side's call counters, the media
//! host's session counters, and per shard thread its rooms, ticks, late ticks, **deadline
//! misses** and the tick cost and deadline → decoded latency as summaries (p50/p99/max,
//! `_sum`, `_count`). It lets a load generator elsewhere (`mediabot load --bot … --bot-metrics
//! URL`) see the bot's own real-time figures, which its CPU and RSS alone do not show.
//!
//! The listener is plain HTTP and meant for loopback or an operations network: it says how
//! loaded the bot is and how many calls it has handled, nothing about who called.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::adapters::driver::DriverStats;
use crate::adapters::media_host::MediaHostStats;
use crate::adapters::shard::ShardStats;
use crate::media::histogram::Histogram;

/// One reading of everything the endpoint reports.
#[derive(Clone, Debug, Default)]
pub struct MetricsSnapshot {
    /// The signaling side (calls table, Graph requests).
    pub driver: DriverStats,
    /// The media host's sessions.
    pub host: MediaHostStats,
    /// Each shard thread.
    pub shards: Vec<ShardStats>,
}

/// The snapshot in Prometheus' text format.
pub fn render(s: &MetricsSnapshot) -> String {
    let mut out = String::new();
    let c = &s.driver.calls;
    for (name, help, value) in [
        (
            "mediabot_calls_incoming_total",
            "Incoming calls notified to the bot.",
            c.incoming,
        ),
        (
            "mediabot_notifications_duplicate_total",
            "Duplicated notifications ignored.",
            c.duplicates,
        ),
        (
            "mediabot_notifications_stale_total",
            "Reordered or inapplicable notifications ignored.",
            c.stale,
        ),
        (
            "mediabot_notifications_unknown_call_total",
            "Notifications for unknown calls ignored.",
            c.unknown_call,
        ),
        (
            "mediabot_calls_removed_total",
            "Calls removed from the calls table after their grace period.",
            c.removed,
        ),
        (
            "mediabot_decisions_late_total",
            "Application decisions that came after the call was decided: not sent.",
            s.driver.late_decisions,
        ),
        (
            "mediabot_graph_requests_total",
            "Graph requests started.",
            s.driver.requests,
        ),
        (
            "mediabot_media_sessions_created_total",
            "Media sessions created (answers with a media blob).",
            s.host.created,
        ),
        (
            "mediabot_media_sessions_negotiated_total",
            "SDP offers answered with 201.",
            s.host.negotiated,
        ),
        (
            "mediabot_media_negotiations_refused_total",
            "Offers or DELETEs refused.",
            s.host.refused,
        ),
        (
            "mediabot_media_sessions_ended_total",
            "Media sessions ended after negotiation.",
            s.host.ended,
        ),
        (
            "mediabot_media_sessions_expired_total",
            "Media sessions that expired without an offer.",
            s.host.expired,
        ),
        (
            "mediabot_media_events_dropped_total",
            "Media host events dropped because the owner's channel was full.",
            s.host.events_dropped,
        ),
    ] {
        counter(&mut out, name, help, value);
    }
    gauge_header(
        &mut out,
        "mediabot_media_live_calls",
        "Calls with a media session now.",
    );
    let _ = writeln!(out, "mediabot_media_live_calls {}", s.host.live_calls);

    type Field = fn(&ShardStats) -> u64;
    let per_shard: [(&str, &str, &str, Field); 5] = [
        (
            "mediabot_shard_rooms",
            "gauge",
            "Rooms on the shard.",
            |x| x.rooms,
        ),
        (
            "mediabot_shard_ticks_total",
            "counter",
            "Ticks the shard ran.",
            |x| x.ticks,
        ),
        (
            "mediabot_shard_late_ticks_total",
            "counter",
            "Ticks that started later than the late threshold after their deadline.",
            |x| x.late_ticks,
        ),
        (
            "mediabot_shard_deadline_misses_total",
            "counter",
            "Tick deadlines skipped because an earlier tick overran them.",
            |x| x.deadline_misses,
        ),
        (
            "mediabot_shard_realtime",
            "gauge",
            "1 when the OS granted the shard thread real-time (SCHED_FIFO) priority.",
            |x| u64::from(x.rt_priority),
        ),
    ];
    for (name, kind, help, field) in per_shard {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for shard in &s.shards {
            let _ = writeln!(
                out,
                "{name}{{shard=\"{}\"}} {}",
                shard.shard.0,
                field(shard)
            );
        }
    }
    summary(
        &mut out,
        "mediabot_shard_tick_seconds",
        "Cost of each shard tick (control and every room), start to end.",
        &s.shards,
        |x| &x.tick_cost,
    );
    summary(
        &mut out,
        "mediabot_shard_deadline_to_decoded_seconds",
        "Each tick's deadline to the end of its decode phase (lateness, control, every room's decode).",
        &s.shards,
        |x| &x.deadline_to_decoded,
    );
    out
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

fn gauge_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// A summary per shard: quantiles 0.5, 0.99 and 1 (the maximum), `_sum` and `_count`.
fn summary(
    out: &mut String,
    name: &str,
    help: &str,
    shards: &[ShardStats],
    histogram: fn(&ShardStats) -> &Histogram,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} summary");
    for shard in shards {
        let h = histogram(shard);
        let id = shard.shard.0;
        for (q, v) in [("0.5", h.p50()), ("0.99", h.p99()), ("1", h.max())] {
            let _ = writeln!(
                out,
                "{name}{{shard=\"{id}\",quantile=\"{q}\"}} {:.9}",
                v.as_secs_f64()
            );
        }
        let sum = h.sum().as_secs_f64();
        let _ = writeln!(out, "{name}_sum{{shard=\"{id}\"}} {sum:.9}");
        let _ = writeln!(out, "{name}_count{{shard=\"{id}\"}} {}", h.count());
    }
}

/// Serves `GET /metrics` on `listener` with what `snapshot` reads at each request, until the
/// task is dropped.
///
/// # Errors
/// The listener failed.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    snapshot: Arc<dyn Fn() -> MetricsSnapshot + Send + Sync>,
) -> std::io::Result<()> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let snapshot = Arc::clone(&snapshot);
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    render(&snapshot()),
                )
                    .into_response()
            }
        }),
    );
    axum::serve(listener, app).await
}

/// Reads one metric's samples out of a text exposition: `(labels, value)` for each line of
/// `name` (labels as written between the braces, empty when none). Lines that do not parse
/// are skipped.
pub fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match key.split_once('{') {
                Some((m, rest)) => (m, rest.strip_suffix('}')?),
                None => (key, ""),
            };
            (metric == name).then_some((labels, value.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::adapters::shard::ShardId;

    fn shard(id: usize, misses: u64) -> ShardStats {
        let mut tick_cost = Histogram::new();
        for us in [100, 200, 300, 5_000] {
            tick_cost.record(Duration::from_micros(us));
        }
        ShardStats {
            shard: ShardId(id),
            rooms: 3,
            ticks: 4,
            deadline_misses: misses,
            tick_cost,
            ..ShardStats::default()
        }
    }

    #[test]
    fn renders_counters_gauges_and_per_shard_summaries() {
        let mut snapshot = MetricsSnapshot {
            shards: vec![shard(0, 0), shard(1, 2)],
            ..MetricsSnapshot::default()
        };
        snapshot.driver.calls.incoming = 7;
        snapshot.host.negotiated = 5;
        snapshot.host.live_calls = 2;
        let text = render(&snapshot);
        assert_eq!(samples(&text, "mediabot_calls_incoming_total"), [("", 7.0)]);
        assert_eq!(
            samples(&text, "mediabot_media_sessions_negotiated_total"),
            [("", 5.0)]
        );
        assert_eq!(samples(&text, "mediabot_media_live_calls"), [("", 2.0)]);
        assert_eq!(
            samples(&text, "mediabot_shard_deadline_misses_total"),
            [("shard=\"0\"", 0.0), ("shard=\"1\"", 2.0)]
        );
        let ticks = samples(&text, "mediabot_shard_tick_seconds");
        assert_eq!(ticks.len(), 6, "{ticks:?}");
        assert_eq!(ticks[2], ("shard=\"0\",quantile=\"1\"", 0.005));
        assert_eq!(
            samples(&text, "mediabot_shard_tick_seconds_count"),
            [("shard=\"0\"", 4.0), ("shard=\"1\"", 4.0)]
        );
        // Every sample line is `name{labels} value` or `name value`, and every metric has
        // its TYPE line before its samples.
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (key, value) = line.rsplit_once(' ').expect(line);
            assert!(value.parse::<f64>().is_ok(), "{line}");
            let metric = key.split('{').next().unwrap();
            let base = metric
                .strip_suffix("_sum")
                .or_else(|| metric.strip_suffix("_count"))
                .unwrap_or(metric);
            assert!(typed.contains(base), "{line}: no TYPE before it");
        }
    }
}
