//! The link editor against the real SQLite engine: what the form saves is
//! what the links API stores for the same input (one code path), refusals
//! keep what was typed and name the field, and a second artist can neither
//! edit nor take the first one's link.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shared::adapters::native::recorder::Recorder;
use shared::adapters::native::{block_on, NativeEnv};
use shared::http::{Method, Request as HttpRequest};
use shared::{Env, Kv, Response};

use crate::tests::{hidden, text, Browser};

const TOKEN: &str = "sd_nova_token_for_link_tests";
const NIGHT: &str =
    r#"{"slug":"night","title":"Night","artist":"Nova","auto_redirect":false,"targets":[{"platform":"spotify","url":"https://open.spotify.com/x"}]}"#;

struct World {
    env: NativeEnv,
    mail: Recorder,
}

fn world() -> World {
    let (mail, env) = crate::tests::mail_and_env();
    let conn = env.db.conn();
    conn.execute_batch("INSERT INTO artists VALUES ('a1', 'Nova & the Tides', 0); INSERT INTO artists VALUES ('a2', 'Other Artist', 0);").unwrap();
    crate::tests::add_users(&env, &crate::tests::TWO_ARTISTS_USERS);
    conn.execute("INSERT INTO links (id, artist_id, slug, definition, created_at, updated_at) VALUES ('l1', 'a1', 'night', ?1, 0, 0)", [NIGHT]).unwrap();
    conn.execute(
        "INSERT INTO api_tokens (id, artist_id, token_hash, label, created_at) VALUES ('t1', 'a1', ?1, 'bot', 0)",
        [shared::crypto::sha256_hex(TOKEN.as_bytes())],
    )
    .unwrap();
    drop(conn);
    World { env, mail }
}

fn signed_in(w: &World, email: &str) -> Browser {
    let mut b = Browser::new();
    b.sign_in_with(&w.env, &w.mail, email);
    b
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (c as char).to_string(),
            _ => format!("%{c:02X}"),
        })
        .collect()
}

fn form(csrf: &str, fields: &[(&str, &str)]) -> String {
    let mut out = format!("csrf={csrf}");
    for (k, v) in fields {
        out.push_str(&format!("&{k}={}", enc(v)));
    }
    out
}

/// A full form: two services, one of them with a country's own address
/// and hidden somewhere, the other "other" with its button text.
fn full(slug: &str) -> Vec<(&str, &str)> {
    vec![
        ("slug", slug),
        ("title", "Midnight Drive"),
        ("artist", ""),
        ("artwork_url", "https://img.example/cover.jpg"),
        ("auto_redirect", "1"),
        ("t0-platform", "spotify"),
        ("t0-url", " https://open.spotify.com/album/1 "),
        ("t0-countries", "GB https://open.spotify.com/album/1-gb\n"),
        ("t0-hidden", "cn, ru"),
        ("t2-platform", "other"),
        ("t2-url", "https://shop.example/lp"),
        ("t2-label", "Vinyl"),
    ]
}

fn api(env: &NativeEnv, method: Method, path: &str, body: &str) -> Response {
    let req = HttpRequest::builder()
        .method(method)
        .uri(path)
        .header("host", "fans.example")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap();
    // The links API is served by this same crate (the studio function).
    block_on(crate::handle(req, env))
}

fn stored(env: &NativeEnv, slug: &str) -> Option<(String, String)> {
    env.db.conn().query_row("SELECT artist_id, definition FROM links WHERE slug = ?1", [slug], |r| Ok((r.get(0)?, r.get(1)?))).ok()
}

