//! Building a call's media off-shard when its offer arrives: the leg's queues, the room and
//! the members the behaviour asks for, the recording, and the transport's answer.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::config::{CallBehaviour, MediaHostConfig};
use crate::adapters::call_room::{CallCounters, CallRoom};
use crate::adapters::recording::{
    RecordingError, RecordingHandle, RecordingOptions, RecordingSummary, RecordingWriter,
    WriterThread,
};
use crate::adapters::webrtc::{
    Egress, LegQueues, MediaEvent, MediaSession, MediaTransport, TransportError, sdp,
};
use crate::graph::CallId;
use crate::media::leg::CallLegConfig;
use crate::media::member::Member;
use crate::media::prompt::PlayMode;
use crate::media::record_queue::RecordEvents;
use crate::media::recorder::RecorderConfig;
use crate::media::room::{MemberId, Room, RoomConfig, RoomId};
use crate::session::registry::NegotiationError;

/// Member ids inside a call's room.
const LEG: MemberId = MemberId(1);
const GREETING: MemberId = MemberId(2);
const ECHO: MemberId = MemberId(3);
const RECORDER: MemberId = MemberId(4);
/// The local participant (a sound device), when it is in this call.
pub(super) const LOCAL: MemberId = MemberId(5);

/// What negotiation built for a call, before it is installed.
pub(super) struct Built {
    pub session: Arc<MediaSession>,
    pub room: CallRoom,
    pub counters: Arc<CallCounters>,
    pub recording: Option<Recording>,
    pub events: mpsc::Receiver<MediaEvent>,
}

/// Checks the offer, builds the call's room off-shard (room `room_id`) and answers the offer.
pub(super) async fn answer(
    config: &MediaHostConfig,
    transport: &MediaTransport,
    recorder: &WriterThread,
    room_id: RoomId,
    call_id: &CallId,
    behaviour: &CallBehaviour,
    offer: &str,
) -> Result<(String, Built), NegotiationError> {
    sdp::check(offer).map_err(from_transport)?;
    let ssrc = rand::random::<u32>();
    let (signal, egress) =
        Egress::spawn().map_err(|e| NegotiationError::Unavailable(e.to_string()))?;
    let capacity = config.leg_queue_capacity.max(1);
    let (inbound_tx, inbound_rx) = rtrb::RingBuffer::new(capacity);
    let (outbound_tx, outbound_rx) = rtrb::RingBuffer::new(capacity);
    let (events_tx, events_rx) = mpsc::channel(64);
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        NegotiationError::Unavailable(format!("{what}: {e}"))
    };
    let room_config = RoomConfig {
        max_members: 8,
        encoder: config.encoder,
        backend: config.backend,
        // One call leg per room (Teams' media processor mixes the call's participants into
        // it): a shared encoder would have nobody to share with, and costs ≈ 200 KiB.
        shared_encode: false,
        ..RoomConfig::default()
    };
    let mut room = Room::new(room_id, room_config).map_err(|e| unavailable("room", &e))?;
    let leg_config = CallLegConfig {
        ssrc,
        initial_seq: rand::random(),
        initial_timestamp: rand::random(),
        encoder: config.encoder,
        backend: config.backend,
        ..CallLegConfig::default()
    };
    let leg = Member::call_leg(LEG, &leg_config, inbound_rx, outbound_tx)
        .map_err(|e| unavailable("call leg", &e))?;
    let full = |_| NegotiationError::Unavailable("room refused a member".into());
    room.add_member(leg).map_err(full)?;
    if let Some(prompt) = &behaviour.greeting {
        room.add_member(Member::prompt(GREETING, Arc::clone(prompt), PlayMode::Once))
            .map_err(full)?;
    }
    let echo = match behaviour.echo_delay {
        Some(delay) => {
            room.add_member(Member::echo(ECHO, LEG, delay))
                .map_err(full)?;
            Some(ECHO)
        }
        None => None,
    };
    let recording = match &behaviour.record_dir {
        Some(dir) => {
            let config = RecorderConfig {
                legs: vec![LEG],
                mix: true,
                // 16 ticks (320 ms) of slack for the writer thread, which drains every 40 ms:
                // 16 × (a typical leg packet + a mix frame) ≈ 34 KB.
                capacity: 32,
            };
            let (member, events) = Member::recorder(RECORDER, &config);
            room.add_member(member).map_err(full)?;
            let recording = Recording::start(recorder, dir, call_id, &config, events)
                .map_err(|e| unavailable("recording", &e))?;
            Some(recording)
        }
        None => None,
    };
    let (call_room, counters) = CallRoom::new(room, LEG, echo, signal);
    let leg_queues = LegQueues {
        inbound: inbound_tx,
        outbound: outbound_rx,
        events: events_tx,
        ssrc,
        egress,
    };
    let (answer, session) = match accept(transport, offer, leg_queues).await {
        Ok(ok) => ok,
        Err(e) => {
            if let Some(r) = recording {
                r.finish().await;
            }
            return Err(from_transport(e));
        }
    };
    Ok((
        answer,
        Built {
            session: Arc::new(session),
            room: call_room,
            counters,
            recording,
            events: events_rx,
        },
    ))
}

