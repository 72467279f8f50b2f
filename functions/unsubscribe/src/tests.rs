//! Native tests of the unsubscribe route against the real SQLite engine.

use shared::adapters::native::{block_on, NativeEnv};
use shared::http::{Method, Request as HttpRequest};
use shared::token::{Purpose, TokenKeys};
use shared::Response;

const K_OLD: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const K_NEW: &str = "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=";
const FAN: &str = "0123456789abcdef0123456789abcdef";
/// A real second artist's own fan, so the tenancy test has data on both sides.
const OTHER_FAN: &str = "fedcba9876543210fedcba9876543210";

fn env() -> NativeEnv {
    let mut env = NativeEnv::memory().unwrap();
    // Rotated: t2 signs new links, t1 links stay valid.
    env.set_var("token_keys", &format!("t2:{K_NEW},t1:{K_OLD}"));
    env.db
        .conn()
        .execute_batch(&format!(
            "INSERT INTO artists VALUES ('a1', 'Nova & the Tides', 0);
             INSERT INTO artists VALUES ('a2', 'Other Artist', 0);
             INSERT INTO fans (id, artist_id, email_enc, email_hash, status, consent_version, created_at, updated_at)
               VALUES ('{FAN}', 'a1', 'k1.x', 'h1', 'subscribed', 'v1', 0, 0);
             INSERT INTO fans (id, artist_id, email_enc, email_hash, status, consent_version, created_at, updated_at)
               VALUES ('{OTHER_FAN}', 'a2', 'k1.y', 'h2', 'subscribed', 'v1', 0, 0);"
        ))
        .unwrap();
    env
}

fn token(key: &str, fan: &str, artist: &str) -> String {
    TokenKeys::parse(key).unwrap().sign(Purpose::Unsubscribe, 0, fan, artist).unwrap()
}

fn send(env: &NativeEnv, method: Method, path: &str, body: &[u8]) -> Response {
    let req = HttpRequest::builder().method(method).uri(path).header("content-type", "application/x-www-form-urlencoded").body(body.to_vec()).unwrap();
    block_on(crate::handle(req, env))
}

fn text(res: &Response) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

fn status(env: &NativeEnv) -> String {
    status_of(env, FAN)
}

fn status_of(env: &NativeEnv, fan: &str) -> String {
    env.db.conn().query_row("SELECT status FROM fans WHERE id = ?1", [fan], |r| r.get(0)).unwrap()
}

fn events(env: &NativeEnv) -> Vec<(String, String)> {
    let conn = env.db.conn();
    let mut stmt = conn.prepare("SELECT kind, method FROM consent_events ORDER BY at").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

#[test]
fn get_shows_the_list_and_changes_nothing() {
    let env = env();
    let t = token(&format!("t2:{K_NEW}"), FAN, "a1");
    let res = send(&env, Method::GET, &format!("/u/{t}"), b"");
    assert_eq!(res.status(), 200);
    let html = text(&res);
    assert!(html.contains("Nova &amp; the Tides's list") && html.contains("<form method=\"post\">"), "{html}");
    assert_eq!(status(&env), "subscribed");
    assert!(events(&env).is_empty());
}

#[test]
fn one_click_post_unsubscribes_once_without_redirect() {
    let env = env();
    let t = token(&format!("t2:{K_NEW}"), FAN, "a1");
    for _ in 0..2 {
        let res = send(&env, Method::POST, &format!("/u/{t}"), b"List-Unsubscribe=One-Click");
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("location").is_none());
        assert!(text(&res).contains("unsubscribed"));
    }
    assert_eq!(status(&env), "unsubscribed");
    assert_eq!(events(&env), vec![("unsubscribe".to_owned(), "one-click".to_owned())]);
    let t_at: Option<i64> = env.db.conn().query_row("SELECT unsubscribed_at FROM fans", [], |r| r.get(0)).unwrap();
    assert!(t_at.is_some());
    let res = send(&env, Method::GET, &format!("/u/{t}"), b"");
    assert!(text(&res).contains("not on") && !text(&res).contains("<form"), "already unsubscribed: no button");
}

#[test]
fn page_button_is_recorded_as_link() {
    let env = env();
    let t = token(&format!("t2:{K_NEW}"), FAN, "a1");
    send(&env, Method::POST, &format!("/u/{t}"), b"List-Unsubscribe=One-Click&via=page");
    assert_eq!(events(&env), vec![("unsubscribe".to_owned(), "link".to_owned())]);
}

#[test]
fn old_key_tokens_still_work_after_rotation() {
    let env = env();
    let t = token(&format!("t1:{K_OLD}"), FAN, "a1");
    assert_eq!(send(&env, Method::POST, &format!("/u/{t}"), b"List-Unsubscribe=One-Click").status(), 200);
    assert_eq!(status(&env), "unsubscribed");
}

