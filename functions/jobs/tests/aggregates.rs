//! The aggregate rows (schema/0014_aggregates.sql) against a recount,
//! natively, on the real SQLite engine: a mixed run of two artists through
//! the real handlers (signups single and double opt-in from several
//! places, confirmation, the fan's one-click unsubscribe, a bounce and a
//! complaint through the provider webhook, the dashboard's unsubscribe,
//! correction and erasure, smart-link views and clicks past the referrer
//! cap), then retention, a workspace deletion and its purge; after each
//! step every aggregate table equals a recount. And the backfill: a
//! database filled before the migration gets exactly the recount, and
//! applying the migration again changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use shared::adapters::native::recorder::Recorder;
use shared::adapters::native::{block_on, NativeEnv, MIGRATIONS};
use shared::http::{Method, Request as HttpRequest};
use shared::token::{Purpose, TokenKeys};
use shared::webhook::Secret;
use shared::{Env, Request, Response};

#[path = "../../../tests/e2e/aggregates_recount.rs"]
mod recount;

const DATA_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const INDEX_KEY: &str = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
const TOKEN_KEYS: &str = "t1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GEO_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.cache/geo/GeoIP2-City-Test.mmdb");
const DAY: i64 = 86_400_000;
// MaxMind's test database: London, Linköping, Milton (WA).
const GB: &str = "81.2.69.142";
const SE: &str = "89.160.20.128";
const US: &str = "216.160.83.56";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36";
/// A link's stored definition, after its slug.
const LINK: &str = r#""title":"Night","targets":[{"platform":"spotify","url":"https://open.spotify.com/album/abc"},{"platform":"apple-music","url":"https://music.apple.com/album/1"}]"#;

fn keys() -> shared::crypto::Keys {
    shared::crypto::Keys::parse(DATA_KEYS, INDEX_KEY).unwrap()
}

/// Two artists: `a1` (a single and a double opt-in page, a link, an
/// owner who signs in) and `a2` (one page, a link, an owner).
fn world() -> (NativeEnv, Recorder) {
    let mail = Recorder::start().unwrap();
    let mut env = NativeEnv::memory().unwrap();
    env.add_geo_file(Path::new(GEO_FILE)).expect("MaxMind test database (run `make geo-test-data`)");
    env.set_var("data_keys", DATA_KEYS).set_var("index_key", INDEX_KEY).set_var("token_keys", TOKEN_KEYS);
    env.set_var("public_base_url", "https://fans.example").set_var("email_api_key", "re_test").set_var("email_from", "Nova <news@nova.example>");
    env.set_var("email_api_base", &mail.url).set_var("email_webhook_secrets_resend", WEBHOOK_SECRET);
    // Many signups from the few addresses the test database places.
    env.set_var("signup_ip_limit", "1000/600");
    let conn = env.db.conn();
    conn.execute_batch(&format!(
        "INSERT INTO artists VALUES ('a1', 'Nova', 0), ('a2', 'Other Artist', 0);
         INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
           VALUES ('p1', 'a1', 'tour', 'Tour news', 'Send me tour news.', 'v1', 0, 0, 0),
                  ('p2', 'a1', 'doi', 'Confirmed list', 'Send me news.', 'v1', 1, 0, 0),
                  ('p3', 'a2', 'other', 'Other', 'Other news.', 'v1', 0, 0, 0);
         INSERT INTO links (id, artist_id, slug, definition, created_at, updated_at)
           VALUES ('l1', 'a1', 'night', '{{\"slug\":\"night\",{LINK}}}', 0, 0), ('l2', 'a2', 'day', '{{\"slug\":\"day\",{LINK}}}', 0, 0);"
    ))
    .unwrap();
    for (id, artist, email) in [("u1", "a1", "owner@nova.example"), ("u2", "a2", "owner@other.example")] {
        let k = keys();
        conn.execute(
            "INSERT INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, 'owner', 0)",
            [id, artist, &k.encrypt(email.as_bytes(), format!("user.email:{artist}").as_bytes()).unwrap(), &k.blind_index("users", email)],
        )
        .unwrap();
    }
    drop(conn);
    (env, mail)
}

