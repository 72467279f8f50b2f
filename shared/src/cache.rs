//! A small in-memory cache with a time-to-live, for data read on nearly
//! every request but changed rarely (smart-link definitions).
//!
//! It lives as long as the wasm instance. A Workers isolate serves many
//! requests, so a hit there skips KV entirely; Spin starts a fresh instance
//! per request, where the cache is simply always empty. Wasm is
//! single-threaded, hence `RefCell` and no locks.
//!
//! A plain vector searched front to back: for the few hundred entries an
//! isolate holds that is as fast as hashing, and it costs a fraction of a
//! `HashMap`'s wasm (~2 KB gzip less on the smart-link redirect).
//!
//! The clock is passed in (the caller's `Env::now_ms`) so tests can move
//! time. A clock that goes backwards counts as expiry: serving data of
//! unknown age would break the staleness bound callers rely on.

use std::cell::{Cell, OnceCell, RefCell};

use crate::Env;

/// How long an instance keeps a capture page or a smart link, unless the
/// `instance_cache_seconds` setting says otherwise.
pub const DEFAULT_INSTANCE_SECONDS: i64 = 30;
/// The most the setting may ask: what an edit or a deletion may wait for.
pub const MAX_INSTANCE_SECONDS: i64 = 300;

thread_local! {
    static INSTANCE_TTL_MS: OnceCell<i64> = const { OnceCell::new() };
}

/// How long the instance caches keep an entry (capture pages in signup,
/// link definitions in links): the `instance_cache_seconds` setting, 0 to
/// 300 (default 30). Read once per instance, so the hot paths pay nothing
/// for it; a value out of range or unreadable is the default. Edits and
/// deletions reach every fan within this time on Workers; the dashboard
/// says so with the same number.
pub fn instance_ttl_ms(env: &impl Env) -> i64 {
    INSTANCE_TTL_MS.with(|ttl| {
        *ttl.get_or_init(|| {
            let secs = env.var("instance_cache_seconds").and_then(|v| v.trim().parse::<i64>().ok());
            secs.filter(|s| (0..=MAX_INSTANCE_SECONDS).contains(s)).unwrap_or(DEFAULT_INSTANCE_SECONDS) * 1000
        })
    })
}

pub struct TtlCache<V> {
    ttl_ms: Cell<i64>,
    capacity: usize,
    entries: RefCell<Vec<(Box<str>, i64, V)>>,
}

impl<V: Clone> TtlCache<V> {
    /// Entries live `ttl_ms`; at most `capacity` are kept.
    pub const fn new(ttl_ms: i64, capacity: usize) -> Self {
        TtlCache { ttl_ms: Cell::new(ttl_ms), capacity: if capacity == 0 { 1 } else { capacity }, entries: RefCell::new(Vec::new()) }
    }

    /// A new time to live, for entries old and new (a setting read once
    /// the instance has its environment: see [`instance_ttl_ms`]).
    pub fn set_ttl_ms(&self, ttl_ms: i64) {
        self.ttl_ms.set(ttl_ms);
    }

    /// The value stored under `key`, if it is younger than the TTL.
    pub fn get(&self, key: &str, now_ms: i64) -> Option<V> {
        let entries = self.entries.borrow();
        let (_, at, value) = entries.iter().find(|(k, _, _)| &**k == key)?;
        self.fresh(*at, now_ms).then(|| value.clone())
    }

    /// Stores `value` as of `now_ms`. When full, expired entries go first,
    /// then the oldest one.
    pub fn insert(&self, key: &str, value: V, now_ms: i64) {
        let mut entries = self.entries.borrow_mut();
        if let Some(e) = entries.iter_mut().find(|(k, _, _)| &**k == key) {
            e.1 = now_ms;
            e.2 = value;
            return;
        }
        if entries.len() >= self.capacity {
            entries.retain(|(_, at, _)| self.fresh(*at, now_ms));
        }
        if entries.len() >= self.capacity {
            let oldest = entries.iter().enumerate().min_by_key(|(_, (_, at, _))| *at).map_or(0, |(i, _)| i);
            entries.swap_remove(oldest);
        }
        entries.push((key.into(), now_ms, value));
    }

    pub fn remove(&self, key: &str) {
        self.entries.borrow_mut().retain(|(k, _, _)| &**k != key);
    }

    pub fn clear(&self) {
        self.entries.borrow_mut().clear();
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fresh(&self, at: i64, now_ms: i64) -> bool {
        (0..self.ttl_ms.get()).contains(&(now_ms - at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl() {
        let c = TtlCache::new(30_000, 8);
        c.insert("a", 1, 1_000);
        for (now, expected) in [(1_000, Some(1)), (30_999, Some(1)), (31_000, None), (999, None)] {
            assert_eq!(c.get("a", now), expected, "at {now}");
        }
        assert_eq!(c.get("b", 1_000), None);
        c.insert("a", 2, 40_000);
        assert_eq!(c.get("a", 40_001), Some(2), "re-insert refreshes");
        assert_eq!(c.len(), 1);
        c.remove("a");
        assert_eq!(c.get("a", 40_001), None);
        assert!(c.is_empty());
    }

    #[test]
    fn stays_within_capacity() {
        let c = TtlCache::new(1_000, 3);
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            c.insert(k, i, i as i64);
        }
        c.insert("c", 9, 10);
        assert_eq!(c.len(), 3, "replacing a key is not growth");
        c.insert("d", 3, 500);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("a", 500), None, "nothing expired: the oldest went");
        assert_eq!((c.get("b", 500), c.get("c", 500), c.get("d", 500)), (Some(1), Some(9), Some(3)));
        c.insert("e", 4, 1_200);
        assert_eq!(c.len(), 2, "expired entries went first");
        assert_eq!((c.get("d", 1_200), c.get("e", 1_200)), (Some(3), Some(4)));
    }

    #[cfg(feature = "native")]
    #[test]
    fn instance_cache_seconds_setting() {
        let cases =
            [(None, 30_000), (Some("2"), 2_000), (Some(" 0 "), 0), (Some("300"), 300_000), (Some("301"), 30_000), (Some("-1"), 30_000), (Some("soon"), 30_000)];
        for (value, expected) in cases {
            // Read once per instance: each case on a thread of its own, as
            // each instance is.
            let got = std::thread::spawn(move || {
                let mut env = crate::adapters::native::NativeEnv::memory().expect("env");
                if let Some(v) = value {
                    env.set_var("instance_cache_seconds", v);
                }
                let first = instance_ttl_ms(&env);
                env.set_var("instance_cache_seconds", "7");
                (first, instance_ttl_ms(&env))
            })
            .join()
            .expect("thread");
            assert_eq!(got, (expected, expected), "{value:?}: read once, then kept");
        }
    }

    #[test]
    fn a_new_ttl_applies_to_entries_already_held() {
        let c = TtlCache::new(30_000, 8);
        c.insert("a", 1, 0);
        c.set_ttl_ms(2_000);
        assert_eq!((c.get("a", 1_999), c.get("a", 2_000)), (Some(1), None));
        c.set_ttl_ms(0);
        c.insert("b", 2, 5_000);
        assert_eq!(c.get("b", 5_000), None, "0 keeps nothing");
    }
}
