//! Outbound webhooks: the outbox and its delivery (README "Webhooks").
//!
//! Nothing is lost: an event is a `webhook_messages` row written by a
//! statement from this module inside the same atomic batch as the change
//! it reports, one row per endpoint that wants it. The first attempt runs
//! right after the response ([`deliver_later`]); retries are the `jobs`
//! function's ([`deliver`]), on the Standard Webhooks schedule. A sender
//! claims rows with a lease, so two runs never send one message at once.
//!
//! Payloads are built by SQLite (`json_object`) from the rows as the batch
//! leaves them, so the hot paths never serialise JSON themselves. They
//! hold no address: a fan's email is decrypted at delivery and added to
//! `data`, so the outbox keeps no second copy of it and erasing the fan
//! (which deletes their messages) leaves nothing behind.

use std::borrow::Cow;

use crate::crypto::Keys;
use crate::sql::{Param, Row, Stmt};
use crate::webhook::Secret;
use crate::{Db, Env, Error};

/// Every event type an endpoint can ask for.
pub const EVENT_TYPES: &[&str] =
    &["fan.subscribed", "fan.confirmed", "fan.unsubscribed", "fan.bounced", "fan.complained", "fan.erased", "link.created", "link.updated", "test"];

/// Column returned by every queueing statement: the new message's id.
pub const RETURNED: &str = "hook_msg";

// An endpoint wants `$t` when it listed it or asked for everything.
macro_rules! wants {
    ($t:literal) => {
        concat!("e.enabled = 1 AND (e.events = '*' OR instr(' ' || e.events || ' ', ' ' || ", $t, " || ' ') > 0)")
    };
}

macro_rules! iso {
    ($ms:literal) => {
        concat!("strftime('%Y-%m-%dT%H:%M:%fZ', ", $ms, " / 1000.0, 'unixepoch')")
    };
}

/// Queues the fan event recorded as consent event `?2` of artist `?1`, at
/// `?3` (ms). The consent event's kind names the type (`subscribe` and
/// `request` are `fan.subscribed`, `confirm` `fan.confirmed`, and so on);
/// kinds no endpoint can ask for queue nothing, as does a consent event
/// that this batch did not write (signup writes one only when something
/// changed). Restricted fans are left out (README "Fan rights").
/// Run it after the statements that change the fan: `data` is the fan as
/// they leave it.
pub const FAN_EVENT: &str = concat!(
    "INSERT INTO webhook_messages (id, artist_id, endpoint_id, event_id, type, fan_id, payload, next_at, created_at) ",
    "SELECT 'msg_' || lower(hex(randomblob(16))), e.artist_id, e.id, ev.id, ev.type, f.id, ",
    "json_object('type', ev.type, 'timestamp', ",
    iso!("?3"),
    ", 'data', json_object('id', f.id, 'status', f.status, 'country', f.country, 'region', f.region, 'city', f.city, ",
    "'capture_page', (SELECT slug FROM capture_pages WHERE id = f.source_page_id), 'consent_version', f.consent_version, ",
    "'created_at', ",
    iso!("f.created_at"),
    ", 'subscribed_at', ",
    iso!("f.subscribed_at"),
    ", 'confirmed_at', ",
    iso!("f.confirmed_at"),
    ", 'unsubscribed_at', ",
    iso!("f.unsubscribed_at"),
    ")), ?3, ?3 ",
    "FROM (SELECT id, fan_id, CASE kind WHEN 'subscribe' THEN 'fan.subscribed' WHEN 'request' THEN 'fan.subscribed' ",
    "WHEN 'confirm' THEN 'fan.confirmed' WHEN 'unsubscribe' THEN 'fan.unsubscribed' WHEN 'bounce' THEN 'fan.bounced' ",
    "WHEN 'complaint' THEN 'fan.complained' END AS type FROM consent_events WHERE id = ?2 AND artist_id = ?1) ev ",
    "JOIN fans f ON f.id = ev.fan_id AND f.artist_id = ?1 ",
    "JOIN webhook_endpoints e ON e.artist_id = ?1 ",
    "WHERE ev.type IS NOT NULL AND ",
    wants!("ev.type"),
    " AND NOT EXISTS (SELECT 1 FROM fan_restrictions r WHERE r.fan_id = f.id) ",
    "ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id AS hook_msg"
);

