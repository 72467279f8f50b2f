//! Outbound webhooks end to end (README "Webhooks"): an artist registers an
//! endpoint through the API; every event type reaches a local receiver
//! signed with the endpoint's secret (checked as the Standard Webhooks
//! libraries check it); a receiver that fails, then hangs, then recovers
//! gets the message until its first 2xx and never again; 410 switches the
//! endpoint off; a failed message can be replayed. Clients 198.51.100.160–179.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::adapters::native::recorder::{Recorded, Recorder};
use shared::token::{Purpose, TokenKeys};
use shared::webhook::{verify, Headers, Secret};

use crate::cases::{body, Case, Res};
use crate::dashboard::{add_user, fan_id, signup, Browser};
use crate::ensure;
use crate::runtime::{Target, PUBLIC_BASE, TOKEN_KEY_NEW};

pub const ALL: &[(&str, Case)] = &[
    ("hooks_out_every_event_arrives_signed", every_event_arrives_signed),
    ("hooks_out_retried_until_the_first_2xx_then_never", retried_until_the_first_2xx),
    ("hooks_out_soak_receiver_down_then_up_nothing_lost", soak_receiver_down_then_up),
];

const TOKEN: &str = "sd_e2e_links_token_artist_one_3f9a";
const OTHER_TOKEN: &str = "sd_e2e_links_token_artist_two_7c1d";

pub(crate) fn api(t: &Target, method: &str, path: &str, token: &str, data: Option<Value>) -> Result<(u16, Value), String> {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    if data.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let res = t.send(method, path, &headers, data.map(|d| d.to_string()).unwrap_or_default().as_bytes())?;
    Ok((res.status().as_u16(), serde_json::from_slice(res.body()).unwrap_or(Value::Null)))
}

pub(crate) fn create(t: &Target, token: &str, url: &str, events: Value) -> Result<(String, String), String> {
    let (s, v) = api(t, "POST", "/api/v1/app/webhooks", token, Some(json!({"url": url, "events": events})))?;
    ensure!(s == 201, "create endpoint: {s} {v}");
    Ok((v["id"].as_str().unwrap_or("").to_owned(), v["secret"].as_str().unwrap_or("").to_owned()))
}

/// Waits until `rx` has received `n` requests (sent after a response).
pub(crate) fn wait_for(rx: &Recorder, n: usize, secs: u64) -> Vec<Recorded> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = rx.requests();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signed(r: &Recorded, secret: &str) -> Result<Value, String> {
    let (Some(id), Some(ts), Some(sig)) = (r.header("webhook-id"), r.header("webhook-timestamp"), r.header("webhook-signature")) else {
        return Err(format!("unsigned request: {:?}", r.headers));
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs() as i64;
    let secret = Secret::parse(secret).map_err(|e| e.to_string())?;
    verify(&[secret], Some(Headers { id, timestamp: ts, signature: sig }), &r.body, now).map_err(|e| format!("signature of {id}: {e:?}"))?;
    serde_json::from_slice(&r.body).map_err(|e| format!("body of {id}: {e}"))
}

/// The delivered event of `type` about fan `fan` (any fan if `None`).
fn find<'a>(events: &'a [Value], kind: &str, fan: Option<&str>) -> Option<&'a Value> {
    events.iter().find(|e| e["type"] == kind && fan.is_none_or(|f| e["data"]["id"] == f))
}

fn jobs(t: &Target) -> Result<(), String> {
    let (res, report): (Res, String) = crate::jobs::trigger(t)?;
    ensure!(res.status() == 200, "jobs run: {} {report}", res.status());
    Ok(())
}

