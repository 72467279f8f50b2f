//! Cloudflare Workers adapter: D1 (binding `DB`), Workers KV (binding `KV`),
//! secrets and vars (UPPER_SNAKE names), `request.cf` for location,
//! `waitUntil` for deferred work.

use std::cell::{OnceCell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use wasm_bindgen::prelude::wasm_bindgen;
use worker::js_sys::{self, Array, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::{future_to_promise, JsFuture};
use worker::web_sys;

use crate::env::{parse_client_addr, Client, Db, Env, Kv, MAX_UNTRUSTED_BODY};
use crate::geo::Place;
use crate::httpx;
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

/// Cheap to clone (handles into JS, one `Rc`): a clone is what
/// [`Env::later`] hands to deferred work.
#[derive(Clone)]
pub struct Platform {
    env: worker::Env,
    /// Shared, not copied: `worker::Context` is not `Clone`.
    ctx: Rc<worker::Context>,
    /// Read on first use: most requests never need it.
    client: OnceCell<Client>,
    /// The incoming request, for headers functions do not get (the client
    /// address), read only when asked.
    raw: web_sys::Request,
    /// From the `CF-IPCountry` header, when the edge sent one.
    country: Option<String>,
    db: D1,
    kv: WorkersKv,
}

// One call each way across the JS boundary per request: the request head
// (method, URL, the country and the headers functions read) comes over as
// one string and the response goes back as one, instead of a call per
// header through `web_sys::Headers`. Iterating all request headers costs
// more than the few `get`s, and on the smart-link redirect boundary
// traffic was most of the time spent.
//
// Layout: `method \n url \n country (\n name:value)*`. Neither header
// names nor values can contain `\n`, and names cannot contain `:`.
//
// The country is the `CF-IPCountry` header the edge adds (IP Geolocation
// on, the default): reading `request.cf` instead parses the whole cf
// object on first use, which cost the redirect about 2.5 us, as much as
// everything else in this adapter. Without the header (local runtimes,
// geolocation off), `request.cf` is read when a function asks; so are the
// region and city (signup only, through `place`).
//
// Indexed loops and a plain object: `for…of` and `Object.create(null)`
// showed up in profiles of the redirect.
#[wasm_bindgen(inline_js = r#"
const encoder = new TextEncoder();
let unsent = null;
// Writes the head into `buf`, a view of wasm memory, and returns its
// length; or, when it does not fit, keeps it for `headAgain` and returns
// minus the room it needs (UTF-8 takes at most 3 bytes per UTF-16 unit).
// `encodeInto` beats returning a string, which the glue copies into wasm
// memory one character at a time.
export function head(r, names, buf) {
  const m = r.method;
  const h = r.headers;
  let s = m + "\n" + r.url + "\n" + (h.get("cf-ipcountry") ?? "");
  // The last nine names (content-type, origin, sec-fetch-site and the
  // six webhook signature headers) matter only to requests with a body:
  // GET and HEAD skip them (each `get` is a call into the runtime), and
  // the signature headers are read only under /hooks/, so a signup POST
  // does not pay for them. See httpx::BODY_ONLY_HEADERS, SIGNATURE_HEADERS.
  const n = m === "GET" || m === "HEAD" ? names.length - 9 : r.url.includes("/hooks/") ? names.length : names.length - 6;
  for (let i = 0; i < n; i++) {
    const v = h.get(names[i]);
    if (v !== null) s += "\n" + names[i] + ":" + v;
  }
  const { read, written } = encoder.encodeInto(s, buf);
  if (read === s.length) return written;
  unsent = s;
  return -3 * s.length;
}
// `country\nregion\ncity` from `request.cf` (the city last: whatever it
// holds cannot shift the other fields), or "" without one.
export function place(r) {
  const cf = r.cf;
  return cf ? (cf.country ?? "") + "\n" + (cf.region ?? "") + "\n" + (cf.city ?? "") : "";
}
export function headAgain(buf) {
  const { written } = encoder.encodeInto(unsent, buf);
  unsent = null;
  return written;
}
// The headers of the last response, for `respondAgain`. Safe to share:
// a Response copies its init's headers.
let last = null;
export function respond(status, head, repeated, body) {
  last = null;
  // Header names are ours (lower-case tokens, none an Object.prototype
  // member), so a plain object is a safe init; a repeated name (two
  // cookies) needs a real Headers to append to.
  const headers = repeated ? new Headers() : {};
  for (let at = 0; at < head.length; ) {
    const colon = head.indexOf(":", at);
    let end = head.indexOf("\n", colon);
    if (end < 0) end = head.length;
    if (repeated) headers.append(head.slice(at, colon), head.slice(colon + 1, end));
    else headers[head.slice(at, colon)] = head.slice(colon + 1, end);
    at = end + 1;
  }
  last = headers;
  return respondAgain(status, body);
}
// A response with the same headers as the last one: a busy link answers
// the same redirect over and over, and this skips decoding and splitting
// its head each time.
export function respondAgain(status, body) {
  // `body` is a view of wasm memory, valid only during this call.
  return new Response(body ? body.slice() : null, { status, headers: last });
}
export function fail() {
  return new Response("Internal Server Error", { status: 500 });
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = head)]
    fn js_head(req: &web_sys::Request, names: &JsValue, buf: &mut [u8]) -> i32;
    #[wasm_bindgen(js_name = headAgain)]
    fn js_head_again(buf: &mut [u8]) -> u32;
    #[wasm_bindgen(js_name = place)]
    fn js_place(req: &web_sys::Request) -> String;
    #[wasm_bindgen(js_name = respond, catch)]
    fn js_respond(status: u16, head: &str, repeated: bool, body: Option<&[u8]>) -> Result<web_sys::Response, JsValue>;
    #[wasm_bindgen(js_name = respondAgain, catch)]
    fn js_respond_again(status: u16, body: Option<&[u8]>) -> Result<web_sys::Response, JsValue>;
    #[wasm_bindgen(js_name = fail)]
    fn js_fail() -> web_sys::Response;
}

