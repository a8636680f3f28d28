//! The emulator's media processor: emulated participants streaming speech into one room on a
//! shard pool, the bot's media as a call leg, and what each participant hears back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mediabot::adapters::shard::{ShardConfig, ShardPool};
use mediabot::emulator::concealment::Concealment;
use mediabot::emulator::media::{
    BotLegQueues, CallRoom, CallRoomConfig, MediaPool, ParticipantMedia, load_wav_48k, round_trip,
};
use mediabot::media::analysis::{align, correlation, overlap};
use mediabot::media::codec::{CodecBackend, OpusDecoder};
use mediabot::media::frame::AudioFrame;
use mediabot::media::leg::LegPort;
use mediabot::media::packet::RtpPacket;
use mediabot::media::room::RoomId;

fn pool() -> Arc<MediaPool> {
    Arc::new(
        ShardPool::start(ShardConfig {
            shards: 1,
            rt_priority: None,
            ..ShardConfig::default()
        })
        .expect("shard pool"),
    )
}

/// A bot leg that sends every packet the room gives it straight back (an echo bot with no
/// network), keeping what it received.
fn loopback_bot(
    ssrc: u32,
) -> (
    BotLegQueues,
    tokio::task::JoinHandle<Vec<RtpPacket>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (mut port, input, output) = LegPort::new(64);
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stop_rx => break,
            }
            while let Some(mut p) = port.pop() {
                got.push(p);
                p.arrival = Instant::now();
                port.push(p);
            }
        }
        got
    });
    (
        BotLegQueues {
            input,
            output,
            ssrc,
        },
        task,
        stop_tx,
    )
}

