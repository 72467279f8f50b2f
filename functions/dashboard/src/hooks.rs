//! `/api/v1/app/webhooks`: the artist's outbound webhook endpoints, their
//! messages and delivery attempts (README "Webhooks"). For the artist's
//! own systems, so it takes an artist API token (`Authorization: Bearer`),
//! like the links API, and speaks JSON only.
//!
//! Another artist's endpoint or message answers exactly like a missing one.

use serde_json::{json, Value};
use shared::auth::{self, Tenant};
use shared::http::header::{self, HeaderValue};
use shared::http::request::Parts;
use shared::http::{Method, StatusCode};
use shared::outbox::{self, Settings, EVENT_TYPES};
use shared::sql::{Param, Row};
use shared::webhook::Secret;
use shared::{crypto::Keys, httpx, Env, Error, ErrorKind, Response};

pub const PREFIX: &str = "/api/v1/app/webhooks";

/// Endpoints per artist: enough for a CRM, a bot and a spreadsheet, few
/// enough that one fan event stays a handful of rows.
const MAX_ENDPOINTS: i64 = 10;
/// How long the previous secret keeps signing after a rotation
/// (`webhook_rotation_overlap_hours`), so receivers can switch over.
const DEFAULT_OVERLAP_HOURS: i64 = 24;
/// Messages per page of a listing, newest first.
const PAGE: i64 = 100;

pub async fn handle(parts: &Parts, body: &[u8], env: &impl Env) -> Response {
    let result = async {
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let token = value.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim());
        let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 256) else {
            return Err(Error::new(ErrorKind::Unauthorized, "Send an artist API token as `Authorization: Bearer <token>` (create one under Tokens)."));
        };
        let db =
            auth::token_tenant(env, token).await?.ok_or_else(|| Error::new(ErrorKind::Unauthorized, "This API token is not valid or has been revoked."))?;
        route(parts, body, env, &db).await
    }
    .await;
    result.unwrap_or_else(|e| {
        if e.is_server_fault() {
            env.log_error(&format!("webhooks api: {e}"));
        }
        let mut res = httpx::json_error(&e);
        if e.kind == ErrorKind::Unauthorized {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    })
}

async fn route<E: Env>(parts: &Parts, body: &[u8], env: &E, db: &Tenant<'_, E>) -> Result<Response, Error> {
    let rest = parts.uri.path().strip_prefix(PREFIX).unwrap_or("").trim_matches('/');
    let segs: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
    let m = &parts.method;
    match (segs.as_slice(), m) {
        ([], &Method::GET) => list(db).await,
        ([], &Method::POST) => create(parts, body, env, db).await,
        ([], _) => Err(not_allowed("GET, POST")),
        ([id], &Method::GET) => Ok(json_ok(StatusCode::OK, endpoint_json(&one(db, id).await?))),
        ([id], &Method::PATCH) => update(parts, body, env, db, id).await,
        ([id], &Method::DELETE) => delete(db, id).await,
        ([_], _) => Err(not_allowed("GET, PATCH, DELETE")),
        ([id, "rotate"], &Method::POST) => rotate(env, db, id).await,
        ([id, "test"], &Method::POST) => test(env, db, id).await,
        ([id, "messages"], &Method::GET) => messages(parts, db, id).await,
        ([id, "messages", msg], &Method::GET) => message(db, id, msg).await,
        ([id, "messages", msg, "replay"], &Method::POST) => replay(env, db, id, msg).await,
        ([_, "rotate" | "test"] | [_, "messages", _, "replay"], _) => Err(not_allowed("POST")),
        ([_, "messages"] | [_, "messages", _], _) => Err(not_allowed("GET")),
        _ => Err(missing()),
    }
}

fn missing() -> Error {
    Error::new(ErrorKind::NotFound, "No such webhook endpoint or message.")
}

fn not_allowed(allow: &'static str) -> Error {
    Error::new(ErrorKind::MethodNotAllowed, format!("This address accepts {allow}."))
}

fn json_ok(status: StatusCode, v: Value) -> Response {
    httpx::respond(status, httpx::JSON, v.to_string())
}

fn iso(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(crate::fans::iso(Some(ms))))
}

const COLUMNS: &str = "id, url, events, enabled, disabled_reason, failing_since, created_at, updated_at, secret_prev_until";

struct Endpoint {
    id: String,
    url: String,
    events: String,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since: Option<i64>,
    created_at: i64,
    updated_at: i64,
    rotating_until: Option<i64>,
}

