//! Fans' own privacy requests against the real SQLite engine: the notice
//! and its settings, the same answer for every address, limits, the
//! single-use link, and access and erasure compared with what the
//! dashboard gives the artist. Two artists share a fan's address
//! throughout; the second one's fan must never move.

use serde_json::{json, Value};
use shared::adapters::native::recorder::Recorder;
use shared::adapters::native::{block_on, NativeEnv};
use shared::http::{Method, Request as HttpRequest};
use shared::Response;

const DATA_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const INDEX_KEY: &str = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
const TOKEN: &str = "sd_nova_privacy_token";
/// On both artists' lists.
const FAN: &str = "fan@example.com";

struct World {
    env: NativeEnv,
    mail: Recorder,
}

fn keys() -> shared::crypto::Keys {
    shared::crypto::Keys::parse(DATA_KEYS, INDEX_KEY).unwrap()
}

fn world() -> World {
    let mail = Recorder::start().unwrap();
    let mut env = NativeEnv::memory().unwrap();
    env.set_var("data_keys", DATA_KEYS).set_var("index_key", INDEX_KEY).set_var("webhook_allow_loopback_for_tests", "true");
    env.set_var("public_base_url", "https://fans.example").set_var("email_api_key", "re_test").set_var("email_from", "Nova <news@nova.example>");
    env.set_var("email_api_base", &mail.url);
    env.client.ip = Some("203.0.113.7".parse().unwrap());
    let conn = env.db.conn();
    conn.execute_batch(&format!(
        "INSERT INTO artists VALUES ('a1', 'Nova & the Tides', 0), ('a2', 'Other Artist', 0);
         INSERT INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES ('u1', 'a1', 'x', 'y', 'owner', 0);
         INSERT INTO api_tokens (id, artist_id, token_hash, label, created_at) VALUES ('t1', 'a1', '{}', 'crm', 0);
         INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
           VALUES ('p1', 'a1', 'tour', 'Tour news', 'Send me tour news.', 'v1', 0, 0, 0), ('p2', 'a2', 'other', 'Other', 'Other news.', 'v1', 0, 0, 0);",
        shared::crypto::sha256_hex(TOKEN.as_bytes())
    ))
    .unwrap();
    for (id, artist, email, page) in [("f1", "a1", FAN, "p1"), ("f2", "a1", "two@example.com", "p1"), ("f3", "a2", FAN, "p2")] {
        let enc = keys().encrypt(email.as_bytes(), shared::crypto::fan_email_context(artist, id).as_bytes()).unwrap();
        conn.execute(
            "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, country, region, city, eu, source_page_id, consent_version, created_at, updated_at, subscribed_at)
             VALUES (?1, ?2, ?3, ?4, 'subscribed', 'SE', 'Östergötland', 'Linköping', 1, ?5, 'v1', 1767225600000, 1767225600000, 1767225600000)",
            [id, artist, &enc, &keys().blind_index(artist, email), page],
        )
        .unwrap();
        let hash = shared::crypto::sha256_hex(if page == "p1" { b"Send me tour news." } else { b"Other news." });
        conn.execute(
            "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) VALUES (?1, ?2, ?3, 'subscribe', ?4, 'v1', ?5, 'single', 1767225600000)",
            [&format!("e{id}"), id, artist, page, &hash],
        )
        .unwrap();
        conn.execute("INSERT INTO mail_log (fan_id, artist_id, kind, at) VALUES (?1, ?2, 'confirm', 1767225630000)", [id, artist]).unwrap();
    }
    drop(conn);
    World { env, mail }
}

