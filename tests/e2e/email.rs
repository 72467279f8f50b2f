//! Cases for what reaches fans by email: double opt-in confirmation (the
//! stand-in provider records the mail) and one-click unsubscribe.

use std::time::{Duration, Instant};

use shared::adapters::native::recorder::Recorded;
use shared::token::{Purpose, TokenKeys};

use crate::cases::{body, count, json, keys, Case};
use crate::ensure;
use crate::runtime::{Target, PUBLIC_BASE, TOKEN_KEY_NEW, TOKEN_KEY_OLD};

pub const ALL: &[(&str, Case)] = &[
    ("doi_pending_then_confirmed", doi_pending_then_confirmed),
    ("doi_mail_capped_per_address", doi_mail_capped_per_address),
    ("doi_expired_link_explains", doi_expired_link_explains),
    ("unsubscribe_get_changes_nothing", unsubscribe_get_changes_nothing),
    ("unsubscribe_one_click_idempotent", unsubscribe_one_click_idempotent),
    ("unsubscribe_bad_tokens_400", unsubscribe_bad_tokens_400),
    ("unsubscribe_old_key_after_rotation", unsubscribe_old_key_after_rotation),
    ("unsubscribe_erased_fan_200", unsubscribe_erased_fan_200),
    ("resubscribe_keeps_history", resubscribe_keeps_history),
    ("doi_signup_takes_the_same_time_for_new_and_known", doi_same_time_new_and_known),
];

fn doi_json(email: &str) -> String {
    format!(r#"{{"page":"e2e-doi","email":"{email}","consent":true}}"#)
}

/// Mails the provider received for `to`, waiting briefly for the first.
fn mails_to(t: &Target, to: &str, at_least: usize) -> Vec<(Recorded, serde_json::Value)> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let found: Vec<_> = t
            .mail
            .requests()
            .into_iter()
            .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok().map(|v| (r, v)))
            .filter(|(_, v)| v["to"][0] == to)
            .collect();
        if found.len() >= at_least || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Signs up `email` on the single opt-in page and returns the fan id.
