//! The ports: what a function may ask of the platform it runs on. Each
//! adapter (`adapters::*`) implements them; functions see only these traits.
//!
//! Both platforms run one request per single-threaded wasm instance, so the
//! async methods carry no `Send` bounds and functions are generic over
//! [`Env`] rather than using trait objects.
#![allow(async_fn_in_trait)]

use std::future::Future;
use std::net::IpAddr;

use crate::geo::Place;
use crate::sql::{Param, Row, Stmt};
use crate::Error;

/// A callback waiting for the client's country (see [`Env::country_later`]).
pub type CountryWaiter = Box<dyn FnOnce(Option<String>)>;

/// SQL database, SQLite dialect.
pub trait Db {
    /// Runs a query and returns all rows. No rows is `Ok(vec![])`.
    async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error>;
    /// Runs one statement; returns the number of rows it changed.
    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Error>;
    /// Runs the statements in order inside one transaction: either all take
    /// effect or none does (D1 `batch`, `BEGIN IMMEDIATE … COMMIT` elsewhere).
    /// Returns each statement's rows (from `RETURNING` or a `SELECT`), so a
    /// write and what it decided take one round trip. On D1 rows come back
    /// as objects keyed by column name: give returned columns distinct,
    /// non-numeric names.
    async fn batch(&self, stmts: &[Stmt<'_>]) -> Result<Vec<Vec<Row>>, Error>;
}

/// Key-value store. Eventually consistent on Workers (~60 s): use it for
/// read-mostly data and approximate counters, never for exact state.
pub trait Kv {
    /// A missing or expired key is `Ok(None)`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Stores `value`; with `ttl_secs` the key disappears after that long
    /// (Workers KV rounds anything below 60 s up to 60 s).
    async fn put(&self, key: &str, value: &[u8], ttl_secs: Option<u32>) -> Result<(), Error>;
    /// Deleting a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<(), Error>;
}

/// What is known about the client of the current request.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The client address: for geo lookup and salted rate-limit keys only.
    /// Never stored, never logged.
    pub ip: Option<IpAddr>,
}

/// The most of an answer's body [`Env::fetch_untrusted`] reads: enough for
/// an error message, and a hostile endpoint cannot make us hold more.
pub const MAX_UNTRUSTED_BODY: usize = 16 * 1024;

/// Everything a function may use, for one request.
pub trait Env {
    type Db: Db;
    type Kv: Kv;
    /// Same platform, settings and clock, borrowing nothing from the request, for
    /// work handed to `defer` that needs the database or outbound HTTP.
    type Later: Env + 'static;

    fn db(&self) -> &Self::Db;
    fn kv(&self) -> &Self::Kv;

    /// See [`Env::Later`].
    fn later(&self) -> Self::Later;

    /// A secret or plain setting (Worker secrets/vars, Spin variables,
    /// process environment natively). Names are lower_snake_case; adapters
    /// map them to their platform's convention.
    fn var(&self, name: &str) -> Option<String>;

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Fills `buf` from the platform's CSPRNG.
    fn random(&self, buf: &mut [u8]) -> Result<(), Error>;

    fn client(&self) -> &Client;

    /// The client's approximate location: from the edge's own data on
    /// Workers, from an IP database on Spin and natively. Unknown is
    /// `Place::default()`, never an error: signups must not fail on geo.
    fn place(&self) -> Place;

    /// Just the country of [`Env::place`], for callers that need no more;
    /// cheaper where the platform reads each field separately.
    fn country(&self) -> Option<String> {
        self.place().country
    }

    /// Whether [`Env::country`] costs I/O here (Spin reads its geo file)
    /// rather than coming with the request; such callers may prefer
    /// [`Env::country_later`] when the answer does not depend on it.
    fn country_costs_io(&self) -> bool {
        false
    }

    /// Hands the client's [`Env::country`] to `then`, for work that is done
    /// after the response anyway (a click counter): where the lookup costs
    /// I/O (Spin reads its geo file, a host call per read) it runs after the
    /// response is sent, before deferred work; where the country comes with
    /// the request (Workers), at once.
    fn country_later(&self, then: impl FnOnce(Option<String>) + 'static) {
        then(self.country())
    }

    /// Attribution to show where `place` comes from a database that
    /// requires it (DB-IP Lite, CC BY 4.0): `(text, url)`.
    fn geo_attribution(&self) -> Option<(&'static str, &'static str)>;

