//! Native adapter: rusqlite and an in-memory key-value store, for unit
//! tests and tools. Everything is synchronous underneath, so every future
//! it returns is ready on first poll and [`block_on`] needs no runtime.

use std::cell::{Cell as StdCell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rusqlite::types::{Value as SqlValue, ValueRef};

use crate::env::{Client, Db, Env, Kv, MAX_UNTRUSTED_BODY};
use crate::geo::{self, mmdb, Place};
use crate::sql::{Cell, Param, Row, Stmt};
use crate::{Error, Request, Response};

/// The migrations, in order, as shipped in `schema/`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init.sql", include_str!("../../../schema/0001_init.sql")),
    ("0002_links.sql", include_str!("../../../schema/0002_links.sql")),
    ("0003_mail.sql", include_str!("../../../schema/0003_mail.sql")),
    ("0004_dashboard.sql", include_str!("../../../schema/0004_dashboard.sql")),
    ("0005_rate_limits.sql", include_str!("../../../schema/0005_rate_limits.sql")),
    ("0006_capture_page_checks.sql", include_str!("../../../schema/0006_capture_page_checks.sql")),
    ("0007_link_stats_referrer_cap.sql", include_str!("../../../schema/0007_link_stats_referrer_cap.sql")),
    ("0008_rate_windows.sql", include_str!("../../../schema/0008_rate_windows.sql")),
    ("0009_fan_rights.sql", include_str!("../../../schema/0009_fan_rights.sql")),
    ("0010_retention.sql", include_str!("../../../schema/0010_retention.sql")),
    ("0011_webhooks.sql", include_str!("../../../schema/0011_webhooks.sql")),
    ("0012_privacy_requests.sql", include_str!("../../../schema/0012_privacy_requests.sql")),
    ("0013_workspace_deletions.sql", include_str!("../../../schema/0013_workspace_deletions.sql")),
    ("0014_aggregates.sql", include_str!("../../../schema/0014_aggregates.sql")),
    ("0015_consent_versions.sql", include_str!("../../../schema/0015_consent_versions.sql")),
    ("0016_capture_page_looks.sql", include_str!("../../../schema/0016_capture_page_looks.sql")),
];

/// Drives a future whose I/O is synchronous to completion.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

pub struct SqliteDb(RefCell<rusqlite::Connection>);

impl SqliteDb {
    /// Opens (or creates) a database file and applies the migrations.
    pub fn open(path: &Path) -> Result<SqliteDb, Error> {
        let conn = rusqlite::Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(db_err)?;
        Self::migrated(conn)
    }

    pub fn memory() -> Result<SqliteDb, Error> {
        Self::migrated(rusqlite::Connection::open_in_memory().map_err(db_err)?)
    }

    fn migrated(conn: rusqlite::Connection) -> Result<SqliteDb, Error> {
        for pragma in super::CONNECTION_PRAGMAS {
            conn.execute_batch(pragma).map_err(db_err)?;
        }
        for (_, sql) in MIGRATIONS {
            conn.execute_batch(sql).map_err(db_err)?;
        }
        Ok(SqliteDb(RefCell::new(conn)))
    }

    /// Direct access for test assertions.
    pub fn conn(&self) -> std::cell::Ref<'_, rusqlite::Connection> {
        self.0.borrow()
    }

    /// Every row of every table, each row's columns as text joined by `|`
    /// (sorted), by table: for tests that prove what a change left behind
    /// anywhere in the schema, including tables added after them.
    pub fn every_row(&self) -> Result<std::collections::BTreeMap<String, Vec<String>>, Error> {
        let conn = self.0.borrow();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(db_err)?;
        let mut out = std::collections::BTreeMap::new();
        for t in tables {
            let cols: Vec<String> = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(db_err)?;
            let row = cols.iter().map(|c| format!("coalesce(CAST(\"{c}\" AS TEXT), 'NULL')")).collect::<Vec<_>>().join(" || '|' || ");
            let mut rows: Vec<String> =
                conn.prepare(&format!("SELECT {row} FROM \"{t}\"")).and_then(|mut s| s.query_map([], |r| r.get(0))?.collect()).map_err(db_err)?;
            rows.sort();
            out.insert(t, rows);
        }
        Ok(out)
    }
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::unavailable(format_args!("sqlite: {e}"))
}

