//! Native tests of the dashboard against the real SQLite engine, with the
//! clock moved by the test (never by a request) and a recording mail
//! server standing in for the provider.

use shared::adapters::native::recorder::Recorder;
use shared::adapters::native::{block_on, NativeEnv};
use shared::http::{Method, Request as HttpRequest};
use shared::{Env, Request, Response};

const DATA_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const INDEX_KEY: &str = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

struct World {
    env: NativeEnv,
    mail: Recorder,
}

/// The suite's keys, as `mail_and_env` sets them.
pub(crate) fn keys() -> shared::crypto::Keys {
    shared::crypto::Keys::parse(DATA_KEYS, INDEX_KEY).unwrap()
}

/// Artist `a1` (Nova & the Tides) with an owner and a member, and artist
/// `a2` (Other Artist) with its owner: the two tenants most modules test.
pub(crate) const TWO_ARTISTS_USERS: [(&str, &str, &str, &str); 3] =
    [("u1", "a1", "owner@nova.example", "owner"), ("u2", "a1", "member@nova.example", "member"), ("u3", "a2", "owner@other.example", "owner")];

/// Inserts each `(id, artist, email, role)` as a dashboard user, the
/// address encrypted and indexed as sign-in expects.
pub(crate) fn add_users(env: &NativeEnv, users: &[(&str, &str, &str, &str)]) {
    for (id, artist, email, role) in users {
        env.db
            .conn()
            .execute(
                "INSERT INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                [*id, *artist, &enc(&format!("user.email:{artist}"), email), &user_index(email), *role],
            )
            .unwrap();
    }
}

fn enc(context: &str, value: &str) -> String {
    keys().encrypt(value.as_bytes(), context.as_bytes()).unwrap()
}

fn user_index(email: &str) -> String {
    keys().blind_index("users", email)
}

/// An empty database with the suite's keys and settings, and the stand-in
/// mail provider they point at (every dashboard test module starts here).
pub(crate) fn mail_and_env() -> (Recorder, NativeEnv) {
    let mail = Recorder::start().unwrap();
    let mut env = NativeEnv::memory().unwrap();
    env.set_var("data_keys", DATA_KEYS).set_var("index_key", INDEX_KEY);
    env.set_var("public_base_url", "https://fans.example").set_var("email_api_key", "re_test").set_var("email_from", "Stagedoor <a@example.com>");
    env.set_var("email_api_base", &mail.url);
    env.client.ip = Some("203.0.113.7".parse().unwrap());
    (mail, env)
}

fn world() -> World {
    let (mail, env) = mail_and_env();
    let conn = env.db.conn();
    conn.execute_batch("INSERT INTO artists VALUES ('a1', 'Nova & the Tides', 0); INSERT INTO artists VALUES ('a2', 'Other Artist', 0);").unwrap();
    add_users(&env, &TWO_ARTISTS_USERS);
    conn.execute_batch(
        "INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
           VALUES ('p1', 'a1', 'tour', 'Tour news', 'Send me tour news.', 'v1', 0, 0, 0),
                  ('p2', 'a2', 'other', 'Other', 'Other news.', 'v1', 0, 0, 0);
         INSERT INTO links (id, artist_id, slug, definition, created_at, updated_at) VALUES
           ('l1', 'a1', 'night', '{\"title\":\"Night\",\"targets\":[{\"platform\":\"spotify\",\"url\":\"https://open.spotify.com/x\"}]}', 0, 0);
         INSERT INTO api_tokens (id, artist_id, token_hash, label, created_at) VALUES ('t1', 'a1', 'h1', 'nova-release-bot', 0);",
    )
    .unwrap();
    // Fans of both artists; a1's include a formula-looking address.
    let fans = [
        ("f1", "a1", "=sum(a1)@example.com", "subscribed", "SE", "Linköping"),
        ("f2", "a1", "b@example.com", "unsubscribed", "US", "Austin"),
        ("f3", "a2", "secret@other.example", "subscribed", "DE", "Berlin"),
    ];
    for (i, (id, artist, email, status, country, city)) in fans.iter().enumerate() {
        let page = if *artist == "a1" { "p1" } else { "p2" };
        conn.execute(
            "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, country, city, source_page_id, consent_version, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'v1', ?9, ?9)",
            // INTEGER affinity stores the numeric text as a number.
            [*id, *artist, &enc(&shared::crypto::fan_email_context(artist, id), email), &keys().blind_index(artist, email), *status, *country, *city, page, &(1_767_225_600_000i64 + i as i64 * 1000).to_string()],
        )
        .unwrap();
        conn.execute("INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) VALUES (?1, ?2, ?3, 'subscribe', ?4, 'v1', 'abc', 'single', 0)", [&format!("e{id}"), *id, *artist, page]).unwrap();
    }
    drop(conn);
    World { env, mail }
}

