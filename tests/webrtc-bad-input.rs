//! Hostile and broken input at the WebRTC transport: unusable SDP becomes a typed error, a
//! peer that never completes ICE fails the session within the connect timeout, and garbage
//! UDP or forged SRTP at the media port is dropped (and counted) while the call keeps flowing.
//! Nothing may panic.

mod webrtc_support;

use std::net::UdpSocket;
use std::time::Duration;

use mediabot::adapters::webrtc::sdp::candidate_addrs;
use mediabot::adapters::webrtc::{
    FailureReason, MediaEvent, MediaTransport, MediaTransportConfig, SessionState, TransportError,
};
use rand::{Rng, SeedableRng};
use webrtc_support::*;

/// What error a case expects.
type Expect = fn(&TransportError) -> bool;

fn transport() -> MediaTransport {
    MediaTransport::new(MediaTransportConfig::default())
}

/// A real offer from our own offerer (its peer connection is closed when `pending` drops).
async fn real_offer() -> String {
    let (l, _ends, _sig) = leg(OFFERER_SSRC);
    let (offer, pending) = transport().create_offer(l).await.expect("offer");
    drop(pending);
    offer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_offers_are_typed_errors_and_leave_nothing_behind() {
    let _serial = serial().await;
    let offer = real_offer().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (tasks0, sockets0) = (alive_tasks(), open_sockets());

    let no_audio = offer.replace("m=audio", "m=video");
    let no_opus = offer.replace("opus/48000/2", "PCMU/8000/1");
    let cases: Vec<(&str, String, Expect)> = vec![
        ("empty", String::new(), |e| {
            matches!(e, TransportError::MalformedSdp(_))
        }),
        ("binary", "\u{0}\u{1}\u{2}garbage".into(), |e| {
            matches!(e, TransportError::MalformedSdp(_))
        }),
        ("not sdp", "v=0\r\nhello world\r\n".into(), |e| {
            matches!(e, TransportError::MalformedSdp(_))
        }),
        ("truncated m-line", "v=0\r\nm=audio\r\n".into(), |e| {
            matches!(e, TransportError::MalformedSdp(_))
        }),
        ("no audio", no_audio, |e| *e == TransportError::NoAudio),
        ("no opus", no_opus, |e| *e == TransportError::NoOpus),
        // Passes our scan, but has no ICE credentials or fingerprint: webrtc-rs refuses it.
        (
            "no ice/dtls attributes",
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
             c=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n"
                .into(),
            |e| {
                matches!(
                    e,
                    TransportError::MalformedSdp(_) | TransportError::Negotiation(_)
                )
            },
        ),
    ];
    for (name, sdp, expected) in cases {
        let (l, _ends, _sig) = leg(ANSWERER_SSRC);
        match transport().accept_offer(&sdp, l).await {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => assert!(expected(&e), "{name}: unexpected error {e:?}"),
        }
    }

    // The offerer side checks the answer the same way.
    {
        let (l, _ends, _sig) = leg(OFFERER_SSRC);
        let (_, pending) = transport().create_offer(l).await.expect("offer");
        let r = pending.complete("v=1\r\n").await;
        assert!(matches!(r, Err(TransportError::MalformedSdp(_))), "{r:?}");
    }

    assert_settled(tasks0, sockets0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_never_completes_ice_fails_within_the_connect_timeout() {
    let _serial = serial().await;
    // An offer whose only candidate is a port nobody listens on.
    let offer = real_offer().await;
    let closed_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let real_port = candidate_addrs(&offer)[0].port();
    let offer = offer.replace(
        &format!(" {real_port} typ host"),
        &format!(" {closed_port} typ host"),
    );
    assert_eq!(candidate_addrs(&offer)[0].port(), closed_port);

    let timeout = Duration::from_millis(800);
    let t = MediaTransport::new(MediaTransportConfig::default().with_connect_timeout(timeout));
    let (l, mut ends, _sig) = leg(ANSWERER_SSRC);
    let started = std::time::Instant::now();
    let (_answer, session) = t
        .accept_offer(&offer, l)
        .await
        .expect("the offer itself is fine");
    let ev = next_event(&mut ends, timeout + Duration::from_secs(2)).await;
    let reason = match ev {
        Some(MediaEvent::Failed(r)) => r,
        other => panic!("expected Failed, got {other:?}"),
    };
    assert!(
        matches!(
            reason,
            FailureReason::ConnectTimeout | FailureReason::IceFailed
        ),
        "{reason:?}"
    );
    println!("failed with {reason:?} after {:?}", started.elapsed());
    assert!(started.elapsed() < timeout + Duration::from_secs(1));
    assert_eq!(session.state(), SessionState::Failed(reason));
    assert_eq!(session.stats().failure, Some(reason));
    assert_eq!(session.stats().connect_time, None);
    session.close().await;
    assert_eq!(
        session.state(),
        SessionState::Failed(reason),
        "close keeps the failure"
    );
    assert_eq!(
        next_event(&mut ends, Duration::from_millis(200)).await,
        None,
        "one final event"
    );
}

/// Streams 2 s of speech offerer → answerer while `attack` hits the answerer's media port;
/// returns how many packets arrived and the answerer's stats.
async fn stream_under_attack(
    attack: impl FnOnce(std::net::SocketAddr) -> usize + Send + 'static,
) -> (
    usize,
    usize,
    usize,
    mediabot::adapters::webrtc::TransportStats,
) {
    let (o, mut a, answer) = connect(MediaTransportConfig::default()).await;
    let target = candidate_addrs(&answer)[0];
    let packets = encode(&frames("media/caller-48k.wav", 2.0));
    let n = packets.len();
    let (mut out, sig) = (o.ends.outbound, o.signal);
    let sender = tokio::spawn(async move {
        play(&mut out, &sig, &packets, OFFERER_SSRC, 7, 1234).await;
        (out, sig)
    });
    let attacker = tokio::task::spawn_blocking(move || attack(target));
    let got = collect(&mut a.ends.inbound, n, Duration::from_secs(2)).await;
    let _keep = sender.await.unwrap();
    let sent_junk = attacker.await.unwrap();
    // Seq and timestamps of what did arrive are intact.
    for p in &got {
        let i = p.meta.seq.wrapping_sub(7) as u32;
        assert_eq!(p.meta.timestamp, 1234 + 960 * i);
        assert_eq!(p.meta.ssrc, OFFERER_SSRC);
    }
    assert_eq!(a.session.state(), SessionState::Connected);
    assert_eq!(o.session.state(), SessionState::Connected);
    let stats = a.session.stats();
    o.session.close().await;
    a.session.close().await;
    while let Ok(ev) = a.ends.events.try_recv() {
        assert!(!matches!(ev, MediaEvent::Failed(_)), "{ev:?}");
    }
    (n, got.len(), sent_junk, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_udp_at_the_media_port_does_not_disturb_the_call() {
    let _serial = serial().await;
    let (n, got, junk, stats) = stream_under_attack(|target| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(4733);
        let mut sent = 0;
        for i in 0..3_000 {
            let len = rng.random_range(0..1_400);
            let mut d: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            // Make sure every demultiplexer branch sees some: STUN, DTLS, RTP/RTCP, other.
            if let Some(b) = d.first_mut() {
                *b = [0x00, 0x01, 0x16, 0x17, 0x80, 0x90, 0xff, rng.random()][i % 8];
            }
            if s.send_to(&d, target).is_ok() {
                sent += 1;
            }
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        sent
    })
    .await;
    println!("garbage: sent {junk}, received {got} of {n}; {stats:?}");
    assert!(junk > 2_900);
    assert!(got >= n * 95 / 100, "received {got} of {n} under garbage");
    assert!(stats.datagrams_in >= junk as u64, "{stats:?}");
    assert!(stats.junk_datagrams_in > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtp_with_bad_authentication_tags_is_dropped_and_counted() {
    let _serial = serial().await;
    const FORGED: usize = 500;
    let (n, got, forged, stats) = stream_under_attack(|target| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3711);
        for i in 0..FORGED {
            // A plausible SRTP packet for the real stream (its SSRC, sequence numbers around
            // the live ones) whose payload and 10-byte tag are random.
            let mut d = vec![0x80, 111];
            d.extend_from_slice(&(7u16.wrapping_add(i as u16 % 100)).to_be_bytes());
            d.extend_from_slice(&(1234u32 + 960 * (i as u32 % 100)).to_be_bytes());
            d.extend_from_slice(&OFFERER_SSRC.to_be_bytes());
            d.extend((0..80 + 10).map(|_| rng.random::<u8>()));
            s.send_to(&d, target).unwrap();
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        FORGED
    })
    .await;
    println!("forged {forged}, received {got} of {n}; {stats:?}");
    assert!(
        got >= n * 95 / 100,
        "received {got} of {n} under forged SRTP"
    );
    assert_eq!(stats.bad_payload_drops, 0);
    assert!(
        stats.srtp_rejected >= forged as u64,
        "forged {forged}, rejected {} ({stats:?})",
        stats.srtp_rejected
    );
    assert!(
        stats.srtp_rejected <= (forged + n - got) as u64 + 5,
        "{stats:?}"
    );
}
