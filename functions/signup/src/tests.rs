//! Native tests of the signup route against the real SQLite engine.

use shared::adapters::native::recorder::Recorder;
use shared::adapters::native::{block_on, NativeEnv};
use shared::http::{Method, Request as HttpRequest};
use shared::{Request, Response};

const DATA_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const INDEX_KEY: &str = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
const TOKEN_KEYS: &str = "t1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn env() -> NativeEnv {
    env_on(NativeEnv::memory().unwrap())
}

/// The fixture artists and pages in `env`'s database.
fn env_on(mut env: NativeEnv) -> NativeEnv {
    env.set_var("data_keys", DATA_KEYS).set_var("index_key", INDEX_KEY).set_var("token_keys", TOKEN_KEYS);
    env.set_var("public_base_url", "https://fans.example").set_var("email_api_key", "re_test").set_var("email_from", "Nova <news@nova.example>");
    env.client.ip = Some("203.0.113.7".parse().unwrap());
    let conn = env.db.conn();
    conn.execute_batch(
        "INSERT INTO artists VALUES ('a1', 'Nova & the Tides', 0);
         INSERT INTO artists VALUES ('a2', 'Other Artist', 0);
         INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
           VALUES ('p1', 'a1', 'tour', 'Tour news', 'Send me tour news.', 'v1', 0, 0, 0),
                  ('p2', 'a1', 'doi', 'Confirmed list', 'Send me news.', 'v1', 1, 0, 0),
                  ('p3', 'a2', 'other', 'Other', 'Other news.', 'v1', 0, 0, 0);",
    )
    .unwrap();
    drop(conn);
    env
}

fn send(env: &NativeEnv, method: Method, uri: &str, ctype: Option<&str>, body: &[u8]) -> Response {
    let mut b = HttpRequest::builder().method(method).uri(uri);
    if let Some(ct) = ctype {
        b = b.header("content-type", ct);
    }
    let req: Request = b.body(body.to_vec()).unwrap();
    block_on(crate::handle(req, env))
}

fn form(env: &NativeEnv, slug: &str, body: &str) -> Response {
    send(env, Method::POST, &format!("/s/{slug}"), Some("application/x-www-form-urlencoded"), body.as_bytes())
}

fn json(env: &NativeEnv, body: &str) -> Response {
    send(env, Method::POST, "/api/v1/signup", Some("application/json"), body.as_bytes())
}

fn text(res: &Response) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