fn endpoint_row(mut r: Row) -> Endpoint {
    Endpoint {
        id: r.take_text(0).unwrap_or_default(),
        url: r.take_text(1).unwrap_or_default(),
        events: r.take_text(2).unwrap_or_default(),
        enabled: r.int(3) == Some(1),
        disabled_reason: r.take_text(4),
        failing_since: r.int(5),
        created_at: r.int(6).unwrap_or(0),
        updated_at: r.int(7).unwrap_or(0),
        rotating_until: r.int(8),
    }
}

fn endpoint_json(e: &Endpoint) -> Value {
    json!({
        "id": e.id,
        "url": e.url,
        "events": e.events.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason,
        "failing_since": iso(e.failing_since),
        "previous_secret_signs_until": iso(e.rotating_until),
        "created_at": iso(Some(e.created_at)),
        "updated_at": iso(Some(e.updated_at)),
    })
}

async fn one<E: Env>(db: &Tenant<'_, E>, id: &str) -> Result<Endpoint, Error> {
    let rows = db.query(&format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE artist_id = ?1 AND id = ?2"), &[Param::Text(id)]).await?;
    rows.into_iter().next().map(endpoint_row).ok_or_else(missing)
}

async fn list<E: Env>(db: &Tenant<'_, E>) -> Result<Response, Error> {
    let rows = db.query(&format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE artist_id = ?1 ORDER BY created_at, id"), &[]).await?;
    let all: Vec<Value> = rows.into_iter().map(|r| endpoint_json(&endpoint_row(r))).collect();
    Ok(json_ok(StatusCode::OK, json!({ "endpoints": all, "event_types": EVENT_TYPES })))
}

/// What a create or update asked for; `None` fields were not given.
#[derive(Default)]
struct Input {
    url: Option<String>,
    events: Option<String>,
    enabled: Option<bool>,
}

fn parse_input(parts: &Parts, body: &[u8], env: &impl Env) -> Result<Input, Error> {
    httpx::require_media_type(parts, "application/json")?;
    let v: Value = serde_json::from_slice(body).map_err(|e| Error::new(ErrorKind::BadRequest, format!("The body is not valid JSON: {e}.")))?;
    let obj = v.as_object().ok_or_else(|| Error::new(ErrorKind::BadRequest, "Send a JSON object."))?;
    let mut input = Input::default();
    for (k, v) in obj {
        match k.as_str() {
            "url" => {
                let url = v.as_str().ok_or_else(|| Error::field(ErrorKind::Unprocessable, "url", "url must be a string."))?;
                let checked = outbox::check_endpoint_url(url.trim(), Settings::from_env(env).allow_loopback)
                    .map_err(|why| Error::field(ErrorKind::Unprocessable, "url", format!("The URL {why}.")))?;
                input.url = Some(checked);
            }
            "events" => input.events = Some(parse_events(v)?),
            "enabled" => input.enabled = Some(v.as_bool().ok_or_else(|| Error::field(ErrorKind::Unprocessable, "enabled", "enabled must be true or false."))?),
            other => {
                return Err(Error::new(ErrorKind::Unprocessable, format!("Unknown field \"{other}\": an endpoint has url, events and enabled.")));
            }
        }
    }
    Ok(input)
}

/// `["fan.subscribed", …]` or `"*"` (all) → the stored, space-separated form.
fn parse_events(v: &Value) -> Result<String, Error> {
    let bad = || {
        Error::field(
            ErrorKind::Unprocessable,
            "events",
            format!("events must be \"*\" or a list of: {}.", EVENT_TYPES.iter().filter(|t| **t != "test").copied().collect::<Vec<_>>().join(", ")),
        )
    };
    if v.as_str() == Some("*") {
        return Ok("*".to_owned());
    }
    let list = v.as_array().ok_or_else(bad)?;
    let mut out: Vec<&str> = Vec::with_capacity(list.len());
    for item in list {
        let t = item.as_str().ok_or_else(bad)?;
        if t == "*" {
            return Ok("*".to_owned());
        }
        if t == "test" || !EVENT_TYPES.contains(&t) {
            return Err(bad());
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out.join(" "))
}

async fn create<E: Env>(parts: &Parts, body: &[u8], env: &E, db: &Tenant<'_, E>) -> Result<Response, Error> {
    let input = parse_input(parts, body, env)?;
    let url = input.url.ok_or_else(|| Error::field(ErrorKind::Unprocessable, "url", "url is required: the https:// address to send events to."))?;
    let events = input.events.unwrap_or_else(|| "*".to_owned());
    let id = format!("ep_{}", shared::env::random_id(env)?);
    let secret = Secret::generate(env)?;
    let keys = Keys::from_env(env)?;
    let sealed = outbox::seal_secret(&keys, &id, &secret)?;
    let now = env.now_ms();
    // The cap is checked in the insert itself, so two creates at once
    // can't both pass it.
    let rows = db
        .query(
            "INSERT INTO webhook_endpoints (id, artist_id, url, events, enabled, secret_enc, created_at, updated_at) \
             SELECT ?2, ?1, ?3, ?4, ?5, ?6, ?7, ?7 WHERE (SELECT count(*) FROM webhook_endpoints WHERE artist_id = ?1) < ?8 RETURNING id",
            &[
                Param::Text(&id),
                Param::Text(&url),
                Param::Text(&events),
                Param::Int(i64::from(input.enabled.unwrap_or(true))),
                Param::Text(&sealed),
                Param::Int(now),
                Param::Int(MAX_ENDPOINTS),
            ],
        )
        .await?;
    if rows.is_empty() {
        return Err(Error::new(ErrorKind::Conflict, format!("You have {MAX_ENDPOINTS} endpoints already: delete one first.")));
    }
    let mut v = endpoint_json(&one(db, &id).await?);
    // Shown once: only its ciphertext is kept.
    v["secret"] = Value::String(secret.encode());
    let mut res = json_ok(StatusCode::CREATED, v);
    if let Ok(loc) = HeaderValue::from_str(&format!("{PREFIX}/{id}")) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}

async fn update<E: Env>(parts: &Parts, body: &[u8], env: &E, db: &Tenant<'_, E>, id: &str) -> Result<Response, Error> {
    let input = parse_input(parts, body, env)?;
    one(db, id).await?;
    let now = env.now_ms();
    // Switching an endpoint on starts it afresh: no failing run, no reason.
    db.execute(
        "UPDATE webhook_endpoints SET url = coalesce(?3, url), events = coalesce(?4, events), \
         enabled = coalesce(?5, enabled), \
         disabled_reason = CASE WHEN ?5 = 1 THEN NULL WHEN ?5 = 0 THEN 'artist' ELSE disabled_reason END, \
         failing_since = CASE WHEN ?5 = 1 THEN NULL ELSE failing_since END, updated_at = ?6 \
         WHERE artist_id = ?1 AND id = ?2",
        &[Param::Text(id), input.url.as_deref().into(), input.events.as_deref().into(), input.enabled.into(), Param::Int(now)],
    )
    .await?;
    Ok(json_ok(StatusCode::OK, endpoint_json(&one(db, id).await?)))
}

async fn delete<E: Env>(db: &Tenant<'_, E>, id: &str) -> Result<Response, Error> {
    // Its messages and attempts go with it (foreign keys), in one batch.
    let p = [Param::Text(id)];
    let out = db
        .batch(&[
            ("DELETE FROM webhook_attempts WHERE artist_id = ?1 AND message_id IN (SELECT id FROM webhook_messages WHERE artist_id = ?1 AND endpoint_id = ?2)", &p),
            ("DELETE FROM webhook_messages WHERE artist_id = ?1 AND endpoint_id = ?2", &p),
            ("DELETE FROM webhook_endpoints WHERE artist_id = ?1 AND id = ?2 RETURNING id AS gone", &p),
        ])
        .await?;
    if out.last().is_none_or(Vec::is_empty) {
        return Err(missing());
    }
    Ok(httpx::respond(StatusCode::NO_CONTENT, httpx::JSON, Vec::new()))
}

async fn rotate<E: Env>(env: &E, db: &Tenant<'_, E>, id: &str) -> Result<Response, Error> {
    one(db, id).await?;
    let secret = Secret::generate(env)?;
    let keys = Keys::from_env(env)?;
    let sealed = outbox::seal_secret(&keys, id, &secret)?;
    let now = env.now_ms();
    let hours = env
        .var("webhook_rotation_overlap_hours")
        .and_then(|h| h.trim().parse::<i64>().ok())
        .filter(|h| (0..=24 * 7).contains(h))
        .unwrap_or(DEFAULT_OVERLAP_HOURS);
    db.execute(
        "UPDATE webhook_endpoints SET secret_prev_enc = secret_enc, secret_prev_until = ?4, secret_enc = ?3, updated_at = ?5 \
         WHERE artist_id = ?1 AND id = ?2",
        &[Param::Text(id), Param::Text(&sealed), Param::Int(now + hours * 3_600_000), Param::Int(now)],
    )
    .await?;
    let mut v = endpoint_json(&one(db, id).await?);
    v["secret"] = Value::String(secret.encode());
    Ok(json_ok(StatusCode::OK, v))
}

async fn test<E: Env>(env: &E, db: &Tenant<'_, E>, id: &str) -> Result<Response, Error> {
    let ep = one(db, id).await?;
    if !ep.enabled {
        return Err(Error::new(ErrorKind::Conflict, "This endpoint is switched off: switch it on (PATCH {\"enabled\": true}) to send a test."));
    }
    let cause = format!("test_{}", shared::env::random_id(env)?);
    let rows = db.query(outbox::TEST_EVENT, &[Param::Text(id), Param::Text(&cause), Param::Int(env.now_ms())]).await?;
    let ids = outbox::queued(rows);
    let Some(msg) = ids.first().cloned() else { return Err(missing()) };
    outbox::deliver_later(env, ids);
    Ok(json_ok(StatusCode::ACCEPTED, json!({ "message_id": msg, "status": "pending" })))
}

const MESSAGE_COLUMNS: &str = "id, type, status, attempts, next_at, created_at, delivered_at";

fn message_json(mut r: Row) -> Value {
    let status = r.take_text(2).unwrap_or_default();
    let pending = status == "pending";
    json!({
        "id": r.take_text(0),
        "type": r.take_text(1),
        "status": status,
        "attempts": r.int(3).unwrap_or(0),
        "next_attempt_at": if pending { iso(r.int(4)) } else { Value::Null },
        "created_at": iso(r.int(5)),
        "delivered_at": iso(r.int(6)),
    })
}

async fn messages<E: Env>(parts: &Parts, db: &Tenant<'_, E>, id: &str) -> Result<Response, Error> {
    one(db, id).await?;
    let status = httpx::query_param(&parts.uri, "status");
    if let Some(s) = status.as_deref() {
        if !["pending", "delivered", "failed"].contains(&s) {
            return Err(Error::new(ErrorKind::BadRequest, "status must be pending, delivered or failed."));
        }
    }
    let rows = db
        .query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM webhook_messages WHERE artist_id = ?1 AND endpoint_id = ?2 AND (?3 IS NULL OR status = ?3) \
                 ORDER BY created_at DESC, id LIMIT ?4"
            ),
            &[Param::Text(id), status.as_deref().into(), Param::Int(PAGE)],
        )
        .await?;
    let all: Vec<Value> = rows.into_iter().map(message_json).collect();
    Ok(json_ok(StatusCode::OK, json!({ "messages": all })))
}

async fn message<E: Env>(db: &Tenant<'_, E>, id: &str, msg: &str) -> Result<Response, Error> {
    let rows = db
        .query(
            &format!("SELECT {MESSAGE_COLUMNS}, payload FROM webhook_messages WHERE artist_id = ?1 AND endpoint_id = ?2 AND id = ?3"),
            &[Param::Text(id), Param::Text(msg)],
        )
        .await?;
    let Some(mut row) = rows.into_iter().next() else { return Err(missing()) };
    // Without the fan's address: that is added at sending, never stored.
    let payload: Value = row.take_text(7).and_then(|p| serde_json::from_str(&p).ok()).unwrap_or(Value::Null);
    row.0.truncate(7);
    let mut v = message_json(row);
    v["payload"] = payload;
    let attempts = db
        .query("SELECT at, status, latency_ms, answer FROM webhook_attempts WHERE artist_id = ?1 AND message_id = ?2 ORDER BY at, id", &[Param::Text(msg)])
        .await?;
    v["attempts_log"] =
        attempts.into_iter().map(|mut a| json!({ "at": iso(a.int(0)), "status": a.int(1), "latency_ms": a.int(2), "answer": a.take_text(3) })).collect();
    Ok(json_ok(StatusCode::OK, v))
}

async fn replay<E: Env>(env: &E, db: &Tenant<'_, E>, id: &str, msg: &str) -> Result<Response, Error> {
    let ep = one(db, id).await?;
    if !ep.enabled {
        return Err(Error::new(ErrorKind::Conflict, "This endpoint is switched off: switch it on (PATCH {\"enabled\": true}) before replaying."));
    }
    // Same message, same webhook-id: receivers that saw it already can
    // tell. A message still pending is due at once.
    let rows = db
        .query(
            "UPDATE webhook_messages SET status = 'pending', attempts = 0, next_at = ?4, lease_until = 0 \
             WHERE artist_id = ?1 AND endpoint_id = ?2 AND id = ?3 AND lease_until <= ?4 RETURNING id",
            &[Param::Text(id), Param::Text(msg), Param::Int(env.now_ms())],
        )
        .await?;
    let ids = outbox::queued(rows);
    if ids.is_empty() {
        let exists =
            db.query("SELECT 1 FROM webhook_messages WHERE artist_id = ?1 AND endpoint_id = ?2 AND id = ?3", &[Param::Text(id), Param::Text(msg)]).await?;
        return Err(if exists.is_empty() {
            missing()
        } else {
            Error::new(ErrorKind::Conflict, "This message is being sent right now: try again in a minute.")
        });
    }
    outbox::deliver_later(env, ids);
    Ok(json_ok(StatusCode::ACCEPTED, json!({ "message_id": msg, "status": "pending" })))
}

#[cfg(test)]
mod tests;