fn every_event_arrives_signed(t: &Target) -> Result<(), String> {
    let rx = Recorder::start().map_err(|e| e.to_string())?;
    let (id, secret) = create(t, TOKEN, &format!("{}/hook", rx.url), json!("*"))?;

    // Refused at registration: a private address, a plain-http host.
    for url in ["https://10.1.2.3/hook", "https://169.254.169.254/latest/meta-data", "http://hooks.example.com/"] {
        let (s, v) = api(t, "POST", "/api/v1/app/webhooks", TOKEN, Some(json!({"url": url})))?;
        ensure!(s == 422 && v["error"]["field"] == "url", "{url}: {s} {v}");
    }
    // The other artist sees none of it.
    let (s, _) = api(t, "GET", &format!("/api/v1/app/webhooks/{id}"), OTHER_TOKEN, None)?;
    ensure!(s == 404, "another artist reads the endpoint: {s}");
    let (_, list) = api(t, "GET", "/api/v1/app/webhooks", OTHER_TOKEN, None)?;
    ensure!(list["endpoints"].as_array().is_some_and(|l| l.iter().all(|e| e["id"] != id.as_str())), "another artist lists it: {list}");

    // Set up first: this writes to the runtime's database file directly,
    // which would race the deferred sends below (SQLITE_BUSY).
    add_user(t, "hooks-owner", "e2e-artist", "hooks-owner@e2e.example", "owner")?;
    let mut owner = Browser::new(t, "198.51.100.162");
    owner.sign_in("hooks-owner@e2e.example")?;

    // fan.subscribed (single opt-in), fan.subscribed + fan.confirmed (double).
    let (single, double) = ("hook-single@example.com", "hook-double@example.com");
    signup(t, "198.51.100.160", "e2e", single)?;
    signup(t, "198.51.100.161", "e2e-doi", double)?;
    let (single_id, double_id) = (fan_id(t, "e2e-artist", single)?, fan_id(t, "e2e-artist", double)?);
    let confirm_mail = {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = t.mail.requests().into_iter().filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok()).find(|m| m["to"][0] == double);
            if let Some(m) = found {
                break m;
            }
            ensure!(Instant::now() < deadline, "no confirmation mail");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    ensure!(
        confirm_mail["tags"] == json!([{"name": "artist", "value": "e2e-artist"}, {"name": "fan", "value": double_id}]),
        "the mail names artist and fan by id only: {}",
        confirm_mail["tags"]
    );
    let prefix = format!("{PUBLIC_BASE}/s/e2e-doi/confirm?t=");
    let text = confirm_mail["text"].as_str().unwrap_or("");
    let link = text.split_whitespace().find(|w| w.starts_with(&prefix)).ok_or("no confirm link")?;
    let res = t.send("POST", link.trim_start_matches(PUBLIC_BASE), &[("content-type", "application/x-www-form-urlencoded")], b"")?;
    ensure!(res.status() == 200, "confirm: {}", res.status());

    // fan.unsubscribed, through the fan's one-click link.
    let token =
        TokenKeys::parse(TOKEN_KEY_NEW).map_err(|e| e.to_string())?.sign(Purpose::Unsubscribe, 0, &single_id, "e2e-artist").map_err(|e| e.to_string())?;
    let res = t.send("POST", &format!("/u/{token}"), &[("content-type", "application/x-www-form-urlencoded")], b"List-Unsubscribe=One-Click")?;
    ensure!(res.status() == 200, "unsubscribe: {}", res.status());

    // fan.erased, from the dashboard.
    let csrf = owner.csrf()?;
    let res = owner.post(&format!("/app/fans/{double_id}/erase"), &format!("csrf={csrf}&confirm=erase"))?;
    ensure!(res.status() == 200, "erase: {} {}", res.status(), body(&res));

    // link.created and link.updated are sent by the next jobs run.
    let link = json!({"slug": "hook-link", "title": "Hooked", "targets": [{"platform": "spotify", "url": "https://open.spotify.com/album/1"}]});
    let (s, v) = api(t, "POST", "/api/v1/app/links", TOKEN, Some(link.clone()))?;
    ensure!(s == 201, "link create: {s} {v}");
    let mut changed = link;
    changed["title"] = json!("Hooked again");
    let (s, v) = api(t, "PUT", "/api/v1/app/links/hook-link", TOKEN, Some(changed))?;
    ensure!(s == 200, "link update: {s} {v}");

    // fan.bounced and fan.complained, from the email provider's webhooks
    // (signed as Resend signs, found by the tags our mail carries).
    let bouncing = "hook-bounce@example.com";
    signup(t, "198.51.100.163", "e2e", bouncing)?;
    let bouncing_id = fan_id(t, "e2e-artist", bouncing)?;
    for (ty, to, fan, bounce) in [("email.bounced", bouncing, &bouncing_id, "Permanent"), ("email.complained", single, &single_id, "")] {
        crate::hooks_in::report(t, ty, to, bounce, "e2e-artist", fan)?;
    }

    // test, by hand.
    let (s, v) = api(t, "POST", &format!("/api/v1/app/webhooks/{id}/test"), TOKEN, None)?;
    ensure!(s == 202, "test: {s} {v}");

    // Everything but the link events arrives after its own response.
    let before_jobs = wait_for(&rx, 9, 10);
    if before_jobs.len() != 9 {
        let types: Vec<String> = before_jobs.iter().filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok()).map(|v| v["type"].to_string()).collect();
        let db = t.db()?;
        let queued: Vec<String> = db
            .prepare("SELECT type || ':' || status || ':' || attempts FROM webhook_messages WHERE endpoint_id = ?1")
            .and_then(|mut s| s.query_map([&id], |r| r.get(0))?.collect())
            .map_err(|e| e.to_string())?;
        return Err(format!("{} of 9 sent right after their responses: {types:?}; queued: {queued:?}", before_jobs.len()));
    }
    jobs(t)?;
    let got = wait_for(&rx, 11, 10);
    let events = got.iter().map(|r| signed(r, &secret)).collect::<Result<Vec<_>, _>>()?;
    ensure!(events.len() == 11, "{} events: {:?}", events.len(), events.iter().map(|e| e["type"].clone()).collect::<Vec<_>>());

    let sub = find(&events, "fan.subscribed", Some(&single_id)).ok_or("no fan.subscribed (single)")?;
    ensure!(sub["data"]["email"] == single && sub["data"]["status"] == "subscribed" && sub["data"]["capture_page"] == "e2e", "fan.subscribed: {sub}");
    ensure!(sub["data"]["consent_version"] == "v1" && sub["data"]["subscribed_at"].is_string(), "consent evidence: {sub}");
    let pending = find(&events, "fan.subscribed", Some(&double_id)).ok_or("no fan.subscribed (double)")?;
    ensure!(pending["data"]["status"] == "pending", "double opt-in signup: {pending}");
    let confirmed = find(&events, "fan.confirmed", Some(&double_id)).ok_or("no fan.confirmed")?;
    ensure!(confirmed["data"]["status"] == "subscribed" && confirmed["data"]["email"] == double, "fan.confirmed: {confirmed}");
    let unsub = find(&events, "fan.unsubscribed", Some(&single_id)).ok_or("no fan.unsubscribed")?;
    ensure!(unsub["data"]["status"] == "unsubscribed", "fan.unsubscribed: {unsub}");
    let erased = find(&events, "fan.erased", Some(&double_id)).ok_or("no fan.erased")?;
    ensure!(erased["data"] == json!({"id": double_id}), "fan.erased carries the id alone: {erased}");
    let created = find(&events, "link.created", None).ok_or("no link.created")?;
    ensure!(created["data"]["slug"] == "hook-link", "link.created: {created}");
    let updated = find(&events, "link.updated", None).ok_or("no link.updated")?;
    ensure!(updated["data"]["definition"]["title"] == "Hooked again", "link.updated: {updated}");
    ensure!(find(&events, "test", None).is_some(), "no test event");
    let bounced = find(&events, "fan.bounced", Some(&bouncing_id)).ok_or("no fan.bounced")?;
    ensure!(bounced["data"]["status"] == "bounced" && bounced["data"]["email"] == bouncing, "fan.bounced: {bounced}");
    let complained = find(&events, "fan.complained", Some(&single_id)).ok_or("no fan.complained")?;
    ensure!(complained["data"]["status"] == "complained", "fan.complained: {complained}");
    for e in &events {
        ensure!(e["timestamp"].as_str().is_some_and(|ts| ts.ends_with('Z')), "timestamp: {e}");
    }

    // Erasure took the messages about the fan with it; only fan.erased names them.
    let left: i64 = t.db()?.query_row("SELECT count(*) FROM webhook_messages WHERE fan_id = ?1", [&double_id], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(left == 0, "{left} messages still name the erased fan");
    Ok(())
}

