//! Cloudflare Workers adapter: D1 (binding `DB`), Workers KV (binding `KV`),
//! secrets and vars (UPPER_SNAKE names), `request.cf` for location,
//! `waitUntil` for deferred work.

use std::future::Future;

use futures_util::StreamExt;
use worker::js_sys::{self, Array, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};

use crate::env::{parse_client_addr, Client, Db, Env, Kv};
use crate::geo::Place;
use crate::httpx::{self, MAX_BODY};
use crate::sql::{Cell, Param, Row, Stmt};
use crate::{Error, ErrorKind, Request, Response};

pub const DB_BINDING: &str = "DB";
/// How long deferred writes wait for company (see `Env::defer_writes`).
pub const WRITE_DELAY_MS: u64 = 200;
pub const KV_BINDING: &str = "KV";

/// The one place Workers errors become ours. Details go to the log only.
fn err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::unavailable(format_args!("{context}: {e}"))
}

pub struct Platform {
    env: worker::Env,
    ctx: worker::Context,
    client: Client,
    cf: Option<worker::Cf>,
    db: D1,
    kv: WorkersKv,
}

impl Platform {
    /// Reads the request (body capped at [`MAX_BODY`]) into `http` types.
    /// On a bad request returns the response to send instead.
    pub async fn prepare(mut req: worker::Request, env: worker::Env, ctx: worker::Context) -> Result<(Request, Platform), Response> {
        let fail = |e: Error| httpx::json_error(&e);
        let mut builder = http::Request::builder().method(req.method().as_ref());
        // The raw URL string, not `req.url()`: parsing with the `url` crate
        // would pull its IDNA tables into every function.
        let url = req.inner().url();
        let path_and_query = path_and_query(&url);
        builder = builder.uri(path_and_query);
        for (name, value) in req.headers().entries() {
            builder = builder.header(name, value);
        }
        let body = read_body(&mut req).await.map_err(fail)?;
        let request = builder.body(body).map_err(|e| fail(Error::new(ErrorKind::BadRequest, format!("bad request: {e}"))))?;
        let client = Client {
            ip: req.headers().get("cf-connecting-ip").ok().flatten().and_then(|v| parse_client_addr(&v)),
        };
        let cf = req.cf().cloned();
        let platform = Platform { db: D1(env.clone()), kv: WorkersKv(env.clone()), env, ctx, client, cf };
        Ok((request, platform))
    }
}

/// `https://host/p?q` → `/p?q`.
fn path_and_query(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
}