fn request(method: Method, uri: &str, headers: &[(&str, &str)], body: &str) -> Request {
    let mut b = HttpRequest::builder().method(method).uri(uri).header("host", "fans.example");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.as_bytes().to_vec()).unwrap()
}

fn text(res: &Response) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

fn at(env: &mut NativeEnv, ip: Option<&str>) {
    env.client.ip = ip.map(|i| i.parse().unwrap());
}

fn signup(env: &mut NativeEnv, ip: Option<&str>, page: &str, email: &str) {
    at(env, ip);
    let body = format!(r#"{{"page":"{page}","email":"{email}","consent":true}}"#);
    let res = block_on(signup::handle(request(Method::POST, "/api/v1/signup", &[("content-type", "application/json")], &body), env));
    assert!(res.status().is_success(), "{email}: {} {}", res.status(), text(&res));
}

fn fan(env: &NativeEnv, artist: &str, email: &str) -> String {
    let hash = keys().blind_index(artist, email);
    env.db.conn().query_row("SELECT id FROM fans WHERE artist_id = ?1 AND email_hash = ?2", [artist, &hash], |r| r.get(0)).unwrap()
}

/// The confirmation link mailed to `to`, as a path.
fn confirm_link(mail: &Recorder, to: &str) -> String {
    mail.requests()
        .iter()
        .rev()
        .find_map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
            let text = v["text"].as_str()?;
            (v["to"][0] == to).then(|| text.split_whitespace().find(|w| w.contains("/confirm?t="))).flatten().map(str::to_owned)
        })
        .expect("a confirmation mail")
        .trim_start_matches("https://fans.example")
        .to_owned()
}

fn one_click(env: &NativeEnv, artist: &str, fan: &str) {
    let token = TokenKeys::parse(TOKEN_KEYS).unwrap().sign(Purpose::Unsubscribe, 0, fan, artist).unwrap();
    let req = request(Method::POST, &format!("/u/{token}"), &[("content-type", "application/x-www-form-urlencoded")], "List-Unsubscribe=One-Click");
    let res = block_on(unsubscribe::handle(req, env));
    assert_eq!(res.status(), 200, "{}", text(&res));
}

/// A provider report (Resend's shape), signed as Resend signs.
fn provider_reports(env: &NativeEnv, id: &str, ty: &str, artist: &str, fan: &str) {
    let body = serde_json::json!({
        "type": ty,
        "created_at": "2026-01-01T00:00:00.000Z",
        "data": {
            "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
            "to": ["fan@example.com"],
            "bounce": {"message": "No such mailbox.", "subType": "General", "type": "Permanent"},
            "tags": {"artist": artist, "fan": fan}
        }
    })
    .to_string();
    let ts = env.now_ms() / 1000;
    let sig = Secret::parse(WEBHOOK_SECRET).unwrap().sign(id, ts, body.as_bytes());
    let headers = [("content-type", "application/json"), ("svix-id", id), ("svix-timestamp", &ts.to_string()), ("svix-signature", &sig)];
    let res = block_on(webhooks::handle(request(Method::POST, "/hooks/email/resend", &headers, &body), env));
    assert!(res.status().is_success(), "{ty}: {} {}", res.status(), text(&res));
}

fn visit(env: &mut NativeEnv, ip: Option<&str>, path: &str, ua: &str, referer: Option<&str>) {
    at(env, ip);
    let mut headers = vec![("user-agent", ua)];
    if let Some(r) = referer {
        headers.push(("referer", r));
    }
    let res = block_on(links::handle(request(Method::GET, path, &headers, ""), env));
    assert!(res.status().is_success() || res.status().is_redirection(), "{path}: {} {:?}", res.status(), env.errors.borrow());
}