fn count(env: &NativeEnv, sql: &str) -> i64 {
    env.db.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn capture_page_renders_form_and_notice() {
    let env = env();
    let res = send(&env, Method::GET, "/s/tour", None, b"");
    assert_eq!(res.status(), 200);
    let html = text(&res);
    assert!(html.contains("name=\"email\"") && html.contains("name=\"consent\"") && html.contains("name=\"website\""));
    assert!(html.contains("approximate location"));
    assert!(html.contains("<a href=\"/privacy/a1\">Your data and your rights</a>"), "the artist's privacy page is linked");
    assert!(html.contains("Not for children under 16."), "the age notice, by default");
    assert!(!html.contains("<script"));
    assert!(html.contains("Nova &amp; the Tides"), "artist name must be escaped");
    assert!(html.len() < 15 * 1024, "page is {} bytes", html.len());
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let head = send(&env, Method::HEAD, "/s/tour", None, b"");
    assert_eq!(head.status(), 200);
    assert!(head.body().is_empty());
}

#[test]
fn the_age_notice_follows_min_age() {
    let mut env = env();
    for (value, notice) in [("13", Some("Not for children under 13.")), ("0", None), ("lots", Some("Not for children under 16."))] {
        env.set_var("min_age", value);
        // Settings are fixed for an instance's life; the cached page was
        // rendered under the previous value.
        crate::store::forget_pages();
        let html = text(&send(&env, Method::GET, "/s/other", None, b""));
        assert_eq!(notice.is_some_and(|n| html.contains(n)), notice.is_some(), "min_age = {value}");
        assert_eq!(html.contains("Not for children"), notice.is_some(), "min_age = {value}");
        assert!(html.contains("/privacy/a2"), "the page's own artist");
    }
}

#[test]
fn unknown_or_malformed_page_is_404() {
    let env = env();
    for uri in ["/s/nope", "/s/Bad%20Slug", "/s/", "/s/tour/extra", "/elsewhere"] {
        assert_eq!(send(&env, Method::GET, uri, None, b"").status(), 404, "{uri}");
    }
    assert_eq!(form(&env, "nope", "email=a@b.co&consent=yes").status(), 404);
    let res = json(&env, r#"{"page":"nope","email":"a@b.co","consent":true}"#);
    assert_eq!(res.status(), 404);
    assert!(text(&res).contains("\"field\":\"page\""));
}

#[test]
fn form_signup_stores_encrypted_fan_and_consent_event() {
    let env = env();
    let res = form(&env, "tour", "email=Fan%40Example.COM&consent=yes&website=");
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert!(text(&res).contains("on Nova &amp; the Tides"));
    let conn = env.db.conn();
    let (status, enc, hash, version, id): (String, String, String, String, String) = conn
        .query_row("SELECT status, email_enc, email_hash, consent_version, id FROM fans", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap();
    assert_eq!((status.as_str(), version.as_str()), ("subscribed", "v1"));
    assert!(!enc.to_lowercase().contains("fan@"), "email must be encrypted");
    let keys = shared::crypto::Keys::parse(DATA_KEYS, INDEX_KEY).unwrap();
    let plain = keys.decrypt(&enc, shared::crypto::fan_email_context("a1", &id).as_bytes()).unwrap();
    assert_eq!(plain, b"Fan@example.com", "local part kept, domain lower-cased");
    assert!(keys.decrypt(&enc, b"fan.email:a1").is_err(), "bound to the fan, not only the artist");
    assert_eq!(hash, keys.blind_index("a1", "fan@example.com"));
    let (kind, method, chash): (String, String, String) =
        conn.query_row("SELECT kind, method, consent_hash FROM consent_events", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    assert_eq!((kind.as_str(), method.as_str()), ("subscribe", "single"));
    assert_eq!(chash, shared::crypto::sha256_hex(b"Send me tour news."));
}

#[test]
fn json_signup_and_cors() {
    let env = env();
    let res = json(&env, r#"{"page":"tour","email":"fan@example.com","consent":true}"#);
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(text(&res), r#"{"status":"subscribed"}"#);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let pre = send(&env, Method::OPTIONS, "/api/v1/signup", None, b"");
    assert_eq!(pre.status(), 204);
    assert!(pre.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 1);
}

#[test]
fn validation_failures_have_status_field_and_store_nothing() {
    let env = env();
    // (path, content type, body, status, field named in the error)
    type Case<'a> = (&'a str, Option<&'a str>, &'a str, u16, Option<&'a str>);
    let cases: &[Case] = &[
        ("/s/tour", Some("text/plain"), "email=a@b.co&consent=yes", 415, None),
        ("/s/tour", None, "email=a@b.co&consent=yes", 415, None),
        ("/s/tour", Some("application/x-www-form-urlencoded"), "email=%zz", 400, None),
        ("/s/tour", Some("application/x-www-form-urlencoded"), "email=a@b.co&consent=yes&website=http://spam", 400, None),
        ("/s/tour", Some("application/x-www-form-urlencoded"), "email=not-an-email&consent=yes", 422, None),
        ("/s/tour", Some("application/x-www-form-urlencoded"), "email=a@b.co", 422, None),
        ("/api/v1/signup", Some("application/json"), "{not json", 400, None),
        ("/api/v1/signup", Some("application/json"), r#"{"email":"a@b.co"}"#, 400, None),
        ("/api/v1/signup", Some("application/json"), r#"{"page":"tour","email":"a@b.co","consent":"yes"}"#, 400, None),
        ("/api/v1/signup", Some("text/plain"), r#"{"page":"tour"}"#, 415, None),
        ("/api/v1/signup", Some("application/json"), r#"{"page":"tour","email":"a@@b","consent":true}"#, 422, Some("email")),
        ("/api/v1/signup", Some("application/json"), r#"{"page":"tour","email":"a@b.co","consent":false}"#, 422, Some("consent")),
        ("/api/v1/signup", Some("application/json"), r#"{"page":"tour","email":"a@b.co","consent":true,"website":"x"}"#, 400, Some("website")),
    ];
    for &(uri, ct, body, status, field) in cases {
        let res = send(&env, Method::POST, uri, ct, body.as_bytes());
        assert_eq!(res.status(), status, "{uri} {body}: {}", text(&res));
        if uri.starts_with("/api") {
            let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
            assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
            if let Some(f) = field {
                assert_eq!(v["error"]["field"], f);
            }
        } else {
            assert!(text(&res).contains("role=\"alert\""));
        }
    }
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 0);
    assert_eq!(send(&env, Method::PUT, "/s/tour", None, b"").status(), 405);
}

#[test]
fn form_error_keeps_what_the_fan_typed() {
    let env = env();
    let res = form(&env, "tour", "email=fan%40example.com");
    assert_eq!(res.status(), 422);
    let html = text(&res);
    assert!(html.contains("value=\"fan@example.com\"") && html.contains("tick the box"));
}

#[test]
fn duplicate_signup_is_one_row_and_one_event() {
    let env = env();
    for email in ["fan@example.com", "FAN@example.com", " fan@EXAMPLE.com "] {
        assert_eq!(json(&env, &format!(r#"{{"page":"tour","email":"{email}","consent":true}}"#)).status(), 200);
    }
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 1);
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events"), 1);
    // Another artist's list is a separate row.
    assert_eq!(json(&env, r#"{"page":"other","email":"fan@example.com","consent":true}"#).status(), 200);
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 2);
}

#[test]
fn changed_consent_or_resubscribe_appends_an_event() {
    let (env, rec) = env_with_mail();
    let body = r#"{"page":"tour","email":"fan@example.com","consent":true}"#;
    json(&env, body);
    env.db.conn().execute("UPDATE capture_pages SET consent_version = 'v2' WHERE id = 'p1'", []).unwrap();
    crate::store::forget_pages();
    json(&env, body);
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events"), 2);
    assert_eq!(count(&env, "SELECT count(*) FROM fans WHERE consent_version = 'v2'"), 1);
    for left in ["unsubscribed", "bounced", "complained"] {
        env.db.conn().execute("UPDATE fans SET status = ?1", [left]).unwrap();
        env.advance_secs(601); // past the confirmation mail's cap
        let mails = rec.requests().len();
        let res = json(&env, body);
        assert_eq!(text(&res), r#"{"status":"subscribed"}"#, "the answer doesn't tell who was on the list");
        // Anyone can type an address into a single opt-in form: coming back
        // from {left} takes a confirmation by mail.
        assert_eq!(count(&env, "SELECT count(*) FROM fans WHERE status = 'pending'"), 1, "after {left}");
        assert_eq!(
            count(&env, "SELECT count(*) FROM consent_events WHERE kind = 'request' AND method = 'double'"),
            1 + ["unsubscribed", "bounced", "complained"].iter().position(|l| *l == left).unwrap() as i64
        );
        assert_eq!(rec.requests().len(), mails + 1, "a confirmation mail after {left}");
    }
    let link = String::from_utf8_lossy(&rec.requests().last().unwrap().body).into_owned();
    let v: serde_json::Value = serde_json::from_str(&link).unwrap();
    let path = v["text"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .find(|w| w.contains("/s/tour/confirm?t="))
        .unwrap()
        .trim_start_matches("https://fans.example")
        .to_owned();
    assert_eq!(send(&env, Method::POST, &path, None, b"").status(), 200);
    assert_eq!(count(&env, "SELECT count(*) FROM fans WHERE status = 'subscribed'"), 1, "confirmed");
}

/// The env with its email provider pointed at a local recording server.
fn env_with_mail() -> (NativeEnv, Recorder) {
    let mut env = env();
    let rec = Recorder::start().unwrap();
    env.set_var("email_api_base", &rec.url);
    (env, rec)
}

#[test]
fn double_opt_in_page_leaves_fan_pending_and_never_demotes() {
    let (env, _rec) = env_with_mail();
    let res = json(&env, r#"{"page":"doi","email":"new@example.com","consent":true}"#);
    assert_eq!(text(&res), r#"{"status":"pending"}"#);
    assert_eq!(count(&env, "SELECT count(*) FROM fans WHERE status = 'pending' AND subscribed_at IS NULL"), 1);
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events WHERE kind = 'request' AND method = 'double'"), 1);
    json(&env, r#"{"page":"tour","email":"old@example.com","consent":true}"#);
    json(&env, r#"{"page":"doi","email":"old@example.com","consent":true}"#);
    assert_eq!(count(&env, "SELECT count(*) FROM fans WHERE status = 'subscribed'"), 1);
}

#[test]
fn rate_limit_per_client_answers_429_with_retry_after() {
    let mut env = env();
    env.set_var("signup_ip_limit", "3/600");
    for i in 0..3 {
        assert_eq!(json(&env, &format!(r#"{{"page":"tour","email":"f{i}@example.com","consent":true}}"#)).status(), 200);
    }
    let res = json(&env, r#"{"page":"tour","email":"f9@example.com","consent":true}"#);
    assert_eq!(res.status(), 429);
    let retry: u32 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry));
    let res = form(&env, "tour", "email=f9%40example.com&consent=yes");
    assert_eq!(res.status(), 429, "form path gets the same limit");
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 3);
    // Another client is not affected, and the window passes.
    env.client.ip = Some("198.51.100.1".parse().unwrap());
    assert_eq!(json(&env, r#"{"page":"tour","email":"g@example.com","consent":true}"#).status(), 200);
    env.client.ip = Some("203.0.113.7".parse().unwrap());
    env.advance_secs(601);
    assert_eq!(json(&env, r#"{"page":"tour","email":"f9@example.com","consent":true}"#).status(), 200);
    // No stored key contains the address.
    assert_eq!(count(&env, "SELECT count(*) FROM rate_windows WHERE key LIKE '%203.0.113%'"), 0);
}

#[test]
fn ipv6_clients_are_limited_by_their_64_and_clients_without_an_address_share_a_bucket() {
    let mut env = env();
    env.set_var("signup_ip_limit", "2/600");
    let signup = |env: &mut NativeEnv, ip: Option<&str>, n: usize| {
        env.client.ip = ip.map(|i| i.parse().unwrap());
        json(env, &format!(r#"{{"page":"tour","email":"v{n}@example.com","consent":true}}"#)).status()
    };
    assert_eq!(signup(&mut env, Some("2001:db8:1:2::1"), 0), 200);
    assert_eq!(signup(&mut env, Some("2001:db8:1:2:ffff::9"), 1), 200);
    assert_eq!(signup(&mut env, Some("2001:db8:1:2:abcd::2"), 2), 429, "same /64, another address");
    assert_eq!(signup(&mut env, Some("2001:db8:1:3::1"), 3), 200, "another /64");
    assert_eq!(signup(&mut env, None, 4), 200);
    assert_eq!(signup(&mut env, None, 5), 200);
    assert_eq!(signup(&mut env, None, 6), 429, "no address is one shared bucket, not a way around the limit");
}

#[test]
fn page_limit_says_the_page_is_busy() {
    let mut env = env();
    env.set_var("signup_page_limit", "2/600");
    for (i, ip) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"].iter().enumerate() {
        env.client.ip = Some(ip.parse().unwrap());
        let res = json(&env, &format!(r#"{{"page":"tour","email":"p{i}@example.com","consent":true}}"#));
        if i < 2 {
            assert_eq!(res.status(), 200);
        } else {
            assert_eq!(res.status(), 429);
            assert!(text(&res).contains("This page is receiving too many sign-ups right now"), "{}", text(&res));
        }
    }
}

#[test]
fn a_refused_signup_leaves_nothing_behind_not_even_the_other_counter() {
    let mut env = env();
    env.set_var("signup_page_limit", "2/600");
    env.set_var("signup_ip_limit", "3/600");
    for i in 0..2 {
        env.client.ip = Some(format!("198.51.100.{i}").parse().unwrap());
        assert_eq!(json(&env, &format!(r#"{{"page":"tour","email":"r{i}@example.com","consent":true}}"#)).status(), 200);
    }
    let before = |env: &NativeEnv| count(env, "SELECT coalesce(sum(count), 0) FROM rate_windows");
    let counted = before(&env);
    assert_eq!(counted, 4, "two windows counted per signup");
    // The page is full: the client's window was counted first in the
    // batch, and rolled back with it.
    env.client.ip = Some("198.51.100.9".parse().unwrap());
    assert_eq!(json(&env, r#"{"page":"tour","email":"r9@example.com","consent":true}"#).status(), 429);
    assert_eq!(before(&env), counted);
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 2);
    // A full client never reaches the page's window.
    env.set_var("signup_page_limit", "100/600");
    env.set_var("signup_ip_limit", "1/600");
    let res = json(&env, r#"{"page":"tour","email":"r8@example.com","consent":true}"#);
    assert_eq!(res.status(), 200, "{}", text(&res));
    let page_count = |env: &NativeEnv| count(env, "SELECT coalesce(sum(count), 0) FROM rate_windows WHERE key LIKE 'signup-page:%'");
    let page_before = page_count(&env);
    let res = json(&env, r#"{"page":"tour","email":"r7@example.com","consent":true}"#);
    assert_eq!(res.status(), 429);
    assert!(text(&res).contains("Too many sign-ups from your connection"), "{}", text(&res));
    assert_eq!(page_count(&env), page_before);
}

#[test]
fn missing_secrets_are_a_500_without_details() {
    let mut env = env();
    env.vars.clear();
    let res = json(&env, r#"{"page":"tour","email":"a@example.com","consent":true}"#);
    assert_eq!(res.status(), 500);
    assert!(!text(&res).contains("data_keys"));
    assert!(env.errors.borrow().iter().any(|e| e.contains("data_keys")), "the operator sees why in the log");
}

fn confirm_link(rec: &Recorder, i: usize) -> String {
    let req = &rec.requests()[i];
    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    let text = v["text"].as_str().unwrap();
    let start = text.find("https://fans.example/s/doi/confirm?t=").unwrap();
    text[start..].split_whitespace().next().unwrap().trim_start_matches("https://fans.example").to_owned()
}

#[test]
fn double_opt_in_mail_carries_link_and_unsubscribe_headers() {
    let (env, rec) = env_with_mail();
    json(&env, r#"{"page":"doi","email":"Fan@Example.com","consent":true}"#);
    let reqs = rec.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/emails"));
    assert_eq!(r.header("authorization"), Some("Bearer re_test"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["to"][0], "Fan@example.com");
    assert_eq!(v["from"], "Nova <news@nova.example>");
    assert!(v["subject"].as_str().unwrap().contains("Nova & the Tides"));
    let lu = v["headers"]["List-Unsubscribe"].as_str().unwrap();
    assert!(lu.starts_with("<https://fans.example/u/t1.") && lu.ends_with('>'), "{lu}");
    assert_eq!(v["headers"]["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click");
    assert!(v["html"].as_str().unwrap().contains("/s/doi/confirm?t="));
    for part in ["text", "html"] {
        assert!(v[part].as_str().unwrap().contains("https://fans.example/privacy/a1"), "{part} links the artist's privacy page");
    }
}

#[test]
fn confirmation_mail_is_capped_per_address() {
    let (env, rec) = env_with_mail();
    let body = r#"{"page":"doi","email":"cap@example.com","consent":true}"#;
    for _ in 0..3 {
        assert_eq!(json(&env, body).status(), 200);
    }
    assert_eq!(rec.requests().len(), 1, "one per 10 minutes");
    env.advance_secs(601);
    json(&env, body);
    env.advance_secs(601);
    json(&env, body);
    assert_eq!(rec.requests().len(), 3);
    env.advance_secs(601);
    json(&env, body);
    assert_eq!(rec.requests().len(), 3, "three per day");
    env.advance_secs(86_400);
    json(&env, body);
    assert_eq!(rec.requests().len(), 4);
}

#[test]
fn a_restricted_fan_gets_no_confirmation_mail_until_lifted() {
    let (env, rec) = env_with_mail();
    let body = r#"{"page":"doi","email":"held@example.com","consent":true}"#;
    assert_eq!(json(&env, body).status(), 200);
    assert_eq!(rec.requests().len(), 1);
    // The artist restricts the fan (functions/dashboard/src/rights.rs).
    env.db.conn().execute_batch("INSERT INTO fan_restrictions (fan_id, artist_id, since, by_user) SELECT id, artist_id, 0, 'u1' FROM fans").unwrap();
    env.advance_secs(601);
    assert_eq!(json(&env, body).status(), 200, "the same answer either way");
    assert_eq!(rec.requests().len(), 1, "no mail while restricted");
    assert_eq!(count(&env, "SELECT count(*) FROM mail_log"), 1, "no slot taken");
    env.db.conn().execute_batch("DELETE FROM fan_restrictions").unwrap();
    assert_eq!(json(&env, body).status(), 200);
    assert_eq!(rec.requests().len(), 2, "mail again once lifted");
}

#[test]
fn confirm_link_get_shows_button_post_confirms_once() {
    let (env, rec) = env_with_mail();
    json(&env, r#"{"page":"doi","email":"c@example.com","consent":true}"#);
    let link = confirm_link(&rec, 0);
    let res = send(&env, Method::GET, &link, None, b"");
    assert_eq!(res.status(), 200);
    assert!(text(&res).contains("<form method=\"post\">"));
    assert_eq!(count(&env, "SELECT count(*) FROM fans WHERE status = 'pending'"), 1, "GET changes nothing");
    for _ in 0..2 {
        let res = send(&env, Method::POST, &link, None, b"");
        assert_eq!(res.status(), 200);
        assert!(text(&res).contains("You're on Nova"));
    }
    assert_eq!(count(&env, "SELECT count(*) FROM fans WHERE status = 'subscribed' AND confirmed_at IS NOT NULL AND subscribed_at = confirmed_at"), 1);
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events WHERE kind = 'confirm' AND method = 'double'"), 1);
}

#[test]
fn confirm_link_failures_have_plain_pages() {
    let (env, rec) = env_with_mail();
    json(&env, r#"{"page":"doi","email":"x@example.com","consent":true}"#);
    let link = confirm_link(&rec, 0);
    // Tampered, truncated, wrong page's artist.
    let last = if link.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &link[..link.len() - 1]);
    for bad in [tampered.as_str(), &link[..link.len() - 5], "/s/doi/confirm", "/s/doi/confirm?t=garbage"] {
        let res = send(&env, Method::POST, bad, None, b"");
        assert_eq!(res.status(), 400, "{bad}");
        assert!(text(&res).contains("incomplete or damaged"));
    }
    let other_page = link.replace("/s/doi/", "/s/other/");
    assert_eq!(send(&env, Method::GET, &other_page, None, b"").status(), 400, "token is bound to its artist");
    // Expired after 7 days.
    env.advance_secs(7 * 24 * 3600 + 1);
    let res = send(&env, Method::GET, &link, None, b"");
    assert_eq!(res.status(), 410);
    assert!(text(&res).contains("expired"));
    assert_eq!(count(&env, "SELECT count(*) FROM fans WHERE status = 'pending'"), 1);
}

#[test]
fn confirm_after_unsubscribe_or_erasure_changes_nothing() {
    let (env, rec) = env_with_mail();
    json(&env, r#"{"page":"doi","email":"u@example.com","consent":true}"#);
    let link = confirm_link(&rec, 0);
    env.db.conn().execute("UPDATE fans SET status = 'unsubscribed'", []).unwrap();
    let res = send(&env, Method::POST, &link, None, b"");
    assert_eq!(res.status(), 200);
    assert!(text(&res).contains("isn't waiting for confirmation"));
    assert_eq!(count(&env, "SELECT count(*) FROM fans WHERE status = 'unsubscribed'"), 1);
    env.db.conn().execute("DELETE FROM fans", []).unwrap();
    let res = send(&env, Method::GET, &link, None, b"");
    assert_eq!(res.status(), 200);
    assert!(text(&res).contains("no longer on"));
}

#[test]
fn provider_failure_keeps_the_fan_and_frees_the_slot() {
    let (env, rec) = env_with_mail();
    rec.respond_with(500);
    let body = r#"{"page":"doi","email":"p@example.com","consent":true}"#;
    // The mail leaves after the answer, so the answer can't depend on it.
    let res = json(&env, body);
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(count(&env, "SELECT count(*) FROM mail_log"), 0, "the refused mail's slot was given back");
    assert_eq!(count(&env, "SELECT count(*) FROM fans WHERE status = 'pending'"), 1, "nothing lost");
    rec.respond_with(200);
    assert_eq!(json(&env, body).status(), 200, "retry allowed at once");
    assert_eq!(rec.requests().len(), 2);
}

#[test]
fn redirect_after_signup_is_checked_and_allowed_by_the_csp() {
    let env = env();
    env.db.conn().execute("UPDATE capture_pages SET redirect_url = 'https://Shop.Example.com/thanks?x=1' WHERE id = 'p1'", []).unwrap();
    crate::store::forget_pages();
    let page = send(&env, Method::GET, "/s/tour", None, b"");
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("form-action 'self' https://shop.example.com;"), "{csp}");
    let res = form(&env, "tour", "email=r%40example.com&consent=yes");
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "https://shop.example.com/thanks?x=1");
    // The database refuses what can't be a safe redirect…
    for bad in ["http://shop.example.com/", "https://bücher.example/", "javascript:alert(1)"] {
        assert!(env.db.conn().execute("UPDATE capture_pages SET redirect_url = ?1 WHERE id = 'p1'", [bad]).is_err(), "{bad} stored");
        crate::store::forget_pages();
    }
    // …and what gets past it is ignored on read: the thank-you page instead.
    env.db.conn().execute("UPDATE capture_pages SET redirect_url = 'https://user@shop.example.com/' WHERE id = 'p1'", []).unwrap();
    crate::store::forget_pages();
    let res = form(&env, "tour", "email=s%40example.com&consent=yes");
    assert_eq!(res.status(), 200);
    assert!(text(&res).contains("Thanks!"));
    assert!(env.errors.borrow().iter().any(|e| e.contains("redirect_url")));
    assert!(!send(&env, Method::GET, "/s/tour", None, b"").headers()["content-security-policy"].to_str().unwrap().contains("shop.example.com"));
}

#[test]
fn a_confirmation_records_what_the_fan_saw_and_works_only_on_its_page() {
    let (env, rec) = env_with_mail();
    json(&env, r#"{"page":"doi","email":"seen@example.com","consent":true}"#);
    let link = confirm_link(&rec, 0);
    let seen = shared::crypto::sha256_hex(b"Send me news.");
    // The artist rewrites the text before the fan confirms.
    env.db.conn().execute("UPDATE capture_pages SET consent_text = 'Send me everything.', consent_version = 'v2' WHERE id = 'p2'", []).unwrap();
    crate::store::forget_pages();
    let elsewhere = link.replacen("/s/doi/", "/s/tour/", 1);
    let res = send(&env, Method::POST, &elsewhere, None, b"");
    assert_eq!(res.status(), 400, "a link sent for one page must not confirm on another");
    assert!(text(&res).contains("another sign-up page"));
    assert_eq!(count(&env, "SELECT count(*) FROM fans WHERE status = 'pending'"), 1);
    assert_eq!(send(&env, Method::POST, &link, None, b"").status(), 200);
    let (version, hash): (String, String) =
        env.db.conn().query_row("SELECT consent_version, consent_hash FROM consent_events WHERE kind = 'confirm'", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((version.as_str(), hash.as_str()), ("v1", seen.as_str()), "the confirmation names the text the fan agreed to");
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let env = env();
    for (method, uri, allow) in [
        (Method::PUT, "/s/tour", "GET, HEAD, POST"),
        (Method::DELETE, "/s/tour/confirm?t=x", "GET, HEAD, POST"),
        (Method::GET, "/api/v1/signup", "POST, OPTIONS"),
    ] {
        let res = send(&env, method.clone(), uri, None, b"");
        assert_eq!(res.status(), 405, "{method} {uri}");
        assert_eq!(res.headers()["allow"], allow, "{method} {uri}");
        assert!(text(&res).contains("accepts"), "{}", text(&res));
    }
}

#[test]
fn capture_pages_are_cached_for_thirty_seconds() {
    let env = env();
    assert!(text(&send(&env, Method::GET, "/s/tour", None, b"")).contains("Tour news"));
    env.db.conn().execute("UPDATE capture_pages SET title = 'Tour dates' WHERE id = 'p1'", []).unwrap();
    assert!(text(&send(&env, Method::GET, "/s/tour", None, b"")).contains("Tour news"), "served from the instance's cache");
    env.advance_secs(31);
    assert!(text(&send(&env, Method::GET, "/s/tour", None, b"")).contains("Tour dates"), "an edit shows within 30 s");
}

// ------------------------------------------------------------ the look

/// Page `tour` (artist a1) with an image, colours, a message and the
/// first-name field.
fn with_look(env: &NativeEnv) {
    env.db
        .conn()
        .execute(
            "INSERT INTO capture_page_looks (page_id, artist_id, artist_image_url, background, button, message, ask_first_name, updated_at) \
             VALUES ('p1', 'a1', 'https://img.example/nova.jpg', '#1e1b4b', '#facc15', 'New album <May>!\nSign up for the pre-sale.', 1, 0)",
            [],
        )
        .unwrap();
    crate::store::forget_pages();
}

/// The text of every `<style>` block, in order.
fn style_blocks(html: &str) -> Vec<&str> {
    html.split("<style>").skip(1).map(|s| &s[..s.find("</style>").unwrap()]).collect()
}

#[test]
fn a_look_shows_the_image_message_and_colours_under_the_pages_own_policy() {
    let env = env();
    with_look(&env);
    let res = send(&env, Method::GET, "/s/tour", None, b"");
    assert_eq!(res.status(), 200);
    let html = text(&res);
    assert!(html.contains("<img class=\"hero\" src=\"https://img.example/nova.jpg\" alt=\"Nova &amp; the Tides\" width=\"640\" height=\"640\">"), "{html}");
    assert!(html.contains("<p class=\"msg\">New album &lt;May&gt;!\nSign up for the pre-sale.</p>"), "message escaped, line kept");
    assert!(html.contains("name=\"first_name\"") && html.contains("autocomplete=\"given-name\""));
    assert!(html.contains("We do not keep your IP address"), "the location notice stays");
    let blocks = style_blocks(&html);
    assert_eq!(blocks.len(), 2, "the page's stylesheet and the artist's colours");
    assert_eq!(blocks[0], shared::capture::CSS);
    assert!(blocks[1].contains("body{background:#1e1b4b;color:#ffffff}") && blocks[1].contains("button{background:#facc15;color:#111111}"), "{}", blocks[1]);
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    for block in &blocks {
        assert!(csp.contains(&format!("'{}'", shared::capture::style_hash(block))), "{csp} lacks the hash of {block}");
    }
    assert!(!csp.contains("unsafe") && csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!html.contains("<script") && !html.contains(" style="), "no script, no inline style attribute");
    for tag in [
        "<link rel=\"canonical\" href=\"https://fans.example/s/tour\">",
        "<meta property=\"og:url\" content=\"https://fans.example/s/tour\">",
        "<meta property=\"og:title\" content=\"Tour news\">",
        "<meta property=\"og:image\" content=\"https://img.example/nova.jpg\">",
        "<meta name=\"twitter:card\" content=\"summary_large_image\">",
        "<meta property=\"og:description\" content=\"New album &lt;May&gt;!\nSign up for the pre-sale.\">",
    ] {
        assert!(html.contains(tag), "{tag}");
    }
    assert!(html.len() < 15 * 1024, "page is {} bytes", html.len());
}

#[test]
fn a_plain_page_has_one_stylesheet_and_summary_card() {
    let env = env();
    let res = send(&env, Method::GET, "/s/tour", None, b"");
    let html = text(&res);
    assert_eq!(style_blocks(&html), [shared::capture::CSS]);
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains(&format!("style-src '{}';", shared::capture::CSS_HASH)), "{csp}");
    assert!(html.contains("<meta name=\"twitter:card\" content=\"summary\">") && !html.contains("og:image"));
    assert!(html.contains("<meta property=\"og:description\" content=\"Join Nova &amp; the Tides&#39;s mailing list.\">"));
    assert!(!html.contains("name=\"first_name\"") && !html.contains("class=\"hero\""));
}

#[test]
fn a_stored_look_that_no_longer_passes_is_left_out_and_logged() {
    let env = env();
    env.db
        .conn()
        .execute(
            "INSERT INTO capture_page_looks (page_id, artist_id, artist_image_url, background, button, message, ask_first_name, updated_at) \
             VALUES ('p1', 'a1', 'http://img.example/a.jpg', '#777777', '#000000', 'Hi', 0, 0)",
            [],
        )
        .unwrap();
    let res = send(&env, Method::GET, "/s/tour", None, b"");
    let html = text(&res);
    assert_eq!(res.status(), 200);
    assert!(!html.contains("img.example") && style_blocks(&html).len() == 1 && html.contains("<p class=\"msg\">Hi</p>"));
    assert_eq!(env.errors.borrow().len(), 2, "{:?}", env.errors.borrow());
}

#[test]
fn another_artists_look_is_not_applied() {
    let env = env();
    // A look row naming page p1 but artist a2 (no code writes this; the
    // join requires both).
    env.db
        .conn()
        .execute("INSERT INTO capture_page_looks (page_id, artist_id, message, ask_first_name, updated_at) VALUES ('p1', 'a2', 'Not yours', 1, 0)", [])
        .unwrap();
    let html = text(&send(&env, Method::GET, "/s/tour", None, b""));
    assert!(!html.contains("Not yours") && !html.contains("first_name"));
}

// ------------------------------------------------------------ first names

fn name_rows(env: &NativeEnv) -> Vec<(String, String, String)> {
    let conn = env.db.conn();
    let mut stmt = conn.prepare("SELECT n.fan_id, n.artist_id, n.name_enc FROM fan_names n ORDER BY n.updated_at").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

fn decrypted_name(env: &NativeEnv, email: &str) -> Option<String> {
    let keys = shared::crypto::Keys::parse(DATA_KEYS, INDEX_KEY).unwrap();
    let hash = keys.blind_index("a1", email);
    let enc: Option<String> =
        env.db.conn().query_row("SELECT n.name_enc FROM fan_names n JOIN fans f ON f.id = n.fan_id WHERE f.email_hash = ?1", [&hash], |r| r.get(0)).ok();
    enc.map(|e| String::from_utf8(keys.decrypt(&e, shared::capture::fan_name_context("a1", &hash).as_bytes()).unwrap()).unwrap())
}

#[test]
fn a_first_name_is_stored_encrypted_and_only_when_given() {
    let dir = std::env::temp_dir().join(format!("signup-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("db.sqlite");
    let _ = std::fs::remove_file(&file);
    let mut base = NativeEnv::memory().unwrap();
    base.db = std::rc::Rc::new(shared::adapters::native::SqliteDb::open(&file).unwrap());
    let env = env_on(base);
    with_look(&env);
    assert_eq!(form(&env, "tour", "email=plain%40example.com&consent=yes").status(), 200);
    assert!(name_rows(&env).is_empty(), "no name given, no row");
    let res = form(&env, "tour", "first_name=+Zo%C3%ABlle+&email=zoe%40example.com&consent=yes");
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(decrypted_name(&env, "zoe@example.com").as_deref(), Some("Zoëlle"), "trimmed");
    let rows = name_rows(&env);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "a1");
    let keys = shared::crypto::Keys::parse(DATA_KEYS, INDEX_KEY).unwrap();
    let other_hash = keys.blind_index("a1", "plain@example.com");
    assert!(keys.decrypt(&rows[0].2, shared::capture::fan_name_context("a1", &other_hash).as_bytes()).is_err(), "bound to its fan");
    // The JSON API, and a re-signup with another name replaces it.
    let res = json(&env, r#"{"page":"tour","email":"ZOE@example.com","consent":true,"first_name":"Zoe"}"#);
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(decrypted_name(&env, "zoe@example.com").as_deref(), Some("Zoe"));
    assert_eq!(name_rows(&env).len(), 1);
    // Not one byte of either name in the database file (WAL included).
    drop(env);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for needle in ["Zoëlle".as_bytes(), b"Zoe\0", b"\"Zoe\""] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{needle:?} in the file");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_first_name_is_refused_and_nothing_is_stored() {
    let env = env();
    with_look(&env);
    let long = "n".repeat(65);
    for (body, what) in [
        (format!("first_name={long}&email=a%40example.com&consent=yes"), "64 characters"),
        ("first_name=A%0AB&email=a%40example.com&consent=yes".to_owned(), "one line"),
    ] {
        let res = form(&env, "tour", &body);
        assert_eq!(res.status(), 422);
        let html = text(&res);
        assert!(html.contains(what) && html.contains("value=\"a@example.com\""), "{html}");
    }
    let res = json(&env, r#"{"page":"other","email":"a@example.com","consent":true,"first_name":"Ann"}"#);
    assert_eq!(res.status(), 422, "page `other` doesn't ask for a first name");
    let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(v["error"]["field"], "first_name");
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 0);
    assert!(name_rows(&env).is_empty());
    // The name typed is kept when something else is wrong.
    let html = text(&form(&env, "tour", "first_name=Ann&email=a%40example.com"));
    assert!(html.contains("value=\"Ann\"") && html.contains("tick the box"));
}

#[test]
fn the_name_is_written_in_the_signups_own_batch() {
    let mut env = env();
    with_look(&env);
    env.set_var("signup_ip_limit", "1/600");
    assert_eq!(json(&env, r#"{"page":"tour","email":"one@example.com","consent":true,"first_name":"One"}"#).status(), 200);
    // The rate limit fails the batch: the name goes with it.
    assert_eq!(json(&env, r#"{"page":"tour","email":"two@example.com","consent":true,"first_name":"Two"}"#).status(), 429);
    assert_eq!(name_rows(&env).len(), 1);
    assert_eq!(decrypted_name(&env, "two@example.com"), None);
    // Erasing the fan (the dashboard deletes the fan row) takes the name.
    env.db.conn().execute("DELETE FROM fans", []).unwrap();
    assert!(name_rows(&env).is_empty());
}

// ------------------------------------------------------------ QR code

#[test]
fn the_qr_code_is_the_pages_public_url() {
    let env = env();
    let res = send(&env, Method::GET, "/s/tour/qr.svg", None, b"");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert_eq!(res.headers()["cache-control"], "public, max-age=86400");
    assert_eq!(text(&res), shared::qr::Code::encode(b"https://fans.example/s/tour").unwrap().svg());
    let head = send(&env, Method::HEAD, "/s/tour/qr.svg", None, b"");
    assert_eq!((head.status().as_u16(), head.body().len()), (200, 0));
    let missing = send(&env, Method::GET, "/s/nope/qr.svg", None, b"");
    assert_eq!(missing.status(), 404);
    assert_eq!(text(&missing), text(&send(&env, Method::GET, "/s/nope", None, b"")), "the page's own 404");
    assert_eq!(send(&env, Method::POST, "/s/tour/qr.svg", None, b"").status(), 405);
}