/// A call's recording: a [`RecordingWriter`] on the host's writer thread, in `{record_dir}/{call id}`
/// (characters other than `[A-Za-z0-9._-]` replaced by `_`; `-{session id}` appended if that
/// directory already holds a recording).
#[derive(Debug)]
pub(super) struct Recording(RecordingHandle);

impl Recording {
    fn start(
        thread: &WriterThread,
        dir: &Path,
        call_id: &CallId,
        config: &RecorderConfig,
        events: RecordEvents,
    ) -> Result<Self, RecordingError> {
        let name: String = call_id
            .as_str()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let options = || RecordingOptions {
            call_id: Some(call_id.to_string()),
            ..RecordingOptions::default()
        };
        let writer = match RecordingWriter::create(dir.join(&name), config, options()) {
            Err(RecordingError::Io {
                kind: std::io::ErrorKind::AlreadyExists,
                ..
            }) => {
                let unique = format!("{name}-{}", uuid::Uuid::new_v4());
                RecordingWriter::create(dir.join(unique), config, options())?
            }
            other => other?,
        };
        Ok(Self(thread.add(writer, events)?))
    }

    /// Writes what is queued, closes the files; `None` if the recording failed.
    pub(super) async fn finish(self) -> Option<RecordingSummary> {
        let handle = self.0;
        match tokio::task::spawn_blocking(move || handle.stop(None)).await {
            Ok(Ok(summary)) => Some(summary),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "recording failed");
                None
            }
            Err(_) => None,
        }
    }
}

/// How often the writer thread drains every tap (a tap's queue holds 16 ticks).
pub(super) const RECORDING_POLL: Duration = Duration::from_millis(40);

/// [`MediaTransport::accept_offer`] on a blocking-pool thread of the current runtime.
///
/// The transport's future is not `Send` (it holds a reference to an `rtrb::Consumer`, which
/// is not `Sync`, across an await), so it cannot run inside an axum handler's future. Driving
/// it with `Handle::block_on` on a blocking-pool thread keeps it off the handler's future;
/// the tasks it spawns run on the runtime as usual. Remove once the transport's future is
/// `Send`.
async fn accept(
    transport: &MediaTransport,
    offer: &str,
    leg: LegQueues,
) -> Result<(String, MediaSession), TransportError> {
    let transport = transport.clone();
    let offer = offer.to_owned();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(transport.accept_offer(&offer, leg)))
        .await
        .unwrap_or_else(|e| Err(TransportError::Setup(format!("accept task: {e}"))))
}

fn from_transport(e: TransportError) -> NegotiationError {
    match e {
        TransportError::MalformedSdp(why) => NegotiationError::MalformedSdp(why),
        TransportError::NoAudio => NegotiationError::NoAudio,
        TransportError::NoOpus => NegotiationError::NoOpus,
        other => NegotiationError::Unavailable(other.to_string()),
    }
}