/// Queues `fan.erased` for fan `?3` of artist `?1`, caused by erasure `?2`,
/// at `?4`. `data` is the fan's id alone: the artist's system learnt it
/// from earlier events, and nothing else about the fan may remain. The row
/// names no fan (`fan_id` NULL), so the erasure that follows keeps it.
pub const FAN_ERASED: &str = concat!(
    "INSERT INTO webhook_messages (id, artist_id, endpoint_id, event_id, type, fan_id, payload, next_at, created_at) ",
    "SELECT 'msg_' || lower(hex(randomblob(16))), e.artist_id, e.id, ?2, 'fan.erased', NULL, ",
    "json_object('type', 'fan.erased', 'timestamp', ",
    iso!("?4"),
    ", 'data', json_object('id', ?3)), ?4, ?4 ",
    "FROM webhook_endpoints e WHERE e.artist_id = ?1 AND ",
    wants!("'fan.erased'"),
    " ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id AS hook_msg"
);

/// Queues `?4` (`link.created` or `link.updated`) for the link with slug
/// `?3` of artist `?1`, caused by change `?2` (a fresh id per save), at
/// `?5`, with the link as saved. Run it right after the statement that
/// saves the link, in the same batch: `changes()` is that statement's
/// count, so a create that hit a taken slug, or a replace of a link the
/// artist does not have, queues nothing.
pub const LINK_EVENT: &str = concat!(
    "INSERT INTO webhook_messages (id, artist_id, endpoint_id, event_id, type, fan_id, payload, next_at, created_at) ",
    "SELECT 'msg_' || lower(hex(randomblob(16))), e.artist_id, e.id, ?2, ?4, NULL, ",
    "json_object('type', ?4, 'timestamp', ",
    iso!("?5"),
    ", 'data', json_object('id', l.id, 'slug', l.slug, 'definition', json(l.definition), 'created_at', ",
    iso!("l.created_at"),
    ", 'updated_at', ",
    iso!("l.updated_at"),
    ")), ?5, ?5 ",
    "FROM links l JOIN webhook_endpoints e ON e.artist_id = l.artist_id ",
    "WHERE changes() = 1 AND l.slug = ?3 AND l.artist_id = ?1 AND ",
    wants!("?4"),
    " ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id AS hook_msg"
);

/// Queues a `test` event for endpoint `?2` of artist `?1` (sent by hand,
/// whatever types the endpoint asked for), caused by `?3`, at `?4`.
pub const TEST_EVENT: &str = concat!(
    "INSERT INTO webhook_messages (id, artist_id, endpoint_id, event_id, type, fan_id, payload, next_at, created_at) ",
    "SELECT 'msg_' || lower(hex(randomblob(16))), e.artist_id, e.id, ?3, 'test', NULL, ",
    "json_object('type', 'test', 'timestamp', ",
    iso!("?4"),
    ", 'data', json_object('endpoint', e.id, 'message', 'This is a test event from Stagedoor.')), ?4, ?4 ",
    "FROM webhook_endpoints e WHERE e.id = ?2 AND e.artist_id = ?1 AND e.enabled = 1 ",
    "ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id AS hook_msg"
);

/// The message ids a queueing statement returned.
pub fn queued(rows: Vec<Row>) -> Vec<String> {
    rows.into_iter().filter_map(|mut r| r.take_text(0)).collect()
}

/// Delivery settings (README "Webhooks").
#[derive(Debug, Clone)]
pub struct Settings {
    /// Waits before each retry, in ms (`webhook_retry_schedule`, seconds).
    pub schedule_ms: Vec<i64>,
    /// Per attempt (`webhook_timeout_ms`).
    pub timeout_ms: u32,
    /// A run of failures this long disables the endpoint
    /// (`webhook_disable_after_hours`).
    pub disable_after_ms: i64,
    /// Test-only (`webhook_allow_loopback_for_tests`): lets endpoints be
    /// `http://127.0.0.1:port`. Off unless set to exactly `true`.
    pub allow_loopback: bool,
}

/// Standard Webhooks' schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
/// 20 h, 24 h after the attempt before (about three days in all).
pub const DEFAULT_SCHEDULE_SECS: &[i64] = &[5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];

