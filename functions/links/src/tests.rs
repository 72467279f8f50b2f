//! Native tests of the links function against the real SQLite engine, the
//! in-memory KV and MaxMind's test geo database, with the clock moved by
//! hand. Each test gets its own environment and its own cache.
#![allow(clippy::panic)] // a failing test panics, with the details in the message

use std::path::Path;

use serde_json::Value;
use shared::adapters::native::{block_on, NativeEnv};
use shared::http::{Method, Request as HttpRequest};
use shared::{Kv, Response};

use crate::json::{self, Json};
use crate::link::{check_url, Definition, Platform};
use crate::store::{self, Cache};
use crate::visit::{self, Device};

const TOKEN_A1: &str = "sd_test_token_for_artist_one_0123456789";
const TOKEN_A2: &str = "sd_test_token_for_artist_two_0123456789";
const TOKEN_REVOKED: &str = "sd_test_token_revoked_0123456789";

// Known answers of MaxMind's test database.
const SE_IP: &str = "89.160.20.128";
const GB_IP: &str = "81.2.69.142";
const GEO_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.cache/geo/GeoIP2-City-Test.mmdb");

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/// A link with every feature: an override and a hidden service for SE,
/// a target with its own UTM tag and fragment, and an "other" button.
const NIGHT_DRIVE: &str = r#"{
  "slug": "night-drive", "title": "Night <Drive>", "artwork_url": "https://img.example.com/nd.jpg",
  "targets": [
    {"platform": "spotify", "url": "https://open.spotify.com/album/abc"},
    {"platform": "apple-music", "url": "https://music.apple.com/us/album/night-drive/1",
     "countries": {"se": "https://music.apple.com/se/album/night-drive/1"}},
    {"platform": "youtube-music", "url": "https://music.youtube.com/playlist?list=OLAK5"},
    {"platform": "tidal", "url": "https://tidal.com/album/9", "hidden_in": ["SE"]},
    {"platform": "bandcamp", "url": "https://nova.bandcamp.com/album/night-drive?utm_source=own#tracks"},
    {"platform": "other", "label": "Official store", "url": "https://shop.example.com/nd"}
  ]
}"#;

struct T {
    env: NativeEnv,
    cache: Cache,
}

fn setup() -> T {
    let mut env = NativeEnv::memory().expect("native env");
    env.add_geo_file(Path::new(GEO_FILE)).expect("MaxMind test database (run `make geo-test-data`)");
    let sql = format!(
        "INSERT INTO artists VALUES ('a1', 'Nova & the Tides', 0), ('a2', 'Other Artist', 0);
         INSERT INTO api_tokens (id, artist_id, token_hash, created_at) VALUES ('t1', 'a1', '{}', 0), ('t2', 'a2', '{}', 0);
         INSERT INTO api_tokens (id, artist_id, token_hash, created_at, revoked_at) VALUES ('t3', 'a1', '{}', 0, 1);",
        shared::crypto::sha256_hex(TOKEN_A1.as_bytes()),
        shared::crypto::sha256_hex(TOKEN_A2.as_bytes()),
        shared::crypto::sha256_hex(TOKEN_REVOKED.as_bytes()),
    );
    env.db.conn().execute_batch(&sql).expect("fixtures");
    T { env, cache: Cache::new(store::CACHE_TTL_MS, 16) }
}

fn text(res: &Response) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

fn header<'a>(res: &'a Response, name: &str) -> &'a str {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn json_of(res: &Response) -> Value {
    serde_json::from_slice(res.body()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(res)))
}

impl T {
    fn send(&self, method: Method, uri: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let mut b = HttpRequest::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(body.as_bytes().to_vec()).expect("request");
        // The API's requests reach it through the studio function (router,
        // spin.toml), which calls `api::handle` as this does.
        let api_rest = req.uri().path().strip_prefix(crate::api::PREFIX).filter(|r| r.is_empty() || r.starts_with('/')).map(str::to_owned);
        match api_rest {
            Some(rest) => {
                let (parts, body) = req.into_parts();
                block_on(crate::api::handle(&parts, &body, &rest, &self.env, &self.cache))
            }
            None => block_on(crate::serve(req, &self.env, &self.cache)),
        }
    }

    fn get(&self, uri: &str, headers: &[(&str, &str)]) -> Response {
        self.send(Method::GET, uri, headers, "")
    }

    fn api(&self, method: Method, path: &str, token: &str, body: &str) -> Response {
        let auth = format!("Bearer {token}");
        self.send(method, path, &[("authorization", &auth), ("content-type", "application/json")], body)
    }

    fn create(&self, body: &str) -> Response {
        let res = self.api(Method::POST, "/api/v1/app/links", TOKEN_A1, body);
        assert_eq!(res.status(), 201, "{}", text(&res));
        res
    }

    fn client_at(&mut self, ip: Option<&str>) {
        self.env.client.ip = ip.map(|i| i.parse().expect("ip"));
    }