// `head` skips the last nine names for GET and HEAD, and the last six
// outside /hooks/.
const _: () = assert!(httpx::BODY_ONLY_HEADERS == 9 && httpx::SIGNATURE_HEADERS == 6);

/// The client address Cloudflare sets.
const CLIENT_IP: &str = "cf-connecting-ip";

thread_local! {
    /// The request headers to read, as a JS array made once per isolate,
    /// the body-only ones last (see `head`). Not `host`: the URL carries it
    /// (see [`parse_head`]), and every `get` is a call into the runtime.
    static HEADER_NAMES: JsValue = httpx::REQUEST_HEADERS
        .iter()
        .filter(|n| **n != "host")
        .map(|n| JsValue::from_str(n))
        .collect::<Array>()
        .into();

    /// Where `head` writes each request head: reused, so reading one
    /// allocates nothing.
    static HEAD_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; HEAD_BUF_LEN]);

    /// See [`ResponseHeads`]: reused, so a response head allocates nothing.
    static RESPONSE_HEADS: RefCell<ResponseHeads> = RefCell::default();
}

/// Room for a typical head (a long user agent, cookies, a referrer); a
/// larger one grows the buffer for its request only.
const HEAD_BUF_LEN: usize = 2048;

/// The request from its head (written by the `head` snippet), and the
/// country the edge sent with it.
fn read_head(raw: &web_sys::Request) -> Result<(Head, Option<String>), Error> {
    HEAD_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let n = HEADER_NAMES.with(|names| js_head(raw, names, &mut buf));
        let len = match usize::try_from(n) {
            Ok(len) => len,
            Err(_) => {
                buf.resize(n.unsigned_abs() as usize, 0);
                js_head_again(&mut buf) as usize
            }
        };
        let head = std::str::from_utf8(&buf[..len.min(buf.len())]).map_err(|_| Error::new(ErrorKind::BadRequest, "bad request: invalid head"));
        let parsed = head.and_then(parse_head);
        if buf.len() > HEAD_BUF_LEN {
            buf.truncate(HEAD_BUF_LEN);
            buf.shrink_to_fit();
        }
        parsed
    })
}