/// The dashboard as a browser uses it: cookies kept, same-origin posts.
struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn send(&mut self, env: &NativeEnv, method: Method, uri: &str, form: &str) -> Response {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let mut headers = vec![("cookie", cookie.as_str())];
        if method == Method::POST {
            headers.extend([("content-type", "application/x-www-form-urlencoded"), ("origin", "https://fans.example"), ("sec-fetch-site", "same-origin")]);
        }
        let res = block_on(dashboard::handle(request(method, uri, &headers, form), env));
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (kv, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !attrs.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), val.to_owned()));
            }
        }
        res
    }

    fn hidden(html: &str, name: &str) -> String {
        let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {html}"));
        let rest = &html[at + name.len() + 15..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// Signed in through the emailed link.
    fn signed_in(env: &NativeEnv, mail: &Recorder, email: &str) -> Browser {
        let mut b = Browser { cookies: Vec::new() };
        let csrf = Self::hidden(&text(&b.send(env, Method::GET, "/app/sign-in", "")), "csrf");
        let res = b.send(env, Method::POST, "/app/sign-in", &format!("csrf={csrf}&email={}", email.replace('@', "%40")));
        assert_eq!(res.status(), 200, "{}", text(&res));
        let link = mail
            .requests()
            .iter()
            .rev()
            .find_map(|r| {
                let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
                (v["to"][0] == email).then(|| v["text"].as_str()?.split_whitespace().find(|w| w.contains("/app/sign-in/verify")).map(str::to_owned)).flatten()
            })
            .expect("a sign-in mail");
        let page = text(&b.send(env, Method::GET, link.trim_start_matches("https://fans.example"), ""));
        let (csrf, t) = (Self::hidden(&page, "csrf"), Self::hidden(&page, "t"));
        assert_eq!(b.send(env, Method::POST, "/app/sign-in/verify", &format!("csrf={csrf}&t={t}")).status(), 303);
        b
    }

    fn post(&mut self, env: &NativeEnv, uri: &str, form: &str) -> Response {
        let csrf = Self::hidden(&text(&self.send(env, Method::GET, "/app/account", "")), "csrf");
        self.send(env, Method::POST, uri, &format!("csrf={csrf}&{form}"))
    }
}

fn assert_recount(env: &NativeEnv, step: &str) {
    if let Err(e) = recount::check(&env.db.conn()) {
        panic!("after {step}: {e}");
    }
}

fn rows_of(env: &NativeEnv, table: &str, artist: &str) -> i64 {
    recount::of_artist(&env.db.conn(), table, artist).unwrap()
}

#[test]
fn every_change_path_keeps_the_aggregates_equal_to_a_recount() {
    let (mut env, mail) = world();
    // Signups: a1's single opt-in page from three countries and from an
    // address the database cannot place, its double opt-in page, and a2's.
    for (i, ip) in [Some(GB), Some(GB), Some(SE), Some(US), None].into_iter().enumerate() {
        signup(&mut env, ip, "tour", &format!("tour{i}@example.com"));
    }
    for i in 0..3 {
        signup(&mut env, Some(SE), "doi", &format!("doi{i}@example.com"));
    }
    env.advance_ms(DAY);
    for i in 0..3 {
        signup(&mut env, Some(GB), "other", &format!("other{i}@example.com"));
    }
    // The same address again on the other page: an update, not a new fan.
    signup(&mut env, Some(US), "doi", "tour0@example.com");
    assert_recount(&env, "signups");

    // Double opt-in: two of three confirm, one link twice.
    for i in 0..2 {
        let link = confirm_link(&mail, &format!("doi{i}@example.com"));
        for _ in 0..2 {
            assert_eq!(block_on(signup::handle(request(Method::POST, &link, &[], ""), &env)).status(), 200);
        }
    }
    assert_recount(&env, "confirmations");

    // The fans' own one-click unsubscribe (twice: the second changes nothing).
    env.advance_ms(DAY);
    let (tour1, other0) = (fan(&env, "a1", "tour1@example.com"), fan(&env, "a2", "other0@example.com"));
    for _ in 0..2 {
        one_click(&env, "a1", &tour1);
        one_click(&env, "a2", &other0);
    }
    // A bounce and a complaint, one replayed.
    let (tour2, doi0) = (fan(&env, "a1", "tour2@example.com"), fan(&env, "a1", "doi0@example.com"));
    provider_reports(&env, "msg_bounce", "email.bounced", "a1", &tour2);
    provider_reports(&env, "msg_bounce", "email.bounced", "a1", &tour2);
    provider_reports(&env, "msg_complaint", "email.complained", "a1", &doi0);
    assert_recount(&env, "unsubscribes, a bounce and a complaint");

    // The dashboard: unsubscribe, correct a fan's place, erase a fan.
    let mut owner = Browser::signed_in(&env, &mail, "owner@nova.example");
    let (tour3, tour4) = (fan(&env, "a1", "tour3@example.com"), fan(&env, "a1", "tour4@example.com"));
    assert_eq!(owner.post(&env, &format!("/app/fans/{tour3}/unsubscribe"), "").status(), 303);
    let res = owner.post(&env, &format!("/app/fans/{tour4}/edit"), "email=tour4%40example.com&country=NO&region=Oslo&city=Oslo");
    assert_eq!(res.status(), 303, "{}", text(&res));
    let res = owner.post(&env, &format!("/app/fans/{tour1}/erase"), "confirm=erase");
    assert!(res.status().is_success() || res.status().is_redirection(), "{}", text(&res));
    assert_eq!(env.db.conn().query_row("SELECT count(*) FROM fans WHERE id = ?1", [&tour1], |r| r.get::<_, i64>(0)).unwrap(), 0, "erased");
    assert_recount(&env, "the dashboard's changes");
    let oslo = "SELECT count(*) FROM agg_fan_place WHERE artist_id = 'a1' AND country = 'NO' AND city = 'Oslo' AND n = 1";
    assert_eq!(env.db.conn().query_row(oslo, [], |r| r.get::<_, i64>(0)).unwrap(), 1, "the correction moved the fan");

    // Smart links: views and clicks on every dimension, over two days, and
    // 54 referrer hosts on one day (the first 50 keep their names, the
    // other 4 fold into '(other)' before any trigger sees them).
    for (ip, path, ua, referer) in [
        (Some(SE), "/l/night", IPHONE, None),
        (Some(SE), "/l/night/spotify", IPHONE, Some("https://l.instagram.com/")),
        (Some(SE), "/l/night/spotify", IPHONE, Some("https://l.instagram.com/")),
        (Some(GB), "/l/night/apple-music", DESKTOP, Some("https://www.example.org/post")),
        (None, "/l/night/spotify", ANDROID, None),
        (Some(US), "/l/day/spotify", ANDROID, Some("https://news.example/")),
        (Some(US), "/l/day", DESKTOP, None),
    ] {
        visit(&mut env, ip, path, ua, referer);
    }
    for i in 0..52 {
        visit(&mut env, Some(GB), "/l/night/spotify", IPHONE, Some(&format!("https://r{i}.example/")));
    }
    env.advance_ms(DAY);
    visit(&mut env, Some(GB), "/l/night/spotify", DESKTOP, Some("https://r0.example/"));
    assert_recount(&env, "link views and clicks");
    let other = "SELECT n FROM agg_link_daily WHERE link_id = 'l1' AND dim = 'referrer' AND value = '(other)'";
    assert_eq!(env.db.conn().query_row(other, [], |r| r.get::<_, i64>(0)).unwrap(), 4, "four hosts past the cap");

    // Both artists have rows in every table, and neither counts the other's.
    for (table, _, _) in recount::TABLES {
        assert!(rows_of(&env, table, "a1") > 0 && rows_of(&env, table, "a2") > 0, "{table}");
    }
    let a2 = "SELECT coalesce(sum(n), 0) FROM agg_fan_status WHERE artist_id = 'a2'";
    assert_eq!(env.db.conn().query_row(a2, [], |r| r.get::<_, i64>(0)).unwrap(), 3);

    // A capture page deleted: its fans' page becomes none (foreign key SET NULL).
    env.db.conn().execute("DELETE FROM capture_pages WHERE id = 'p2'", []).unwrap();
    assert_recount(&env, "a capture page deleted");

    // Retention, 13 months on: the unconfirmed signup and every counter
    // row of last year go, and their aggregates with them.
    env.advance_ms(400 * DAY);
    let report = block_on(jobs::retention::run(&env));
    assert!(report.failed.is_empty() && report.removed("pending_signups") == 1 && report.removed("link_stats") > 0, "{report:?}");
    assert_recount(&env, "retention");
    assert_eq!(rows_of(&env, "agg_link_daily", "a1"), 0, "no counter is older than its window");

    // a2 deletes its workspace: its aggregates go at once; a1's stay.
    let before: Vec<i64> = recount::TABLES.iter().map(|(t, _, _)| rows_of(&env, t, "a1")).collect();
    let mut other_owner = Browser::signed_in(&env, &mail, "owner@other.example");
    assert_eq!(other_owner.post(&env, "/app/workspace/delete", "name=Other+Artist").status(), 200);
    for (table, _, _) in recount::TABLES {
        assert_eq!(rows_of(&env, table, "a2"), 0, "{table} keeps rows of a deleted workspace");
    }
    assert_eq!(recount::TABLES.iter().map(|(t, _, _)| rows_of(&env, t, "a1")).collect::<Vec<_>>(), before);
    // A late one-click unsubscribe of its fan still works and is counted;
    // the purge then leaves nothing of a2 and the rest equal to a recount.
    let other1 = fan(&env, "a2", "other1@example.com");
    one_click(&env, "a2", &other1);
    env.advance_ms(31 * DAY);
    let report = block_on(jobs::retention::run(&env));
    assert!(report.failed.is_empty() && report.removed("deleted_workspaces") > 0, "{report:?}");
    for (table, _, _) in recount::TABLES {
        assert_eq!(rows_of(&env, table, "a2"), 0, "{table} after the purge");
    }
    assert_recount(&env, "the purge");
}

/// A database as it was before 0014, with every kind of row the
/// aggregates count (NULL places and pages, several days and link
/// dimensions, two artists).
fn before_the_migration() -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    for (name, sql) in MIGRATIONS.iter().take_while(|(n, _)| *n != "0014_aggregates.sql") {
        conn.execute_batch(sql).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    conn.execute_batch(
        "INSERT INTO artists VALUES ('a1', 'A', 0), ('a2', 'B', 0);
         INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, created_at, updated_at)
           VALUES ('p1', 'a1', 's1', 't', 'c', 'v1', 0, 0), ('p2', 'a2', 's2', 't', 'c', 'v1', 0, 0);
         INSERT INTO links (id, artist_id, slug, definition, created_at, updated_at) VALUES ('l1', 'a1', 'l1', '{}', 0, 0), ('l2', 'a2', 'l2', '{}', 0, 0);",
    )
    .unwrap();
    let statuses = ["pending", "subscribed", "unsubscribed", "bounced", "complained"];
    let places = [(Some("SE"), Some("Östergötland"), Some("Linköping")), (Some("GB"), None, None), (None, None, None)];
    for i in 0..60i64 {
        let artist = if i % 4 == 0 { "a2" } else { "a1" };
        let page = match i % 3 {
            0 => None,
            _ if artist == "a1" => Some("p1"),
            _ => Some("p2"),
        };
        let (country, region, city) = places[(i % 3) as usize];
        let at = 1_767_225_600_000 + i * 7 * 3_600_000;
        conn.execute(
            "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, country, region, city, source_page_id, consent_version, created_at, updated_at)
             VALUES (?1, ?2, 'x', ?1, ?3, ?4, ?5, ?6, ?7, 'v1', ?8, ?8)",
            rusqlite::params![format!("f{i}"), artist, statuses[(i % 5) as usize], country, region, city, page, at],
        )
        .unwrap();
        for (j, kind) in ["request", "confirm", "unsubscribe"].iter().take(1 + (i % 3) as usize).enumerate() {
            conn.execute(
                "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, method, at) VALUES (?1, ?2, ?3, ?4, ?5, 'double', ?6)",
                rusqlite::params![format!("e{i}-{j}"), format!("f{i}"), artist, kind, page, at + j as i64 * 3_600_000],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO link_stats (link_id, artist_id, day, kind, platform, country, referrer, device, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (link_id, day, kind, platform, country, referrer, device) DO UPDATE SET count = count + excluded.count",
            rusqlite::params![
                if artist == "a1" { "l1" } else { "l2" },
                artist,
                format!("2026-01-0{}", 1 + i % 3),
                if i % 2 == 0 { "view" } else { "click" },
                if i % 2 == 0 { "" } else { ["spotify", "apple-music"][(i % 4 / 2) as usize] },
                ["SE", "GB", ""][(i % 3) as usize],
                ["", "example.org", "(other)"][(i % 5 % 3) as usize],
                ["ios", "android", "desktop", "other"][(i % 4) as usize],
                1 + i % 7,
            ],
        )
        .unwrap();
    }
    conn
}

fn aggregates(conn: &rusqlite::Connection) -> Vec<Vec<String>> {
    recount::TABLES.iter().map(|(_, held, _)| recount::rows(conn, held).unwrap()).collect()
}

#[test]
fn the_backfill_counts_what_was_there_and_applying_it_again_changes_nothing() {
    let conn = before_the_migration();
    let migration = MIGRATIONS.iter().find(|(n, _)| *n == "0014_aggregates.sql").expect("0014 listed").1;
    conn.execute_batch(migration).unwrap();
    recount::check(&conn).unwrap();
    let once = aggregates(&conn);
    assert!(once.iter().all(|rows| !rows.is_empty()), "every table backfilled: {once:?}");
    // Applied again (Spin and the native adapter apply every file at each
    // start): the same rows, and the triggers count nothing twice.
    conn.execute_batch(migration).unwrap();
    assert_eq!(aggregates(&conn), once);
    // Counts that drifted (written by hand here) are put right by the next
    // application: wrong ones replaced, ones nothing counts dropped.
    conn.execute_batch(
        "UPDATE agg_fan_status SET n = n + 7; UPDATE agg_link_daily SET n = 1;
         INSERT INTO agg_fan_place VALUES ('a1', 'XX', '', '', 3);
         INSERT INTO agg_link_daily VALUES ('l1', 'a1', '2020-01-01', 'click', 'all', '', 2);
         INSERT INTO agg_link_artist_daily VALUES ('a2', '2020-01-01', 'view', '', 2);
         DELETE FROM agg_consent_daily WHERE artist_id = 'a2';",
    )
    .unwrap();
    assert!(recount::check(&conn).is_err());
    conn.execute_batch(migration).unwrap();
    assert_eq!(aggregates(&conn), once);
    conn.execute("UPDATE fans SET status = 'subscribed' WHERE id = 'f0'", []).unwrap();
    conn.execute(
        "INSERT INTO link_stats VALUES ('l1', 'a1', '2026-01-02', 'click', 'spotify', 'SE', '', 'ios', 5) \
         ON CONFLICT (link_id, day, kind, platform, country, referrer, device) DO UPDATE SET count = count + excluded.count",
        [],
    )
    .unwrap();
    recount::check(&conn).unwrap();
}

/// Writers other than the handlers: a count lowered or a key rewritten by
/// hand, rows deleted whole (a link and its counters, an artist and its
/// fans), all still equal to a recount.
#[test]
fn any_writer_keeps_them_exact() {
    let conn = before_the_migration();
    conn.execute_batch(MIGRATIONS.iter().find(|(n, _)| *n == "0014_aggregates.sql").unwrap().1).unwrap();
    for sql in [
        "UPDATE link_stats SET count = count - 1 WHERE count > 1",
        "UPDATE link_stats SET country = 'NO' WHERE country = 'SE'",
        "UPDATE link_stats SET count = 0 WHERE device = 'ios'",
        "UPDATE fans SET country = NULL, city = 'Nowhere' WHERE country = 'GB'",
        "UPDATE fans SET source_page_id = NULL WHERE source_page_id = 'p1'",
        "DELETE FROM consent_events WHERE kind = 'confirm'",
        "DELETE FROM links WHERE id = 'l2'",
        "DELETE FROM artists WHERE id = 'a2'",
    ] {
        conn.execute(sql, []).unwrap_or_else(|e| panic!("{sql}: {e}"));
        if let Err(e) = recount::check(&conn) {
            panic!("after `{sql}`: {e}");
        }
    }
    for (table, _, _) in recount::TABLES {
        assert_eq!(recount::of_artist(&conn, table, "a2").unwrap(), 0, "{table}");
    }
}
