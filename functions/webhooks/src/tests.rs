//! Native tests of the inbound webhook route against the real SQLite
//! engine: every refusal, replays, and what each event does to a fan.

use shared::adapters::native::recorder::Recorder;
use shared::adapters::native::{block_on, NativeEnv};
use shared::http::{Method, Request as HttpRequest};
use shared::webhook::{Secret, MAX_INBOUND_BODY, TOLERANCE_SECS};
use shared::{Env, Response};

const DATA_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const INDEX_KEY: &str = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
/// The provider's secrets while one is rotated: the new one first.
const SECRET_NEW: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_OLD: &str = "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const FAN: &str = "0123456789abcdef0123456789abcdef";
/// A fan of artist a2 with the same id as a1's would have, in a database
/// where ids are per artist: the tags must match both.
const OTHER_FAN: &str = "fedcba9876543210fedcba9876543210";
const PATH: &str = "/hooks/email/resend";

fn env() -> NativeEnv {
    let mut env = NativeEnv::memory().unwrap();
    env.set_var("email_webhook_secrets_resend", &format!("{SECRET_NEW} {SECRET_OLD}"));
    env.set_var("data_keys", DATA_KEYS).set_var("index_key", INDEX_KEY);
    env.db
        .conn()
        .execute_batch(&format!(
            "INSERT INTO artists VALUES ('a1', 'Nova', 0);
             INSERT INTO artists VALUES ('a2', 'Other Artist', 0);
             INSERT INTO fans (id, artist_id, email_enc, email_hash, status, consent_version, created_at, subscribed_at, updated_at)
               VALUES ('{FAN}', 'a1', 'k1.x', 'h1', 'subscribed', 'v1', 0, 0, 0);
             INSERT INTO fans (id, artist_id, email_enc, email_hash, status, consent_version, created_at, subscribed_at, updated_at)
               VALUES ('{OTHER_FAN}', 'a2', 'k1.y', 'h2', 'subscribed', 'v1', 0, 0, 0);"
        ))
        .unwrap();
    env
}

fn now_secs(env: &NativeEnv) -> i64 {
    env.now_ms() / 1000
}

/// A Resend-shaped event about `fan` of `artist`, tags as Resend's
/// webhooks carry them (an object).
fn event(ty: &str, artist: &str, fan: &str, bounce_type: &str) -> String {
    serde_json::json!({
        "type": ty,
        "created_at": "2026-01-01T00:00:00.000Z",
        "data": {
            "created_at": "2026-01-01T00:00:00.000Z",
            "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
            "from": "Nova <news@nova.example>",
            "to": ["fan@example.com"],
            "subject": "Confirm your subscription",
            "bounce": {"message": "The recipient's mailbox does not exist.", "subType": "General", "type": bounce_type},
            "tags": {"artist": artist, "fan": fan}
        }
    })
    .to_string()
}

fn bounce(kind: &str) -> String {
    event("email.bounced", "a1", FAN, kind)
}

/// Signs as the Standard Webhooks libraries do and posts with Svix's
/// header names (as Resend sends).
fn post_signed(env: &NativeEnv, secret: &str, id: &str, ts: i64, body: &str) -> Response {
    let sig = Secret::parse(secret).unwrap().sign(id, ts, body.as_bytes());
    post(env, PATH, &[("svix-id", id), ("svix-timestamp", &ts.to_string()), ("svix-signature", &sig)], body.as_bytes())
}

fn deliver(env: &NativeEnv, id: &str, body: &str) -> Response {
    post_signed(env, SECRET_NEW, id, now_secs(env), body)
}

fn post(env: &NativeEnv, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    send(env, Method::POST, path, headers, body)
}

fn send(env: &NativeEnv, method: Method, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut b = HttpRequest::builder().method(method).uri(path).header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    block_on(crate::handle(b.body(body.to_vec()).unwrap(), env))
}

fn text(res: &Response) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

