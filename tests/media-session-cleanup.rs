//! Ending a negotiated call's media frees what it held: after the call, the process has the
//! same open file descriptors (sockets, egress socket pair, recording files) and threads as
//! before it. Alone in its binary so no other test opens or closes anything meanwhile.

mod media_host_support;

use std::time::Duration;

use media_host_support::*;
use mediabot::adapters::media_host::{CallBehaviour, SessionEvent};
use mediabot::graph::CallId;
use reqwest::StatusCode;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

#[test]
fn a_call_ended_by_delete_or_by_the_bot_leaves_nothing_behind() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(50))
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut bot = bot(Duration::from_secs(60)).await;
        let dir = std::env::temp_dir().join(format!("mediabot-clean-{}", uuid::Uuid::new_v4()));
        // Warm up the HTTPS client and server connection pool, then take the baseline.
        let warm = bot
            .host
            .create_session(&CallId::from("warm"), CallBehaviour::default())
            .expect("session");
        let _ = delete(&bot, &warm.negotiate_uri, warm.token.as_str()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (fds0, threads0) = (open_fds(), threads());

        for (i, by_delete) in [(0, true), (1, false)] {
            let call = CallId::from(format!("call-{i}"));
            let mut behaviour = greeting();
            behaviour.record_dir = Some(dir.clone());
            let blob = bot.host.create_session(&call, behaviour).expect("session");
            let p = peer().await;
            let r = offer(&bot, &blob, blob.token.as_str(), &p.offer).await;
            assert_eq!(r.status(), StatusCode::CREATED);
            let s = stream(p, &r.text().await.expect("answer")).await;
            until("media in the room", || received(&bot, &call) >= 25).await;
            assert!(open_fds() > fds0, "a live call holds sockets and files");
            if by_delete {
                let r = delete(&bot, &blob.negotiate_uri, blob.token.as_str()).await;
                assert_eq!(r.status(), StatusCode::OK);
            } else {
                assert!(bot.host.end_session(&call).await);
            }
            next_event(&mut bot, |e| {
                e.call_id == call && matches!(e.kind, SessionEvent::Ended { .. })
            })
            .await;
            s.session.close().await;
            drop(s);
            let mut now = (0, 0);
            until("fds and threads back to the baseline", || {
                now = (open_fds(), threads());
                now.0 <= fds0 && now.1 <= threads0
            })
            .await;
        }
        assert_eq!(bot.host.host_stats().live_calls, 0);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
