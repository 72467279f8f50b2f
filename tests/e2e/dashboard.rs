//! The dashboard on each runtime: sign-in through the recorded mail, the
//! second factor, session expiry, CSRF, tenancy with a real second artist
//! holding real fans, filters, search and the CSV export (100,000 rows),
//! and the fan rights (export, erasure, restriction, rectification).
//!
//! Each case signs in as its own user (added straight to the database,
//! as `stagedoor-admin` would), so per-address sign-in limits never
//! couple the cases. Expiry cases age the stored session timestamps:
//! requests can't move the clock, and a deployed runtime's clock can't be
//! changed from outside (the native tests move the clock itself).

use std::time::{Duration, Instant};

use crate::cases::{body, json, keys, Case, Res};
use crate::ensure;
use crate::runtime::{Kind, Target};

pub const ALL: &[(&str, Case)] = &[
    ("dashboard_sign_in_once_same_browser", sign_in_once_same_browser),
    ("dashboard_unknown_address_same_answer", unknown_address_same_answer),
    ("dashboard_totp_enrol_sign_in_reuse_recovery", totp_flow),
    ("dashboard_idle_and_absolute_expiry", expiry),
    ("dashboard_sign_out_everywhere", sign_out_everywhere),
    ("dashboard_csrf_refused_changes_nothing", csrf_refused),
    ("dashboard_other_artist_gets_404_and_nothing", cross_tenant),
    ("dashboard_filters_search_csv", filters_search_csv),
    ("dashboard_csv_100k_fans", csv_100k),
    ("dashboard_rights_export_every_record", rights_export),
    ("dashboard_rights_erasure_leaves_no_trace", rights_erasure),
    ("dashboard_rights_restriction_holds_back_exports_and_mail", rights_restriction),
    ("dashboard_rights_rectification", rights_rectification),
];

/// A browser: a cookie jar, its own client address, same-origin POSTs.
pub(crate) struct Browser<'t> {
    t: &'t Target,
    ip: String,
    cookies: Vec<(String, String)>,
}

impl<'t> Browser<'t> {
    pub(crate) fn new(t: &'t Target, ip: &str) -> Self {
        Browser { t, ip: ip.to_owned(), cookies: Vec::new() }
    }

    fn send(&mut self, method: &str, path: &str, form: &str) -> Result<Res, String> {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let origin = self.t.base.clone();
        let mut headers = vec![(self.t.ip_header(), self.ip.as_str())];
        if !cookie.is_empty() {
            headers.push(("cookie", &cookie));
        }
        if method == "POST" {
            headers.extend([("content-type", "application/x-www-form-urlencoded"), ("origin", origin.as_str()), ("sec-fetch-site", "same-origin")]);
        }
        let res = self.t.send(method, path, &headers, form.as_bytes())?;
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().map_err(|e| e.to_string())?;
            let (kv, attrs) = v.split_once(';').unwrap_or((v, ""));
            let Some((k, val)) = kv.split_once('=') else { continue };
            self.cookies.retain(|(n, _)| n != k);
            if !attrs.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), val.to_owned()));
            }
        }
        Ok(res)
    }

    pub(crate) fn get(&mut self, path: &str) -> Result<Res, String> {
        self.send("GET", path, "")
    }

    pub(crate) fn post(&mut self, path: &str, form: &str) -> Result<Res, String> {
        self.send("POST", path, form)
    }

    /// Asks for a link and returns it (path and query), from the mail.
    fn ask_link(&mut self, email: &str) -> Result<String, String> {
        let before = links_to(self.t, email).len();
        let page = body(&self.get("/app/sign-in")?);
        let res = self.post("/app/sign-in", &format!("csrf={}&email={}", hidden(&page, "csrf")?, enc(email)))?;
        ensure!(res.status() == 200 && body(&res).contains("Check your email"), "sign-in request: {} {}", res.status(), body(&res));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let links = links_to(self.t, email);
            if links.len() > before {
                return Ok(links[links.len() - 1].clone());
            }
            ensure!(Instant::now() < deadline, "no sign-in mail for {email}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn open_link(&mut self, link: &str) -> Result<Res, String> {
        let page = body(&self.get(link)?);
        let form = format!("csrf={}&t={}", hidden(&page, "csrf")?, hidden(&page, "t")?);
        self.post("/app/sign-in/verify", &form)
    }

    pub(crate) fn sign_in(&mut self, email: &str) -> Result<(), String> {
        let link = self.ask_link(email)?;
        let res = self.open_link(&link)?;
        ensure!(res.status() == 303, "verify: {} {}", res.status(), body(&res));
        Ok(())
    }

    pub(crate) fn csrf(&mut self) -> Result<String, String> {
        hidden(&body(&self.get("/app/account")?), "csrf")
    }
}

fn enc(s: &str) -> String {
    s.replace('%', "%25").replace('@', "%40").replace('+', "%2B").replace('=', "%3D").replace(' ', "+")
}

fn hidden(html: &str, name: &str) -> Result<String, String> {
    let key = format!("name=\"{name}\" value=\"");
    let at = html.find(&key).ok_or_else(|| format!("no hidden {name} in the page: {}", &html[..html.len().min(400)]))?;
    let rest = &html[at + key.len()..];
    Ok(rest[..rest.find('"').unwrap_or(0)].to_owned())
}

