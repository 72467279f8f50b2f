//! The cases, each run against every runtime. Each case uses its own
//! client address (rate limits are per client) and its own addresses.

use std::sync::{Arc, Barrier};

use shared::http;

use crate::runtime::{Kind, Target};

pub type Case = fn(&Target) -> Result<(), String>;
pub type Res = http::Response<Vec<u8>>;

pub const ALL: &[(&str, Case)] = &[
    ("capture_page", capture_page),
    ("unknown_page_404", unknown_page_404),
    ("form_signup", form_signup),
    ("json_signup_with_cors", json_signup_with_cors),
    ("validation_failures", validation_failures),
    ("duplicate_signup_one_row", duplicate_signup_one_row),
    ("concurrent_duplicates_one_row", concurrent_duplicates_one_row),
    ("location_recorded", location_recorded),
    ("rate_limit_429", rate_limit_429),
    ("rate_limit_holds_under_parallel_burst", rate_limit_holds_under_parallel_burst),
    ("oversized_bodies_413_page_for_forms_json_otherwise", oversized_bodies_413),
];

/// Runs after every other module's cases: scans everything the runtime
/// stored during the run.
pub const FINAL: &[(&str, Case)] = &[("no_plaintext_email_or_ip_stored", no_plaintext_email_or_ip_stored)];