impl Settings {
    pub fn from_env(env: &impl Env) -> Settings {
        let schedule_ms = env
            .var("webhook_retry_schedule")
            .and_then(|s| s.split_whitespace().map(|n| n.parse::<i64>().ok().filter(|n| (0..=86_400 * 7).contains(n))).collect::<Option<Vec<_>>>())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_SCHEDULE_SECS.to_vec())
            .into_iter()
            .map(|s| s * 1000)
            .collect();
        let timeout_ms = env.var("webhook_timeout_ms").and_then(|s| s.trim().parse().ok()).filter(|t| (100..=30_000).contains(t)).unwrap_or(15_000);
        let hours: i64 = env.var("webhook_disable_after_hours").and_then(|s| s.trim().parse().ok()).filter(|h| *h > 0).unwrap_or(5 * 24);
        let allow_loopback = env.var("webhook_allow_loopback_for_tests").is_some_and(|v| v.trim() == "true");
        Settings { schedule_ms, timeout_ms, disable_after_ms: hours * 3_600_000, allow_loopback }
    }
}

/// Checks an endpoint URL (at registration and again before every
/// attempt): https on a public host name. IP literals, ports, user names,
/// `localhost` and names only an internal resolver answers are refused.
/// What a public name resolves to is the platform's to police: Workers'
/// `fetch` cannot reach private networks, and on Spin the operator limits
/// outbound hosts (README "Webhooks"). Errors complete "The URL …".
pub fn check_endpoint_url(url: &str, allow_loopback: bool) -> Result<String, Cow<'static, str>> {
    if allow_loopback {
        if let Some(rest) = url.strip_prefix("http://127.0.0.1:") {
            let port_end = rest.find('/').unwrap_or(rest.len());
            if port_end > 0 && rest[..port_end].bytes().all(|b| b.is_ascii_digit()) && url.bytes().all(|b| b.is_ascii_graphic()) {
                return Ok(url.to_owned());
            }
        }
    }
    let checked = crate::url::check_https(url, &[])?;
    let host = crate::url::origin(&checked).trim_start_matches("https://");
    let internal = ["localhost", "local", "internal", "intranet", "lan", "home.arpa", "corp", "private"];
    if internal.iter().any(|s| host == *s || host.strip_suffix(s).is_some_and(|h| h.ends_with('.'))) {
        return Err(format!("must be on a public host, not {host}").into());
    }
    Ok(checked)
}

/// A message claimed for one attempt.
struct Claimed {
    id: String,
    artist_id: String,
    endpoint_id: String,
    fan_id: Option<String>,
    payload: String,
    attempts: i64,
}

/// What one run of [`deliver`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub delivered: u32,
    pub retrying: u32,
    pub failed: u32,
    pub disabled_endpoints: u32,
}

/// Messages claimed per statement: each is sent before the next claim.
const CLAIM: i64 = 5;

/// Sends the messages `ids` after the response: their first attempt.
pub fn deliver_later(env: &impl Env, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    let later = env.later();
    env.defer(async move {
        let budget = i64::from(Settings::from_env(&later).timeout_ms) * ids.len() as i64 + 1000;
        if let Err(e) = deliver(&later, Some(&ids), budget).await {
            later.log_error(&format!("webhooks: first attempt: {e}"));
        }
    });
}

/// Sends what is due (or only `only`, if due), one attempt each, until
/// nothing is due or `budget_ms` has passed.
pub async fn deliver(env: &impl Env, only: Option<&[String]>, budget_ms: i64) -> Result<Report, Error> {
    let settings = Settings::from_env(env);
    // Read once something is due: a run with nothing to send needs no keys.
    let mut keys = None;
    let started = env.now_ms();
    let only_json = only.map(|ids| {
        let quoted: Vec<String> = ids.iter().filter(|i| i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).map(|i| format!("\"{i}\"")).collect();
        format!("[{}]", quoted.join(","))
    });
    let mut report = Report::default();
    loop {
        let now = env.now_ms();
        if now - started >= budget_ms {
            break;
        }
        let lease = now + CLAIM * (i64::from(settings.timeout_ms) + 5_000);
        let rows = match &only_json {
            Some(ids) => env.db().query(CLAIM_ONLY, &[Param::Int(now), Param::Int(lease), Param::Int(CLAIM), Param::Text(ids)]).await?,
            None => env.db().query(CLAIM_DUE, &[Param::Int(now), Param::Int(lease), Param::Int(CLAIM)]).await?,
        };
        if rows.is_empty() {
            break;
        }
        let keys = match &keys {
            Some(k) => std::rc::Rc::clone(k),
            None => keys.insert(Keys::from_env(env)?).clone(),
        };
        let mut claimed: Vec<Claimed> = rows
            .into_iter()
            .map(|mut r| Claimed {
                id: r.take_text(0).unwrap_or_default(),
                artist_id: r.take_text(1).unwrap_or_default(),
                endpoint_id: r.take_text(2).unwrap_or_default(),
                fan_id: r.take_text(3),
                payload: r.take_text(4).unwrap_or_default(),
                attempts: r.int(5).unwrap_or(1),
            })
            .collect();
        claimed.reverse();
        while let Some(m) = claimed.pop() {
            let id = m.id.clone();
            if let Err(e) = attempt(env, &keys, &settings, m, &mut report).await {
                // Hand back what this run holds but did not finish, so the
                // next run need not wait for the leases to run out.
                let unfinished: Vec<String> = std::iter::once(id).chain(claimed.iter().map(|c| c.id.clone())).map(|i| format!("\"{i}\"")).collect();
                let release = format!("[{}]", unfinished.join(","));
                let _ = env
                    .db()
                    .query(
                        "UPDATE webhook_messages SET lease_until = 0 WHERE status = 'pending' AND id IN (SELECT value FROM json_each(?1))",
                        &[Param::Text(&release)],
                    )
                    .await;
                return Err(e);
            }
        }
    }
    Ok(report)
}