    fn count(&self, sql: &str) -> i64 {
        self.env.db.conn().query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn kv(&self, key: &str) -> Option<Vec<u8>> {
        block_on(self.env.kv.get(key)).expect("kv")
    }

    fn clicks(&self) -> Vec<(String, String, String, String, String, String, i64)> {
        let conn = self.env.db.conn();
        let mut st = conn
            .prepare("SELECT kind, platform, country, referrer, device, day, count FROM link_stats ORDER BY kind, platform, country, referrer, device")
            .expect("prepare");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    }
}

/// The platform keys of the landing page's buttons, in order.
fn buttons(html: &str) -> Vec<String> {
    html.split(" href=\"/l/").skip(1).map(|s| s.split(['/', '?', '"']).nth(1).unwrap_or("").to_owned()).collect()
}

// ---- The API -------------------------------------------------------------

#[test]
fn create_get_list_and_replace_a_link() {
    let t = setup();
    let res = t.create(NIGHT_DRIVE);
    assert_eq!(header(&res, "location"), "/api/v1/app/links/night-drive");
    let v = json_of(&res);
    assert_eq!(v["slug"], "night-drive");
    assert_eq!(v["path"], "/l/night-drive");
    assert_eq!(v["artist"], "Nova & the Tides", "display name defaults to the account's");
    assert_eq!(v["targets"][1]["countries"]["SE"], "https://music.apple.com/se/album/night-drive/1", "country codes upper-cased");
    assert_eq!(v["created_at"], 1_767_225_600_000_i64);
    assert!(t.kv("link:night-drive").is_some(), "written through to KV");

    let got = t.api(Method::GET, "/api/v1/app/links/night-drive", TOKEN_A1, "");
    assert_eq!(got.status(), 200);
    assert_eq!(json_of(&got), v, "GET answers what POST stored");

    // A fetched link can be sent back as it is, with one change.
    t.env.advance_secs(5);
    let mut edited = v.clone();
    edited["title"] = "Night Drive (Deluxe)".into();
    let res = t.api(Method::PUT, "/api/v1/app/links/night-drive", TOKEN_A1, &edited.to_string());
    assert_eq!(res.status(), 200, "{}", text(&res));
    let after = json_of(&res);
    assert_eq!(after["title"], "Night Drive (Deluxe)");
    assert_eq!(after["created_at"], v["created_at"]);
    assert_eq!(after["updated_at"], 1_767_225_605_000_i64);
    let cached = String::from_utf8(t.kv("link:night-drive").expect("kv")).expect("utf8");
    assert!(cached.contains("Night Drive (Deluxe)"), "KV has the new definition: {cached}");

    let list = json_of(&t.api(Method::GET, "/api/v1/app/links", TOKEN_A1, ""));
    assert_eq!(list["links"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["links"][0]["title"], "Night Drive (Deluxe)");
    assert_eq!(list["next"], Value::Null);
}

#[test]
fn slugs_are_unique_across_artists() {
    let t = setup();
    t.create(NIGHT_DRIVE);
    for token in [TOKEN_A1, TOKEN_A2] {
        let res = t.api(Method::POST, "/api/v1/app/links", token, NIGHT_DRIVE);
        assert_eq!(res.status(), 409, "{}", text(&res));
        let v = json_of(&res);
        assert_eq!((v["error"]["code"].as_str(), v["error"]["field"].as_str()), (Some("conflict"), Some("slug")));
        assert!(v["error"]["message"].as_str().unwrap_or("").contains("already taken"));
    }
    assert_eq!(t.count("SELECT count(*) FROM links"), 1);
}

#[test]
fn list_pages_through_every_link_in_slug_order() {
    let t = setup();
    for i in 0..101 {
        t.create(&format!(r#"{{"slug":"song-{i:03}","title":"Song {i}","targets":[{{"platform":"spotify","url":"https://open.spotify.com/track/{i}"}}]}}"#));
    }
    let first = json_of(&t.api(Method::GET, "/api/v1/app/links", TOKEN_A1, ""));
    assert_eq!(first["links"].as_array().map(Vec::len), Some(100));
    assert_eq!(first["links"][0]["slug"], "song-000");
    assert_eq!(first["next"], "song-099");
    let second = json_of(&t.api(Method::GET, "/api/v1/app/links?after=song-099", TOKEN_A1, ""));
    assert_eq!(second["links"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["links"][0]["slug"], "song-100");
    assert_eq!(second["next"], Value::Null);
    let past = json_of(&t.api(Method::GET, "/api/v1/app/links?after=zzz", TOKEN_A1, ""));
    assert_eq!((past["links"].as_array().map(Vec::len), &past["next"]), (Some(0), &Value::Null));
    // The other artist sees none of them.
    let other = json_of(&t.api(Method::GET, "/api/v1/app/links", TOKEN_A2, ""));
    assert_eq!(other["links"], Value::Array(vec![]));
}

/// Each rejection: the body, the status, the field and words the message
/// must contain. Nothing is stored by any of them.
#[test]
fn invalid_definitions_are_rejected_with_clear_errors() {
    let t = setup();
    let spotify = r#"[{"platform":"spotify","url":"https://open.spotify.com/album/x"}]"#;
    let with_targets = |targets: &str| format!(r#"{{"slug":"ok-slug","title":"T","targets":{targets}}}"#);
    let one = |target: &str| with_targets(&format!("[{target}]"));
    let long_url = format!("https://open.spotify.com/{}", "a".repeat(2100));
    let many_countries = format!(
        "[{}]",
        (0..251).map(|i| format!("\"{}{}\"", (b'A' + (i / 26) as u8 % 26) as char, (b'A' + (i % 26) as u8) as char)).collect::<Vec<_>>().join(",")
    );
    let cases: Vec<(String, u16, &str, &str)> = vec![
        (format!(r#"{{"title":"T","targets":{spotify}}}"#), 422, "slug", "slug is required"),
        (format!(r#"{{"slug":"ab","title":"T","targets":{spotify}}}"#), 422, "slug", "3 to 64 characters"),
        (format!(r#"{{"slug":"{}","title":"T","targets":{spotify}}}"#, "a".repeat(65)), 422, "slug", "3 to 64 characters"),
        (format!(r#"{{"slug":"Night-Drive","title":"T","targets":{spotify}}}"#), 422, "slug", "lower-case"),
        (format!(r#"{{"slug":"night_drive","title":"T","targets":{spotify}}}"#), 422, "slug", "dashes"),
        (format!(r#"{{"slug":"night drive","title":"T","targets":{spotify}}}"#), 422, "slug", "dashes"),
        (format!(r#"{{"slug":7,"title":"T","targets":{spotify}}}"#), 400, "slug", "must be a string"),
        (format!(r#"{{"slug":"ok-slug","targets":{spotify}}}"#), 422, "title", "title is required"),
        (format!(r#"{{"slug":"ok-slug","title":"   ","targets":{spotify}}}"#), 422, "title", "title is required"),
        (format!(r#"{{"slug":"ok-slug","title":"{}","targets":{spotify}}}"#, "x".repeat(121)), 422, "title", "longer than 120"),
        (format!(r#"{{"slug":"ok-slug","title":"a\u0007b","targets":{spotify}}}"#), 422, "title", "control characters"),
        (format!(r#"{{"slug":"ok-slug","title":"T","artwork_url":"http://img.example.com/a.jpg","targets":{spotify}}}"#), 422, "artwork_url", "https://"),
        (format!(r#"{{"slug":"ok-slug","title":"T","auto_redirect":"yes","targets":{spotify}}}"#), 400, "auto_redirect", "true or false"),
        (format!(r#"{{"slug":"ok-slug","title":"T","colour":"red","targets":{spotify}}}"#), 422, "", "Unknown field \"colour\""),
        (r#"{"slug":"ok-slug","title":"T"}"#.to_owned(), 422, "targets", "targets is required"),
        (with_targets("[]"), 422, "targets", "at least one"),
        (with_targets("{}"), 400, "targets", "must be a list"),
        (one(r#"{"platform":"napster","url":"https://napster.com/x"}"#), 422, "targets", "\"napster\" is not one we know"),
        (one(r#"{"url":"https://open.spotify.com/x"}"#), 422, "targets", "targets[0].platform is required"),
        (one(r#"{"platform":"spotify"}"#), 422, "targets", "targets[0].url is required"),
        (one(r#"{"platform":"spotify","url":"http://open.spotify.com/x"}"#), 422, "targets", "must start with https://"),
        (one(r#"{"platform":"spotify","url":"https://user:pw@open.spotify.com/x"}"#), 422, "targets", "user name or password"),
        (one(r#"{"platform":"spotify","url":"https://open.spotify.com:8443/x"}"#), 422, "targets", "port"),
        (one(r#"{"platform":"spotify","url":"https://evil.example.com/x"}"#), 422, "targets", "must be on spotify.com, spotify.link"),
        (one(r#"{"platform":"spotify","url":"https://open.spotify.com.evil.example/x"}"#), 422, "targets", "not open.spotify.com.evil.example"),
        (one(r#"{"platform":"spotify","url":"https://evilspotify.com/x"}"#), 422, "targets", "not evilspotify.com"),
        (one(r#"{"platform":"spotify","url":"https://open.spotify.com\\@evil.example/x"}"#), 422, "targets", "percent-encoded"),
        (one(r#"{"platform":"spotify","url":"https://open.spotify.com/a b"}"#), 422, "targets", "percent-encoded"),
        (one(r#"{"platform":"spotify","url":"https://open.spotify.com/%zz"}"#), 422, "targets", "broken %-escape"),
        (one(&format!(r#"{{"platform":"spotify","url":"{long_url}"}}"#)), 422, "targets", "longer than 2048"),
        (one(r#"{"platform":"other","label":"Shop","url":"https://192.168.1.1/x"}"#), 422, "targets", "not an IP address"),
        (one(r#"{"platform":"other","label":"Shop","url":"https://localhost/x"}"#), 422, "targets", "invalid host name"),
        (one(r#"{"platform":"other","url":"https://shop.example.com/x"}"#), 422, "targets", "label is required"),
        (
            one(r#"{"platform":"other","label":"This label is far too long for a button, really","url":"https://shop.example.com/x"}"#),
            422,
            "targets",
            "longer than 40",
        ),
        (one(r#"{"platform":"spotify","label":"Listen","url":"https://open.spotify.com/x"}"#), 422, "targets", "only for \"other\""),
        (one(r#"{"platform":"spotify","url":"https://open.spotify.com/x","colour":"red"}"#), 422, "targets", "unknown field \"colour\""),
        (
            one(r#"{"platform":"apple-music","url":"https://music.apple.com/us/x","countries":{"DEU":"https://music.apple.com/de/x"}}"#),
            422,
            "targets",
            "\"DEU\" is not a two-letter country code",
        ),
        (
            one(r#"{"platform":"apple-music","url":"https://music.apple.com/us/x","countries":{"DE":"https://evil.example/x"}}"#),
            422,
            "targets",
            "targets[0].countries.DE must be on music.apple.com",
        ),
        (one(r#"{"platform":"apple-music","url":"https://music.apple.com/us/x","countries":["DE"]}"#), 400, "targets", "countries must be an object"),
        (one(r#"{"platform":"tidal","url":"https://tidal.com/x","hidden_in":["JPN"]}"#), 422, "targets", "\"JPN\" is not a two-letter"),
        (one(r#"{"platform":"tidal","url":"https://tidal.com/x","hidden_in":"JP"}"#), 400, "targets", "must be a list"),
        (one(&format!(r#"{{"platform":"tidal","url":"https://tidal.com/x","hidden_in":{many_countries}}}"#)), 422, "targets", "more than 250"),
        (one(r#"{"platform":"tidal","url":"https://tidal.com/x","only_in":["US"]}"#), 422, "targets", "unknown field \"only_in\""),
        (
            with_targets(r#"[{"platform":"spotify","url":"https://open.spotify.com/a"},{"platform":"spotify","url":"https://open.spotify.com/b"}]"#),
            422,
            "targets",
            "targets[1]: spotify is listed twice",
        ),
        ("[1,2]".to_owned(), 400, "", "must be a JSON object"),
        ("{not json".to_owned(), 400, "", "not valid JSON"),
        (r#"{"slug":"a","slug":"b"}"#.to_owned(), 400, "", "duplicate keys"),
    ];
    for (body, status, field, words) in &cases {
        let res = t.api(Method::POST, "/api/v1/app/links", TOKEN_A1, body);
        assert_eq!(res.status(), *status, "{body:.120}: {}", text(&res));
        let v = json_of(&res);
        let message = v["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(words), "{body:.120}: message {message:?} lacks {words:?}");
        let expected_field = if field.is_empty() { Value::Null } else { Value::from(*field) };
        assert_eq!(v["error"]["field"], expected_field, "{body:.120}");
    }
    assert_eq!(t.count("SELECT count(*) FROM links"), 0);
    assert!(t.env.kv.keys().is_empty());
}

#[test]
fn api_request_errors() {
    let t = setup();
    t.create(NIGHT_DRIVE);
    let auth = format!("Bearer {TOKEN_A1}");
    let cases: &[(Method, &str, Option<&str>, &str, u16)] = &[
        (Method::POST, "/api/v1/app/links", Some("text/plain"), NIGHT_DRIVE, 415),
        (Method::POST, "/api/v1/app/links", None, NIGHT_DRIVE, 415),
        (Method::DELETE, "/api/v1/app/links", None, "", 405),
        (Method::DELETE, "/api/v1/app/links/night-drive", None, "", 405),
        (Method::GET, "/api/v1/app/links/night-drive/extra", None, "", 404),
        (Method::GET, "/api/v1/app/links/NOPE", None, "", 404),
        (Method::PUT, "/api/v1/app/links/no-such-link", Some("application/json"), NIGHT_DRIVE, 422),
        (
            Method::PUT,
            "/api/v1/app/links/other-slug",
            Some("application/json"),
            r#"{"title":"T","targets":[{"platform":"spotify","url":"https://open.spotify.com/x"}]}"#,
            404,
        ),
    ];
    for (method, path, ctype, body, status) in cases {
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ct) = ctype {
            headers.push(("content-type", ct));
        }
        let res = t.send(method.clone(), path, &headers, body);
        assert_eq!(res.status(), *status, "{method} {path}: {}", text(&res));
        assert!(json_of(&res)["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        if *status == 405 {
            assert!(header(&res, "allow").contains("GET"), "{path}: Allow header");
        }
    }
    // A body slug that differs from the path's can't rename the link.
    let res = t.api(Method::PUT, "/api/v1/app/links/night-drive", TOKEN_A1, &NIGHT_DRIVE.replace("\"night-drive\"", "\"day-drive\""));
    assert_eq!((res.status().as_u16(), json_of(&res)["error"]["field"].as_str()), (422, Some("slug")));
}

#[test]
fn api_needs_a_valid_token_and_shows_only_the_artists_own_links() {
    let t = setup();
    t.create(NIGHT_DRIVE);
    let (revoked, huge) = (format!("Bearer {TOKEN_REVOKED}"), format!("Bearer {}", "x".repeat(300)));
    let cases: &[(Option<&str>, &str)] = &[
        (None, "Send an artist API token"),
        (Some("Basic dXNlcjpwdw=="), "Send an artist API token"),
        (Some("Bearer "), "Send an artist API token"),
        (Some("Bearer wrong-token"), "not valid or has been revoked"),
        (Some(&revoked), "not valid or has been revoked"),
        (Some(&huge), "Send an artist API token"),
    ];
    for (auth, words) in cases {
        for (method, path) in [(Method::GET, "/api/v1/app/links"), (Method::GET, "/api/v1/app/links/night-drive"), (Method::POST, "/api/v1/app/links")] {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(a) = auth {
                headers.push(("authorization", a));
            }
            let res = t.send(method.clone(), path, &headers, NIGHT_DRIVE);
            assert_eq!(res.status(), 401, "{auth:?} {method} {path}");
            assert!(header(&res, "www-authenticate").starts_with("Bearer"), "{auth:?}: WWW-Authenticate");
            assert!(text(&res).contains(words), "{auth:?}: {}", text(&res));
        }
    }
    // The scheme is case-insensitive.
    assert_eq!(t.send(Method::GET, "/api/v1/app/links", &[("authorization", &format!("bearer {TOKEN_A1}"))], "").status(), 200);

    // Another artist's link answers exactly like a missing one.
    let theirs = t.api(Method::GET, "/api/v1/app/links/night-drive", TOKEN_A2, "");
    let missing = t.api(Method::GET, "/api/v1/app/links/no-such-link", TOKEN_A2, "");
    assert_eq!((theirs.status().as_u16(), text(&theirs)), (404, text(&missing)));
    let edited = NIGHT_DRIVE.replace("Night <Drive>", "Hijacked");
    let res = t.api(Method::PUT, "/api/v1/app/links/night-drive", TOKEN_A2, &edited);
    assert_eq!(res.status(), 404);
    assert_eq!(t.count("SELECT count(*) FROM links WHERE definition LIKE '%Hijacked%'"), 0);
    assert!(!String::from_utf8_lossy(&t.kv("link:night-drive").expect("kv")).contains("Hijacked"));
}

// ---- The fan's side -----------------------------------------------------

#[test]
fn landing_orders_buttons_by_remembered_choice_then_device() {
    let mut t = setup();
    t.create(NIGHT_DRIVE);
    t.client_at(Some(GB_IP));
    let artist_order = ["spotify", "apple-music", "youtube-music", "tidal", "bandcamp", "other"];
    let cases: &[(&str, Option<&str>, &[&str])] = &[
        (IPHONE, None, &["apple-music", "spotify", "youtube-music"]),
        (ANDROID, None, &["youtube-music", "spotify", "apple-music"]),
        (DESKTOP, None, &artist_order[..3]),
        ("SomeTV/1.0", None, &artist_order[..3]),
        (IPHONE, Some("sd_svc=tidal"), &["tidal", "apple-music", "spotify"]),
        (ANDROID, Some("theme=dark; sd_svc=bandcamp"), &["bandcamp", "youtube-music", "spotify"]),
        (DESKTOP, Some("sd_svc=deezer"), &artist_order[..3]),
        (DESKTOP, Some("sd_svc=nonsense"), &artist_order[..3]),
    ];
    for (ua, cookie, first) in cases {
        let mut headers = vec![("user-agent", *ua)];
        if let Some(c) = cookie {
            headers.push(("cookie", c));
        }
        let res = t.get("/l/night-drive", &headers);
        assert_eq!(res.status(), 200);
        let order = buttons(&text(&res));
        assert_eq!(order.len(), artist_order.len(), "{ua:.30} {cookie:?}: {order:?}");
        assert_eq!(&order[..first.len()], *first, "{ua:.30} {cookie:?}");
    }
}

#[test]
fn landing_page_is_small_safe_and_cacheable_only_by_the_browser() {
    let mut t = setup();
    t.create(NIGHT_DRIVE);
    t.client_at(Some(GB_IP));
    let res = t.get("/l/night-drive", &[("user-agent", DESKTOP)]);
    let html = text(&res);
    assert!(html.contains("<h1>Night &lt;Drive&gt;</h1>") && html.contains("Nova &amp; the Tides"), "escaped: {html}");
    assert!(html.contains("<img class=\"art\" src=\"https://img.example.com/nd.jpg\""));
    assert!(html.contains("<span>Official store</span><b>Open</b></a>"));
    assert!(html.contains("<meta property=\"og:title\" content=\"Night &lt;Drive&gt;\">"));
    assert!(html.len() < 8 * 1024, "{} bytes", html.len());
    assert_eq!(header(&res, "cache-control"), "private, max-age=60");
    assert!(header(&res, "vary").contains("Cookie"));
    let csp = header(&res, "content-security-policy");
    assert!(csp.contains("default-src 'none'") && !csp.contains("script"), "{csp}");
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(crate::page::CSS.as_bytes()));
    assert!(crate::page::CSP.contains(&format!("'sha256-{hash}'")), "update the CSP's style hash after editing CSS: sha256-{hash}");
    let head = t.send(Method::HEAD, "/l/night-drive", &[("user-agent", DESKTOP)], "");
    assert_eq!((head.status().as_u16(), head.body().len()), (200, 0));
}

#[test]
fn country_overrides_and_hides_services() {
    let mut t = setup();
    t.create(NIGHT_DRIVE);
    let cases: &[(Option<&str>, bool, &str)] = &[
        // (client, tidal shown, apple music target)
        (Some(SE_IP), false, "https://music.apple.com/se/album/night-drive/1"),
        (Some(GB_IP), true, "https://music.apple.com/us/album/night-drive/1"),
        // Fans we can't locate see every service and the default URL.
        (None, true, "https://music.apple.com/us/album/night-drive/1"),
    ];
    for (ip, tidal, apple) in cases {
        t.client_at(*ip);
        let order = buttons(&text(&t.get("/l/night-drive", &[("user-agent", DESKTOP)])));
        assert_eq!(order.contains(&"tidal".to_owned()), *tidal, "{ip:?}: {order:?}");
        let res = t.get("/l/night-drive/apple-music", &[("user-agent", DESKTOP)]);
        assert_eq!((res.status().as_u16(), header(&res, "location")), (302, *apple), "{ip:?}");
        let res = t.get("/l/night-drive/tidal?utm_source=ig", &[("user-agent", DESKTOP)]);
        let expected = if *tidal { "https://tidal.com/album/9" } else { "/l/night-drive?utm_source=ig" };
        assert_eq!(header(&res, "location"), expected, "{ip:?}: a hidden service sends the fan back to choose");
    }
    // Only clicks that reached a service were counted, with their country.
    assert_eq!(t.count("SELECT sum(count) FROM link_stats WHERE kind = 'click' AND platform = 'tidal'"), 2);
    assert_eq!(t.count("SELECT count(*) FROM link_stats WHERE kind = 'click' AND platform = 'tidal' AND country = 'SE'"), 0);
    assert_eq!(t.count("SELECT sum(count) FROM link_stats WHERE kind = 'click' AND country = 'SE'"), 1);
}

#[test]
fn utm_tags_pass_through_where_the_platform_takes_them() {
    let mut t = setup();
    t.create(NIGHT_DRIVE);
    t.client_at(Some(GB_IP));
    let q = "?utm_campaign=spring%20tour&fbclid=abc&utm_source=ig&utm_source=second&utm_term=&utm_content=".to_owned() + &"x".repeat(101);
    let html = text(&t.get(&format!("/l/night-drive{q}"), &[("user-agent", DESKTOP), ("referer", "https://l.instagram.com/?u=x")]));
    assert!(html.contains("href=\"/l/night-drive/spotify?utm_source=ig&amp;utm_campaign=spring%20tour&amp;ref=l.instagram.com\""), "{html}");
    let cases: &[(&str, &str)] = &[
        ("spotify", "https://open.spotify.com/album/abc?utm_source=ig&utm_campaign=spring%20tour"),
        // Apple Music and YouTube Music links carry no UTM tags.
        ("apple-music", "https://music.apple.com/us/album/night-drive/1"),
        ("youtube-music", "https://music.youtube.com/playlist?list=OLAK5"),
        // The artist's own utm_source wins; the rest go before the fragment.
        ("bandcamp", "https://nova.bandcamp.com/album/night-drive?utm_source=own&utm_campaign=spring%20tour#tracks"),
        ("other", "https://shop.example.com/nd?utm_source=ig&utm_campaign=spring%20tour"),
    ];
    for (platform, location) in cases {
        let res = t.get(&format!("/l/night-drive/{platform}{q}&ref=l.instagram.com"), &[("user-agent", DESKTOP)]);
        assert_eq!(header(&res, "location"), *location, "{platform}");
    }
    assert_eq!(header(&t.get("/l/night-drive/spotify", &[("user-agent", DESKTOP)]), "location"), "https://open.spotify.com/album/abc");
}

#[test]
fn redirect_counts_remembers_and_is_never_cached() {
    let mut t = setup();
    t.create(NIGHT_DRIVE);
    t.client_at(Some(GB_IP));
    let res = t.get("/l/night-drive/spotify", &[("user-agent", IPHONE)]);
    assert_eq!(res.status(), 302);
    assert_eq!(header(&res, "cache-control"), "no-store");
    assert_eq!(header(&res, "set-cookie"), "sd_svc=spotify; Max-Age=7776000; Path=/l/; Secure; HttpOnly; SameSite=Lax");
    assert!(res.body().is_empty());
    let head = t.send(Method::HEAD, "/l/night-drive/spotify", &[("user-agent", IPHONE)], "");
    assert_eq!((head.status().as_u16(), header(&head, "location")), (302, "https://open.spotify.com/album/abc"));
    assert_eq!(header(&head, "set-cookie"), "", "HEAD (link checkers) is neither counted nor remembered");
    assert_eq!(t.count("SELECT sum(count) FROM link_stats"), 1);
}

#[test]
fn the_other_button_is_counted_but_never_remembered() {
    let t = setup();
    t.create(NIGHT_DRIVE);
    let res = t.get("/l/night-drive/other", &[("user-agent", IPHONE)]);
    assert_eq!(res.status(), 302);
    assert_eq!(header(&res, "set-cookie"), "", "an artist's own button means nothing on another link");
    assert_eq!(t.count("SELECT sum(count) FROM link_stats WHERE platform = 'other'"), 1);
    // A cookie saying "other" (set before this rule) is ignored.
    let page = t.get("/l/night-drive", &[("user-agent", DESKTOP), ("cookie", "sd_svc=other")]);
    let html = String::from_utf8_lossy(page.body()).into_owned();
    let (shop, spotify) = (html.find("Official store").unwrap(), html.find("Spotify").unwrap());
    assert!(spotify < shop, "\"other\" must not come first");
}

#[test]
fn auto_redirect_sends_returning_fans_to_their_service() {
    let mut t = setup();
    t.create(&NIGHT_DRIVE.replace("\"title\"", "\"auto_redirect\": true, \"title\""));
    t.client_at(Some(SE_IP));
    let cases: &[(&str, &str, Option<&str>, &str)] = &[
        ("/l/night-drive", DESKTOP, Some("sd_svc=apple-music"), "https://music.apple.com/se/album/night-drive/1"),
        ("/l/night-drive?utm_source=ig", DESKTOP, Some("sd_svc=spotify"), "https://open.spotify.com/album/abc?utm_source=ig"),
        // Page instead: no choice yet, a choice this link lacks or hides here,
        // `?choose`, or a crawler.
        ("/l/night-drive", DESKTOP, None, ""),
        ("/l/night-drive", DESKTOP, Some("sd_svc=deezer"), ""),
        ("/l/night-drive", DESKTOP, Some("sd_svc=tidal"), ""),
        ("/l/night-drive?choose", DESKTOP, Some("sd_svc=spotify"), ""),
        ("/l/night-drive", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", Some("sd_svc=spotify"), ""),
    ];
    for (path, ua, cookie, location) in cases {
        let mut headers = vec![("user-agent", *ua)];
        if let Some(c) = cookie {
            headers.push(("cookie", c));
        }
        let res = t.get(path, &headers);
        if location.is_empty() {
            assert_eq!(res.status(), 200, "{path} {cookie:?}");
        } else {
            assert_eq!((res.status().as_u16(), header(&res, "location")), (302, *location), "{path} {cookie:?}");
            assert_eq!(header(&res, "cache-control"), "no-store");
        }
    }
    assert_eq!(t.count("SELECT sum(count) FROM link_stats WHERE kind = 'click'"), 2);
    assert_eq!(t.count("SELECT sum(count) FROM link_stats WHERE kind = 'view'"), 4);
}

#[test]
fn bots_get_open_graph_tags_and_are_never_counted() {
    let mut t = setup();
    t.create(NIGHT_DRIVE);
    t.client_at(Some(GB_IP));
    let bots = [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "WhatsApp/2.23.20.0",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "TelegramBot (like TwitterBot)",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
        "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
        "curl/8.5.0",
        "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 (compatible; Examplebot/1.0)",
        "",
    ];
    for ua in bots {
        assert!(visit::bot_of(ua.as_bytes()), "{ua:?} not recognised");
        let res = t.get("/l/night-drive", &[("user-agent", ua)]);
        let html = text(&res);
        assert_eq!(res.status(), 200);
        for tag in ["og:title", "og:description", "og:image", "twitter:card"] {
            assert!(html.contains(tag), "{ua:?}: no {tag}");
        }
        let click = t.get("/l/night-drive/spotify", &[("user-agent", ua)]);
        assert_eq!(click.status(), 302);
        assert_eq!(header(&click, "set-cookie"), "");
    }
    assert_eq!(t.count("SELECT count(*) FROM link_stats"), 0, "bots were counted");
    let people = [
        IPHONE,
        ANDROID,
        DESKTOP,
        "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 320.0.0.0",
    ];
    for ua in people {
        assert!(!visit::bot_of(ua.as_bytes()), "{ua:?} taken for a bot");
    }
}

#[test]
fn device_classes() {
    let cases = [
        (IPHONE, Device::Ios),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", Device::Ios),
        (ANDROID, Device::Android),
        (DESKTOP, Device::Desktop),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15", Device::Desktop),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", Device::Desktop),
        ("Roku/DVP-13.0", Device::Other),
        ("", Device::Other),
    ];
    for (ua, device) in cases {
        assert_eq!(visit::device_of(ua.as_bytes()), device, "{ua}");
    }
}

#[test]
fn clicks_and_views_are_counted_per_dimension_and_nothing_else_is_kept() {
    let mut t = setup();
    t.create(NIGHT_DRIVE);
    let ua_marker = "UniqueBrowserMarker/9.9";
    let iphone = format!("{IPHONE} {ua_marker}");
    t.client_at(Some(SE_IP));
    for _ in 0..3 {
        t.get("/l/night-drive/spotify?ref=l.instagram.com", &[("user-agent", &iphone), ("cookie", "sd_svc=spotify; session=secret-cookie-value")]);
    }
    t.get("/l/night-drive/spotify", &[("user-agent", ANDROID), ("referer", "https://www.Example.org/post?id=1")]);
    t.get("/l/night-drive/apple-music", &[("user-agent", &iphone), ("host", "links.example"), ("referer", "https://links.example/l/night-drive")]);
    t.client_at(Some(GB_IP));
    t.get("/l/night-drive", &[("user-agent", DESKTOP), ("referer", "android-app://com.google.android.gm/")]);
    t.get("/l/night-drive", &[("user-agent", DESKTOP), ("referer", "not a url")]);
    t.get("/l/night-drive", &[("user-agent", DESKTOP), ("referer", "http://198.51.100.7:8080/page")]);
    t.env.advance_secs(24 * 3600);
    t.get("/l/night-drive/spotify", &[("user-agent", DESKTOP)]);
    let s = |v: &str| v.to_owned();
    assert_eq!(
        t.clicks(),
        vec![
            (s("click"), s("apple-music"), s("SE"), s(""), s("ios"), s("2026-01-01"), 1),
            (s("click"), s("spotify"), s("GB"), s(""), s("desktop"), s("2026-01-02"), 1),
            (s("click"), s("spotify"), s("SE"), s("example.org"), s("android"), s("2026-01-01"), 1),
            (s("click"), s("spotify"), s("SE"), s("l.instagram.com"), s("ios"), s("2026-01-01"), 3),
            (s("view"), s(""), s("GB"), s(""), s("desktop"), s("2026-01-01"), 2),
            (s("view"), s(""), s("GB"), s("com.google.android.gm"), s("desktop"), s("2026-01-01"), 1),
        ]
    );
    // No address, user agent or cookie anywhere in the database or KV.
    let conn = t.env.db.conn();
    let dump: String = conn
        .prepare("SELECT group_concat(quote(link_id) || kind || platform || country || referrer || device || day) FROM link_stats")
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .expect("dump");
    drop(conn);
    let kv: Vec<u8> = t.env.kv.keys().iter().flat_map(|k| t.kv(k).unwrap_or_default()).collect();
    for needle in [SE_IP, GB_IP, "198.51.100.7", ua_marker, "Mozilla", "secret-cookie-value", "Pixel"] {
        assert!(!dump.contains(needle) && !String::from_utf8_lossy(&kv).contains(needle), "{needle} stored");
    }
}

#[test]
fn unknown_or_malformed_links_are_a_real_404() {
    let t = setup();
    t.create(NIGHT_DRIVE);
    for path in [
        "/l/no-such-link",
        "/l/no-such-link/spotify",
        "/l/Night-Drive",
        "/l/ab",
        "/l/",
        "/l/night-drive/napster",
        "/l/night-drive/spotify/x",
        "/elsewhere",
        "/l/night%20drive",
    ] {
        let res = t.get(path, &[("user-agent", DESKTOP)]);
        assert_eq!(res.status(), 404, "{path}");
        assert!(text(&res).contains("Link not found"), "{path}");
        assert_eq!(header(&res, "content-type"), "text/html; charset=utf-8");
    }
    let head = t.send(Method::HEAD, "/l/no-such-link", &[], "");
    assert_eq!((head.status().as_u16(), head.body().len()), (404, 0));
    let post = t.send(Method::POST, "/l/night-drive", &[], "x");
    assert_eq!((post.status().as_u16(), header(&post, "allow")), (405, "GET, HEAD"));
    // A trailing slash is the landing page.
    assert_eq!(t.get("/l/night-drive/", &[("user-agent", DESKTOP)]).status(), 200);
    assert_eq!(t.count("SELECT count(*) FROM link_stats WHERE kind = 'click'"), 0);
}

// ---- Reading through the cache, KV and the database -----------------------

const DIRECT_DEF: &str = r#"{"slug":"from-db","title":"Straight from the database","artist":"Nova","auto_redirect":false,"targets":[{"platform":"deezer","url":"https://www.deezer.com/album/1"}]}"#;

fn insert_direct(t: &T, def: &str) {
    t.env
        .db
        .conn()
        .execute("INSERT INTO links (id, artist_id, slug, definition, created_at, updated_at) VALUES ('l-db', 'a1', 'from-db', ?1, 0, 0)", [def])
        .expect("insert");
}

#[test]
fn kv_miss_falls_back_to_the_database_and_refills_kv() {
    let t = setup();
    insert_direct(&t, DIRECT_DEF);
    assert!(t.kv("link:from-db").is_none());
    let res = t.get("/l/from-db", &[("user-agent", DESKTOP)]);
    assert_eq!(res.status(), 200);
    assert!(text(&res).contains("Straight from the database"));
    let cached = t.kv("link:from-db").expect("KV refilled");
    let link = crate::link::Link::from_cached(&cached).expect("refilled entry parses");
    assert_eq!((link.id.as_str(), link.artist_id.as_str(), link.def.slug.as_str()), ("l-db", "a1", "from-db"));
    // The refill expires sooner than a write-through (see REFILL_TTL_SECS).
    t.env.advance_secs(i64::from(store::REFILL_TTL_SECS) + 1);
    assert!(t.kv("link:from-db").is_none());
}

#[test]
fn a_cache_hit_touches_neither_kv_nor_the_database() {
    let t = setup();
    t.create(NIGHT_DRIVE);
    assert_eq!(t.get("/l/night-drive", &[("user-agent", DESKTOP)]).status(), 200);
    // Take both backends away: within the TTL nothing notices.
    block_on(t.env.kv.delete("link:night-drive")).expect("kv");
    t.env.db.conn().execute_batch("DROP TABLE link_stats; DROP TABLE links;").expect("drop");
    t.env.advance_secs(29);
    assert_eq!(t.get("/l/night-drive", &[("user-agent", DESKTOP)]).status(), 200);
    assert_eq!(t.get("/l/night-drive/spotify", &[("user-agent", DESKTOP)]).status(), 302);
    assert!(t.env.errors.borrow().iter().all(|e| e.contains("deferred write")), "only the counters failed: {:?}", t.env.errors.borrow());
    // Past the TTL the read goes through and finds nothing to read.
    t.env.advance_secs(2);
    assert_eq!(t.get("/l/night-drive", &[("user-agent", DESKTOP)]).status(), 503);
}

#[test]
fn cache_entries_live_thirty_seconds() {
    let t = setup();
    t.create(NIGHT_DRIVE);
    assert!(text(&t.get("/l/night-drive", &[])).contains("Night &lt;Drive&gt;"));
    // Another isolate changed the link: KV has the new definition.
    let newer = String::from_utf8(t.kv("link:night-drive").expect("kv")).expect("utf8").replace("Night <Drive>", "Night Drive v2");
    block_on(t.env.kv.put("link:night-drive", newer.as_bytes(), None)).expect("kv");
    t.env.advance_secs(29);
    assert!(text(&t.get("/l/night-drive", &[])).contains("Night &lt;Drive&gt;"), "within the TTL the cached copy answers");
    t.env.advance_secs(1);
    assert!(text(&t.get("/l/night-drive", &[])).contains("Night Drive v2"), "after 30 s KV is read again");

    // Misses are cached too, for the same time.
    assert_eq!(t.get("/l/from-db", &[]).status(), 404);
    insert_direct(&t, DIRECT_DEF);
    assert_eq!(t.get("/l/from-db", &[]).status(), 404);
    t.env.advance_secs(30);
    assert_eq!(t.get("/l/from-db", &[]).status(), 200);
}

#[test]
fn an_api_change_is_seen_at_once_by_the_isolate_that_made_it() {
    let t = setup();
    assert_eq!(t.get("/l/night-drive", &[]).status(), 404, "cached as missing");
    t.create(NIGHT_DRIVE);
    assert_eq!(t.get("/l/night-drive", &[]).status(), 200);
    let v = json_of(&t.api(Method::GET, "/api/v1/app/links/night-drive", TOKEN_A1, ""));
    let mut edited = v.clone();
    edited["title"] = "Renamed".into();
    t.api(Method::PUT, "/api/v1/app/links/night-drive", TOKEN_A1, &edited.to_string());
    assert!(text(&t.get("/l/night-drive", &[])).contains("<h1>Renamed</h1>"));
}

#[test]
fn a_damaged_kv_entry_is_logged_and_read_from_the_database() {
    let t = setup();
    insert_direct(&t, DIRECT_DEF);
    block_on(t.env.kv.put("link:from-db", b"{not json", None)).expect("kv");
    assert_eq!(t.get("/l/from-db", &[]).status(), 200);
    assert!(t.env.errors.borrow().iter().any(|e| e.contains("KV entry for from-db")));
}

// ---- Building blocks --------------------------------------------------------

#[test]
fn definitions_survive_their_json_round_trip() {
    let v = json::parse(NIGHT_DRIVE.as_bytes()).expect("json");
    let def = Definition::from_json(&v, None).expect("valid");
    let again = Definition::from_json(&json::parse(def.to_json().as_bytes()).expect("json"), None).expect("valid");
    assert_eq!(def, again);
    let tidal = def.targets.iter().find(|t| t.platform == Platform::Tidal).expect("tidal");
    assert_eq!(tidal.hidden_in.len(), 1);
    serde_json::from_str::<Value>(&def.to_json()).expect("our writer makes JSON serde_json reads");
}

#[test]
fn json_reader_accepts_json_and_refuses_the_rest() {
    let good: &[(&str, Json)] = &[
        ("null", Json::Null),
        (" true ", Json::Bool(true)),
        ("-1.5e+3", Json::Number("-1.5e+3".into())),
        (r#""a\"b\\c\/\n\u00e9\ud83c\udfb5""#, Json::String("a\"b\\c/\né🎵".into())),
        ("\"ünïcode\"", Json::String("ünïcode".into())),
        (
            r#"{"a":[1,{"b":false}],"c":{}}"#,
            Json::Object(vec![
                ("a".into(), Json::Array(vec![Json::Number("1".into()), Json::Object(vec![("b".into(), Json::Bool(false))])])),
                ("c".into(), Json::Object(vec![])),
            ]),
        ),
    ];
    for (text, expected) in good {
        assert_eq!(json::parse(text.as_bytes()).as_ref(), Ok(expected), "{text}");
        serde_json::from_str::<Value>(text).unwrap_or_else(|e| panic!("{text} is not JSON after all: {e}"));
    }
    let deep = "[".repeat(40) + &"]".repeat(40);
    let bad = [
        "",
        "tru",
        "01",
        "1.",
        "-",
        "1e",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "\"unterminated",
        "\"tab\tinside\"",
        "\"\\x\"",
        "\"\\ud83c\"",
        "\"\\ud83c\\u0041\"",
        "\"\\u12\"",
        "[1] 2",
        "{\"a\":1,\"a\":2}",
        &deep,
    ];
    for text in bad {
        assert!(json::parse(text.as_bytes()).is_err(), "{text:?} accepted");
    }
    assert!(json::parse(b"\"\xff\"").is_err(), "invalid UTF-8 accepted");
    let mut out = String::new();
    json::write_str(&mut out, "q\"b\\n\n\u{1}é");
    assert_eq!(out, r#""q\"b\\n\n\u0001é""#);
}

#[test]
fn url_checks() {
    let spotify = &["spotify.com", "spotify.link"][..];
    let ok: &[(&str, &[&str], &str)] = &[
        ("https://open.spotify.com/album/x?si=1#t", spotify, "https://open.spotify.com/album/x?si=1#t"),
        ("HTTPS://Open.Spotify.COM/Album/X", spotify, "https://open.spotify.com/Album/X"),
        ("https://spotify.link/abc", spotify, "https://spotify.link/abc"),
        ("https://www.youtube.com/@nova", &["youtube.com"], "https://www.youtube.com/@nova"),
        ("https://shop.example.com", &[], "https://shop.example.com"),
        ("https://xn--bcher-kva.example/%C3%A9", &[], "https://xn--bcher-kva.example/%C3%A9"),
    ];
    for (url, hosts, expected) in ok {
        assert_eq!(check_url(url, hosts).as_deref(), Ok(*expected), "{url}");
    }
    let bad: &[&str] = &[
        "ftp://open.spotify.com/x",
        "//open.spotify.com/x",
        "https://",
        "https:///x",
        "https://open.spotify.com:443/x",
        "https://a@open.spotify.com/x",
        "https://open.spotify.com/\"x",
        "https://open.spotify.com/<x>",
        "https://spotify.com.evil.example/",
        "https://-bad.spotify.com/x",
        "https://open..spotify.com/x",
        "https://[::1]/x",
        "https://10.0.0.1/x",
        "https://open.spotify.com./x",
        "javascript:alert(1)",
        "https://open.spotify.com/\u{e9}",
    ];
    for url in bad {
        assert!(check_url(url, spotify).is_err(), "{url} accepted");
    }
}

#[test]
fn utc_days() {
    for (ms, day) in
        [(0, "1970-01-01"), (1_767_225_600_000, "2026-01-01"), (951_782_400_000, "2000-02-29"), (1_767_225_599_999, "2025-12-31"), (-1, "1969-12-31")]
    {
        assert_eq!(store::utc_day(ms), day, "{ms}");
    }
}

/// Link rows written straight into the database (the demo seed, the e2e
/// fixtures) skip the API, so their definitions are checked here.
#[test]
fn seeded_definitions_are_valid() {
    for file in ["tools/seed-demo.sql", "tests/e2e/fixtures.sql"] {
        let sql = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(file)).expect(file);
        let defs: Vec<&str> = sql.split("'{\"slug\"").skip(1).map(|rest| rest.split("}'").next().unwrap_or("")).collect();
        assert!(!defs.is_empty(), "{file}: no link definitions found");
        for d in defs {
            let text = format!("{{\"slug\"{d}}}");
            let v = json::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}: {text}"));
            Definition::from_json(&v, None).unwrap_or_else(|e| panic!("{file}: {}: {text}", e.message));
        }
    }
}

/// The native environment with Workers' timing for deferred writes: they
/// wait in a queue until the test runs them, while more requests arrive.
type Task = Box<dyn FnMut() -> Vec<shared::sql::OwnedStmt>>;

struct Later {
    env: NativeEnv,
    queued: std::cell::RefCell<Vec<Task>>,
    /// Statements in the last batch `step` wrote.
    statements: std::cell::RefCell<usize>,
    /// Spin's side: the country costs a lookup, `country_later` waits here.
    spin: Option<SpinLike>,
}

#[derive(Default)]
struct SpinLike {
    lookups: std::cell::Cell<usize>,
    want_country: std::cell::RefCell<Vec<shared::env::CountryWaiter>>,
}

impl Later {
    fn new(env: NativeEnv) -> Later {
        Later { env, queued: Default::default(), statements: Default::default(), spin: None }
    }

    /// What Spin's adapter does after the response, before deferred work.
    fn locate_waiting(&self) {
        let waiting = std::mem::take(&mut *self.spin.as_ref().expect("spin-like").want_country.borrow_mut());
        let country = shared::Env::country(self);
        for then in waiting {
            then(country.clone());
        }
    }
}

impl shared::Env for Later {
    type Db = shared::adapters::native::SqliteDb;
    type Kv = shared::adapters::native::MemoryKv;
    type Later = NativeEnv;
    fn db(&self) -> &Self::Db {
        self.env.db()
    }
    fn kv(&self) -> &Self::Kv {
        self.env.kv()
    }
    fn later(&self) -> NativeEnv {
        self.env.later()
    }
    fn var(&self, name: &str) -> Option<String> {
        self.env.var(name)
    }
    fn now_ms(&self) -> i64 {
        self.env.now_ms()
    }
    fn random(&self, buf: &mut [u8]) -> Result<(), shared::Error> {
        self.env.random(buf)
    }
    fn client(&self) -> &shared::Client {
        self.env.client()
    }
    fn place(&self) -> shared::geo::Place {
        if let Some(s) = &self.spin {
            s.lookups.set(s.lookups.get() + 1);
        }
        self.env.place()
    }
    fn country_costs_io(&self) -> bool {
        self.spin.is_some()
    }
    fn country_later(&self, then: impl FnOnce(Option<String>) + 'static) {
        match &self.spin {
            Some(s) => s.want_country.borrow_mut().push(Box::new(then)),
            None => then(shared::Env::country(self)),
        }
    }
    fn geo_attribution(&self) -> Option<(&'static str, &'static str)> {
        None
    }
    async fn fetch(&self, req: shared::Request) -> Result<Response, shared::Error> {
        self.env.fetch(req).await
    }
    async fn fetch_untrusted(&self, req: shared::Request, timeout_ms: u32) -> Result<Response, shared::Error> {
        self.env.fetch_untrusted(req, timeout_ms).await
    }
    async fn sleep_ms(&self, ms: u32) {
        self.env.sleep_ms(ms).await
    }
    fn fetch_later(&self, req: shared::Request, on_failure: Vec<shared::sql::OwnedStmt>) {
        self.env.fetch_later(req, on_failure)
    }
    fn defer(&self, work: impl std::future::Future<Output = ()> + 'static) {
        self.env.defer(work)
    }
    fn defer_writes(&self, next: impl FnMut() -> Vec<shared::sql::OwnedStmt> + 'static) {
        self.queued.borrow_mut().push(Box::new(next));
    }
    fn log_error(&self, msg: &str) {
        self.env.log_error(msg)
    }
}

impl Later {
    /// Calls queued task `i` once and writes its batch; how many counter
    /// rows it carried (9 parameters each).
    fn step(&self, i: usize) -> usize {
        let stmts = (self.queued.borrow_mut()[i])();
        if !stmts.is_empty() {
            block_on(shared::env::write_owned(shared::Env::db(&self.env), &stmts)).expect("write");
        }
        *self.statements.borrow_mut() = stmts.len();
        stmts.iter().map(|s| s.params.len() / 9).sum()
    }
}

#[test]
fn clicks_that_arrive_during_a_write_leave_in_one_batch() {
    let t = setup();
    t.create(NIGHT_DRIVE);
    let later = Later::new(t.env);
    let click = |path: &str| {
        let req = HttpRequest::get(format!("/l/night-drive/{path}")).header("user-agent", IPHONE).body(Vec::new()).expect("request");
        assert_eq!(block_on(crate::serve(req, &later, &t.cache)).status(), 302);
    };
    let total = || later.env.db.conn().query_row("SELECT coalesce(sum(count), 0) FROM link_stats", [], |r| r.get::<_, i64>(0)).expect("sum");

    for _ in 0..5 {
        click("spotify");
    }
    click("tidal");
    assert_eq!(later.queued.borrow().len(), 1, "one write task for the whole burst");
    assert_eq!(total(), 0, "nothing is written before the response");
    assert_eq!(later.step(0), 2, "one row per counter, not per click");
    assert_eq!(*later.statements.borrow(), 1, "both rows in one statement");
    assert_eq!(later.env.db.conn().query_row("SELECT count FROM link_stats WHERE platform = 'spotify'", [], |r| r.get::<_, i64>(0)).expect("row"), 5);
    click("spotify"); // while the task is still running: it takes this one too
    assert_eq!(later.step(0), 1);
    assert_eq!(later.step(0), 0, "nothing left: the task ends");
    assert_eq!(total(), 7);

    // Under endless traffic a task hands over after MAX_BATCHES batches
    // and the next click starts a fresh one; no click is left behind.
    click("spotify");
    assert_eq!(later.queued.borrow().len(), 2);
    for _ in 0..store::MAX_BATCHES {
        assert_eq!(later.step(1), 1);
        click("spotify");
    }
    assert_eq!(later.queued.borrow().len(), 3, "the click after the hand-over started a new task");
    assert_eq!(later.step(1), 0, "the old task has ended");
    while later.step(2) > 0 {}
    assert_eq!(total(), 7 + 1 + i64::from(store::MAX_BATCHES));

    // Many counters: as many rows per statement as D1 allows parameters.
    for i in 0..store::ROWS_PER_STATEMENT + 1 {
        click(&format!("spotify?ref=r{i}.example.org"));
    }
    assert_eq!(later.step(3), store::ROWS_PER_STATEMENT + 1);
    assert_eq!(*later.statements.borrow(), 2);
    assert_eq!(
        later.env.db.conn().query_row("SELECT count(*) FROM link_stats WHERE referrer LIKE 'r%.example.org'", [], |r| r.get::<_, i64>(0)).expect("rows"),
        12
    );
}

#[test]
fn needles_are_found_anywhere_and_only_where_accepted() {
    const N: visit::Needles = visit::Needles::new(&["bot/", "spider", "b"]);
    assert!(N.found_in(b"a spider"));
    assert!(N.found_in(b"A SpIdEr!"), "ASCII case is ignored");
    assert!(N.found_in(b"xbot/"));
    assert!(N.found_in(b"b"));
    assert!(N.found_in(b"xB"), "a one-byte needle at the very end");
    assert!(!N.found_in(b""));
    assert!(!N.found_in(b"spide"));
    assert!(!N.found_in(b"ACDE"));
    assert!(!N.found_in(b"sp\xc3\xafder"), "no folding beyond ASCII");
    // `accept` sees where each match starts and which needle it is.
    let mut seen = Vec::new();
    let found = N.find(b"ab bot/", |at, n| {
        seen.push((at, n.to_owned()));
        n == "bot/"
    });
    assert!(found);
    assert_eq!(seen, [(1, "b".to_owned()), (3, "bot/".to_owned())]);
}

#[test]
fn choice_cookie_lasts_as_long_as_documented() {
    let c = visit::choice_cookie(Platform::Spotify);
    assert!(c.starts_with("sd_svc=spotify; "), "{c}");
    assert!(c.contains(&format!("; Max-Age={}; ", 90 * 24 * 3600)), "{c}");
    for p in Platform::ALL {
        let c = visit::choice_cookie(p);
        assert_eq!(c, format!("{}={}; Max-Age=7776000; Path=/l/; Secure; HttpOnly; SameSite=Lax", visit::CHOICE_COOKIE, p.key()));
        assert!(shared::http::HeaderValue::from_str(c).is_ok(), "{c}");
    }
}

#[test]
fn referrers_past_fifty_a_day_fold_into_other() {
    let t = setup();
    t.create(NIGHT_DRIVE);
    for i in 0..60 {
        assert_eq!(t.get(&format!("/l/night-drive?ref=site{i}.example"), &[("user-agent", DESKTOP)]).status(), 200);
    }
    // A known referrer keeps counting under its own name.
    t.get("/l/night-drive?ref=site3.example", &[("user-agent", DESKTOP)]);
    assert_eq!(t.count("SELECT count(DISTINCT referrer) FROM link_stats WHERE referrer NOT IN ('', '(other)')"), 50);
    assert_eq!(t.count("SELECT sum(count) FROM link_stats WHERE referrer = '(other)'"), 10);
    assert_eq!(t.count("SELECT sum(count) FROM link_stats WHERE referrer = 'site3.example'"), 2);
    assert_eq!(t.count("SELECT sum(count) FROM link_stats"), 61, "nothing lost");
}

#[test]
fn two_quick_edits_leave_the_latest_in_kv() {
    let t = setup();
    // As on Workers: a second write to a key within a second is refused.
    t.env.kv.one_write_per_second.set(true);
    t.create(NIGHT_DRIVE);
    for title in ["Night Drive (Deluxe)", "Night Drive (Live)"] {
        let body = NIGHT_DRIVE.replacen("\"Night <Drive>\"", &format!("\"{title}\""), 1);
        let res = t.api(Method::PUT, "/api/v1/app/links/night-drive", TOKEN_A1, &body);
        assert_eq!(res.status(), 200, "{}", text(&res));
    }
    let kv = String::from_utf8(t.kv("link:night-drive").expect("in KV")).unwrap();
    assert!(kv.contains("Night Drive (Live)"), "KV kept an older edit: {kv}");
    assert!(t.env.errors.borrow().is_empty(), "{:?}", t.env.errors.borrow());
}

#[test]
fn where_locating_costs_io_a_redirect_that_does_not_depend_on_it_is_located_after_the_response() {
    let mut t = setup();
    t.create(NIGHT_DRIVE);
    t.create(r#"{"slug":"plain","title":"Plain","targets":[{"platform":"spotify","url":"https://open.spotify.com/album/p"}]}"#);
    t.client_at(Some(SE_IP));
    let later = Later { spin: Some(SpinLike::default()), ..Later::new(t.env) };
    let spin = later.spin.as_ref().expect("spin-like");
    let get = |path: &str| {
        let req = HttpRequest::get(path).header("user-agent", IPHONE).body(Vec::new()).expect("request");
        block_on(crate::serve(req, &later, &t.cache))
    };

    let res = get("/l/plain/spotify");
    assert_eq!((res.status().as_u16(), header(&res, "location")), (302, "https://open.spotify.com/album/p"));
    assert_eq!(spin.lookups.get(), 0, "no lookup before the answer");
    assert_eq!(spin.want_country.borrow().len(), 1);
    later.locate_waiting();
    assert_eq!(spin.lookups.get(), 1);
    assert_eq!(later.step(0), 1);
    let country: String = later
        .env
        .db
        .conn()
        .query_row("SELECT country FROM link_stats WHERE link_id IN (SELECT id FROM links WHERE slug = 'plain')", [], |r| r.get(0))
        .expect("row");
    assert_eq!(country, "SE", "the counter still gets the country");

    // A click whose service has country rules looks it up first...
    let res = get("/l/night-drive/apple-music");
    assert_eq!(header(&res, "location"), "https://music.apple.com/se/album/night-drive/1");
    assert_eq!(spin.lookups.get(), 2);
    assert!(spin.want_country.borrow().is_empty());
    // ...and so does the page, which shows every service's...
    get("/l/night-drive");
    assert_eq!(spin.lookups.get(), 3);
    // ...but not a click on a service without rules on the same link.
    let res = get("/l/night-drive/spotify");
    assert_eq!(header(&res, "location"), "https://open.spotify.com/album/abc");
    assert_eq!((spin.lookups.get(), spin.want_country.borrow().len()), (3, 1));
}

mod fan_page;
