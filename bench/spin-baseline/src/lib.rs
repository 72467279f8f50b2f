//! Bench only: the floors `make bench` compares Stagedoor's Spin components
//! with, the same four as `bench/baselines/workers/*.js`, in one tiny
//! component routed by path (the host instantiates it per request, as it
//! does every component). Never deployed.
//!
//! - `GET /bench/redirect`: the same 302 a smart link answers, no storage.
//! - `GET /bench/kv-redirect`: read the target from key-value, then 302
//!   (`PUT` stores the target first).
//! - `POST /bench/db-insert`: write the body as one SQLite row.
//! - `GET /bench/db-read`: read one capture page row, answer small HTML.
#![cfg(feature = "spin")]

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::key_value::Store;
use spin_sdk::sqlite::{Connection, Value};

const TARGET: &str = "https://open.spotify.com/album/stagedoor-bench";
const KV_KEY: &str = "bench:redirect";

#[spin_sdk::http_component]
fn handle(req: Request) -> Response {
    let answer = match req.path() {
        "/bench/redirect" => Ok(redirect(TARGET)),
        "/bench/kv-redirect" => kv_redirect(&req),
        "/bench/db-insert" => db_insert(&req),
        "/bench/db-read" => db_read(),
        _ => Ok(Response::new(404, "no such baseline")),
    };
    answer.unwrap_or_else(|e| Response::new(500, e))
}

fn redirect(target: &str) -> Response {
    Response::builder().status(302).header("location", target).header("cache-control", "no-store").build()
}

fn kv_redirect(req: &Request) -> Result<Response, String> {
    let store = Store::open_default().map_err(|e| format!("kv open: {e:?}"))?;
    if *req.method() == Method::Put {
        store.set(KV_KEY, req.body()).map_err(|e| format!("kv set: {e:?}"))?;
        return Ok(Response::new(204, ()));
    }
    match store.get(KV_KEY).map_err(|e| format!("kv get: {e:?}"))? {
        Some(target) => Ok(redirect(&String::from_utf8_lossy(&target))),
        None => Ok(Response::new(404, "no target")),
    }
}

fn db_insert(req: &Request) -> Result<Response, String> {
    let db = Connection::open_default().map_err(|e| format!("sqlite open: {e:?}"))?;
    let body = String::from_utf8_lossy(req.body()).into_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    db.execute("INSERT INTO bench_rows (body, at) VALUES (?, ?)", &[Value::Text(body), Value::Integer(now)]).map_err(|e| format!("sqlite: {e:?}"))?;
    Ok(Response::builder().status(200).header("content-type", "application/json").body("{\"status\":\"ok\"}").build())
}

fn db_read() -> Result<Response, String> {
    let db = Connection::open_default().map_err(|e| format!("sqlite open: {e:?}"))?;
    let result = db.execute("SELECT title FROM capture_pages WHERE slug = ?", &[Value::Text("demo".to_owned())]).map_err(|e| format!("sqlite: {e:?}"))?;
    let Some(title) = result.rows().next().and_then(|r| r.get::<&str>("title").map(escape)) else {
        return Ok(Response::new(404, "no page"));
    };
    let html = format!("<!doctype html><title>{title}</title><h1>{title}</h1>");
    Ok(Response::builder().status(200).header("content-type", "text/html; charset=utf-8").body(html).build())
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' | '<' | '>' | '"' => format!("&#{};", c as u32),
            c => c.to_string(),
        })
        .collect()
}