fn location(res: &Response) -> &str {
    res.headers().get("location").map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[test]
fn a_member_creates_a_link_and_it_is_what_the_api_stores() {
    let w = world();
    let mut b = signed_in(&w, "member@nova.example");
    let page = text(&b.get(&w.env, "/app/links/new"));
    let csrf = hidden(&page, "csrf");
    let res = b.post(&w.env, "/app/links/new", &form(&csrf, &full("midnight")));
    assert_eq!(res.status(), 303, "{}", text(&res));
    assert_eq!(location(&res), "/app/links/midnight?saved=created");
    let (artist, def) = stored(&w.env, "midnight").unwrap();
    assert_eq!(artist, "a1");
    // The same input through the API, under another slug.
    let body = r#"{"slug":"midnight-api","title":"Midnight Drive","artwork_url":"https://img.example/cover.jpg","auto_redirect":true,
        "targets":[{"platform":"spotify","url":"https://open.spotify.com/album/1","countries":{"GB":"https://open.spotify.com/album/1-gb"},"hidden_in":["CN","RU"]},
                   {"platform":"other","url":"https://shop.example/lp","label":"Vinyl"}]}"#;
    assert_eq!(api(&w.env, Method::POST, "/api/v1/app/links", body).status(), 201);
    let (_, twin) = stored(&w.env, "midnight-api").unwrap();
    assert_eq!(def.replace("\"midnight\"", "\"midnight-api\""), twin);
    assert!(def.contains("\"artist\":\"Nova & the Tides\""), "the account's name, as the API fills it: {def}");
    // The API reads the dashboard's link back, and KV holds it for /l/.
    let got = api(&w.env, Method::GET, "/api/v1/app/links/midnight", "");
    assert_eq!(got.status(), 200);
    assert!(text(&got).starts_with(&def[..def.len() - 1]));
    let kv = block_on(w.env.kv().get("link:midnight")).unwrap().unwrap();
    assert!(String::from_utf8(kv).unwrap().contains(&def));
    // A webhook-event row was queued in the same batch only if an endpoint
    // exists; none here, so the outbox stays empty.
    let events: i64 = w.env.db.conn().query_row("SELECT count(*) FROM webhook_messages", [], |r| r.get(0)).unwrap();
    assert_eq!(events, 0);
}

#[test]
fn editing_shows_the_stored_values_and_replaces_the_definition() {
    let w = world();
    let mut b = signed_in(&w, "owner@nova.example");
    let page = text(&b.get(&w.env, "/app/links/night/edit"));
    assert!(page.contains("value=\"https://open.spotify.com/x\""), "{page}");
    assert!(page.contains("value=\"Nova\""));
    let csrf = hidden(&page, "csrf");
    let fields = [
        ("title", "Night (remastered)"),
        ("artist", "Nova"),
        ("t0-platform", "spotify"),
        ("t0-url", "https://open.spotify.com/y"),
        ("t1-platform", "deezer"),
        ("t1-url", "https://www.deezer.com/album/2"),
    ];
    let res = b.post(&w.env, "/app/links/night/edit", &form(&csrf, &fields));
    assert_eq!(res.status(), 303, "{}", text(&res));
    assert_eq!(location(&res), "/app/links/night?saved=updated");
    let (_, def) = stored(&w.env, "night").unwrap();
    assert_eq!(
        def,
        r#"{"slug":"night","title":"Night (remastered)","artist":"Nova","auto_redirect":false,"targets":[{"platform":"spotify","url":"https://open.spotify.com/y"},{"platform":"deezer","url":"https://www.deezer.com/album/2"}]}"#
    );
    let kv = String::from_utf8(block_on(w.env.kv().get("link:night")).unwrap().unwrap()).unwrap();
    assert!(kv.contains("https://open.spotify.com/y"), "written through to KV: {kv}");
    let list = text(&b.get(&w.env, "/app/links"));
    assert!(list.contains("Night (remastered)") && list.contains("New smart link"), "{list}");
}