#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Client addresses used by this module's cases. Every case in the suite
/// sends addresses under @example.com and clients in 198.51.100.0/24 (or the
/// geo test addresses), which the final scan looks for.
const IPS: &[&str] =
    &["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "198.51.100.6", "198.51.100.7", "89.160.20.128", "198.51.100.9"];
const SCAN_FOR: &[&str] = &["@example.com", "198.51.100.", "89.160.20.128", "81.2.69.142", "form-fan", "json-fan", "dupe-fan", "race-fan", "geo-fan", "rl-fan"];

pub fn body(res: &Res) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

fn form(t: &Target, ip: &str, slug: &str, data: &str) -> Result<Res, String> {
    t.send("POST", &format!("/s/{slug}"), &[("content-type", "application/x-www-form-urlencoded"), (t.ip_header(), ip)], data.as_bytes())
}

pub fn json(t: &Target, ip: &str, data: &str) -> Result<Res, String> {
    t.send("POST", "/api/v1/signup", &[("content-type", "application/json"), (t.ip_header(), ip)], data.as_bytes())
}

fn signup_json(email: &str) -> String {
    format!(r#"{{"page":"e2e","email":"{email}","consent":true}}"#)
}

pub fn count(t: &Target, sql: &str, email_hash: Option<&str>) -> Result<i64, String> {
    let db = t.db()?;
    let r = match email_hash {
        Some(h) => db.query_row(sql, [h], |r| r.get(0)),
        None => db.query_row(sql, [], |r| r.get(0)),
    };
    r.map_err(|e| format!("{sql}: {e}"))
}

pub fn keys() -> shared::crypto::Keys {
    shared::crypto::Keys::parse(crate::runtime::DATA_KEYS, crate::runtime::INDEX_KEY).expect("suite keys")
}

fn hash_of(email: &str) -> String {
    keys().blind_index("e2e-artist", &email.to_ascii_lowercase())
}

fn capture_page(t: &Target) -> Result<(), String> {
    let res = t.send("GET", "/s/e2e", &[], b"")?;
    ensure!(res.status() == 200, "status {}", res.status());
    let html = body(&res);
    for needle in ["<form method=\"post\">", "name=\"email\"", "name=\"consent\"", "name=\"website\"", "approximate location", "Email me news from E2E Band."] {
        ensure!(html.contains(needle), "page lacks {needle:?}");
    }
    ensure!(html.len() < 15 * 1024, "page is {} bytes", html.len());
    let csp = res.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
    ensure!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "CSP: {csp}");
    if t.kind == Kind::Spin {
        ensure!(html.contains("IP Geolocation by DB-IP"), "DB-IP attribution missing on Spin");
    }
    let head = t.send("HEAD", "/s/e2e", &[], b"")?;
    ensure!(head.status() == 200 && head.body().is_empty(), "HEAD: {} with {} bytes", head.status(), head.body().len());
    Ok(())
}

fn unknown_page_404(t: &Target) -> Result<(), String> {
    for path in ["/s/no-such-page", "/s/BAD"] {
        let res = t.send("GET", path, &[], b"")?;
        ensure!(res.status() == 404, "{path}: {}", res.status());
        ensure!(body(&res).contains("no sign-up page"), "{path}: 404 page text");
    }
    Ok(())
}

fn form_signup(t: &Target) -> Result<(), String> {
    let res = form(t, IPS[0], "e2e", "email=Form-Fan%40EXAMPLE.com&consent=yes&website=")?;
    ensure!(res.status() == 200, "status {}: {}", res.status(), body(&res));
    ensure!(body(&res).contains("on E2E Band"), "thank-you text: {}", body(&res));
    let db = t.db()?;
    let (status, enc, version, id): (String, String, String, String) = db
        .query_row("SELECT status, email_enc, consent_version, id FROM fans WHERE email_hash = ?1", [hash_of("form-fan@example.com")], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(|e| format!("fan row: {e}"))?;
    ensure!(status == "subscribed" && version == "v1", "{status} {version}");
    let plain = keys().decrypt(&enc, shared::crypto::fan_email_context("e2e-artist", &id).as_bytes()).map_err(|e| e.to_string())?;
    ensure!(plain == b"Form-Fan@example.com", "decrypted {:?}", String::from_utf8_lossy(&plain));
    let events: i64 = db
        .query_row(
            "SELECT count(*) FROM consent_events e JOIN fans f ON f.id = e.fan_id WHERE f.email_hash = ?1 AND e.kind = 'subscribe' AND e.method = 'single' AND e.page_id = 'e2e-page' AND length(e.consent_hash) = 64",
            [hash_of("form-fan@example.com")],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    ensure!(events == 1, "{events} consent events");
    Ok(())
}

fn json_signup_with_cors(t: &Target) -> Result<(), String> {
    let res = json(t, IPS[1], &signup_json("json-fan@example.com"))?;
    ensure!(res.status() == 200, "status {}: {}", res.status(), body(&res));
    ensure!(body(&res) == r#"{"status":"subscribed"}"#, "body {}", body(&res));
    ensure!(res.headers().get("access-control-allow-origin").is_some_and(|v| v == "*"), "no CORS header");
    let pre = t.send("OPTIONS", "/api/v1/signup", &[("origin", "https://artist.example"), ("access-control-request-method", "POST")], b"")?;
    ensure!(pre.status() == 204, "preflight {}", pre.status());
    ensure!(count(t, "SELECT count(*) FROM fans WHERE email_hash = ?1", Some(&hash_of("json-fan@example.com")))? == 1, "no row");
    Ok(())
}

fn validation_failures(t: &Target) -> Result<(), String> {
    let ip = IPS[2];
    let before = count(t, "SELECT count(*) FROM fans", None)?;
    let big = format!(r#"{{"page":"e2e","email":"a@example.com","consent":true,"pad":"{}"}}"#, "x".repeat(9000));
    let cases: Vec<(&str, &str, &str, u16, Option<&str>)> = vec![
        ("api", "application/json", "{not json", 400, None),
        ("api", "application/json", r#"{"page":"e2e","email":"v@example.com","consent":true,"website":"spam"}"#, 400, Some("website")),
        ("api", "application/json", r#"{"page":"nope","email":"v@example.com","consent":true}"#, 404, Some("page")),
        ("api", "application/json", &big, 413, None),
        ("api", "text/plain", r#"{"page":"e2e"}"#, 415, None),
        ("api", "application/json", r#"{"page":"e2e","email":"not an email","consent":true}"#, 422, Some("email")),
        ("api", "application/json", r#"{"page":"e2e","email":"v@example.com","consent":false}"#, 422, Some("consent")),
        ("form", "application/x-www-form-urlencoded", "email=v%40example.com&consent=yes&website=x", 400, None),
        ("form", "application/x-www-form-urlencoded", "email=v%40example.com", 422, None),
        ("form", "application/x-www-form-urlencoded", "email=bad&consent=yes", 422, None),
        ("form", "multipart/form-data", "x", 415, None),
    ];
    for (path, ct, data, status, field) in cases {
        let res = if path == "api" {
            t.send("POST", "/api/v1/signup", &[("content-type", ct), (t.ip_header(), ip)], data.as_bytes())?
        } else {
            t.send("POST", "/s/e2e", &[("content-type", ct), (t.ip_header(), ip)], data.as_bytes())?
        };
        let text = body(&res);
        ensure!(res.status() == status, "{path} {ct} {:.60}: got {} {text:.300}", data, res.status());
        if path == "api" {
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{status}: not JSON ({e}): {text:.200}"))?;
            ensure!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{status}: no message");
            if let Some(f) = field {
                ensure!(v["error"]["field"] == f, "{status}: field {} != {f}", v["error"]["field"]);
            }
        } else {
            ensure!(text.contains("role=\"alert\""), "{status}: form error not shown");
        }
    }
    let after = count(t, "SELECT count(*) FROM fans", None)?;
    ensure!(after == before, "invalid signups stored rows: {before} -> {after}");
    Ok(())
}

fn duplicate_signup_one_row(t: &Target) -> Result<(), String> {
    for email in ["dupe-fan@example.com", "DUPE-FAN@example.com", "dupe-fan@EXAMPLE.COM"] {
        let res = json(t, IPS[3], &signup_json(email))?;
        ensure!(res.status() == 200, "{email}: {}", res.status());
    }
    let h = hash_of("dupe-fan@example.com");
    ensure!(count(t, "SELECT count(*) FROM fans WHERE email_hash = ?1", Some(&h))? == 1, "more than one row");
    let ev = count(t, "SELECT count(*) FROM consent_events e JOIN fans f ON f.id = e.fan_id WHERE f.email_hash = ?1", Some(&h))?;
    ensure!(ev == 1, "{ev} consent events for an unchanged re-signup");
    Ok(())
}

fn concurrent_duplicates_one_row(t: &Target) -> Result<(), String> {
    const N: usize = 8;
    let barrier = Arc::new(Barrier::new(N));
    let results: Vec<Result<u16, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    barrier.wait();
                    json(t, IPS[4], &signup_json("race-fan@example.com")).map(|r| r.status().as_u16())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into()))).collect()
    });
    for r in &results {
        ensure!(matches!(r, Ok(200)), "concurrent signup answered {r:?}");
    }
    let h = hash_of("race-fan@example.com");
    let rows = count(t, "SELECT count(*) FROM fans WHERE email_hash = ?1", Some(&h))?;
    ensure!(rows == 1, "{rows} rows for {N} concurrent duplicates");
    let ev = count(t, "SELECT count(*) FROM consent_events e JOIN fans f ON f.id = e.fan_id WHERE f.email_hash = ?1", Some(&h))?;
    ensure!(ev == 1, "{ev} consent events for {N} concurrent duplicates");
    Ok(())
}

fn location_recorded(t: &Target) -> Result<(), String> {
    // Workers: location comes from request.cf, set locally by the override
    // header. Spin: from the MaxMind test database by the client address.
    let cf = r#"{"country":"SE","region":"Östergötland County","city":"Linköping","clientAcceptEncoding":""}"#;
    let mut headers = vec![("content-type", "application/json"), (t.ip_header(), "89.160.20.128")];
    if t.kind == Kind::Workers {
        headers.push(("mf-cf-blob", cf));
    }
    let res = t.send("POST", "/api/v1/signup", &headers, signup_json("geo-fan@example.com").as_bytes())?;
    ensure!(res.status() == 200, "status {}: {}", res.status(), body(&res));
    let row: (Option<String>, Option<String>, Option<String>, i64) = t
        .db()?
        .query_row("SELECT country, region, city, eu FROM fans WHERE email_hash = ?1", [hash_of("geo-fan@example.com")], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(|e| e.to_string())?;
    let expected = (Some("SE".to_owned()), Some("Östergötland County".to_owned()), Some("Linköping".to_owned()), 1);
    ensure!(row == expected, "location {row:?}, expected {expected:?}");
    Ok(())
}

fn rate_limit_429(t: &Target) -> Result<(), String> {
    // The configured default: 10 signups per client per 10 minutes.
    let ip = IPS[8];
    for i in 0..10 {
        let res = json(t, ip, &signup_json(&format!("rl-fan-{i}@example.com")))?;
        ensure!(res.status() == 200, "signup {i}: {} {}", res.status(), body(&res));
    }
    let res = json(t, ip, &signup_json("rl-fan-10@example.com"))?;
    ensure!(res.status() == 429, "11th signup: {}", res.status());
    let retry = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok());
    ensure!(retry.is_some_and(|s| (1..=600).contains(&s)), "Retry-After {retry:?}");
    let form_res = form(t, ip, "e2e", "email=rl-fan-10%40example.com&consent=yes")?;
    ensure!(form_res.status() == 429, "form path: {}", form_res.status());
    ensure!(count(t, "SELECT count(*) FROM fans WHERE email_hash = ?1", Some(&hash_of("rl-fan-10@example.com")))? == 0, "limited signup stored");
    // Another client is unaffected.
    ensure!(json(t, IPS[5], &signup_json("rl-fan-other@example.com"))?.status() == 200, "other client limited");
    Ok(())
}

fn no_plaintext_email_or_ip_stored(t: &Target) -> Result<(), String> {
    let mut files = Vec::new();
    collect(&t.state, &mut files);
    ensure!(files.iter().any(|f| f == &t.db_path), "database file not under the state dir");
    for f in &files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            // A WAL or journal file can go away between listing and reading
            // (SQLite removes it when the last connection closes).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", f.display())),
        };
        let lower = bytes.to_ascii_lowercase();
        for needle in SCAN_FOR {
            ensure!(!contains(&lower, needle.as_bytes()), "{} contains {needle:?}", f.display());
        }
    }
    Ok(())
}

/// Every file below `dir`.
pub fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// 50 signups at once from one client against the default limit of 10
/// per 10 minutes: exactly 10 pass, on every runtime.
fn rate_limit_holds_under_parallel_burst(t: &Target) -> Result<(), String> {
    const N: usize = 50;
    let barrier = Arc::new(Barrier::new(N));
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    barrier.wait();
                    json(t, "198.51.100.120", &signup_json(&format!("burst-fan-{i}@example.com"))).map(|r| r.status().as_u16()).unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    ensure!(ok == 10 && limited == N - 10, "{ok} accepted, {limited} limited of {N}: {statuses:?}");
    let mut stored = 0;
    for i in 0..N {
        stored += count(t, "SELECT count(*) FROM fans WHERE email_hash = ?1", Some(&hash_of(&format!("burst-fan-{i}@example.com"))))?;
    }
    ensure!(stored == 10, "{stored} fans stored for 10 accepted signups");
    Ok(())
}

/// The adapters refuse a body over 8 KB before any function runs: a form
/// post gets a page a person can read, an API client JSON.
fn oversized_bodies_413(t: &Target) -> Result<(), String> {
    let big = format!("email=big-fan%40example.com&consent=yes&website={}", "x".repeat(9000));
    let res = form(t, "198.51.100.121", "e2e", &big)?;
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    ensure!(res.status() == 413 && ct.starts_with("text/html") && body(&res).contains("larger than 8 KB"), "form: {} {ct} {}", res.status(), body(&res));
    let res = json(t, "198.51.100.121", &format!(r#"{{"page":"e2e","email":"big-fan@example.com","consent":true,"pad":"{}"}}"#, "x".repeat(9000)))?;
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    ensure!(res.status() == 413 && ct.starts_with("application/json"), "json: {} {ct}", res.status());
    ensure!(count(t, "SELECT count(*) FROM fans WHERE email_hash = ?1", Some(&hash_of("big-fan@example.com")))? == 0, "stored");
    Ok(())
}
