//! `Calls`: the calls table keyed by call id (the quinn `Endpoint` role).
//!
//! It routes inputs to the right [`Call`], recognises duplicated incoming notifications,
//! counts and ignores updates for calls it does not know, tolerates reordered state
//! notifications, and removes terminated calls after a grace period. Same drain rule as
//! [`Call`]: after any input, drain [`Calls::poll_output`] to `None` and re-read
//! [`Calls::poll_timeout`].
//!
//! Timers are kept in a deadline index (each call's earliest [`Call::poll_timeout`], ordered
//! by instant then id), re-read after every input that reaches a call, so
//! [`Calls::poll_timeout`] is O(1) and [`Calls::handle_timeout`] touches only the calls that
//! are due: O(k log n) for k due calls among n, however many calls are up.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::api::{ApiOutcome, RequestId};
use super::config::CallConfig;
use super::deadline_index::DeadlineIndex;
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
    /// Each call's earliest timer.
    deadlines: DeadlineIndex<CallId>,
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
            deadlines: DeadlineIndex::new(),
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
        self.reindex(&id);
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
        self.reindex(id);
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
        self.reindex(id);
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
        self.reindex(id);
        self.ready.push_back(id.clone());
        result
    }

    /// The result of a command (see [`Call::handle_api_outcome`]); outcomes for removed calls
    /// are ignored.
    pub fn handle_api_outcome(&mut self, now: Instant, request: &RequestId, outcome: ApiOutcome) {
        if let Some(call) = self.calls.get_mut(&request.call_id) {
            call.handle_api_outcome(now, request, outcome);
            self.reindex(&request.call_id);
            self.ready.push_back(request.call_id.clone());
        }
    }

    /// Runs the due timers of every call whose earliest timer is at or before `now`, and
    /// removes calls whose grace period is over. Only due calls are visited.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(id) = self.deadlines.pop_due(now) {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            if call.poll_timeout().is_some_and(|t| t <= now) {
                call.handle_timeout(now);
                self.ready.push_back(id.clone());
            }
            if call.is_removable(now) {
                self.remove(id);
            } else {
                self.reindex(&id);
            }
        }
    }

    /// The earliest instant any call has work. Changes after any input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first()
    }

    /// The next output of any call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<CallOutput> {
        while let Some(id) = self.ready.front() {
            if let Some(out) = self.calls.get_mut(id).and_then(Call::poll_output) {
                // Emitting a command can start a timer (the in-flight grace).
                let id = id.clone();
                self.reindex(&id);
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

    /// Re-reads call `id`'s earliest timer into the deadline index.
    fn reindex(&mut self, id: &CallId) {
        let next = self.calls.get(id).and_then(Call::poll_timeout);
        self.deadlines.set(id, next);
    }

    /// Takes call `id` out of the table; whatever it still had queued goes out before the
    /// `Removed` event.
    fn remove(&mut self, id: CallId) {
        self.deadlines.remove(&id);
        if let Some(mut call) = self.calls.remove(&id) {
            while let Some(out) = call.poll_output() {
                self.removed.push_back(out);
            }
            self.stats.removed += 1;
            self.removed
                .push_back(CallOutput::Event(CallEvent::Removed { call_id: id }));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::call::CallPhase;

    fn id(i: usize) -> CallId {
        CallId::new(format!("call-{i:05}"))
    }

    fn drain(calls: &mut Calls) -> Vec<CallOutput> {
        std::iter::from_fn(|| calls.poll_output()).collect()
    }

    #[test]
    fn handle_timeout_decides_exactly_the_due_calls_among_many() {
        const N: usize = 10_000;
        let mut calls = Calls::new(CallConfig::default());
        let t0 = Instant::now();
        let ms = |i: usize| Duration::from_millis(u64::try_from(i).unwrap());
        for i in 0..N {
            assert_eq!(
                calls.handle_incoming(t0 + ms(i), id(i), false),
                Disposition::NewCall
            );
        }
        drain(&mut calls);
        let first = calls.get(&id(0)).unwrap().decide_by();
        assert_eq!(calls.poll_timeout(), Some(first));
        // Calls 0..=99 reach their decide-by; nobody else does.
        let now = calls.get(&id(99)).unwrap().decide_by();
        calls.handle_timeout(now);
        let out = drain(&mut calls);
        let commands = out
            .iter()
            .filter(|o| matches!(o, CallOutput::Api(_)))
            .count();
        assert_eq!(commands, 100);
        for i in 0..N {
            let phase = calls.get(&id(i)).unwrap().phase();
            if i < 100 {
                assert_ne!(phase, CallPhase::Incoming, "call {i}");
            } else {
                assert_eq!(phase, CallPhase::Incoming, "call {i}");
            }
        }
        // The earliest timer is now the first undecided call's, or an in-flight decision's
        // grace, whichever comes first; never one of the decided calls' old decide-by.
        let next = calls.poll_timeout().unwrap();
        assert!(next > now);
        assert!(next <= calls.get(&id(100)).unwrap().decide_by());
    }

    #[test]
    fn terminated_calls_leave_the_table_and_the_index() {
        let mut calls = Calls::new(CallConfig::default());
        let t0 = Instant::now();
        for i in 0..3 {
            calls.handle_incoming(t0, id(i), false);
        }
        drain(&mut calls);
        calls.handle_state(t0, &id(1), CallState::Terminated, None);
        drain(&mut calls);
        // Run every timer until nothing is left of call 1.
        while calls.get(&id(1)).is_some() {
            let now = calls
                .poll_timeout()
                .expect("call 1 still has its cleanup timer");
            calls.handle_timeout(now);
            drain(&mut calls);
        }
        assert_eq!(calls.stats().removed, 1);
        assert_eq!(calls.len(), 2);
        assert!(!calls.deadlines.contains(&id(1)));
        assert_eq!(calls.deadlines.len(), 2);
    }
}