/// A browser: keeps cookies, sends same-origin headers on POST (the
/// dashboard's other test modules use it too).
pub(crate) struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    pub(crate) fn new() -> Browser {
        Browser { cookies: Vec::new() }
    }

    fn send(&mut self, env: &NativeEnv, method: Method, uri: &str, form: Option<&str>) -> Response {
        self.send_from(env, method, uri, form, "https://fans.example", "same-origin")
    }

    /// As a page on another site would post: the CSRF checks must refuse it.
    pub(crate) fn post_cross_site(&mut self, env: &NativeEnv, uri: &str, form: &str) -> Response {
        self.send_from(env, Method::POST, uri, Some(form), "https://evil.example", "cross-site")
    }

    fn send_from(&mut self, env: &NativeEnv, method: Method, uri: &str, form: Option<&str>, origin: &str, site: &str) -> Response {
        let mut b = HttpRequest::builder().method(method.clone()).uri(uri).header("host", "fans.example");
        if !self.cookies.is_empty() {
            b = b.header("cookie", self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "));
        }
        if method == Method::POST {
            b = b.header("content-type", "application/x-www-form-urlencoded").header("origin", origin).header("sec-fetch-site", site);
        }
        let req: Request = b.body(form.unwrap_or("").as_bytes().to_vec()).unwrap();
        let res = block_on(crate::handle(req, env));
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

    pub(crate) fn get(&mut self, env: &NativeEnv, uri: &str) -> Response {
        self.send(env, Method::GET, uri, None)
    }

    pub(crate) fn post(&mut self, env: &NativeEnv, uri: &str, form: &str) -> Response {
        self.send(env, Method::POST, uri, Some(form))
    }

    /// Signs in through the emailed link, as a person would.
    fn sign_in(&mut self, w: &World, email: &str) -> Response {
        self.sign_in_with(&w.env, &w.mail, email)
    }

    /// The same, for a world of another test module: `mail` is where the
    /// environment sends its mail.
    pub(crate) fn sign_in_with(&mut self, env: &NativeEnv, mail: &Recorder, email: &str) -> Response {
        let page = text(&self.get(env, "/app/sign-in"));
        let csrf = hidden(&page, "csrf");
        let res = self.post(env, "/app/sign-in", &format!("csrf={csrf}&email={}", email.replace('@', "%40")));
        assert_eq!(res.status(), 200, "{}", text(&res));
        let link = last_link(mail, email).expect("a sign-in mail");
        self.open_link(env, &link)
    }

    fn open_link(&mut self, env: &NativeEnv, link: &str) -> Response {
        let path = link.strip_prefix("https://fans.example").unwrap();
        let page = text(&self.get(env, path));
        let (csrf, t) = (hidden(&page, "csrf"), hidden(&page, "t"));
        self.post(env, "/app/sign-in/verify", &format!("csrf={csrf}&t={t}"))
    }

    pub(crate) fn csrf(&mut self, env: &NativeEnv) -> String {
        hidden(&text(&self.get(env, "/app/account")), "csrf")
    }
}

pub(crate) fn text(res: &Response) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

pub(crate) fn hidden(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn last_link(mail: &Recorder, to: &str) -> Option<String> {
    mail.requests().iter().rev().find_map(|r| {
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        (v["to"][0] == to)
            .then(|| v["text"].as_str().and_then(|t| t.split_whitespace().find(|w| w.contains("/app/sign-in/verify"))).map(str::to_owned))
            .flatten()
    })
}

fn location(res: &Response) -> &str {
    res.headers().get("location").map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[test]
fn sign_in_by_link_once_in_the_same_browser() {
    let w = world();
    let mut b = Browser::new();
    assert_eq!(location(&b.get(&w.env, "/app/fans")), "/app/sign-in");
    let res = b.sign_in(&w, "owner@nova.example");
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/app/overview");
    let cookie = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).find(|c| c.starts_with("__Host-sd_session=")).unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let fans = b.get(&w.env, "/app/fans");
    assert_eq!(fans.status(), 200);
    assert_eq!(fans.headers()["cache-control"], "no-store");
    assert!(fans.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert!(text(&fans).contains("=sum(a1)@example.com"), "own fans listed");
    // The same link again, in the same browser: used up.
    let link = last_link(&w.mail, "owner@nova.example").unwrap();
    assert_eq!(b.open_link(&w.env, &link).status(), 410);
    // Only the session's hash is stored.
    let id = b.cookies.iter().find(|(k, _)| k == "__Host-sd_session").unwrap().1.clone();
    let stored: i64 =
        w.env.db.conn().query_row("SELECT count(*) FROM sessions WHERE id_hash = ?1", [shared::crypto::sha256_hex(id.as_bytes())], |r| r.get(0)).unwrap();
    let raw: i64 = w.env.db.conn().query_row("SELECT count(*) FROM sessions WHERE id_hash = ?1", [&id], |r| r.get(0)).unwrap();
    assert_eq!((stored, raw), (1, 0));
}

#[test]
fn link_refused_in_another_browser_and_after_ten_minutes() {
    let w = world();
    let mut asker = Browser::new();
    let page = text(&asker.get(&w.env, "/app/sign-in"));
    asker.post(&w.env, "/app/sign-in", &format!("csrf={}&email=owner%40nova.example", hidden(&page, "csrf")));
    let link = last_link(&w.mail, "owner@nova.example").unwrap();
    let mut other = Browser::new();
    let res = other.open_link(&w.env, &link);
    assert_eq!(res.status(), 403);
    assert!(text(&res).contains("different browser"));
    w.env.advance_secs(10 * 60 + 1);
    assert_eq!(asker.open_link(&w.env, &link).status(), 410, "expired after 10 minutes");
}

#[test]
fn unknown_address_gets_the_same_answer_and_no_mail() {
    let w = world();
    let mut b = Browser::new();
    let csrf = hidden(&text(&b.get(&w.env, "/app/sign-in")), "csrf");
    let known = text(&b.post(&w.env, "/app/sign-in", &format!("csrf={csrf}&email=owner%40nova.example")));
    let unknown = text(&b.post(&w.env, "/app/sign-in", &format!("csrf={csrf}&email=nobody%40nova.example")));
    assert_eq!(known.replace("owner@nova.example", "X"), unknown.replace("nobody@nova.example", "X"));
    assert_eq!(w.mail.requests().len(), 1, "mail only for the account");
    let rows: i64 = w.env.db.conn().query_row("SELECT count(*) FROM sign_in_links", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 2, "a row either way, so both cost the same");
}

#[test]
fn sign_in_requests_are_limited_per_address_and_per_client() {
    let w = world();
    let mut b = Browser::new();
    let csrf = hidden(&text(&b.get(&w.env, "/app/sign-in")), "csrf");
    let statuses: Vec<u16> = (0..6).map(|_| b.post(&w.env, "/app/sign-in", &format!("csrf={csrf}&email=nobody%40nova.example")).status().as_u16()).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    let statuses: Vec<u16> = (0..20).map(|i| b.post(&w.env, "/app/sign-in", &format!("csrf={csrf}&email=x{i}%40nova.example")).status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5, "20 per client per window: {statuses:?}");
}

#[test]
fn sessions_end_when_idle_or_too_old_and_on_sign_out() {
    let w = world();
    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    w.env.advance_secs(29 * 60);
    assert_eq!(b.get(&w.env, "/app/fans").status(), 200, "29 idle minutes are fine");
    w.env.advance_secs(30 * 60);
    assert_eq!(location(&b.get(&w.env, "/app/fans")), "/app/sign-in?ended=1", "30 idle minutes end it");

    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    for _ in 0..(12 * 3) {
        assert_eq!(b.get(&w.env, "/app/fans").status(), 200);
        w.env.advance_secs(20 * 60);
    }
    assert_eq!(location(&b.get(&w.env, "/app/fans")), "/app/sign-in?ended=1", "12 hours at most, however active");

    let mut one = Browser::new();
    let mut two = Browser::new();
    one.sign_in(&w, "owner@nova.example");
    two.sign_in(&w, "owner@nova.example");
    let csrf = one.csrf(&w.env);
    assert_eq!(location(&one.post(&w.env, "/app/sign-out-everywhere", &format!("csrf={csrf}"))), "/app/sign-in");
    assert_eq!(location(&two.get(&w.env, "/app/fans")), "/app/sign-in", "other browsers are signed out too");
}

#[test]
fn csrf_refusals_change_nothing() {
    let w = world();
    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    let csrf = b.csrf(&w.env);
    let status = |w: &World| -> String { w.env.db.conn().query_row("SELECT status FROM fans WHERE id = 'f1'", [], |r| r.get(0)).unwrap() };
    assert_eq!(b.post(&w.env, "/app/fans/f1/unsubscribe", "").status(), 403, "no token");
    assert_eq!(b.post(&w.env, "/app/fans/f1/unsubscribe", "csrf=wrong").status(), 403, "wrong token");
    // The right token from another site.
    let cookie = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    for (h, v) in [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site"), ("sec-fetch-site", "same-site")] {
        let req: Request = HttpRequest::post("/app/fans/f1/unsubscribe")
            .header("host", "fans.example")
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(h, v)
            .body(format!("csrf={csrf}").into_bytes())
            .unwrap();
        let res = block_on(crate::handle(req, &w.env));
        assert_eq!(res.status(), 403, "{h}: {v}");
        assert!(text(&res).contains("nothing was changed"));
    }
    assert_eq!(status(&w), "subscribed");
    assert_eq!(b.post(&w.env, "/app/fans/f1/unsubscribe", &format!("csrf={csrf}")).status(), 303);
    assert_eq!(status(&w), "unsubscribed");
    let method: String = w.env.db.conn().query_row("SELECT method FROM consent_events WHERE fan_id = 'f1' AND kind = 'unsubscribe'", [], |r| r.get(0)).unwrap();
    assert_eq!(method, "artist", "recorded as done by the artist");
}

#[test]
fn another_artist_sees_404_and_nothing_in_lists() {
    let w = world();
    let mut b = Browser::new();
    b.sign_in(&w, "owner@other.example");
    let csrf = b.csrf(&w.env);
    for path in ["/app/fans/f1", "/app/pages/p1", "/app/links/night", "/api/v1/app/fans/f1"] {
        assert_eq!(b.get(&w.env, path).status(), 404, "{path}");
    }
    for path in ["/app/tokens/t1/revoke", "/app/team/u1/remove", "/app/team/u2/remove", "/app/fans/f1/unsubscribe"] {
        assert_eq!(b.post(&w.env, path, &format!("csrf={csrf}")).status(), 404, "{path}");
    }
    let revoked: Option<i64> = w.env.db.conn().query_row("SELECT revoked_at FROM api_tokens WHERE id = 't1'", [], |r| r.get(0)).unwrap();
    assert_eq!(revoked, None);
    let users: i64 = w.env.db.conn().query_row("SELECT count(*) FROM users WHERE artist_id = 'a1'", [], |r| r.get(0)).unwrap();
    assert_eq!(users, 2);
    let search = text(&b.get(&w.env, "/app/fans?email=b%40example.com"));
    assert!(search.contains("No fans match") && !search.contains("/app/fans/f2"), "search finds only own fans");
    for path in ["/app/fans", "/app/fans.csv", "/api/v1/app/fans", "/app/pages", "/app/links", "/app/team", "/app/tokens"] {
        let body = text(&b.get(&w.env, path));
        for theirs in ["sum(a1)", "b@example.com\"", "Linköping", "tour", "night", "owner@nova.example", "nova-release-bot"] {
            assert!(!body.contains(theirs), "{path} shows {theirs}");
        }
    }
    assert!(text(&b.get(&w.env, "/app/fans.csv")).contains("secret@other.example"), "own fans exported");
}

#[test]
fn fans_filters_search_and_csv() {
    let w = world();
    let mut b = Browser::new();
    b.sign_in(&w, "member@nova.example");
    let list = |b: &mut Browser, q: &str| text(&b.get(&w.env, &format!("/app/fans{q}")));
    assert!(list(&mut b, "?status=subscribed").contains("sum(a1)") && !list(&mut b, "?status=subscribed").contains("b@example.com"));
    assert!(list(&mut b, "?country=us").contains("b@example.com") && !list(&mut b, "?country=us").contains("sum(a1)"));
    assert!(list(&mut b, "?email=B%40Example.com").contains("b@example.com"), "exact search through the blind index");
    assert!(!list(&mut b, "?email=b%40example.co").contains("b@example.com"));
    assert!(list(&mut b, "?from=2026-01-01&to=2026-01-01").contains("b@example.com"));
    assert!(!list(&mut b, "?from=2026-01-02").contains("b@example.com"));
    let bad = b.get(&w.env, "/app/fans?country=Sweden&from=yesterday");
    assert_eq!(bad.status(), 422);
    assert!(text(&bad).contains("two-letter") && text(&bad).contains("YYYY-MM-DD") && text(&bad).contains("value=\"SWEDEN\""));
    let csv = b.get(&w.env, "/app/fans.csv?status=subscribed");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(csv.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"fans-"));
    let body = text(&csv);
    let mut lines = body.lines();
    assert_eq!(
        lines.next(),
        Some("email,status,country,region,city,source_page,signed_up_at,consent_version,subscribed_at,confirmed_at,unsubscribed_at,first_name")
    );
    assert_eq!(lines.next(), Some("'=sum(a1)@example.com,subscribed,SE,,Linköping,tour,2026-01-01T00:00:00Z,v1,,,,"));
    assert_eq!(lines.next(), None);
    // A member can't act for fans or manage tokens.
    let csrf = b.csrf(&w.env);
    assert_eq!(b.post(&w.env, "/app/fans/f1/unsubscribe", &format!("csrf={csrf}")).status(), 403);
    assert_eq!(b.get(&w.env, "/app/tokens").status(), 403);
}

#[test]
fn fans_list_pages_by_keyset() {
    let w = world();
    {
        let conn = w.env.db.conn();
        for i in 0..120 {
            let email = format!("fan{i}@example.com");
            conn.execute(
                "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, consent_version, created_at, updated_at) VALUES (?1, 'a1', ?2, ?3, 'subscribed', 'v1', 1767225700000, 0)",
                [&format!("x{i:03}"), &enc("fan.email:a1", &email), &keys().blind_index("a1", &email)],
            )
            .unwrap();
        }
    }
    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    let mut seen = std::collections::HashSet::new();
    let mut next = Some("/app/fans".to_owned());
    while let Some(url) = next.take() {
        let page = text(&b.get(&w.env, &url.replace("&amp;", "&")));
        for part in page.split("href=\"/app/fans/").skip(1) {
            assert!(seen.insert(part[..part.find('"').unwrap()].to_owned()), "a fan listed twice");
        }
        next = page
            .split("rel=\"next\"")
            .next()
            .and_then(|p| p.rfind("<a href=\"").map(|i| p[i + 9..].split('"').next().unwrap().to_owned()))
            .filter(|_| page.contains("rel=\"next\""));
    }
    assert_eq!(seen.len(), 122);
}

#[test]
fn totp_enrol_sign_in_reuse_and_recovery() {
    let w = world();
    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    let csrf = b.csrf(&w.env);
    let page = text(&b.post(&w.env, "/app/account/totp/start", &format!("csrf={csrf}")));
    assert!(page.contains("<svg") && page.contains("otpauth://totp/"));
    let secret_b32 = page.split("<p class=\"secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let secret = shared::auth::totp::base32_decode(&secret_b32).unwrap();
    let step = |env: &NativeEnv| env.now_ms() / 1000 / 30;
    let code = |env: &NativeEnv| format!("{:06}", shared::auth::totp::code_at(&secret, step(env)));
    assert_eq!(b.post(&w.env, "/app/account/totp/confirm", &format!("csrf={csrf}&code=000000")).status(), 422);
    let done = b.post(&w.env, "/app/account/totp/confirm", &format!("csrf={csrf}&code={}", code(&w.env)));
    assert_eq!(done.status(), 200);
    let codes: Vec<String> = text(&done).split("<li>").skip(1).map(|s| s.split('<').next().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 10);
    let stored: String = w.env.db.conn().query_row("SELECT totp_enc FROM users WHERE id = 'u1'", [], |r| r.get(0)).unwrap();
    assert!(!stored.contains(&secret_b32), "secret encrypted at rest");

    // A new sign-in asks for the code; the code just used is refused.
    w.env.advance_secs(1);
    let mut b = Browser::new();
    assert_eq!(location(&b.sign_in(&w, "owner@nova.example")), "/app/overview");
    assert_eq!(location(&b.get(&w.env, "/app/fans")), "/app/sign-in/code");
    assert_eq!(b.get(&w.env, "/api/v1/app/fans").status(), 401);
    let csrf = hidden(&text(&b.get(&w.env, "/app/sign-in/code")), "csrf");
    assert_eq!(b.post(&w.env, "/app/sign-in/code", &format!("csrf={csrf}&code={}", code(&w.env))).status(), 422, "each code works once");
    w.env.advance_secs(30);
    let res = b.post(&w.env, "/app/sign-in/code", &format!("csrf={csrf}&code={}", code(&w.env)));
    assert_eq!(location(&res), "/app/overview");
    assert_eq!(b.get(&w.env, "/app/fans").status(), 200);

    // Recovery codes work once each.
    let mut c = Browser::new();
    c.sign_in(&w, "owner@nova.example");
    let csrf = hidden(&text(&c.get(&w.env, "/app/sign-in/code")), "csrf");
    assert_eq!(location(&c.post(&w.env, "/app/sign-in/code", &format!("csrf={csrf}&code={}", codes[0].to_uppercase()))), "/app/overview");
    let mut d = Browser::new();
    d.sign_in(&w, "owner@nova.example");
    let csrf = hidden(&text(&d.get(&w.env, "/app/sign-in/code")), "csrf");
    assert_eq!(d.post(&w.env, "/app/sign-in/code", &format!("csrf={csrf}&code={}", codes[0])).status(), 422);
    // Five wrong codes (the used recovery code was the first) end the session.
    for _ in 0..3 {
        assert_eq!(d.post(&w.env, "/app/sign-in/code", &format!("csrf={csrf}&code=123456")).status(), 422);
    }
    assert_eq!(location(&d.post(&w.env, "/app/sign-in/code", &format!("csrf={csrf}&code=123456"))), "/app/sign-in?ended=1");
}

#[test]
fn owner_can_require_a_second_factor() {
    let w = world();
    let mut owner = Browser::new();
    owner.sign_in(&w, "owner@nova.example");
    let mut member = Browser::new();
    member.sign_in(&w, "member@nova.example");
    let csrf = owner.csrf(&w.env);
    assert_eq!(owner.post(&w.env, "/app/team/require-second-factor", &format!("csrf={csrf}&require=1")).status(), 303);
    assert_eq!(location(&member.get(&w.env, "/app/fans")), "/app/account", "members without one must enrol first");
    assert_eq!(member.get(&w.env, "/api/v1/app/fans").status(), 401);
    let mcsrf = member.csrf(&w.env);
    assert_eq!(
        member.post(&w.env, "/app/team/require-second-factor", &format!("csrf={mcsrf}&require=0")).status(),
        303,
        "redirected to enrol, nothing changed"
    );
    let required: i64 = w.env.db.conn().query_row("SELECT require_totp FROM artist_settings WHERE artist_id = 'a1'", [], |r| r.get(0)).unwrap();
    assert_eq!(required, 1);
}

#[test]
fn tokens_are_shown_once_and_revocable() {
    let w = world();
    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    let csrf = b.csrf(&w.env);
    assert_eq!(b.post(&w.env, "/app/tokens", &format!("csrf={csrf}&label=")).status(), 422);
    let res = b.post(&w.env, "/app/tokens", &format!("csrf={csrf}&label=CI+script"));
    assert_eq!(res.status(), 201);
    let token = text(&res).split("<p class=\"secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(token.starts_with("sd_"));
    let hash: String = w.env.db.conn().query_row("SELECT token_hash FROM api_tokens WHERE label = 'CI script'", [], |r| r.get(0)).unwrap();
    assert_eq!(hash, shared::crypto::sha256_hex(token.as_bytes()));
    assert!(!text(&b.get(&w.env, "/app/tokens")).contains(&token), "shown once");
    assert_eq!(b.post(&w.env, "/app/tokens/t1/revoke", &format!("csrf={csrf}")).status(), 303);
}

#[test]
fn stylesheet_path_carries_its_hash() {
    let hash = shared::crypto::sha256_hex(crate::view::CSS.as_bytes());
    assert_eq!(crate::view::CSS_PATH, format!("/app/assets/app-{}.css", &hash[..8]), "update CSS_PATH after editing CSS");
}

#[test]
fn owners_invite_and_remove_members_but_not_the_last_owner() {
    let w = world();
    let mut owner = Browser::new();
    owner.sign_in(&w, "owner@nova.example");
    let csrf = owner.csrf(&w.env);
    let bad = owner.post(&w.env, "/app/team", &format!("csrf={csrf}&email=not-an-address&role=member"));
    assert_eq!(bad.status(), 422);
    assert!(text(&bad).contains("value=\"not-an-address\""), "what was typed is kept");
    assert_eq!(location(&owner.post(&w.env, "/app/team", &format!("csrf={csrf}&email=new%40nova.example&role=member"))), "/app/team?done=invited");
    assert!(w.mail.requests().iter().any(|r| String::from_utf8_lossy(&r.body).contains("new@nova.example")), "invitation mailed");
    let taken = owner.post(&w.env, "/app/team", &format!("csrf={csrf}&email=owner%40other.example&role=member"));
    assert_eq!(taken.status(), 409, "an address belongs to one workspace");
    // The new member signs in, then is removed: their session ends.
    let mut member = Browser::new();
    assert_eq!(location(&member.sign_in(&w, "new@nova.example")), "/app/overview");
    let id: String = w.env.db.conn().query_row("SELECT id FROM users WHERE artist_id = 'a1' AND role = 'member' AND created_at > 0", [], |r| r.get(0)).unwrap();
    let mcsrf = member.csrf(&w.env);
    assert_eq!(member.post(&w.env, &format!("/app/team/{id}/remove"), &format!("csrf={mcsrf}")).status(), 403, "members can't remove");
    assert_eq!(location(&owner.post(&w.env, &format!("/app/team/{id}/remove"), &format!("csrf={csrf}"))), "/app/team?done=removed");
    assert_eq!(location(&member.get(&w.env, "/app/fans")), "/app/sign-in");
    assert_eq!(owner.post(&w.env, "/app/team/u1/remove", &format!("csrf={csrf}")).status(), 409, "not yourself, not the last owner");
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let w = world();
    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    for path in ["/app/sign-in", "/app/fans"] {
        let res = b.send(&w.env, Method::DELETE, path, None);
        assert_eq!(res.status(), 405, "{path}");
        assert_eq!(res.headers()["allow"], "GET, HEAD, POST", "{path}");
    }
}

#[test]
fn unreadable_origin_headers_count_as_cross_origin() {
    let w = world();
    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    let csrf = b.csrf(&w.env);
    let cookie = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    for (h, v) in [("origin", &b"https://\xc3\xbcn.example"[..]), ("sec-fetch-site", b"\xc3\xbc"), ("origin", b"")] {
        let req: Request = HttpRequest::post("/app/fans/f1/unsubscribe")
            .header("host", "fans.example")
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(h, shared::http::HeaderValue::from_bytes(v).unwrap())
            .body(format!("csrf={csrf}").into_bytes())
            .unwrap();
        assert_eq!(block_on(crate::handle(req, &w.env)).status(), 403, "{h}: {v:?}");
    }
}

// ------------------------------------------------------------ fan rights

fn count(w: &World, sql: &str) -> i64 {
    w.env.db.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn export_holds_every_record_field_by_field() {
    let w = world();
    {
        let conn = w.env.db.conn();
        // An event that hashed the page's current wording, and a mail sent.
        let hash = shared::crypto::sha256_hex(b"Send me tour news.");
        conn.execute("INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) VALUES ('e2', 'f1', 'a1', 'confirm', 'p1', 'v1', ?1, 'link', 1767225660000)", [&hash]).unwrap();
        conn.execute_batch("INSERT INTO mail_log (fan_id, artist_id, kind, at) VALUES ('f1', 'a1', 'confirm', 1767225630000); UPDATE fans SET region = 'Östergötland', eu = 1 WHERE id = 'f1';").unwrap();
        // What the provider reported, and an event that went to the artist's CRM.
        conn.execute_batch(
            "INSERT INTO mail_events (id, fan_id, artist_id, kind, bounce_type, provider, provider_msg_id, email_id, at)
               VALUES ('me1', 'f1', 'a1', 'bounce', 'transient', 'resend', 'msg_in_1', 'em_1', 1767225640000);
             INSERT INTO webhook_endpoints (id, artist_id, url, events, secret_enc, created_at, updated_at) VALUES ('ep1', 'a1', 'https://crm.nova.example/hooks?k=1', '*', 'x', 0, 0);
             INSERT INTO webhook_messages (id, artist_id, endpoint_id, event_id, type, fan_id, payload, status, next_at, created_at, delivered_at)
               VALUES ('msg_1', 'a1', 'ep1', 'e2', 'fan.confirmed', 'f1', '{}', 'delivered', 0, 1767225660000, 1767225661000);",
        )
        .unwrap();
    }
    let mut b = Browser::new();
    b.sign_in(&w, "member@nova.example");
    let res = b.get(&w.env, "/api/v1/app/fans/f1/export");
    assert_eq!(res.status(), 200, "{}", text(&res));
    let doc: serde_json::Value = serde_json::from_str(&text(&res)).unwrap();
    assert_eq!(doc["format"], "stagedoor.fan-export/1");
    assert_eq!(doc["controller"]["artist_id"], "a1");
    let fan = &doc["fan"];
    assert_eq!(fan["id"], "f1");
    assert_eq!(fan["email"], "=sum(a1)@example.com");
    assert_eq!(fan["status"], "subscribed");
    assert_eq!(fan["restricted_since"], serde_json::Value::Null);
    assert_eq!(fan["location"], serde_json::json!({ "country": "SE", "region": "Östergötland", "city": "Linköping", "eu": true }));
    assert_eq!(fan["source_page"], serde_json::json!({ "slug": "tour", "title": "Tour news" }));
    assert_eq!(fan["consent_version"], "v1");
    assert_eq!(fan["created_at"], "2026-01-01T00:00:00Z");
    assert_eq!(fan["updated_at"], "2026-01-01T00:00:00Z");
    let history = doc["consent_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    // The fixture's hash is not the page's wording: no text, hash kept.
    assert_eq!(history[0]["consent_hash"], "abc");
    assert_eq!(history[0]["consent_text_held"], false);
    assert_eq!(history[0]["consent_text"], serde_json::Value::Null);
    assert_eq!(history[1]["kind"], "confirm");
    assert_eq!(history[1]["method"], "link");
    assert_eq!(history[1]["at"], "2026-01-01T00:01:00Z");
    assert_eq!(history[1]["page"], serde_json::json!({ "slug": "tour", "title": "Tour news" }));
    assert_eq!(history[1]["consent_text"], "Send me tour news.");
    assert_eq!(doc["mail"], serde_json::json!([{ "kind": "confirm", "at": "2026-01-01T00:00:30Z" }]));
    assert_eq!(
        doc["bounces_and_complaints"],
        serde_json::json!([{ "kind": "bounce", "bounce_type": "transient", "provider": "resend", "provider_message_id": "msg_in_1", "provider_email_id": "em_1", "at": "2026-01-01T00:00:40Z" }])
    );
    assert_eq!(
        doc["webhook_events"],
        serde_json::json!([{ "id": "msg_1", "type": "fan.confirmed", "sent_to": "https://crm.nova.example", "status": "delivered", "created_at": "2026-01-01T00:01:00Z", "delivered_at": "2026-01-01T00:01:01Z" }])
    );
    // The download is the same document, as an attachment.
    let dl = b.get(&w.env, "/app/fans/f1/export.json");
    assert_eq!(dl.status(), 200);
    assert!(dl.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"fan-f1-"));
    let again: serde_json::Value = serde_json::from_str(&text(&dl)).unwrap();
    assert_eq!(again["fan"], doc["fan"]);
    assert!(text(&b.get(&w.env, "/app/fans/f1")).contains("/app/fans/f1/export.json"), "linked from the fan's page");
    let page = text(&b.get(&w.env, "/app/fans/f1"));
    assert!(
        page.contains("Bounces and complaints") && page.contains("msg_in_1") && page.contains("bounce (transient)"),
        "the provider's reports are in the fan's history"
    );
    // Another artist's fan, or none: 404.
    assert_eq!(b.get(&w.env, "/api/v1/app/fans/f3/export").status(), 404);
    assert_eq!(b.get(&w.env, "/app/fans/f3/export.json").status(), 404);
    assert_eq!(b.get(&w.env, "/app/fans/nope/export.json").status(), 404);
}

#[test]
fn erasure_asks_first_then_removes_everything_in_one_batch() {
    let w = world();
    w.env
        .db
        .conn()
        .execute_batch(
            "INSERT INTO mail_log (fan_id, artist_id, kind, at) VALUES ('f1', 'a1', 'confirm', 1); INSERT INTO fan_restrictions VALUES ('f1', 'a1', 1, 'u1');",
        )
        .unwrap();
    let mut member = Browser::new();
    member.sign_in(&w, "member@nova.example");
    let csrf = member.csrf(&w.env);
    assert_eq!(member.get(&w.env, "/app/fans/f1/erase").status(), 403);
    assert_eq!(member.post(&w.env, "/app/fans/f1/erase", &format!("csrf={csrf}&confirm=erase")).status(), 403);
    let mut other = Browser::new();
    other.sign_in(&w, "owner@other.example");
    let ocsrf = other.csrf(&w.env);
    assert_eq!(other.get(&w.env, "/app/fans/f1/erase").status(), 404);
    assert_eq!(other.post(&w.env, "/app/fans/f1/erase", &format!("csrf={ocsrf}&confirm=erase")).status(), 404);

    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    let csrf = b.csrf(&w.env);
    let form = text(&b.get(&w.env, "/app/fans/f1/erase"));
    assert!(form.contains("name=\"confirm\"") && form.contains("cannot be undone"));
    for bad in ["", "&confirm=yes"] {
        let res = b.post(&w.env, "/app/fans/f1/erase", &format!("csrf={csrf}{bad}"));
        assert_eq!(res.status(), 422);
        assert!(text(&res).contains("id=\"err-confirm\"") && text(&res).contains("Nothing was erased"));
    }
    assert_eq!(count(&w, "SELECT count(*) FROM fans WHERE id = 'f1'"), 1);
    let res = b.post(&w.env, "/app/fans/f1/erase", &format!("csrf={csrf}&confirm=erase"));
    assert_eq!(res.status(), 200, "{}", text(&res));
    for table in ["fans WHERE id", "consent_events WHERE fan_id", "mail_log WHERE fan_id", "fan_restrictions WHERE fan_id"] {
        assert_eq!(count(&w, &format!("SELECT count(*) FROM {table} = 'f1'")), 0, "{table}");
    }
    assert_eq!(count(&w, "SELECT count(*) FROM fans"), 2, "only that fan");
    let (artist, by, method): (String, String, String) =
        w.env.db.conn().query_row("SELECT artist_id, by_user, method FROM erasures", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    assert_eq!((artist.as_str(), by.as_str(), method.as_str()), ("a1", "u1", "artist"));
    assert_eq!(b.get(&w.env, "/app/fans/f1").status(), 404);
    assert_eq!(b.post(&w.env, "/app/fans/f1/erase", &format!("csrf={csrf}&confirm=erase")).status(), 404, "a repeat finds nothing");
}

#[test]
fn foreign_keys_cascade_and_freed_pages_are_overwritten_natively() {
    let w = world();
    assert_eq!(count(&w, "PRAGMA foreign_keys"), 1);
    assert_eq!(count(&w, "PRAGMA secure_delete"), 1);
    w.env.db.conn().execute("DELETE FROM fans WHERE id = 'f2'", []).unwrap();
    assert_eq!(count(&w, "SELECT count(*) FROM consent_events WHERE fan_id = 'f2'"), 0, "cascaded");
}

#[test]
fn restriction_leaves_fan_out_of_exports_and_is_recorded() {
    let w = world();
    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    let csrf = b.csrf(&w.env);
    let res = b.post(&w.env, "/app/fans/f1/restrict", &format!("csrf={csrf}"));
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/app/fans/f1?did=restricted"));
    assert_eq!(b.post(&w.env, "/app/fans/f1/restrict", &format!("csrf={csrf}")).status(), 303, "a repeat is harmless");
    assert_eq!(count(&w, "SELECT count(*) FROM fan_restrictions WHERE fan_id = 'f1' AND by_user = 'u1'"), 1);
    assert_eq!(count(&w, "SELECT count(*) FROM consent_events WHERE fan_id = 'f1' AND kind = 'restrict' AND method = 'artist'"), 1, "recorded once");
    assert!(!text(&b.get(&w.env, "/app/fans.csv")).contains("sum(a1)"), "CSV leaves it out");
    assert!(!text(&b.get(&w.env, "/api/v1/app/fans")).contains("sum(a1)"), "API list leaves it out");
    assert!(text(&b.get(&w.env, "/app/fans")).contains("restricted"), "the dashboard list still shows it, marked");
    let page = text(&b.get(&w.env, "/app/fans/f1?did=restricted"));
    assert!(page.contains("Lift the restriction") && page.contains("Restricted."));
    let doc: serde_json::Value = serde_json::from_str(&text(&b.get(&w.env, "/api/v1/app/fans/f1/export"))).unwrap();
    assert!(doc["fan"]["restricted_since"].is_string() && doc["consent_history"][1]["kind"] == "restrict");
    // Members can't; another artist gets 404.
    let mut m = Browser::new();
    m.sign_in(&w, "member@nova.example");
    let mcsrf = m.csrf(&w.env);
    assert_eq!(m.post(&w.env, "/app/fans/f1/unrestrict", &format!("csrf={mcsrf}")).status(), 403);
    let mut o = Browser::new();
    o.sign_in(&w, "owner@other.example");
    let ocsrf = o.csrf(&w.env);
    for path in ["/app/fans/f1/unrestrict", "/app/fans/f2/restrict"] {
        assert_eq!(o.post(&w.env, path, &format!("csrf={ocsrf}")).status(), 404, "{path}");
    }
    assert_eq!(b.post(&w.env, "/app/fans/f1/unrestrict", &format!("csrf={csrf}")).status(), 303);
    assert_eq!(count(&w, "SELECT count(*) FROM fan_restrictions"), 0);
    assert_eq!(count(&w, "SELECT count(*) FROM consent_events WHERE fan_id = 'f1' AND kind = 'unrestrict'"), 1);
    assert!(text(&b.get(&w.env, "/app/fans.csv")).contains("sum(a1)"), "back in the CSV once lifted");
}

#[test]
fn rectification_reencrypts_reindexes_and_refuses_a_taken_address() {
    let w = world();
    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    let csrf = b.csrf(&w.env);
    let form = text(&b.get(&w.env, "/app/fans/f2/edit"));
    assert!(form.contains("value=\"b@example.com\"") && form.contains("value=\"Austin\""));
    let bad = b.post(&w.env, "/app/fans/f2/edit", &format!("csrf={csrf}&email=nope&country=Sweden&city=Austin"));
    assert_eq!(bad.status(), 422);
    assert!(text(&bad).contains("id=\"err-email\"") && text(&bad).contains("id=\"err-country\""));
    let taken = b.post(&w.env, "/app/fans/f1/edit", &format!("csrf={csrf}&email=B%40example.com&country=SE&city=Link%C3%B6ping"));
    assert_eq!(taken.status(), 409);
    assert!(text(&taken).contains("already has this address"));
    let ok = b.post(&w.env, "/app/fans/f2/edit", &format!("csrf={csrf}&email=new%40example.com&country=de&region=&city=Berlin"));
    assert_eq!((ok.status().as_u16(), location(&ok)), (303, "/app/fans/f2?did=corrected"));
    let (enc, hash, country, city, eu): (String, String, String, String, i64) = w
        .env
        .db
        .conn()
        .query_row("SELECT email_enc, email_hash, country, city, eu FROM fans WHERE id = 'f2'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    assert_eq!(keys().decrypt_fan_email(&enc, "a1", "f2").unwrap(), "new@example.com");
    assert_eq!(hash, keys().blind_index("a1", "new@example.com"));
    assert_eq!((country.as_str(), city.as_str(), eu), ("DE", "Berlin", 1));
    assert_eq!(
        count(&w, "SELECT count(*) FROM consent_events WHERE fan_id = 'f2' AND kind IN ('rectify-address', 'rectify-location') AND method = 'artist'"),
        2
    );
    assert!(text(&b.get(&w.env, "/app/fans?email=new%40example.com")).contains("new@example.com"), "found by the new index");
    // Another artist's fan: 404, nothing changed.
    let mut o = Browser::new();
    o.sign_in(&w, "owner@other.example");
    let ocsrf = o.csrf(&w.env);
    assert_eq!(o.get(&w.env, "/app/fans/f2/edit").status(), 404);
    assert_eq!(o.post(&w.env, "/app/fans/f2/edit", &format!("csrf={ocsrf}&email=x%40example.com")).status(), 404);
}

/// A first name for fan `id` of `artist` (whose address is `email`), stored
/// as signup stores it (schema/0016).
fn give_name(w: &World, id: &str, artist: &str, email: &str, name: &str) {
    let hash = keys().blind_index(artist, email);
    w.env
        .db
        .conn()
        .execute("INSERT INTO fan_names VALUES (?1, ?2, ?3, 0)", [id, artist, &enc(&shared::capture::fan_name_context(artist, &hash), name)])
        .unwrap();
}

#[test]
fn first_names_are_exported_to_their_artist_only_and_go_with_the_fan() {
    let w = world();
    give_name(&w, "f1", "a1", "=sum(a1)@example.com", "Zoë, \"Z\"");
    give_name(&w, "f3", "a2", "secret@other.example", "Hidden");
    let mut b = Browser::new();
    b.sign_in(&w, "owner@nova.example");
    let csv = text(&b.get(&w.env, "/app/fans.csv"));
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",unsubscribed_at,first_name"));
    assert!(csv.contains(",v1,,,,\"Zoë, \"\"Z\"\"\"\r\n"), "quoted like any cell: {csv}");
    assert!(csv.contains("b@example.com,unsubscribed,US,,Austin,tour,2026-01-01T00:00:01Z,v1,,,,\r\n"), "no name, empty cell: {csv}");
    assert!(!csv.contains("Hidden"));
    assert!(text(&b.get(&w.env, "/app/fans/f1")).contains("<dt>First name</dt><dd>Zoë, &quot;Z&quot;</dd>"));
    let doc: serde_json::Value = serde_json::from_str(&text(&b.get(&w.env, "/api/v1/app/fans/f1/export"))).unwrap();
    assert_eq!(doc["fan"]["first_name"], "Zoë, \"Z\"");
    let list: serde_json::Value = serde_json::from_str(&text(&b.get(&w.env, "/api/v1/app/fans"))).unwrap();
    assert_eq!(list["fans"][1]["first_name"], "Zoë, \"Z\"");
    // The other artist sees only their own fan's name.
    let mut o = Browser::new();
    o.sign_in(&w, "owner@other.example");
    let theirs = text(&o.get(&w.env, "/app/fans.csv"));
    assert!(theirs.contains("Hidden") && !theirs.contains("Zoë"), "{theirs}");
    assert_eq!(o.get(&w.env, "/app/fans/f1").status(), 404);
    // A new address re-encrypts the name for it.
    let csrf = b.csrf(&w.env);
    let ok = b.post(&w.env, "/app/fans/f1/edit", &format!("csrf={csrf}&email=zoe%40example.com&country=SE&city=Link%C3%B6ping"));
    assert_eq!(ok.status(), 303, "{}", text(&ok));
    assert!(text(&b.get(&w.env, "/app/fans/f1")).contains("<dd>Zoë, &quot;Z&quot;</dd>"), "still readable");
    // Erasing the fan takes the name with it.
    let res = b.post(&w.env, "/app/fans/f1/erase", &format!("csrf={csrf}&confirm=erase"));
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(count(&w, "SELECT count(*) FROM fan_names WHERE fan_id = 'f1'"), 0);
    assert_eq!(count(&w, "SELECT count(*) FROM fan_names"), 1, "the other artist's stays");
}