// The outer conditions repeat the inner ones: the statement is atomic, so a
// row another run claimed first is never claimed twice.
macro_rules! claim {
    ($inner:literal) => {
        concat!(
            "UPDATE webhook_messages SET lease_until = ?2, attempts = attempts + 1 ",
            "WHERE status = 'pending' AND lease_until <= ?1 AND id IN (SELECT id FROM webhook_messages ",
            "WHERE status = 'pending' AND next_at <= ?1 AND lease_until <= ?1 ",
            $inner,
            " ORDER BY next_at LIMIT ?3) ",
            "RETURNING id AS m_id, artist_id AS m_artist, endpoint_id AS m_endpoint, fan_id AS m_fan, payload AS m_payload, attempts AS m_attempts"
        )
    };
}
const CLAIM_DUE: &str = claim!("");
const CLAIM_ONLY: &str = claim!("AND id IN (SELECT value FROM json_each(?4))");

/// The endpoint as an attempt needs it.
struct Endpoint {
    url: String,
    enabled: bool,
    secrets: Vec<Secret>,
}

async fn endpoint(env: &impl Env, keys: &Keys, id: &str, artist_id: &str, now: i64) -> Result<Option<Endpoint>, Error> {
    let rows = env
        .db()
        .query(
            "SELECT url, enabled, secret_enc, CASE WHEN secret_prev_until > ?3 THEN secret_prev_enc END FROM webhook_endpoints WHERE id = ?1 AND artist_id = ?2",
            &[Param::Text(id), Param::Text(artist_id), Param::Int(now)],
        )
        .await?;
    let Some(mut r) = rows.into_iter().next() else { return Ok(None) };
    let mut secrets = Vec::with_capacity(2);
    for i in [2, 3] {
        if let Some(enc) = r.take_text(i) {
            secrets.push(open_secret(keys, id, &enc)?);
        }
    }
    Ok(Some(Endpoint { url: r.take_text(0).unwrap_or_default(), enabled: r.int(1) == Some(1), secrets }))
}

/// GCM associated data for an endpoint's secret: binds it to its row.
pub fn secret_context(endpoint_id: &str) -> String {
    format!("webhook.secret:{endpoint_id}")
}

/// Encrypts a secret for `webhook_endpoints`.
pub fn seal_secret(keys: &Keys, endpoint_id: &str, secret: &Secret) -> Result<String, Error> {
    keys.encrypt(secret.encode().as_bytes(), secret_context(endpoint_id).as_bytes())
}

fn open_secret(keys: &Keys, endpoint_id: &str, enc: &str) -> Result<Secret, Error> {
    let plain = keys.decrypt(enc, secret_context(endpoint_id).as_bytes())?;
    Secret::parse(std::str::from_utf8(&plain).map_err(|_| Error::internal("stored webhook secret is not UTF-8"))?)
}

/// How an attempt ended.
enum Outcome {
    Delivered,
    /// Try again at this time (ms).
    Retry(i64),
    Failed,
    /// 410 Gone: the endpoint is switched off at once.
    Gone,
}

/// The first KiB of an answer, cut at a character boundary.
fn head(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).into_owned();
    let mut end = text.len().min(1024);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Adds the fan's address to `data` (see the module doc). SQLite writes