fn decode(packets: &[RtpPacket]) -> Vec<f32> {
    let mut dec = OpusDecoder::new(CodecBackend::OpusRs).expect("decoder");
    let mut out = Vec::new();
    let mut frame = AudioFrame::silence();
    let mut last_ts: Option<u32> = None;
    for p in packets {
        // Ticks in which the room sent nothing leave gaps in the timestamps: fill with silence.
        if let Some(ts) = last_ts {
            let gap = p.meta.timestamp.wrapping_sub(ts) / 960;
            for _ in 1..gap.min(500) {
                out.extend_from_slice(&[0.0; 960]);
            }
        }
        last_ts = Some(p.meta.timestamp);
        dec.decode(p.payload.as_slice(), &mut frame)
            .expect("our own packets decode");
        out.extend_from_slice(&frame.samples);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_hears_its_own_speech_through_an_echoing_bot_leg() {
    let pool = pool();
    let (bot, echo, stop_echo) = loopback_bot(0xb07_0001);
    let room = CallRoom::start(
        Arc::clone(&pool),
        RoomId(1),
        &[ParticipantMedia::caller()],
        bot,
        &CallRoomConfig::default(),
        None,
        false,
    )
    .expect("room starts");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let report = room.stop().await;
    let _ = stop_echo.send(());
    let _ = echo.await;
    pool.shutdown().expect("shards stop");

    let caller = &report.participants[0];
    assert_eq!(caller.name, "caller");
    assert_eq!(caller.underruns, 0);
    assert!(
        caller.frames_heard >= 150,
        "{} frames heard",
        caller.frames_heard
    );
    let rt = round_trip(
        &caller.sent,
        &caller.heard,
        Duration::ZERO,
        Duration::from_secs(1),
    )
    .expect("speech sent");
    eprintln!("loopback round trip: {rt:?}, bot playout {:?}", report.bot);
    // Opus once each way (room → bot is the shared encode, bot → room is decoded again).
    assert!(rt.correlation >= 0.8, "{rt:?}");
    // The bot's packets were played. The room sends a listener nothing while nobody speaks,
    // so the echo has gaps in the caller's pauses, which the jitter buffer plays as
    // concealment (DTX): a few ticks, not a steady loss.
    assert!(report.bot.packets > 150, "{:?}", report.bot);
    assert!(
        report.bot.concealed * 10 <= report.bot.ticks,
        "{:?}",
        report.bot
    );
    // The loopback echoes the room's own packets, sequence numbers and all, so those gaps are
    // found to be pauses (but the run the stop cut short, its own part): concealment without
    // loss, but for a packet a busy machine may have delayed past its playout.
    let b = &report.bot;
    assert!(
        b.jitter_paused_concealed <= b.jitter_paused && b.jitter_paused <= b.jitter_lost,
        "{b:?}"
    );
    let c = Concealment::of_emulator_room(b);
    eprintln!("bot → caller concealment: {c}");
    assert!(
        c.sender_pause_frames > 0,
        "the caller's speech has pauses: {c:?}"
    );
    // At most 1 frame in 20 (a margin for a loaded CI machine).
    assert!(c.loss_frames * 20 <= c.frames, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_leg_receives_the_mix_of_two_participants() {
    let pool = pool();
    let (bot, echo, stop_echo) = loopback_bot(0xb07_0002);
    let room = CallRoom::start(
        Arc::clone(&pool),
        RoomId(2),
        &[ParticipantMedia::caller(), ParticipantMedia::second()],
        bot,
        &CallRoomConfig::default(),
        None,
        false,
    )
    .expect("room starts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = room.stop().await;
    let _ = stop_echo.send(());
    let to_bot = decode(&echo.await.expect("echo task"));
    pool.shutdown().expect("shards stop");

    let a = &report.participants[0].sent;
    let b = &report.participants[1].sent;
    let n = to_bot.len().min(a.len()).min(b.len()).min(48_000 * 2);
    let sum: Vec<f32> = a[..n].iter().zip(&b[..n]).map(|(x, y)| x + y).collect();
    // Align on the sum (the mix), then judge each source at that delay.
    let al = align(&sum[..n], &to_bot[..n], 4_800);
    let (r, t) = overlap(&sum[..n], &to_bot[..n], al.lag);
    let c_sum = correlation(r, t);
    let (ra, ta) = overlap(&a[..n], &to_bot[..n], al.lag);
    let (rb, tb) = overlap(&b[..n], &to_bot[..n], al.lag);
    let (c_a, c_b) = (correlation(ra, ta), correlation(rb, tb));
    eprintln!(
        "bot hears the mix: lag {} samples, corr sum {c_sum:.3}, a {c_a:.3}, b {c_b:.3}",
        al.lag
    );
    assert!(c_sum >= 0.8, "{c_sum}");
    assert!(c_a >= 0.3 && c_b >= 0.3, "{c_a} {c_b}");
    // Each participant hears the other one directly (mix-minus) plus the bot.
    let heard_by_a = &report.participants[0].heard;
    let m = heard_by_a.len().min(b.len()).min(48_000 * 2);
    assert!(correlation(&b[..m], &heard_by_a[..m]) > 0.3);
}

#[test]
fn speech_files_are_the_documented_ones() {
    let caller = load_wav_48k(&ParticipantMedia::caller().speech_wav).expect("caller");
    let second = load_wav_48k(&ParticipantMedia::second().speech_wav).expect("second");
    assert!(caller.len() > 48_000 * 9 && second.len() > 48_000 * 6);
}

// ---------------------------------------------------------------------------------------
// Over the network: real loopback HTTPS negotiation, real WebRTC, real Opus.
// ---------------------------------------------------------------------------------------

use std::sync::Mutex;
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mediabot::adapters::media_host::{CallBehaviour, MediaHost, MediaHostConfig};
use mediabot::adapters::negotiation;
use mediabot::adapters::tls::{HttpsServer, TlsIdentity, serve_https_on};
use mediabot::adapters::webrtc::{Egress, LegQueues, MediaSession, MediaTransport};
use mediabot::emulator::media::{
    LegEnd, MediaProcError, MediaProcessor, MediaProcessorConfig, first_heard_wav, media_dir,
};
use mediabot::graph::CallId;
use mediabot::media::codec::EncoderConfig;
use mediabot::media::prompt::Prompt;
use mediabot::session::blob::MediaSessionBlob;
use mediabot::session::token::{SessionId, SessionToken};

const ECHO_SSRC: u32 = 0xec40_0001;

/// A tiny WHIP-style answerer that loops every packet it receives straight back, keeping a
/// copy: the bot's side reduced to a mirror.
#[derive(Clone, Default)]
struct EchoPeer {
    token: String,
    /// Packets received from the media processor.
    received: Arc<Mutex<Vec<RtpPacket>>>,
    sessions: Arc<Mutex<Vec<(String, MediaSession)>>>,
    deletes: Arc<Mutex<u32>>,
}

async fn echo_offer(State(peer): State<EchoPeer>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {}", peer.token)) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let offer = String::from_utf8_lossy(&body).into_owned();
    let (signal, egress) = Egress::spawn().expect("egress");
    let (leg, mut ends) = LegQueues::new(256, ECHO_SSRC, egress);
    let transport = MediaTransport::new(Default::default());
    // The transport's future is not Send: drive it on a blocking-pool thread.
    let rt = tokio::runtime::Handle::current();
    let accepted =
        tokio::task::spawn_blocking(move || rt.block_on(transport.accept_offer(&offer, leg)))
            .await
            .expect("accept task");
    let Ok((answer, session)) = accepted else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let resource = {
        let mut sessions = peer.sessions.lock().expect("lock");
        let resource = format!(
            "echo-{}",
            sessions.len() + *peer.deletes.lock().expect("lock") as usize
        );
        sessions.push((resource.clone(), session));
        resource
    };
    let received = Arc::clone(&peer.received);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        loop {
            tick.tick().await;
            if ends.events.is_closed() {
                break;
            }
            while let Ok(mut p) = ends.inbound.pop() {
                received.lock().expect("lock").push(p);
                p.meta.ssrc = ECHO_SSRC;
                p.arrival = Instant::now();
                let _ = ends.outbound.push(p);
                signal.notify();
            }
            while let Ok(ev) = ends.events.try_recv() {
                if ev == mediabot::adapters::webrtc::MediaEvent::Closed {
                    return;
                }
            }
        }
    });
    (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_owned()),
            (header::LOCATION, format!("/media/v1/sessions/{resource}")),
        ],
        answer,
    )
        .into_response()
}

async fn echo_delete(State(peer): State<EchoPeer>, Path(id): Path<String>) -> StatusCode {
    let session = {
        let mut sessions = peer.sessions.lock().expect("lock");
        let Some(i) = sessions.iter().position(|(r, _)| *r == id) else {
            return StatusCode::NOT_FOUND;
        };
        *peer.deletes.lock().expect("lock") += 1;
        sessions.remove(i).1
    };
    session.close().await;
    StatusCode::OK
}

struct Served<T> {
    state: T,
    blob: String,
    cert: TlsIdentity,
    _server: HttpsServer,
}

async fn echo_peer() -> Served<EchoPeer> {
    let token = SessionToken::generate();
    let id = SessionId::generate();
    let peer = EchoPeer {
        token: token.as_str().to_owned(),
        ..EchoPeer::default()
    };
    let router = Router::new()
        .route(
            "/media/v1/sessions/{id}",
            post(echo_offer).delete(echo_delete),
        )
        .with_state(peer.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    let tls = TlsIdentity::self_signed_localhost().expect("tls");
    let server = serve_https_on(router, listener, &tls).await.expect("serve");
    let blob = MediaSessionBlob::new(
        &id,
        &token,
        &base,
        SystemTime::now() + Duration::from_secs(60),
    );
    Served {
        state: peer,
        blob: blob.to_json(),
        cert: tls,
        _server: server,
    }
}

fn processor(trust: &TlsIdentity) -> MediaProcessor {
    MediaProcessor::start(MediaProcessorConfig {
        trusted_certs: vec![trust.certificate().clone()],
        ..MediaProcessorConfig::default()
    })
    .expect("media processor")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hears_its_own_speech_back_through_a_webrtc_echo_peer() {
    let echo = echo_peer().await;
    let mp = processor(&echo.cert);
    let leg = mp
        .join("call-echo", &echo.blob, vec![ParticipantMedia::caller()])
        .await
        .expect("joins");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let report = leg.leave().await;
    // The room is gone from the emulator's shard.
    let deadline = Instant::now() + Duration::from_secs(5);
    while mp.shard_stats().iter().map(|s| s.rooms).sum::<u64>() > 0 {
        assert!(Instant::now() < deadline, "room still on its shard");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mp.shutdown().expect("shards stop");

    let rt = report
        .round_trip(0, Duration::from_secs(1))
        .expect("speech sent");
    eprintln!(
        "echo peer over WebRTC: negotiation {:?}, connect {:?}, round trip {:.1} ms, correlation {:.3}, packets out {} in {}, concealed {}",
        report.negotiation_time,
        report.connect_time,
        rt.delay_ms,
        rt.correlation,
        report.packets_out(),
        report.packets_in(),
        report.concealed_frames()
    );
    assert!(rt.correlation >= 0.8, "{rt:?}");
    assert!(rt.delay_ms > 20.0 && rt.delay_ms < 500.0, "{rt:?}");
    assert!(
        report.packets_out() > 150 && report.packets_in() > 150,
        "{:?}",
        report.transport
    );
    assert_eq!(report.participants[0].underruns, 0);
    // leave() said goodbye with a DELETE.
    assert_eq!(report.delete_status, Some(200));
    assert_eq!(*echo.state.deletes.lock().expect("lock"), 1);
    assert_eq!(report.end, Some(LegEnd::Left));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_calls_each_hear_their_own_echo() {
    let echo = echo_peer().await;
    let mp = processor(&echo.cert);
    let joins = (0..3).map(|i| {
        let mp = mp.clone();
        let blob = echo.blob.clone();
        let caller = if i % 2 == 0 {
            ParticipantMedia::caller()
        } else {
            ParticipantMedia::second()
        };
        tokio::spawn(async move { mp.join(&format!("call-{i}"), &blob, vec![caller]).await })
    });
    let mut legs = Vec::new();
    for j in joins {
        legs.push(j.await.expect("join task").expect("joins"));
    }
    assert_eq!(mp.shard_stats().iter().map(|s| s.rooms).sum::<u64>(), 3);
    tokio::time::sleep(Duration::from_secs(4)).await;
    for leg in legs {
        let report = leg.leave().await;
        let rt = report
            .round_trip(0, Duration::from_secs(1))
            .expect("speech sent");
        eprintln!(
            "{}: round trip {:.1} ms, correlation {:.3}",
            report.call_id, rt.delay_ms, rt.correlation
        );
        assert!(rt.correlation >= 0.8, "{}: {rt:?}", report.call_id);
        assert_eq!(report.participants[0].underruns, 0);
    }
    mp.shutdown().expect("shards stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_receives_the_mix_of_two_participants_over_webrtc() {
    let echo = echo_peer().await;
    let mp = processor(&echo.cert);
    let leg = mp
        .join(
            "call-two",
            &echo.blob,
            vec![ParticipantMedia::caller(), ParticipantMedia::second()],
        )
        .await
        .expect("joins");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = leg.leave().await;
    mp.shutdown().expect("shards stop");
    let received = std::mem::take(&mut *echo.state.received.lock().expect("lock"));
    let to_bot = decode(&received);

    // The participants were held silent until media connected; the room's first packet to
    // the bot carries their first words. Start both timelines there.
    let start = mediabot::emulator::media::round_trip::first_audio_in(&report.participants[0].sent)
        .expect("the caller spoke");
    let a = &report.participants[0].sent[start..];
    let b = &report.participants[1].sent[start..];
    let n = to_bot.len().min(a.len()).min(b.len()).min(48_000 * 2);
    let sum: Vec<f32> = a[..n].iter().zip(&b[..n]).map(|(x, y)| x + y).collect();
    let al = align(&to_bot[..n], &sum[..n], 9_600);
    let (t, r) = overlap(&to_bot[..n], &sum[..n], al.lag);
    let c_sum = correlation(r, t);
    let (t, ra) = overlap(&to_bot[..n], &a[..n], al.lag);
    let c_a = correlation(ra, t);
    let (t, rb) = overlap(&to_bot[..n], &b[..n], al.lag);
    let c_b = correlation(rb, t);
    eprintln!("bot received the mix over WebRTC: corr with a+b {c_sum:.3}, a {c_a:.3}, b {c_b:.3}");
    assert!(c_sum >= 0.8, "{c_sum}");
    assert!(c_a >= 0.3 && c_b >= 0.3, "{c_a} {c_b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_blobs_and_refused_offers_are_typed_errors() {
    let echo = echo_peer().await;
    let mp = processor(&echo.cert);
    for bad in ["", "not json", "{\"v\":2}", "{\"v\":1}", "[1,2,3]"] {
        let e = mp.join("c", bad, vec![ParticipantMedia::caller()]).await;
        assert!(matches!(e, Err(MediaProcError::Blob(_))), "{bad}: {e:?}");
    }
    // A blob with the wrong token: the endpoint refuses with 401.
    let mut v: serde_json::Value = serde_json::from_str(&echo.blob).expect("json");
    v["token"] = SessionToken::generate().as_str().into();
    let e = mp
        .join("c", &v.to_string(), vec![ParticipantMedia::caller()])
        .await;
    assert!(
        matches!(
            e,
            Err(MediaProcError::Negotiation {
                status: Some(401),
                ..
            })
        ),
        "{e:?}"
    );
    // No participants.
    let e = mp.join("c", &echo.blob, vec![]).await;
    assert!(matches!(e, Err(MediaProcError::NoParticipants)), "{e:?}");
    // An endpoint that does not trust... the other way round: we do not trust it.
    let stranger = MediaProcessor::start(MediaProcessorConfig::default()).expect("mp");
    let e = stranger
        .join("c", &echo.blob, vec![ParticipantMedia::caller()])
        .await;
    assert!(
        matches!(e, Err(MediaProcError::Negotiation { status: None, .. })),
        "{e:?}"
    );
    stranger.shutdown().expect("stop");
    mp.shutdown().expect("stop");
}

/// The real bot side: the session branch's media host with a greeting and an echo.
async fn bot_host() -> (MediaHost, TlsIdentity, HttpsServer) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    let (host, _events) = MediaHost::start(MediaHostConfig {
        negotiate_base: base,
        shards: ShardConfig {
            shards: 1,
            rt_priority: None,
            ..ShardConfig::default()
        },
        ..MediaHostConfig::default()
    })
    .expect("host");
    let tls = TlsIdentity::self_signed_localhost().expect("tls");
    let server = serve_https_on(negotiation::router(host.clone()), listener, &tls)
        .await
        .expect("serve");
    (host, tls, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_real_bot_the_greeting_is_heard_first_then_the_echo() {
    let (host, tls, _server) = bot_host().await;
    let greeting_wav = media_dir().join("greeting-16k.wav");
    let prompt = Prompt::from_wav_file(
        &greeting_wav,
        CodecBackend::OpusRs,
        &EncoderConfig::default(),
    )
    .expect("greeting");
    let call = CallId::from("call-greeting");
    let blob = host
        .create_session(
            &call,
            CallBehaviour {
                greeting: Some(Arc::new(prompt)),
                echo_delay: Some(Duration::from_millis(200)),
                record_dir: None,
            },
        )
        .expect("session");
    let mp = processor(&tls);
    // The caller waits for the greeting (4.75 s) before speaking.
    let caller = ParticipantMedia::caller().lead_silence(Duration::from_millis(5_200));
    let leg = mp
        .join(call.as_str(), &blob.to_json(), vec![caller])
        .await
        .expect("joins");
    tokio::time::sleep(Duration::from_millis(9_000)).await;
    let report = leg.leave().await;
    let _ = host.shutdown().await;
    mp.shutdown().expect("shards stop");

    let caller = &report.participants[0];
    let first = first_heard_wav(&caller.heard, &greeting_wav)
        .expect("greeting wav")
        .expect("something was heard");
    let rt = report
        .round_trip(0, Duration::from_secs(1))
        .expect("speech sent");
    eprintln!(
        "real bot: connect {:?}, greeting {first:?}, round trip {:.1} ms corr {:.3}, packets out {} in {}, concealed {}",
        report.connect_time,
        rt.delay_ms,
        rt.correlation,
        report.packets_out(),
        report.packets_in(),
        report.concealed_frames()
    );
    assert!(first.is_prompt(0.7), "{first:?}");
    // The echo comes back 200 ms (the bot's delay) plus the path later.
    assert!(rt.delay_ms >= 200.0 && rt.delay_ms < 700.0, "{rt:?}");
    // Through the session host's echo bot the speech crosses two Opus passes and two
    // adaptive jitter buffers that conceal the room's DTX gaps: 0.85–0.86 on a quiet machine,
    // down to about 0.7 when the 2 shared cores are saturated. The ≥ 0.8 bar is held by the
    // single-pass echo-peer tests; here the echo must clearly be the caller's speech.
    assert!(rt.correlation >= 0.6, "{rt:?}");
    assert_eq!(report.delete_status, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_ending_the_session_ends_the_leg() {
    let (host, tls, _server) = bot_host().await;
    let call = CallId::from("call-bot-ends");
    let blob = host
        .create_session(&call, CallBehaviour::default())
        .expect("session");
    let mp = processor(&tls);
    let leg = mp
        .join(
            call.as_str(),
            &blob.to_json(),
            vec![ParticipantMedia::caller()],
        )
        .await
        .expect("joins");
    assert_eq!(leg.end(), None);
    // Media flows for a moment, then the bot ends the session.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(leg.report().packets_out() > 0);
    assert!(host.end_session(&call).await);
    let end = tokio::time::timeout(Duration::from_secs(10), leg.ended())
        .await
        .expect("the leg notices");
    assert_eq!(end, LegEnd::BotClosed);
    let report = leg.leave().await;
    // No DELETE after the bot closed it.
    assert_eq!(report.delete_status, None);
    assert_eq!(report.end, Some(LegEnd::BotClosed));
    let _ = host.shutdown().await;
    mp.shutdown().expect("stop");
}

// ---------------------------------------------------------------------------------------
// Through the emulator: the bot answers a rung call with an app-hosted blob; the emulator's
// media processor joins (or leaves the blob to an external peer).
// ---------------------------------------------------------------------------------------

#[path = "support/bot_emulator.rs"]
mod support;

use mediabot::adapters::call_handler::CallHandler;
use mediabot::adapters::graph_client::BoxFuture;
use mediabot::call::wire::{MediaConfig, Modality};
use mediabot::call::{Answer, CallConfig, CallEvent, Decision, IncomingCall};
use mediabot::emulator::RingRequest;
use mediabot::emulator::media::{MediaRequest, MediaState};
use mediabot::emulator::record::Phase;
use mediabot::emulator::scenario::Scenario;

/// A bot that answers every call with a real media session: echo after 100 ms.
#[derive(Debug)]
struct EchoBot {
    host: MediaHost,
}

impl CallHandler for EchoBot {
    fn on_incoming(&self, call: IncomingCall) -> BoxFuture<'static, Decision> {
        let behaviour = CallBehaviour {
            echo_delay: Some(Duration::from_millis(100)),
            ..CallBehaviour::default()
        };
        let id = CallId::from(call.call_id.as_str());
        let blob = self.host.create_session(&id, behaviour).expect("session");
        Box::pin(std::future::ready(Decision::Answer(Answer {
            media_config: MediaConfig::app_hosted(blob.to_json()),
            accepted_modalities: vec![Modality::Audio],
            participant_capacity: None,
        })))
    }

    fn on_event(&self, event: &CallEvent) {
        if let CallEvent::Terminated { call_id, .. } = event {
            let host = self.host.clone();
            let id = CallId::from(call_id.as_str());
            tokio::spawn(async move { host.end_session(&id).await });
        }
    }
}

async fn emulator_and_echo_bot() -> (support::Pair, MediaHost, (TlsIdentity, HttpsServer)) {
    let (host, tls, server) = bot_host().await;
    let pair = support::start(
        Arc::new(EchoBot { host: host.clone() }),
        CallConfig::default(),
    )
    .await;
    pair.emu
        .trust_bot_certificate(tls.certificate().clone())
        .expect("trust the negotiation endpoint");
    (pair, host, (tls, server))
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_rung_with_media_is_joined_by_the_emulator_and_ends_when_the_caller_hangs_up() {
    let (pair, host, _server) = emulator_and_echo_bot().await;
    let id = pair
        .emu
        .ring(
            RingRequest::new(pair.bot.webhook_url(), Scenario::P2p).media(MediaRequest::emulator()),
        )
        .expect("ring");
    let connected = pair
        .emu
        .wait_media(&id, |m| m.state == MediaState::Connected, WAIT)
        .await
        .expect("media connected");
    assert!(connected.blob.is_some() && connected.connect_ms.is_some());
    // The control API shows it in the call record.
    let client =
        mediabot::adapters::tls::https_client(&[pair.emu.certificate().clone()]).expect("client");
    let record: serde_json::Value = client
        .get(format!("{}/calls/{id}", pair.emu.control_url()))
        .send()
        .await
        .expect("GET call")
        .json()
        .await
        .expect("json");
    assert_eq!(record["media"]["state"], "connected");
    assert_eq!(record["media"]["peer"], "emulator");

    tokio::time::sleep(Duration::from_secs(4)).await;
    pair.emu.hangup(&id).expect("caller hangs up");
    let ended = pair
        .emu
        .wait_media(&id, |m| m.state == MediaState::Ended, WAIT)
        .await
        .expect("media ended");
    eprintln!(
        "emulator-joined call: {}",
        serde_json::to_string(&ended).expect("json")
    );
    assert_eq!(ended.ended_by.as_deref(), Some("callEnded"));
    let rt = ended.round_trip.expect("measured");
    // Through the session host's echo bot the speech crosses two Opus passes and two
    // adaptive jitter buffers that conceal the room's DTX gaps: 0.85–0.86 on a quiet machine,
    // down to about 0.7 when the 2 shared cores are saturated. The ≥ 0.8 bar is held by the
    // single-pass echo-peer tests; here the echo must clearly be the caller's speech.
    assert!(rt.correlation >= 0.6, "{rt:?}");
    assert!(rt.delay_ms >= 100.0 && rt.delay_ms < 600.0, "{rt:?}");
    assert!(
        ended.packets_in > 100 && ended.packets_out > 100,
        "{ended:?}"
    );
    let report = pair.emu.take_media_report(&id).expect("report with audio");
    assert!(!report.participants[0].heard.is_empty());
    assert!(pair.emu.take_media_report(&id).is_none(), "taken once");
    // The bot's media session was ended with the call.
    let call = CallId::from(id.as_str());
    let deadline = Instant::now() + WAIT;
    while host
        .stats(&call)
        .is_some_and(|s| s.transport.failure.is_none() && s.phase.is_some())
    {
        assert!(Instant::now() < deadline, "bot session still alive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_peer_gets_the_blob_and_the_emulator_does_not_join() {
    let (pair, host, (tls, _server)) = emulator_and_echo_bot().await;
    let id = pair
        .emu
        .ring(
            RingRequest::new(pair.bot.webhook_url(), Scenario::Pstn)
                .media(MediaRequest::external()),
        )
        .expect("ring");
    pair.emu
        .wait_until(&id, |c| c.state == Phase::Established, WAIT)
        .await
        .expect("established");
    let m = pair
        .emu
        .wait_media(&id, |m| m.state == MediaState::External, WAIT)
        .await
        .expect("blob handed out");
    // Whoever asked reads the blob from the control API.
    let client =
        mediabot::adapters::tls::https_client(&[pair.emu.certificate().clone()]).expect("client");
    let media: serde_json::Value = client
        .get(format!("{}/calls/{id}/media", pair.emu.control_url()))
        .send()
        .await
        .expect("GET media")
        .json()
        .await
        .expect("json");
    let blob = media["blob"].as_str().expect("blob").to_owned();
    assert_eq!(Some(&blob), m.blob.as_ref());
    MediaSessionBlob::parse(&blob).expect("a v1 blob");
    // The emulator did not negotiate: the bot's session is still waiting for an offer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(host.host_stats().negotiated, 0);
    assert_eq!(
        pair.emu.media(&id).expect("record").state,
        MediaState::External
    );
    // Another WebRTC stack (here: a second media processor) can join with it.
    let other = processor(&tls);
    let leg = other
        .join(&id, &blob, vec![ParticipantMedia::caller()])
        .await
        .expect("the external peer joins");
    assert_eq!(host.host_stats().negotiated, 1);
    let report = leg.leave().await;
    assert_eq!(report.delete_status, Some(200));
    other.shutdown().expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_hanging_up_ends_the_emulators_media_leg() {
    let (pair, _host, _server) = emulator_and_echo_bot().await;
    let id = pair
        .emu
        .ring(
            RingRequest::new(pair.bot.webhook_url(), Scenario::P2p).media(MediaRequest::emulator()),
        )
        .expect("ring");
    pair.emu
        .wait_media(&id, |m| m.state == MediaState::Connected, WAIT)
        .await
        .expect("media connected");
    pair.bot
        .hang_up(&mediabot::call::CallId::from(id.as_str()))
        .await
        .expect("bot hangs up");
    let ended = pair
        .emu
        .wait_media(&id, |m| m.state == MediaState::Ended, WAIT)
        .await
        .expect("media ended");
    // The call's termination or the bot closing its media session, whichever came first.
    assert!(
        matches!(ended.ended_by.as_deref(), Some("callEnded" | "botClosed")),
        "{ended:?}"
    );
    assert_eq!(pair.emu.call(&id).expect("call").state, Phase::Terminated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_rung_without_media_has_no_media_record() {
    let (pair, _host, _server) = emulator_and_echo_bot().await;
    let id = pair
        .emu
        .ring(RingRequest::new(pair.bot.webhook_url(), Scenario::P2p))
        .expect("ring");
    pair.emu
        .wait_until(&id, |c| c.state == Phase::Established, WAIT)
        .await
        .expect("established");
    assert_eq!(pair.emu.media(&id), None);
    let client =
        mediabot::adapters::tls::https_client(&[pair.emu.certificate().clone()]).expect("client");
    let r = client
        .get(format!("{}/calls/{id}/media", pair.emu.control_url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
}
