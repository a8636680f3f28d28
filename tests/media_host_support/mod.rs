//! Shared glue for the media host tests: a bot's media host serving the negotiation
//! endpoint over loopback HTTPS, and a WebRTC media processor that offers, connects and streams
//! speech.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mediabot::adapters::media_host::{CallBehaviour, MediaHost, MediaHostConfig, MediaHostEvent};
use mediabot::adapters::negotiation;
use mediabot::adapters::shard::ShardConfig;
use mediabot::adapters::tls::{HttpsServer, TlsIdentity, https_client, serve_https_on};
use mediabot::adapters::webrtc::{
    Egress, EgressSignal, LegEnds, LegQueues, MediaEvent, MediaSession, MediaTransport,
    MediaTransportConfig,
};
use mediabot::graph::{CallId, GraphErrorBody};
use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusEncoder};
use mediabot::media::frame::AudioFrame;
use mediabot::media::packet::{OpusPacket, RtpMeta, RtpPacket};
use mediabot::media::prompt::Prompt;
use mediabot::session::blob::MediaSessionBlob;
use mediabot::session::registry::RegistryConfig;
use reqwest::StatusCode;
use tokio::sync::mpsc;

pub const PEER_SSRC: u32 = 0x5e55_0001;
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Bot {
    pub host: MediaHost,
    pub events: mpsc::Receiver<MediaHostEvent>,
    pub client: reqwest::Client,
    pub base: String,
    _server: HttpsServer,
}

pub async fn bot(negotiate_within: Duration) -> Bot {
    bot_with(negotiate_within, MediaTransportConfig::default()).await
}

pub async fn bot_with(negotiate_within: Duration, transport: MediaTransportConfig) -> Bot {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    let config = MediaHostConfig {
        negotiate_base: base.clone(),
        registry: RegistryConfig {
            negotiate_within,
            ..RegistryConfig::default()
        },
        transport,
        shards: ShardConfig {
            shards: 1,
            rt_priority: None,
            ..ShardConfig::default()
        },
        ..MediaHostConfig::default()
    };
    let (host, events) = MediaHost::start(config).expect("host");
    let tls = TlsIdentity::self_signed_localhost().expect("tls");
    let server = serve_https_on(negotiation::router(host.clone()), listener, &tls)
        .await
        .expect("serve");
    let client = https_client(&[tls.certificate().clone()]).expect("client");
    Bot {
        host,
        events,
        client,
        base,
        _server: server,
    }
}

pub fn greeting() -> CallBehaviour {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/media/greeting-16k.wav");
    let prompt = Prompt::from_wav_file(path, CodecBackend::OpusRs, &EncoderConfig::default())
        .expect("greeting");
    CallBehaviour {
        greeting: Some(Arc::new(prompt)),
        echo_delay: Some(Duration::from_millis(100)),
        record_dir: None,
    }
}

/// The media processor's side: an offer and what it needs to finish and send media.
pub struct Peer {
    pub offer: String,
    pub pending: mediabot::adapters::webrtc::PendingOffer,
    pub ends: LegEnds,
    pub signal: EgressSignal,
}

pub async fn peer() -> Peer {
    let (signal, handle) = Egress::spawn().expect("egress");
    let (leg, ends) = LegQueues::new(256, PEER_SSRC, handle);
    let transport = MediaTransport::new(MediaTransportConfig::default());
    let (offer, pending) = transport.create_offer(leg).await.expect("offer");
    Peer {
        offer,
        pending,
        ends,
        signal,
    }
}

pub async fn post(
    bot: &Bot,
    uri: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    bot.client
        .post(uri)
        .header("content-type", content_type)
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("request")
}

pub async fn offer(
    bot: &Bot,
    blob: &MediaSessionBlob,
    token: &str,
    sdp: &str,
) -> reqwest::Response {
    post(
        bot,
        &blob.negotiate_uri,
        token,
        "application/sdp",
        sdp.as_bytes().to_vec(),
    )
    .await
}

pub async fn delete(bot: &Bot, uri: &str, token: &str) -> reqwest::Response {
    bot.client
        .delete(uri)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

/// Asserts the status and the Graph-style error code of a refusal.
pub async fn refused(response: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status);
    if status == StatusCode::UNAUTHORIZED {
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let body: GraphErrorBody = response.json().await.expect("graph error body");
    assert_eq!(body.error.code, code, "{}", body.error.message);
    assert!(!body.error.message.is_empty());
}

/// The speech the media processor sends, as 20 ms frames (looped by [`stream`]).
pub fn speech_frames() -> Vec<AudioFrame> {
    let mut frames =
        mediabot::media::wav::media_frames("caller-48k.wav").expect("media file present");
    frames.truncate(SPEECH_FRAMES);
    frames
}

/// Frames of speech before [`stream`] starts over.
pub const SPEECH_FRAMES: usize = 100;

/// [`speech_frames`], Opus-encoded.
pub fn speech() -> Vec<OpusPacket> {
    let mut enc = OpusEncoder::new(CodecBackend::OpusRs, &EncoderConfig::default()).expect("enc");
    speech_frames()
        .iter()
        .map(|f| {
            let mut p = OpusPacket::EMPTY;
            enc.encode(f, &mut p).expect("encode");
            p
        })
        .collect()
}

/// A connected media processor: keeps sending speech every 20 ms until dropped.
pub struct Streaming {
    pub session: MediaSession,
    pub ends: LegEnds,
    stop: Arc<AtomicBool>,
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub async fn stream(p: Peer, answer: &str) -> Streaming {
    let Peer {
        pending,
        mut ends,
        signal,
        ..
    } = p;
    let session = pending.complete(answer).await.expect("complete");
    let connected = tokio::time::timeout(WAIT, ends.events.recv()).await;
    assert_eq!(connected.ok().flatten(), Some(MediaEvent::Connected));
    let stop = Arc::new(AtomicBool::new(false));
    let mut outbound = std::mem::replace(&mut ends.outbound, rtrb::RingBuffer::new(1).0);
    let packets = speech();
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut i = 0usize;
        while !flag.load(Ordering::Relaxed) {
            tick.tick().await;
            let packet = RtpPacket {
                meta: RtpMeta {
                    seq: i as u16,
                    timestamp: (960 * i) as u32,
                    ssrc: PEER_SSRC,
                    marker: i == 0,
                    audio_level: None,
                },
                payload: packets[i % packets.len()],
                arrival: std::time::Instant::now(),
            };
            let _ = outbound.push(packet);
            signal.notify();
            i += 1;
        }
    });
    Streaming {
        session,
        ends,
        stop,
    }
}

/// Waits until `f` holds (bounded by `WAIT`).
pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn received(bot: &Bot, call: &CallId) -> u64 {
    bot.host.stats(call).map_or(0, |s| s.room.packets_received)
}

pub async fn next_event(bot: &mut Bot, want: impl Fn(&MediaHostEvent) -> bool) -> MediaHostEvent {
    loop {
        let e = tokio::time::timeout(WAIT, bot.events.recv())
            .await
            .expect("event in time")
            .expect("channel open");
        if want(&e) {
            return e;
        }
    }
}
