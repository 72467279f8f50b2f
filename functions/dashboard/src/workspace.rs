//! Deleting the workspace (README "Deleting a workspace"): the page that
//! offers the full export first, the export (JSON, in parts for long fan
//! lists), and the deletion, which makes the workspace unreachable at once
//! and leaves the rest to the scheduled purge (`functions/jobs`).
//!
//! Decisions where the issue is silent:
//! - Owners only, and the owner types the workspace's name to confirm: a
//!   mismatch is 422 and changes nothing.
//! - One atomic batch removes everything that lets anyone in or reaches
//!   the workspace from outside. The fans, their consent history, mail
//!   and erasure notes stay, unreachable, until the purge: an operator can
//!   still answer a dispute or a wrongful deletion in that window. Click
//!   counters go at once with their links (the schema cascades them; they
//!   name no one).
//! - Its capture pages and links answer 404, like any missing one: after
//!   the purge nothing could tell a deleted slug from one never used, and
//!   a list of deleted slugs would keep part of the workspace forever.
//! - The export leaves restricted fans out, as every export does, and
//!   says how many.

use maud::html;
use serde_json::Value;
use shared::http::header::{self, HeaderValue};
use shared::http::StatusCode;
use shared::sql::{Param, Row};
use shared::{auth, httpx, Env, Error, ErrorKind, Kv, Response};

use crate::view::{self, Nav};
use crate::Ctx;

/// Fans per export document. A document is built in memory (a response is
/// one buffer, which the Worker copies once more to send): at about 450
/// bytes a fan with one consent event, 10,000 fans are under 5 MB, far
/// inside a Worker's 128 MB, in 20 queries. Longer lists come in parts
/// (`?part=2`, …).
pub const FANS_PER_PART: usize = 10_000;
const DAY_MS: i64 = 86_400_000;
/// KV deletes per request: Workers allows 1,000 KV operations an
/// invocation. Links past this many keep their KV copy until it expires
/// (within an hour, functions/links/src/store.rs).
const MAX_KV_DELETES: usize = 900;

/// What the deletion removes at once, children first (cascades are a
/// second line, not the only one). `?1` is the artist; the first statement
/// binds the time, the owner and the purge time. Rate-limit windows are
/// keyed `signup-page:{page id}` (functions/signup/src/input.rs). The last
/// statement hands back the links' slugs, whose KV copies go next.
const DELETE: [&str; 21] = [
    "INSERT INTO workspace_deletions (artist_id, requested_at, by_user, purge_after) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (artist_id) DO NOTHING",
    "DELETE FROM sessions WHERE artist_id = ?1 OR user_id IN (SELECT id FROM users WHERE artist_id = ?1)",
    "DELETE FROM recovery_codes WHERE user_id IN (SELECT id FROM users WHERE artist_id = ?1)",
    "DELETE FROM sign_in_links WHERE user_id IN (SELECT id FROM users WHERE artist_id = ?1)",
    "DELETE FROM users WHERE artist_id = ?1",
    "DELETE FROM api_token_use WHERE token_id IN (SELECT id FROM api_tokens WHERE artist_id = ?1)",
    "DELETE FROM api_tokens WHERE artist_id = ?1",
    "DELETE FROM webhook_attempts WHERE message_id IN (SELECT id FROM webhook_messages WHERE artist_id = ?1)",
    "DELETE FROM webhook_messages WHERE artist_id = ?1",
    "DELETE FROM webhook_endpoints WHERE artist_id = ?1",
    "DELETE FROM rate_windows WHERE key IN (SELECT 'signup-page:' || id FROM capture_pages WHERE artist_id = ?1)",
    "DELETE FROM capture_page_looks WHERE artist_id = ?1",
    "DELETE FROM capture_pages WHERE artist_id = ?1",
    "DELETE FROM link_stats WHERE link_id IN (SELECT id FROM links WHERE artist_id = ?1)",
    // The dashboard's counts (schema/0014): only the dashboard read them.
    // After the pages and counters, whose deletion still moves them.
    "DELETE FROM agg_fan_status WHERE artist_id = ?1",
    "DELETE FROM agg_fan_place WHERE artist_id = ?1",
    "DELETE FROM agg_fan_page WHERE artist_id = ?1",
    "DELETE FROM agg_consent_daily WHERE artist_id = ?1",
    "DELETE FROM agg_link_daily WHERE artist_id = ?1",
    "DELETE FROM agg_link_artist_daily WHERE artist_id = ?1",
    "DELETE FROM links WHERE artist_id = ?1 RETURNING slug",
];

