//! Fixed-window rate limits counted exactly in the database.
//!
//! Decision: a counter row per key and window that carries its limit, and
//! a CHECK (`count <= lim`, schema 0008) that fails the upsert which would
//! pass it. The refusal is the database's, so it holds under any burst
//! (of 50 parallel requests exactly `limit` pass), and because a failed
//! statement aborts the batch around it, a caller can put its counters in
//! the same atomic batch as the write they guard ([`Window::stmt_pair`]): one
//! round trip, and a refused request leaves nothing behind. KV was tried
//! first and failed under a burst (no atomic increment; Workers KV takes
//! one write per second per key); Workers' rate-limiting binding is per
//! location and approximate by design, and Spin has none.

use crate::sql::{OwnedParam, OwnedStmt, Param, Stmt};
use crate::{Db, Env, Error, ErrorKind};

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

/// Counts one hit; fails (the CHECK) when the window is full. Bind with
/// [`Window::params`].
const COUNT: &str = "INSERT INTO rate_windows (key, slot, count, lim, expires_at) VALUES (?1, ?2, 1, ?3, ?4) \
     ON CONFLICT (key, slot) DO UPDATE SET count = count + 1, lim = excluded.lim";

/// [`COUNT`] for two windows in one statement (a refusal by either
/// fails both). Bind with [`Window::params_pair`].
const COUNT_PAIR: &str = "INSERT INTO rate_windows (key, slot, count, lim, expires_at) VALUES (?1, ?2, 1, ?3, ?4), (?5, ?6, 1, ?7, ?8) \
     ON CONFLICT (key, slot) DO UPDATE SET count = count + 1, lim = excluded.lim";

/// The current window of one key.
#[derive(Debug, Clone)]
pub struct Window {
    key: String,
    slot: i64,
    /// When the window ends, ms since the epoch.
    ends: i64,
    limit: Limit,
    now_ms: i64,
    message: &'static str,
}

impl Window {
    /// `message` is what a refused client is told.
    pub fn new(key: String, limit: Limit, now_ms: i64, message: &'static str) -> Window {
        let window = i64::from(limit.window_secs);
        let slot = now_ms / 1000 / window;
        Window { key, slot, ends: (slot + 1) * window * 1000, limit, now_ms, message }
    }

    pub fn params(&self) -> [Param<'_>; 4] {
        [Param::Text(&self.key), Param::Int(self.slot), Param::Int(i64::from(self.limit.limit)), Param::Int(self.ends)]
    }

    /// Two windows' parameters, for [`Window::stmt_pair`].
    pub fn params_pair<'a>(a: &'a Window, b: &'a Window) -> [Param<'a>; 8] {
        let ([a1, a2, a3, a4], [b1, b2, b3, b4]) = (a.params(), b.params());
        [a1, a2, a3, a4, b1, b2, b3, b4]
    }

    /// One statement counting two windows, for a caller's own batch (see
    /// the module doc).
    pub fn stmt_pair<'a>(params: &'a [Param<'a>; 8]) -> Stmt<'a> {
        Stmt::new(COUNT_PAIR, params)
    }

    /// The 429 for this window, with the seconds until it ends.
    pub fn refused(&self) -> Error {
        Error::new(ErrorKind::RateLimited { retry_after: ((self.ends - self.now_ms) / 1000).max(1) as u32 }, self.message)
    }
}

/// Whether a failed statement or batch was refused by a window's CHECK.
/// Adapters keep the engine's message, which names the constraint.
pub fn is_refusal(e: &Error) -> bool {
    e.kind == ErrorKind::Unavailable && e.message.contains("CHECK constraint failed: rate_limited")
}

/// After a batch holding `windows` was refused: the 429 of the first full
/// one (a read, on the refusal path only).
pub async fn refusal(env: &impl Env, windows: &[&Window]) -> Error {
    for w in windows {
        if w.limit.limit == 0 {
            return w.refused();
        }
        let full = env.db().query("SELECT 1 FROM rate_windows WHERE key = ?1 AND slot = ?2 AND count >= lim", &[Param::Text(&w.key), Param::Int(w.slot)]).await;
        if matches!(full, Ok(rows) if !rows.is_empty()) {
            return w.refused();
        }
    }
    // The window filled and was read back after it ended: say the first.
    windows.first().map_or_else(|| Error::internal("rate limit refusal without a window"), |w| w.refused())
}

/// Counts one event for `key` and fails with 429 (saying `message`) once
/// the window's limit is reached. One statement, atomic in the database:
/// of any number of parallel requests exactly `limit` pass per window.
pub async fn hit(env: &impl Env, key: &str, limit: Limit, message: &'static str) -> Result<(), Error> {
    let w = Window::new(key.to_owned(), limit, env.now_ms(), message);
    match env.db().query(COUNT, &w.params()).await {
        Err(e) if is_refusal(&e) => return Err(w.refused()),
        r => r?,
    };
    sweep(env);
    Ok(())
}

/// About one call in 64 deletes the windows that have ended, after the
/// response. Call it after a counted hit.
pub fn sweep(env: &impl Env) {
    let mut b = [0u8; 1];
    if env.random(&mut b).is_ok() && b[0] < 4 {
        let mut once = Some(env.now_ms());
        env.defer_writes(move || {
            once.take()
                .map(|now| OwnedStmt { sql: "DELETE FROM rate_windows WHERE expires_at < ?1".into(), params: vec![OwnedParam::Int(now)] })
                .into_iter()
                .collect()
        });
    }
}

/// A client's rate-limit key: a keyed hash (the raw address never reaches
/// storage) of its IPv4 address or its IPv6 /64 (one host commonly holds a
/// whole /64 and rotates through it). Requests without an address share
/// one bucket rather than escaping the limit.
pub fn client_key(keys: &crate::crypto::Keys, purpose: &str, client: &crate::Client) -> String {
    let bytes: Vec<u8> = match client.ip.map(crate::geo::canonical_ip) {
        Some(std::net::IpAddr::V4(v4)) => v4.octets().to_vec(),
        Some(std::net::IpAddr::V6(v6)) => v6.octets()[..8].to_vec(),
        None => b"no-address".to_vec(),
    };
    let digest = keys.client_mac(&[purpose.as_bytes(), &bytes]);
    format!("{purpose}:{}", crate::crypto::hex(&digest[..12]))
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
