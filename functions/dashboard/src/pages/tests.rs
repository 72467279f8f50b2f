//! Capture pages from the dashboard, against the real SQLite engine:
//! create and edit through the forms, refused input kept with its message
//! next to the field, slugs taken, consent versions kept for the fans who
//! agreed to them, the preview, and a second artist who can neither read
//! nor change the first one's pages.

use serde_json::Value;
use shared::adapters::native::recorder::Recorder;
use shared::adapters::native::NativeEnv;
use shared::http::header;
use shared::Response;

use crate::tests::{hidden, text, Browser};

const V1: &str = "Send me tour news.";

struct World {
    env: NativeEnv,
    mail: Recorder,
}

/// Artist `a1` (owner and member) with page `p1` made outside the
/// dashboard (no version on record) and a fan who agreed to its text;
/// artist `a2` with page `p2` (slug `other`).
fn world() -> World {
    let (mail, env) = crate::tests::mail_and_env();
    let k = crate::tests::keys();
    let conn = env.db.conn();
    conn.execute_batch(&format!(
        "INSERT INTO artists VALUES ('a1', 'Nova & the Tides', 0), ('a2', 'Other Artist', 0);
         INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
           VALUES ('p1', 'a1', 'tour', 'Tour news', '{V1}', 'v1', 0, 0, 0), ('p2', 'a2', 'other', 'Other', 'Other news.', 'v1', 0, 0, 0);"
    ))
    .unwrap();
    crate::tests::add_users(&env, &crate::tests::TWO_ARTISTS_USERS);
    let enc = k.encrypt(b"fan@example.com", shared::crypto::fan_email_context("a1", "f1").as_bytes()).unwrap();
    conn.execute(
        "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, source_page_id, consent_version, created_at, updated_at)
         VALUES ('f1', 'a1', ?1, ?2, 'subscribed', 'p1', 'v1', 1, 1)",
        [&enc, &k.blind_index("a1", "fan@example.com")],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at)
         VALUES ('e1', 'f1', 'a1', 'subscribe', 'p1', 'v1', ?1, 'single', 1)",
        [shared::crypto::sha256_hex(V1.as_bytes())],
    )
    .unwrap();
    drop(conn);
    World { env, mail }
}

fn signed_in(w: &World, email: &str) -> (Browser, String) {
    let mut b = Browser::new();
    b.sign_in_with(&w.env, &w.mail, email);
    let csrf = b.csrf(&w.env);
    (b, csrf)
}

fn enc(s: &str) -> String {
    shared::httpx::percent_encode(s)
}

fn form(csrf: &str, fields: &[(&str, &str)]) -> String {
    let mut out = format!("csrf={csrf}");
    for (k, v) in fields {
        out.push_str(&format!("&{k}={}", enc(v)));
    }
    out
}

