//! The local participant's seat: which call it is in, joining the oldest connected call when
//! free, leaving when that call ends (policy: [`crate::adapters::local_participant`]).
//!
//! Opening the participant (a sound device) may block for a while, so it runs on the
//! blocking pool with the seat marked `Opening`; the member is then handed to the call's
//! shard like any member added mid-call.

use std::sync::Arc;

use super::build::LOCAL;
use super::{Inner, SessionEvent};
use crate::adapters::local_participant::LocalSession;
use crate::graph::CallId;

/// Where the local participant is.
#[derive(Debug, Default)]
pub(super) enum Seat {
    /// In no call.
    #[default]
    Free,
    /// Being opened for this call.
    Opening(CallId),
    /// In this call's room.
    In {
        /// The call.
        call: CallId,
        /// Keeps it running; dropped when the call ends.
        session: Box<dyn LocalSession>,
    },
}

impl Seat {
    /// Takes the session out if the participant is in `call` (the seat is then free).
    pub(super) fn leave(&mut self, call: &CallId) -> Option<Box<dyn LocalSession>> {
        match std::mem::take(self) {
            Self::In { call: c, session } if c == *call => Some(session),
            other => {
                *self = other;
                None
            }
        }
    }
}

impl Inner {
    /// If the local participant is configured and free, puts it into the oldest call whose
    /// room is on a shard. A call that ends while the participant is being opened is skipped
    /// (the next oldest is tried); a participant that cannot be opened is reported on that
    /// call and the seat stays free until the next call connects.
    pub(super) async fn seat_local(self: &Arc<Self>) {
        let Some(local) = self.config.local.clone() else {
            return;
        };
        loop {
            let (call_id, room) = {
                let mut state = self.lock();
                if !matches!(state.seat, Seat::Free) {
                    return;
                }
                let Some((call_id, room)) = state
                    .calls
                    .iter()
                    .filter_map(|(id, c)| Some((c.connected?, id, c.room?)))
                    .min_by_key(|(order, ..)| *order)
                    .map(|(_, id, room)| (id.clone(), room))
                else {
                    return;
                };
                state.seat = Seat::Opening(call_id.clone());
                (call_id, room)
            };
            let opener = Arc::clone(&local);
            let joined = tokio::task::spawn_blocking(move || opener.join(LOCAL))
                .await
                .unwrap_or_else(|e| Err(format!("opening task: {e}")));
            let (member, session) = match joined {
                Ok(joined) => joined,
                Err(why) => {
                    self.lock().seat = Seat::Free;
                    tracing::warn!(call = %call_id, error = %why, "local participant could not join; the call goes on without it");
                    self.emit(&call_id, SessionEvent::LocalFailed(why));
                    return;
                }
            };
            let mut state = self.lock();
            let still_there = matches!(&state.seat, Seat::Opening(c) if *c == call_id)
                && state
                    .calls
                    .get(&call_id)
                    .is_some_and(|c| c.room == Some(room));
            if !still_there {
                // The call ended meanwhile: try the next one.
                if matches!(&state.seat, Seat::Opening(c) if *c == call_id) {
                    state.seat = Seat::Free;
                }
                drop(state);
                drop((member, session));
                continue;
            }
            return match self.pool.add_member(room, member) {
                Ok(()) => {
                    state.seat = Seat::In {
                        call: call_id.clone(),
                        session,
                    };
                    drop(state);
                    let what = local.describe();
                    tracing::info!(call = %call_id, local = %what, "local participant joined the call");
                    self.emit(&call_id, SessionEvent::LocalJoined(what));
                }
                Err(rejected) => {
                    state.seat = Seat::Free;
                    drop(state);
                    let why = format!("the call's shard refused it: {}", rejected.error);
                    drop((rejected, session));
                    tracing::warn!(call = %call_id, error = %why, "local participant could not join; the call goes on without it");
                    self.emit(&call_id, SessionEvent::LocalFailed(why));
                }
            };
        }
    }

    /// The call `call_id` ended: if the local participant was in it, it leaves (its session
    /// is dropped once the room is off its shard) and moves to the oldest connected call.
    /// Returns the session to drop.
    pub(super) fn unseat_local(&self, call_id: &CallId) -> Option<Box<dyn LocalSession>> {
        let session = self.lock().seat.leave(call_id)?;
        let lost = session.is_lost();
        let report = session.report();
        if lost {
            tracing::warn!(call = %call_id, %report, "local participant left the call; it had failed during it");
        } else {
            tracing::info!(call = %call_id, %report, "local participant left the call");
        }
        self.emit(call_id, SessionEvent::LocalLeft { lost });
        Some(session)
    }

    /// The call the local participant is in, if any.
    pub(super) fn local_call(&self) -> Option<CallId> {
        match &self.lock().seat {
            Seat::In { call, .. } => Some(call.clone()),
            _ => None,
        }
    }
}