/// The Workers `fetch` entry point behind [`crate::export!`]: reads the
/// request, runs `handler` and answers.
///
/// The handler's future is polled once right here. One that finishes
/// without waiting on I/O (a smart-link redirect served from the
/// in-isolate cache) is answered synchronously, skipping the promise and
/// the executor round trip; otherwise the half-run future is handed to
/// the executor (re-polling a future with a new waker is part of the
/// `Future` contract, so nothing is lost).
pub fn serve<F, Fut>(raw: web_sys::Request, env: worker::Env, ctx: worker::worker_sys::Context, handler: F) -> JsValue
where
    F: FnOnce(Request, Platform) -> Fut + 'static,
    Fut: Future<Output = Response> + 'static,
{
    let head = read_head(&raw);
    let mut fut = Box::pin(async move {
        let (head, country) = match head {
            Ok(head) => head,
            Err(e) => return httpx::json_error(&e),
        };
        let form = httpx::is_form(head.2.get(http::header::CONTENT_TYPE).map(HeaderValue::as_bytes));
        let req = match read_request(head, &raw).await {
            Ok(req) => req,
            Err(e) => return httpx::early_error(&e, form),
        };
        let platform = Platform::new(env, ctx, raw, country);
        handler(req, platform).await
    });
    match fut.as_mut().poll(&mut TaskContext::from_waker(Waker::noop())) {
        Poll::Ready(res) => into_js(res).into(),
        Poll::Pending => future_to_promise(async move { Ok(into_js(fut.await).into()) }).into(),
    }
}

/// The Workers `scheduled` entry point behind [`crate::export_scheduled!`]
/// (a Cron Trigger): runs `job` with a platform that has no request (the
/// client is unknown, `place` empty) and returns its promise; a failed job
/// rejects it, so the run shows as failed in the platform's cron history.
pub fn serve_scheduled<F, Fut>(env: worker::Env, ctx: worker::worker_sys::Context, job: F) -> JsValue
where
    F: FnOnce(Platform) -> Fut + 'static,
    Fut: Future<Output = Result<(), Error>> + 'static,
{
    future_to_promise(async move {
        // A stand-in request: nothing reads it on this path (no headers,
        // no `cf`), and the fetch path's `Platform` stays as it is.
        let raw = web_sys::Request::new_with_str("https://scheduled.invalid/")?;
        let platform = Platform::new(env, ctx, raw, None);
        match job(platform).await {
            Ok(()) => Ok(JsValue::UNDEFINED),
            Err(e) => Err(js_sys::Error::new(&e.to_string()).into()),
        }
    })
    .into()
}

/// Builds our request from the head string and, when there is one, the
/// body (capped at the route's [`httpx::body_limit`]).
async fn read_request((method, uri, headers): Head, raw: &web_sys::Request) -> Result<Request, Error> {
    // The runtime refuses a body on GET and HEAD, so those skip the call.
    let stream = if method == Method::GET || method == Method::HEAD { None } else { raw.body() };
    let body = match stream {
        Some(stream) => read_body(raw, stream, httpx::body_limit(uri.path())).await?,
        None => Vec::new(),
    };
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Ok(req)
}

type Head = (Method, Uri, HeaderMap);