async fn read_body(req: &mut worker::Request) -> Result<Vec<u8>, Error> {
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(httpx::too_large());
    }
    if declared == Some(0) || req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let mut stream = req.stream().map_err(|e| err("body", e))?;
    let mut body = Vec::with_capacity(declared.unwrap_or(1024));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::new(ErrorKind::BadRequest, format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(httpx::too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns our response into the runtime's. Never fails: a conversion
/// problem becomes a logged bare 500.
pub fn into_response(res: Response) -> worker::Result<worker::Response> {
    let (parts, body) = res.into_parts();
    let headers = worker::Headers::new();
    for (name, value) in &parts.headers {
        if let Ok(v) = value.to_str() {
            let _ = headers.append(name.as_str(), v);
        }
    }
    // A null-body status (204, 304) must not carry even an empty body.
    let built = if body.is_empty() { worker::Response::empty() } else { worker::Response::from_bytes(body) };
    match built {
        Ok(r) => Ok(r.with_status(parts.status.as_u16()).with_headers(headers)),
        Err(e) => {
            worker::console_error!("response conversion: {e}");
            worker::Response::error("Internal Server Error", 500)
        }
    }
}

pub struct D1(worker::Env);

impl D1 {
    fn db(&self) -> Result<worker::D1Database, Error> {
        self.0.d1(DB_BINDING).map_err(|e| err("D1 binding", e))
    }

    fn prepare(&self, db: &worker::D1Database, sql: &str, params: &[Param<'_>]) -> Result<worker::D1PreparedStatement, Error> {
        let values: Vec<JsValue> = params.iter().map(to_js).collect();
        db.prepare(sql).bind(&values).map_err(|e| err("D1 bind", e))
    }
}

fn to_js(p: &Param<'_>) -> JsValue {
    match *p {
        Param::Null => JsValue::NULL,
        Param::Int(v) => JsValue::from_f64(v as f64),
        Param::Real(v) => JsValue::from_f64(v),
        Param::Text(s) => JsValue::from_str(s),
    }
}

fn from_js(v: JsValue) -> Cell {
    if let Some(n) = v.as_f64() {
        // D1 returns every number as a double; integral ones are INTEGERs.
        return if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 { Cell::Int(n as i64) } else { Cell::Real(n) };
    }
    if let Some(s) = v.as_string() {
        return Cell::Text(s);
    }
    if v.is_instance_of::<Array>() || v.is_instance_of::<js_sys::ArrayBuffer>() || v.is_instance_of::<Uint8Array>() {
        // D1 hands BLOBs back as arrays of byte values.
        let bytes = if v.is_instance_of::<Array>() {
            Array::from(&v).iter().map(|b| b.as_f64().unwrap_or(0.0) as u8).collect()
        } else {
            Uint8Array::new(&v).to_vec()
        };
        return Cell::Blob(bytes);
    }
    Cell::Null
}

impl Db for D1 {
    async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        let db = self.db()?;
        let rows = self.prepare(&db, sql, params)?.raw_js_value().await.map_err(|e| err("D1 query", e))?;
        Ok(rows
            .into_iter()
            .map(|row| Row(Array::from(&row).iter().map(from_js).collect()))
            .collect())
    }

    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Error> {
        let db = self.db()?;
        let result = self.prepare(&db, sql, params)?.run().await.map_err(|e| err("D1 execute", e))?;
        let meta = result.meta().map_err(|e| err("D1 meta", e))?;
        Ok(meta.and_then(|m| m.changes).unwrap_or(0) as u64)
    }

    async fn batch(&self, stmts: &[Stmt<'_>]) -> Result<(), Error> {
        let db = self.db()?;
        let prepared = stmts.iter().map(|s| self.prepare(&db, s.sql, s.params)).collect::<Result<Vec<_>, _>>()?;
        // D1 runs a batch as one implicit transaction.
        db.batch(prepared).await.map_err(|e| err("D1 batch", e))?;
        Ok(())
    }
}

pub struct WorkersKv(worker::Env);

impl WorkersKv {
    fn kv(&self) -> Result<worker::KvStore, Error> {
        self.0.kv(KV_BINDING).map_err(|e| err("KV binding", e))
    }
}

impl Kv for WorkersKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.kv()?.get(key).bytes().await.map_err(|e| err("KV get", e))
    }

    async fn put(&self, key: &str, value: &[u8], ttl_secs: Option<u32>) -> Result<(), Error> {
        let mut put = self.kv()?.put_bytes(key, value).map_err(|e| err("KV put", e))?;
        if let Some(ttl) = ttl_secs {
            put = put.expiration_ttl(u64::from(ttl.max(60)));
        }
        put.execute().await.map_err(|e| err("KV put", e))
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.kv()?.delete(key).await.map_err(|e| err("KV delete", e))
    }
}

impl Env for Platform {
    type Db = D1;
    type Kv = WorkersKv;

    fn db(&self) -> &D1 {
        &self.db
    }
    fn kv(&self) -> &WorkersKv {
        &self.kv
    }
    fn var(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_uppercase();
        self.env
            .secret(&name)
            .map(|s| s.to_string())
            .or_else(|_| self.env.var(&name).map(|v| v.to_string()))
            .ok()
    }
    fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }
    fn random(&self, buf: &mut [u8]) -> Result<(), Error> {
        getrandom::getrandom(buf).map_err(|e| Error::internal(format_args!("getrandom: {e}")))
    }
    fn client(&self) -> &Client {
        &self.client
    }
    fn place(&self) -> Place {
        let Some(cf) = &self.cf else { return Place::default() };
        Place { country: cf.country(), region: cf.region(), city: cf.city() }.sanitized()
    }
    fn geo_attribution(&self) -> Option<(&'static str, &'static str)> {
        None
    }
    async fn fetch(&self, req: Request) -> Result<Response, Error> {
        let (parts, body) = req.into_parts();
        let headers = worker::Headers::new();
        for (name, value) in &parts.headers {
            headers.append(name.as_str(), value.to_str().unwrap_or("")).map_err(|e| err("fetch header", e))?;
        }
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::from(parts.method.as_str().to_owned())).with_headers(headers);
        if !body.is_empty() {
            init.with_body(Some(Uint8Array::from(body.as_slice()).into()));
        }
        let out = worker::Request::new_with_init(&parts.uri.to_string(), &init).map_err(|e| err("fetch", e))?;
        let mut res = worker::Fetch::Request(out).send().await.map_err(|e| err("fetch", e))?;
        let mut builder = http::Response::builder().status(res.status_code());
        for (name, value) in res.headers().entries() {
            builder = builder.header(name, value);
        }
        let bytes = res.bytes().await.map_err(|e| err("fetch body", e))?;
        builder.body(bytes).map_err(|e| err("fetch response", e))
    }
    fn defer(&self, work: impl Future<Output = ()> + 'static) {
        self.ctx.wait_until(work);
    }
    fn defer_writes(&self, mut next: impl FnMut() -> Vec<crate::sql::OwnedStmt> + 'static) {
        // The binding handle is a cheap clone of the Env, so the writes can
        // outlive the request inside waitUntil.
        let db = D1(self.env.clone());
        self.ctx.wait_until(async move {
            loop {
                // One isolate serves many requests: waiting a moment before
                // each batch lets a busy route's writes leave together (a
                // few a second), not one per request on D1's single writer.
                worker::Delay::from(std::time::Duration::from_millis(WRITE_DELAY_MS)).await;
                let stmts = next();
                if stmts.is_empty() {
                    break;
                }
                if let Err(e) = crate::env::write_owned(&db, &stmts).await {
                    worker::console_error!("deferred write: {e}");
                }
            }
        });
    }
    fn log_error(&self, msg: &str) {
        worker::console_error!("{msg}");
    }
}