/// `json_object` compactly and in the order given, so `data` opens with
/// `"data":{"id":`; anything else is sent as it is.
fn with_email(payload: &str, email: &str) -> String {
    const AT: &str = "\"data\":{";
    let Some(i) = payload.find(AT) else { return payload.to_owned() };
    let i = i + AT.len();
    let mut out = String::with_capacity(payload.len() + email.len() + 12);
    out.push_str(&payload[..i]);
    out.push_str("\"email\":\"");
    for c in email.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str("\",");
    out.push_str(&payload[i..]);
    out
}

async fn attempt(env: &impl Env, keys: &Keys, settings: &Settings, m: Claimed, report: &mut Report) -> Result<(), Error> {
    let now = env.now_ms();
    let Some(ep) = endpoint(env, keys, &m.endpoint_id, &m.artist_id, now).await? else { return Ok(()) };
    let mut body = m.payload.clone();
    if let Some(fan) = &m.fan_id {
        let rows = env.db().query("SELECT email_enc FROM fans WHERE id = ?1 AND artist_id = ?2", &[Param::Text(fan), Param::Text(&m.artist_id)]).await?;
        // Gone since it was queued: erasure deletes the message too, so
        // this is a race with it; nothing is sent.
        let Some(enc) = rows.into_iter().next().and_then(|mut r| r.take_text(0)) else {
            return finish(env, settings, &m, now, None, 0, "the fan no longer exists".into(), Outcome::Failed, report).await;
        };
        body = with_email(&body, &keys.decrypt_fan_email(&enc, &m.artist_id, fan)?);
    }
    if !ep.enabled {
        return finish(env, settings, &m, now, None, 0, "the endpoint is disabled".into(), Outcome::Failed, report).await;
    }
    let url = match check_endpoint_url(&ep.url, settings.allow_loopback) {
        Ok(u) => u,
        Err(why) => return finish(env, settings, &m, now, None, 0, format!("refused: the URL {why}"), Outcome::Failed, report).await,
    };
    let ts = now / 1000;
    let signature: Vec<String> = ep.secrets.iter().map(|s| s.sign(&m.id, ts, body.as_bytes())).collect();
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "Stagedoor-Webhooks/1")
        .header("webhook-id", &m.id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature.join(" "))
        .body(body.into_bytes())
        .map_err(Error::internal)?;
    let sent = env.now_ms();
    let res = env.fetch_untrusted(req, settings.timeout_ms).await;
    let done = env.now_ms();
    let latency = done - sent;
    let retry = |after_ms: Option<i64>| {
        let n = usize::try_from(m.attempts).unwrap_or(usize::MAX);
        match settings.schedule_ms.get(n.saturating_sub(1)) {
            None => Outcome::Failed,
            Some(&wait) => {
                // ±10 % so endpoints that failed together don't retry together.
                let mut r = [0u8; 2];
                let jitter = if env.random(&mut r).is_ok() { (i64::from(u16::from_le_bytes(r)) % 2001 - 1000) * wait / 10_000 } else { 0 };
                Outcome::Retry(done + after_ms.map_or(wait + jitter, |a| a.max(wait)))
            }
        }
    };
    let (status, answer, outcome) = match res {
        Ok(res) => {
            let code = res.status().as_u16();
            let outcome = match code {
                200..=299 => Outcome::Delivered,
                410 => Outcome::Gone,
                429 | 503 => {
                    let after = res.headers().get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
                    retry(after.map(|s| s.clamp(0, 86_400) * 1000))
                }
                _ => retry(None),
            };
            (Some(i64::from(code)), head(res.body()), outcome)
        }
        Err(e) => (None, e.to_string(), retry(None)),
    };
    finish(env, settings, &m, done, status, latency, answer, outcome, report).await
}

