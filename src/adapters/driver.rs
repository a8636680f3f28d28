//! The call driver: one tokio task that owns the calls table and runs it against real time.
//!
//! It `select!`s over the webhook inbox, application decisions, completed Graph requests and
//! the earliest `poll_timeout`; reads the clock once per event; feeds the event to
//! [`Calls`]; then drains `poll_output`: each [`ApiCommand`](crate::call::ApiCommand) is executed on its own task by the
//! [`GraphApi`] (its outcome comes back as an event), each [`CallEvent`] updates the call's
//! [`CallRecord`], goes to the application's `on_event`, and is broadcast to subscribers.
//! The application's decision future is polled once in the driver's turn: a decision that is
//! ready at once is applied there (no task, no channel hop before the answer request goes
//! out); a pending one runs on its own task and comes back over a channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::call::wire::CallState;
use crate::call::{
    ApiOutcome, CallError, CallEvent, CallId, CallOutput, CallRecord, Calls, CallsStats, Decision,
    Disposition, IncomingCall, RequestId, is_policy_recording,
};
use crate::graph::{ChangeType, CommsNotification, CommsNotifications, ResourceKind};

use super::call_handler::CallHandler;
use super::call_records::CallRecords;
use super::clock;
use super::graph_client::GraphApi;

/// What the driver's inbox carries.
#[derive(Debug)]
pub enum DriverInput {
    /// A verified notification batch.
    Notifications {
        /// When the webhook received it (the incoming call's deadline counts from here).
        received: Instant,
        /// The token's `tid`.
        tenant: Option<String>,
        /// The notifications.
        batch: CommsNotifications,
    },
    /// Hang up an answered call.
    HangUp {
        /// The call.
        call_id: CallId,
        /// The result.
        reply: oneshot::Sender<Result<(), CallError>>,
    },
}

/// A call event with the instant the driver produced it.
#[derive(Clone, Debug, PartialEq)]
pub struct BotEvent {
    /// When.
    pub at: Instant,
    /// What.
    pub event: CallEvent,
}

/// Driver counters.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct DriverStats {
    /// The calls table's counters.
    pub calls: CallsStats,
    /// Application decisions that came after the call was decided (or ended): not sent.
    pub late_decisions: u64,
    /// Graph requests started.
    pub requests: u64,
}

/// The driver task's state. Build with [`CallDriver::new`], run with [`CallDriver::run`].
#[derive(Debug)]
pub struct CallDriver {
    calls: Calls,
    graph: Arc<dyn GraphApi>,
    handler: Arc<dyn CallHandler>,
    inbox: mpsc::Receiver<DriverInput>,
    decisions_tx: mpsc::UnboundedSender<(CallId, Decision)>,
    decisions_rx: mpsc::UnboundedReceiver<(CallId, Decision)>,
    done_tx: mpsc::UnboundedSender<(RequestId, ApiOutcome)>,
    done_rx: mpsc::UnboundedReceiver<(RequestId, ApiOutcome)>,
    records: CallRecords,
    events: broadcast::Sender<BotEvent>,
    stats: Arc<Mutex<DriverStats>>,
    /// Each call's tenant: the incoming notification token's `tid`, else the call
    /// resource's `tenantId`. Graph commands for the call use a token of this tenant.
    tenants: HashMap<CallId, String>,
}

impl CallDriver {
    /// A driver over `calls`.
    pub fn new(
        calls: Calls,
        graph: Arc<dyn GraphApi>,
        handler: Arc<dyn CallHandler>,
        inbox: mpsc::Receiver<DriverInput>,
        records: CallRecords,
        events: broadcast::Sender<BotEvent>,
        stats: Arc<Mutex<DriverStats>>,
    ) -> Self {
        let (decisions_tx, decisions_rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            calls,
            graph,
            handler,
            inbox,
            decisions_tx,
            decisions_rx,
            done_tx,
            done_rx,
            records,
            events,
            stats,
            tenants: HashMap::new(),
        }
    }

    /// Runs until the inbox closes (every sender dropped).
    pub async fn run(mut self) {
        loop {
            let timeout = self.calls.poll_timeout();
            tokio::select! {
                input = self.inbox.recv() => match input {
                    Some(input) => self.on_input(input),
                    None => break,
                },
                Some((id, decision)) = self.decisions_rx.recv() => self.apply_decision(&id, decision),
                Some((request, outcome)) = self.done_rx.recv() => {
                    if let Err(error) = &outcome {
                        tracing::info!(call_id = %request.call_id, seq = request.seq, %error, "graph request failed");
                    }
                    self.calls.handle_api_outcome(clock::now(), &request, outcome);
                    // A scheduled retry emits no event: refresh the snapshot here.
                    self.snapshot(&request.call_id);
                }
                () = sleep_until_opt(timeout) => self.calls.handle_timeout(clock::now()),
            }
            self.drain();
        }
    }

    fn on_input(&mut self, input: DriverInput) {
        match input {
            DriverInput::Notifications {
                received,
                tenant,
                batch,
            } => self.on_notifications(received, tenant.as_deref(), batch),
            DriverInput::HangUp { call_id, reply } => {
                let result = self.calls.hang_up(clock::now(), &call_id);
                let _ = reply.send(result);
            }
        }
    }

