//! `Calls`: the calls table keyed by call id (the quinn `Endpoint` role).
//!
//! It routes inputs to the right [`Call`], recognises duplicated incoming notifications,
//! counts and ignores updates for calls it does not know, tolerates reordered state
//! notifications, and removes terminated calls after a grace period. Same drain rule as
//! [`Call`]: after any input, drain [`Calls::poll_output`] to `None` and re-read
//! [`Calls::poll_timeout`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::api::{ApiOutcome, RequestId};
use super::config::CallConfig;
use super::decision::Decision;
use super::error::CallError;
use super::machine::{Call, StateDisposition};
use super::output::{CallEvent, CallOutput};
use super::wire::{CallState, ResultInfo};
use crate::graph::CallId;

/// Many calls, keyed by id.
#[derive(Debug)]
pub struct Calls {
    cfg: Arc<CallConfig>,
    calls: HashMap<CallId, Call>,
    ready: VecDeque<CallId>,
    removed: VecDeque<CallOutput>,
    stats: CallsStats,
}

/// What the table did with a notification.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Disposition {
    /// A new incoming call entered the table.
    NewCall,
    /// A known call moved on.
    Applied,
    /// Already known (duplicated notification): nothing changed.
    Duplicate,
    /// Older than what is known (reordered) or not applicable: ignored.
    Stale,
    /// For a call not in the table: counted and ignored.
    UnknownCall,
    /// Not something the call core acts on (rosters, operations, …).
    Ignored,
}

/// Counters of the calls table.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct CallsStats {
    /// New incoming calls.
    pub incoming: u64,
    /// Duplicated notifications ignored.
    pub duplicates: u64,
    /// Reordered or inapplicable notifications ignored.
    pub stale: u64,
    /// Notifications for unknown calls ignored.
    pub unknown_call: u64,
    /// Notifications not about call state, ignored.
    pub ignored: u64,
    /// Calls removed after their grace period.
    pub removed: u64,
}

impl Calls {
    /// An empty table.
    pub fn new(cfg: CallConfig) -> Self {
        Self {
            cfg: Arc::new(cfg),
            calls: HashMap::new(),
            ready: VecDeque::new(),
            removed: VecDeque::new(),
            stats: CallsStats::default(),
        }
    }

    /// The configuration every call uses.
    pub fn config(&self) -> &CallConfig {
        &self.cfg
    }

    /// An incoming-call notification (`created`, state `incoming`) arrived at `now`.
    /// A call id already in the table is a duplicate and changes nothing.
    pub fn handle_incoming(
        &mut self,
        now: Instant,
        id: CallId,
        policy_recording: bool,
    ) -> Disposition {
        if self.calls.contains_key(&id) {
            self.stats.duplicates += 1;
            return Disposition::Duplicate;
        }
        self.stats.incoming += 1;
        let call = Call::incoming(now, id.clone(), policy_recording, Arc::clone(&self.cfg));
        self.calls.insert(id.clone(), call);
        self.ready.push_back(id);
        Disposition::NewCall
    }

    /// A state notification for call `id`.
    pub fn handle_state(
        &mut self,
        now: Instant,
        id: &CallId,
        state: CallState,
        result_info: Option<ResultInfo>,
    ) -> Disposition {
        let Some(call) = self.calls.get_mut(id) else {
            self.stats.unknown_call += 1;
            return Disposition::UnknownCall;
        };
        let disposition = match call.handle_state(now, state, result_info) {
            StateDisposition::Applied => Disposition::Applied,
            StateDisposition::Duplicate => Disposition::Duplicate,
            StateDisposition::Stale => Disposition::Stale,
        };
        self.count(disposition);
        self.ready.push_back(id.clone());
        disposition
    }

    /// Counts a notification the call core does not act on (or one for an unknown call).
    pub fn count(&mut self, disposition: Disposition) {
        match disposition {
            Disposition::Duplicate => self.stats.duplicates += 1,
            Disposition::Stale => self.stats.stale += 1,
            Disposition::UnknownCall => self.stats.unknown_call += 1,
            Disposition::Ignored => self.stats.ignored += 1,
            Disposition::NewCall | Disposition::Applied => {}
        }
    }

    /// The application's decision for call `id` (see [`Call::decide`]).
    pub fn decide(
        &mut self,
        now: Instant,
        id: &CallId,
        decision: Decision,
    ) -> Result<(), CallError> {
        let call = self
            .calls
            .get_mut(id)
            .ok_or_else(|| CallError::UnknownCall(id.clone()))?;
        let result = call.decide(now, decision);
        self.ready.push_back(id.clone());
        result
    }

    /// Hangs up call `id` (see [`Call::hang_up`]).
    pub fn hang_up(&mut self, now: Instant, id: &CallId) -> Result<(), CallError> {
        let call = self
            .calls
            .get_mut(id)
            .ok_or_else(|| CallError::UnknownCall(id.clone()))?;
        let result = call.hang_up(now);
        self.ready.push_back(id.clone());
        result
    }

    /// The result of a command (see [`Call::handle_api_outcome`]); outcomes for removed calls
    /// are ignored.
    pub fn handle_api_outcome(&mut self, now: Instant, request: &RequestId, outcome: ApiOutcome) {
        if let Some(call) = self.calls.get_mut(&request.call_id) {
            call.handle_api_outcome(now, request, outcome);
            self.ready.push_back(request.call_id.clone());
        }
    }

    /// Runs every call's due timers and removes calls whose grace period is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut gone = Vec::new();
        for (id, call) in &mut self.calls {
            if call.poll_timeout().is_some_and(|t| t <= now) {
                call.handle_timeout(now);
                self.ready.push_back(id.clone());
            }
            if call.is_removable(now) {
                gone.push(id.clone());
            }
        }
        for id in gone {
            if let Some(mut call) = self.calls.remove(&id) {
                // Whatever the call still had queued goes out before its removal.
                while let Some(out) = call.poll_output() {
                    self.removed.push_back(out);
                }
                self.stats.removed += 1;
                self.removed
                    .push_back(CallOutput::Event(CallEvent::Removed { call_id: id }));
            }
        }
    }

    /// The earliest instant any call has work. Changes after any input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls.values().filter_map(Call::poll_timeout).min()
    }

    /// The next output of any call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<CallOutput> {
        while let Some(id) = self.ready.front() {
            if let Some(out) = self.calls.get_mut(id).and_then(Call::poll_output) {
                return Some(out);
            }
            self.ready.pop_front();
        }
        self.removed.pop_front()
    }

    /// A call by id.
    pub fn get(&self, id: &CallId) -> Option<&Call> {
        self.calls.get(id)
    }

    /// All calls in the table.
    pub fn iter(&self) -> impl Iterator<Item = &Call> {
        self.calls.values()
    }

    /// Number of calls in the table.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> CallsStats {
        self.stats
    }
}