fn count(env: &NativeEnv, sql: &str) -> i64 {
    env.db.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn status_of(env: &NativeEnv, fan: &str) -> String {
    env.db.conn().query_row("SELECT status FROM fans WHERE id = ?1", [fan], |r| r.get(0)).unwrap()
}

/// Rows in every table an event may write.
fn rows(env: &NativeEnv) -> [i64; 4] {
    ["inbound_webhooks", "mail_events", "consent_events", "webhook_messages"].map(|t| count(env, &format!("SELECT count(*) FROM {t}")))
}

fn assert_refused(res: &Response, status: u16, says: &str) {
    assert_eq!(res.status(), status, "{}", text(res));
    let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains(says), "{status}: {msg:?} should say {says:?}");
}

#[test]
fn valid_permanent_bounce_marks_the_fan_bounced_with_history() {
    let env = env();
    let res = deliver(&env, "msg_1", &bounce("Permanent"));
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(text(&res), r#"{"received":true}"#);
    assert_eq!(status_of(&env, FAN), "bounced");
    let (kind, method, page, version): (String, String, Option<String>, String) = env
        .db
        .conn()
        .query_row("SELECT kind, method, page_id, consent_version FROM consent_events WHERE fan_id = ?1", [FAN], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!((kind.as_str(), method.as_str(), page, version.as_str()), ("bounce", "provider", None, "v1"));
    let (kind, bounce_type, provider, msg, email_id, artist): (String, String, String, String, String, String) = env
        .db
        .conn()
        .query_row("SELECT kind, bounce_type, provider, provider_msg_id, email_id, artist_id FROM mail_events WHERE fan_id = ?1", [FAN], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .unwrap();
    assert_eq!(
        (kind.as_str(), bounce_type.as_str(), provider.as_str(), msg.as_str(), email_id.as_str(), artist.as_str()),
        ("bounce", "permanent", "resend", "msg_1", "56761188-7520-42d8-8898-ff6fc54ce618", "a1")
    );
    assert_eq!(count(&env, "SELECT updated_at FROM fans WHERE id = '0123456789abcdef0123456789abcdef'"), 1_767_225_600_000);
    let (provider, msg): (String, String) =
        env.db.conn().query_row("SELECT provider, msg_id FROM inbound_webhooks", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((provider.as_str(), msg.as_str()), ("resend", "msg_1"));
    assert_eq!(status_of(&env, OTHER_FAN), "subscribed");
    assert!(env.errors.borrow().is_empty(), "{:?}", env.errors.borrow());
}

#[test]
fn standard_webhooks_header_names_and_tag_lists_work_too() {
    let env = env();
    let body = serde_json::json!({
        "type": "email.complained",
        "timestamp": "2026-01-01T00:00:00Z",
        "data": {"email_id": "e-1", "tags": [{"name": "category", "value": "news"}, {"name": "artist", "value": "a1"}, {"name": "fan", "value": FAN}]}
    })
    .to_string();
    let ts = now_secs(&env);
    let sig = Secret::parse(SECRET_NEW).unwrap().sign("msg_std", ts, body.as_bytes());
    let res = post(&env, PATH, &[("webhook-id", "msg_std"), ("webhook-timestamp", &ts.to_string()), ("webhook-signature", &sig)], body.as_bytes());
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(status_of(&env, FAN), "complained");
}

#[test]
fn rotated_secret_second_one_still_verifies() {
    let env = env();
    let res = post_signed(&env, SECRET_OLD, "msg_old", now_secs(&env), &bounce("Permanent"));
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(status_of(&env, FAN), "bounced");
}

#[test]
fn several_signatures_one_valid_passes() {
    let env = env();
    let body = bounce("Permanent");
    let ts = now_secs(&env);
    let good = Secret::parse(SECRET_NEW).unwrap().sign("msg_many", ts, body.as_bytes());
    let wrong = Secret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap().sign("msg_many", ts, body.as_bytes());
    let header = format!("{wrong} v2,bm9wZQ== {good}");
    let res = post(&env, PATH, &[("svix-id", "msg_many"), ("svix-timestamp", &ts.to_string()), ("svix-signature", &header)], body.as_bytes());
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(status_of(&env, FAN), "bounced");
}

#[test]
fn refusals_are_401_and_change_nothing() {
    let env = env();
    let body = bounce("Permanent");
    let ts = now_secs(&env);
    let sig = Secret::parse(SECRET_NEW).unwrap().sign("msg_x", ts, body.as_bytes());
    let tampered = body.replace("Permanent", "Transient");
    let ts_s = ts.to_string();
    // (what, headers, body, what the refusal says)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [u8], &'a str);
    let cases: Vec<Case> = vec![
        ("tampered body", vec![("svix-id", "msg_x"), ("svix-timestamp", &ts_s), ("svix-signature", &sig)], tampered.as_bytes(), "No valid webhook signature"),
        ("other id", vec![("svix-id", "msg_y"), ("svix-timestamp", &ts_s), ("svix-signature", &sig)], body.as_bytes(), "No valid webhook signature"),
        ("no signature", vec![("svix-id", "msg_x"), ("svix-timestamp", &ts_s)], body.as_bytes(), "Missing"),
        ("no headers", vec![], body.as_bytes(), "Missing"),
        ("garbage signature", vec![("svix-id", "msg_x"), ("svix-timestamp", &ts_s), ("svix-signature", "v1,!!!")], body.as_bytes(), "No valid"),
        ("timestamp not a number", vec![("svix-id", "msg_x"), ("svix-timestamp", "soon"), ("svix-signature", &sig)], body.as_bytes(), "not a number"),
    ];
    for (what, headers, body, says) in cases {
        let res = post(&env, PATH, &headers, body);
        assert_refused(&res, 401, says);
        assert!(!text(&res).contains(FAN), "{what}");
    }
    // Signed with a secret that is not configured.
    let res = post_signed(&env, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "msg_w", ts, &body);
    assert_refused(&res, 401, "No valid webhook signature");
    assert_eq!(rows(&env), [0, 0, 0, 0]);
    assert_eq!(status_of(&env, FAN), "subscribed");
}

#[test]
fn stale_and_future_timestamps_are_refused_and_say_why() {
    let env = env();
    let body = bounce("Permanent");
    let now = now_secs(&env);
    assert_refused(&post_signed(&env, SECRET_NEW, "msg_old", now - TOLERANCE_SECS - 1, &body), 401, "minutes old");
    assert_refused(&post_signed(&env, SECRET_NEW, "msg_new", now + TOLERANCE_SECS + 1, &body), 401, "in the future");
    assert_eq!(rows(&env), [0, 0, 0, 0]);
    // Just inside the window either way is fine.
    assert_eq!(post_signed(&env, SECRET_NEW, "msg_edge1", now - TOLERANCE_SECS, &body).status(), 200);
    assert_eq!(post_signed(&env, SECRET_NEW, "msg_edge2", now + TOLERANCE_SECS, &bounce("Transient")).status(), 200);
}

#[test]
fn replayed_id_answers_200_and_changes_nothing() {
    let env = env();
    let body = bounce("Transient");
    assert_eq!(deliver(&env, "msg_r", &body).status(), 200);
    let once = rows(&env);
    assert_eq!(once, [1, 1, 0, 0]);
    env.advance_secs(30);
    for _ in 0..3 {
        let res = deliver(&env, "msg_r", &body);
        assert_eq!(res.status(), 200);
        assert_eq!(text(&res), r#"{"received":true}"#);
    }
    assert_eq!(rows(&env), once, "a replay wrote rows");
    // The same id from another provider is another message.
    env.db.conn().execute("DELETE FROM inbound_webhooks", []).unwrap();
    env.db.conn().execute("INSERT INTO inbound_webhooks VALUES ('postmark', 'msg_p', 0)", []).unwrap();
    assert_eq!(deliver(&env, "msg_p", &body).status(), 200);
    assert_eq!(count(&env, "SELECT count(*) FROM mail_events"), 2);
}

#[test]
fn a_replay_racing_past_the_look_up_changes_nothing() {
    // Two deliveries of one id at once on two instances: both looked the
    // id up before either recorded it. The other one has committed; this
    // one's batch fails on the primary key and must apply nothing.
    let env = env();
    env.db.conn().execute("INSERT INTO inbound_webhooks VALUES ('resend', 'msg_race', 0)", []).unwrap();
    let event = crate::parse(bounce("Permanent").as_bytes()).unwrap().unwrap();
    assert_eq!(block_on(crate::commit(&env, "resend", "msg_race", &event)), Ok(Vec::new()));
    assert_eq!(status_of(&env, FAN), "subscribed", "the losing batch must not apply");
    assert_eq!(rows(&env), [1, 0, 0, 0]);
    // Without the other delivery the same batch applies.
    let res = block_on(crate::commit(&env, "resend", "msg_race2", &event));
    assert_eq!(res, Ok(Vec::new()));
    assert_eq!(status_of(&env, FAN), "bounced");
}

#[test]
fn a_failing_batch_that_is_no_replay_is_5xx_so_the_provider_retries() {
    let env = env();
    env.db.conn().execute_batch("CREATE TEMP TRIGGER broken BEFORE INSERT ON mail_events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;").unwrap();
    let res = deliver(&env, "msg_f", &bounce("Permanent"));
    assert_eq!(res.status(), 503, "{}", text(&res));
    assert!(!text(&res).contains("disk on fire"), "internals leaked");
    assert_eq!(rows(&env), [0, 0, 0, 0], "the id must not be recorded when the change was not");
    env.db.conn().execute_batch("DROP TRIGGER broken").unwrap();
    assert_eq!(deliver(&env, "msg_f", &bounce("Permanent")).status(), 200);
    assert_eq!(status_of(&env, FAN), "bounced");
}

#[test]
fn oversized_body_is_413_before_verification() {
    let env = env();
    let big = format!(r#"{{"type":"email.bounced","pad":"{}"}}"#, "x".repeat(MAX_INBOUND_BODY));
    // No signature at all: the size is checked first.
    assert_refused(&post(&env, PATH, &[], big.as_bytes()), 413, "larger than 64 KB");
    // Exactly at the limit is read (and then verified).
    let at_limit = "x".repeat(MAX_INBOUND_BODY);
    assert_refused(&post(&env, PATH, &[], at_limit.as_bytes()), 401, "Missing");
    assert_eq!(rows(&env), [0, 0, 0, 0]);
}

#[test]
fn malformed_json_after_a_valid_signature_is_400() {
    let env = env();
    for body in ["{not json", "[]", r#"{"data":{}}"#, r#"{"type":7}"#, "", "\u{0}"] {
        let res = deliver(&env, "msg_bad", body);
        assert_refused(&res, 400, "not a JSON object");
    }
    assert_eq!(rows(&env), [0, 0, 0, 0], "nothing recorded: a fixed resend must still apply");
}

#[test]
fn unknown_types_are_200_and_ignored() {
    let env = env();
    for ty in ["email.delivered", "email.opened", "email.delivery_delayed", "contact.created", ""] {
        let res = deliver(&env, &format!("msg_{ty}"), &event(ty, "a1", FAN, "Permanent"));
        assert_eq!(res.status(), 200, "{ty}");
    }
    assert_eq!(rows(&env), [0, 0, 0, 0]);
    assert_eq!(status_of(&env, FAN), "subscribed");
}

#[test]
fn unknown_fan_is_200_with_only_the_id_recorded() {
    let env = env();
    let no_tags = serde_json::json!({"type": "email.bounced", "data": {"bounce": {"type": "Permanent"}}}).to_string();
    let cases = [
        event("email.bounced", "a1", "ffffffffffffffffffffffffffffffff", "Permanent"),
        event("email.complained", "nobody", FAN, ""),
        no_tags,
        event("email.bounced", "a1", "not an id!", "Permanent"),
        serde_json::json!({"type": "email.bounced", "data": {"tags": "artist=a1"}}).to_string(),
        serde_json::json!({"type": "email.bounced", "data": "nothing"}).to_string(),
    ];
    let known = deliver(&env, "msg_known", &event("email.delivered", "a1", FAN, ""));
    for (i, body) in cases.iter().enumerate() {
        let res = deliver(&env, &format!("msg_u{i}"), body);
        assert_eq!(res.status(), 200, "{body}");
        assert_eq!(res.body(), known.body(), "the answer must not tell fans apart");
    }
    assert_eq!(rows(&env), [cases.len() as i64, 0, 0, 0]);
    assert_eq!((status_of(&env, FAN), status_of(&env, OTHER_FAN)), ("subscribed".into(), "subscribed".into()));
}

#[test]
fn tags_must_match_both_artist_and_fan() {
    let env = env();
    // a2's fan id under a1, and a1's fan id under a2: nobody.
    deliver(&env, "msg_t1", &event("email.bounced", "a1", OTHER_FAN, "Permanent"));
    deliver(&env, "msg_t2", &event("email.complained", "a2", FAN, ""));
    assert_eq!((status_of(&env, FAN), status_of(&env, OTHER_FAN)), ("subscribed".into(), "subscribed".into()));
    assert_eq!(rows(&env), [2, 0, 0, 0]);
    // Each artist's own pair works, and touches only that fan.
    deliver(&env, "msg_t3", &event("email.complained", "a2", OTHER_FAN, ""));
    assert_eq!((status_of(&env, FAN), status_of(&env, OTHER_FAN)), ("subscribed".into(), "complained".into()));
}

#[test]
fn transient_bounces_suppress_only_at_the_limit() {
    let mut env = env();
    env.set_var("soft_bounce_limit", "3");
    for i in 0..2 {
        env.advance_secs(60);
        assert_eq!(deliver(&env, &format!("msg_s{i}"), &bounce(if i == 0 { "Transient" } else { "Undetermined" })).status(), 200);
        assert_eq!(status_of(&env, FAN), "subscribed", "after {} soft bounces", i + 1);
    }
    assert_eq!(count(&env, "SELECT count(*) FROM mail_events WHERE bounce_type = 'transient'"), 2);
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events"), 0);
    env.advance_secs(60);
    deliver(&env, "msg_s2", &bounce("Transient"));
    assert_eq!(status_of(&env, FAN), "bounced");
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events WHERE kind = 'bounce' AND method = 'provider'"), 1);
    // More soft bounces are recorded, but change nothing more.
    env.advance_secs(60);
    deliver(&env, "msg_s3", &bounce("Transient"));
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events"), 1);
    assert_eq!(count(&env, "SELECT count(*) FROM mail_events"), 4);
}

#[test]
fn soft_bounces_count_only_since_the_last_resubscription() {
    let env = env();
    for i in 0..2 {
        deliver(&env, &format!("msg_a{i}"), &bounce("Transient"));
        env.advance_secs(1);
    }
    // The fan comes back (confirmed_at later than subscribed_at): the old
    // soft bounces no longer count.
    env.db.conn().execute("UPDATE fans SET confirmed_at = ?1 WHERE id = ?2", (env.now_ms(), FAN)).unwrap();
    for i in 0..2 {
        deliver(&env, &format!("msg_b{i}"), &bounce("Transient"));
        env.advance_secs(1);
    }
    assert_eq!(status_of(&env, FAN), "subscribed");
    deliver(&env, "msg_b2", &bounce("Transient"));
    assert_eq!(status_of(&env, FAN), "bounced");
}

#[test]
fn soft_bounces_count_all_when_never_subscribed() {
    let mut env = env();
    env.set_var("soft_bounce_limit", "2");
    env.db.conn().execute("UPDATE fans SET status = 'pending', subscribed_at = NULL WHERE id = ?1", [FAN]).unwrap();
    deliver(&env, "msg_p0", &bounce("Transient"));
    assert_eq!(status_of(&env, FAN), "pending");
    deliver(&env, "msg_p1", &bounce("Transient"));
    assert_eq!(status_of(&env, FAN), "bounced", "a pending fan's confirmation mails bounce too");
}

#[test]
fn complaint_marks_the_fan_complained() {
    let env = env();
    let res = deliver(&env, "msg_c", &event("email.complained", "a1", FAN, ""));
    assert_eq!(res.status(), 200);
    assert_eq!(status_of(&env, FAN), "complained");
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events WHERE kind = 'complaint' AND method = 'provider' AND page_id IS NULL"), 1);
    assert_eq!(count(&env, "SELECT count(*) FROM mail_events WHERE kind = 'complaint' AND bounce_type IS NULL"), 1);
    // A second complaint (another message) is history, not a change.
    deliver(&env, "msg_c2", &event("email.complained", "a1", FAN, ""));
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events"), 1);
    assert_eq!(count(&env, "SELECT count(*) FROM mail_events"), 2);
}

#[test]
fn statuses_never_go_back_and_a_complaint_is_stronger() {
    let env = env();
    env.db.conn().execute("UPDATE fans SET status = 'unsubscribed', unsubscribed_at = 5", []).unwrap();
    // An unsubscribed fan stays unsubscribed on a bounce, hard or soft…
    deliver(&env, "msg_u1", &bounce("Permanent"));
    for i in 0..4 {
        deliver(&env, &format!("msg_u2{i}"), &bounce("Transient"));
    }
    assert_eq!(status_of(&env, FAN), "unsubscribed");
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events"), 0);
    // …and becomes complained on a complaint.
    deliver(&env, "msg_u3", &event("email.complained", "a1", FAN, ""));
    assert_eq!(status_of(&env, FAN), "complained");
    assert_eq!(count(&env, "SELECT unsubscribed_at FROM fans WHERE id = '0123456789abcdef0123456789abcdef'"), 5);
    // A complained fan stays complained whatever follows.
    deliver(&env, "msg_u4", &bounce("Permanent"));
    assert_eq!(status_of(&env, FAN), "complained");
    // A bounced fan who complains is complained.
    env.db.conn().execute("UPDATE fans SET status = 'bounced' WHERE id = ?1", [OTHER_FAN]).unwrap();
    deliver(&env, "msg_u5", &event("email.complained", "a2", OTHER_FAN, ""));
    assert_eq!(status_of(&env, OTHER_FAN), "complained");
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events"), 2);
}

#[test]
fn unconfigured_provider_and_bad_paths_are_404() {
    let mut env = env();
    env.set_var("email_webhook_secrets_empty", "  ");
    let body = bounce("Permanent");
    for path in [
        "/hooks/email/postmark",
        "/hooks/email/empty",
        "/hooks/email/",
        "/hooks/email/Resend",
        "/hooks/email/re_send",
        "/hooks/email/resend/x",
        "/hooks/sms/resend",
    ] {
        let res = post(&env, path, &[], body.as_bytes());
        assert_eq!(res.status(), 404, "{path}");
    }
    let long = format!("/hooks/email/{}", "a".repeat(33));
    assert_eq!(post(&env, &long, &[], b"{}").status(), 404);
    // Names with a dash read the setting with an underscore.
    env.set_var("email_webhook_secrets_my-esp", SECRET_NEW);
    assert_eq!(post(&env, "/hooks/email/my-esp", &[], b"{}").status(), 404);
    env.set_var("email_webhook_secrets_my_esp", SECRET_NEW);
    assert_eq!(post(&env, "/hooks/email/my-esp", &[], b"{}").status(), 401);
    // A trailing slash is the same route.
    assert_eq!(post(&env, "/hooks/email/resend/", &[], b"{}").status(), 401);
}

#[test]
fn misconfigured_secret_is_a_logged_500() {
    let mut env = env();
    env.set_var("email_webhook_secrets_resend", "whsec_!!");
    let res = post(&env, PATH, &[], b"{}");
    assert_eq!(res.status(), 500);
    assert!(!text(&res).contains("whsec"), "{}", text(&res));
    assert!(env.errors.borrow().iter().any(|e| e.contains("email_webhook_secrets_resend")), "{:?}", env.errors.borrow());
}

#[test]
fn only_post_is_allowed() {
    let env = env();
    for m in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD] {
        let res = send(&env, m.clone(), PATH, &[], b"");
        assert_eq!(res.status(), 405, "{m}");
        assert_eq!(res.headers()["allow"], "POST");
    }
}

#[test]
fn bounce_queues_fan_bounced_for_the_artists_endpoint_and_sends_it_signed() {
    let mut env = env();
    let hook = Recorder::start().unwrap();
    env.set_var("webhook_allow_loopback_for_tests", "true");
    let keys = shared::crypto::Keys::parse(DATA_KEYS, INDEX_KEY).unwrap();
    let fan_email = keys.encrypt(b"fan@example.com", shared::crypto::fan_email_context("a1", FAN).as_bytes()).unwrap();
    let secret = Secret::parse(SECRET_OLD).unwrap();
    let sealed = shared::outbox::seal_secret(&keys, "ep1", &secret).unwrap();
    let conn = env.db.conn();
    conn.execute("UPDATE fans SET email_enc = ?1 WHERE id = ?2", [fan_email.as_str(), FAN]).unwrap();
    conn.execute(
        "INSERT INTO webhook_endpoints (id, artist_id, url, events, secret_enc, created_at, updated_at) VALUES ('ep1', 'a1', ?1, 'fan.bounced fan.complained', ?2, 0, 0)",
        [format!("{}/hook", hook.url).as_str(), sealed.as_str()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO webhook_endpoints (id, artist_id, url, events, secret_enc, created_at, updated_at) VALUES ('ep2', 'a2', ?1, '*', ?2, 0, 0)",
        [format!("{}/other", hook.url).as_str(), sealed.as_str()],
    )
    .unwrap();
    drop(conn);
    assert_eq!(deliver(&env, "msg_o", &bounce("Permanent")).status(), 200);
    assert_eq!(count(&env, "SELECT count(*) FROM webhook_messages WHERE type = 'fan.bounced' AND endpoint_id = 'ep1'"), 1);
    assert_eq!(count(&env, "SELECT count(*) FROM webhook_messages"), 1, "another artist's endpoint hears nothing");
    // The first attempt ran after the response (natively: before handle returned).
    let sent = hook.requests();
    assert_eq!(sent.len(), 1, "{:?}", env.errors.borrow());
    let v: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!((v["type"].as_str(), v["data"]["id"].as_str(), v["data"]["status"].as_str()), (Some("fan.bounced"), Some(FAN), Some("bounced")));
    let headers = shared::webhook::Headers {
        id: sent[0].header("webhook-id").unwrap(),
        timestamp: sent[0].header("webhook-timestamp").unwrap(),
        signature: sent[0].header("webhook-signature").unwrap(),
    };
    assert_eq!(shared::webhook::verify(&[secret], Some(headers), &sent[0].body, now_secs(&env)), Ok(()));
    // A replay queues nothing more; a soft bounce of a bounced fan neither.
    deliver(&env, "msg_o", &bounce("Permanent"));
    deliver(&env, "msg_o2", &bounce("Transient"));
    assert_eq!(count(&env, "SELECT count(*) FROM webhook_messages"), 1);
}

#[test]
fn parse_reads_resend_shapes() {
    use crate::{parse, FanRef, Kind};
    let e = parse(bounce("Permanent").as_bytes()).unwrap().unwrap();
    assert_eq!(e.kind, Kind::PermanentBounce);
    assert_eq!(e.email_id.as_deref(), Some("56761188-7520-42d8-8898-ff6fc54ce618"));
    assert_eq!(e.fan, Some(FanRef { artist_id: "a1".into(), fan_id: FAN.into() }));
    for t in ["Transient", "Undetermined", "", "Something new"] {
        assert_eq!(parse(bounce(t).as_bytes()).unwrap().unwrap().kind, Kind::TransientBounce, "{t}");
    }
    assert_eq!(parse(bounce("permanent").as_bytes()).unwrap().unwrap().kind, Kind::PermanentBounce);
    assert_eq!(parse(br#"{"type":"email.sent","data":{}}"#).unwrap(), None);
    // Deep nesting is refused, not a stack overflow.
    let deep = format!(r#"{{"type":"email.bounced","data":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse(deep.as_bytes()).is_err());
}