fn to_sql(p: &Param<'_>) -> SqlValue {
    match *p {
        Param::Null => SqlValue::Null,
        Param::Int(v) => SqlValue::Integer(v),
        Param::Real(v) => SqlValue::Real(v),
        Param::Text(s) => SqlValue::Text(s.to_owned()),
    }
}

fn run(conn: &rusqlite::Connection, sql: &str, params: &[Param<'_>]) -> Result<(Vec<Row>, u64), Error> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let cols = stmt.column_count();
    let values: Vec<SqlValue> = params.iter().map(to_sql).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(values)).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        let mut cells = Vec::with_capacity(cols);
        for i in 0..cols {
            cells.push(match row.get_ref(i).map_err(db_err)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Real(v),
                ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
            });
        }
        out.push(Row(cells));
    }
    drop(rows);
    Ok((out, conn.changes()))
}

impl Db for SqliteDb {
    async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        Ok(run(&self.0.borrow(), sql, params)?.0)
    }

    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Error> {
        Ok(run(&self.0.borrow(), sql, params)?.1)
    }

    async fn batch(&self, stmts: &[Stmt<'_>]) -> Result<Vec<Vec<Row>>, Error> {
        let mut conn = self.0.borrow_mut();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db_err)?;
        let mut out = Vec::with_capacity(stmts.len());
        for s in stmts {
            out.push(run(&tx, s.sql, s.params)?.0);
        }
        tx.commit().map_err(db_err)?;
        Ok(out)
    }
}

/// A value and when it expires (ms since the epoch), if ever.
type Entry = (Vec<u8>, Option<i64>);

/// In-memory KV with TTLs measured against the environment's clock.
#[derive(Default)]
pub struct MemoryKv {
    map: RefCell<HashMap<String, Entry>>,
    now_ms: StdCell<i64>,
    /// Refuse a second write to a key within a second, as Workers KV does.
    pub one_write_per_second: StdCell<bool>,
    written: RefCell<HashMap<String, i64>>,
}

impl MemoryKv {
    pub fn keys(&self) -> Vec<String> {
        self.map.borrow().keys().cloned().collect()
    }
}

impl Kv for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let now = self.now_ms.get();
        Ok(self.map.borrow().get(key).filter(|(_, exp)| exp.is_none_or(|e| e > now)).map(|(v, _)| v.clone()))
    }

    async fn put(&self, key: &str, value: &[u8], ttl_secs: Option<u32>) -> Result<(), Error> {
        let now = self.now_ms.get();
        if self.one_write_per_second.get() {
            let mut written = self.written.borrow_mut();
            if written.get(key).is_some_and(|at| now - at < 1000) {
                return Err(Error::unavailable("KV PUT failed: 429 Too Many Requests"));
            }
            written.insert(key.to_owned(), now);
        }
        let exp = ttl_secs.map(|t| now + i64::from(t.max(60)) * 1000);
        self.map.borrow_mut().insert(key.to_owned(), (value.to_vec(), exp));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.map.borrow_mut().remove(key);
        Ok(())
    }
}

/// The native environment. Clock and client are settable so tests can
/// move time and change who is asking.
///
/// A clone (what [`Env::later`] hands out) shares the database, KV, clock,
/// geo files and logs with the original, so a test sees what deferred work
/// did; variables and client are copied.
#[derive(Clone)]
pub struct NativeEnv {
    pub db: Rc<SqliteDb>,
    pub kv: Rc<MemoryKv>,
    pub vars: HashMap<String, String>,
    pub client: Client,
    pub geo: Rc<Vec<mmdb::Mmdb<std::fs::File>>>,
    now_ms: Rc<StdCell<i64>>,
    pub errors: Rc<RefCell<Vec<String>>>,
    /// What [`Env::log_info`] logged.
    pub info: Rc<RefCell<Vec<String>>>,
}