/// Method, URI and headers from the head string, and the country.
fn parse_head(head: &str) -> Result<(Head, Option<String>), Error> {
    let bad = |what: &str| Error::new(ErrorKind::BadRequest, format!("bad request: invalid {what}"));
    let mut lines = Lines(head);
    let method = Method::from_bytes(lines.next().unwrap_or("").as_bytes()).map_err(|_| bad("method"))?;
    let (host, path) = split_url(lines.next().unwrap_or(""));
    let country = crate::geo::country_code(lines.next().unwrap_or(""));
    let uri = Uri::try_from(path).map_err(|_| bad("URL"))?;
    let mut headers = HeaderMap::new();
    // The runtime's URL is built from the Host header.
    if let Ok(host) = HeaderValue::from_str(host) {
        headers.insert(http::header::HOST, host);
    }
    for line in lines {
        let colon = find(line.as_bytes(), b":").ok_or_else(|| bad("header"))?;
        let name = HeaderName::from_bytes(&line.as_bytes()[..colon]).map_err(|_| bad("header name"))?;
        let value = header_value(&line[colon + 1..]).ok_or_else(|| bad("header value"))?;
        headers.append(name, value);
    }
    Ok(((method, uri, headers), country))
}

/// The `\n`-separated lines of a string.
struct Lines<'a>(&'a str);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        let end = find(self.0.as_bytes(), b"\n").unwrap_or(self.0.len());
        let line = &self.0[..end];
        self.0 = self.0.get(end + 1..).unwrap_or("");
        Some(line)
    }
}

/// Where `needle` first occurs in `hay`. A plain byte scan: `str::find`
/// and `split` set up a searcher per call, which showed in profiles.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Header values are byte strings; JS hands them over as one char per
/// byte, so anything beyond ASCII is mapped back to its byte.
fn header_value(v: &str) -> Option<HeaderValue> {
    if v.is_ascii() {
        return HeaderValue::from_str(v).ok();
    }
    let bytes: Option<Vec<u8>> = v.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
    HeaderValue::from_bytes(&bytes?).ok()
}

/// `https://host:port/p?q` → (`host:port`, `/p?q`).
fn split_url(url: &str) -> (&str, &str) {
    let start = find(url.as_bytes(), b"://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    match find(rest.as_bytes(), b"/") {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    }
}

async fn read_body(raw: &web_sys::Request, stream: web_sys::ReadableStream, limit: usize) -> Result<Vec<u8>, Error> {
    let declared = raw.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(httpx::too_large_for(limit));
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(1024).min(limit));
    let unreadable = |e: JsValue| Error::new(ErrorKind::BadRequest, format!("could not read the body: {}", js_message(&e)));
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(unreadable)?;
        if js_sys::Reflect::get(&chunk, &JsValue::from_str("done")).map_err(unreadable)?.is_truthy() {
            break;
        }
        let bytes = Uint8Array::new(&js_sys::Reflect::get(&chunk, &JsValue::from_str("value")).map_err(unreadable)?);
        let len = bytes.length() as usize;
        if body.len() + len > limit {
            // Stop reading; the runtime discards the rest.
            let _ = reader.cancel();
            return Err(httpx::too_large_for(limit));
        }
        let at = body.len();
        body.resize(at + len, 0);
        bytes.copy_to(&mut body[at..]);
    }
    Ok(body)
}

fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map_or_else(|| "unknown error".to_owned(), |e| String::from(e.message()))
}

/// D1 puts SQLite's own message (`CHECK constraint failed: …`) in the
/// error's `cause` when there is one.
fn d1_message(e: &JsValue) -> String {
    let cause = e.dyn_ref::<js_sys::Error>().map(|e| e.cause()).filter(|c| c.is_instance_of::<js_sys::Error>());
    match cause {
        Some(c) => format!("{}: {}", js_message(e), js_message(&c)),
        None => js_message(e),
    }
}

/// The response head [`into_js`] is building, the last one the `respond`
/// snippet took, and whether the snippet still holds that one's headers.
#[derive(Default)]
struct ResponseHeads {
    head: String,
    last: String,
    kept: bool,
}

