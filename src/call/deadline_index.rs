//! Many keys' earliest deadlines in time order, so a table of timers visits only the due keys
//! (`O(log n)` per change) instead of scanning every entry. Sans-IO: time is a parameter.
//!
//! Used by the bot's calls table ([`super::Calls`]) and the emulator's model.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Each key's earliest deadline: `(at, key)` is in time order exactly when `key` maps to `at`.
#[derive(Debug)]
pub struct DeadlineIndex<K> {
    by_time: BTreeSet<(Instant, K)>,
    by_key: HashMap<K, Instant>,
}

impl<K> Default for DeadlineIndex<K> {
    fn default() -> Self {
        Self {
            by_time: BTreeSet::new(),
            by_key: HashMap::new(),
        }
    }
}

impl<K: Ord + Hash + Clone> DeadlineIndex<K> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`'s deadline to `at` (`None` takes it out of the index).
    pub fn set<Q>(&mut self, key: &Q, at: Option<Instant>)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let old = self.by_key.get(key).copied();
        if old == at {
            return;
        }
        if let Some(old) = old {
            self.by_time.remove(&(old, key.to_owned()));
        }
        match at {
            Some(at) => {
                self.by_time.insert((at, key.to_owned()));
                self.by_key.insert(key.to_owned(), at);
            }
            None => {
                self.by_key.remove(key);
            }
        }
    }

    /// Takes `key` out of the index.
    pub fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.set(key, None);
    }

    /// The earliest deadline of any key.
    pub fn first(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Takes the key with the earliest deadline out of the index if that deadline is at or
    /// before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        if self.first()? > now {
            return None;
        }
        let (_, key) = self.by_time.pop_first()?;
        self.by_key.remove(&key);
        Some(key)
    }

    /// Whether `key` has a deadline in the index.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.by_key.contains_key(key)
    }

    /// Keys with a deadline.
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.by_time.len(), self.by_key.len());
        self.by_key.len()
    }

    /// True when no key has a deadline.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn pops_due_keys_in_deadline_order_and_follows_changes() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut index = DeadlineIndex::<String>::new();
        index.set("a", Some(ms(30)));
        index.set("b", Some(ms(10)));
        index.set("c", Some(ms(20)));
        index.set("c", Some(ms(40))); // moved later
        index.remove("a");
        assert_eq!(index.len(), 2);
        assert_eq!(index.first(), Some(ms(10)));
        assert_eq!(index.pop_due(ms(5)), None);
        assert_eq!(index.pop_due(ms(50)).as_deref(), Some("b"));
        assert_eq!(index.pop_due(ms(50)).as_deref(), Some("c"));
        assert_eq!(index.pop_due(ms(50)), None);
        assert!(index.is_empty() && !index.contains("c"));
    }
}