pub(crate) fn location(res: &Res) -> String {
    res.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

/// A dashboard form's body: the CSRF token, then `fields` percent-encoded.
pub(crate) fn form(csrf: &str, fields: &[(&str, &str)]) -> String {
    fields.iter().fold(format!("csrf={csrf}"), |acc, (k, v)| format!("{acc}&{k}={}", shared::httpx::percent_encode(v)))
}

/// Sign-in links mailed to `to`, oldest first, as paths.
fn links_to(t: &Target, to: &str) -> Vec<String> {
    t.mail
        .requests()
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter(|v| v["to"][0] == to)
        .filter_map(|v| v["text"].as_str().and_then(|t| t.split_whitespace().find(|w| w.contains("/app/sign-in/verify"))).map(str::to_owned))
        .filter_map(|l| l.find("/app/").map(|i| l[i..].to_owned()))
        .collect()
}

/// Adds a dashboard user the way `stagedoor-admin user` does.
pub(crate) fn add_user(t: &Target, id: &str, artist: &str, email: &str, role: &str) -> Result<(), String> {
    let k = keys();
    let stored = k.encrypt(email.as_bytes(), format!("user.email:{artist}").as_bytes()).map_err(|e| e.to_string())?;
    t.db_rw()?
        .execute(
            "INSERT OR IGNORE INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
            [id, artist, &stored, &k.blind_index("users", email), role],
        )
        .map_err(|e| e.to_string())?;
    Ok(())
}

pub(crate) fn signup(t: &Target, ip: &str, page: &str, email: &str) -> Result<(), String> {
    let res = json(t, ip, &format!(r#"{{"page":"{page}","email":"{email}","consent":true}}"#))?;
    ensure!(res.status() == 200, "signup {email}: {} {}", res.status(), body(&res));
    Ok(())
}

fn sign_in_once_same_browser(t: &Target) -> Result<(), String> {
    add_user(t, "d-u1", "e2e-artist", "signin@e2e.example", "owner")?;
    let mut b = Browser::new(t, "198.51.100.101");
    ensure!(location(&b.get("/app/fans")?) == "/app/sign-in", "no session → sign-in");
    let link = b.ask_link("signin@e2e.example")?;
    // Another browser can't use it, and doesn't use it up.
    let mut thief = Browser::new(t, "198.51.100.102");
    let res = thief.open_link(&link)?;
    ensure!(res.status() == 403 && body(&res).contains("different browser"), "other browser: {}", res.status());
    let res = b.open_link(&link)?;
    ensure!(res.status() == 303 && location(&res) == "/app/overview", "verify: {} {}", res.status(), location(&res));
    let cookie =
        res.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find(|c| c.starts_with("__Host-sd_session=")).unwrap_or("").to_owned();
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        ensure!(cookie.contains(attr), "session cookie lacks {attr}: {cookie}");
    }
    let fans = b.get("/app/fans")?;
    ensure!(fans.status() == 200 && body(&fans).contains("<h1>Fans</h1>"), "fans page: {}", fans.status());
    for (h, v) in [("cache-control", "no-store"), ("referrer-policy", "no-referrer")] {
        ensure!(fans.headers().get(h).and_then(|x| x.to_str().ok()) == Some(v), "{h}");
    }
    let csp = fans.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
    ensure!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline") && csp.contains("style-src 'self'"), "csp: {csp}");
    let page = body(&fans);
    let stylesheet = page.split("rel=\"stylesheet\" href=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("");
    let css = b.get(stylesheet)?;
    ensure!(
        css.status() == 200 && css.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or("").contains("immutable"),
        "stylesheet {}",
        css.status()
    );
    // Used once; a second link expires after 10 minutes.
    ensure!(b.open_link(&link)?.status() == 410, "a used link must be refused");
    let second = b.ask_link("signin@e2e.example")?;
    let token = second.split("t=").nth(1).unwrap_or("").to_owned();
    let hash = shared::crypto::sha256_hex(token.as_bytes());
    t.db_rw()?
        .execute("UPDATE sign_in_links SET created_at = created_at - 660000, expires_at = expires_at - 660000 WHERE token_hash = ?1", [&hash])
        .map_err(|e| e.to_string())?;
    ensure!(b.open_link(&second)?.status() == 410, "an 11-minute-old link must be refused");
    Ok(())
}

fn unknown_address_same_answer(t: &Target) -> Result<(), String> {
    add_user(t, "d-u2", "e2e-artist", "known@e2e.example", "member")?;
    let mut b = Browser::new(t, "198.51.100.103");
    let page = body(&b.get("/app/sign-in")?);
    let csrf = hidden(&page, "csrf")?;
    let ask = |b: &mut Browser, email: &str| -> Result<(u16, String, Duration), String> {
        let start = Instant::now();
        let res = b.post("/app/sign-in", &format!("csrf={csrf}&email={}", enc(email)))?;
        Ok((res.status().as_u16(), body(&res).replace(email, "X"), start.elapsed()))
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..3 {
        known.push(ask(&mut b, "known@e2e.example")?);
        unknown.push(ask(&mut b, "nobody@e2e.example")?);
    }
    ensure!(known[0].0 == 200 && known[0].0 == unknown[0].0 && known[0].1 == unknown[0].1, "answers differ");
    let median = |v: &mut Vec<(u16, String, Duration)>| {
        v.sort_by_key(|x| x.2);
        v[1].2
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    // The mail leaves after the response, so a known address costs no
    // provider round trip; allow for scheduling noise on a loaded machine.
    ensure!(k < u + Duration::from_millis(150), "known {k:?} vs unknown {u:?}");
    ensure!(links_to(t, "nobody@e2e.example").is_empty(), "no mail to an address without an account");
    Ok(())
}

fn totp_code(secret: &[u8], offset_steps: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    format!("{:06}", shared::auth::totp::code_at(secret, now / 30 + offset_steps))
}

fn totp_flow(t: &Target) -> Result<(), String> {
    add_user(t, "d-u3", "e2e-artist", "totp@e2e.example", "member")?;
    let mut b = Browser::new(t, "198.51.100.104");
    b.sign_in("totp@e2e.example")?;
    let csrf = b.csrf()?;
    let page = body(&b.post("/app/account/totp/start", &format!("csrf={csrf}"))?);
    ensure!(page.contains("<svg") && page.contains("otpauth://totp/"), "enrolment page lacks the QR code");
    let b32 = page.split("<p class=\"secret\">").nth(1).and_then(|s| s.split('<').next()).unwrap_or("");
    let secret = shared::auth::totp::base32_decode(b32).ok_or("no secret shown")?;
    // Kept, not recomputed below: a 30 s step may end in between, and the
    // next step's code is fresh.
    let enrolment_code = totp_code(&secret, 0);
    let done = b.post("/app/account/totp/confirm", &format!("csrf={csrf}&code={enrolment_code}"))?;
    ensure!(done.status() == 200, "confirm: {} {}", done.status(), body(&done));
    let codes: Vec<String> = body(&done).split("<li>").skip(1).filter_map(|s| s.split('<').next()).map(str::to_owned).collect();
    ensure!(codes.len() == 10, "{} recovery codes", codes.len());
    let stored: String = t.db()?.query_row("SELECT totp_enc FROM users WHERE id = 'd-u3'", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(!stored.contains(b32), "TOTP secret stored in clear");

    // Sign in again: the second factor is asked for; this step's code was used.
    let mut b = Browser::new(t, "198.51.100.104");
    b.sign_in("totp@e2e.example")?;
    ensure!(location(&b.get("/app/fans")?) == "/app/sign-in/code", "second factor not asked for");
    ensure!(b.get("/api/v1/app/fans")?.status() == 401, "API reachable before the second factor");
    let csrf = hidden(&body(&b.get("/app/sign-in/code")?), "csrf")?;
    // The code enrolment used must be refused; the next step's is fresh.
    let used = b.post("/app/sign-in/code", &format!("csrf={csrf}&code={enrolment_code}"))?;
    if used.status() == 303 {
        return Err("the code used for enrolment was accepted again".into());
    }
    let next = b.post("/app/sign-in/code", &format!("csrf={csrf}&code={}", totp_code(&secret, 1)))?;
    ensure!(next.status() == 303 && location(&next) == "/app/overview", "next step's code: {}", next.status());
    ensure!(b.get("/app/fans")?.status() == 200, "signed in after the code");

    // A recovery code works once.
    let mut c = Browser::new(t, "198.51.100.104");
    c.sign_in("totp@e2e.example")?;
    let csrf = hidden(&body(&c.get("/app/sign-in/code")?), "csrf")?;
    ensure!(location(&c.post("/app/sign-in/code", &format!("csrf={csrf}&code={}", codes[0]))?) == "/app/overview", "recovery code refused");
    let mut d = Browser::new(t, "198.51.100.104");
    d.sign_in("totp@e2e.example")?;
    let csrf = hidden(&body(&d.get("/app/sign-in/code")?), "csrf")?;
    ensure!(d.post("/app/sign-in/code", &format!("csrf={csrf}&code={}", codes[0]))?.status() == 422, "recovery code reused");
    Ok(())
}

fn expiry(t: &Target) -> Result<(), String> {
    add_user(t, "d-u4", "e2e-artist", "expiry@e2e.example", "member")?;
    let age = |b: &Browser, column: &str, ms: i64| -> Result<(), String> {
        let id = b.cookies.iter().find(|(k, _)| k == "__Host-sd_session").map(|(_, v)| v.clone()).ok_or("no session cookie")?;
        t.db_rw()?
            .execute(
                &format!("UPDATE sessions SET {column} = {column} - ?1 WHERE id_hash = ?2"),
                rusqlite::params![ms, shared::crypto::sha256_hex(id.as_bytes())],
            )
            .map_err(|e| e.to_string())
            .map(drop)
    };
    let mut b = Browser::new(t, "198.51.100.105");
    b.sign_in("expiry@e2e.example")?;
    age(&b, "last_seen_at", 29 * 60_000)?;
    ensure!(b.get("/app/fans")?.status() == 200, "29 idle minutes must be fine");
    age(&b, "last_seen_at", 31 * 60_000)?;
    ensure!(location(&b.get("/app/fans")?) == "/app/sign-in?ended=1", "31 idle minutes must end the session");

    let mut b = Browser::new(t, "198.51.100.105");
    b.sign_in("expiry@e2e.example")?;
    age(&b, "created_at", 12 * 3_600_000)?;
    ensure!(location(&b.get("/app/fans")?) == "/app/sign-in?ended=1", "a 12-hour-old session must end, however active");
    Ok(())
}

fn sign_out_everywhere(t: &Target) -> Result<(), String> {
    add_user(t, "d-u5", "e2e-artist", "everywhere@e2e.example", "member")?;
    let mut one = Browser::new(t, "198.51.100.106");
    let mut two = Browser::new(t, "198.51.100.107");
    one.sign_in("everywhere@e2e.example")?;
    two.sign_in("everywhere@e2e.example")?;
    let csrf = one.csrf()?;
    ensure!(location(&one.post("/app/sign-out-everywhere", &format!("csrf={csrf}"))?) == "/app/sign-in", "sign out everywhere");
    ensure!(location(&one.get("/app/fans")?) == "/app/sign-in", "this browser still signed in");
    ensure!(location(&two.get("/app/fans")?) == "/app/sign-in", "the other browser still signed in");
    let left: i64 = t.db()?.query_row("SELECT count(*) FROM sessions WHERE user_id = 'd-u5'", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(left == 0, "{left} sessions left on the server");
    Ok(())
}

fn csrf_refused(t: &Target) -> Result<(), String> {
    add_user(t, "d-u6", "e2e-artist", "csrf@e2e.example", "owner")?;
    signup(t, "198.51.100.108", "e2e", "csrf-fan@example.com")?;
    let fan: String = t
        .db()?
        .query_row("SELECT id FROM fans WHERE email_hash = ?1", [keys().blind_index("e2e-artist", "csrf-fan@example.com")], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let mut b = Browser::new(t, "198.51.100.108");
    b.sign_in("csrf@e2e.example")?;
    let csrf = b.csrf()?;
    let path = format!("/app/fans/{fan}/unsubscribe");
    for form in ["", "csrf=forged"] {
        let res = b.post(&path, form)?;
        ensure!(res.status() == 403 && body(&res).contains("nothing was changed"), "form {form:?}: {}", res.status());
    }
    let cookie = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let res = t.send(
        "POST",
        &path,
        &[("cookie", &cookie), ("content-type", "application/x-www-form-urlencoded"), ("origin", "https://evil.example"), (t.ip_header(), "198.51.100.108")],
        format!("csrf={csrf}").as_bytes(),
    )?;
    ensure!(res.status() == 403, "cross-origin POST: {}", res.status());
    let status: String = t.db()?.query_row("SELECT status FROM fans WHERE id = ?1", [&fan], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(status == "subscribed", "a refused request changed the fan to {status}");
    ensure!(b.post(&path, &format!("csrf={csrf}"))?.status() == 303, "the real form must work");
    let method: String =
        t.db()?.query_row("SELECT method FROM consent_events WHERE fan_id = ?1 AND kind = 'unsubscribe'", [&fan], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(method == "artist", "recorded as {method}");
    Ok(())
}

fn cross_tenant(t: &Target) -> Result<(), String> {
    add_user(t, "d-a-owner", "e2e-artist", "tenant-a@e2e.example", "owner")?;
    add_user(t, "d-b-owner", "e2e-other-artist", "tenant-b@other.example", "owner")?;
    signup(t, "198.51.100.109", "e2e", "tenant-a-fan@example.com")?;
    signup(t, "198.51.100.109", "e2e-other", "tenant-b-fan@example.com")?;
    let a_fan: String = t
        .db()?
        .query_row("SELECT id FROM fans WHERE email_hash = ?1", [keys().blind_index("e2e-artist", "tenant-a-fan@example.com")], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let mut a = Browser::new(t, "198.51.100.110");
    a.sign_in("tenant-a@e2e.example")?;
    let acsrf = a.csrf()?;
    let made = a.post("/app/tokens", &format!("csrf={acsrf}&label=tenant-a-tool"))?;
    ensure!(made.status() == 201, "token: {}", made.status());
    let a_token: String = t.db()?.query_row("SELECT id FROM api_tokens WHERE label = 'tenant-a-tool'", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(body(&a.get("/app/fans")?).contains("tenant-a-fan@example.com"), "A sees A's fan");

    let mut b = Browser::new(t, "198.51.100.111");
    b.sign_in("tenant-b@other.example")?;
    let csrf = b.csrf()?;
    for path in [format!("/app/fans/{a_fan}"), "/app/pages/e2e-page".into(), "/app/links/e2e-db-only".into(), format!("/api/v1/app/fans/{a_fan}")] {
        let res = b.get(&path)?;
        ensure!(res.status() == 404, "B GET {path}: {}", res.status());
    }
    for path in [format!("/app/fans/{a_fan}/unsubscribe"), format!("/app/tokens/{a_token}/revoke"), "/app/team/d-a-owner/remove".into()] {
        let res = b.post(&path, &format!("csrf={csrf}"))?;
        ensure!(res.status() == 404, "B POST {path}: {}", res.status());
    }
    let revoked: Option<i64> = t.db()?.query_row("SELECT revoked_at FROM api_tokens WHERE id = ?1", [&a_token], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(revoked.is_none(), "B revoked A's token");
    let users: i64 = t.db()?.query_row("SELECT count(*) FROM users WHERE id = 'd-a-owner'", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(users == 1, "B removed A's user");
    // Searching for A's fan finds nothing (the typed address is echoed in
    // the search box, nowhere else).
    let search = body(&b.get("/app/fans?email=tenant-a-fan%40example.com")?);
    ensure!(search.contains("No fans match") && !search.contains(&format!("/app/fans/{a_fan}")), "B's search finds A's fan");
    for path in ["/app/fans", "/app/fans.csv", "/api/v1/app/fans", "/app/pages", "/app/links", "/app/team", "/app/tokens"] {
        let page = body(&b.get(path)?);
        for theirs in [
            "tenant-a-fan@example.com</a>",
            "tenant-a-fan@example.com,",
            "\"tenant-a-fan@example.com\"",
            "/s/e2e<",
            "e2e-db-only",
            "tenant-a@e2e.example",
            "tenant-a-tool",
            "E2E list",
        ] {
            ensure!(!page.contains(theirs), "B's {path} shows A's {theirs}");
        }
    }
    ensure!(body(&b.get("/app/fans.csv")?).contains("tenant-b-fan@example.com"), "B's export lacks B's own fan");
    Ok(())
}

fn filters_search_csv(t: &Target) -> Result<(), String> {
    add_user(t, "d-u7", "e2e-other-artist", "filters@other.example", "member")?;
    // Located fans: Linköping (SE) from the edge's data on Workers, from
    // the test IP database on Spin.
    let cf = r#"{"country":"SE","region":"Östergötland County","city":"Linköping","clientAcceptEncoding":""}"#;
    for email in ["=1+2@example.com", "linkoping-fan@example.com"] {
        let mut headers = vec![("content-type", "application/json"), (t.ip_header(), "89.160.20.128")];
        if t.kind == Kind::Workers {
            headers.push(("mf-cf-blob", cf));
        }
        let res = t.send("POST", "/api/v1/signup", &headers, format!(r#"{{"page":"e2e-other","email":"{email}","consent":true}}"#).as_bytes())?;
        ensure!(res.status() == 200, "signup {email}: {} {}", res.status(), body(&res));
    }
    signup(t, "198.51.100.112", "e2e-other", "plain-fan@example.com")?;
    let mut b = Browser::new(t, "198.51.100.112");
    b.sign_in("filters@other.example")?;
    let se = body(&b.get("/app/fans?country=SE")?);
    ensure!(se.contains("linkoping-fan@example.com") && se.contains("Linköping") && !se.contains("plain-fan@example.com"), "country filter");
    let found = body(&b.get("/app/fans?email=Plain-Fan%40EXAMPLE.com")?);
    ensure!(found.contains("plain-fan@example.com") && !found.contains("linkoping-fan"), "exact search");
    let subscribed = body(&b.get("/app/fans?status=subscribed")?);
    ensure!(subscribed.contains("plain-fan@example.com"), "status filter");
    ensure!(!body(&b.get("/app/fans?status=bounced")?).contains("plain-fan@example.com"), "status filter excludes");
    let bad = b.get("/app/fans?country=Sweden")?;
    ensure!(bad.status() == 422 && body(&bad).contains("two-letter"), "bad filter: {}", bad.status());
    let csv = b.get("/app/fans.csv?country=SE")?;
    ensure!(csv.headers().get("content-type").and_then(|v| v.to_str().ok()) == Some("text/csv; charset=utf-8"), "csv type");
    let text = body(&csv);
    ensure!(text.starts_with("email,status,country,region,city,source_page,signed_up_at,consent_version"), "csv header: {}", &text[..text.len().min(120)]);
    ensure!(text.contains("\r\n'=1+2@example.com,subscribed,SE,Östergötland County,Linköping,e2e-other,"), "formula neutralised, UTF-8 kept: {text}");
    ensure!(!text.contains("plain-fan"), "csv honours the filter");
    Ok(())
}

/// 100,000 fans for one artist: the export pages through them (100
/// queries of 1,000) and every row arrives.
fn csv_100k(t: &Target) -> Result<(), String> {
    const N: usize = 100_000;
    let artist = "e2e-big-artist";
    {
        let mut db = t.db_rw()?;
        let tx = db.transaction().map_err(|e| e.to_string())?;
        tx.execute("INSERT OR IGNORE INTO artists (id, name, created_at) VALUES (?1, 'Big Artist', 0)", [artist]).map_err(|e| e.to_string())?;
        let k = keys();
        {
            let mut ins = tx
                .prepare("INSERT INTO fans (id, artist_id, email_enc, email_hash, status, country, city, consent_version, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'subscribed', 'SE', 'Linköping', 'v1', ?5, ?5)")
                .map_err(|e| e.to_string())?;
            for i in 0..N {
                let email = format!("big{i}@example.com");
                let id = format!("{i:032x}");
                let stored = k.encrypt(email.as_bytes(), shared::crypto::fan_email_context(artist, &id).as_bytes()).map_err(|e| e.to_string())?;
                ins.execute(rusqlite::params![id, artist, stored, k.blind_index(artist, &email), 1_767_225_600_000i64 + i as i64])
                    .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
    }
    add_user(t, "d-big", artist, "big@big.example", "member")?;
    let mut b = Browser::new(t, "198.51.100.113");
    b.sign_in("big@big.example")?;
    let start = Instant::now();
    let res = b.get("/app/fans.csv")?;
    let took = start.elapsed();
    ensure!(res.status() == 200, "export: {} {}", res.status(), body(&res));
    let text = body(&res);
    let lines = text.lines().count();
    ensure!(lines == N + 1, "{lines} lines for {N} fans");
    ensure!(text.contains("big0@example.com") && text.contains(&format!("big{}@example.com", N - 1)), "first or last fan missing");
    eprintln!("[{:?}] 100,000-fan CSV: {took:?}, {} bytes", t.kind, text.len());
    let start = Instant::now();
    let list = b.get("/app/fans")?;
    eprintln!("[{:?}] fans list page (100,000 fans): {:?}", t.kind, start.elapsed());
    ensure!(list.status() == 200 && body(&list).contains("rel=\"next\""), "list page");
    Ok(())
}

// ------------------------------------------------------------ fan rights

pub(crate) fn fan_id(t: &Target, artist: &str, email: &str) -> Result<String, String> {
    t.db()?
        .query_row("SELECT id FROM fans WHERE artist_id = ?1 AND email_hash = ?2", [artist, &keys().blind_index(artist, email)], |r| r.get(0))
        .map_err(|e| format!("fan {email}: {e}"))
}

/// Mails the stand-in provider got for `to`.
fn mail_count(t: &Target, to: &str) -> usize {
    t.mail.requests().iter().filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok()).filter(|v| v["to"][0] == to).count()
}

/// Waits until `to` has `n` mails (they leave after the response), then
/// a little longer so a mail that should not come has had its chance.
fn settle_mail(t: &Target, to: &str, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while mail_count(t, to) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    mail_count(t, to)
}

/// Owner browsers for both artists: A (the e2e artist) and B (the other).
/// The rights cases use clients 198.51.100.140–159, which no other case
/// uses (per-client limits would couple them otherwise).
fn owners<'t>(t: &'t Target, tag: &str, ip: u8) -> Result<(Browser<'t>, Browser<'t>), String> {
    let (a_mail, b_mail) = (format!("rights-{tag}-a@e2e.example"), format!("rights-{tag}-b@other.example"));
    add_user(t, &format!("d-r-{tag}-a"), "e2e-artist", &a_mail, "owner")?;
    add_user(t, &format!("d-r-{tag}-b"), "e2e-other-artist", &b_mail, "owner")?;
    let mut a = Browser::new(t, &format!("198.51.100.{ip}"));
    a.sign_in(&a_mail)?;
    let mut b = Browser::new(t, &format!("198.51.100.{}", ip + 1));
    b.sign_in(&b_mail)?;
    Ok((a, b))
}

fn rights_export(t: &Target) -> Result<(), String> {
    // A located, double opt-in fan: a request event that hashed the page's
    // wording, and a confirmation mail in the log.
    let email = "rights-export-fan@example.com";
    // An endpoint of the artist's own, so an event carrying the fan's data
    // is on record, and (below) a bounce the provider reported.
    let rx = shared::adapters::native::recorder::Recorder::start().map_err(|e| e.to_string())?;
    let token = "sd_e2e_links_token_artist_one_3f9a";
    let (endpoint, _) = crate::hooks_out::create(t, token, &format!("{}/export", rx.url), serde_json::json!(["fan.subscribed"]))?;
    let cf = r#"{"country":"SE","region":"Östergötland County","city":"Linköping","clientAcceptEncoding":""}"#;
    let mut headers = vec![("content-type", "application/json"), (t.ip_header(), "89.160.20.128")];
    if t.kind == Kind::Workers {
        headers.push(("mf-cf-blob", cf));
    }
    let res = t.send("POST", "/api/v1/signup", &headers, format!(r#"{{"page":"e2e-doi","email":"{email}","consent":true}}"#).as_bytes())?;
    ensure!(res.status() == 200, "signup: {} {}", res.status(), body(&res));
    ensure!(settle_mail(t, email, 1) == 1, "no confirmation mail");
    signup(t, "198.51.100.140", "e2e-other", "rights-export-other-fan@example.com")?;
    let id = fan_id(t, "e2e-artist", email)?;
    let other_id = fan_id(t, "e2e-other-artist", "rights-export-other-fan@example.com")?;
    let (mut a, mut b) = owners(t, "export", 141)?;
    ensure!(crate::hooks_out::wait_for(&rx, 1, 10).len() == 1, "fan.subscribed not sent");
    // The attempt is recorded once the receiver has answered.
    let deadline = Instant::now() + Duration::from_secs(5);
    while t
        .db()?
        .query_row("SELECT count(*) FROM webhook_messages WHERE endpoint_id = ?1 AND status = 'delivered'", [&endpoint], |r| r.get::<_, i64>(0))
        .map_err(|e| e.to_string())?
        == 0
    {
        ensure!(Instant::now() < deadline, "fan.subscribed not recorded as delivered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let msg = crate::hooks_in::report(t, "email.bounced", email, "Transient", "e2e-artist", &id)?;

    let res = a.get(&format!("/api/v1/app/fans/{id}/export"))?;
    ensure!(res.status() == 200, "export: {} {}", res.status(), body(&res));
    let doc: serde_json::Value = serde_json::from_str(&body(&res)).map_err(|e| e.to_string())?;
    let fan = &doc["fan"];
    let text = "Email me news from E2E Band (confirm by email).";
    let checks: Vec<(&str, &serde_json::Value, serde_json::Value)> = vec![
        ("format", &doc["format"], "stagedoor.fan-export/1".into()),
        ("controller", &doc["controller"], serde_json::json!({ "artist_id": "e2e-artist", "artist_name": "E2E Band" })),
        ("id", &fan["id"], id.clone().into()),
        ("email", &fan["email"], email.into()),
        ("status", &fan["status"], "pending".into()),
        ("restricted_since", &fan["restricted_since"], serde_json::Value::Null),
        ("location", &fan["location"], serde_json::json!({ "country": "SE", "region": "Östergötland County", "city": "Linköping", "eu": true })),
        ("source_page", &fan["source_page"], serde_json::json!({ "slug": "e2e-doi", "title": "E2E confirmed list" })),
        ("consent_version", &fan["consent_version"], "v1".into()),
        ("confirmed_at", &fan["confirmed_at"], serde_json::Value::Null),
        ("history kind", &doc["consent_history"][0]["kind"], "request".into()),
        ("history method", &doc["consent_history"][0]["method"], "double".into()),
        ("history page", &doc["consent_history"][0]["page"], serde_json::json!({ "slug": "e2e-doi", "title": "E2E confirmed list" })),
        ("history version", &doc["consent_history"][0]["consent_version"], "v1".into()),
        ("history hash", &doc["consent_history"][0]["consent_hash"], shared::crypto::sha256_hex(text.as_bytes()).into()),
        ("history text", &doc["consent_history"][0]["consent_text"], text.into()),
        ("mail kind", &doc["mail"][0]["kind"], "confirm".into()),
        ("bounce kind", &doc["bounces_and_complaints"][0]["kind"], "bounce".into()),
        ("bounce type", &doc["bounces_and_complaints"][0]["bounce_type"], "transient".into()),
        ("bounce provider", &doc["bounces_and_complaints"][0]["provider"], "resend".into()),
        ("bounce message", &doc["bounces_and_complaints"][0]["provider_message_id"], msg.clone().into()),
        ("webhook type", &doc["webhook_events"][0]["type"], "fan.subscribed".into()),
        ("webhook status", &doc["webhook_events"][0]["status"], "delivered".into()),
        ("webhook sent to", &doc["webhook_events"][0]["sent_to"], rx.url.clone().into()),
    ];
    for (what, got, want) in checks {
        ensure!(*got == want, "{what}: {got} (expected {want})");
    }
    for (what, v) in [
        ("created_at", &fan["created_at"]),
        ("updated_at", &fan["updated_at"]),
        ("history at", &doc["consent_history"][0]["at"]),
        ("mail at", &doc["mail"][0]["at"]),
        ("bounce at", &doc["bounces_and_complaints"][0]["at"]),
        ("webhook created_at", &doc["webhook_events"][0]["created_at"]),
        ("webhook delivered_at", &doc["webhook_events"][0]["delivered_at"]),
    ] {
        ensure!(v.as_str().is_some_and(|s| s.len() == 20 && s.ends_with('Z')), "{what}: {v}");
    }
    ensure!(doc["consent_history"].as_array().map(Vec::len) == Some(1) && doc["mail"].as_array().map(Vec::len) == Some(1), "extra records: {doc}");
    ensure!(
        doc["bounces_and_complaints"].as_array().map(Vec::len) == Some(1) && doc["webhook_events"].as_array().map(Vec::len) == Some(1),
        "extra records: {doc}"
    );
    let (s, v) = crate::hooks_out::api(t, "DELETE", &format!("/api/v1/app/webhooks/{endpoint}"), token, None)?;
    ensure!(s == 204, "endpoint cleanup: {s} {v}");

    let dl = a.get(&format!("/app/fans/{id}/export.json"))?;
    let disposition = dl.headers().get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    ensure!(dl.status() == 200 && disposition.starts_with("attachment; filename=\"fan-"), "download: {} {disposition}", dl.status());
    let again: serde_json::Value = serde_json::from_str(&body(&dl)).map_err(|e| e.to_string())?;
    ensure!(again["fan"] == doc["fan"] && again["consent_history"] == doc["consent_history"], "the download differs from the API");
    ensure!(body(&a.get(&format!("/app/fans/{id}"))?).contains(&format!("/app/fans/{id}/export.json")), "no link on the fan's page");

    // Each artist gets 404 for the other's fan.
    for (who, browser, theirs) in [("B", &mut b, &id), ("A", &mut a, &other_id)] {
        for path in [format!("/app/fans/{theirs}/export.json"), format!("/api/v1/app/fans/{theirs}/export")] {
            let res = browser.get(&path)?;
            ensure!(res.status() == 404 && !body(&res).contains("@example.com"), "{who} GET {path}: {}", res.status());
        }
    }
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn rights_erasure(t: &Target) -> Result<(), String> {
    let email = "rights-erase-fan@example.com";
    signup(t, "198.51.100.145", "e2e-doi", email)?;
    ensure!(settle_mail(t, email, 1) == 1, "no confirmation mail");
    let id = fan_id(t, "e2e-artist", email)?;
    let (mut a, mut b) = owners(t, "erase", 146)?;
    let csrf = a.csrf()?;
    ensure!(a.post(&format!("/app/fans/{id}/restrict"), &format!("csrf={csrf}"))?.status() == 303, "restrict first");
    let (enc, hash): (String, String) =
        t.db()?.query_row("SELECT email_enc, email_hash FROM fans WHERE id = ?1", [&id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| e.to_string())?;
    let rows = |t: &Target| -> Result<Vec<i64>, String> {
        let db = t.db()?;
        ["fans WHERE id", "consent_events WHERE fan_id", "mail_log WHERE fan_id", "fan_restrictions WHERE fan_id"]
            .iter()
            .map(|q| db.query_row(&format!("SELECT count(*) FROM {q} = ?1"), [&id], |r| r.get(0)).map_err(|e| e.to_string()))
            .collect()
    };
    ensure!(rows(t)? == [1, 2, 1, 1], "before: {:?}", rows(t)?);

    // B can neither see the form nor erase; a missing confirmation erases nothing.
    let bcsrf = b.csrf()?;
    ensure!(b.get(&format!("/app/fans/{id}/erase"))?.status() == 404, "B sees A's erase form");
    ensure!(b.post(&format!("/app/fans/{id}/erase"), &format!("csrf={bcsrf}&confirm=erase"))?.status() == 404, "B erases A's fan");
    let form = body(&a.get(&format!("/app/fans/{id}/erase"))?);
    ensure!(form.contains("name=\"confirm\""), "no confirmation form");
    let res = a.post(&format!("/app/fans/{id}/erase"), &format!("csrf={csrf}&confirm=no"))?;
    ensure!(res.status() == 422 && body(&res).contains("err-confirm"), "unconfirmed: {}", res.status());
    ensure!(rows(t)? == [1, 2, 1, 1], "an unconfirmed or foreign request changed rows: {:?}", rows(t)?);
    let before: i64 = t.db()?.query_row("SELECT count(*) FROM erasures WHERE artist_id = 'e2e-artist'", [], |r| r.get(0)).map_err(|e| e.to_string())?;

    let res = a.post(&format!("/app/fans/{id}/erase"), &format!("csrf={csrf}&confirm=erase"))?;
    ensure!(res.status() == 200 && body(&res).contains("Erased"), "erase: {} {}", res.status(), body(&res));
    ensure!(rows(t)? == [0, 0, 0, 0], "after: {:?}", rows(t)?);
    let (after, by): (i64, String) = t
        .db()?
        .query_row("SELECT count(*), max(by_user) FROM erasures WHERE artist_id = 'e2e-artist'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| e.to_string())?;
    ensure!(after == before + 1 && by == "d-r-erase-a", "erasure record: {after} by {by}");
    ensure!(a.get(&format!("/app/fans/{id}"))?.status() == 404, "the fan's page still answers");

    // No copy of the ciphertext or the blind index in the runtime's files
    // (database, WAL, journal). Spin's connections set `secure_delete`, so
    // freed bytes are zeroed. D1 refuses that pragma (and `wal_checkpoint`)
    // with SQLITE_AUTH: its local engine leaves deleted cells' bytes in free
    // space until SQLite reuses it, which no statement of ours can change.
    // There the rows are gone (checked above) and what the files still hold
    // is reported, not failed (README "Fan rights" says what D1 guarantees).
    no_trace_in_files(t, &enc, &hash)
}

/// Fails (Spin) or reports (Workers: local D1 refuses `secure_delete`)
/// when any file the runtime wrote still holds an erased fan's ciphertext
/// `enc` or blind index `hash`.
pub(crate) fn no_trace_in_files(t: &Target, enc: &str, hash: &str) -> Result<(), String> {
    if t.kind == Kind::Spin {
        // The test host runs SQLite in WAL mode (Spin's default is a
        // rollback journal, where a committed delete is in the main file at
        // once): until a checkpoint, the main file can still hold a page as
        // an earlier checkpoint left it, while the zeroed page waits in the
        // WAL. SQLite checkpoints by itself (every 1,000 pages, and when the
        // last connection closes), which a busy run can delay past this
        // check; do now what it would do, then look at every file.
        checkpoint(t)?;
    }
    let mut files = Vec::new();
    crate::cases::collect(&t.state, &mut files);
    ensure!(files.iter().any(|f| f == &t.db_path), "database file not under the state dir");
    let mut found = Vec::new();
    for f in &files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", f.display())),
        };
        for (what, needle) in [("ciphertext", enc), ("blind index", hash)] {
            if contains(&bytes, needle.as_bytes()) {
                found.push(format!("{} still holds the erased fan's {what} (freed space or old WAL frames)", f.display()));
            }
        }
    }
    match t.kind {
        Kind::Spin => ensure!(found.is_empty(), "{}", found.join("; ")),
        Kind::Workers => found.iter().for_each(|f| eprintln!("[Workers, D1 local; not under our control] {f}")),
    }
    Ok(())
}

/// A TRUNCATE checkpoint, retried while a reader's snapshot blocks it.
fn checkpoint(t: &Target) -> Result<(), String> {
    let c = t.db_rw()?;
    for _ in 0..50 {
        let (busy, log, done): (i64, i64, i64) =
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(|e| e.to_string())?;
        if busy == 0 && log == done {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err("the WAL could not be checkpointed within 5 s".into())
}

fn rights_restriction(t: &Target) -> Result<(), String> {
    let email = "rights-restrict-fan@example.com";
    let ip = "198.51.100.150";
    signup(t, ip, "e2e-doi", email)?;
    ensure!(settle_mail(t, email, 1) == 1, "no first confirmation mail");
    let id = fan_id(t, "e2e-artist", email)?;
    let (mut a, mut b) = owners(t, "restrict", 151)?;
    let csrf = a.csrf()?;
    let bcsrf = b.csrf()?;
    for path in [format!("/app/fans/{id}/restrict"), format!("/app/fans/{id}/unrestrict")] {
        ensure!(b.post(&path, &format!("csrf={bcsrf}"))?.status() == 404, "B POST {path}");
    }
    ensure!(a.post(&format!("/app/fans/{id}/restrict"), &format!("csrf={csrf}"))?.status() == 303, "restrict");
    // Out of the 10-minute resend window, so only the restriction can hold
    // the next confirmation mail back.
    let age =
        || -> Result<(), String> { t.db_rw()?.execute("UPDATE mail_log SET at = at - 3600000 WHERE fan_id = ?1", [&id]).map_err(|e| e.to_string()).map(drop) };
    age()?;
    signup(t, ip, "e2e-doi", email)?;
    ensure!(settle_mail(t, email, 2) == 1, "a restricted fan got a confirmation mail");
    ensure!(!body(&a.get("/app/fans.csv")?).contains(email), "restricted fan in the CSV");
    ensure!(!body(&a.get("/api/v1/app/fans")?).contains(email), "restricted fan in the API list");
    ensure!(body(&a.get("/app/fans")?).contains(email), "the dashboard list must still show the fan");
    let kinds: Vec<String> = {
        let db = t.db()?;
        let mut q = db.prepare("SELECT kind FROM consent_events WHERE fan_id = ?1 ORDER BY at, id").map_err(|e| e.to_string())?;
        let v = q.query_map([&id], |r| r.get(0)).map_err(|e| e.to_string())?.collect::<Result<Vec<String>, _>>().map_err(|e| e.to_string())?;
        v
    };
    ensure!(kinds.iter().any(|k| k == "restrict"), "not in the history: {kinds:?}");

    ensure!(a.post(&format!("/app/fans/{id}/unrestrict"), &format!("csrf={csrf}"))?.status() == 303, "unrestrict");
    ensure!(body(&a.get("/app/fans.csv")?).contains(email), "back in the CSV once lifted");
    ensure!(body(&a.get("/api/v1/app/fans")?).contains(email), "back in the API list once lifted");
    age()?;
    signup(t, ip, "e2e-doi", email)?;
    ensure!(settle_mail(t, email, 2) == 2, "no confirmation mail once lifted");
    Ok(())
}

fn rights_rectification(t: &Target) -> Result<(), String> {
    let (email, other, new) = ("rights-fix-fan@example.com", "rights-fix-other@example.com", "rights-fixed-fan@example.com");
    signup(t, "198.51.100.155", "e2e", email)?;
    signup(t, "198.51.100.155", "e2e", other)?;
    let id = fan_id(t, "e2e-artist", email)?;
    let (mut a, mut b) = owners(t, "fix", 156)?;
    let csrf = a.csrf()?;
    let bcsrf = b.csrf()?;
    ensure!(b.get(&format!("/app/fans/{id}/edit"))?.status() == 404, "B GET edit");
    ensure!(b.post(&format!("/app/fans/{id}/edit"), &format!("csrf={bcsrf}&email={}&country=SE", enc(new)))?.status() == 404, "B POST edit");
    let bad = a.post(&format!("/app/fans/{id}/edit"), &format!("csrf={csrf}&email=nope&country=Sweden"))?;
    ensure!(bad.status() == 422 && body(&bad).contains("err-email") && body(&bad).contains("err-country"), "bad input: {}", bad.status());
    let taken = a.post(&format!("/app/fans/{id}/edit"), &format!("csrf={csrf}&email={}", enc(other)))?;
    ensure!(taken.status() == 409 && body(&taken).contains("already has this address"), "taken: {}", taken.status());
    let ok = a.post(&format!("/app/fans/{id}/edit"), &format!("csrf={csrf}&email={}&country=de&city=Berlin", enc(new)))?;
    ensure!(ok.status() == 303, "correct: {} {}", ok.status(), body(&ok));
    let (stored, hash, country, city): (String, String, Option<String>, Option<String>) = t
        .db()?
        .query_row("SELECT email_enc, email_hash, country, city FROM fans WHERE id = ?1", [&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(|e| e.to_string())?;
    ensure!(keys().decrypt_fan_email(&stored, "e2e-artist", &id).map_err(|e| e.to_string())? == new, "not re-encrypted");
    ensure!(hash == keys().blind_index("e2e-artist", new), "not re-indexed");
    ensure!(country.as_deref() == Some("DE") && city.as_deref() == Some("Berlin"), "location {country:?} {city:?}");
    let events: i64 = t
        .db()?
        .query_row("SELECT count(*) FROM consent_events WHERE fan_id = ?1 AND kind IN ('rectify-address', 'rectify-location')", [&id], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    ensure!(events == 2, "{events} rectification events");
    Ok(())
}
