//! Native adapter: rusqlite and an in-memory key-value store, for unit
//! tests and tools. Everything is synchronous underneath, so every future
//! it returns is ready on first poll and [`block_on`] needs no runtime.

use std::cell::{Cell as StdCell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rusqlite::types::{Value as SqlValue, ValueRef};

use crate::env::{Client, Db, Env, Kv};
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
pub struct NativeEnv {
    pub db: SqliteDb,
    pub kv: MemoryKv,
    pub vars: HashMap<String, String>,
    pub client: Client,
    pub geo: Vec<mmdb::Mmdb<std::fs::File>>,
    now_ms: StdCell<i64>,
    pub errors: RefCell<Vec<String>>,
    /// What [`Env::log_info`] logged.
    pub info: RefCell<Vec<String>>,
}

impl NativeEnv {
    /// In-memory database and KV; no variables set.
    pub fn memory() -> Result<NativeEnv, Error> {
        Ok(NativeEnv {
            db: SqliteDb::memory()?,
            kv: MemoryKv::default(),
            vars: HashMap::new(),
            client: Client::default(),
            geo: Vec::new(),
            now_ms: StdCell::new(1_767_225_600_000), // 2026-01-01T00:00:00Z
            errors: RefCell::new(Vec::new()),
            info: RefCell::new(Vec::new()),
        })
    }

    pub fn set_var(&mut self, name: &str, value: &str) -> &mut Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Opens an MMDB file for [`Env::place`].
    pub fn add_geo_file(&mut self, path: &Path) -> Result<(), Error> {
        let file = std::fs::File::open(path).map_err(|e| Error::internal(format_args!("geo file: {e}")))?;
        self.geo.push(mmdb::Mmdb::open(file).map_err(|e| Error::internal(format_args!("geo file: {e}")))?);
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

    fn db(&self) -> &SqliteDb {
        &self.db
    }
    fn kv(&self) -> &MemoryKv {
        self.kv.now_ms.set(self.now_ms.get());
        &self.kv
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
        if let Err(e) = block_on(crate::env::write_owned(&self.db, &on_failure)) {
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
            if let Err(e) = block_on(crate::env::write_owned(&self.db, &stmts)) {
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
/// absolute.
pub fn http1_fetch(req: Request) -> Result<Response, Error> {
    let uri = req.uri().clone();
    if uri.scheme_str() != Some("http") {
        return Err(Error::unavailable("native fetch supports http:// only"));
    }
    let authority = uri.authority().ok_or_else(|| Error::unavailable("URL without host"))?;
    let addr = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
    let mut stream = TcpStream::connect(&addr).map_err(Error::unavailable)?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(Error::unavailable)?;
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
    stream.write_all(&head).and_then(|_| stream.write_all(req.body())).map_err(Error::unavailable)?;
    // Servers may hold the connection open despite `connection: close`,
    // so stop at the end of the message rather than at EOF.
    let is_head = req.method() == http::Method::HEAD;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(res) = parse_http1_response(&raw, is_head) {
            return Ok(res);
        }
        let n = stream.read(&mut buf).map_err(Error::unavailable)?;
        if n == 0 {
            return parse_http1_response_at_eof(&raw, is_head).ok_or_else(|| Error::unavailable("malformed HTTP response"));
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// A complete response, or `None` while more bytes are needed.
fn parse_http1_response(raw: &[u8], head: bool) -> Option<Response> {
    parse_http1(raw, false, head)
}

/// At EOF a response without length or chunking ends where the bytes do.
fn parse_http1_response_at_eof(raw: &[u8], head: bool) -> Option<Response> {
    parse_http1(raw, true, head)
}

fn parse_http1(raw: &[u8], eof: bool, is_head: bool) -> Option<Response> {
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
    let body = if no_body {
        Vec::new()
    } else if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        body.get(..n)?.to_vec()
    } else if eof {
        body.to_vec()
    } else {
        return None;
    };
    res.body(body).ok()
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
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
