//! The webhooks API against the real SQLite engine, with a local receiver
//! that checks signatures the way the Standard Webhooks libraries do, and
//! a second artist with data of their own for every tenancy probe.

use serde_json::{json, Value};
use shared::adapters::native::recorder::{Recorded, Recorder};
use shared::adapters::native::{block_on, NativeEnv};
use shared::http::{Method, Request as HttpRequest};
use shared::webhook::{verify, Headers, Secret};
use shared::{Env, Response};

const DATA_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const INDEX_KEY: &str = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
const NOVA: &str = "sd_nova_token";
const OTHER: &str = "sd_other_token";

struct World {
    env: NativeEnv,
    receiver: Recorder,
}

fn world() -> World {
    let receiver = Recorder::start().unwrap();
    let mut env = NativeEnv::memory().unwrap();
    env.set_var("data_keys", DATA_KEYS).set_var("index_key", INDEX_KEY).set_var("webhook_allow_loopback_for_tests", "true");
    let (h1, h2) = (shared::crypto::sha256_hex(NOVA.as_bytes()), shared::crypto::sha256_hex(OTHER.as_bytes()));
    env.db
        .conn()
        .execute_batch(&format!(
            "INSERT INTO artists VALUES ('a1', 'Nova', 0), ('a2', 'Other', 0);
             INSERT INTO api_tokens (id, artist_id, token_hash, label, created_at) VALUES ('t1', 'a1', '{h1}', 'bot', 0), ('t2', 'a2', '{h2}', 'bot', 0);"
        ))
        .unwrap();
    World { env, receiver }
}

impl World {
    fn call(&self, token: Option<&str>, method: Method, uri: &str, body: Option<Value>) -> (u16, Value) {
        let mut b = HttpRequest::builder().method(method).uri(uri).header("host", "fans.example");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let req = b.body(body.map(|v| v.to_string().into_bytes()).unwrap_or_default()).unwrap();
        let res: Response = block_on(crate::handle(req, &self.env));
        let v = serde_json::from_slice(res.body()).unwrap_or(Value::Null);
        (res.status().as_u16(), v)
    }

    fn create(&self, token: &str, events: Value) -> Value {
        let (s, v) =
            self.call(Some(token), Method::POST, "/api/v1/app/webhooks", Some(json!({"url": format!("{}/hook", self.receiver.url), "events": events})));
        assert_eq!(s, 201, "{v}");
        v
    }

    fn hooks(&self) -> Vec<Recorded> {
        self.receiver.requests()
    }