fn subscribed_fan(t: &Target, ip: &str, email: &str) -> Result<String, String> {
    let res = json(t, ip, &format!(r#"{{"page":"e2e","email":"{email}","consent":true}}"#))?;
    ensure!(res.status() == 200, "signup {email}: {}", res.status());
    fan_id(t, email)
}

fn fan_id(t: &Target, email: &str) -> Result<String, String> {
    let hash = keys().blind_index("e2e-artist", &email.to_ascii_lowercase());
    t.db()?.query_row("SELECT id FROM fans WHERE email_hash = ?1", [hash], |r| r.get(0)).map_err(|e| format!("fan {email}: {e}"))
}

fn fan_status(t: &Target, fan: &str) -> Result<String, String> {
    t.db()?.query_row("SELECT status FROM fans WHERE id = ?1", [fan], |r| r.get(0)).map_err(|e| e.to_string())
}

fn token(key: &str, purpose: Purpose, expires: u32, fan: &str) -> String {
    TokenKeys::parse(key).expect("suite token key").sign(purpose, expires, fan, "e2e-artist").expect("sign")
}

fn one_click(t: &Target, token: &str) -> Result<crate::cases::Res, String> {
    t.send("POST", &format!("/u/{token}"), &[("content-type", "application/x-www-form-urlencoded")], b"List-Unsubscribe=One-Click")
}

fn events(t: &Target, fan: &str, kind: &str) -> Result<i64, String> {
    t.db()?.query_row("SELECT count(*) FROM consent_events WHERE fan_id = ?1 AND kind = ?2", [fan, kind], |r| r.get(0)).map_err(|e| e.to_string())
}

fn doi_pending_then_confirmed(t: &Target) -> Result<(), String> {
    let email = "doi-fan@example.com";
    let res = json(t, "198.51.100.20", &doi_json(email))?;
    ensure!(res.status() == 200 && body(&res) == r#"{"status":"pending"}"#, "{} {}", res.status(), body(&res));
    let fan = fan_id(t, email)?;
    ensure!(fan_status(t, &fan)? == "pending", "not pending");
    let mails = mails_to(t, email, 1);
    ensure!(mails.len() == 1, "{} confirmation mails", mails.len());
    let (req, mail) = &mails[0];
    ensure!(req.path == "/emails" && req.header("authorization") == Some("Bearer re_e2e_key"), "provider call {} {:?}", req.path, req.header("authorization"));
    let lu = mail["headers"]["List-Unsubscribe"].as_str().unwrap_or("");
    ensure!(lu.starts_with(&format!("<{PUBLIC_BASE}/u/t2.")) && lu.ends_with('>'), "List-Unsubscribe {lu}");
    ensure!(mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", "List-Unsubscribe-Post {}", mail["headers"]);
    let text = mail["text"].as_str().unwrap_or("");
    let prefix = format!("{PUBLIC_BASE}/s/e2e-doi/confirm?t=");
    let link = text.split_whitespace().find(|w| w.starts_with(&prefix)).ok_or("no confirm link in the mail")?;
    let path = link.trim_start_matches(PUBLIC_BASE);
    let get = t.send("GET", path, &[], b"")?;
    ensure!(get.status() == 200 && body(&get).contains("<form method=\"post\">"), "GET confirm: {}", get.status());
    ensure!(fan_status(t, &fan)? == "pending", "GET must not confirm");
    let post = t.send("POST", path, &[("content-type", "application/x-www-form-urlencoded")], b"")?;
    ensure!(post.status() == 200 && post.headers().get("location").is_none(), "POST confirm: {}", post.status());
    ensure!(fan_status(t, &fan)? == "subscribed", "not subscribed after confirm");
    let confirmed: Option<i64> = t.db()?.query_row("SELECT confirmed_at FROM fans WHERE id = ?1", [&fan], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(confirmed.is_some(), "confirmed_at not recorded");
    ensure!(events(t, &fan, "confirm")? == 1 && events(t, &fan, "request")? == 1, "events");
    // The unsubscribe link in that mail works too.
    let unsub = lu.trim_start_matches('<').trim_end_matches('>').trim_start_matches(PUBLIC_BASE);
    let res = t.send("POST", unsub, &[("content-type", "application/x-www-form-urlencoded")], b"List-Unsubscribe=One-Click")?;
    ensure!(res.status() == 200 && fan_status(t, &fan)? == "unsubscribed", "mail's unsubscribe link: {}", res.status());
    Ok(())
}

fn doi_mail_capped_per_address(t: &Target) -> Result<(), String> {
    let email = "cap-fan@example.com";
    for _ in 0..3 {
        let res = json(t, "198.51.100.21", &doi_json(email))?;
        ensure!(res.status() == 200, "signup: {}", res.status());
    }
    std::thread::sleep(Duration::from_millis(300));
    let n = mails_to(t, email, 1).len();
    ensure!(n == 1, "{n} mails for 3 signups within 10 minutes");
    Ok(())
}

fn doi_expired_link_explains(t: &Target) -> Result<(), String> {
    let email = "late-fan@example.com";
    json(t, "198.51.100.22", &doi_json(email))?;
    let fan = fan_id(t, email)?;
    let expired = token(TOKEN_KEY_NEW, Purpose::Confirm, 1_000_000_000, &fan);
    let res = t.send("GET", &format!("/s/e2e-doi/confirm?t={expired}"), &[], b"")?;
    ensure!(res.status() == 410 && body(&res).contains("expired"), "expired link: {} {:.200}", res.status(), body(&res));
    let res = t.send("POST", &format!("/s/e2e-doi/confirm?t={expired}"), &[], b"")?;
    ensure!(res.status() == 410 && fan_status(t, &fan)? == "pending", "expired POST: {}", res.status());
    Ok(())
}

fn unsubscribe_get_changes_nothing(t: &Target) -> Result<(), String> {
    let fan = subscribed_fan(t, "198.51.100.23", "look-fan@example.com")?;
    let tok = token(TOKEN_KEY_NEW, Purpose::Unsubscribe, 0, &fan);
    let res = t.send("GET", &format!("/u/{tok}"), &[], b"")?;
    ensure!(res.status() == 200, "GET: {}", res.status());
    ensure!(body(&res).contains("E2E Band") && body(&res).contains("<form method=\"post\">"), "page: {:.300}", body(&res));
    ensure!(fan_status(t, &fan)? == "subscribed" && events(t, &fan, "unsubscribe")? == 0, "GET changed state");
    Ok(())
}

fn unsubscribe_one_click_idempotent(t: &Target) -> Result<(), String> {
    let fan = subscribed_fan(t, "198.51.100.24", "leave-fan@example.com")?;
    let tok = token(TOKEN_KEY_NEW, Purpose::Unsubscribe, 0, &fan);
    for round in 0..2 {
        let res = one_click(t, &tok)?;
        ensure!(res.status() == 200 && res.headers().get("location").is_none(), "round {round}: {}", res.status());
    }
    ensure!(fan_status(t, &fan)? == "unsubscribed", "not unsubscribed");
    ensure!(events(t, &fan, "unsubscribe")? == 1, "repeat POST recorded again");
    let method: String =
        t.db()?.query_row("SELECT method FROM consent_events WHERE fan_id = ?1 AND kind = 'unsubscribe'", [&fan], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(method == "one-click", "method {method}");
    Ok(())
}

fn unsubscribe_bad_tokens_400(t: &Target) -> Result<(), String> {
    let fan = subscribed_fan(t, "198.51.100.25", "stay-fan@example.com")?;
    let good = token(TOKEN_KEY_NEW, Purpose::Unsubscribe, 0, &fan);
    let last = if good.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &good[..good.len() - 1]);
    let truncated = good[..good.len() - 6].to_owned();
    let wrong_key = token("t2:YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=", Purpose::Unsubscribe, 0, &fan);
    for bad in [tampered, truncated, wrong_key] {
        let res = one_click(t, &bad)?;
        ensure!(res.status() == 400 && body(&res).contains("incomplete or damaged"), "{bad}: {}", res.status());
    }
    ensure!(fan_status(t, &fan)? == "subscribed", "a bad token changed state");
    Ok(())
}

fn unsubscribe_old_key_after_rotation(t: &Target) -> Result<(), String> {
    let fan = subscribed_fan(t, "198.51.100.26", "old-link-fan@example.com")?;
    let old = token(TOKEN_KEY_OLD, Purpose::Unsubscribe, 0, &fan);
    let res = one_click(t, &old)?;
    ensure!(res.status() == 200 && fan_status(t, &fan)? == "unsubscribed", "old-key link: {}", res.status());
    Ok(())
}

fn unsubscribe_erased_fan_200(t: &Target) -> Result<(), String> {
    let fan = subscribed_fan(t, "198.51.100.27", "erased-fan@example.com")?;
    let tok = token(TOKEN_KEY_NEW, Purpose::Unsubscribe, 0, &fan);
    // What the erasure job does: the fan row goes, with its events.
    t.db_rw()?.execute("DELETE FROM fans WHERE id = ?1", [&fan]).map_err(|e| e.to_string())?;
    for method in ["GET", "POST"] {
        let res = t.send(method, &format!("/u/{tok}"), &[("content-type", "application/x-www-form-urlencoded")], b"List-Unsubscribe=One-Click")?;
        ensure!(res.status() == 200 && body(&res).contains("no longer on"), "{method}: {} {:.200}", res.status(), body(&res));
    }
    Ok(())
}

fn resubscribe_keeps_history(t: &Target) -> Result<(), String> {
    let email = "comeback-fan@example.com";
    let fan = subscribed_fan(t, "198.51.100.28", email)?;
    one_click(t, &token(TOKEN_KEY_NEW, Purpose::Unsubscribe, 0, &fan))?;
    // Coming back on a single opt-in page goes through double opt-in:
    // anyone could have typed the address.
    subscribed_fan(t, "198.51.100.28", email)?;
    ensure!(fan_status(t, &fan)? == "pending", "a comeback must confirm first, not be {}", fan_status(t, &fan)?);
    let mails = mails_to(t, email, 1);
    let text = mails.last().and_then(|(_, v)| v["text"].as_str().map(str::to_owned)).ok_or("no confirmation mail for the comeback")?;
    let prefix = format!("{PUBLIC_BASE}/s/e2e/confirm?t=");
    let link = text.split_whitespace().find(|w| w.starts_with(&prefix)).ok_or("no confirm link in the mail")?;
    let post = t.send("POST", link.trim_start_matches(PUBLIC_BASE), &[("content-type", "application/x-www-form-urlencoded")], b"")?;
    ensure!(post.status() == 200 && fan_status(t, &fan)? == "subscribed", "confirming the comeback: {}", post.status());
    let n = count(
        t,
        "SELECT count(*) FROM consent_events WHERE fan_id = (SELECT id FROM fans WHERE email_hash = ?1)",
        Some(&keys().blind_index("e2e-artist", email)),
    )?;
    ensure!(n == 4, "{n} events; expected subscribe, unsubscribe, request, confirm");
    Ok(())
}

/// With a provider that takes 400 ms to answer, a new address (a mail is
/// sent) and one already on the list (none is) still answer alike: the
/// mail leaves after the response, so timing can't tell who signed up.
fn doi_same_time_new_and_known(t: &Target) -> Result<(), String> {
    const DELAY_MS: u64 = 400;
    let known = "doi-known-fan@example.com";
    let res = json(t, "198.51.100.130", &doi_json(known))?;
    ensure!(res.status() == 200, "first signup: {}", res.status());
    mails_to(t, known, 1);
    t.mail.respond_after(DELAY_MS);
    let timed = |ip: &str, email: &str| -> Result<Duration, String> {
        let start = Instant::now();
        let res = json(t, ip, &doi_json(email))?;
        ensure!(res.status() == 200 && body(&res) == r#"{"status":"pending"}"#, "{email}: {} {}", res.status(), body(&res));
        Ok(start.elapsed())
    };
    let mut new = Vec::new();
    let mut old = Vec::new();
    for i in 0..3 {
        new.push(timed(&format!("198.51.100.{}", 131 + i), &format!("doi-new-fan-{i}@example.com"))?);
        old.push(timed("198.51.100.130", known)?);
    }
    t.mail.respond_after(0);
    for i in 0..3 {
        ensure!(!mails_to(t, &format!("doi-new-fan-{i}@example.com"), 1).is_empty(), "no confirmation mail for new fan {i}");
    }
    new.sort();
    old.sort();
    let (n, o) = (new[1], old[1]);
    ensure!(n < Duration::from_millis(DELAY_MS), "a new address waited for the provider: {n:?} (provider {DELAY_MS} ms)");
    ensure!(n < o + Duration::from_millis(150), "new {n:?} vs known {o:?}");
    Ok(())
}