impl NativeEnv {
    /// In-memory database and KV; no variables set.
    pub fn memory() -> Result<NativeEnv, Error> {
        Ok(NativeEnv {
            db: Rc::new(SqliteDb::memory()?),
            kv: Rc::default(),
            vars: HashMap::new(),
            client: Client::default(),
            geo: Rc::default(),
            now_ms: Rc::new(StdCell::new(1_767_225_600_000)), // 2026-01-01T00:00:00Z
            errors: Rc::default(),
            info: Rc::default(),
        })
    }

    pub fn set_var(&mut self, name: &str, value: &str) -> &mut Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Opens an MMDB file for [`Env::place`].
    pub fn add_geo_file(&mut self, path: &Path) -> Result<(), Error> {
        let file = std::fs::File::open(path).map_err(|e| Error::internal(format_args!("geo file: {e}")))?;
        let db = mmdb::Mmdb::open(file).map_err(|e| Error::internal(format_args!("geo file: {e}")))?;
        Rc::get_mut(&mut self.geo).ok_or_else(|| Error::internal("geo file: add geo files before sharing the environment (Env::later)"))?.push(db);
        Ok(())
    }

    pub fn set_now_ms(&self, ms: i64) {
        self.now_ms.set(ms);
        self.kv.now_ms.set(ms);
    }

    pub fn advance_secs(&self, secs: i64) {
        self.advance_ms(secs * 1000);
    }

    pub fn advance_ms(&self, ms: i64) {
        self.set_now_ms(self.now_ms.get() + ms);
    }
}

impl Env for NativeEnv {
    type Db = SqliteDb;
    type Kv = MemoryKv;
    type Later = NativeEnv;

    fn db(&self) -> &SqliteDb {
        &self.db
    }
    fn kv(&self) -> &MemoryKv {
        self.kv.now_ms.set(self.now_ms.get());
        &self.kv
    }
    fn later(&self) -> NativeEnv {
        self.clone()
    }
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn now_ms(&self) -> i64 {
        self.now_ms.get()
    }
    fn random(&self, buf: &mut [u8]) -> Result<(), Error> {
        getrandom::getrandom(buf).map_err(|e| Error::internal(format_args!("getrandom: {e}")))
    }
    fn client(&self) -> &Client {
        &self.client
    }
    fn place(&self) -> Place {
        match self.client.ip {
            Some(ip) => geo::lookup(&self.geo, geo::canonical_ip(ip)),
            None => Place::default(),
        }
    }
    fn geo_attribution(&self) -> Option<(&'static str, &'static str)> {
        None
    }
    async fn fetch(&self, req: Request) -> Result<Response, Error> {
        http1_fetch(req)
    }
    async fn fetch_untrusted(&self, req: Request, timeout_ms: u32) -> Result<Response, Error> {
        http1_exchange(req, Limits { deadline: Some(Duration::from_millis(u64::from(timeout_ms))), body_cap: Some(MAX_UNTRUSTED_BODY) })
    }
    async fn sleep_ms(&self, ms: u32) {
        self.advance_ms(i64::from(ms));
    }
    fn fetch_later(&self, req: Request, on_failure: Vec<crate::sql::OwnedStmt>) {
        let failure = match http1_fetch(req) {
            Ok(res) if res.status().is_success() => return,
            Ok(res) => format!("answered {}", res.status()),
            Err(e) => e.to_string(),
        };
        self.log_error(&format!("deferred fetch: {failure}"));
        if let Err(e) = block_on(crate::env::write_owned(self.db(), &on_failure)) {
            self.log_error(&format!("deferred fetch: undoing: {e}"));
        }
    }
    fn defer(&self, work: impl Future<Output = ()> + 'static) {
        block_on(work)
    }
    fn defer_writes(&self, mut next: impl FnMut() -> Vec<crate::sql::OwnedStmt> + 'static) {
        loop {
            let stmts = next();
            if stmts.is_empty() {
                break;
            }
            if let Err(e) = block_on(crate::env::write_owned(self.db(), &stmts)) {
                self.log_error(&format!("deferred write: {e}"));
            }
        }
    }
    fn log_error(&self, msg: &str) {
        self.errors.borrow_mut().push(msg.to_owned());
    }
    fn log_info(&self, msg: &str) {
        self.info.borrow_mut().push(msg.to_owned());
    }
}

