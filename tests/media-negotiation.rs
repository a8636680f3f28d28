//! WHIP-style negotiation of a call's media session over real loopback HTTPS and real WebRTC:
//! the blob from `create_session` parses, an offer posted to its `negotiateUri` with its token
//! is answered (201 + SDP + Location) and media flows into the call's room; every bad input
//! gets its documented status without disturbing another call.

mod media_host_support;

use std::time::Duration;

use media_host_support::*;
use mediabot::adapters::media_host::{CallBehaviour, EndReason, SessionEvent};
use mediabot::adapters::webrtc::{MediaEvent, MediaTransportConfig};
use mediabot::graph::CallId;
use mediabot::session::blob::MediaSessionBlob;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_with_the_blob_token_gets_an_answer_and_media_flows_both_ways() {
    let mut bot = bot(Duration::from_secs(60)).await;
    let call = CallId::from("call-1");
    let blob = bot.host.create_session(&call, greeting()).expect("session");
    let parsed = MediaSessionBlob::parse(&blob.to_json()).expect("blob parses");
    assert_eq!(parsed, blob);
    assert!(parsed.negotiate_uri.starts_with(&bot.base));

    let p = peer().await;
    let posted = std::time::Instant::now();
    let r = offer(&bot, &parsed, parsed.token.as_str(), &p.offer).await;
    let answered_in = posted.elapsed();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["content-type"], "application/sdp");
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/media/v1/sessions/{}", parsed.session_id)
    );
    let answer = r.text().await.expect("answer");
    assert!(answer.starts_with("v=0"));
    assert!(answer.contains("opus/48000/2"));
    let mut s = stream(p, &answer).await;

    let e = next_event(&mut bot, |e| e.kind == SessionEvent::Negotiated).await;
    assert_eq!(e.call_id, call);
    next_event(&mut bot, |e| {
        e.kind == SessionEvent::Media(MediaEvent::Connected)
    })
    .await;
    until("caller packets in the room", || received(&bot, &call) >= 25).await;
    let mut heard = 0;
    until("the bot's audio at the peer", || {
        while s.ends.inbound.pop().is_ok() {
            heard += 1;
        }
        heard >= 25
    })
    .await;
    let stats = bot.host.stats(&call).expect("stats");
    assert!(stats.connect_time.is_some());
    println!(
        "POST offer → 201 answer: {answered_in:?}; media connect: {:?}; packets in {} / out {}; \
         concealed frames {}",
        stats.connect_time.unwrap_or_default(),
        stats.transport.packets_in,
        stats.transport.packets_out,
        stats.room.concealed_frames
    );
    assert!(stats.transport.packets_in >= 25);
    assert!(stats.transport.packets_out >= 25);
    assert!(stats.room.echo_frames > 0);
    assert_eq!(stats.room.decode_errors, 0);

    // DTMF from the media processor reaches the call's owner.
    s.session
        .send_dtmf('5', Duration::from_millis(100))
        .expect("dtmf negotiated");
    let e = next_event(&mut bot, |e| {
        matches!(
            e.kind,
            SessionEvent::Media(MediaEvent::Dtmf { end: true, .. })
        )
    })
    .await;
    let SessionEvent::Media(MediaEvent::Dtmf { digit, .. }) = e.kind else {
        unreachable!("matched above");
    };
    assert_eq!((e.call_id.as_str(), digit.as_char()), ("call-1", '5'));

    // The call ends from the bot's side: the peer's media ends and the room is gone.
    assert!(bot.host.end_session(&call).await);
    let e = next_event(&mut bot, |e| matches!(e.kind, SessionEvent::Ended { .. })).await;
    let SessionEvent::Ended {
        reason,
        recording,
        stats,
    } = e.kind
    else {
        unreachable!("matched above")
    };
    assert_eq!((reason, recording), (EndReason::CallEnded, None));
    // The final figures travel with the event: the session heard the peer's packets.
    let stats = stats.expect("final statistics");
    assert!(stats.transport.packets_in > 0, "{stats:?}");
    assert!(bot.host.stats(&call).is_none());
    let closed = tokio::time::timeout(WAIT, s.ends.events.recv()).await;
    assert_eq!(closed.ok().flatten(), Some(MediaEvent::Closed));
    until("room retired from its shard", || {
        bot.host.shard_stats().iter().map(|s| s.rooms).sum::<u64>() == 0
    })
    .await;
    s.session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_401_and_the_right_one_still_works() {
    let bot = bot(Duration::from_secs(60)).await;
    let blob = bot
        .host
        .create_session(&CallId::from("c"), CallBehaviour::default())
        .expect("session");
    let p = peer().await;
    let other = MediaSessionBlob::parse(
        &bot.host
            .create_session(&CallId::from("other"), CallBehaviour::default())
            .expect("other")
            .to_json(),
    )
    .expect("parse");
    for token in ["wrong", other.token.as_str(), &blob.token.as_str()[1..]] {
        refused(
            offer(&bot, &blob, token, &p.offer).await,
            StatusCode::UNAUTHORIZED,
            "invalidToken",
        )
        .await;
    }
    // No Authorization header at all.
    let r = bot
        .client
        .post(&blob.negotiate_uri)
        .header("content-type", "application/sdp")
        .body(p.offer.clone())
        .send()
        .await
        .expect("request");
    refused(r, StatusCode::UNAUTHORIZED, "invalidToken").await;
    let r = offer(&bot, &blob, blob.token.as_str(), &p.offer).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_token_is_401_reused() {
    let bot = bot(Duration::from_secs(60)).await;
    let blob = bot
        .host
        .create_session(&CallId::from("c"), CallBehaviour::default())
        .expect("session");
    let p = peer().await;
    // The first offer spends the token even though it is refused.
    refused(
        offer(&bot, &blob, blob.token.as_str(), "garbage").await,
        StatusCode::BAD_REQUEST,
        "malformedSdp",
    )
    .await;
    refused(
        offer(&bot, &blob, blob.token.as_str(), &p.offer).await,
        StatusCode::UNAUTHORIZED,
        "tokenAlreadyUsed",
    )
    .await;

    // After a session is negotiated and deleted, its token is spent too.
    let blob = bot
        .host
        .create_session(&CallId::from("d"), CallBehaviour::default())
        .expect("session");
    let p = peer().await;
    let r = offer(&bot, &blob, blob.token.as_str(), &p.offer).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = delete(&bot, &blob.negotiate_uri, blob.token.as_str()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let p = peer().await;
    refused(
        offer(&bot, &blob, blob.token.as_str(), &p.offer).await,
        StatusCode::UNAUTHORIZED,
        "tokenAlreadyUsed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_expired_sessions_are_404() {
    let mut bot = bot(Duration::from_millis(300)).await;
    let call = CallId::from("late");
    let blob = bot
        .host
        .create_session(&call, CallBehaviour::default())
        .expect("session");
    let p = peer().await;
    let unknown = format!("{}/media/v1/sessions/{}", bot.base, uuid::Uuid::new_v4());
    refused(
        post(
            &bot,
            &unknown,
            blob.token.as_str(),
            "application/sdp",
            p.offer.clone().into_bytes(),
        )
        .await,
        StatusCode::NOT_FOUND,
        "sessionNotFound",
    )
    .await;
    let not_an_id = format!("{}/media/v1/sessions/..%2F..%2Fetc", bot.base);
    refused(
        post(
            &bot,
            &not_an_id,
            blob.token.as_str(),
            "application/sdp",
            p.offer.clone().into_bytes(),
        )
        .await,
        StatusCode::NOT_FOUND,
        "sessionNotFound",
    )
    .await;
    refused(
        delete(&bot, &unknown, blob.token.as_str()).await,
        StatusCode::NOT_FOUND,
        "sessionNotFound",
    )
    .await;

    // Expiry: the sweeper reports it, and the offer is refused.
    let e = next_event(&mut bot, |e| e.kind == SessionEvent::Expired).await;
    assert_eq!(e.call_id, call);
    let r = offer(&bot, &blob, blob.token.as_str(), &p.offer).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(bot.host.host_stats().expired, 1);
}

/// The peer's offer with `from` replaced by `to` everywhere.
fn edited(sdp: &str, from: &str, to: &str) -> String {
    assert!(sdp.contains(from), "offer has {from}");
    sdp.replace(from, to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_400_413_or_415_with_a_reason() {
    let mut bot = bot(Duration::from_secs(60)).await;
    let p = peer().await;
    let cases: Vec<(String, &str)> = vec![
        ("not sdp at all".into(), "malformedSdp"),
        (String::new(), "malformedSdp"),
        ("v=0\r\nthis is not a line\r\n".into(), "malformedSdp"),
        (edited(&p.offer, "m=audio", "m=video"), "noAudio"),
        (edited(&p.offer, "opus/48000/2", "PCMU/8000"), "noOpus"),
    ];
    for (i, (body, code)) in cases.into_iter().enumerate() {
        let call = CallId::from(format!("bad-{i}"));
        let blob = bot
            .host
            .create_session(&call, CallBehaviour::default())
            .expect("session");
        refused(
            offer(&bot, &blob, blob.token.as_str(), &body).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
        let e = next_event(&mut bot, |e| {
            matches!(e.kind, SessionEvent::NegotiationFailed(_))
        })
        .await;
        assert_eq!(e.call_id, call);
    }
    let blob = bot
        .host
        .create_session(&CallId::from("bytes"), CallBehaviour::default())
        .expect("session");
    let token = blob.token.as_str();
    let r = post(
        &bot,
        &blob.negotiate_uri,
        "wrong",
        "application/sdp",
        vec![0xff, 0xfe],
    )
    .await;
    refused(r, StatusCode::UNAUTHORIZED, "invalidToken").await;
    let r = post(
        &bot,
        &blob.negotiate_uri,
        token,
        "application/sdp",
        vec![0xff, 0xfe, b'v'],
    )
    .await;
    refused(r, StatusCode::BAD_REQUEST, "malformedSdp").await;
    let blob = bot
        .host
        .create_session(&CallId::from("big"), CallBehaviour::default())
        .expect("session");
    let token = blob.token.as_str();
    let huge = vec![b'a'; 65 * 1024];
    let r = post(&bot, &blob.negotiate_uri, token, "application/sdp", huge).await;
    refused(r, StatusCode::PAYLOAD_TOO_LARGE, "payloadTooLarge").await;
    let r = post(
        &bot,
        &blob.negotiate_uri,
        token,
        "text/plain",
        p.offer.clone().into_bytes(),
    )
    .await;
    refused(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupportedMediaType",
    )
    .await;
    // CORS: a web page may ask, and may read the answer and its Location.
    let r = bot
        .client
        .request(reqwest::Method::OPTIONS, &blob.negotiate_uri)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    // PATCH (trickle ICE) is not supported.
    let r = bot
        .client
        .patch(&blob.negotiate_uri)
        .bearer_auth(token)
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Neither 413 nor 415 spent the token: the offer still goes through.
    let r = offer(&bot, &blob, token, &p.offer).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["access-control-expose-headers"], "location");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_offer_is_409_and_delete_ends_only_that_session() {
    let mut bot = bot(Duration::from_secs(60)).await;
    let (a, b) = (CallId::from("a"), CallId::from("b"));
    let blob_a = bot.host.create_session(&a, greeting()).expect("a");
    let blob_b = bot.host.create_session(&b, greeting()).expect("b");
    let (pa, pb) = (peer().await, peer().await);
    let ra = offer(&bot, &blob_a, blob_a.token.as_str(), &pa.offer).await;
    let rb = offer(&bot, &blob_b, blob_b.token.as_str(), &pb.offer).await;
    assert_eq!(
        (ra.status(), rb.status()),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    let sa = stream(pa, &ra.text().await.expect("answer a")).await;
    let sb = stream(pb, &rb.text().await.expect("answer b")).await;
    until("media in both rooms", || {
        received(&bot, &a) >= 10 && received(&bot, &b) >= 10
    })
    .await;

    // Call a is hammered: a second offer, wrong tokens, garbage, a bad DELETE.
    let again = peer().await;
    refused(
        offer(&bot, &blob_a, blob_a.token.as_str(), &again.offer).await,
        StatusCode::CONFLICT,
        "sessionAlreadyNegotiated",
    )
    .await;
    refused(
        offer(&bot, &blob_a, "nope", "v=0").await,
        StatusCode::UNAUTHORIZED,
        "invalidToken",
    )
    .await;
    refused(
        delete(&bot, &blob_a.negotiate_uri, blob_b.token.as_str()).await,
        StatusCode::UNAUTHORIZED,
        "invalidToken",
    )
    .await;
    let before = received(&bot, &a);
    until("call a still flows", || received(&bot, &a) >= before + 10).await;

    // DELETE ends call a's session and room; call b keeps flowing.
    let r = delete(&bot, &blob_a.negotiate_uri, blob_a.token.as_str()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let e = next_event(&mut bot, |e| matches!(e.kind, SessionEvent::Ended { .. })).await;
    assert_eq!(e.call_id, a);
    assert!(matches!(
        e.kind,
        SessionEvent::Ended {
            reason: EndReason::Deleted,
            ..
        }
    ));
    assert!(bot.host.stats(&a).is_none());
    refused(
        delete(&bot, &blob_a.negotiate_uri, blob_a.token.as_str()).await,
        StatusCode::NOT_FOUND,
        "sessionNotFound",
    )
    .await;
    let before = received(&bot, &b);
    until("call b still flows", || received(&bot, &b) >= before + 25).await;
    until("one room left", || {
        bot.host.shard_stats().iter().map(|s| s.rooms).sum::<u64>() == 1
    })
    .await;
    assert_eq!(bot.host.host_stats().live_calls, 1);

    // The media processor of call b leaves (closes its peer connection): the call is told and
    // the session ends.
    sb.session.close().await;
    let e = next_event(&mut bot, |e| matches!(e.kind, SessionEvent::Ended { .. })).await;
    assert_eq!(e.call_id, b);
    assert!(matches!(
        e.kind,
        SessionEvent::Ended {
            reason: EndReason::MediaClosed,
            ..
        }
    ));
    assert_eq!(bot.host.host_stats().live_calls, 0);
    drop(sa);
    drop(sb);
    bot.host.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_connects_times_out_and_the_call_is_told() {
    let transport =
        MediaTransportConfig::default().with_connect_timeout(Duration::from_millis(500));
    let mut bot = bot_with(Duration::from_secs(60), transport).await;
    let (silent, fine) = (CallId::from("silent"), CallId::from("fine"));
    let blob = bot
        .host
        .create_session(&silent, greeting())
        .expect("session");
    let other = bot.host.create_session(&fine, greeting()).expect("session");
    let p = peer().await;
    let q = peer().await;
    let r = offer(&bot, &blob, blob.token.as_str(), &p.offer).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r2 = offer(&bot, &other, other.token.as_str(), &q.offer).await;
    let s = stream(q, &r2.text().await.expect("answer")).await;
    // The first peer never applies the answer: no ICE, no DTLS.
    drop(p);
    let e = next_event(&mut bot, |e| {
        matches!(e.kind, SessionEvent::Media(MediaEvent::Failed(_)))
    })
    .await;
    assert_eq!(e.call_id, silent);
    let e = next_event(&mut bot, |e| matches!(e.kind, SessionEvent::Ended { .. })).await;
    assert_eq!(e.call_id, silent);
    assert!(matches!(
        e.kind,
        SessionEvent::Ended {
            reason: EndReason::MediaFailed,
            ..
        }
    ));
    assert!(bot.host.stats(&silent).is_none());
    let before = received(&bot, &fine);
    until("the other call still flows", || {
        received(&bot, &fine) >= before + 10
    })
    .await;
    drop(s);
}