impl World {
    fn send(&self, method: Method, uri: &str, form: Option<&str>, headers: &[(&str, &str)]) -> Response {
        let mut b = HttpRequest::builder().method(method).uri(uri).header("host", "fans.example");
        if form.is_some() {
            b = b.header("content-type", "application/x-www-form-urlencoded");
            if !headers.iter().any(|(k, _)| *k == "sec-fetch-site") {
                b = b.header("sec-fetch-site", "same-origin");
            }
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        block_on(crate::handle(b.body(form.unwrap_or("").as_bytes().to_vec()).unwrap(), &self.env))
    }

    fn get(&self, uri: &str) -> Response {
        self.send(Method::GET, uri, None, &[])
    }

    fn post(&self, uri: &str, form: &str) -> Response {
        self.send(Method::POST, uri, Some(form), &[])
    }

    /// Asks at artist `artist`'s page; the mail's link comes back as a path.
    fn ask(&self, artist: &str, email: &str, kind: &str) -> Response {
        self.post(&format!("/privacy/{artist}"), &format!("email={}&kind={kind}", email.replace('@', "%40")))
    }

    fn mails(&self) -> Vec<Value> {
        self.mail.requests().iter().filter_map(|r| serde_json::from_slice(&r.body).ok()).collect()
    }

    /// The path of the last privacy link mailed.
    fn last_link(&self) -> String {
        let mail = self.mails().pop().expect("a mail");
        let text = mail["text"].as_str().unwrap().to_owned();
        let link = text.split_whitespace().find(|w| w.contains("/confirm?t=")).expect("a link").to_owned();
        link.strip_prefix("https://fans.example").unwrap().to_owned()
    }

    fn count(&self, sql: &str) -> i64 {
        self.env.db.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// The other artist's fan with the same address, as stored.
    fn other_fan(&self) -> (String, String, String, i64, i64) {
        self.env
            .db
            .conn()
            .query_row(
                "SELECT email_enc, email_hash, status, (SELECT count(*) FROM consent_events WHERE fan_id = 'f3'), (SELECT count(*) FROM mail_log WHERE fan_id = 'f3') FROM fans WHERE id = 'f3'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap()
    }
}

fn text(res: &Response) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

fn token_of(path: &str) -> &str {
    path.split("t=").nth(1).unwrap()
}

#[test]
fn the_notice_states_the_settings_and_the_age_notice() {
    let mut w = world();
    let res = w.get("/privacy/a1");
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "{csp}");
    let page = text(&res);
    // Regression: the doctype sat inside <head>, which puts browsers in quirks mode.
    assert!(page.starts_with("<!DOCTYPE html><html lang=\"en\"><head>"), "{}", &page[..80]);
    for said in [
        "Nova &amp; the Tides",
        "30 days, then it is deleted",
        "mail sent to you: 90 days",
        "(webhooks), and the log of their delivery: 90 days",
        "links: 12 months",
        "after 30 minutes",
        "Not for children under 16.",
        "stored encrypted",
        "IP address itself is never stored",
        "SHA-256",
        "(the processor)",
        "action=\"/privacy/a1\"",
    ] {
        assert!(page.contains(said), "missing {said:?}");
    }
    assert!(!page.contains("<script"));
    w.env.set_var("retention_mail_log_days", "45").set_var("retention_pending_signup_days", "1").set_var("retention_link_stats_months", "6");
    w.env.set_var("retention_webhook_days", "14").set_var("privacy_link_minutes", "10").set_var("min_age", "13");
    let page = text(&w.get("/privacy/a1"));
    for said in ["1 day, then", "mail sent to you: 45 days", "delivery: 14 days", "links: 6 months", "after 10 minutes", "Not for children under 13."] {
        assert!(page.contains(said), "missing {said:?} once the settings changed");
    }
    w.env.set_var("min_age", "0");
    assert!(!text(&w.get("/privacy/a1")).contains("Not for children"), "0 turns the notice off");
    for (uri, status) in [("/privacy/nobody", 404), ("/privacy", 404), ("/privacy/", 404), ("/privacy/a1/elsewhere", 404), ("/privacy/%zz", 404)] {
        assert_eq!(w.get(uri).status(), status, "{uri}");
    }
    let res = w.send(Method::DELETE, "/privacy/a1", None, &[]);
    assert_eq!((res.status().as_u16(), res.headers()["allow"].to_str().unwrap()), (405, "GET, HEAD, POST"));
}

#[test]
fn known_and_unknown_addresses_get_the_same_answer_and_only_a_fan_gets_mail() {
    let w = world();
    let known = w.ask("a1", FAN, "access");
    let mails = w.mails();
    let unknown = w.ask("a1", "nobody@example.com", "access");
    // a2's fan only: not on a1's list.
    let elsewhere = w.ask("a1", "two@other.example", "erase");
    assert_eq!(known.status(), 200);
    assert_eq!((unknown.status(), elsewhere.status()), (known.status(), known.status()));
    let same = |res: &Response, email: &str| text(res).replace(email, "X");
    assert_eq!(same(&known, FAN), same(&unknown, "nobody@example.com"));
    assert!(text(&known).contains("Check your email") && text(&known).contains("30 minutes"));
    assert_eq!(mails.len(), 1, "the known address was mailed");
    assert_eq!(w.mails().len(), 1, "and nobody else");
    let mail = &mails[0];
    assert_eq!(mail["to"], json!([FAN]));
    assert_eq!(mail["tags"], json!([{"name": "artist", "value": "a1"}, {"name": "fan", "value": "f1"}]), "tagged like all fan mail");
    assert!(mail.get("headers").is_none(), "not list mail: no unsubscribe headers");
    for part in ["text", "html"] {
        let body = mail[part].as_str().unwrap();
        assert!(body.contains("https://fans.example/privacy/a1/confirm?t=") && body.contains("https://fans.example/privacy/a1"), "{part}: {body}");
    }
    assert_eq!(w.count("SELECT count(*) FROM privacy_requests"), 1, "a row for the fan only");
    let (hash, kind): (String, String) =
        w.env.db.conn().query_row("SELECT token_hash, kind FROM privacy_requests", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!(hash, shared::crypto::sha256_hex(token_of(&w.last_link()).as_bytes()), "only the token's hash is stored");
    assert_eq!(kind, "access");

    // The answer never waits on the provider: a refusing one changes nothing.
    w.mail.respond_with(500);
    let refused = w.ask("a1", FAN, "access");
    assert_eq!((refused.status(), same(&refused, FAN)), (known.status(), same(&known, FAN)));
}

#[test]
fn bad_input_is_refused_next_to_its_field_and_stores_nothing() {
    let w = world();
    let res = w.ask("a1", "not-an-address", "everything");
    assert_eq!(res.status(), 422);
    let page = text(&res);
    assert!(page.contains("id=\"email-error\"") && page.contains("id=\"kind-error\"") && page.contains("value=\"not-an-address\""), "{page}");
    assert_eq!(w.send(Method::POST, "/privacy/a1", Some("email=%zz"), &[]).status(), 400);
    let res = w.send(Method::POST, "/privacy/a1", None, &[("content-type", "text/plain")]);
    assert_eq!(res.status(), 415);
    let res = w.send(Method::POST, "/privacy/a1", Some("email=fan%40example.com&kind=access"), &[("sec-fetch-site", "cross-site")]);
    assert_eq!(res.status(), 403, "another site's form");
    assert_eq!((w.count("SELECT count(*) FROM privacy_requests"), w.mails().len()), (0, 0));
}

#[test]
fn requests_are_limited_per_address_and_per_client() {
    let mut w = world();
    let statuses: Vec<u16> = (0..4).map(|_| w.ask("a1", "nobody@example.com", "access").status().as_u16()).collect();
    assert_eq!(statuses, [200, 200, 200, 429], "3 an hour per address, known or not");
    let res = w.ask("a1", "Nobody@Example.com", "erase");
    assert_eq!(res.status(), 429, "the same address however spelt");
    let retry: u32 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert!(text(&res).contains("use the newest link we sent") && text(&res).contains("You can ask again in"), "{}", text(&res));
    // Another client: the address stays limited; a fan's own address still works.
    w.env.client.ip = Some("198.51.100.9".parse().unwrap());
    assert_eq!(w.ask("a1", "nobody@example.com", "access").status(), 429);
    let statuses: Vec<u16> = (0..11).map(|i| w.ask("a1", &format!("x{i}@example.com"), "access").status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1, "10 an hour per client (refusals don't count): {statuses:?}");
    assert!(text(&w.ask("a1", "y@example.com", "access")).contains("from your network"));
    w.env.advance_secs(3600);
    assert_eq!(w.ask("a1", FAN, "access").status(), 200, "a new window");
    assert_eq!(w.mails().len(), 1);
}

#[test]
fn a_link_works_once_in_time_and_for_its_artist_only() {
    let w = world();
    let before = w.other_fan();
    w.ask("a1", FAN, "erase");
    let link = w.last_link();
    let token = token_of(&link).to_owned();
    // Opening it (a mail scanner does) changes nothing.
    let page = w.get(&link);
    assert_eq!(page.status(), 200);
    assert!(text(&page).contains("Erase my data") && text(&page).contains(&format!("name=\"t\" value=\"{token}\"")));
    assert_eq!(w.count("SELECT count(*) FROM privacy_requests WHERE used_at IS NULL"), 1);
    // At the other artist, the same address's fan: refused, nothing spent.
    assert_eq!(w.get(&format!("/privacy/a2/confirm?t={token}")).status(), 410);
    let res = w.post("/privacy/a2/confirm", &format!("t={token}"));
    assert_eq!(res.status(), 410);
    assert!(text(&res).contains("Ask again"));
    assert_eq!(w.other_fan(), before, "the other artist's fan is untouched");
    assert_eq!(w.count("SELECT count(*) FROM fans WHERE id = 'f1'"), 1);
    assert_eq!(w.get(&link).status(), 200, "the try elsewhere did not spend the link");
    // Malformed tokens.
    for bad in [String::new(), "short".to_owned(), "x".repeat(44), format!("{}!", &token[..42])] {
        assert_eq!(w.get(&format!("/privacy/a1/confirm?t={bad}")).status(), 400, "{bad}");
        assert_eq!(w.post("/privacy/a1/confirm", &format!("t={bad}")).status(), 400, "{bad}");
    }
    // Past its 30 minutes.
    w.env.advance_secs(30 * 60);
    assert_eq!(w.get(&link).status(), 410);
    assert_eq!(w.post("/privacy/a1/confirm", &format!("t={token}")).status(), 410);
    assert_eq!(w.count("SELECT count(*) FROM fans WHERE id = 'f1'"), 1, "an expired link erased nothing");

    // A fresh one works once: the second submit finds it spent.
    w.ask("a1", FAN, "access");
    let token = token_of(&w.last_link()).to_owned();
    w.env.advance_secs(29 * 60);
    let first = w.post("/privacy/a1/confirm", &format!("t={token}"));
    assert_eq!(first.status(), 200);
    assert_eq!(w.post("/privacy/a1/confirm", &format!("t={token}")).status(), 410);
    assert_eq!(w.get(&format!("/privacy/a1/confirm?t={token}")).status(), 410);
    assert_eq!(w.other_fan(), before);
}

#[test]
fn the_download_is_the_dashboards_export() {
    let w = world();
    let session = block_on(shared::auth::start_session(&w.env, "u1", "a1", true)).unwrap();
    let res = w.send(Method::GET, "/app/fans/f1/export.json", None, &[("cookie", &format!("__Host-sd_session={session}"))]);
    assert_eq!(res.status(), 200, "{}", text(&res));
    let artists: Value = serde_json::from_slice(res.body()).unwrap();
    w.ask("a1", FAN, "access");
    let res = w.post("/privacy/a1/confirm", &format!("t={}", token_of(&w.last_link())));
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"fan-f1-"));
    assert_eq!(res.headers()["content-type"], "application/json");
    let fans: Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(fans, artists, "field for field, the same document");
    assert_eq!(fans["fan"]["email"], FAN);
    assert_eq!(fans["controller"], json!({"artist_id": "a1", "artist_name": "Nova & the Tides"}));
    assert_eq!(fans["consent_history"][0]["consent_text"], "Send me tour news.");
}

#[test]
fn erasure_removes_the_fan_and_everything_naming_them_and_tells_the_artists_systems() {
    let w = world();
    let receiver = Recorder::start().unwrap();
    let req = HttpRequest::post("/api/v1/app/webhooks")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(json!({"url": format!("{}/hook", receiver.url), "events": ["fan.erased"]}).to_string().into_bytes())
        .unwrap();
    assert_eq!(block_on(crate::handle(req, &w.env)).status(), 201);
    w.env
        .db
        .conn()
        .execute_batch(
            "INSERT INTO fan_restrictions VALUES ('f1', 'a1', 1, 'u1');
             INSERT INTO mail_events (id, fan_id, artist_id, kind, bounce_type, provider, provider_msg_id, at) VALUES ('me1', 'f1', 'a1', 'bounce', 'transient', 'resend', 'm1', 1);",
        )
        .unwrap();
    let before = w.other_fan();
    let (enc, hash): (String, String) =
        w.env.db.conn().query_row("SELECT email_enc, email_hash FROM fans WHERE id = 'f1'", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    w.ask("a1", FAN, "erase");
    let link = w.last_link();
    w.ask("a1", FAN, "access");
    assert_eq!(w.count("SELECT count(*) FROM privacy_requests WHERE fan_id = 'f1'"), 2);
    let res = w.post("/privacy/a1/confirm", &format!("t={}", token_of(&link)));
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert!(text(&res).contains("Erased"));
    for table in [
        "fans WHERE id",
        "consent_events WHERE fan_id",
        "mail_log WHERE fan_id",
        "fan_restrictions WHERE fan_id",
        "mail_events WHERE fan_id",
        "privacy_requests WHERE fan_id",
        "webhook_messages WHERE fan_id",
    ] {
        assert_eq!(w.count(&format!("SELECT count(*) FROM {table} = 'f1'")), 0, "{table}");
    }
    // No row anywhere holds the address's ciphertext or its blind index.
    let conn = w.env.db.conn();
    let tables: Vec<String> =
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    for table in tables {
        let columns: Vec<String> =
            conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')")).unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        let any = columns.iter().map(|c| format!("instr(CAST(\"{c}\" AS TEXT), ?1) > 0")).collect::<Vec<_>>().join(" OR ");
        for needle in [&enc, &hash] {
            let n: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{table}\" WHERE {any}"), [needle], |r| r.get(0)).unwrap();
            assert_eq!(n, 0, "{table} still holds the erased fan's address ({needle})");
        }
    }
    drop(conn);
    let (by, method, artist): (String, String, String) =
        w.env.db.conn().query_row("SELECT by_user, method, artist_id FROM erasures", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    assert_eq!((by.as_str(), method.as_str(), artist.as_str()), ("fan", "fan", "a1"));
    let sent = receiver.requests();
    assert_eq!(sent.len(), 1, "fan.erased delivered after the response");
    let event: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!((event["type"].as_str(), &event["data"]), (Some("fan.erased"), &json!({"id": "f1"})));
    assert_eq!(w.other_fan(), before, "the other artist's fan with the same address is untouched");
    assert_eq!(w.count("SELECT count(*) FROM fans WHERE id = 'f2'"), 1, "and so is the artist's other fan");
    // The access link asked for before the erasure went with the fan.
    assert_eq!(w.post("/privacy/a1/confirm", &format!("t={}", token_of(&w.last_link()))).status(), 410);
}
