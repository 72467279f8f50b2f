//! Fixed-window rate limits counted exactly in the database.
//!
//! Decision: a counter row per key and window, updated by one guarded
//! upsert. KV was tried first and failed under a burst (no atomic
//! increment; Workers KV takes one write per second per key, so a busy
//! page's counter could never trip). Workers' rate-limiting binding is
//! per location and approximate by design, and Spin has none, so the
//! database, the one engine both runtimes share with exact semantics,
//! holds them. Cost: one short write per signup.

use crate::sql::Param;
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

/// Counts one event for `key` and fails with 429 (saying `message`) once
/// the window's limit is reached. One statement, atomic in the database:
/// of any number of parallel requests exactly `limit` pass per window.
pub async fn hit(env: &impl Env, key: &str, limit: Limit, message: &'static str) -> Result<(), Error> {
    let now_ms = env.now_ms();
    let window = i64::from(limit.window_secs);
    let slot = now_ms / 1000 / window;
    let ends = (slot + 1) * window * 1000;
    let refused = || Error::new(ErrorKind::RateLimited { retry_after: ((ends - now_ms) / 1000).max(1) as u32 }, message);
    if limit.limit == 0 {
        return Err(refused());
    }
    // A refused request changes nothing: the update's guard fails and
    // RETURNING yields no row.
    let rows = env
        .db()
        .query(
            "INSERT INTO rate_limits (key, slot, count, expires_at) VALUES (?1, ?2, 1, ?3) \
             ON CONFLICT (key, slot) DO UPDATE SET count = count + 1 WHERE count < ?4 RETURNING count",
            &[Param::Text(key), Param::Int(slot), Param::Int(ends), Param::Int(i64::from(limit.limit))],
        )
        .await?;
    if rows.is_empty() {
        return Err(refused());
    }
    // About one request in 64 sweeps windows that have ended.
    let mut b = [0u8; 1];
    if env.random(&mut b).is_ok() && b[0] < 4 {
        if let Err(e) = env.db().query("DELETE FROM rate_limits WHERE expires_at < ?1", &[Param::Int(now_ms)]).await {
            env.log_error(&format!("rate limit sweep: {e}"));
        }
    }
    Ok(())
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