#[test]
fn bad_tokens_are_400_and_change_nothing() {
    let env = env();
    let good = token(&format!("t2:{K_NEW}"), FAN, "a1");
    let last = if good.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &good[..good.len() - 1]);
    let unknown_key = token(&format!("t9:{K_NEW}"), FAN, "a1");
    let wrong_key = token(&format!("t2:{K_OLD}"), FAN, "a1");
    let confirm_token = TokenKeys::parse(&format!("t2:{K_NEW}")).unwrap().sign(Purpose::Confirm, 0, FAN, "a1").unwrap();
    for bad in [tampered.as_str(), &good[..good.len() - 4], unknown_key.as_str(), wrong_key.as_str(), confirm_token.as_str(), "garbage"] {
        for m in [Method::GET, Method::POST] {
            let res = send(&env, m.clone(), &format!("/u/{bad}"), b"List-Unsubscribe=One-Click");
            assert_eq!(res.status(), 400, "{m} {bad}");
            assert!(text(&res).contains("incomplete or damaged"));
        }
    }
    assert_eq!(status(&env), "subscribed");
    assert_eq!(send(&env, Method::GET, "/u/", b"").status(), 404);
}

#[test]
fn erased_fan_gets_a_plain_200() {
    let env = env();
    let t = token(&format!("t2:{K_NEW}"), FAN, "a1");
    env.db.conn().execute("DELETE FROM fans", []).unwrap();
    for m in [Method::GET, Method::POST] {
        let res = send(&env, m, &format!("/u/{t}"), b"List-Unsubscribe=One-Click");
        assert_eq!(res.status(), 200);
        assert!(text(&res).contains("no longer on Nova"));
    }
}

#[test]
fn another_artists_token_cannot_touch_the_fan() {
    let env = env();
    // Signed for artist a2, which exists and has a fan of its own, but
    // naming a1's fan: a1's fan is untouched, and so is a2's.
    let t = token(&format!("t2:{K_NEW}"), FAN, "a2");
    let res = send(&env, Method::GET, &format!("/u/{t}"), b"");
    assert!(text(&res).contains("Other Artist") && text(&res).contains("no longer on"), "{}", text(&res));
    let res = send(&env, Method::POST, &format!("/u/{t}"), b"List-Unsubscribe=One-Click");
    assert_eq!(res.status(), 200);
    assert_eq!(status(&env), "subscribed");
    assert_eq!(status_of(&env, OTHER_FAN), "subscribed");
    assert!(events(&env).is_empty());
    // The same artist's token for its own fan works.
    let own = token(&format!("t2:{K_NEW}"), OTHER_FAN, "a2");
    send(&env, Method::POST, &format!("/u/{own}"), b"List-Unsubscribe=One-Click");
    assert_eq!((status(&env), status_of(&env, OTHER_FAN)), ("subscribed".into(), "unsubscribed".into()));
}

#[test]
fn resubscribe_after_unsubscribe_keeps_history() {
    // The signup side appends a fresh consent event (see signup's tests);
    // here: unsubscribing twice around a comeback records both exits.
    let env = env();
    let t = token(&format!("t2:{K_NEW}"), FAN, "a1");
    send(&env, Method::POST, &format!("/u/{t}"), b"List-Unsubscribe=One-Click");
    env.db.conn().execute("UPDATE fans SET status = 'subscribed'", []).unwrap();
    send(&env, Method::POST, &format!("/u/{t}"), b"List-Unsubscribe=One-Click");
    assert_eq!(events(&env).len(), 2);
}

#[test]
fn headers_api_gives_rfc8058_values() {
    let mut env = env();
    env.set_var("public_base_url", "https://fans.example/");
    let h = shared::mail::unsubscribe_headers(&env, FAN, "a1").unwrap();
    assert!(h.url.starts_with("https://fans.example/u/t2."), "{}", h.url);
    assert_eq!(h.list_unsubscribe, format!("<{}>", h.url));
    assert_eq!(h.list_unsubscribe_post, "List-Unsubscribe=One-Click");
    let path = h.url.trim_start_matches("https://fans.example");
    assert_eq!(send(&env, Method::POST, path, b"List-Unsubscribe=One-Click").status(), 200);
    assert_eq!(status(&env), "unsubscribed");
}

#[test]
fn wrong_method_is_405_with_allow() {
    let env = env();
    let t = token(&format!("t2:{K_NEW}"), FAN, "a1");
    let res = send(&env, Method::PUT, &format!("/u/{t}"), b"");
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, HEAD, POST");
    assert_eq!(status(&env), "subscribed");
}

#[test]
fn a_bounced_or_complained_fan_keeps_that_status() {
    for kept in ["bounced", "complained"] {
        let env = env();
        env.db.conn().execute("UPDATE fans SET status = ?1", [kept]).unwrap();
        let t = token(&format!("t2:{K_NEW}"), FAN, "a1");
        let res = send(&env, Method::POST, &format!("/u/{t}"), b"List-Unsubscribe=One-Click");
        assert_eq!(res.status(), 200, "they get no mail either way: the answer is the same");
        assert_eq!(status(&env), kept, "a complaint or bounce is not overwritten by a later click");
        assert!(events(&env).is_empty());
    }
}