/// Our response as a JS one. Its head crosses as one string, unless it
/// is the same as the last one's (a busy smart link), which the snippet
/// still holds. Never fails: a conversion problem becomes a logged bare
/// 500.
fn into_js(res: Response) -> web_sys::Response {
    let (parts, body) = res.into_parts();
    // A null-body status (204, 304) must not carry even an empty body.
    let body = (!body.is_empty()).then_some(body.as_slice());
    let status = parts.status.as_u16();
    let answer = RESPONSE_HEADS.with(|heads| {
        let ResponseHeads { head, last, kept } = &mut *heads.borrow_mut();
        head.clear();
        for (name, value) in &parts.headers {
            // Only ASCII crosses faithfully as a JS string; all our header
            // values are (a `HeaderValue` holds no control characters).
            let bytes = value.as_bytes();
            let (true, Ok(v)) = (bytes.is_ascii(), std::str::from_utf8(bytes)) else { continue };
            if !head.is_empty() {
                head.push('\n');
            }
            head.push_str(name.as_str());
            head.push(':');
            head.push_str(v);
        }
        if *kept && head == last {
            return js_respond_again(status, body);
        }
        let repeated = parts.headers.keys_len() != parts.headers.len();
        let answer = js_respond(status, head, repeated, body);
        // The snippet keeps the headers only when it got through them.
        *kept = answer.is_ok();
        std::mem::swap(head, last);
        answer
    });
    answer.unwrap_or_else(|e| {
        worker::console_error!("response conversion: {}", js_message(&e));
        js_fail()
    })
}

#[derive(Clone)]
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
        let bytes =
            if v.is_instance_of::<Array>() { Array::from(&v).iter().map(|b| b.as_f64().unwrap_or(0.0) as u8).collect() } else { Uint8Array::new(&v).to_vec() };
        return Cell::Blob(bytes);
    }
    Cell::Null
}

impl Db for D1 {
    async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        let db = self.db()?;
        let rows = self.prepare(&db, sql, params)?.raw_js_value().await.map_err(|e| err("D1 query", e))?;
        Ok(rows.into_iter().map(|row| Row(Array::from(&row).iter().map(from_js).collect())).collect())
    }

    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Error> {
        let db = self.db()?;
        let result = self.prepare(&db, sql, params)?.run().await.map_err(|e| err("D1 execute", e))?;
        let meta = result.meta().map_err(|e| err("D1 meta", e))?;
        Ok(meta.and_then(|m| m.changes).unwrap_or(0) as u64)
    }

    async fn batch(&self, stmts: &[Stmt<'_>]) -> Result<Vec<Vec<Row>>, Error> {
        let db = self.db()?;
        let list = Array::new_with_length(stmts.len() as u32);
        for (i, s) in stmts.iter().enumerate() {
            list.set(i as u32, self.prepare(&db, s.sql, s.params)?.inner().into());
        }
        // Called on the binding itself rather than through `worker`'s
        // wrapper, which keeps each result's rows out of reach; D1 runs a
        // batch as one implicit transaction.
        let sys: &worker::worker_sys::types::D1Database = db.as_ref().unchecked_ref();
        let failed = |e: JsValue| Error::unavailable(format_args!("D1 batch: {}", d1_message(&e)));
        let results = JsFuture::from(sys.batch(list).map_err(failed)?).await.map_err(failed)?;
        let key = JsValue::from_str("results");
        Ok(Array::from(&results)
            .iter()
            .map(|r| match js_sys::Reflect::get(&r, &key) {
                Ok(rows) if rows.is_instance_of::<Array>() => {
                    Array::from(&rows).iter().map(|row| Row(js_sys::Object::values(row.unchecked_ref()).iter().map(from_js).collect())).collect()
                }
                _ => Vec::new(),
            })
            .collect())
    }
}

#[derive(Clone)]
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

impl Platform {
    fn new(env: worker::Env, ctx: worker::worker_sys::Context, raw: web_sys::Request, country: Option<String>) -> Platform {
        Platform { db: D1(env.clone()), kv: WorkersKv(env.clone()), env, ctx: Rc::new(worker::Context::new(ctx)), client: OnceCell::new(), raw, country }
    }

