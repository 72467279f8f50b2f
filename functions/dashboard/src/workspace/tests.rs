//! Deleting a workspace, against the real SQLite engine: owners only, the
//! name typed to confirm, CSRF; everything that reaches the workspace gone
//! at once while a second artist with data of their own keeps all of it;
//! and the export holding every kind of record, in parts for long lists.

use serde_json::Value;
use shared::adapters::native::recorder::Recorder;
use shared::adapters::native::{block_on, NativeEnv};
use shared::http::Request as HttpRequest;
use shared::{Env, Kv};

use crate::tests::{hidden, text, Browser};

const DATA_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const INDEX_KEY: &str = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
const NAME: &str = "Nova & the Tides";
const NOVA_TOKEN: &str = "sd_nova_token_for_tests";
const DAY: i64 = 86_400_000;

fn keys() -> shared::crypto::Keys {
    shared::crypto::Keys::parse(DATA_KEYS, INDEX_KEY).unwrap()
}

struct World {
    env: NativeEnv,
    mail: Recorder,
}

/// Two artists with a row in every table a workspace has: `art-nova`
/// (ids `nova-…`), which gets deleted, and `art-other` (`other-…`).
fn world() -> World {
    let mail = Recorder::start().unwrap();
    let mut env = NativeEnv::memory().unwrap();
    env.set_var("data_keys", DATA_KEYS).set_var("index_key", INDEX_KEY);
    env.set_var("public_base_url", "https://fans.example").set_var("email_api_key", "re_test").set_var("email_from", "Stagedoor <a@example.com>");
    env.set_var("email_api_base", &mail.url);
    env.client.ip = Some("203.0.113.7".parse().unwrap());
    let k = keys();
    let now = env.now_ms();
    let conn = env.db.conn();
    for (artist, p, name) in [("art-nova", "nova", NAME), ("art-other", "other", "Other Artist")] {
        conn.execute("INSERT INTO artists VALUES (?1, ?2, 0)", [artist, name]).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, thanks_text, created_at, updated_at)
               VALUES ('{p}-page', '{artist}', '{p}-tour', 'Tour news', 'Send me {p} tour news.', 'v2', 1, 'Thanks!', 0, 0);
             INSERT INTO links (id, artist_id, slug, definition, created_at, updated_at) VALUES
               ('{p}-link', '{artist}', '{p}-night', '{{\"title\":\"Night\",\"targets\":[{{\"platform\":\"spotify\",\"url\":\"https://open.spotify.com/x\"}}]}}', 0, 0);
             INSERT INTO link_stats (link_id, artist_id, day, kind, platform, country, referrer, device, count) VALUES ('{p}-link', '{artist}', '2026-01-01', 'click', 'spotify', 'SE', '', 'ios', 4);
             INSERT INTO api_tokens (id, artist_id, token_hash, label, created_at) VALUES ('{p}-token', '{artist}', '{hash}', 'bot', 0);
             INSERT INTO api_token_use VALUES ('{p}-token', 0);
             INSERT INTO artist_settings VALUES ('{artist}', 0);
             INSERT INTO erasures VALUES ('{p}-erasure', '{artist}', 0, '{p}-owner', 'artist');
             INSERT INTO rate_windows (key, slot, count, lim, expires_at) VALUES ('signup-page:{p}-page', 1, 1, 1000, {soon});
             INSERT INTO consent_versions VALUES ('{artist}', '{p}-page', 'v1', 'Send me news.', NULL, 0), ('{artist}', '{p}-page', 'v2', 'Send me {p} tour news.', 'h', 0);
             INSERT INTO webhook_endpoints (id, artist_id, url, events, secret_enc, created_at, updated_at)
               VALUES ('{p}-endpoint', '{artist}', 'https://crm.{p}.example/hook', 'fan.subscribed link.created', 'k1.secret-{p}', 0, 0);",
            hash = shared::crypto::sha256_hex(if p == "nova" { NOVA_TOKEN.as_bytes() } else { b"sd_other" }),
            soon = now + 600_000,
        ))
        .unwrap();
        for (id, email, role) in
            [(format!("{p}-owner"), format!("owner@{p}.example"), "owner"), (format!("{p}-member"), format!("member@{p}.example"), "member")]
        {
            conn.execute(
                "INSERT INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                [&id, artist, &k.encrypt(email.as_bytes(), format!("user.email:{artist}").as_bytes()).unwrap(), &k.blind_index("users", &email), role],
            )
            .unwrap();
        }
        conn.execute_batch(&format!("INSERT INTO recovery_codes VALUES ('{p}-owner', '{p}-code', NULL);")).unwrap();
        for i in 0..3 {
            let (id, email) = (format!("{p}-fan-{i}"), format!("fan{i}@{p}.example"));
            conn.execute(
                "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, country, region, city, source_page_id, consent_version, created_at, subscribed_at, confirmed_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'subscribed', 'SE', 'Östergötland', 'Linköping', ?5, 'v2', ?6, ?6, ?6, ?6)",
                [&id, artist, &k.encrypt(email.as_bytes(), shared::crypto::fan_email_context(artist, &id).as_bytes()).unwrap(), &k.blind_index(artist, &email), &format!("{p}-page"), &(1_767_225_600_000i64 + i * 1000).to_string()],
            )
            .unwrap();
            conn.execute_batch(&format!(
                "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at)
                   VALUES ('{p}-request-{i}', '{id}', '{artist}', 'request', '{p}-page', 'v2', 'h', 'double', 1767225600000),
                          ('{p}-confirm-{i}', '{id}', '{artist}', 'confirm', '{p}-page', 'v2', 'h', 'link', 1767225660000);
                 INSERT INTO mail_log (fan_id, artist_id, kind, at) VALUES ('{id}', '{artist}', 'confirm', 1767225630000);"
            ))
            .unwrap();
        }
        conn.execute_batch(&format!(
            "INSERT INTO fan_restrictions VALUES ('{p}-fan-2', '{artist}', 0, '{p}-owner');
             INSERT INTO webhook_messages (id, artist_id, endpoint_id, event_id, type, fan_id, payload, status, next_at, created_at)
               VALUES ('{p}-message', '{artist}', '{p}-endpoint', '{p}-event', 'fan.subscribed', '{p}-fan-0', '{{}}', 'failed', 0, 0);
             INSERT INTO webhook_attempts (id, message_id, artist_id, at, status, latency_ms) VALUES ('{p}-attempt', '{p}-message', '{artist}', 0, 500, 1);"
        ))
        .unwrap();
    }
    drop(conn);
    for p in ["nova", "other"] {
        block_on(env.kv().put(&format!("link:{p}-night"), b"{}", Some(3600))).unwrap();
    }
    World { env, mail }
}

