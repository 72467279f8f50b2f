//! Fixed-window rate limits kept in the key-value store with a TTL.
//!
//! KV has no atomic increment (and Workers KV is eventually consistent), so
//! counts are approximate under bursts: good enough to stop form abuse,
//! never used for anything that must add up exactly.

use crate::{Env, Error, ErrorKind, Kv};

/// `limit` events per `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub limit: u32,
    pub window_secs: u32,
}

impl Limit {
    /// Reads `"<limit>/<window_secs>"` from setting `name`, else `default`.
    /// A malformed setting falls back to the default rather than disabling
    /// the limit.
    pub fn from_env(env: &impl Env, name: &str, default: Limit) -> Limit {
        env.var(name).and_then(|v| Limit::parse(&v)).unwrap_or(default)
    }

    pub fn parse(s: &str) -> Option<Limit> {
        let (l, w) = s.trim().split_once('/')?;
        let limit = l.trim().parse().ok()?;
        let window_secs: u32 = w.trim().parse().ok()?;
        (window_secs > 0).then_some(Limit { limit, window_secs })
    }
}

/// Counts one event for `key` (already hashed or otherwise non-personal)
/// and fails with 429 once the window's limit is reached.
pub async fn hit(env: &impl Env, key: &str, limit: Limit) -> Result<(), Error> {
    let now = env.now_ms() / 1000;
    let window = limit.window_secs as i64;
    let slot = now / window;
    let kv_key = format!("rl:{key}:{slot}");
    let count = match env.kv().get(&kv_key).await? {
        Some(v) => std::str::from_utf8(&v).ok().and_then(|s| s.parse::<u32>().ok()).unwrap_or(0),
        None => 0,
    };
    let retry_after = ((slot + 1) * window - now).max(1) as u32;
    if count >= limit.limit {
        return Err(Error::new(
            ErrorKind::RateLimited { retry_after },
            "Too many sign-ups from here. Please wait a few minutes and try again.",
        ));
    }
    // Workers KV's minimum TTL is 60 s; keep the key until its window ends.
    let ttl = retry_after.max(60);
    env.kv().put(&kv_key, (count + 1).to_string().as_bytes(), Some(ttl)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_limits() {
        assert_eq!(Limit::parse("10/600"), Some(Limit { limit: 10, window_secs: 600 }));
        assert_eq!(Limit::parse(" 3 / 60 "), Some(Limit { limit: 3, window_secs: 60 }));
        for bad in ["", "10", "10/0", "x/60", "10/-1"] {
            assert_eq!(Limit::parse(bad), None, "{bad:?}");
        }
    }
}