/// Records an attempt and what follows from it, in one batch.
#[allow(clippy::too_many_arguments)]
async fn finish(
    env: &impl Env,
    settings: &Settings,
    m: &Claimed,
    now: i64,
    status: Option<i64>,
    latency: i64,
    answer: String,
    outcome: Outcome,
    report: &mut Report,
) -> Result<(), Error> {
    let attempt_id = crate::env::random_id(env)?;
    let log =
        [Param::Text(&attempt_id), Param::Text(&m.id), Param::Text(&m.artist_id), Param::Int(now), status.into(), Param::Int(latency), Param::Text(&answer)];
    let next_at = if let Outcome::Retry(at) = outcome { at } else { 0 };
    let msg = [Param::Text(&m.id), Param::Int(now), Param::Int(next_at)];
    let ep = [Param::Text(&m.endpoint_id), Param::Int(now), Param::Int(settings.disable_after_ms)];
    // (message statement, its parameter count, endpoint statement, its count)
    let (msg_sql, msg_n, ep_sql, ep_n) = match outcome {
        Outcome::Delivered => {
            report.delivered += 1;
            (DELIVERED, 2, HEALTHY, 1)
        }
        Outcome::Retry(_) => {
            report.retrying += 1;
            ("UPDATE webhook_messages SET next_at = ?3, lease_until = 0 WHERE id = ?1", 3, FAILING, 3)
        }
        Outcome::Failed => {
            report.failed += 1;
            (FAILED, 1, FAILING, 3)
        }
        Outcome::Gone => {
            report.failed += 1;
            (FAILED, 1, "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = 'gone', updated_at = ?2 WHERE id = ?1", 2)
        }
    };
    let mut stmts = vec![Stmt::new(LOG, &log), Stmt::new(msg_sql, &msg[..msg_n])];
    // A message that was never sent (endpoint off, fan gone, URL refused)
    // says nothing about the endpoint's health.
    let sent = status.is_some() || latency > 0;
    if sent {
        stmts.push(Stmt::new(ep_sql, &ep[..ep_n]));
    }
    let results = env.db().batch(&stmts).await?;
    if sent && ep_sql == FAILING {
        // Enabled when it was sent (checked above), off now: this attempt
        // ended the run.
        let switched_off = results.get(2).and_then(|rows| rows.first()).is_some_and(|r| r.int(0) == Some(0) && r.text(1) == Some("failing"));
        if switched_off {
            report.disabled_endpoints += 1;
            notify_owner(env, &m.artist_id, &m.endpoint_id).await;
        }
    }
    Ok(())
}

const LOG: &str = "INSERT INTO webhook_attempts (id, message_id, artist_id, at, status, latency_ms, answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const DELIVERED: &str = "UPDATE webhook_messages SET status = 'delivered', delivered_at = ?2, lease_until = 0 WHERE id = ?1";
const FAILED: &str = "UPDATE webhook_messages SET status = 'failed', lease_until = 0 WHERE id = ?1";
const HEALTHY: &str = "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL";

/// A failure: starts (or continues) the endpoint's run of failures, and
/// switches the endpoint off once the run has lasted `?3` ms.
const FAILING: &str = "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, ?2), \
     enabled = CASE WHEN ?2 - coalesce(failing_since, ?2) >= ?3 THEN 0 ELSE enabled END, \
     disabled_reason = CASE WHEN enabled = 1 AND ?2 - coalesce(failing_since, ?2) >= ?3 THEN 'failing' ELSE disabled_reason END, \
     updated_at = ?2 WHERE id = ?1 \
     RETURNING enabled AS ep_enabled, disabled_reason AS ep_reason";

/// Tells the workspace's owners that an endpoint was switched off.
async fn notify_owner(env: &impl Env, artist_id: &str, endpoint_id: &str) {
    let result = async {
        let keys = Keys::from_env(env)?;
        let url = env.db().query("SELECT url FROM webhook_endpoints WHERE id = ?1", &[Param::Text(endpoint_id)]).await?;
        let url = url.into_iter().next().and_then(|mut r| r.take_text(0)).unwrap_or_default();
        let owners = env.db().query("SELECT email_enc FROM users WHERE artist_id = ?1 AND role = 'owner'", &[Param::Text(artist_id)]).await?;
        for mut o in owners {
            let Some(enc) = o.take_text(0) else { continue };
            let to = String::from_utf8(keys.decrypt(&enc, format!("user.email:{artist_id}").as_bytes())?).map_err(Error::internal)?;
            let text = format!(
                "Your webhook endpoint {url} failed every delivery for 5 days, so Stagedoor switched it off.\n\n\
                 Messages are kept: fix the endpoint, switch it on again and replay the failed ones (see the webhooks API).\n"
            );
            let html = format!("<p>{}</p>", crate::html::escape(&text));
            crate::mail::send(
                env,
                &crate::mail::Message { to: &to, subject: "A webhook endpoint was switched off", text: &text, html: &html, unsubscribe: None },
            )
            .await?;
        }
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = result {
        env.log_error(&format!("webhooks: telling the owner endpoint {endpoint_id} was switched off: {e}"));
    }
}

#[cfg(all(test, feature = "native"))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
