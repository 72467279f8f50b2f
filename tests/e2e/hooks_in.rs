//! Cases for inbound webhooks (`POST /hooks/email/{provider}`): every
//! refusal, and Resend-shaped bounces and complaints changing fans made
//! through the real signup, down to the fan's way back (double opt-in).
//!
//! Requests are signed here the way the Standard Webhooks reference
//! libraries sign them, with this file's own HMAC-SHA256 and base64 (proven
//! on the specification's published example first), not with the code
//! under test.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cases::{body, json, keys, Case, Res};
use crate::ensure;
use crate::runtime::{Target, HOOK_SECRET_NEW, HOOK_SECRET_OLD};

pub const ALL: &[(&str, Case)] = &[
    ("hooks_in_refusals_and_limits", refusals),
    ("hooks_in_bounce_replay_resignup_complaint", bounce_then_back_through_double_opt_in),
    ("hooks_in_soft_bounces_suppress_at_the_limit", soft_bounces),
    ("hooks_in_concurrent_deliveries_apply_once", concurrent_deliveries),
];

pub(crate) const PATH: &str = "/hooks/email/resend";
const ARTIST: &str = "e2e-artist";

// --- Signing, per the Standard Webhooks specification -----------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = B64.iter().position(|&x| x == c).expect("base64") as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

fn sha256(data: &[u8]) -> Vec<u8> {
    let hex = shared::crypto::sha256_hex(data);
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
}

/// RFC 2104 over SHA-256 (64-byte blocks).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = if key.len() > 64 { sha256(key) } else { key.to_vec() };
    k.resize(64, 0);
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).chain(msg.iter().copied()).collect();
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(sha256(&inner)).collect();
    sha256(&outer)
}

/// `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")).
pub(crate) fn sign(secret: &str, id: &str, ts: i64, body: &str) -> String {
    let key = b64_decode(secret.strip_prefix("whsec_").unwrap_or(secret));
    format!("v1,{}", b64_encode(&hmac_sha256(&key, format!("{id}.{ts}.{body}").as_bytes())))
}

fn signing_matches_the_specification() -> Result<(), String> {
    let got = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, r#"{"test": 2432232314}"#);
    ensure!(got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "the test's own signer is wrong: {got}");
    Ok(())
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A fresh message id per call: cases run again on the second runtime and
/// in reruns against the same state.
fn msg_id(what: &str) -> String {
    let n = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("msg_{what}_{n}")
}

#[derive(Clone, Copy)]
enum Names {
    /// `svix-*`, as Resend sends.
    Svix,
    /// `webhook-*`, as the specification names them.
    Standard,
}

fn post(t: &Target, names: Names, secret: &str, id: &str, ts: i64, body: &str) -> Result<Res, String> {
    let sig = sign(secret, id, ts, body);
    let ts = ts.to_string();
    let p = match names {
        Names::Svix => "svix",
        Names::Standard => "webhook",
    };
    let (hid, hts, hsig) = (format!("{p}-id"), format!("{p}-timestamp"), format!("{p}-signature"));
    t.send("POST", PATH, &[("content-type", "application/json"), (&hid, id), (&hts, &ts), (&hsig, &sig)], body.as_bytes())
}

/// A Resend-shaped event; `tags` as given (an object or a list).
pub(crate) fn resend_event(ty: &str, to: &str, bounce_type: &str, tags: serde_json::Value, pad: usize) -> String {
    serde_json::json!({
        "type": ty,
        "created_at": "2026-01-01T00:00:00.000Z",
        "data": {
            "created_at": "2026-01-01T00:00:00.000Z",
            "email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
            "from": "E2E Band <news@e2e.example>",
            "to": [to],
            "subject": "Confirm your subscription to E2E Band",
            "bounce": {"message": format!("The recipient's mail server rejected the message.{}", " ".repeat(pad)), "subType": "General", "type": bounce_type},
            "tags": tags
        }
    })
    .to_string()
}

/// Sends a provider report of `ty` about fan `fan` of `artist`, signed as
/// Resend signs, with a fresh message id; fails unless it is accepted.
/// Returns the message id.
pub(crate) fn report(t: &Target, ty: &str, to: &str, bounce_type: &str, artist: &str, fan: &str) -> Result<String, String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?;
    let msg = format!("msg_report_{}", now.as_nanos());
    let event = resend_event(ty, to, bounce_type, tags(artist, fan), 0);
    let ts = now.as_secs() as i64;
    let sig = sign(crate::runtime::HOOK_SECRET_NEW, &msg, ts, &event);
    let ts = ts.to_string();
    let res =
        t.send("POST", PATH, &[("content-type", "application/json"), ("svix-id", &msg), ("svix-timestamp", &ts), ("svix-signature", &sig)], event.as_bytes())?;
    ensure!(res.status() == 200, "{ty}: {} {}", res.status(), body(&res));
    Ok(msg)
}

