//! Real WebRTC (ICE, DTLS-SRTP, webrtc-rs 0.21) between an offerer and an answerer on
//! 127.0.0.1, through the LegQueues a shard would use: speech each way with RTP fields
//! intact, DTMF as events, and clean teardown from either side.

mod webrtc_support;

use std::time::Duration;

use mediabot::adapters::webrtc::{
    EgressSignal, FailureReason, MediaEvent, MediaTransport, MediaTransportConfig, SessionState,
};
use mediabot::media::analysis::{align, correlation, overlap};
use mediabot::media::codec::{CodecBackend, OpusDecoder};
use mediabot::media::frame::{AudioFrame, FRAME_SAMPLES};
use mediabot::media::packet::RtpPacket;
use webrtc_support::*;

const SECONDS: f32 = 2.5;

/// Checks the received stream against what was sent and returns the decoded audio.
fn check_stream(got: &[RtpPacket], sent: usize, ssrc: u32, seq0: u16, ts0: u32) -> Vec<f32> {
    assert!(
        got.len() >= sent * 95 / 100,
        "received {} of {sent}",
        got.len()
    );
    let mut dec = OpusDecoder::new(CodecBackend::OpusRs).expect("decoder");
    let mut out = Vec::with_capacity(sent * FRAME_SAMPLES);
    let mut next = 0usize;
    for p in got {
        assert_eq!(p.meta.ssrc, ssrc);
        let i = p.meta.seq.wrapping_sub(seq0) as usize;
        assert!(
            i >= next && i < sent,
            "packet {i} out of order or unknown (next {next})"
        );
        assert_eq!(
            p.meta.timestamp,
            ts0.wrapping_add(960 * i as u32),
            "timestamp of packet {i}"
        );
        assert_eq!(p.meta.marker, i == 0, "marker of packet {i}");
        while next < i {
            let mut f = AudioFrame::silence();
            dec.conceal(&mut f).expect("conceal");
            out.extend_from_slice(&f.samples);
            next += 1;
        }
        let mut f = AudioFrame::silence();
        dec.decode(p.payload.as_slice(), &mut f).expect("decode");
        out.extend_from_slice(&f.samples);
        next += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_flows_both_ways_with_rtp_fields_intact() {
    let _serial = serial().await;
    let (o, a, _) = connect(MediaTransportConfig::default()).await;
    let src_o = frames("media/caller-48k.wav", SECONDS);
    let src_a = frames("media/caller2-48k.wav", SECONDS);
    let (pk_o, pk_a) = (encode(&src_o), encode(&src_a));
    let n = pk_o.len();

    let (o_seq, o_ts, a_seq, a_ts) = (65_500u16, 4_294_960_000u32, 1000u16, 77u32); // wraps
    let (mut o_out, mut a_out) = (o.ends.outbound, a.ends.outbound);
    let (o_sig, a_sig) = (o.signal, a.signal);
    let send_o = tokio::spawn(async move {
        play(&mut o_out, &o_sig, &pk_o, OFFERER_SSRC, o_seq, o_ts).await;
        (o_out, o_sig)
    });
    let send_a = tokio::spawn(async move {
        play(&mut a_out, &a_sig, &pk_a, ANSWERER_SSRC, a_seq, a_ts).await;
        (a_out, a_sig)
    });
    let (mut a_in, mut o_in) = (a.ends.inbound, o.ends.inbound);
    let recv_a = tokio::spawn(async move { collect(&mut a_in, n, Duration::from_secs(2)).await });
    let recv_o = tokio::spawn(async move { collect(&mut o_in, n, Duration::from_secs(2)).await });
    let (at_a, at_o) = (recv_a.await.unwrap(), recv_o.await.unwrap());
    let _keep = (send_o.await.unwrap(), send_a.await.unwrap());

    for (got, src, ssrc, seq0, ts0) in [
        (&at_a, &src_o, OFFERER_SSRC, o_seq, o_ts),
        (&at_o, &src_a, ANSWERER_SSRC, a_seq, a_ts),
    ] {
        let heard = check_stream(got, n, ssrc, seq0, ts0);
        let reference: Vec<f32> = src.iter().flat_map(|f| f.samples).collect();
        let al = align(&reference[..48_000], &heard[..48_000], FRAME_SAMPLES);
        let (r, t) = overlap(&reference, &heard, al.lag);
        let c = correlation(r, t);
        println!(
            "decoded speech: correlation {c:.3} at lag {} samples",
            al.lag
        );
        assert!(c > 0.85, "decoded speech correlates {c} (lag {})", al.lag);
    }

    let (so, sa) = (o.session.stats(), a.session.stats());
    assert_eq!(so.packets_out, n as u64);
    assert_eq!(sa.packets_out, n as u64);
    assert_eq!(sa.packets_queued, at_a.len() as u64);
    assert_eq!(so.packets_queued, at_o.len() as u64);
    assert_eq!(
        sa.inbound_full_drops + sa.bad_payload_drops + sa.srtp_rejected,
        0
    );
    assert!(so.connect_time.is_some() && sa.connect_time.is_some());
    assert!(
        sa.write_to_wire.count() > 0
            && sa.recv_to_queue.count() > 0
            && sa.queue_to_write.count() > 0
    );
    o.session.close().await;
    a.session.close().await;
}

/// Plays `seconds` of speech from the offerer like a shard (one packet and one egress
/// wake-up per 20 ms tick: the DTMF pacing clock); returns the task and what it sends.
fn play_offerer(
    mut out: rtrb::Producer<RtpPacket>,
    sig: EgressSignal,
    seconds: f32,
    seq0: u16,
    ts0: u32,
) -> tokio::task::JoinHandle<(rtrb::Producer<RtpPacket>, EgressSignal)> {
    let packets = encode(&frames("media/caller-48k.wav", seconds));
    tokio::spawn(async move {
        play(&mut out, &sig, &packets, OFFERER_SSRC, seq0, ts0).await;
        (out, sig)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_arrives_as_events_once_each() {
    let _serial = serial().await;
    let (o, mut a, _) = connect(MediaTransportConfig::default()).await;
    let player = play_offerer(o.ends.outbound, o.signal, 1.2, 0, 0);
    o.session
        .send_dtmf('5', Duration::from_millis(100))
        .unwrap();
    o.session
        .send_dtmf('#', Duration::from_millis(250))
        .unwrap();
    assert_eq!(
        o.session.send_dtmf('x', Duration::from_millis(100)),
        Err(mediabot::adapters::webrtc::TransportError::BadDigit('x'))
    );
    let mut seen = Vec::new();
    while let Some(ev) = next_event(&mut a.ends, Duration::from_secs(1)).await {
        seen.push(ev);
    }
    let dtmf: Vec<(char, bool, Duration)> = seen
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf {
                digit,
                end,
                duration,
            } => Some((digit.as_char(), *end, *duration)),
            _ => None,
        })
        .collect();
    // The start is reported from the first packet: one packet interval so far.
    assert_eq!(
        dtmf,
        vec![
            ('5', false, Duration::from_millis(20)),
            ('5', true, Duration::from_millis(100)),
            ('#', false, Duration::from_millis(20)),
            ('#', true, Duration::from_millis(250)),
        ]
    );
    assert_eq!(a.session.stats().dtmf_events, 4);
    assert_eq!(o.session.stats().dtmf_sent, 2);
    let _keep = player.await.unwrap();
    o.session.close().await;
    a.session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_is_paced_one_packet_per_tick_in_place_of_the_audio() {
    let _serial = serial().await;
    let (o, mut a, _) = connect(MediaTransportConfig::default()).await;
    let (seq0, ts0) = (65_520u16, 4_294_960_000u32); // both wrap during the call
    let n = 60;
    let player = play_offerer(o.ends.outbound, o.signal, n as f32 * 0.02, seq0, ts0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    o.session
        .send_dtmf('7', Duration::from_millis(100))
        .unwrap();
    let audio = collect(&mut a.ends.inbound, n, Duration::from_secs(1)).await;
    let _keep = player.await.unwrap();
    let events = a.session.received_telephone_events();

    // RFC 4733 §2.5 shape: one timestamp, the first packet marked, the duration so far once
    // per packet interval with E clear, then the final duration with E set, three times.
    let shape: Vec<(bool, bool, u16)> = events
        .iter()
        .map(|e| (e.marker, e.end, e.duration))
        .collect();
    assert_eq!(
        shape,
        vec![
            (true, false, 960),
            (false, false, 1920),
            (false, false, 2880),
            (false, false, 3840),
            (false, true, 4800),
            (false, true, 4800),
            (false, true, 4800),
        ]
    );
    let event_ts = events[0].timestamp;
    assert!(
        events
            .iter()
            .all(|e| e.timestamp == event_ts && e.event == 7)
    );
    for w in events.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "event packets contiguous"
        );
    }
    // Paced: the four start-phase packets span three packet intervals (60 ms), not a burst.
    let spread = events[3].arrival.duration_since(events[0].arrival);
    assert!(
        spread >= Duration::from_millis(40),
        "start phase spread over {spread:?}"
    );

    // The audio stops for the event and resumes after it: sequence numbers contiguous
    // across audio → event → audio, timestamps increasing and clear of the event.
    let (first_ev, last_ev) = (events[0].seq, events[6].seq);
    let rel = |s: u16| s.wrapping_sub(seq0);
    let before: Vec<&RtpPacket> = audio
        .iter()
        .filter(|p| rel(p.meta.seq) < rel(first_ev))
        .collect();
    let after: Vec<&RtpPacket> = audio
        .iter()
        .filter(|p| rel(p.meta.seq) > rel(last_ev))
        .collect();
    assert_eq!(
        before.len() + after.len(),
        audio.len(),
        "no audio inside the event"
    );
    assert!(!before.is_empty() && !after.is_empty());
    for (i, p) in before.iter().enumerate() {
        // Before the first event the shard's numbering goes out as it is.
        assert_eq!(p.meta.seq, seq0.wrapping_add(i as u16));
        assert_eq!(p.meta.timestamp, ts0.wrapping_add(960 * i as u32));
    }
    let last_before = before[before.len() - 1];
    assert_eq!(first_ev, last_before.meta.seq.wrapping_add(1));
    assert_eq!(event_ts, last_before.meta.timestamp.wrapping_add(960));
    assert_eq!(after[0].meta.seq, last_ev.wrapping_add(1));
    assert!(after[0].meta.timestamp.wrapping_sub(event_ts) >= 4800);
    for w in after.windows(2) {
        assert_eq!(
            w[1].meta.seq,
            w[0].meta.seq.wrapping_add(1),
            "audio contiguous"
        );
        assert_eq!(
            w[1].meta.timestamp.wrapping_sub(w[0].meta.timestamp),
            960,
            "audio timestamps"
        );
    }
    // Every audio packet the shard queued went out, except those the event replaced.
    let replaced = n - audio.len();
    assert!(
        (5..=7).contains(&replaced),
        "{replaced} audio packets replaced"
    );
    assert_eq!(o.session.stats().dtmf_sent, 1);
    o.session.close().await;
    a.session.close().await;
}

async fn close_from(offerer_closes: bool) {
    let _serial = serial().await;
    let tasks0 = alive_tasks();
    let sockets0 = open_sockets();
    {
        let (mut o, mut a, _) = connect(MediaTransportConfig::default()).await;
        let (closer, other) = if offerer_closes {
            (&mut o, &mut a)
        } else {
            (&mut a, &mut o)
        };
        closer.session.close().await;
        assert_eq!(closer.session.state(), SessionState::Closed);
        assert_eq!(
            next_event(&mut closer.ends, Duration::from_secs(1)).await,
            Some(MediaEvent::Closed)
        );
        closer.session.close().await; // idempotent
        assert_eq!(
            next_event(&mut other.ends, Duration::from_secs(5)).await,
            Some(MediaEvent::Closed),
            "the remote's close ends this session too"
        );
        assert_eq!(other.session.state(), SessionState::Closed);
        other.session.close().await;
    }
    // Everything the pair started has ended and every socket is closed.
    assert_settled(tasks0, sockets0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_by_offerer_ends_both_sessions_and_frees_everything() {
    close_from(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_by_answerer_ends_both_sessions_and_frees_everything() {
    close_from(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertises_the_configured_public_address() {
    let _serial = serial().await;
    let public = mediabot::adapters::webrtc::PublicAddress {
        ip: "203.0.113.7".parse().unwrap(),
        port: Some(3478),
    };
    let t = mediabot::adapters::webrtc::MediaTransport::new(
        MediaTransportConfig::default().with_public_address(public),
    );
    let (offer_leg, _o_ends, _o_sig) = leg(OFFERER_SSRC);
    let (offer, _pending) =
        mediabot::adapters::webrtc::MediaTransport::new(MediaTransportConfig::default())
            .create_offer(offer_leg)
            .await
            .expect("offer");
    let (l, _ends, _sig) = leg(ANSWERER_SSRC);
    let (answer, session) = t.accept_offer(&offer, l).await.expect("answer");
    let candidates = mediabot::adapters::webrtc::sdp::candidate_addrs(&answer);
    assert!(!candidates.is_empty());
    for c in candidates {
        assert_eq!(
            c,
            "203.0.113.7:3478".parse::<std::net::SocketAddr>().unwrap(),
            "{answer}"
        );
    }
    session.close().await;
}

/// A remote that vanishes without closing (its process gone: no DTLS close_notify, no more
/// packets, its socket closed) ends the session with `Failed(IceFailed)` once the ICE timers
/// run out — the default timers notice within about 5 s instead of webrtc-rs's 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_vanishes_fails_the_session_within_the_ice_timers() {
    let _serial = serial().await;
    let cfg = MediaTransportConfig::default();
    let limit = cfg.ice_disconnected_timeout + cfg.ice_failed_timeout;
    // The offerer lives on a runtime of its own on its own thread (its futures are not
    // Send), which stops being driven mid-call and is then dropped: its tasks end without
    // running any close, as if its process had died.
    let transport = MediaTransport::new(cfg.clone());
    let (offer_tx, offer_rx) = tokio::sync::oneshot::channel();
    let (answer_tx, answer_rx) = tokio::sync::oneshot::channel::<String>();
    let (vanish_tx, vanish_rx) = tokio::sync::oneshot::channel::<()>();
    let t = transport.clone();
    let remote = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let kept = rt.block_on(async move {
            let (o_leg, o_ends, o_sig) = leg(OFFERER_SSRC);
            let (offer, pending) = t.create_offer(o_leg).await.expect("offer");
            offer_tx.send(offer).unwrap();
            let answer = answer_rx.await.unwrap();
            let session = pending.complete(&answer).await.expect("complete");
            let _ = vanish_rx.await;
            (session, o_ends, o_sig)
        });
        // Nothing drives the runtime any more; dropping it drops its tasks and sockets.
        drop(rt);
        drop(kept);
    });
    let offer = offer_rx.await.unwrap();
    let (a_leg, mut a_ends, _a_sig) = leg(ANSWERER_SSRC);
    let (answer, a_session) = transport.accept_offer(&offer, a_leg).await.expect("answer");
    answer_tx.send(answer).unwrap();
    assert_eq!(
        next_event(&mut a_ends, Duration::from_secs(5)).await,
        Some(MediaEvent::Connected)
    );
    // Let ICE consent checks pass a few times on the live pair first.
    tokio::time::sleep(cfg.ice_keepalive_interval * 2).await;
    assert_eq!(a_session.state(), SessionState::Connected);
    // Connected on both sides; now the remote vanishes.
    vanish_tx.send(()).unwrap();
    let vanished = std::time::Instant::now();
    let ev = next_event(&mut a_ends, limit + Duration::from_secs(15)).await;
    let after = vanished.elapsed();
    println!("vanished remote noticed after {after:?}: {ev:?}");
    assert_eq!(ev, Some(MediaEvent::Failed(FailureReason::IceFailed)));
    assert_eq!(
        a_session.state(),
        SessionState::Failed(FailureReason::IceFailed)
    );
    assert_eq!(a_session.stats().failure, Some(FailureReason::IceFailed));
    // Not before the remote had been silent for the disconnected timeout.
    assert!(after >= cfg.ice_disconnected_timeout, "{after:?}");
    a_session.close().await;
    tokio::task::spawn_blocking(move || remote.join().unwrap())
        .await
        .unwrap();
}
