//! Fans' own privacy requests on each runtime (`/privacy/{artist}`): the
//! notice and the capture page's link to it, the same answer for an
//! unknown address, and the whole way from the request form through the
//! mailed link to a download and to an erasure. Clients 198.51.100.180–199
//! are this module's (per-client limits would couple cases otherwise).

use std::time::{Duration, Instant};

use crate::cases::{body, keys, Case, Res};
use crate::dashboard::{fan_id, signup};
use crate::ensure;
use crate::runtime::{Kind, Target};

pub const ALL: &[(&str, Case)] = &[
    ("privacy_notice_linked_from_the_capture_page_with_the_age_notice", notice_and_capture_page),
    ("privacy_request_same_answer_for_an_unknown_address", same_answer),
    ("privacy_request_mail_download", download),
    ("privacy_request_mail_erasure_leaves_no_trace", erasure),
    ("privacy_bad_input_answers_clearly_and_changes_nothing", bad_input),
];

const ARTIST: &str = "e2e-artist";
const OTHER: &str = "e2e-other-artist";

fn ip(n: u8) -> String {
    format!("198.51.100.{n}")
}

fn ask(t: &Target, client: &str, artist: &str, email: &str, kind: &str) -> Result<Res, String> {
    let form = format!("email={}&kind={kind}", email.replace('@', "%40"));
    t.send("POST", &format!("/privacy/{artist}"), &[("content-type", "application/x-www-form-urlencoded"), (t.ip_header(), client)], form.as_bytes())
}

fn confirm(t: &Target, client: &str, artist: &str, token: &str) -> Result<Res, String> {
    t.send(
        "POST",
        &format!("/privacy/{artist}/confirm"),
        &[("content-type", "application/x-www-form-urlencoded"), (t.ip_header(), client)],
        format!("t={token}").as_bytes(),
    )
}