pub(crate) fn tags(artist: &str, fan: &str) -> serde_json::Value {
    serde_json::json!({ "artist": artist, "fan": fan })
}

fn refused(res: &Res, status: u16, says: &str) -> Result<(), String> {
    ensure!(res.status() == status, "wanted {status} ({says}), got {} {:.300}", res.status(), body(res));
    let v: serde_json::Value = serde_json::from_slice(res.body()).map_err(|e| format!("{status}: not JSON ({e}): {:.200}", body(res)))?;
    let msg = v["error"]["message"].as_str().unwrap_or("");
    ensure!(msg.contains(says), "{status}: {msg:?} should say {says:?}");
    Ok(())
}

fn accepted(res: &Res) -> Result<(), String> {
    ensure!(res.status() == 200 && body(res) == r#"{"received":true}"#, "wanted 200 received, got {} {:.300}", res.status(), body(res));
    Ok(())
}

fn one(t: &Target, sql: &str, p: &[&str]) -> Result<i64, String> {
    t.db()?.query_row(sql, rusqlite::params_from_iter(p), |r| r.get(0)).map_err(|e| format!("{sql}: {e}"))
}

fn fan_id(t: &Target, artist: &str, email: &str) -> Result<String, String> {
    let hash = keys().blind_index(artist, &email.to_ascii_lowercase());
    t.db()?.query_row("SELECT id FROM fans WHERE email_hash = ?1", [hash], |r| r.get(0)).map_err(|e| format!("fan {email}: {e}"))
}

fn status(t: &Target, fan: &str) -> Result<String, String> {
    t.db()?.query_row("SELECT status FROM fans WHERE id = ?1", [fan], |r| r.get(0)).map_err(|e| e.to_string())
}

fn signup(t: &Target, ip: &str, page: &str, email: &str) -> Result<(), String> {
    let res = json(t, ip, &format!(r#"{{"page":"{page}","email":"{email}","consent":true}}"#))?;
    ensure!(res.status() == 200, "signup {email} on {page}: {} {}", res.status(), body(&res));
    Ok(())
}

/// The provider calls for `to`, after waiting up to `wait` for `at_least`.
fn mails_to(t: &Target, to: &str, at_least: usize, wait: Duration) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + wait;
    loop {
        let found: Vec<serde_json::Value> =
            t.mail.requests().into_iter().filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok()).filter(|v| v["to"][0] == to).collect();
        if found.len() >= at_least || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// --- Cases ----------------------------------------------------------------------

fn refusals(t: &Target) -> Result<(), String> {
    signing_matches_the_specification()?;
    let before = one(t, "SELECT count(*) FROM inbound_webhooks", &[])?;
    let now = now_secs();
    let ev = resend_event("email.bounced", "nobody@example.com", "Permanent", tags(ARTIST, "00000000000000000000000000000000"), 0);

    let get = t.send("GET", PATH, &[], b"")?;
    refused(&get, 405, "POST")?;
    ensure!(get.headers().get("allow").is_some_and(|v| v == "POST"), "Allow: {:?}", get.headers().get("allow"));
    refused(&t.send("POST", "/hooks/email/postmark", &[("content-type", "application/json")], ev.as_bytes())?, 404, "Not found")?;
    refused(&t.send("POST", "/hooks/email/RESEND", &[("content-type", "application/json")], ev.as_bytes())?, 404, "Not found")?;
    let huge = format!(r#"{{"type":"email.bounced","pad":"{}"}}"#, "x".repeat(70 * 1024));
    refused(&t.send("POST", PATH, &[("content-type", "application/json")], huge.as_bytes())?, 413, "larger than")?;
    refused(&t.send("POST", PATH, &[("content-type", "application/json")], ev.as_bytes())?, 401, "Missing")?;

    let id = msg_id("refused");
    let sig = sign(HOOK_SECRET_NEW, &id, now, &ev);
    let tampered = ev.replace("Permanent", "Transient");
    let ts = now.to_string();
    let h = [("content-type", "application/json"), ("svix-id", id.as_str()), ("svix-timestamp", ts.as_str()), ("svix-signature", sig.as_str())];
    refused(&t.send("POST", PATH, &h, tampered.as_bytes())?, 401, "No valid webhook signature")?;
    let wrong = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    refused(&post(t, Names::Svix, wrong, &id, now, &ev)?, 401, "No valid webhook signature")?;
    refused(&post(t, Names::Svix, HOOK_SECRET_NEW, &id, now - 6 * 60, &ev)?, 401, "minutes old")?;
    refused(&post(t, Names::Standard, HOOK_SECRET_NEW, &id, now + 6 * 60, &ev)?, 401, "in the future")?;
    refused(&post(t, Names::Svix, HOOK_SECRET_NEW, &id, now, "{\"type\": \"email.bounced\", ")?, 400, "not a JSON object")?;
    ensure!(one(t, "SELECT count(*) FROM inbound_webhooks", &[])? == before, "a refused message was recorded");

    // Other event types: acknowledged, not recorded.
    accepted(&post(t, Names::Svix, HOOK_SECRET_NEW, &msg_id("opened"), now, &resend_event("email.opened", "x@example.com", "", tags(ARTIST, "0"), 0))?)?;
    ensure!(one(t, "SELECT count(*) FROM inbound_webhooks", &[])? == before, "an ignored type was recorded");
    // A bounce about nobody, in a body well past the 8 KB the fans' routes
    // take (bounce messages can be long): accepted, answered as any other,
    // only its id recorded.
    let big = resend_event("email.bounced", "nobody@example.com", "Permanent", tags(ARTIST, "00000000000000000000000000000000"), 40 * 1024);
    accepted(&post(t, Names::Svix, HOOK_SECRET_NEW, &msg_id("nobody"), now, &big)?)?;
    ensure!(one(t, "SELECT count(*) FROM inbound_webhooks", &[])? == before + 1, "the id of an event about nobody is recorded");
    Ok(())
}

fn bounce_then_back_through_double_opt_in(t: &Target) -> Result<(), String> {
    let email = "hook-hard@example.com";
    let ip = "198.51.100.60";
    signup(t, ip, "e2e", email)?;
    // The same address on another artist's list: never touched.
    signup(t, ip, "e2e-other", email)?;
    let fan = fan_id(t, ARTIST, email)?;
    let other = fan_id(t, "e2e-other-artist", email)?;
    ensure!(status(t, &fan)? == "subscribed", "not subscribed");

    // A hard bounce, signed with the older of the two rotated secrets.
    let id = msg_id("hard");
    let ev = resend_event("email.bounced", email, "Permanent", tags(ARTIST, &fan), 0);
    accepted(&post(t, Names::Svix, HOOK_SECRET_OLD, &id, now_secs(), &ev)?)?;
    ensure!(status(t, &fan)? == "bounced", "not bounced: {}", status(t, &fan)?);
    let history =
        |kind: &str| one(t, "SELECT count(*) FROM consent_events WHERE fan_id = ?1 AND kind = ?2 AND method = 'provider' AND page_id IS NULL", &[&fan, kind]);
    ensure!(history("bounce")? == 1, "bounce consent events: {}", history("bounce")?);
    let mail_events = || one(t, "SELECT count(*) FROM mail_events WHERE fan_id = ?1", &[&fan]);
    ensure!(
        one(t, "SELECT count(*) FROM mail_events WHERE fan_id = ?1 AND kind = 'bounce' AND bounce_type = 'permanent' AND provider = 'resend' AND provider_msg_id = ?2", &[&fan, &id])? == 1,
        "no mail event"
    );

    // The provider retries the same message (same id, new timestamp and
    // signature): 200, nothing changes.
    let counts = |t: &Target| -> Result<[i64; 3], String> {
        Ok([one(t, "SELECT count(*) FROM inbound_webhooks", &[])?, mail_events()?, one(t, "SELECT count(*) FROM consent_events WHERE fan_id = ?1", &[&fan])?])
    };
    let once = counts(t)?;
    accepted(&post(t, Names::Svix, HOOK_SECRET_NEW, &id, now_secs(), &ev)?)?;
    accepted(&post(t, Names::Standard, HOOK_SECRET_OLD, &id, now_secs(), &ev)?)?;
    ensure!(counts(t)? == once, "a replay changed rows: {once:?} -> {:?}", counts(t)?);
    // Tags must match artist and fan together: the other artist with this
    // fan's id is nobody.
    accepted(&post(
        t,
        Names::Svix,
        HOOK_SECRET_NEW,
        &msg_id("mixed"),
        now_secs(),
        &resend_event("email.complained", email, "", tags("e2e-other-artist", &fan), 0),
    )?)?;
    ensure!(status(t, &other)? == "subscribed", "the other artist's fan was touched");

    // No mail reached the bounced fan; signing up again makes them pending,
    // even on this single opt-in page, and sends the confirmation.
    ensure!(mails_to(t, email, 1, Duration::from_millis(300)).is_empty(), "mail went to a fan before any confirmation was due");
    signup(t, ip, "e2e", email)?;
    ensure!(status(t, &fan)? == "pending", "back without double opt-in: {}", status(t, &fan)?);
    ensure!(one(t, "SELECT count(*) FROM consent_events WHERE fan_id = ?1 AND kind = 'request' AND method = 'double'", &[&fan])? == 1, "no request event");
    let mails = mails_to(t, email, 1, Duration::from_secs(3));
    ensure!(mails.len() == 1, "{} confirmation mails", mails.len());
    // The mail names the fan for the provider by tags, never by address.
    let sent_tags = mails[0]["tags"].clone();
    let want = serde_json::json!([{"name": "artist", "value": ARTIST}, {"name": "fan", "value": fan}]);
    ensure!(sent_tags == want, "tags {sent_tags}");

    // Those tags, as a provider echoes them (a list), with the
    // specification's header names: a complaint.
    let complaint = resend_event("email.complained", email, "", sent_tags, 0);
    accepted(&post(t, Names::Standard, HOOK_SECRET_NEW, &msg_id("complaint"), now_secs(), &complaint)?)?;
    ensure!(status(t, &fan)? == "complained", "not complained: {}", status(t, &fan)?);
    ensure!(history("complaint")? == 1, "complaint consent events: {}", history("complaint")?);
    ensure!(status(t, &other)? == "subscribed", "the other artist's fan was touched");
    Ok(())
}

fn soft_bounces(t: &Target) -> Result<(), String> {
    let email = "hook-soft@example.com";
    signup(t, "198.51.100.61", "e2e", email)?;
    let fan = fan_id(t, ARTIST, email)?;
    // The default soft_bounce_limit is 3.
    for (i, kind) in ["Transient", "Undetermined", "Transient"].iter().enumerate() {
        let ev = resend_event("email.bounced", email, kind, tags(ARTIST, &fan), 0);
        accepted(&post(t, Names::Svix, HOOK_SECRET_NEW, &msg_id(&format!("soft{i}")), now_secs(), &ev)?)?;
        let want = if i < 2 { "subscribed" } else { "bounced" };
        ensure!(status(t, &fan)? == want, "after {} soft bounces: {} (wanted {want})", i + 1, status(t, &fan)?);
    }
    ensure!(one(t, "SELECT count(*) FROM mail_events WHERE fan_id = ?1 AND bounce_type = 'transient'", &[&fan])? == 3, "soft bounces not all recorded");
    ensure!(one(t, "SELECT count(*) FROM consent_events WHERE fan_id = ?1 AND kind = 'bounce'", &[&fan])? == 1, "one status change, one event");
    Ok(())
}

/// One message delivered eight times at once (a provider's retry racing
/// the first attempt): every delivery is answered 200, and the change is
/// applied once.
fn concurrent_deliveries(t: &Target) -> Result<(), String> {
    const N: usize = 8;
    let email = "hook-race@example.com";
    signup(t, "198.51.100.62", "e2e", email)?;
    let fan = fan_id(t, ARTIST, email)?;
    let id = msg_id("race");
    let ev = resend_event("email.bounced", email, "Permanent", tags(ARTIST, &fan), 0);
    let barrier = Arc::new(Barrier::new(N));
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let (barrier, id, ev) = (Arc::clone(&barrier), &id, &ev);
                // Half with each naming and secret, as a provider mid-rotation might.
                let (names, secret) = if i % 2 == 0 { (Names::Svix, HOOK_SECRET_NEW) } else { (Names::Standard, HOOK_SECRET_OLD) };
                s.spawn(move || {
                    barrier.wait();
                    post(t, names, secret, id, now_secs(), ev).map(|r| r.status().as_u16()).unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    ensure!(statuses.iter().all(|s| *s == 200), "statuses {statuses:?}");
    ensure!(status(t, &fan)? == "bounced", "not bounced");
    let n = |sql: &str| one(t, sql, &[&fan]);
    ensure!(n("SELECT count(*) FROM mail_events WHERE fan_id = ?1")? == 1, "{} mail events", n("SELECT count(*) FROM mail_events WHERE fan_id = ?1")?);
    ensure!(n("SELECT count(*) FROM consent_events WHERE fan_id = ?1 AND kind = 'bounce'")? == 1, "bounce applied more than once");
    ensure!(one(t, "SELECT count(*) FROM inbound_webhooks WHERE msg_id = ?1", &[&id])? == 1, "id not recorded once");
    Ok(())
}