#[test]
fn refused_forms_keep_what_was_typed_and_name_the_field() {
    let w = world();
    let mut b = signed_in(&w, "owner@nova.example");
    let csrf = hidden(&text(&b.get(&w.env, "/app/links/new")), "csrf");
    // (field changed, value, input that must carry the message, its words)
    let cases: [(&str, &str, &str, &str); 7] = [
        ("t0-url", "https://www.youtube.com/watch?v=1", "t0-url", "must be on spotify.com"),
        ("t0-url", "http://open.spotify.com/album/1", "t0-url", "https://"),
        ("slug", "Bad Slug", "slug", "lower-case letters"),
        ("title", "  ", "title", "The title is required"),
        ("t2-label", "", "t2-label", "required for"),
        ("t0-countries", "Britain https://open.spotify.com/gb", "t0-countries", "two-letter country code"),
        ("artwork_url", "ftp://img.example/c.jpg", "artwork_url", "https://"),
    ];
    for (name, value, input, words) in cases {
        let mut fields = full("refused");
        fields.retain(|(k, _)| *k != name);
        fields.push((name, value));
        let res = b.post(&w.env, "/app/links/new", &form(&csrf, &fields));
        let page = text(&res);
        assert_eq!(res.status(), 422, "{name}: {page}");
        let at = page.find(&format!("id=\"err-{input}\"")).unwrap_or_else(|| panic!("{name}: no message at {input}: {page}"));
        assert!(page[at..].split("</p>").next().unwrap().contains(words), "{name}: {}", &page[at..at + 300]);
        assert!(page.contains(&format!("id=\"{input}\"")) && page.contains("aria-invalid=\"true\""), "{name}");
        assert!(page.contains("value=\"Midnight Drive\"") || name == "title", "{name}: typed title kept");
        assert!(page.contains("GB https://open.spotify.com/album/1-gb") || name == "t0-countries", "{name}: typed countries kept");
        if !value.trim().is_empty() && name != "t0-countries" {
            assert!(page.contains(&maud::html! { (value) }.into_string()), "{name}: typed value kept");
        }
        assert!(stored(&w.env, "refused").is_none(), "{name}: nothing saved");
    }
}

#[test]
fn another_artist_can_neither_edit_nor_take_a_link() {
    let w = world();
    let mut b = signed_in(&w, "owner@other.example");
    let before = stored(&w.env, "night").unwrap();
    assert_eq!(b.get(&w.env, "/app/links/night/edit").status(), 404);
    let csrf = b.csrf(&w.env);
    let mut fields = full("night");
    fields.retain(|(k, _)| *k != "slug");
    let res = b.post(&w.env, "/app/links/night/edit", &form(&csrf, &fields));
    assert_eq!(res.status(), 404);
    assert!(!text(&res).contains("Night"), "nothing of the link shown");
    let res = b.post(&w.env, "/app/links/new", &form(&csrf, &full("night")));
    assert_eq!(res.status(), 409);
    let page = text(&res);
    assert!(page.contains("id=\"err-slug\"") && page.contains("already taken"), "{page}");
    assert_eq!(stored(&w.env, "night").unwrap(), before, "artist one's link unchanged");
    let list = text(&b.get(&w.env, "/app/links"));
    assert!(!list.contains("/l/night"), "not in the other artist's list");
}

#[test]
fn the_list_counts_clicks_of_the_last_30_days() {
    let w = world();
    let now = w.env.now_ms();
    let day = |d: i64| shared::date::ymd(now - d * 86_400_000);
    let conn = w.env.db.conn();
    for (d, kind, n) in [(0, "click", 3), (29, "click", 4), (30, "click", 100), (1, "view", 50)] {
        conn.execute(
            "INSERT INTO link_stats (link_id, artist_id, day, kind, platform, country, referrer, device, count) VALUES ('l1', 'a1', ?1, ?2, 'spotify', 'SE', '', 'ios', ?3)",
            [day(d).as_str(), kind, &n.to_string()],
        )
        .unwrap();
    }
    drop(conn);
    let mut b = signed_in(&w, "owner@nova.example");
    let list = text(&b.get(&w.env, "/app/links"));
    assert!(list.contains("<td class=\"num\">7</td>"), "3 today + 4 on day 29, not day 30's nor views: {list}");
}
