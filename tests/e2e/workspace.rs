//! Deleting a workspace on each runtime (README "Deleting a workspace"):
//! an artist of its own, with a team, an API token, a capture page, a
//! smart link made through the links API and fans who signed up, is
//! exported and deleted from the dashboard. At once nobody can sign in,
//! the token is refused, the page and the link answer 404 (within the
//! instance caches' time on Workers) and the link's KV copy is gone,
//! while a signup through a page still cached is refused. Then the jobs:
//! nothing is purged inside the window; once the deletion is older than
//! it (the deletion's times are moved back in the database, as
//! tests/e2e/jobs.rs ages its rows: a runtime's clock can't be moved from
//! outside, and no request may move it), nothing of the workspace is left
//! in any table, and the suite's other artists keep every row.
//! Clients 198.51.100.70–89 (the burst in soak.rs and badinput.rs use 200 and up).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cases::{body, json, keys, Case, Res};
use crate::dashboard::{add_user, signup, Browser};
use crate::ensure;
use crate::runtime::{Kind, Target};

pub const ALL: &[(&str, Case)] = &[
    ("workspace_deleted_is_unreachable_at_once", deleted_is_unreachable_at_once),
    ("workspace_purged_after_the_window_leaves_nothing", purged_after_the_window_leaves_nothing),
];

const ARTIST: &str = "e2e-gone-artist";
const NAME: &str = "Gone & Co";
const TOKEN: &str = "sd_e2e_gone_workspace_token_5b2e";
const PAGE: &str = "e2e-gone";
const LINK: &str = "e2e-gone-link";
const OWNER: &str = "gone-owner@e2e.example";
const MEMBER: &str = "gone-member@e2e.example";
const FANS: [&str; 3] = ["gone-fan-0@example.com", "gone-fan-1@example.com", "gone-fan-2@example.com"];
const DAY: i64 = 86_400_000;

/// What the second case must find nowhere, by runtime: ids the first one
/// saw (fans and the link get random ids).
static NEEDLES: Mutex<Vec<(String, Vec<String>)>> = Mutex::new(Vec::new());

fn seed(t: &Target) -> Result<(), String> {
    let db = t.db_rw()?;
    db.execute_batch(&format!(
        "INSERT INTO artists (id, name, created_at) VALUES ('{ARTIST}', '{NAME}', 0);
         INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
           VALUES ('e2e-gone-page', '{ARTIST}', '{PAGE}', 'Gone list', 'Email me news from Gone & Co.', 'v1', 0, 0, 0);
         INSERT INTO api_tokens (id, artist_id, token_hash, label, created_at) VALUES ('e2e-gone-token', '{ARTIST}', '{hash}', 'gone', 0);
         INSERT INTO artist_settings (artist_id, require_totp) VALUES ('{ARTIST}', 0);
         INSERT INTO erasures (id, artist_id, at, by_user, method) VALUES ('e2e-gone-erasure', '{ARTIST}', 0, 'e2e-gone-owner', 'artist');
         INSERT INTO webhook_endpoints (id, artist_id, url, events, enabled, disabled_reason, secret_enc, created_at, updated_at)
           VALUES ('e2e-gone-endpoint', '{ARTIST}', 'https://crm.gone.e2e.example/hook', '*', 0, 'artist', 'k1.e2e-gone-secret', 0, 0);",
        hash = shared::crypto::sha256_hex(TOKEN.as_bytes()),
    ))
    .map_err(|e| format!("seeding: {e}"))?;
    drop(db);
    add_user(t, "e2e-gone-owner", ARTIST, OWNER, "owner")?;
    add_user(t, "e2e-gone-member", ARTIST, MEMBER, "member")
}

fn scalar(t: &Target, sql: &str) -> Result<i64, String> {
    t.db()?.query_row(sql, [], |r| r.get(0)).map_err(|e| format!("{sql}: {e}"))
}