/// Minimal blocking HTTP/1.1 client for `http://` URLs (tests talk to
/// local servers; nothing native needs TLS). The request URI must be
/// absolute. Redirects are never followed.
pub fn http1_fetch(req: Request) -> Result<Response, Error> {
    http1_exchange(req, Limits::default())
}

/// What [`http1_exchange`] allows a call. The default is [`http1_fetch`]'s:
/// no overall deadline (each read waits up to 10 s) and the whole body.
#[derive(Default)]
struct Limits {
    /// How long the whole call may take, connecting included.
    deadline: Option<Duration>,
    /// Bytes of body to read; the rest is never read.
    body_cap: Option<usize>,
}

fn http1_exchange(req: Request, limits: Limits) -> Result<Response, Error> {
    let started = Instant::now();
    let uri = req.uri().clone();
    if uri.scheme_str() != Some("http") {
        return Err(Error::unavailable("native fetch supports http:// only"));
    }
    let authority = uri.authority().ok_or_else(|| Error::unavailable("URL without host"))?;
    let addr = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
    let timed_out = || Error::unavailable(format_args!("{addr}: timed out"));
    // What is left of the deadline, or the per-read wait without one;
    // `None` once the deadline has passed (a zero timeout is refused).
    let remaining = || match limits.deadline {
        Some(d) => d.checked_sub(started.elapsed()).filter(|left| !left.is_zero()),
        None => Some(Duration::from_secs(10)),
    };
    let io_err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut if limits.deadline.is_some() => timed_out(),
        _ => Error::unavailable(e),
    };
    let mut stream = match limits.deadline {
        None => TcpStream::connect(&addr).map_err(Error::unavailable)?,
        Some(_) => connect_within(&addr, &remaining, &timed_out)?,
    };
    let left = remaining().ok_or_else(timed_out)?;
    stream.set_read_timeout(Some(left)).map_err(Error::unavailable)?;
    if limits.deadline.is_some() {
        stream.set_write_timeout(Some(left)).map_err(Error::unavailable)?;
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let head = format!("{} {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n", req.method(), path, authority, req.body().len());
    let mut head = head.into_bytes();
    for (k, v) in req.headers() {
        // Raw bytes: header values may carry UTF-8 (e.g. a city name).
        head.extend_from_slice(k.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    stream.write_all(&head).and_then(|_| stream.write_all(req.body())).map_err(io_err)?;
    // Servers may hold the connection open despite `connection: close`,
    // so stop at the end of the message rather than at EOF.
    let is_head = req.method() == http::Method::HEAD;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(res) = parse_http1(&raw, false, is_head, limits.body_cap) {
            return Ok(res);
        }
        if limits.deadline.is_some() {
            stream.set_read_timeout(Some(remaining().ok_or_else(timed_out)?)).map_err(Error::unavailable)?;
        }
        let n = stream.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            return parse_http1(&raw, true, is_head, limits.body_cap).ok_or_else(|| Error::unavailable("malformed HTTP response"));
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// Connects to the first of `addr`'s addresses that answers before the
/// deadline runs out.
fn connect_within(addr: &str, remaining: &dyn Fn() -> Option<Duration>, timed_out: &dyn Fn() -> Error) -> Result<TcpStream, Error> {
    let mut last = None;
    for sock in addr.to_socket_addrs().map_err(Error::unavailable)? {
        let left = remaining().ok_or_else(timed_out)?;
        match TcpStream::connect_timeout(&sock, left) {
            Ok(stream) => return Ok(stream),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return Err(timed_out()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| Error::unavailable(format_args!("{addr}: no address")), Error::unavailable))
}

/// A complete response, or `None` while more bytes are needed. At EOF
/// (`eof`) a response without length or chunking ends where the bytes do.
/// With `cap`, a body is complete once that much of it has come, and is
/// cut there.
fn parse_http1(raw: &[u8], eof: bool, is_head: bool, cap: Option<usize>) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut res = http::Response::builder().status(status);
    let (mut chunked, mut length) = (false, None);
    for line in lines {
        let (k, v) = line.split_once(':')?;
        let (k, v) = (k.trim(), v.trim());
        chunked |= k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked");
        if k.eq_ignore_ascii_case("content-length") {
            length = v.parse::<usize>().ok();
        }
        res = res.header(k, v);
    }
    let body = &raw[split + 4..];
    let no_body = is_head || status == 204 || status == 304 || (100..200).contains(&status);
    let enough = |got: usize| cap.is_some_and(|c| got >= c);
    let mut body = if no_body {
        Vec::new()
    } else if chunked {
        let (decoded, done) = dechunk_prefix(body)?;
        if !done && !enough(decoded.len()) {
            return None;
        }
        decoded
    } else if let Some(n) = length {
        body.get(..n).or_else(|| enough(body.len()).then_some(body))?.to_vec()
    } else if eof || enough(body.len()) {
        body.to_vec()
    } else {
        return None;
    };
    if let Some(c) = cap {
        body.truncate(c);
    }
    res.body(body).ok()
}

fn dechunk(body: &[u8]) -> Option<Vec<u8>> {
    match dechunk_prefix(body)? {
        (out, true) => Some(out),
        (_, false) => None,
    }
}

/// Decodes a chunked body as far as it has come: the bytes so far and
/// whether the last chunk was seen. `None` when it is malformed.
fn dechunk_prefix(mut body: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else { return Some((out, false)) };
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some((out, true));
        }
        let Some(chunk) = body.get(..size) else {
            out.extend_from_slice(body);
            return Some((out, false));
        };
        out.extend_from_slice(chunk);
        let Some(rest) = body.get(size + 2..) else { return Some((out, false)) };
        body = rest;
    }
}

/// A local HTTP server that records every request and answers with a set
/// status: stands in for third-party APIs (the email provider) in tests.
pub mod recorder {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Clone)]
    pub struct Recorded {
        pub method: String,
        pub path: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Recorded {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    pub struct Recorder {
        pub url: String,
        requests: Arc<Mutex<Vec<Recorded>>>,
        status: Arc<AtomicU16>,
        /// How long each answer waits, like a slow provider.
        delay_ms: Arc<AtomicU64>,
    }

    impl Recorder {
        /// Listens on 127.0.0.1 (a free port) until the process ends.
        pub fn start() -> std::io::Result<Recorder> {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let url = format!("http://{}", listener.local_addr()?);
            let requests = Arc::new(Mutex::new(Vec::new()));
            let status = Arc::new(AtomicU16::new(200));
            let delay_ms = Arc::new(AtomicU64::new(0));
            let (reqs, st, delay) = (Arc::clone(&requests), Arc::clone(&status), Arc::clone(&delay_ms));
            std::thread::spawn(move || {
                for mut conn in listener.incoming().flatten() {
                    if let Some(r) = read_request(&mut conn) {
                        if let Ok(mut all) = reqs.lock() {
                            all.push(r);
                        }
                    }
                    std::thread::sleep(std::time::Duration::from_millis(delay.load(Ordering::SeqCst)));
                    let code = st.load(Ordering::SeqCst);
                    let body = b"{\"id\":\"recorded\"}";
                    let _ = write!(conn, "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                    let _ = conn.write_all(body);
                }
            });
            Ok(Recorder { url, requests, status, delay_ms })
        }

        pub fn requests(&self) -> Vec<Recorded> {
            self.requests.lock().map(|r| r.clone()).unwrap_or_default()
        }

        /// The status later requests are answered with.
        pub fn respond_with(&self, status: u16) {
            self.status.store(status, Ordering::SeqCst);
        }

        /// Makes later answers wait `ms`, like a slow provider.
        pub fn respond_after(&self, ms: u64) {
            self.delay_ms.store(ms, Ordering::SeqCst);
        }
    }

    fn read_request(conn: &mut std::net::TcpStream) -> Option<Recorded> {
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let head_end = loop {
            let n = conn.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
        let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
        let header = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let len = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = raw[head_end + 4..].to_vec();
        // wasi-http clients stream bodies with chunked encoding.
        let complete = |b: &[u8]| if chunked { super::dechunk(b).is_some() } else { b.len() >= len };
        while !complete(&body) {
            let n = conn.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
        let body = if chunked { super::dechunk(&body)? } else { body };
        Some(Recorded { method, path, headers, body })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{block_on, NativeEnv};
    use crate::env::{Db, Env, Kv, MAX_UNTRUSTED_BODY};
    use crate::ErrorKind;

    fn get(url: &str) -> crate::Request {
        http::Request::builder().uri(url).body(Vec::new()).unwrap()
    }

    /// Serves every connection with `answer(conn)` on its own thread, so a
    /// handler that never answers holds its connection open. Returns the
    /// base URL and how many connections came.
    fn serve(answer: impl Fn(TcpStream) + Send + Sync + 'static) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let (answer, counted) = (Arc::new(answer), Arc::clone(&hits));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                let answer = Arc::clone(&answer);
                std::thread::spawn(move || answer(conn));
            }
        });
        (url, hits)
    }

    /// Reads the request head, so the client's write never blocks.
    fn read_head(conn: &mut TcpStream) {
        let mut raw = Vec::new();
        let mut buf = [0u8; 1024];
        while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn untrusted_fetch_gives_up_on_a_silent_server() {
        let (url, hits) = serve(|mut conn| {
            read_head(&mut conn);
            // Holds the connection open without a word.
            std::thread::sleep(Duration::from_secs(30));
        });
        let env = NativeEnv::memory().unwrap();
        let started = Instant::now();
        let e = block_on(env.fetch_untrusted(get(&format!("{url}/hook")), 300)).unwrap_err();
        let took = started.elapsed();
        assert_eq!(e.kind, ErrorKind::Unavailable, "{e:?}");
        assert!(e.message.contains("timed out"), "{e:?}");
        assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "took {took:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn untrusted_fetch_gives_up_on_a_trickling_body() {
        // Each byte comes well within the timeout; the whole never does.
        let (url, _) = serve(|mut conn| {
            read_head(&mut conn);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n");
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(50));
                if conn.write_all(b"x").is_err() {
                    return;
                }
            }
        });
        let env = NativeEnv::memory().unwrap();
        let started = Instant::now();
        let e = block_on(env.fetch_untrusted(get(&url), 300)).unwrap_err();
        assert!(e.message.contains("timed out"), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }

    #[test]
    fn untrusted_fetch_returns_a_redirect_unfollowed() {
        let (target, target_hits) = serve(|mut conn| {
            read_head(&mut conn);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        });
        let (url, _) = serve(move |mut conn| {
            read_head(&mut conn);
            let _ = write!(conn, "HTTP/1.1 302 Found\r\nlocation: {target}/elsewhere\r\ncontent-length: 5\r\n\r\nmoved");
        });
        let env = NativeEnv::memory().unwrap();
        let res = block_on(env.fetch_untrusted(get(&url), 2000)).unwrap();
        assert_eq!(res.status(), 302);
        assert!(res.headers()["location"].to_str().unwrap().ends_with("/elsewhere"));
        assert_eq!(res.body(), b"moved");
        assert_eq!(target_hits.load(Ordering::SeqCst), 0, "the redirect was followed");
    }

    #[test]
    fn untrusted_fetch_reads_at_most_the_cap() {
        let big: Vec<u8> = (0..4 * MAX_UNTRUSTED_BODY).map(|i| b'a' + (i % 26) as u8).collect();
        let env = NativeEnv::memory().unwrap();
        // Declared length, chunked, and until EOF; each sends more than the
        // cap and then stalls, so a client that waits for the whole body
        // (or for EOF) times out instead of answering.
        for framing in ["length", "chunked", "eof"] {
            let sent = big.clone();
            let (url, _) = serve(move |mut conn| {
                read_head(&mut conn);
                let head = match framing {
                    "length" => format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", sent.len() * 10),
                    "chunked" => "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_owned(),
                    _ => "HTTP/1.1 200 OK\r\n\r\n".to_owned(),
                };
                let _ = conn.write_all(head.as_bytes());
                let _ = if framing == "chunked" {
                    // Small chunks, so the cap falls inside one.
                    sent.chunks(1000).try_for_each(|c| write!(conn, "{:x}\r\n", c.len()).and_then(|_| conn.write_all(c)).and_then(|_| conn.write_all(b"\r\n")))
                } else {
                    conn.write_all(&sent)
                };
                std::thread::sleep(Duration::from_secs(30));
            });
            let res = block_on(env.fetch_untrusted(get(&url), 1500)).unwrap_or_else(|e| panic!("{framing}: {e}"));
            assert_eq!(res.status(), 200, "{framing}");
            assert_eq!(res.body().len(), MAX_UNTRUSTED_BODY, "{framing}");
            assert_eq!(res.body()[..], big[..MAX_UNTRUSTED_BODY], "{framing}");
        }
    }

    #[test]
    fn untrusted_fetch_keeps_a_small_body_whole() {
        let (url, _) = serve(|mut conn| {
            read_head(&mut conn);
            let _ = conn.write_all(b"HTTP/1.1 500 Oops\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
            std::thread::sleep(Duration::from_secs(30));
        });
        let env = NativeEnv::memory().unwrap();
        let res = block_on(env.fetch_untrusted(get(&url), 1500)).unwrap();
        assert_eq!((res.status().as_u16(), res.body().as_slice()), (500, &b"hello"[..]));
    }

    #[test]
    fn later_shares_the_database_clock_and_logs() {
        let env = NativeEnv::memory().unwrap();
        let later = env.later();
        block_on(later.db().execute("CREATE TABLE t (v TEXT)", &[])).unwrap();
        block_on(later.db().execute("INSERT INTO t VALUES ('from later')", &[])).unwrap();
        let v: String = env.db.conn().query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(v, "from later");

        let before = env.now_ms();
        later.advance_secs(60);
        assert_eq!(env.now_ms(), before + 60_000);
        env.advance_secs(1);
        assert_eq!(later.now_ms(), before + 61_000);

        block_on(later.kv().put("k", b"v", Some(60))).unwrap();
        assert_eq!(block_on(env.kv().get("k")).unwrap().as_deref(), Some(&b"v"[..]));
        env.advance_secs(61);
        assert_eq!(block_on(later.kv().get("k")).unwrap(), None, "the KV expires on the shared clock");

        later.log_error("oops");
        later.log_info("done");
        assert_eq!(*env.errors.borrow(), ["oops"]);
        assert_eq!(*env.info.borrow(), ["done"]);
    }

    #[test]
    fn work_deferred_from_deferred_work_runs() {
        let env = NativeEnv::memory().unwrap();
        let later = env.later();
        env.defer(async move {
            let inner = later.later();
            later.defer(async move {
                inner.db().execute("CREATE TABLE deferred (v INTEGER)", &[]).await.unwrap();
            });
        });
        assert_eq!(env.db.conn().query_row("SELECT count(*) FROM sqlite_master WHERE name = 'deferred'", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
    }

    #[test]
    fn geo_files_come_before_sharing() {
        let mut env = NativeEnv::memory().unwrap();
        let _later = env.later();
        let e = env.add_geo_file(std::path::Path::new("/dev/null")).unwrap_err();
        assert!(e.message.contains("geo file"), "{e:?}");
    }
}
