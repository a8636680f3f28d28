//! `CallRecords`: the shared, read-mostly store of [`CallRecord`] snapshots that the call driver
//! writes and the status endpoint, reports and tests read. Records outlive the calls table's
//! cleanup; the oldest are evicted past a cap.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::call::{CallId, CallRecord};

/// Shared store of call snapshots (cheap to clone).
#[derive(Clone, Debug)]
pub struct CallRecords {
    inner: Arc<Mutex<Inner>>,
    cap: usize,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<CallId, CallRecord>,
    order: VecDeque<CallId>,
}

impl CallRecords {
    /// A store keeping at most `cap` calls.
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            cap: cap.max(1),
        }
    }

    /// Inserts or replaces a call's snapshot.
    pub fn put(&self, record: CallRecord) {
        let mut inner = self.lock();
        if !inner.by_id.contains_key(&record.call_id) {
            inner.order.push_back(record.call_id.clone());
            while inner.order.len() > self.cap {
                if let Some(old) = inner.order.pop_front() {
                    inner.by_id.remove(&old);
                }
            }
        }
        inner.by_id.insert(record.call_id.clone(), record);
    }

    /// One call's snapshot.
    pub fn get(&self, id: &CallId) -> Option<CallRecord> {
        self.lock().by_id.get(id).cloned()
    }

    /// All snapshots, oldest call first.
    pub fn all(&self) -> Vec<CallRecord> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .filter_map(|id| inner.by_id.get(id).cloned())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