fn location(res: &Response) -> String {
    res.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

fn page_row(w: &World, slug: &str) -> Option<Vec<String>> {
    w.env
        .db
        .conn()
        .query_row(
            "SELECT id, title, consent_text, consent_version, CAST(double_opt_in AS TEXT), coalesce(thanks_text, ''), coalesce(redirect_url, ''), artist_id \
             FROM capture_pages WHERE slug = ?1",
            [slug],
            |r| (0..8).map(|i| r.get::<_, String>(i)).collect::<Result<Vec<_>, _>>(),
        )
        .ok()
}

/// Every version on record for a page: (version, text, hash or "").
fn versions(w: &World, page: &str) -> Vec<(String, String, String)> {
    let conn = w.env.db.conn();
    let mut st = conn.prepare("SELECT version, consent_text, coalesce(consent_sha256, '') FROM consent_versions WHERE page_id = ?1 ORDER BY version").unwrap();
    st.query_map([page], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

/// The table's rows as text, to prove nothing changed.
fn snapshot(w: &World) -> (Vec<String>, Vec<String>) {
    let all = w.env.db.every_row().unwrap();
    (all["capture_pages"].clone(), all["consent_versions"].clone())
}

#[test]
fn a_member_creates_a_page_with_its_first_version_and_sees_preview_and_snippet() {
    let w = world();
    let (mut b, csrf) = signed_in(&w, "member@nova.example");
    let list = text(&b.get(&w.env, "/app/pages"));
    assert!(list.contains("href=\"/app/pages/new\"") && list.contains("/s/tour"), "{list}");
    let blank = b.get(&w.env, "/app/pages/new");
    assert_eq!(blank.status(), 200);
    assert!(blank.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("frame-src 'self'"));
    let fields = [
        ("slug", " Spring-Tour "),
        ("title", "Spring tour"),
        ("consent_text", "Email me about the spring tour."),
        ("double_opt_in", "1"),
        ("thanks_text", "See you there!"),
        ("redirect_url", "HTTPS://Shop.Example.com/thanks"),
    ];
    let res = b.post(&w.env, "/app/pages/new", &form(&csrf, &fields));
    assert_eq!(res.status(), 303, "{}", text(&res));
    let row = page_row(&w, "spring-tour").expect("created, slug in lower case");
    assert_eq!(row[1..], ["Spring tour", "Email me about the spring tour.", "v1", "1", "See you there!", "https://shop.example.com/thanks", "a1"]);
    assert_eq!(location(&res), format!("/app/pages/{}?did=created", row[0]));
    let hash = shared::crypto::sha256_hex(b"Email me about the spring tour.");
    assert_eq!(versions(&w, &row[0]), [("v1".to_owned(), "Email me about the spring tour.".to_owned(), hash)]);

    let detail = text(&b.get(&w.env, &location(&res)));
    for part in [
        "https://fans.example/s/spring-tour",
        "&quot;https://fans.example/api/v1/signup&quot;",
        "page: &quot;spring-tour&quot;",
        "name=&quot;consent&quot;",
        "name=&quot;website&quot;",
        "Email me about the spring tour.",
        &format!("src=\"/app/pages/{}/preview\"", row[0]),
        "sandbox=\"\"",
    ] {
        assert!(detail.contains(part), "{part} missing from {detail}");
    }
    let preview = b.get(&w.env, &format!("/app/pages/{}/preview", row[0]));
    assert_eq!(preview.status(), 200);
    let csp = preview.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(
        csp.contains("frame-ancestors 'self'") && csp.contains("sandbox") && csp.contains(shared::capture::CSS_HASH) && csp.contains("form-action 'none'"),
        "{csp}"
    );
    assert!(preview.headers().get(header::X_FRAME_OPTIONS).is_none());
    let html = text(&preview);
    assert!(html.contains(">Spring tour</h1>") && html.contains("Email me about the spring tour.") && html.contains("Nova &amp; the Tides"), "{html}");
}

#[test]
fn refused_forms_keep_what_was_typed_and_name_each_field() {
    let w = world();
    let (mut b, csrf) = signed_in(&w, "owner@nova.example");
    let before = snapshot(&w);
    let fields = [
        ("slug", "Tour 2027!"),
        ("title", "Big <tour> news"),
        ("consent_text", ""),
        ("thanks_text", "Thanks & bye"),
        ("redirect_url", "http://shop.example.com/"),
    ];
    let res = b.post(&w.env, "/app/pages/new", &form(&csrf, &fields));
    assert_eq!(res.status(), 422);
    let html = text(&res);
    for part in [
        "value=\"tour 2027!\"",
        "value=\"Big &lt;tour&gt; news\"",
        "Thanks &amp; bye</textarea>",
        "value=\"http://shop.example.com/\"",
        "id=\"err-slug\"",
        "id=\"err-consent_text\"",
        "id=\"err-redirect_url\"",
        "must start with https://",
        "aria-describedby=\"hint-redirect_url err-redirect_url\"",
        "aria-invalid=\"true\"",
    ] {
        assert!(html.contains(part), "{part} missing from {html}");
    }
    assert!(!html.contains("id=\"err-title\""), "a good title is not blamed");
    let long = "x".repeat(super::MAX_TITLE + 1);
    let res = b.post(&w.env, "/app/pages/p1/edit", &form(&csrf, &[("title", &long), ("consent_text", "New words.")]));
    assert_eq!(res.status(), 422);
    let html = text(&res);
    assert!(html.contains("id=\"err-title\"") && html.contains("New words.</textarea>") && html.contains("at most 120 characters"), "{html}");
    assert_eq!(snapshot(&w), before, "nothing saved");
}

#[test]
fn a_slug_another_page_has_is_refused_as_taken() {
    let w = world();
    let (mut b, csrf) = signed_in(&w, "owner@nova.example");
    let before = snapshot(&w);
    // Artist two's page: slugs are one namespace.
    let res = b.post(&w.env, "/app/pages/new", &form(&csrf, &[("slug", "other"), ("title", "Mine"), ("consent_text", "Mine too.")]));
    assert_eq!(res.status(), 409);
    let html = text(&res);
    assert!(html.contains("/s/other is taken") && html.contains("value=\"Mine\"") && html.contains("id=\"err-slug\""), "{html}");
    assert_eq!(snapshot(&w), before);
}

#[test]
fn a_new_consent_text_is_a_new_version_and_the_fan_keeps_the_one_they_agreed_to() {
    let w = world();
    let (mut b, csrf) = signed_in(&w, "owner@nova.example");
    let edit = |b: &mut Browser, title: &str, consent: &str| {
        let res = b.post(&w.env, "/app/pages/p1/edit", &form(&csrf, &[("title", title), ("consent_text", consent)]));
        assert_eq!(res.status(), 303, "{}", text(&res));
        location(&res)
    };
    assert_eq!(edit(&mut b, "Tour news", "Send me tour news and presale codes."), "/app/pages/p1?did=new-version");
    let row = page_row(&w, "tour").unwrap();
    assert_eq!((row[2].as_str(), row[3].as_str()), ("Send me tour news and presale codes.", "v2"));
    let v1 = shared::crypto::sha256_hex(V1.as_bytes());
    let v2 = shared::crypto::sha256_hex(b"Send me tour news and presale codes.");
    let expected = vec![("v1".to_owned(), V1.to_owned(), v1.clone()), ("v2".to_owned(), "Send me tour news and presale codes.".to_owned(), v2)];
    assert_eq!(versions(&w, "p1"), expected, "the text made outside the dashboard is kept as v1");
    // A title change alone, and the same text again, make no version.
    assert_eq!(edit(&mut b, "Tour news 2027", "Send me tour news and presale codes."), "/app/pages/p1?did=saved");
    assert_eq!(page_row(&w, "tour").unwrap()[3], "v2");
    assert_eq!(versions(&w, "p1"), expected);
    // The fan who agreed to v1 still has v1's text (the page shows v2's).
    let doc: Value = serde_json::from_slice(b.get(&w.env, "/api/v1/app/fans/f1/export").body()).unwrap();
    let event = &doc["consent_history"][0];
    assert_eq!((event["consent_version"].as_str(), event["consent_hash"].as_str()), (Some("v1"), Some(v1.as_str())));
    assert_eq!((event["consent_text"].as_str(), event["consent_text_held"].as_bool()), (Some(V1), Some(true)), "{event}");
    // Back to the first wording: a third version, not v1 again.
    edit(&mut b, "Tour news 2027", V1);
    assert_eq!(page_row(&w, "tour").unwrap()[3], "v3");

    let detail = text(&b.get(&w.env, "/app/pages/p1"));
    assert!(detail.contains("presale codes") && detail.contains("<td>v1</td>") && detail.contains("<td>v3</td>"), "history shown: {detail}");
}

#[test]
fn a_text_on_record_whose_hash_differs_is_not_shown_as_agreed() {
    let w = world();
    w.env
        .db
        .conn()
        .execute_batch("INSERT INTO consent_versions VALUES ('a1', 'p1', 'v1', 'Some other wording.', NULL, 0); UPDATE capture_pages SET consent_text = 'Changed.' WHERE id = 'p1';")
        .unwrap();
    let (mut b, _) = signed_in(&w, "owner@nova.example");
    let doc: Value = serde_json::from_slice(b.get(&w.env, "/api/v1/app/fans/f1/export").body()).unwrap();
    let event = &doc["consent_history"][0];
    assert_eq!((event["consent_text"].clone(), event["consent_text_held"].as_bool()), (Value::Null, Some(false)), "{event}");
}

#[test]
fn a_draft_previews_without_being_saved() {
    let w = world();
    let (mut b, csrf) = signed_in(&w, "owner@nova.example");
    let before = snapshot(&w);
    for path in ["/app/pages/new/preview", "/app/pages/p1/preview"] {
        let res = b.post(&w.env, path, &form(&csrf, &[("slug", "x"), ("title", "Draft <title>"), ("consent_text", "Draft consent.")]));
        assert_eq!(res.status(), 200, "{path}");
        let html = text(&res);
        assert!(html.contains(">Draft &lt;title&gt;</h1>") && html.contains("Draft consent."), "{html}");
    }
    assert_eq!(snapshot(&w), before);
    let edit = text(&b.get(&w.env, "/app/pages/p1/edit"));
    assert!(edit.contains("formaction=\"/app/pages/p1/preview\"") && edit.contains("formtarget=\"preview\"") && edit.contains("name=\"preview\""), "{edit}");
}

#[test]
fn another_artist_can_neither_read_nor_change_a_page() {
    let w = world();
    let (mut b, csrf) = signed_in(&w, "owner@other.example");
    let before = snapshot(&w);
    for path in ["/app/pages/p1", "/app/pages/p1/edit", "/app/pages/p1/preview"] {
        assert_eq!(b.get(&w.env, path).status(), 404, "GET {path}");
    }
    let change = form(&csrf, &[("title", "Hijacked"), ("consent_text", "Hijacked.")]);
    for path in ["/app/pages/p1/edit", "/app/pages/p1/preview"] {
        let res = b.post(&w.env, path, &change);
        assert_eq!(res.status(), 404, "POST {path}");
        assert!(!text(&res).contains("Tour news"), "{path} shows the page");
    }
    assert_eq!(snapshot(&w), before, "nothing changed");
    let list = text(&b.get(&w.env, "/app/pages"));
    assert!(list.contains("/s/other") && !list.contains("/s/tour"), "{list}");
    // Their own edit works, so the 404s above are about tenancy.
    assert_eq!(b.post(&w.env, "/app/pages/p2/edit", &change).status(), 303);
    assert_eq!(page_row(&w, "tour").unwrap()[1], "Tour news");
    let _ = hidden;
}

/// The stored look of page `id`: image, background, button, message, ask.
fn look_row(w: &World, id: &str) -> Option<Vec<String>> {
    w.env
        .db
        .conn()
        .query_row(
            "SELECT coalesce(artist_image_url, ''), coalesce(background, ''), coalesce(button, ''), coalesce(message, ''), CAST(ask_first_name AS TEXT), artist_id \
             FROM capture_page_looks WHERE page_id = ?1",
            [id],
            |r| (0..6).map(|i| r.get::<_, String>(i)).collect::<Result<Vec<_>, _>>(),
        )
        .ok()
}

#[test]
fn a_look_is_checked_saved_with_the_page_and_previewed_under_its_hash() {
    let w = world();
    let (mut b, csrf) = signed_in(&w, "owner@nova.example");
    let base = [("title", "Tour news"), ("consent_text", V1)];
    // Refused: every look field named, what was typed kept, nothing saved.
    let before = w.env.db.every_row().unwrap();
    let bad = [("artist_image_url", "http://img.example/a.jpg"), ("background", "#777777"), ("button", "navy"), ("message", "tab\there")];
    let res = b.post(&w.env, "/app/pages/p1/edit", &form(&csrf, &[&base[..], &bad[..]].concat()));
    assert_eq!(res.status(), 422);
    let html = text(&res);
    for part in [
        "id=\"err-artist_image_url\"",
        "must start with https://",
        "id=\"err-button\"",
        "#rrggbb",
        "id=\"err-message\"",
        "value=\"http://img.example/a.jpg\"",
        "value=\"navy\"",
    ] {
        assert!(html.contains(part), "{part} missing from {html}");
    }
    let res = b.post(&w.env, "/app/pages/p1/edit", &form(&csrf, &[&base[..], &[("background", "#777777")][..]].concat()));
    assert_eq!(res.status(), 422);
    assert!(text(&res).contains("id=\"err-background\"") && text(&res).contains("4.5:1"), "an unreadable background");
    assert_eq!(w.env.db.every_row().unwrap(), before, "nothing saved");

    // Saved with the page, normalised; the details show it.
    let good = [
        ("artist_image_url", " https://IMG.example/nova.jpg "),
        ("background", "#1E1B4B"),
        ("button", "#facc15"),
        ("message", "New album in May."),
        ("ask_first_name", "1"),
    ];
    let res = b.post(&w.env, "/app/pages/p1/edit", &form(&csrf, &[&base[..], &good[..]].concat()));
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/app/pages/p1?did=saved".to_owned()), "{}", text(&res));
    assert_eq!(look_row(&w, "p1").unwrap(), ["https://img.example/nova.jpg", "#1e1b4b", "#facc15", "New album in May.", "1", "a1"]);
    let details = text(&b.get(&w.env, "/app/pages/p1"));
    assert!(details.contains("https://img.example/nova.jpg") && details.contains("#1e1b4b") && details.contains("/s/tour/qr.svg"), "{details}");
    let edit = text(&b.get(&w.env, "/app/pages/p1/edit"));
    assert!(
        edit.contains("value=\"#facc15\"") && edit.contains("New album in May.</textarea>") && edit.contains("name=\"ask_first_name\" value=\"1\" checked")
    );

    // The preview applies it under the public page's policy plus its colours' hash.
    let res = b.get(&w.env, "/app/pages/p1/preview");
    let html = text(&res);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    let theme = html.split("<style>").nth(2).and_then(|s| s.split("</style>").next()).unwrap();
    assert!(theme.contains("#1e1b4b") && csp.contains(&shared::capture::style_hash(theme)) && csp.contains("sandbox"), "{csp}");
    assert!(html.contains("class=\"hero\"") && html.contains("name=\"first_name\""));

    // Clearing the fields returns to the plain page.
    let res = b.post(&w.env, "/app/pages/p1/edit", &form(&csrf, &base));
    assert_eq!(res.status(), 303);
    assert_eq!(look_row(&w, "p1").unwrap(), ["", "", "", "", "0", "a1"]);
    // A new page takes its look in the same batch.
    let res = b.post(&w.env, "/app/pages/new", &form(&csrf, &[&[("slug", "looked")][..], &base[..], &good[..2]].concat()));
    assert_eq!(res.status(), 303, "{}", text(&res));
    let id = page_row(&w, "looked").unwrap()[0].clone();
    assert_eq!(look_row(&w, &id).unwrap()[..2], ["https://img.example/nova.jpg", "#1e1b4b"]);
}