    /// The location fields of `request.cf`: country, region, city.
    fn cf_fields(&self) -> [Option<String>; 3] {
        let place = js_place(&self.raw);
        let mut f = place.splitn(3, '\n').map(|f| (!f.is_empty()).then(|| f.to_owned()));
        [f.next().flatten(), f.next().flatten(), f.next().flatten()]
    }
}

impl Env for Platform {
    type Db = D1;
    type Kv = WorkersKv;
    type Later = Platform;

    fn db(&self) -> &D1 {
        &self.db
    }
    fn kv(&self) -> &WorkersKv {
        &self.kv
    }
    fn later(&self) -> Platform {
        self.clone()
    }
    fn var(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_uppercase();
        self.env.secret(&name).map(|s| s.to_string()).or_else(|_| self.env.var(&name).map(|v| v.to_string())).ok()
    }
    fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }
    fn random(&self, buf: &mut [u8]) -> Result<(), Error> {
        getrandom::getrandom(buf).map_err(|e| Error::internal(format_args!("getrandom: {e}")))
    }
    fn client(&self) -> &Client {
        self.client.get_or_init(|| Client { ip: self.raw.headers().get(CLIENT_IP).ok().flatten().and_then(|v| parse_client_addr(&v)) })
    }
    fn place(&self) -> Place {
        // What is stored (signups) comes from `request.cf` first: the
        // edge sets it in every case, the header only with geolocation on.
        let [country, region, city] = self.cf_fields();
        Place { country: country.or_else(|| self.country.clone()), region, city }.sanitized()
    }
    fn country(&self) -> Option<String> {
        self.country.clone().or_else(|| self.cf_fields()[0].as_deref().and_then(crate::geo::country_code))
    }
    fn geo_attribution(&self) -> Option<(&'static str, &'static str)> {
        None
    }
    async fn fetch(&self, req: Request) -> Result<Response, Error> {
        send(req).await
    }
    async fn fetch_untrusted(&self, req: Request, timeout_ms: u32) -> Result<Response, Error> {
        send_untrusted(req, timeout_ms).await
    }
    async fn sleep_ms(&self, ms: u32) {
        worker::Delay::from(std::time::Duration::from_millis(u64::from(ms))).await;
    }
    fn fetch_later(&self, req: Request, on_failure: Vec<crate::sql::OwnedStmt>) {
        let db = D1(self.env.clone());
        self.ctx.wait_until(async move {
            let failure = match send(req).await {
                Ok(res) if res.status().is_success() => return,
                Ok(res) => format!("answered {}", res.status()),
                Err(e) => e.to_string(),
            };
            worker::console_error!("deferred fetch: {failure}");
            if let Err(e) = crate::env::write_owned(&db, &on_failure).await {
                worker::console_error!("deferred fetch: undoing: {e}");
            }
        });
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
    fn log_info(&self, msg: &str) {
        worker::console_log!("{msg}");
    }
}

/// Outbound HTTP through the runtime's `fetch`.
async fn send(req: Request) -> Result<Response, Error> {
    let out = outgoing(req, worker::RequestRedirect::Follow)?;
    let mut res = worker::Fetch::Request(out).send().await.map_err(|e| err("fetch", e))?;
    let bytes = res.bytes().await.map_err(|e| err("fetch body", e))?;
    response_head(&res).body(bytes).map_err(|e| err("fetch response", e))
}

/// Outbound HTTP to an untrusted address (see [`Env::fetch_untrusted`]).
async fn send_untrusted(req: Request, timeout_ms: u32) -> Result<Response, Error> {
    let abort = worker::AbortController::default();
    let signal = abort.signal();
    let call = async {
        // Manual: a 3xx is the answer, so a redirect cannot point the
        // call somewhere its checks never saw.
        let out = outgoing(req, worker::RequestRedirect::Manual)?;
        let res = worker::Fetch::Request(out).send_with_signal(&signal).await.map_err(|e| err("fetch", e))?;
        let body = read_capped(&res).await?;
        response_head(&res).body(body).map_err(|e| err("fetch response", e))
    };
    match within(call, Timer::start(timeout_ms)).await {
        Some(answer) => answer,
        None => {
            // Dropping the call leaves the subrequest running; this ends it.
            abort.abort();
            Err(Error::unavailable("fetch: timed out"))
        }
    }
}