    fn on_notifications(
        &mut self,
        received: Instant,
        tenant: Option<&str>,
        batch: CommsNotifications,
    ) {
        let now = clock::now();
        for n in batch.value {
            if let Some(id) = self.route(now, received, tenant, n) {
                // Keeps the snapshot current even when nothing was emitted (e.g. the
                // resultInfo of a call that had already failed).
                self.snapshot(&id);
            }
        }
    }

    /// Feeds one notification to the calls table; returns the call it was about.
    fn route(
        &mut self,
        now: Instant,
        received: Instant,
        tenant: Option<&str>,
        n: CommsNotification,
    ) -> Option<CallId> {
        let Some(id) = n.call_id() else {
            self.calls.count(Disposition::Ignored);
            return None;
        };
        if !matches!(n.resource_kind(), Some(ResourceKind::Call) | None) {
            // Rosters, operations, content sharing: not the call core's business yet.
            self.calls.count(Disposition::Ignored);
            return None;
        }
        let deleted = n.change_type == Some(ChangeType::Deleted);
        let created = n.change_type == Some(ChangeType::Created);
        let call = match n.parse_call() {
            Ok(Some(call)) => call,
            _ if deleted => {
                self.calls
                    .handle_state(now, &id, CallState::Terminated, None);
                return Some(id);
            }
            _ => {
                self.calls.count(Disposition::Ignored);
                return None;
            }
        };
        let is_incoming = match &call.state {
            Some(state) => *state == CallState::Incoming,
            None => created,
        };
        match call.state.clone() {
            _ if is_incoming => {
                let pbr = is_policy_recording(&call);
                if self.calls.handle_incoming(received, id.clone(), pbr) == Disposition::NewCall {
                    let tenant = tenant
                        .or(call.tenant_id.as_deref())
                        .filter(|t| !t.is_empty());
                    if let Some(t) = tenant {
                        self.tenants.insert(id.clone(), t.to_owned());
                    }
                    self.ask_application(id.clone(), call, received);
                }
            }
            Some(state) => {
                let result_info = call.result_info.clone();
                self.calls.handle_state(now, &id, state, result_info);
            }
            None if deleted => {
                let result_info = call.result_info.clone();
                self.calls
                    .handle_state(now, &id, CallState::Terminated, result_info);
            }
            None => self.calls.count(Disposition::Ignored),
        }
        Some(id)
    }

    fn ask_application(&mut self, id: CallId, call: crate::graph::Call, received: Instant) {
        let mut incoming = IncomingCall::from_graph(id.clone(), call, received);
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        incoming.deadline = c.deadline();
        incoming.decide_by = c.decide_by();
        let give_up = c.deadline() + Duration::from_secs(1);
        let mut future = self.handler.on_incoming(incoming);
        // An application that decides at once (a ready future, like the demo handler's) has
        // its decision applied in this turn: no task and no channel hop before the answer
        // request is issued. A pending future is polled again, with its task's waker, below.
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(decision) = future.as_mut().poll(&mut cx) {
            self.apply_decision(&id, decision);
            return;
        }
        let tx = self.decisions_tx.clone();
        tokio::spawn(async move {
            // A handler that never decides is dropped after the deadline.
            let at = tokio::time::Instant::from_std(give_up);
            if let Ok(decision) = tokio::time::timeout_at(at, future).await {
                let _ = tx.send((id, decision));
            }
        });
    }

    fn apply_decision(&mut self, id: &CallId, decision: Decision) {
        if let Err(error) = self.calls.decide(clock::now(), id, decision) {
            tracing::warn!(call_id = %id, %error, "application decision not sent");
            self.with_stats(|s| s.late_decisions += 1);
        }
    }

    fn drain(&mut self) {
        while let Some(output) = self.calls.poll_output() {
            match output {
                CallOutput::Api(command) => {
                    self.snapshot(command.call_id());
                    tracing::debug!(call_id = %command.call_id(), op = command.name(), "graph request");
                    self.with_stats(|s| s.requests += 1);
                    let graph = Arc::clone(&self.graph);
                    let tx = self.done_tx.clone();
                    let request = command.request().clone();
                    let tenant = self.tenants.get(command.call_id()).map(String::as_str);
                    let future = graph.execute_for(tenant, command);
                    tokio::spawn(async move {
                        let outcome = future.await;
                        let _ = tx.send((request, outcome));
                    });
                }
                CallOutput::Event(event) => self.on_event(event),
            }
        }
        let table = self.calls.stats();
        self.with_stats(|s| s.calls = table);
    }

    fn snapshot(&self, id: &CallId) {
        if let Some(call) = self.calls.get(id) {
            self.records.put(CallRecord::of(call));
        }
    }

    fn on_event(&mut self, event: CallEvent) {
        self.snapshot(event.call_id());
        if let CallEvent::Removed { call_id } = &event {
            self.tenants.remove(call_id);
        }
        match &event {
            CallEvent::Failed { call_id, failure } => {
                tracing::error!(%call_id, %failure, "call marked failed");
            }
            CallEvent::HangUpFailed { call_id, error } => {
                tracing::warn!(%call_id, %error, "hang-up failed");
            }
            other => tracing::debug!(?other, "call event"),
        }
        self.handler.on_event(&event);
        let _ = self.events.send(BotEvent {
            at: clock::now(),
            event,
        });
    }

    fn with_stats(&self, f: impl FnOnce(&mut DriverStats)) {
        // Plain counters: a poisoned lock still holds usable numbers.
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s);
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => clock::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