/// When a deletion made at `now` is purged.
fn purge_time(env: &impl Env, now: i64) -> i64 {
    now + shared::retention::Settings::from_env(env).deleted_workspace_days * DAY_MS
}

/// How many parts the export's fans take (at least one), and how many
/// restricted fans the exports leave out.
async fn counts<E: Env>(ctx: &Ctx<'_, E>) -> Result<(usize, i64), Error> {
    let rows = ctx
        .db
        .query("SELECT count(*), coalesce(sum(EXISTS (SELECT 1 FROM fan_restrictions r WHERE r.fan_id = f.id)), 0) FROM fans f WHERE f.artist_id = ?1", &[])
        .await?;
    let (all, restricted) = rows.first().map_or((0, 0), |r| (r.int(0).unwrap_or(0), r.int(1).unwrap_or(0)));
    Ok((usize::try_from(all - restricted).unwrap_or(0).div_ceil(FANS_PER_PART).max(1), restricted))
}

/// `GET /app/workspace/delete`
pub async fn form<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    page(ctx, None, "", StatusCode::OK).await
}

async fn page<E: Env>(ctx: &Ctx<'_, E>, error: Option<&str>, typed: &str, status: StatusCode) -> Result<Response, Error> {
    ctx.require_owner()?;
    let parts = counts(ctx).await?.0;
    let name = &ctx.session.artist_name;
    let body = html! {
        h1 { "Delete this workspace" }
        p { "Everyone on the team is signed out of " strong { (name) } " for good. API tokens, sign-in links, capture pages and smart links stop working at once; webhook endpoints get nothing more." }
        p { "Fans, their consent history and the mail log stay out of reach until " (view::date(purge_time(ctx.env, ctx.env.now_ms()))) " (so a mistake or a dispute can still be answered), then all of it is deleted." }
        h2 { "1. Download your data" }
        ul {
            li { a href="/app/fans.csv" download { "Fans (CSV)" } }
            @for p in 1..=parts {
                li { a href={ "/app/workspace/export.json?part=" (p) } download { "Everything (JSON), part " (p) " of " (parts) } }
            }
        }
        p.muted { "Team, capture pages and their consent texts, smart links, webhook endpoints (no secrets), and every fan with their consent history; restricted fans are left out, as from every export." }
        h2 { "2. Delete" }
        form method="post" action="/app/workspace/delete" {
            (view::csrf_field(&ctx.session.csrf))
            div {
                label for="name" { "Type " strong { (name) } " to confirm" }
                input #name name="name" value=(typed) autocomplete="off" required aria-describedby=[error.map(|_| "err-name")];
                @if let Some(e) = error { p.err #err-name role="alert" { (e) } }
            }
            button.danger type="submit" { "Delete this workspace" }
        }
    };
    Ok(view::html_response(status, view::app_page(&ctx.session, Nav::Account, "Delete this workspace", body)))
}

/// `POST /app/workspace/delete` with `name` = the workspace's name.
pub async fn delete<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    ctx.require_owner()?;
    let typed = ctx.form.get("name").unwrap_or("").trim();
    let name = ctx.session.artist_name.trim();
    if typed.is_empty() || typed != name {
        return page(ctx, Some("That isn't the workspace's name, so nothing was deleted."), typed, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    // One reading of the clock: the record says exactly how long the
    // workspace is kept, whatever millisecond the two would fall in.
    let now = ctx.env.now_ms();
    let purge = purge_time(ctx.env, now);
    let record = [Param::Int(now), Param::Text(&ctx.session.user_id), Param::Int(purge)];
    let stmts: Vec<(&str, &[Param<'_>])> = DELETE.iter().enumerate().map(|(i, sql)| (*sql, if i == 0 { &record[..] } else { &[] })).collect();
    let mut rows = ctx.db.batch(&stmts).await?;
    forget_links(ctx.env, rows.pop().unwrap_or_default()).await;
    let body = html! {
        h1 { "Workspace deleted" }
        p role="status" { strong { (name) } " is deleted and you are signed out. Nobody can sign in to it again; its tokens, capture pages and smart links no longer work." }
        p { "What is left (fans, their consent history, the mail log) is out of reach until " (view::datetime(Some(purge))) ", when the scheduled purge deletes it for good." }
    };
    let mut res = view::html_response(StatusCode::OK, view::bare_page("Workspace deleted", body));
    view::add_cookie(&mut res, &auth::set_cookie(auth::SESSION_COOKIE, "", Some(0)));
    Ok(res)
}

/// Drops the KV copies of the deleted links (`link:{slug}`, the key of
/// functions/links/src/store.rs), so a fresh read finds nothing anywhere.
/// A failure is logged, not shown: the rows are gone, and every copy
/// expires within an hour by itself.
async fn forget_links(env: &impl Env, slugs: Vec<Row>) {
    for mut r in slugs.into_iter().take(MAX_KV_DELETES) {
        let key = format!("link:{}", r.take_text(0).unwrap_or_default());
        for attempt in 0..2 {
            match env.kv().delete(&key).await {
                Ok(()) => break,
                // Workers KV takes one write per second per key: a
                // write-through just before refuses the first delete.
                Err(_) if attempt == 0 => env.sleep_ms(1100).await,
                Err(e) => env.log_error(&format!("dashboard: a deleted link's KV copy stays until it expires: {e}")),
            }
        }
    }
}

// ---------------------------------------------------------------- export

// The export's JSON is written by the database (json_object,
// json_group_array): only the addresses, stored encrypted, are added
// here. Times as ISO 8601 UTC, as `fans::iso` writes them.
macro_rules! iso {
    ($ms:literal) => {
        concat!("strftime('%Y-%m-%dT%H:%M:%SZ', ", $ms, " / 1000, 'unixepoch')")
    };
}

/// Everything but the team and the fans, with the document's format so a
/// reader can tell versions apart. `?2` now, `?3` part, `?4` parts,
/// `?5` restricted fans left out.
const HEAD: &str = concat!(
    "SELECT json_object('format', 'stagedoor.workspace-export/1', 'exported_at', ",
    iso!("?2"),
    ", 'artist', json_object('id', a.id, 'name', a.name, 'created_at', ",
    iso!("a.created_at"),
    "), 'part', CAST(?3 AS INTEGER), 'parts', CAST(?4 AS INTEGER), 'restricted_fans_left_out', CAST(?5 AS INTEGER), \
     'capture_pages', json((SELECT json_group_array(json_object('id', id, 'slug', slug, 'title', title, 'consent_text', consent_text, \
     'consent_version', consent_version, 'double_opt_in', json(CASE double_opt_in WHEN 1 THEN 'true' ELSE 'false' END), \
     'thanks_text', thanks_text, 'redirect_url', redirect_url, 'created_at', ",
    iso!("created_at"),
    ", 'updated_at', ",
    iso!("updated_at"),
    ", 'consent_versions', json((SELECT json_group_array(json_object('version', v.version, 'consent_text', v.consent_text, \
     'consent_sha256', v.consent_sha256, 'created_at', ",
    iso!("v.created_at"),
    ")) FROM (SELECT * FROM consent_versions v WHERE v.artist_id = ?1 AND v.page_id = cp.id ORDER BY v.created_at, v.version) v)), \
     'look', json((SELECT json_object('artist_image_url', l.artist_image_url, 'background', l.background, 'button', l.button, \
     'message', l.message, 'ask_first_name', json(CASE l.ask_first_name WHEN 1 THEN 'true' ELSE 'false' END)) \
     FROM capture_page_looks l WHERE l.page_id = cp.id AND l.artist_id = ?1)) \
     )) FROM (SELECT * FROM capture_pages WHERE artist_id = ?1 ORDER BY slug) cp)), \
     'links', json((SELECT json_group_array(json_object('id', id, 'slug', slug, \
     'definition', CASE WHEN json_valid(definition) THEN json(definition) ELSE definition END, 'created_at', ",
    iso!("created_at"),
    ", 'updated_at', ",
    iso!("updated_at"),
    ")) FROM (SELECT * FROM links WHERE artist_id = ?1 ORDER BY slug))), \
     'webhook_endpoints', json((SELECT json_group_array(json_object('id', id, 'url', url, 'events', events, \
     'enabled', json(CASE enabled WHEN 1 THEN 'true' ELSE 'false' END), 'disabled_reason', disabled_reason, 'created_at', ",
    iso!("created_at"),
    ", 'updated_at', ",
    iso!("updated_at"),
    ")) FROM (SELECT * FROM webhook_endpoints WHERE artist_id = ?1 ORDER BY created_at, id)))) FROM artists a WHERE a.id = ?1"
);

/// The team, each with everything but the address.
const TEAM: &str = concat!(
    "SELECT email_enc, json_object('role', role, 'second_factor', json(CASE WHEN totp_enc IS NULL THEN 'false' ELSE 'true' END), 'created_at', ",
    iso!("created_at"),
    ", 'last_sign_in_at', ",
    iso!("last_sign_in_at"),
    ") FROM users WHERE artist_id = ?1 ORDER BY created_at, id"
);

/// A batch of fans (newest first, as the CSV; restricted ones left out)
/// after the cursor `?2` (created_at), `?3` (id), at most `?4`, each with
/// the CSV's fields and its consent history, oldest first.
const FANS: &str = concat!(
    "SELECT f.id, f.email_enc, f.created_at, json_object('id', f.id, 'status', f.status, 'country', f.country, 'region', f.region, \
     'city', f.city, 'source_page', p.slug, 'signed_up_at', ",
    iso!("f.created_at"),
    ", 'consent_version', f.consent_version, 'subscribed_at', ",
    iso!("f.subscribed_at"),
    ", 'confirmed_at', ",
    iso!("f.confirmed_at"),
    ", 'unsubscribed_at', ",
    iso!("f.unsubscribed_at"),
    ", 'consent_history', json((SELECT json_group_array(json_object('kind', e.kind, 'method', e.method, 'at', ",
    iso!("e.at"),
    ", 'page', (SELECT slug FROM capture_pages WHERE id = e.page_id AND artist_id = f.artist_id), \
     'consent_version', e.consent_version, 'consent_sha256', e.consent_hash)) \
     FROM (SELECT * FROM consent_events WHERE fan_id = f.id ORDER BY at, id) e))), \
     (SELECT n.name_enc FROM fan_names n WHERE n.fan_id = f.id AND n.artist_id = f.artist_id), f.email_hash \
     FROM fans f LEFT JOIN capture_pages p ON p.id = f.source_page_id AND p.artist_id = f.artist_id \
     WHERE f.artist_id = ?1 AND NOT EXISTS (SELECT 1 FROM fan_restrictions r WHERE r.fan_id = f.id) \
     AND f.created_at <= ?2 AND (f.created_at < ?2 OR f.id < ?3) ORDER BY f.created_at DESC, f.id DESC LIMIT ?4"
);

/// Fans read per query (the CSV export's batch).
const BATCH: usize = 1000;

/// `obj`, a JSON object the database wrote, with `"email"` (and a fan's
/// `"first_name"`, when they gave one) put first.
fn with_email(out: &mut Vec<u8>, email: &str, first_name: Option<&str>, obj: &str) {
    out.extend_from_slice(b"{\"email\":");
    out.extend_from_slice(Value::from(email).to_string().as_bytes());
    if let Some(name) = first_name {
        out.extend_from_slice(b",\"first_name\":");
        out.extend_from_slice(Value::from(name).to_string().as_bytes());
    }
    if obj.len() > 2 {
        out.push(b',');
    }
    out.extend_from_slice(obj.get(1..).unwrap_or("}").as_bytes());
}

/// `GET /app/workspace/export.json[?part=N]`: the workspace and one part
/// of its fans, one JSON document, a fan a line.
pub async fn export<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    ctx.require_owner()?;
    let (parts, restricted) = counts(ctx).await?;
    let part = match httpx::query_param(&ctx.parts.uri, "part") {
        None => 1,
        Some(p) => p.parse().ok().filter(|p| (1..=parts).contains(p)).ok_or_else(|| Error::new(ErrorKind::NotFound, "This export has no such part."))?,
    };
    let (artist, now) = (ctx.db.artist_id(), ctx.env.now_ms());
    let head = ctx.db.query(HEAD, &[Param::Int(now), Param::Int(part as i64), Param::Int(parts as i64), Param::Int(restricted)]).await?;
    let mut out = head.into_iter().next().and_then(|mut r| r.take_text(0)).ok_or_else(crate::not_found)?.into_bytes();
    out.pop();
    out.extend_from_slice(b",\"team\":[");
    let context = format!("user.email:{artist}");
    for mut r in ctx.db.query(TEAM, &[]).await? {
        let email = String::from_utf8(ctx.keys.decrypt(r.text(0).unwrap_or(""), context.as_bytes())?).map_err(Error::internal)?;
        if out.last() != Some(&b'[') {
            out.push(b',');
        }
        with_email(&mut out, &email, None, &r.take_text(1).unwrap_or_default());
    }
    out.extend_from_slice(b"],\"fans\":[\n");
    // The newest fan first; a later part starts after the last fan of the
    // part before it.
    let mut after = (i64::MAX, String::new());
    if part > 1 {
        let rows = ctx
            .db
            .query(
                "SELECT f.created_at, f.id FROM fans f WHERE f.artist_id = ?1 AND NOT EXISTS (SELECT 1 FROM fan_restrictions r WHERE r.fan_id = f.id) \
                 ORDER BY f.created_at DESC, f.id DESC LIMIT 1 OFFSET ?2",
                &[Param::Int(((part - 1) * FANS_PER_PART - 1) as i64)],
            )
            .await?;
        after = rows.into_iter().next().and_then(|mut r| Some((r.int(0)?, r.take_text(1)?))).unwrap_or((i64::MIN, String::new()));
    }
    let mut left = FANS_PER_PART;
    while left > 0 {
        let want = left.min(BATCH);
        let rows = ctx.db.query(FANS, &[Param::Int(after.0), Param::Text(&after.1), Param::Int(want as i64)]).await?;
        let n = rows.len();
        for mut r in rows {
            let (id, enc) = (r.take_text(0).unwrap_or_default(), r.take_text(1).unwrap_or_default());
            let email = ctx.keys.decrypt_fan_email(&enc, artist, &id)?;
            let name = match (r.take_text(4), r.text(5)) {
                (Some(enc), Some(hash)) => Some(ctx.keys.decrypt(&enc, shared::capture::fan_name_context(artist, hash).as_bytes())?),
                _ => None,
            };
            let name = name.map(String::from_utf8).transpose().map_err(Error::internal)?;
            if out.last() != Some(&b'\n') {
                out.extend_from_slice(b",\n");
            }
            with_email(&mut out, &email, name.as_deref(), &r.take_text(3).unwrap_or_default());
            after = (r.int(2).unwrap_or(i64::MIN), id);
        }
        left -= n;
        if n < want {
            break;
        }
    }
    out.extend_from_slice(b"\n]}\n");
    let mut res = httpx::respond(StatusCode::OK, httpx::JSON, out);
    let name = format!("attachment; filename=\"workspace-{}-part-{part}.json\"", view::date(now));
    if let Ok(v) = HeaderValue::from_str(&name) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests;