/// Resolves after a while; the timer is cleared if dropped before.
///
/// Not `worker::Delay`: that keeps the waker of its first poll, and
/// [`serve`] makes the first poll with a no-op waker, so a timer started
/// before the handler's first wait would never wake the request.
/// `JsFuture` takes the waker of every poll.
struct Timer {
    fired: JsFuture,
    id: Option<i32>,
}

impl Timer {
    fn start(ms: u32) -> Timer {
        let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let mut id = None;
        let fired = js_sys::Promise::new(&mut |resolve, _| {
            id = scope.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, i32::try_from(ms).unwrap_or(i32::MAX)).ok();
        });
        Timer { fired: JsFuture::from(fired), id }
    }
}

impl Future for Timer {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = &mut *self;
        // Without a timer (setTimeout refused) it ends at once: better
        // than a call that may never end.
        if this.id.is_none() {
            return Poll::Ready(());
        }
        std::pin::Pin::new(&mut this.fired).poll(cx).map(|_| this.id = None)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            js_sys::global().unchecked_into::<web_sys::WorkerGlobalScope>().clear_timeout_with_handle(id);
        }
    }
}

/// `fut`'s output, or `None` if `timer` finishes first (`fut` is then
/// dropped unfinished).
async fn within<F: Future>(fut: F, timer: impl Future<Output = ()>) -> Option<F::Output> {
    let (mut fut, mut timer) = (pin!(fut), pin!(timer));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

fn outgoing(req: Request, redirect: worker::RequestRedirect) -> Result<worker::Request, Error> {
    let (parts, body) = req.into_parts();
    let headers = worker::Headers::new();
    for (name, value) in &parts.headers {
        headers.append(name.as_str(), value.to_str().unwrap_or("")).map_err(|e| err("fetch header", e))?;
    }
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::from(parts.method.as_str().to_owned())).with_headers(headers).with_redirect(redirect);
    if !body.is_empty() {
        init.with_body(Some(Uint8Array::from(body.as_slice()).into()));
    }
    worker::Request::new_with_init(&parts.uri.to_string(), &init).map_err(|e| err("fetch", e))
}

fn response_head(res: &worker::Response) -> http::response::Builder {
    let mut builder = http::Response::builder().status(res.status_code());
    for (name, value) in res.headers().entries() {
        builder = builder.header(name, value);
    }
    builder
}

/// Up to [`MAX_UNTRUSTED_BODY`] of `res`'s body; the rest is never read.
async fn read_capped(res: &worker::Response) -> Result<Vec<u8>, Error> {
    let stream = match res.body() {
        worker::ResponseBody::Empty => return Ok(Vec::new()),
        worker::ResponseBody::Body(bytes) => return Ok(bytes[..bytes.len().min(MAX_UNTRUSTED_BODY)].to_vec()),
        worker::ResponseBody::Stream(stream) => stream,
    };
    let failed = |e: JsValue| Error::unavailable(format_args!("fetch body: {}", js_message(&e)));
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut body = Vec::new();
    while body.len() < MAX_UNTRUSTED_BODY {
        let chunk = JsFuture::from(reader.read()).await.map_err(failed)?;
        if js_sys::Reflect::get(&chunk, &JsValue::from_str("done")).map_err(failed)?.is_truthy() {
            return Ok(body);
        }
        let bytes = Uint8Array::new(&js_sys::Reflect::get(&chunk, &JsValue::from_str("value")).map_err(failed)?);
        let take = (bytes.length() as usize).min(MAX_UNTRUSTED_BODY - body.len());
        let at = body.len();
        body.resize(at + take, 0);
        bytes.subarray(0, take as u32).copy_to(&mut body[at..]);
    }
    // Tells the runtime to drop the rest rather than buffer it.
    let _ = reader.cancel();
    Ok(body)
}