fn retried_until_the_first_2xx(t: &Target) -> Result<(), String> {
    let rx = Recorder::start().map_err(|e| e.to_string())?;
    let (id, secret) = create(t, OTHER_TOKEN, &format!("{}/flaky", rx.url), json!(["fan.subscribed"]))?;
    rx.respond_with(500);
    signup(t, "198.51.100.170", "e2e-other", "hook-flaky@example.com")?;
    ensure!(wait_for(&rx, 1, 10).len() == 1, "no first attempt");
    // Down: a second 500.
    std::thread::sleep(Duration::from_millis(1200));
    jobs(t)?;
    ensure!(wait_for(&rx, 2, 10).len() == 2, "no retry");
    // Hung: longer than the 1.5 s timeout.
    rx.respond_after(3_000);
    rx.respond_with(200);
    std::thread::sleep(Duration::from_millis(1200));
    jobs(t)?;
    ensure!(wait_for(&rx, 3, 10).len() == 3, "no third attempt");
    std::thread::sleep(Duration::from_millis(2_000)); // the hung answer ends
                                                      // Back.
    rx.respond_after(0);
    std::thread::sleep(Duration::from_millis(1200));
    jobs(t)?;
    ensure!(wait_for(&rx, 4, 10).len() == 4, "no fourth attempt");
    std::thread::sleep(Duration::from_millis(1200));
    jobs(t)?;
    let got = wait_for(&rx, 5, 2);
    ensure!(got.len() == 4, "sent again after its 2xx: {} requests", got.len());
    let ids: Vec<&str> = got.iter().filter_map(|r| r.header("webhook-id")).collect();
    ensure!(ids.len() == 4 && ids.iter().all(|i| *i == ids[0]), "one webhook-id across retries: {ids:?}");
    for r in &got {
        signed(r, &secret)?;
    }
    let db = t.db()?;
    let statuses: Vec<Option<i64>> = db
        .prepare("SELECT a.status FROM webhook_attempts a WHERE a.message_id = ?1 ORDER BY a.at, a.id")
        .and_then(|mut s| s.query_map([ids[0]], |r| r.get(0))?.collect())
        .map_err(|e| e.to_string())?;
    ensure!(statuses == [Some(500), Some(500), None, Some(200)], "attempt log: {statuses:?}");
    let status: String = db.query_row("SELECT status FROM webhook_messages WHERE id = ?1", [ids[0]], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(status == "delivered", "message {status}");

    // 410 switches the endpoint off at once.
    rx.respond_with(410);
    let (s, v) = api(t, "POST", &format!("/api/v1/app/webhooks/{id}/test"), OTHER_TOKEN, None)?;
    ensure!(s == 202, "test: {s} {v}");
    let test_msg = v["message_id"].as_str().unwrap_or("").to_owned();
    wait_for(&rx, 5, 10);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, ep) = api(t, "GET", &format!("/api/v1/app/webhooks/{id}"), OTHER_TOKEN, None)?;
        if ep["enabled"] == false {
            ensure!(ep["disabled_reason"] == "gone", "reason: {ep}");
            break;
        }
        ensure!(Instant::now() < deadline, "410 did not switch the endpoint off: {ep}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // On again, the failed test message replayed: delivered, same id.
    rx.respond_with(200);
    let (s, v) = api(t, "PATCH", &format!("/api/v1/app/webhooks/{id}"), OTHER_TOKEN, Some(json!({"enabled": true})))?;
    ensure!(s == 200 && v["enabled"] == true, "switch on: {s} {v}");
    let (s, v) = api(t, "POST", &format!("/api/v1/app/webhooks/{id}/messages/{test_msg}/replay"), OTHER_TOKEN, None)?;
    ensure!(s == 202, "replay: {s} {v}");
    let got = wait_for(&rx, 6, 10);
    ensure!(got.len() == 6 && got[5].header("webhook-id") == Some(test_msg.as_str()), "replay not delivered with its id");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, m) = api(t, "GET", &format!("/api/v1/app/webhooks/{id}/messages/{test_msg}"), OTHER_TOKEN, None)?;
        if m["status"] == "delivered" {
            break;
        }
        ensure!(Instant::now() < deadline, "replayed message: {m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The soak's fan ids: 32 hex chars like every fan id (tokens carry 16 bytes).
fn soak_fan(i: usize) -> String {
    format!("50a4{i:028x}")
}

/// Fans in the soak (`HOOKS_SOAK_EVENTS`, default 1,000).
fn soak_size() -> Result<usize, String> {
    match std::env::var("HOOKS_SOAK_EVENTS") {
        Ok(v) => v.trim().parse().ok().filter(|n| (1..=20_000).contains(n)).ok_or(format!("HOOKS_SOAK_EVENTS={v:?}: 1 to 20000")),
        Err(_) => Ok(1_000),
    }
}

/// 1,000 fans of an artist of their own unsubscribe at once (one click
/// each, 16 at a time): 1,000 `fan.unsubscribed` events. The receiver
/// answers 500 until it has seen half of them, then 200; the jobs run
/// until every message is delivered. Every event arrives, each id gets
/// exactly one 2xx, as its last attempt, and every request the receiver
/// saw is an attempt on record (nothing sent twice unlogged).
fn soak_receiver_down_then_up(t: &Target) -> Result<(), String> {
    let n = soak_size()?;
    let artist = "hooks-soak-artist";
    let token = "sd_e2e_hooks_soak_token";
    let keys = crate::cases::keys();
    {
        // Seeded before any request of this case, so no deferred send races it.
        let mut db = t.db_rw()?;
        let tx = db.transaction().map_err(|e| e.to_string())?;
        tx.execute("INSERT OR IGNORE INTO artists (id, name, created_at) VALUES (?1, 'Soak', 0)", [artist]).map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT OR IGNORE INTO api_tokens (id, artist_id, token_hash, label, created_at) VALUES ('hooks-soak-token', ?1, ?2, 'soak', 0)",
            [artist, &shared::crypto::sha256_hex(token.as_bytes())],
        )
        .map_err(|e| e.to_string())?;
        for i in 0..n {
            let (id, email) = (soak_fan(i), format!("hooks-soak-{i}@example.com"));
            let enc = keys.encrypt(email.as_bytes(), shared::crypto::fan_email_context(artist, &id).as_bytes()).map_err(|e| e.to_string())?;
            tx.execute(
                "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, consent_version, created_at, subscribed_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, 'subscribed', 'v1', 0, 0, 0)",
                [&id, artist, &enc, &keys.blind_index(artist, &email)],
            )
            .map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())?;
    }
    let rx = Recorder::start().map_err(|e| e.to_string())?;
    rx.respond_with(500);
    let (endpoint, secret) = create(t, token, &format!("{}/soak", rx.url), json!(["fan.unsubscribed"]))?;

    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let signer = TokenKeys::parse(TOKEN_KEY_NEW).map_err(|e| e.to_string())?;
    let failures = std::thread::scope(|s| {
        let workers: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    let mut failed = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= n {
                            return failed;
                        }
                        let tok = signer.sign(Purpose::Unsubscribe, 0, &soak_fan(i), artist).unwrap_or_default();
                        match t.send("POST", &format!("/u/{tok}"), &[("content-type", "application/x-www-form-urlencoded")], b"List-Unsubscribe=One-Click") {
                            Ok(r) if r.status() == 200 => {}
                            Ok(r) => failed.push(format!("{i}: {}", r.status())),
                            Err(e) => failed.push(format!("{i}: {e}")),
                        }
                        // Half way through the fans' clicks, the receiver comes back.
                        if rx.requests().len() >= n / 2 {
                            rx.respond_with(200);
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect::<Vec<_>>()
    });
    ensure!(failures.is_empty(), "{} unsubscribes failed: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    let clicked = started.elapsed();
    rx.respond_with(200);

    let delivered = |t: &Target| -> Result<i64, String> {
        t.db()?
            .query_row("SELECT count(*) FROM webhook_messages WHERE endpoint_id = ?1 AND status = 'delivered'", [&endpoint], |r| r.get(0))
            .map_err(|e| e.to_string())
    };
    let mut runs = 0;
    while (delivered(t)? as usize) < n {
        ensure!(runs < 30, "{} of {n} delivered after {runs} jobs runs", delivered(t)?);
        std::thread::sleep(Duration::from_millis(1100));
        jobs(t)?;
        runs += 1;
    }
    let all_in = started.elapsed();

    let got = rx.requests();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &got {
        let e = signed(r, &secret)?;
        ensure!(e["type"] == "fan.unsubscribed", "unexpected {e}");
        *per_id.entry(r.header("webhook-id").unwrap_or("").to_owned()).or_default() += 1;
    }
    ensure!(per_id.len() == n, "{} distinct events arrived, {n} expected", per_id.len());
    let db = t.db()?;
    let mut stmt = db
        .prepare(
            "SELECT m.id, count(a.id), sum(a.status BETWEEN 200 AND 299), \
             (SELECT a2.status FROM webhook_attempts a2 WHERE a2.message_id = m.id ORDER BY a2.at DESC, a2.rowid DESC LIMIT 1) \
             FROM webhook_messages m JOIN webhook_attempts a ON a.message_id = m.id WHERE m.endpoint_id = ?1 GROUP BY m.id",
        )
        .map_err(|e| e.to_string())?;
    let rows: Vec<(String, i64, i64, Option<i64>)> =
        stmt.query_map([&endpoint], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).and_then(|rows| rows.collect()).map_err(|e| e.to_string())?;
    ensure!(rows.len() == n, "{} messages with attempts, {n} expected", rows.len());
    let mut attempts = 0;
    for (id, tries, ok, last) in &rows {
        ensure!(*ok == 1, "{id}: {ok} successful attempts");
        ensure!(last.is_some_and(|s| (200..300).contains(&s)), "{id}: sent again after its 2xx (last status {last:?})");
        ensure!(per_id.get(id).copied() == Some(*tries as usize), "{id}: receiver saw {:?} requests, {tries} attempts logged", per_id.get(id));
        attempts += tries;
    }
    println!(
        "hooks soak ({:?}): {n} fan events, receiver down for the first {} requests; {n} delivered, 0 lost, 0 sent again after a 2xx; \
         {attempts} attempts; clicks done in {:.1} s, all delivered after {:.1} s and {runs} jobs runs",
        t.kind,
        n / 2,
        clicked.as_secs_f64(),
        all_in.as_secs_f64()
    );
    Ok(())
}