/// A browser signed in as `email`, through the emailed link.
fn signed_in(w: &World, email: &str) -> Browser {
    let mut b = Browser::new();
    let res = b.sign_in_with(&w.env, &w.mail, email);
    assert_eq!(res.status(), 303, "{}", text(&res));
    b
}

fn count(w: &World, sql: &str) -> i64 {
    w.env.db.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn about(rows: &[String], needle: &str) -> Vec<String> {
    rows.iter().filter(|r| r.contains(needle)).cloned().collect()
}

fn delete_form(name: &str, csrf: &str) -> String {
    format!("csrf={csrf}&name={}", name.replace('&', "%26").replace(' ', "+"))
}

#[test]
fn only_owners_see_the_page_the_export_and_the_deletion() {
    let w = world();
    let mut member = signed_in(&w, "member@nova.example");
    let mut owner = signed_in(&w, "owner@nova.example");
    let before = w.env.db.every_row().unwrap();
    let csrf = member.csrf(&w.env);
    assert!(!text(&member.get(&w.env, "/app/account")).contains("/app/workspace/delete"), "no link for members");
    assert_eq!(member.get(&w.env, "/app/workspace/delete").status(), 403);
    assert_eq!(member.get(&w.env, "/app/workspace/export.json").status(), 403);
    assert_eq!(member.post(&w.env, "/app/workspace/delete", &delete_form(NAME, &csrf)).status(), 403);
    assert!(text(&owner.get(&w.env, "/app/account")).contains("href=\"/app/workspace/delete\""), "owners find it under Account");
    let page = owner.get(&w.env, "/app/workspace/delete");
    assert_eq!(page.status(), 200);
    let html = text(&page);
    for part in ["href=\"/app/fans.csv\"", "href=\"/app/workspace/export.json?part=1\"", "name=\"name\"", "Nova &amp; the Tides"] {
        assert!(html.contains(part), "{part} missing from the page");
    }
    let after = w.env.db.every_row().unwrap();
    for t in ["users", "capture_pages", "links", "fans", "api_tokens", "webhook_endpoints", "workspace_deletions"] {
        assert_eq!(before[t], after[t], "{t} changed");
    }
}

#[test]
fn a_wrong_name_or_a_forged_request_changes_nothing() {
    let w = world();
    let mut owner = signed_in(&w, "owner@nova.example");
    let csrf = owner.csrf(&w.env);
    let before = w.env.db.every_row().unwrap();
    for typed in ["", "Nova", "nova &amp; the tides", "Nova & the Tides!"] {
        let res = owner.post(&w.env, "/app/workspace/delete", &delete_form(typed, &csrf));
        assert_eq!(res.status(), 422, "{typed:?}");
        let html = text(&res);
        assert!(html.contains("id=\"err-name\"") && html.contains("nothing was deleted"), "{html}");
    }
    assert_eq!(owner.post(&w.env, "/app/workspace/delete", &delete_form(NAME, "forged")).status(), 403);
    assert_eq!(owner.post(&w.env, "/app/workspace/delete", &format!("name={}", delete_form(NAME, "").split("name=").nth(1).unwrap())).status(), 403);
    assert_eq!(owner.post_cross_site(&w.env, "/app/workspace/delete", &delete_form(NAME, &csrf)).status(), 403, "cross-site");
    let after = w.env.db.every_row().unwrap();
    // Sessions are touched by every request; nothing else may move.
    for (t, rows) in &before {
        if t != "sessions" {
            assert_eq!(rows, &after[t], "{t} changed");
        }
    }
    assert_eq!(owner.get(&w.env, "/app/fans").status(), 200, "still signed in");
}

#[test]
fn deletion_removes_every_way_in_at_once_and_leaves_the_other_artist_alone() {
    let w = world();
    let mut owner = signed_in(&w, "owner@nova.example");
    let mut member = signed_in(&w, "member@nova.example");
    let mut other = signed_in(&w, "owner@other.example");
    let before = w.env.db.every_row().unwrap();
    let csrf = owner.csrf(&w.env);
    let now = w.env.now_ms();
    let res = owner.post(&w.env, "/app/workspace/delete", &delete_form(NAME, &csrf));
    assert_eq!(res.status(), 200, "{}", text(&res));
    let html = text(&res);
    assert!(html.contains("Workspace deleted") && html.contains(&crate::view::datetime(Some(now + 30 * DAY))), "{html}");
    assert!(res.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("__Host-sd_session=;")), "signed out");
    // Every session of every user has ended; nobody can sign in again.
    for b in [&mut owner, &mut member] {
        assert_eq!(b.get(&w.env, "/app/fans").headers()["location"], "/app/sign-in");
    }
    let mails = w.mail.requests().len();
    let mut again = Browser::new();
    let csrf = hidden(&text(&again.get(&w.env, "/app/sign-in")), "csrf");
    assert_eq!(again.post(&w.env, "/app/sign-in", &format!("csrf={csrf}&email=owner%40nova.example")).status(), 200);
    assert_eq!(w.mail.requests().len(), mails, "no sign-in link for a deleted user");
    // API tokens no longer open the workspace.
    let api = HttpRequest::builder().uri("/api/v1/app/webhooks").header("authorization", format!("Bearer {NOVA_TOKEN}")).body(Vec::new()).unwrap();
    assert_eq!(block_on(crate::handle(api, &w.env)).status(), 401);
    // The record, and what stays until the purge.
    let (by, requested, purge): (String, i64, i64) = w
        .env
        .db
        .conn()
        .query_row("SELECT by_user, requested_at, purge_after FROM workspace_deletions WHERE artist_id = 'art-nova'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((by.as_str(), requested, purge), ("nova-owner", now, now + 30 * DAY));
    let after = w.env.db.every_row().unwrap();
    for t in [
        "users",
        "sessions",
        "recovery_codes",
        "api_tokens",
        "api_token_use",
        "capture_pages",
        "links",
        "link_stats",
        "webhook_endpoints",
        "webhook_messages",
        "webhook_attempts",
    ] {
        assert_eq!(about(&after[t], "nova-"), Vec::<String>::new(), "{t} still reaches the deleted workspace");
    }
    assert_eq!(count(&w, "SELECT count(*) FROM sign_in_links WHERE user_id LIKE 'nova-%'"), 0);
    // The dashboard's counts (schema/0014) go at once: only it read them.
    for t in ["agg_fan_status", "agg_fan_place", "agg_fan_page", "agg_consent_daily", "agg_link_daily", "agg_link_artist_daily"] {
        assert!(!about(&before[t], "art-nova").is_empty(), "{t}: the world counts something of the workspace");
        assert_eq!(about(&after[t], "art-nova"), Vec::<String>::new(), "{t} still counts the deleted workspace");
    }
    assert!(about(&after["rate_windows"], "nova-page").is_empty(), "the page's rate-limit windows");
    for t in ["consent_events", "consent_versions", "mail_log", "fan_restrictions", "erasures", "artist_settings", "artists"] {
        assert_eq!(about(&after[t], "nova"), about(&before[t], "nova"), "{t} is kept until the purge");
    }
    // The fans too; the schema forgets their source page with the page.
    let unsourced: Vec<String> = about(&before["fans"], "nova").iter().map(|r| r.replace("|nova-page|", "|NULL|")).collect();
    assert_eq!(about(&after["fans"], "nova"), unsourced);
    assert!(block_on(w.env.kv().get("link:nova-night")).unwrap().is_none(), "the link's KV copy is gone");
    assert!(block_on(w.env.kv().get("link:other-night")).unwrap().is_some());
    // The other artist: every row, and still signed in.
    for (t, rows) in &before {
        if t != "sessions" && t != "workspace_deletions" {
            assert_eq!(about(&after[t], "other"), about(rows, "other"), "{t}: the other artist's rows changed");
        }
    }
    assert_eq!(count(&w, "SELECT count(*) FROM sessions WHERE artist_id = 'art-other'"), 1);
    assert_eq!(other.get(&w.env, "/app/fans").status(), 200);
    assert_eq!(other.get(&w.env, "/app/pages/nova-page").status(), 404);
}

#[test]
fn the_export_holds_every_kind_of_record() {
    let w = world();
    let mut owner = signed_in(&w, "owner@nova.example");
    let res = owner.get(&w.env, "/app/workspace/export.json");
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"workspace-"));
    let doc: Value = serde_json::from_str(&text(&res)).unwrap();
    assert_eq!(doc["format"], "stagedoor.workspace-export/1");
    assert_eq!(doc["artist"], serde_json::json!({ "id": "art-nova", "name": NAME, "created_at": "1970-01-01T00:00:00Z" }));
    assert_eq!(doc["exported_at"], crate::fans::iso(Some(w.env.now_ms())));
    assert_eq!((doc["part"].as_u64(), doc["parts"].as_u64()), (Some(1), Some(1)));
    let team: Vec<(&str, &str)> = doc["team"].as_array().unwrap().iter().map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap())).collect();
    assert_eq!(team, [("member@nova.example", "member"), ("owner@nova.example", "owner")]);
    let page = &doc["capture_pages"][0];
    assert_eq!(
        (page["slug"].as_str(), page["consent_text"].as_str(), page["consent_version"].as_str()),
        (Some("nova-tour"), Some("Send me nova tour news."), Some("v2"))
    );
    assert_eq!(page["double_opt_in"], true);
    assert_eq!(page["created_at"], "1970-01-01T00:00:00Z");
    let texts: Vec<(&str, &str)> =
        page["consent_versions"].as_array().unwrap().iter().map(|v| (v["version"].as_str().unwrap(), v["consent_text"].as_str().unwrap())).collect();
    assert_eq!(texts, [("v1", "Send me news."), ("v2", "Send me nova tour news.")], "every wording fans agreed to");
    let link = &doc["links"][0];
    assert_eq!((link["slug"].as_str(), link["definition"]["targets"][0]["platform"].as_str()), (Some("nova-night"), Some("spotify")));
    let endpoint = &doc["webhook_endpoints"][0];
    assert_eq!((endpoint["url"].as_str(), endpoint["enabled"].as_bool()), (Some("https://crm.nova.example/hook"), Some(true)));
    assert!(!text(&res).contains("secret"), "no secret, not even encrypted");
    assert_eq!(doc["restricted_fans_left_out"], 1);
    let fans = doc["fans"].as_array().unwrap();
    let emails: Vec<&str> = fans.iter().map(|f| f["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["fan1@nova.example", "fan0@nova.example"], "newest first, the restricted fan left out");
    let fan = &fans[1];
    for (field, want) in [
        ("id", "nova-fan-0"),
        ("status", "subscribed"),
        ("country", "SE"),
        ("region", "Östergötland"),
        ("city", "Linköping"),
        ("source_page", "nova-tour"),
        ("signed_up_at", "2026-01-01T00:00:00Z"),
        ("consent_version", "v2"),
        ("subscribed_at", "2026-01-01T00:00:00Z"),
        ("confirmed_at", "2026-01-01T00:00:00Z"),
    ] {
        assert_eq!(fan[field], want, "{field}");
    }
    assert_eq!(fan["unsubscribed_at"], Value::Null);
    let history = fan["consent_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[1],
        serde_json::json!({ "kind": "confirm", "method": "link", "at": "2026-01-01T00:01:00Z", "page": "nova-tour", "consent_version": "v2", "consent_sha256": "h" })
    );
    // The other artist's data appears nowhere.
    assert!(!text(&res).contains("other"), "{}", text(&res));
}

#[test]
fn a_long_fan_list_comes_in_parts_that_hold_each_fan_once() {
    let w = world();
    let n = super::FANS_PER_PART + 1_500;
    {
        let k = keys();
        let tx = w.env.db.conn();
        tx.execute_batch("BEGIN").unwrap();
        for i in 0..n {
            let (id, email) = (format!("bulk-{i:06}"), format!("bulk{i}@fans.example"));
            tx.execute(
                "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, source_page_id, consent_version, created_at, subscribed_at, updated_at)
                 VALUES (?1, 'art-nova', ?2, ?3, 'subscribed', 'nova-page', 'v2', ?4, ?4, ?4)",
                (
                    &id,
                    &k.encrypt(email.as_bytes(), shared::crypto::fan_email_context("art-nova", &id).as_bytes()).unwrap(),
                    &k.blind_index("art-nova", &email),
                    1_767_225_700_000 + (i as i64 / 3),
                ),
            )
            .unwrap();
            tx.execute(
                "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) VALUES (?1, ?2, 'art-nova', 'subscribe', 'nova-page', 'v2', 'h', 'single', 1767225700000)",
                [format!("bulk-event-{i}"), id],
            )
            .unwrap();
        }
        tx.execute_batch("COMMIT").unwrap();
    }
    let mut owner = signed_in(&w, "owner@nova.example");
    let page = text(&owner.get(&w.env, "/app/workspace/delete"));
    assert!(page.contains("href=\"/app/workspace/export.json?part=2\"") && page.contains("part 2 of 2"), "{page}");
    let started = std::time::Instant::now();
    let first = owner.get(&w.env, "/app/workspace/export.json");
    let elapsed = started.elapsed();
    let second = owner.get(&w.env, "/app/workspace/export.json?part=2");
    let mut seen = std::collections::HashSet::new();
    for (res, want) in [(&first, super::FANS_PER_PART), (&second, n + 2 - super::FANS_PER_PART)] {
        assert_eq!(res.status(), 200);
        let doc: Value = serde_json::from_slice(res.body()).unwrap();
        let fans = doc["fans"].as_array().unwrap();
        assert_eq!(fans.len(), want);
        for f in fans {
            assert!(seen.insert(f["id"].as_str().unwrap().to_owned()), "{} twice", f["id"]);
            assert_eq!(f["consent_history"].as_array().map(Vec::len), Some(if f["id"].as_str().unwrap().starts_with("bulk") { 1 } else { 2 }));
        }
    }
    assert_eq!(seen.len(), n + 2, "every fan but the restricted one");
    // The figure the README quotes (run with --nocapture to see it).
    println!(
        "workspace export: {} fans in {} bytes ({} a fan, one consent event each), {elapsed:?} in this build",
        super::FANS_PER_PART,
        first.body().len(),
        first.body().len() / super::FANS_PER_PART
    );
    for bad in ["0", "3", "x", "-1", "99999999999999999999999"] {
        let res = owner.get(&w.env, &format!("/app/workspace/export.json?part={bad}"));
        assert_eq!(res.status(), 404, "part={bad}");
        assert!(text(&res).contains("no such part"), "{}", text(&res));
    }
}