    /// Outbound HTTP.
    async fn fetch(&self, req: crate::Request) -> Result<crate::Response, Error>;

    /// Outbound HTTP to an address nobody vouches for (an artist's webhook
    /// endpoint): redirects are never followed (a 3xx comes back as the answer),
    /// the call gives up after `timeout_ms` (an `Unavailable` error whose message
    /// contains "timed out"), and at most [`MAX_UNTRUSTED_BODY`] of the answer's body is read.
    async fn fetch_untrusted(&self, req: crate::Request, timeout_ms: u32) -> Result<crate::Response, Error>;

    /// Waits `ms` milliseconds (a retry's back-off). Natively the test
    /// clock moves instead.
    async fn sleep_ms(&self, ms: u32);

    /// Sends `req` after the response, for calls nobody waits on (a
    /// sign-in or confirmation mail, so the answer takes the same time
    /// whether or not one is sent). If the call fails (no answer, or not
    /// 2xx), `on_failure` is written, e.g. to give back a send slot; the
    /// failure itself is logged, never reported.
    fn fetch_later(&self, req: crate::Request, on_failure: Vec<crate::sql::OwnedStmt>);

    /// Work to finish after the response is sent (Workers `waitUntil`;
    /// on Spin after the response is sent; natively before the handler returns).
    fn defer(&self, work: impl Future<Output = ()> + 'static);

    /// Writes to run after the response is sent, for work nobody waits for
    /// (counters). `next` is called when the work runs, not now, and again
    /// after each batch it hands out has been written, until it hands out
    /// none: writes that pile up meanwhile (on Workers one isolate serves
    /// many requests, and its adapter waits a moment before each batch)
    /// then leave as one batch instead of one write each.
    /// (`defer` can't do this alone: its work must be `'static`, and the
    /// database port is borrowed from the request.) A failed batch is
    /// logged, never reported.
    fn defer_writes(&self, next: impl FnMut() -> Vec<crate::sql::OwnedStmt> + 'static);

    /// Logs a server-side fault. Never pass personal data here.
    fn log_error(&self, msg: &str);

    /// Logs an operational line (a scheduled job's report). Never pass
    /// personal data here. Every adapter writes it to its ordinary log;
    /// the default (for test doubles) goes where errors go.
    fn log_info(&self, msg: &str) {
        self.log_error(msg);
    }
}

/// Runs `stmts` in order, stopping at the first failure: what adapters do
/// with [`Env::defer_writes`]. One call per statement, not a batch: D1's
/// batch support costs ~1.3 KB gzip of wasm, and callers that write many
/// rows put them in one multi-row statement instead.
pub async fn write_owned(db: &impl Db, stmts: &[crate::sql::OwnedStmt]) -> Result<(), Error> {
    for s in stmts {
        let params: Vec<Param<'_>> = s.params.iter().map(crate::sql::OwnedParam::as_param).collect();
        db.query(&s.sql, &params).await?;
    }
    Ok(())
}

/// Parses a client address as platforms hand it over: a bare IP, `ip:port`
/// or `[ipv6]:port`. A proxy header holding a list (`X-Forwarded-For:
/// client, proxy1`) yields its right-most entry: the one the trusted proxy
/// added; entries to its left are whatever the client claimed.
pub fn parse_client_addr(s: &str) -> Option<IpAddr> {
    let s = s.rsplit(',').next().unwrap_or(s).trim();
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sock) = s.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    None
}

/// A new row id: 128 random bits as 32 hex chars (unguessable, and
/// collision-free in practice).
pub fn random_id(env: &impl Env) -> Result<String, Error> {
    let mut b = [0u8; 16];
    env.random(&mut b)?;
    Ok(crate::crypto::hex(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addr_forms() {
        for (s, ip) in [("127.0.0.1:41860", "127.0.0.1"), ("81.2.69.142", "81.2.69.142"), ("[2001:218::1]:80", "2001:218::1"), ("2001:218::1", "2001:218::1")] {
            assert_eq!(parse_client_addr(s), Some(ip.parse().unwrap()), "{s}");
        }
        assert_eq!(parse_client_addr("nope"), None);
        // Lists: the right-most entry is the one our proxy added.
        assert_eq!(parse_client_addr("203.0.113.9, 198.51.100.4"), Some("198.51.100.4".parse().unwrap()));
        assert_eq!(parse_client_addr("spoofed,2001:db8::1"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(parse_client_addr("198.51.100.4,"), None, "an empty last entry is no address");
    }
}