fn strings(t: &Target, sql: &str) -> Result<Vec<String>, String> {
    let db = t.db()?;
    let mut stmt = db.prepare(sql).map_err(|e| format!("{sql}: {e}"))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| format!("{sql}: {e}"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
}

fn location(res: &Res) -> &str {
    res.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn api(t: &Target, method: &str, path: &str, data: &str) -> Result<Res, String> {
    let auth = format!("Bearer {TOKEN}");
    t.send(method, path, &[("authorization", &auth), ("content-type", "application/json")], data.as_bytes())
}

/// The rows of the suite's other artists, by table: what the deletion and
/// the purge must leave exactly as they were.
fn others(t: &Target) -> Result<BTreeMap<&'static str, Vec<String>>, String> {
    let mut out = BTreeMap::new();
    for (table, sql) in [
        ("artists", "SELECT id || name FROM artists WHERE id <> 'e2e-gone-artist'"),
        ("users", "SELECT id || role FROM users WHERE artist_id <> 'e2e-gone-artist'"),
        ("capture_pages", "SELECT id || slug || consent_text FROM capture_pages WHERE artist_id <> 'e2e-gone-artist'"),
        ("links", "SELECT id || slug || definition FROM links WHERE artist_id <> 'e2e-gone-artist'"),
        ("api_tokens", "SELECT id || token_hash FROM api_tokens WHERE artist_id <> 'e2e-gone-artist'"),
        ("fans", "SELECT id || status || email_hash FROM fans WHERE artist_id <> 'e2e-gone-artist'"),
        ("consent_events", "SELECT id || fan_id || kind FROM consent_events WHERE artist_id <> 'e2e-gone-artist'"),
        ("fan_restrictions", "SELECT fan_id FROM fan_restrictions WHERE artist_id <> 'e2e-gone-artist'"),
        ("erasures", "SELECT id FROM erasures WHERE artist_id <> 'e2e-gone-artist'"),
        ("webhook_endpoints", "SELECT id || url FROM webhook_endpoints WHERE artist_id <> 'e2e-gone-artist'"),
        ("link_stats", "SELECT link_id || day || kind || platform || referrer || count FROM link_stats WHERE artist_id <> 'e2e-gone-artist'"),
    ] {
        let mut rows = strings(t, sql)?;
        rows.sort();
        out.insert(table, rows);
    }
    Ok(out)
}

/// Waits until every path answers 404; the caches in front of a deleted
/// page or link may answer for up to `instance_cache_seconds` on Workers
/// (README "Deleting a workspace"). Returns how long it took.
fn until_404(t: &Target, paths: &[&str]) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let mut open = Vec::new();
        for p in paths {
            let res = t.send("GET", p, &[(t.ip_header(), "198.51.100.80")], b"")?;
            if res.status() != 404 {
                open.push(format!("{p}: {}", res.status()));
            }
        }
        if open.is_empty() {
            return Ok(started.elapsed());
        }
        let limit = Duration::from_secs(crate::runtime::INSTANCE_CACHE_SECONDS + 5);
        ensure!(started.elapsed() < limit, "still answering {limit:?} after the deletion: {open:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Spin host's key-value file holds `key`.
fn spin_kv_has(t: &Target, key: &str) -> Result<bool, String> {
    let c =
        rusqlite::Connection::open_with_flags(t.state.join("sqlite_key_value.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| e.to_string())?;
    c.query_row("SELECT count(*) FROM spin_key_value WHERE key = ?1", [key], |r| r.get::<_, i64>(0)).map(|n| n > 0).map_err(|e| e.to_string())
}

fn deleted_is_unreachable_at_once(t: &Target) -> Result<(), String> {
    // Seeded before any request of this case, so nothing deferred races it.
    seed(t)?;
    let link = format!(r#"{{"slug":"{LINK}","title":"Gone Single","targets":[{{"platform":"spotify","url":"https://open.spotify.com/album/e2e-gone"}}]}}"#);
    let res = api(t, "POST", "/api/v1/app/links", &link)?;
    ensure!(res.status() == 201, "link: {} {}", res.status(), body(&res));
    for (i, email) in FANS.iter().enumerate() {
        signup(t, &format!("198.51.100.{}", 70 + i), PAGE, email)?;
    }
    let fan_ids = strings(t, &format!("SELECT id FROM fans WHERE artist_id = '{ARTIST}' ORDER BY id"))?;
    ensure!(fan_ids.len() == 3, "fans: {fan_ids:?}");
    let link_id = strings(t, &format!("SELECT id FROM links WHERE slug = '{LINK}'"))?.concat();
    // A fan's mail, provider report, restriction and privacy request: the
    // purge must take them too.
    t.db_rw()?
        .execute_batch(&format!(
            "INSERT INTO mail_log (fan_id, artist_id, kind, at) VALUES ('{f}', '{ARTIST}', 'confirm', 0);
             INSERT INTO mail_events (id, fan_id, artist_id, kind, bounce_type, provider, provider_msg_id, at)
               VALUES ('e2e-gone-mail-event', '{f}', '{ARTIST}', 'bounce', 'transient', 'resend', 'e2e-gone-provider-msg', 0);
             INSERT INTO fan_restrictions (fan_id, artist_id, since, by_user) VALUES ('{f}', '{ARTIST}', 0, 'e2e-gone-owner');
             INSERT INTO privacy_requests (id, artist_id, fan_id, kind, token_hash, created_at, expires_at)
               VALUES ('e2e-gone-privacy', '{ARTIST}', '{f}', 'access', 'e2e-gone-privacy-hash', 0, 9000000000000);",
            f = fan_ids[2],
        ))
        .map_err(|e| format!("fan records: {e}"))?;
    let mut needles = vec!["e2e-gone".to_owned(), link_id.clone()];
    needles.extend(fan_ids.iter().cloned());
    needles.extend(FANS.iter().map(|e| keys().blind_index(ARTIST, e)));
    NEEDLES.lock().map_err(|e| e.to_string())?.push((t.base.clone(), needles));

    // Reachable before.
    ensure!(t.send("GET", &format!("/s/{PAGE}"), &[], b"")?.status() == 200, "capture page before");
    ensure!(t.send("GET", &format!("/l/{LINK}"), &[(t.ip_header(), "198.51.100.80")], b"")?.status() == 200, "link before");
    if t.kind == Kind::Spin {
        ensure!(spin_kv_has(t, &format!("link:{LINK}"))?, "no KV copy of the link before");
    }
    let mut owner = Browser::new(t, "198.51.100.73");
    owner.sign_in(OWNER)?;
    let mut member = Browser::new(t, "198.51.100.74");
    member.sign_in(MEMBER)?;

    // Members can't; the page offers the export first.
    ensure!(member.get("/app/workspace/delete")?.status() == 403, "a member reached the page");
    ensure!(member.get("/app/workspace/export.json")?.status() == 403, "a member got the export");
    let csrf = member.csrf()?;
    ensure!(member.post("/app/workspace/delete", &format!("csrf={csrf}&name=Gone+%26+Co"))?.status() == 403, "a member deleted");
    let page = body(&owner.get("/app/workspace/delete")?);
    ensure!(page.contains("/app/fans.csv") && page.contains("/app/workspace/export.json?part=1"), "the export isn't offered: {page}");
    let res = owner.get("/app/workspace/export.json")?;
    ensure!(res.status() == 200, "export: {} {}", res.status(), body(&res));
    let doc: Value = serde_json::from_slice(res.body()).map_err(|e| format!("export is not JSON: {e}: {}", body(&res)))?;
    let mut team: Vec<&str> = doc["team"].as_array().map(|a| a.iter().filter_map(|m| m["email"].as_str()).collect()).unwrap_or_default();
    team.sort();
    ensure!(team == [MEMBER, OWNER], "team: {}", doc["team"]);
    ensure!(doc["capture_pages"][0]["consent_text"] == "Email me news from Gone & Co.", "pages: {}", doc["capture_pages"]);
    ensure!(doc["links"][0]["definition"]["title"] == "Gone Single", "links: {}", doc["links"]);
    ensure!(
        doc["webhook_endpoints"][0]["url"] == "https://crm.gone.e2e.example/hook" && !body(&res).contains("secret"),
        "endpoints: {}",
        doc["webhook_endpoints"]
    );
    let fans = doc["fans"].as_array().cloned().unwrap_or_default();
    ensure!(fans.len() == 2 && doc["restricted_fans_left_out"] == 1, "fans: {fans:?}");
    let consent_hash = shared::crypto::sha256_hex(b"Email me news from Gone & Co.");
    for f in &fans {
        ensure!(FANS.contains(&f["email"].as_str().unwrap_or("")) && f["source_page"] == PAGE, "fan: {f}");
        let h = &f["consent_history"][0];
        ensure!(h["kind"] == "subscribe" && h["consent_sha256"] == consent_hash.as_str() && h["page"] == PAGE, "history: {f}");
    }

    // A wrong name, or no CSRF token: nothing changes.
    let csrf = owner.csrf()?;
    let res = owner.post("/app/workspace/delete", &format!("csrf={csrf}&name=Gone"))?;
    ensure!(res.status() == 422 && body(&res).contains("nothing was deleted"), "wrong name: {}", res.status());
    ensure!(owner.post("/app/workspace/delete", "name=Gone+%26+Co")?.status() == 403, "no CSRF token");
    ensure!(scalar(t, &format!("SELECT count(*) FROM users WHERE artist_id = '{ARTIST}'"))? == 2, "a refused deletion changed something");

    // The page read just before, so that a Workers isolate holds it
    // through the deletion (the suite's cache time is short).
    let cached = t.send("GET", &format!("/s/{PAGE}"), &[(t.ip_header(), "198.51.100.75")], b"")?;
    ensure!(cached.status() == 200, "the page before the deletion: {}", cached.status());
    let before = others(t)?;
    let res = owner.post("/app/workspace/delete", &format!("csrf={csrf}&name=Gone+%26+Co"))?;
    ensure!(res.status() == 200 && body(&res).contains("Workspace deleted"), "delete: {} {}", res.status(), body(&res));
    // A signup through the page while a Workers isolate may still cache it.
    let late = json(t, "198.51.100.75", &format!(r#"{{"page":"{PAGE}","email":"gone-late@example.com","consent":true}}"#))?;
    ensure!(late.status() == 404, "late signup: {} {}", late.status(), body(&late));
    ensure!(scalar(t, &format!("SELECT count(*) FROM fans WHERE artist_id = '{ARTIST}'"))? == 3, "a fan was added after the deletion");

    // Every session ended; nobody can sign in again; the token is refused.
    ensure!(location(&owner.get("/app/fans")?) == "/app/sign-in", "the owner is still signed in");
    ensure!(location(&member.get("/app/fans")?) == "/app/sign-in", "the member is still signed in");
    let mails = t.mail.requests().len();
    let mut again = Browser::new(t, "198.51.100.76");
    let form = body(&again.get("/app/sign-in")?);
    let csrf = form.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("").to_owned();
    ensure!(again.post("/app/sign-in", &format!("csrf={csrf}&email=gone-owner%40e2e.example"))?.status() == 200, "sign-in form");
    std::thread::sleep(Duration::from_millis(1500));
    ensure!(t.mail.requests().len() == mails, "a sign-in link was mailed for a deleted user");
    for path in ["/api/v1/app/links", "/api/v1/app/webhooks"] {
        let res = api(t, "GET", path, "")?;
        ensure!(res.status() == 401, "{path} with the token: {}", res.status());
    }

    // The page and the link: 404 once the caches let go (at once on Spin).
    let waited = until_404(t, &[&format!("/s/{PAGE}"), &format!("/l/{LINK}")])?;
    if t.kind == Kind::Spin {
        ensure!(waited < Duration::from_secs(2), "Spin has no cache, yet it took {waited:?}");
        ensure!(!spin_kv_has(t, &format!("link:{LINK}"))?, "the link's KV copy is still there");
    }
    // On Workers the link's KV copy held an hour; a 404 past the isolate's
    // cache time means KV has no copy left either.

    for (table, n) in
        [("users", 0), ("sessions", 0), ("api_tokens", 0), ("capture_pages", 0), ("links", 0), ("webhook_endpoints", 0), ("fans", 3), ("erasures", 1)]
    {
        let got = scalar(t, &format!("SELECT count(*) FROM {table} WHERE artist_id = '{ARTIST}'"))?;
        ensure!(got == n, "{table}: {got} rows of the deleted workspace, expected {n}");
    }
    ensure!(scalar(t, "SELECT count(*) FROM rate_windows WHERE key = 'signup-page:e2e-gone-page'")? == 0, "the page's rate-limit windows");
    ensure!(
        scalar(t, &format!("SELECT purge_after - requested_at FROM workspace_deletions WHERE artist_id = '{ARTIST}'"))? == 30 * DAY,
        "the purge is due 30 days after the deletion"
    );
    ensure!(others(t)? == before, "the deletion touched another artist's rows");
    Ok(())
}

/// Every row of every table, as text, that holds one of `needles`.
fn naming(t: &Target, needles: &[String]) -> Result<Vec<String>, String> {
    let db = t.db()?;
    let mut found = Vec::new();
    let tables: Vec<String> = {
        let mut stmt = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").map_err(|e| e.to_string())?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())?
    };
    for table in tables {
        let mut stmt = db.prepare(&format!("SELECT * FROM \"{table}\"")).map_err(|e| format!("{table}: {e}"))?;
        let cols = stmt.column_count();
        let mut rows = stmt.query([]).map_err(|e| format!("{table}: {e}"))?;
        while let Some(row) = rows.next().map_err(|e| format!("{table}: {e}"))? {
            let text: Vec<String> = (0..cols)
                .map(|i| match row.get_ref(i) {
                    Ok(rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b)) => String::from_utf8_lossy(b).into_owned(),
                    Ok(rusqlite::types::ValueRef::Integer(v)) => v.to_string(),
                    _ => String::new(),
                })
                .collect();
            let line = text.join("|");
            if needles.iter().any(|n| line.contains(n.as_str())) {
                found.push(format!("{table}: {line}"));
            }
        }
    }
    Ok(found)
}

fn report(t: &Target) -> Result<Value, String> {
    let (res, line) = crate::jobs::trigger(t)?;
    ensure!(res.status() == 200, "jobs: {} {line}", res.status());
    let json = line.rfind('}').map_or("", |end| &line[..=end]);
    serde_json::from_str(json).map_err(|e| format!("report: {e}: {line}"))
}

fn purged_after_the_window_leaves_nothing(t: &Target) -> Result<(), String> {
    let needles = NEEDLES.lock().map_err(|e| e.to_string())?.iter().find(|(b, _)| *b == t.base).map(|(_, n)| n.clone());
    let needles = needles.ok_or("run workspace_deleted_is_unreachable_at_once first: it deletes the workspace this case purges")?;
    let before = others(t)?;
    // Inside the window: nothing goes.
    let r = report(t)?;
    ensure!(r["removed"]["deleted_workspaces"] == 0, "purged inside the window: {r}");
    ensure!(scalar(t, &format!("SELECT count(*) FROM fans WHERE artist_id = '{ARTIST}'"))? == 3, "fans went inside the window");
    // The deletion, 31 days ago.
    t.db_rw()?
        .execute(
            "UPDATE workspace_deletions SET requested_at = requested_at - ?1, purge_after = purge_after - ?1 WHERE artist_id = ?2",
            rusqlite::params![31 * DAY, ARTIST],
        )
        .map_err(|e| e.to_string())?;
    let r = report(t)?;
    ensure!(r["complete"] == true && r["removed"]["deleted_workspaces"].as_u64().is_some_and(|n| n >= 10), "purge: {r}");
    let left = naming(t, &needles)?;
    ensure!(left.is_empty(), "left of the deleted workspace:\n{}", left.join("\n"));
    if t.kind == Kind::Spin {
        let c = rusqlite::Connection::open_with_flags(t.state.join("sqlite_key_value.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
        let n: i64 = c.query_row("SELECT count(*) FROM spin_key_value WHERE key LIKE '%e2e-gone%'", [], |r| r.get(0)).map_err(|e| e.to_string())?;
        ensure!(n == 0, "{n} KV entries of the deleted workspace");
    }
    ensure!(others(t)? == before, "the purge touched another artist's rows");
    Ok(())
}