/// The privacy links mailed to `to`, as paths, waiting up to 5 s for the
/// `n`th (mail leaves after the response).
fn links_to(t: &Target, to: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let links: Vec<String> = t
            .mail
            .requests()
            .iter()
            .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
            .filter(|v| v["to"][0] == to)
            .filter_map(|v| v["text"].as_str().and_then(|s| s.split_whitespace().find(|w| w.contains("/confirm?t=")).map(str::to_owned)))
            .filter_map(|l| l.find("/privacy/").map(|i| l[i..].to_owned()))
            .collect();
        if links.len() >= n || Instant::now() > deadline {
            return links;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn token_of(link: &str) -> &str {
    link.split("t=").nth(1).unwrap_or("")
}

fn notice_and_capture_page(t: &Target) -> Result<(), String> {
    let res = t.send("GET", "/s/e2e", &[(t.ip_header(), &ip(180))], b"")?;
    let page = body(&res);
    ensure!(res.status() == 200, "capture page: {}", res.status());
    ensure!(page.contains(&format!("href=\"/privacy/{ARTIST}\"")), "no link to the privacy page: {page}");
    ensure!(page.contains("Not for children under 16."), "no age notice: {page}");
    ensure!(!page.contains("<script"), "script on the capture page");
    let res = t.send("GET", &format!("/privacy/{ARTIST}"), &[(t.ip_header(), &ip(180))], b"")?;
    let page = body(&res);
    ensure!(res.status() == 200, "privacy page: {} {page}", res.status());
    let csp = res.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
    ensure!(csp.contains("default-src 'none'") && !csp.contains("script"), "CSP: {csp}");
    for said in [
        "E2E Band",
        "Not for children under 16.",
        "30 days, then it is deleted",
        "mail sent to you: 90 days",
        "links: 12 months",
        "after 30 minutes",
        "name=\"email\"",
    ] {
        ensure!(page.contains(said), "the privacy page lacks {said:?}");
    }
    // The page's stylesheet is served on this route too.
    let css = page.split("rel=\"stylesheet\" href=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("");
    ensure!(t.send("GET", css, &[], b"")?.status() == 200, "stylesheet {css}");
    ensure!(t.send("GET", "/privacy/no-such-artist", &[], b"")?.status() == 404, "unknown artist");
    Ok(())
}

fn same_answer(t: &Target) -> Result<(), String> {
    const DELAY_MS: u64 = 400;
    let known = "privacy-known-fan@example.com";
    let unknown = "privacy-unknown@example.com";
    signup(t, &ip(181), "e2e", known)?;
    t.mail.respond_after(DELAY_MS);
    let timed = |client: &str, email: &str| -> Result<(Res, Duration), String> {
        let start = Instant::now();
        let res = ask(t, client, ARTIST, email, "access")?;
        Ok((res, start.elapsed()))
    };
    let (k, k_took) = timed(&ip(182), known)?;
    let (u, u_took) = timed(&ip(183), unknown)?;
    t.mail.respond_after(0);
    ensure!(k.status() == 200 && u.status() == 200, "statuses {} {}", k.status(), u.status());
    ensure!(body(&k).replace(known, "X") == body(&u).replace(unknown, "X"), "the answers differ:\n{}\n{}", body(&k), body(&u));
    ensure!(k_took < Duration::from_millis(DELAY_MS), "the known address waited for the provider: {k_took:?}");
    eprintln!("[{:?}] privacy request: known {k_took:?}, unknown {u_took:?}", t.kind);
    ensure!(links_to(t, known, 1).len() == 1, "no mail for the fan");
    std::thread::sleep(Duration::from_millis(500));
    let to_unknown = t.mail.requests().iter().filter(|r| String::from_utf8_lossy(&r.body).contains(unknown)).count();
    ensure!(to_unknown == 0, "{to_unknown} mails to an address on no list");
    Ok(())
}

fn download(t: &Target) -> Result<(), String> {
    let email = "privacy-access-fan@example.com";
    let cf = r#"{"country":"SE","region":"Östergötland County","city":"Linköping","clientAcceptEncoding":""}"#;
    let mut headers = vec![("content-type", "application/json"), (t.ip_header(), "198.51.100.184")];
    if t.kind == Kind::Workers {
        headers.push(("mf-cf-blob", cf));
    }
    let res = t.send("POST", "/api/v1/signup", &headers, format!(r#"{{"page":"e2e","email":"{email}","consent":true}}"#).as_bytes())?;
    ensure!(res.status() == 200, "signup: {} {}", res.status(), body(&res));
    let id = fan_id(t, ARTIST, email)?;
    ensure!(ask(t, &ip(185), ARTIST, email, "access")?.status() == 200, "request");
    let link = links_to(t, email, 1).pop().ok_or("no privacy mail")?;
    ensure!(link.starts_with(&format!("/privacy/{ARTIST}/confirm?t=")), "link {link}");
    let page = t.send("GET", &link, &[(t.ip_header(), &ip(185))], b"")?;
    ensure!(page.status() == 200 && body(&page).contains("Download my data"), "link page: {} {}", page.status(), body(&page));
    let token = token_of(&link);
    ensure!(confirm(t, &ip(185), OTHER, token)?.status() == 410, "another artist's page took the link");
    let res = confirm(t, &ip(185), ARTIST, token)?;
    let disposition = res.headers().get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    ensure!(res.status() == 200 && disposition.starts_with(&format!("attachment; filename=\"fan-{id}-")), "download: {} {disposition}", res.status());
    let doc: serde_json::Value = serde_json::from_str(&body(&res)).map_err(|e| format!("{e}: {}", body(&res)))?;
    let fan = &doc["fan"];
    let text = "Email me news from E2E Band.";
    let (method, at): (String, i64) =
        t.db()?.query_row("SELECT method, at FROM consent_events WHERE fan_id = ?1", [&id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| e.to_string())?;
    let location = match t.kind {
        Kind::Workers => serde_json::json!({ "country": "SE", "region": "Östergötland County", "city": "Linköping", "eu": true }),
        // The test IP database knows nothing of 198.51.100.0/24.
        Kind::Spin => serde_json::json!({ "country": null, "region": null, "city": null, "eu": false }),
    };
    let checks: Vec<(&str, &serde_json::Value, serde_json::Value)> = vec![
        ("format", &doc["format"], "stagedoor.fan-export/1".into()),
        ("controller", &doc["controller"], serde_json::json!({ "artist_id": ARTIST, "artist_name": "E2E Band" })),
        ("id", &fan["id"], id.clone().into()),
        ("email", &fan["email"], email.into()),
        ("status", &fan["status"], "subscribed".into()),
        ("restricted_since", &fan["restricted_since"], serde_json::Value::Null),
        ("location", &fan["location"], location),
        ("source_page", &fan["source_page"], serde_json::json!({ "slug": "e2e", "title": "E2E list" })),
        ("consent_version", &fan["consent_version"], "v1".into()),
        ("history kind", &doc["consent_history"][0]["kind"], "subscribe".into()),
        ("history method", &doc["consent_history"][0]["method"], method.into()),
        ("history hash", &doc["consent_history"][0]["consent_hash"], shared::crypto::sha256_hex(text.as_bytes()).into()),
        ("history text", &doc["consent_history"][0]["consent_text"], text.into()),
    ];
    for (what, got, want) in checks {
        ensure!(*got == want, "{what}: {got} (expected {want})");
    }
    let iso = |ms: i64| -> String {
        let secs = ms / 1000;
        let (y, m, d) = shared::date::civil_from_days(secs / 86_400);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs % 86_400 / 3600, secs % 3600 / 60, secs % 60)
    };
    ensure!(doc["consent_history"][0]["at"] == iso(at).as_str(), "history at: {} vs {}", doc["consent_history"][0]["at"], iso(at));
    ensure!(fan["created_at"].as_str().is_some_and(|s| s.len() == 20 && s.ends_with('Z')), "created_at: {}", fan["created_at"]);
    ensure!(doc["not_held"].as_array().is_some_and(|a| a.len() == 2), "not_held: {}", doc["not_held"]);
    // Once only.
    ensure!(confirm(t, &ip(185), ARTIST, token)?.status() == 410, "the link worked twice");
    ensure!(t.send("GET", &link, &[], b"")?.status() == 410, "a spent link still offers its button");
    ensure!(confirm(t, &ip(185), ARTIST, "not-a-token")?.status() == 400, "a malformed token");
    Ok(())
}

fn erasure(t: &Target) -> Result<(), String> {
    let email = "privacy-erase-fan@example.com";
    // On a double opt-in page (a mail in the log), and on the other
    // artist's list with the same address.
    signup(t, &ip(186), "e2e-doi", email)?;
    ensure!(links_to(t, email, 0).is_empty(), "a privacy link before any request");
    signup(t, &ip(187), "e2e-other", email)?;
    let (id, other) = (fan_id(t, ARTIST, email)?, fan_id(t, OTHER, email)?);
    let snapshot = |t: &Target, id: &str| -> Result<(String, String, String, i64), String> {
        t.db()?
            .query_row("SELECT email_enc, email_hash, status, (SELECT count(*) FROM consent_events WHERE fan_id = ?1) FROM fans WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(|e| format!("fan {id}: {e}"))
    };
    let (enc, hash, _, _) = snapshot(t, &id)?;
    let theirs = snapshot(t, &other)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.db()?.query_row("SELECT count(*) FROM mail_log WHERE fan_id = ?1", [&id], |r| r.get::<_, i64>(0)).map_err(|e| e.to_string())? == 0 {
        ensure!(Instant::now() < deadline, "no confirmation mail logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    let erasures = |t: &Target| -> Result<i64, String> {
        t.db()?
            .query_row("SELECT count(*) FROM erasures WHERE artist_id = ?1 AND method = 'fan' AND by_user = 'fan'", [ARTIST], |r| r.get(0))
            .map_err(|e| e.to_string())
    };
    let before = erasures(t)?;

    ensure!(ask(t, &ip(188), ARTIST, email, "erase")?.status() == 200, "request");
    let link = links_to(t, email, 1).pop().ok_or("no privacy mail")?;
    let page = t.send("GET", &link, &[(t.ip_header(), &ip(188))], b"")?;
    ensure!(page.status() == 200 && body(&page).contains("Erase my data"), "link page: {} {}", page.status(), body(&page));
    ensure!(snapshot(t, &id)?.0 == enc, "opening the link changed something");
    let res = confirm(t, &ip(188), ARTIST, token_of(&link))?;
    ensure!(res.status() == 200 && body(&res).contains("Erased"), "erase: {} {}", res.status(), body(&res));
    let db = t.db()?;
    for q in [
        "fans WHERE id",
        "consent_events WHERE fan_id",
        "mail_log WHERE fan_id",
        "fan_restrictions WHERE fan_id",
        "mail_events WHERE fan_id",
        "webhook_messages WHERE fan_id",
        "privacy_requests WHERE fan_id",
    ] {
        let n: i64 = db.query_row(&format!("SELECT count(*) FROM {q} = ?1"), [&id], |r| r.get(0)).map_err(|e| format!("{q}: {e}"))?;
        ensure!(n == 0, "{q} = the erased fan: {n} rows");
    }
    for (what, needle) in [("ciphertext", &enc), ("blind index", &hash)] {
        let n: i64 = db.query_row("SELECT count(*) FROM fans WHERE email_enc = ?1 OR email_hash = ?1", [needle], |r| r.get(0)).map_err(|e| e.to_string())?;
        ensure!(n == 0, "a fan row still holds the {what}");
    }
    drop(db);
    ensure!(erasures(t)? == before + 1, "no erasure recorded as the fan's");
    ensure!(snapshot(t, &other)? == theirs, "the other artist's fan with the same address changed");
    ensure!(confirm(t, &ip(188), ARTIST, token_of(&link))?.status() == 410, "the link worked twice");
    ensure!(keys().blind_index(ARTIST, email) == hash, "the suite's index differs from the runtime's");

    // The runtime's files: as in dashboard.rs rights_erasure (Spin zeroes
    // freed bytes; local D1 refuses `secure_delete`, so there it is
    // reported, not failed; README "Fan rights").
    crate::dashboard::no_trace_in_files(t, &enc, &hash)
}

/// What a bad request is, where it goes, and the status it must get:
/// (label, method, path, content type, body, status).
type Bad<'a> = (&'a str, &'a str, String, Option<&'a str>, Vec<u8>, u16);

/// Hostile and malformed requests: each gets a 4xx page with a message
/// (never a 500, never internals), and none writes a request or counts
/// against a limit.
fn bad_input(t: &Target) -> Result<(), String> {
    let client = ip(189);
    let page = format!("/privacy/{ARTIST}");
    let confirm_path = format!("{page}/confirm");
    let long_id = "a".repeat(3000);
    let shaped = "A".repeat(43);
    let big = format!("email=x%40example.com&kind=access&pad={}", "x".repeat(20 * 1024));
    let cases: Vec<Bad<'_>> = vec![
        ("no content type", "POST", page.clone(), None, b"email=x%40example.com&kind=access".to_vec(), 415),
        ("text/plain", "POST", page.clone(), Some("text/plain"), b"email=x%40example.com&kind=access".to_vec(), 415),
        ("broken escape", "POST", page.clone(), Some(FORM), b"email=%zz&kind=access".to_vec(), 400),
        ("not UTF-8", "POST", page.clone(), Some(FORM), b"email=\xff\xfe&kind=access".to_vec(), 400),
        ("empty", "POST", page.clone(), Some(FORM), Vec::new(), 422),
        ("no address", "POST", page.clone(), Some(FORM), b"kind=erase".to_vec(), 422),
        ("bad address", "POST", page.clone(), Some(FORM), b"email=not-an-address&kind=access".to_vec(), 422),
        ("bad kind", "POST", page.clone(), Some(FORM), b"email=x%40example.com&kind=everything".to_vec(), 422),
        ("markup in the address", "POST", page.clone(), Some(FORM), b"email=%3Cscript%3E%40example.com&kind=access".to_vec(), 422),
        ("too large", "POST", page.clone(), Some(FORM), big.into_bytes(), 413),
        ("confirm without a token", "POST", confirm_path.clone(), Some(FORM), Vec::new(), 400),
        ("confirm with a damaged token", "POST", confirm_path.clone(), Some(FORM), b"t=abc%00def".to_vec(), 400),
        ("confirm with an unknown token", "POST", confirm_path.clone(), Some(FORM), format!("t={shaped}").into_bytes(), 410),
        ("link without a token", "GET", confirm_path.clone(), None, Vec::new(), 400),
        ("link with a broken escape", "GET", format!("{confirm_path}?t=%zz"), None, Vec::new(), 400),
        ("link with an unknown token", "GET", format!("{confirm_path}?t={shaped}"), None, Vec::new(), 410),
        ("link with a long token", "GET", format!("{confirm_path}?t={}", "b".repeat(2000)), None, Vec::new(), 400),
        ("unknown artist", "GET", "/privacy/no-such-artist".to_owned(), None, Vec::new(), 404),
        ("long artist id", "GET", format!("/privacy/{long_id}"), None, Vec::new(), 404),
        ("broken escape in the artist", "GET", "/privacy/%zz".to_owned(), None, Vec::new(), 404),
        ("extra segment", "GET", format!("{confirm_path}/more"), None, Vec::new(), 404),
        ("no artist", "GET", "/privacy/".to_owned(), None, Vec::new(), 404),
        ("PUT", "PUT", page.clone(), Some(FORM), b"email=x%40example.com&kind=access".to_vec(), 405),
        ("DELETE on the link", "DELETE", confirm_path.clone(), None, Vec::new(), 405),
    ];
    let state = |t: &Target| -> Result<(i64, i64), String> {
        let db = t.db()?;
        let requests = db.query_row("SELECT count(*) FROM privacy_requests", [], |r| r.get(0)).map_err(|e| e.to_string())?;
        let counted =
            db.query_row("SELECT coalesce(sum(count), 0) FROM rate_windows WHERE key LIKE 'privacy%'", [], |r| r.get(0)).map_err(|e| e.to_string())?;
        Ok((requests, counted))
    };
    let before = state(t)?;
    for (what, method, path, ctype, body_bytes, want) in cases {
        let mut headers = vec![(t.ip_header(), client.as_str())];
        if let Some(ct) = ctype {
            headers.push(("content-type", ct));
        }
        let res = t.send(method, &path, &headers, &body_bytes)?;
        let text = body(&res);
        ensure!(res.status() == want, "{what}: {} (expected {want}): {}", res.status(), &text[..text.len().min(300)]);
        let lower = text.to_ascii_lowercase();
        ensure!(!text.trim().is_empty() && !["panicked", "sqlite", "from fans", "/src/"].iter().any(|w| lower.contains(w)), "{what}: {text}");
    }
    // A form from another site, with a valid address: refused before it counts.
    let res =
        t.send("POST", &page, &[(t.ip_header(), &client), ("content-type", FORM), ("sec-fetch-site", "cross-site")], b"email=x%40example.com&kind=access")?;
    ensure!(res.status() == 403, "cross-site form: {}", res.status());
    ensure!(state(t)? == before, "bad input wrote a request or counted a limit: {:?} → {:?}", before, state(t)?);
    Ok(())
}

const FORM: &str = "application/x-www-form-urlencoded";