    fn count(&self, sql: &str) -> i64 {
        self.env.db.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

fn verified(r: &Recorded, secret: &str, now_secs: i64) -> bool {
    let h =
        Headers { id: r.header("webhook-id").unwrap(), timestamp: r.header("webhook-timestamp").unwrap(), signature: r.header("webhook-signature").unwrap() };
    verify(&[Secret::parse(secret).unwrap()], Some(h), &r.body, now_secs).is_ok()
}

#[test]
fn only_a_valid_token_opens_the_api() {
    let w = world();
    let (s, v) = w.call(None, Method::GET, "/api/v1/app/webhooks", None);
    assert_eq!(s, 401, "{v}");
    assert_eq!(w.call(Some("nope"), Method::GET, "/api/v1/app/webhooks", None).0, 401);
    w.env.db.conn().execute_batch("UPDATE api_tokens SET revoked_at = 1 WHERE id = 't1'").unwrap();
    assert_eq!(w.call(Some(NOVA), Method::GET, "/api/v1/app/webhooks", None).0, 401, "revoked");
    assert_eq!(w.call(Some(OTHER), Method::GET, "/api/v1/app/webhooks", None).0, 200);
}

#[test]
fn create_shows_the_secret_once_and_refuses_bad_input_with_its_field() {
    let w = world();
    let v = w.create(NOVA, json!(["fan.subscribed", "fan.unsubscribed"]));
    let secret = v["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(v["events"], json!(["fan.subscribed", "fan.unsubscribed"]));
    let stored: String = w.env.db.conn().query_row("SELECT secret_enc FROM webhook_endpoints", [], |r| r.get(0)).unwrap();
    assert!(!stored.contains(&secret[6..]), "stored encrypted");
    let (_, list) = w.call(Some(NOVA), Method::GET, "/api/v1/app/webhooks", None);
    assert_eq!(list["endpoints"].as_array().unwrap().len(), 1);
    assert!(list["endpoints"][0].get("secret").is_none(), "never shown again");

    let post = |body: Value| w.call(Some(NOVA), Method::POST, "/api/v1/app/webhooks", Some(body));
    for (body, field) in [
        (json!({"url": "https://10.0.0.1/hook"}), "url"),
        (json!({"url": "https://169.254.169.254/latest"}), "url"),
        (json!({"url": "http://hooks.example.com/"}), "url"),
        (json!({"url": "https://localhost/x"}), "url"),
        (json!({"url": "https://hooks.example.com/", "events": ["fan.exploded"]}), "events"),
        (json!({"url": "https://hooks.example.com/", "events": []}), "events"),
        (json!({}), "url"),
    ] {
        let (s, v) = post(body.clone());
        assert_eq!(s, 422, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    assert_eq!(post(json!({"url": "https://hooks.example.com/", "colour": "red"})).0, 422);
    let req = HttpRequest::builder()
        .method(Method::POST)
        .uri("/api/v1/app/webhooks")
        .header("authorization", format!("Bearer {NOVA}"))
        .header("content-type", "text/plain")
        .body(b"x".to_vec())
        .unwrap();
    assert_eq!(block_on(crate::handle(req, &w.env)).status(), 415);
    let req = HttpRequest::builder()
        .method(Method::POST)
        .uri("/api/v1/app/webhooks")
        .header("authorization", format!("Bearer {NOVA}"))
        .header("content-type", "application/json")
        .body(b"{".to_vec())
        .unwrap();
    assert_eq!(block_on(crate::handle(req, &w.env)).status(), 400);
    assert_eq!(w.count("SELECT count(*) FROM webhook_endpoints"), 1, "nothing refused was stored");
    for _ in 1..10 {
        w.create(NOVA, json!("*"));
    }
    let (s, v) = post(json!({"url": "https://hooks.example.com/"}));
    assert_eq!(s, 409, "{v}");
}

#[test]
fn another_artists_endpoints_and_messages_look_missing() {
    let w = world();
    let mine = w.create(NOVA, json!("*"));
    let theirs = w.create(OTHER, json!("*"));
    let (id, their_id) = (mine["id"].as_str().unwrap(), theirs["id"].as_str().unwrap());
    let (s, v) = w.call(Some(NOVA), Method::POST, &format!("/api/v1/app/webhooks/{id}/test"), None);
    assert_eq!(s, 202, "{v}");
    let msg = v["message_id"].as_str().unwrap().to_owned();
    for (method, path) in [
        (Method::GET, format!("/api/v1/app/webhooks/{id}")),
        (Method::PATCH, format!("/api/v1/app/webhooks/{id}")),
        (Method::DELETE, format!("/api/v1/app/webhooks/{id}")),
        (Method::POST, format!("/api/v1/app/webhooks/{id}/rotate")),
        (Method::POST, format!("/api/v1/app/webhooks/{id}/test")),
        (Method::GET, format!("/api/v1/app/webhooks/{id}/messages")),
        (Method::GET, format!("/api/v1/app/webhooks/{id}/messages/{msg}")),
        (Method::POST, format!("/api/v1/app/webhooks/{id}/messages/{msg}/replay")),
        // Their own endpoint, our message.
        (Method::GET, format!("/api/v1/app/webhooks/{their_id}/messages/{msg}")),
        (Method::POST, format!("/api/v1/app/webhooks/{their_id}/messages/{msg}/replay")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"enabled": false}));
        let (s, v) = w.call(Some(OTHER), method.clone(), &path, body);
        assert_eq!(s, 404, "{method} {path}: {v}");
    }
    let (_, list) = w.call(Some(OTHER), Method::GET, "/api/v1/app/webhooks", None);
    assert_eq!(list["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(list["endpoints"][0]["id"], their_id);
    assert_eq!(w.count("SELECT count(*) FROM webhook_endpoints WHERE enabled = 1"), 2, "nothing of ours changed");
    assert_eq!(w.count("SELECT count(*) FROM webhook_messages WHERE status = 'delivered'"), 1);
}

#[test]
fn test_events_arrive_signed_and_rotation_signs_with_both_secrets() {
    let w = world();
    let ep = w.create(NOVA, json!(["fan.subscribed"]));
    let (id, first) = (ep["id"].as_str().unwrap(), ep["secret"].as_str().unwrap().to_owned());
    let (s, v) = w.call(Some(NOVA), Method::POST, &format!("/api/v1/app/webhooks/{id}/test"), None);
    assert_eq!(s, 202, "{v}");
    let now = w.env.now_ms() / 1000;
    let got = w.hooks();
    assert_eq!(got.len(), 1);
    assert!(verified(&got[0], &first, now));
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "test");
    let (_, detail) = w.call(Some(NOVA), Method::GET, &format!("/api/v1/app/webhooks/{id}/messages/{}", v["message_id"].as_str().unwrap()), None);
    assert_eq!(detail["status"], "delivered");
    assert_eq!(detail["attempts_log"][0]["status"], 200);

    let (s, rotated) = w.call(Some(NOVA), Method::POST, &format!("/api/v1/app/webhooks/{id}/rotate"), None);
    assert_eq!(s, 200, "{rotated}");
    let second = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    w.call(Some(NOVA), Method::POST, &format!("/api/v1/app/webhooks/{id}/test"), None);
    let r = w.hooks().pop().unwrap();
    assert!(verified(&r, &first, now) && verified(&r, &second, now), "both sign during the overlap");
    w.env.advance_secs(25 * 3600);
    w.call(Some(NOVA), Method::POST, &format!("/api/v1/app/webhooks/{id}/test"), None);
    let r = w.hooks().pop().unwrap();
    let now = w.env.now_ms() / 1000;
    assert!(verified(&r, &second, now) && !verified(&r, &first, now), "the old one stops after 24 h");
}

#[test]
fn a_failed_message_can_be_replayed_with_its_id_and_a_switched_off_endpoint_refuses() {
    let w = world();
    let ep = w.create(NOVA, json!("*"));
    let id = ep["id"].as_str().unwrap();
    w.receiver.respond_with(500);
    let (_, v) = w.call(Some(NOVA), Method::POST, &format!("/api/v1/app/webhooks/{id}/test"), None);
    let msg = v["message_id"].as_str().unwrap().to_owned();
    let (_, list) = w.call(Some(NOVA), Method::GET, &format!("/api/v1/app/webhooks/{id}/messages?status=pending"), None);
    assert_eq!(list["messages"][0]["attempts"], 1);
    w.receiver.respond_with(200);
    let (s, v) = w.call(Some(NOVA), Method::POST, &format!("/api/v1/app/webhooks/{id}/messages/{msg}/replay"), None);
    assert_eq!(s, 202, "{v}");
    let ids: Vec<String> = w.hooks().iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    assert_eq!(ids, [msg.clone(), msg.clone()]);
    let (_, detail) = w.call(Some(NOVA), Method::GET, &format!("/api/v1/app/webhooks/{id}/messages/{msg}"), None);
    assert_eq!(detail["status"], "delivered");
    assert_eq!(w.call(Some(NOVA), Method::GET, &format!("/api/v1/app/webhooks/{id}/messages?status=nope"), None).0, 400);

    let (s, v) = w.call(Some(NOVA), Method::PATCH, &format!("/api/v1/app/webhooks/{id}"), Some(json!({"enabled": false})));
    assert_eq!((s, v["enabled"].clone(), v["disabled_reason"].clone()), (200, json!(false), json!("artist")));
    assert_eq!(w.call(Some(NOVA), Method::POST, &format!("/api/v1/app/webhooks/{id}/test"), None).0, 409);
    let (s, v) = w.call(Some(NOVA), Method::PATCH, &format!("/api/v1/app/webhooks/{id}"), Some(json!({"enabled": true, "events": ["link.created"]})));
    assert_eq!((s, v["disabled_reason"].clone(), v["events"].clone()), (200, Value::Null, json!(["link.created"])));
    let (s, v) = w.call(Some(NOVA), Method::PATCH, &format!("/api/v1/app/webhooks/{id}"), Some(json!({"url": "https://192.168.1.1/"})));
    assert_eq!(s, 422, "{v}");

    assert_eq!(w.call(Some(NOVA), Method::DELETE, &format!("/api/v1/app/webhooks/{id}"), None).0, 204);
    assert_eq!(w.count("SELECT count(*) FROM webhook_messages"), 0, "its messages went with it");
    assert_eq!(w.count("SELECT count(*) FROM webhook_attempts"), 0);
    assert_eq!(w.call(Some(NOVA), Method::DELETE, &format!("/api/v1/app/webhooks/{id}"), None).0, 404);
    assert_eq!(w.call(Some(NOVA), Method::PUT, &format!("/api/v1/app/webhooks/{id}"), None).0, 405);
}
