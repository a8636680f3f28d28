//! One media session: the handle its owner keeps, and the supervisor task that decides when
//! and how it ends.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::peer_connection::transport::RTCDtlsTransportState;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::peer_connection::PeerConnection;
use webrtc::peer_connection::transport::DtlsTransport;

use super::dtmf::{DtmfDigit, ReceivedTelephoneEvent};
use super::egress::{EgressHandle, LegSink};
use super::error::TransportError;
use super::event::{FailureReason, MediaEvent};
use super::peer::{Ctl, Hooks};
use super::stats::{Counters, TransportStats};

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Negotiated; ICE/DTLS in progress.
    Connecting,
    /// Media can flow.
    Connected,
    /// Ended by a failure.
    Failed(FailureReason),
    /// Ended normally (locally or by the remote).
    Closed,
}

impl SessionState {
    /// True once the session has ended.
    pub fn is_ended(self) -> bool {
        matches!(self, Self::Failed(_) | Self::Closed)
    }
}

/// A live media session (one peer connection, one call leg).
///
/// Dropping it closes the session in the background; [`close`](Self::close) closes it and
/// waits until its tasks have ended and its sockets are closed.
#[derive(Debug)]
pub struct MediaSession {
    core: Arc<Core>,
    ctl: mpsc::UnboundedSender<Ctl>,
    supervisor: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

/// State shared by the session handle, its supervisor and (through the sink) its egress.
#[derive(Debug)]
pub(crate) struct Core {
    pub counters: Arc<Counters>,
    pub sink: Arc<LegSink>,
    pub events: mpsc::Sender<MediaEvent>,
    pub egress: EgressHandle,
    pub created: Instant,
    pub state: Mutex<SessionState>,
}

impl Core {
    fn state(&self) -> SessionState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connected(&self) {
        {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if *s != SessionState::Connecting {
                return;
            }
            *s = SessionState::Connected;
        }
        let us = self.created.elapsed().as_micros().max(1) as u64;
        self.counters.connect_time_us.store(us, Ordering::Relaxed);
        self.sink.connected.store(true, Ordering::Release);
        let _ = self.events.try_send(MediaEvent::Connected);
        self.egress.kick();
    }

    fn finish(&self, outcome: Option<FailureReason>) {
        {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.is_ended() {
                return;
            }
            *s = outcome.map_or(SessionState::Closed, SessionState::Failed);
        }
        self.sink.closed.store(true, Ordering::Release);
        self.egress.kick();
        let event = match outcome {
            Some(r) => {
                self.counters.set_failure(r);
                MediaEvent::Failed(r)
            }
            None => MediaEvent::Closed,
        };
        let _ = self.events.try_send(event);
    }
}

impl MediaSession {
    pub(crate) fn start(
        core: Arc<Core>,
        pc: Arc<dyn PeerConnection>,
        hooks: Arc<Hooks>,
        ctl_tx: mpsc::UnboundedSender<Ctl>,
        ctl_rx: mpsc::UnboundedReceiver<Ctl>,
        deadline: Instant,
    ) -> Self {
        let supervisor = tokio::spawn(supervise(core.clone(), pc, hooks, ctl_rx, deadline));
        Self {
            core,
            ctl: ctl_tx,
            supervisor: tokio::sync::Mutex::new(Some(supervisor)),
        }
    }

    /// Closes the session: ends the peer connection (DTLS close_notify to the remote), its
    /// driver and reader tasks, and closes its sockets; sends [`MediaEvent::Closed`] unless
    /// the session had already ended. Idempotent; returns once everything has ended.
    pub async fn close(&self) {
        let _ = self.ctl.send(Ctl::End(None));
        let handle = self.supervisor.lock().await.take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }

    /// Where the session is in its life.
    pub fn state(&self) -> SessionState {
        self.core.state()
    }

    /// A snapshot of the counters and latency histograms.
    pub fn stats(&self) -> TransportStats {
        self.core.counters.snapshot()
    }

    /// Sends an RFC 4733 telephone-event for `digit` lasting `duration`, after the digits
    /// already queued. The egress paces it by the room's 20 ms ticks (RFC 4733 §2.5): from the
    /// next tick on, one packet per tick with the event's start timestamp and the duration so
    /// far (the first with the marker), then the final duration with the `E` bit three times;
    /// the event replaces the audio while it lasts and shares its sequence-number space.
    /// Queued digits follow one another with one tick of pause. Durations are capped at 0xFFFF
    /// ticks (≈ 1.365 s), not segmented. Nothing is sent while nothing rings the egress (no
    /// room ticking).
    ///
    /// # Errors
    /// [`TransportError::BadDigit`] for a character that is not a DTMF key,
    /// [`TransportError::DtmfNotNegotiated`] when the remote did not offer
    /// `telephone-event/48000`, [`TransportError::Closed`] after the session ended.
    pub fn send_dtmf(&self, digit: char, duration: Duration) -> Result<(), TransportError> {
        let d = DtmfDigit::from_char(digit).ok_or(TransportError::BadDigit(digit))?;
        if self.state().is_ended() {
            return Err(TransportError::Closed);
        }
        if self.core.sink.telephone_event_pt.is_none() {
            return Err(TransportError::DtmfNotNegotiated);
        }
        self.core.sink.queue_dtmf(d, duration);
        self.core.egress.kick();
        Ok(())
    }

    /// The latest telephone-event (DTMF) packets this session received, oldest first (at
    /// most 64): every packet, retransmissions included, as it came out of SRTP. For
    /// diagnostics and tests; [`MediaEvent::Dtmf`] is the de-duplicated view.
    pub fn received_telephone_events(&self) -> Vec<ReceivedTelephoneEvent> {
        self.core.counters.telephone_events()
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        // The supervisor closes the peer connection on its own.
        let _ = self.ctl.send(Ctl::End(None));
    }
}

/// Runs until the session ends, then tears it down.
async fn supervise(
    core: Arc<Core>,
    pc: Arc<dyn PeerConnection>,
    hooks: Arc<Hooks>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    deadline: Instant,
) {
    let deadline = tokio::time::Instant::from_std(deadline);
    // A remote close (DTLS close_notify) leaves the peer connection "connected" by the W3C
    // state rules and fires no callback in webrtc-rs 0.21, so the DTLS transport state is
    // polled while connected.
    let mut dtls: Option<Arc<dyn DtlsTransport>> = None;
    let mut poll = tokio::time::interval(REMOTE_CLOSE_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome = loop {
        let connected = core.state() == SessionState::Connected;
        tokio::select! {
            m = ctl.recv() => match m {
                Some(Ctl::Connected) => {
                    core.connected();
                    if let Some(sender) = pc.get_senders().await.first() {
                        dtls = sender.transport().await.ok().flatten();
                    }
                }
                Some(Ctl::End(outcome)) => break outcome,
                None => break None,
            },
            () = tokio::time::sleep_until(deadline), if !connected => {
                break Some(FailureReason::ConnectTimeout);
            }
            _ = poll.tick(), if dtls.is_some() => {
                if let Some(t) = &dtls
                    && matches!(t.state().await, Ok(RTCDtlsTransportState::Closed) | Err(_))
                {
                    break None;
                }
            }
        }
    };
    core.finish(outcome);
    let _ = pc.close().await;
    let reader = hooks
        .reader
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(mut reader) = reader
        && tokio::time::timeout(Duration::from_secs(1), &mut reader)
            .await
            .is_err()
    {
        reader.abort();
    }
    // Drop the peer connection (and with it the handler and the sockets) here, on our task.
    drop(pc);
    drop(hooks);
}

/// How often a connected session checks whether the remote closed DTLS.
const REMOTE_CLOSE_POLL: Duration = Duration::from_millis(200);
