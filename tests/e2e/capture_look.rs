//! The capture page's look and the fan's first name, on each runtime: a
//! page with an artist image, colours and a message is served with its
//! sharing tags and a policy naming its colours' stylesheet; its QR code
//! answers; fans sign up with a first name through the form and the JSON
//! API; the name is stored only encrypted, reaches the artist's CSV (and
//! no other artist's), and goes when the fan is erased; a bad colour or
//! image URL is refused, naming the field, when the page is saved in the
//! dashboard.

use crate::cases::{body, json, Case, Res};
use crate::dashboard::{add_user, fan_id, no_trace_in_files, Browser};
use crate::ensure;
use crate::runtime::{Target, PUBLIC_BASE};

pub const ALL: &[(&str, Case)] = &[
    ("capture_look_page_tags_policy_and_qr", page_tags_policy_and_qr),
    ("capture_look_first_name_stored_encrypted_exported_erased", first_name),
    ("capture_look_bad_colour_or_image_refused", refused),
];

/// Distinctive, so a scan of the runtime's files can't match anything else.
const NAME_FORM: &str = "Quillonetta";
const NAME_JSON: &str = "Brisvaldine";

/// A page of artist one with a look; unique per run (local state outlives one).
fn page_with_look(t: &Target, tag: &str) -> Result<String, String> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_millis() % 1_000_000_000;
    let (slug, id) = (format!("e2e-look-{tag}-{stamp}"), format!("e2e-look-{tag}-{stamp}"));
    let db = t.db_rw()?;
    db.execute(
        "INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at) \
         VALUES (?1, 'e2e-artist', ?2, 'Tour news', 'Email me news from E2E Band.', 'v1', 0, 0, 0)",
        [&id, &slug],
    )
    .map_err(|e| e.to_string())?;
    db.execute(
        "INSERT INTO capture_page_looks (page_id, artist_id, artist_image_url, background, button, message, ask_first_name, updated_at) \
         VALUES (?1, 'e2e-artist', 'https://img.e2e.example/band.jpg', '#1e1b4b', '#facc15', 'New album in May: be first to hear it.', 1, 0)",
        [&id],
    )
    .map_err(|e| e.to_string())?;
    Ok(slug)
}

fn header<'r>(res: &'r Res, name: &str) -> &'r str {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn page_tags_policy_and_qr(t: &Target) -> Result<(), String> {
    let slug = page_with_look(t, "tags")?;
    let res = t.send("GET", &format!("/s/{slug}"), &[(t.ip_header(), "198.51.100.230")], b"")?;
    let html = body(&res);
    ensure!(res.status() == 200, "page: {} {html}", res.status());
    let url = format!("{PUBLIC_BASE}/s/{slug}");
    for tag in [
        format!("<meta property=\"og:url\" content=\"{url}\">"),
        format!("<link rel=\"canonical\" href=\"{url}\">"),
        "<meta property=\"og:image\" content=\"https://img.e2e.example/band.jpg\">".to_owned(),
        "<meta name=\"twitter:card\" content=\"summary_large_image\">".to_owned(),
        "<meta property=\"og:title\" content=\"Tour news\">".to_owned(),
        "<img class=\"hero\" src=\"https://img.e2e.example/band.jpg\" alt=\"E2E Band\" width=\"640\" height=\"640\">".to_owned(),
        "<p class=\"msg\">New album in May: be first to hear it.</p>".to_owned(),
        "name=\"first_name\"".to_owned(),
        "We do not keep your IP address".to_owned(),
    ] {
        ensure!(html.contains(&tag), "missing {tag}");
    }
    // Every style block's hash is in the policy, and nothing looser.
    let csp = header(&res, "content-security-policy");
    let blocks: Vec<&str> = html.split("<style>").skip(1).filter_map(|s| s.split_once("</style>").map(|(css, _)| css)).collect();
    ensure!(blocks.len() == 2 && blocks[1].contains("#1e1b4b"), "the page's and the artist's stylesheets: {blocks:?}");
    for css in &blocks {
        ensure!(csp.contains(&shared::capture::style_hash(css)), "policy {csp} lacks the hash of {css}");
    }
    ensure!(!csp.contains("unsafe") && csp.contains("default-src 'none'"), "policy: {csp}");
    ensure!(html.len() < 15 * 1024, "page is {} bytes", html.len());

    let qr = t.send("GET", &format!("/s/{slug}/qr.svg"), &[(t.ip_header(), "198.51.100.230")], b"")?;
    ensure!(qr.status() == 200 && header(&qr, "content-type") == "image/svg+xml", "qr: {} {}", qr.status(), header(&qr, "content-type"));
    let want = shared::qr::Code::encode(url.as_bytes()).ok_or("url too long")?.svg();
    ensure!(body(&qr) == want, "the QR code is not the page's public URL");
    ensure!(header(&qr, "cache-control").contains("max-age"), "qr cache-control: {}", header(&qr, "cache-control"));
    let missing = t.send("GET", "/s/e2e-no-such-page/qr.svg", &[(t.ip_header(), "198.51.100.230")], b"")?;
    ensure!(missing.status() == 404, "unknown page's qr: {}", missing.status());
    Ok(())
}

/// The encrypted name of artist one's fan `email`, if any.
fn stored_name(t: &Target, email: &str) -> Result<Option<(String, String)>, String> {
    let hash = crate::cases::keys().blind_index("e2e-artist", email);
    let row = t.db()?.query_row(
        "SELECT n.name_enc FROM fan_names n JOIN fans f ON f.id = n.fan_id WHERE f.artist_id = 'e2e-artist' AND f.email_hash = ?1",
        [&hash],
        |r| r.get::<_, String>(0),
    );
    match row {
        Ok(enc) => Ok(Some((enc, hash))),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn first_name(t: &Target) -> Result<(), String> {
    let slug = page_with_look(t, "name")?;
    let (form_fan, json_fan, plain_fan) = ("look-form-fan@example.com", "look-json-fan@example.com", "look-plain-fan@example.com");
    let res = t.send(
        "POST",
        &format!("/s/{slug}"),
        &[("content-type", "application/x-www-form-urlencoded"), (t.ip_header(), "198.51.100.231")],
        format!("first_name=+{NAME_FORM}+&email={}&consent=yes", shared::httpx::percent_encode(form_fan)).as_bytes(),
    )?;
    ensure!(res.status() == 200, "form signup: {} {}", res.status(), body(&res));
    let res = json(t, "198.51.100.232", &format!(r#"{{"page":"{slug}","email":"{json_fan}","consent":true,"first_name":"{NAME_JSON}"}}"#))?;
    ensure!(res.status() == 200, "json signup: {} {}", res.status(), body(&res));
    let res = json(t, "198.51.100.233", &format!(r#"{{"page":"{slug}","email":"{plain_fan}","consent":true}}"#))?;
    ensure!(res.status() == 200, "signup without a name: {}", res.status());
    ensure!(stored_name(t, plain_fan)?.is_none(), "a signup without a name stored one");
    let res = json(t, "198.51.100.234", r#"{"page":"e2e","email":"look-x@example.com","consent":true,"first_name":"X"}"#)?;
    ensure!(res.status() == 422 && body(&res).contains("\"field\":\"first_name\""), "a page that doesn't ask: {} {}", res.status(), body(&res));

    let keys = crate::cases::keys();
    for (email, name) in [(form_fan, NAME_FORM), (json_fan, NAME_JSON)] {
        let (enc, hash) = stored_name(t, email)?.ok_or_else(|| format!("no name stored for {email}"))?;
        let plain = keys.decrypt(&enc, shared::capture::fan_name_context("e2e-artist", &hash).as_bytes()).map_err(|e| e.to_string())?;
        ensure!(plain == name.as_bytes(), "{email}: decrypts to {:?}", String::from_utf8_lossy(&plain));
    }
    // Not one byte of a name in the runtime's files.
    let mut files = Vec::new();
    crate::cases::collect(&t.state, &mut files);
    for f in &files {
        let Ok(bytes) = std::fs::read(f) else { continue };
        for name in [NAME_FORM, NAME_JSON] {
            ensure!(!bytes.windows(name.len()).any(|w| w == name.as_bytes()), "{} holds {name} in plain text", f.display());
        }
    }

    // Artist one's CSV has the names; artist two's session sees neither.
    let (a_mail, b_mail) = ("look-a@e2e.example", "look-b@other.example");
    add_user(t, "look-a", "e2e-artist", a_mail, "owner")?;
    add_user(t, "look-b", "e2e-other-artist", b_mail, "owner")?;
    let mut a = Browser::new(t, "198.51.100.235");
    a.sign_in(a_mail)?;
    let mut b = Browser::new(t, "198.51.100.236");
    b.sign_in(b_mail)?;
    let csv = body(&a.get(&format!("/app/fans.csv?email={}", shared::httpx::percent_encode(form_fan)))?);
    ensure!(csv.starts_with("email,status,") && csv.lines().next().is_some_and(|h| h.ends_with(",first_name")), "csv header: {csv}");
    ensure!(csv.contains(&format!("{form_fan},subscribed,")) && csv.trim_end().ends_with(&format!(",{NAME_FORM}")), "csv row: {csv}");
    let id = fan_id(t, "e2e-artist", json_fan)?;
    ensure!(body(&a.get(&format!("/app/fans/{id}"))?).contains(NAME_JSON), "the fan's page shows the name");
    let theirs = body(&b.get("/app/fans.csv")?);
    ensure!(!theirs.contains(NAME_FORM) && !theirs.contains(NAME_JSON), "artist two's CSV shows artist one's fans' names");
    ensure!(b.get(&format!("/app/fans/{id}"))?.status() == 404, "artist two opens artist one's fan");

    // Erasure takes the name with the fan.
    let (enc, hash) = stored_name(t, json_fan)?.ok_or("no name")?;
    let csrf = a.csrf()?;
    let res = a.post(&format!("/app/fans/{id}/erase"), &format!("csrf={csrf}&confirm=erase"))?;
    ensure!(res.status() == 200, "erase: {} {}", res.status(), body(&res));
    let left: i64 = t.db()?.query_row("SELECT count(*) FROM fan_names WHERE fan_id = ?1", [&id], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(left == 0, "the erased fan's name is still stored");
    no_trace_in_files(t, &enc, &hash)
}

/// Through the dashboard's page form: a colour no text reads on, a
/// malformed one and an http image are refused naming their fields, and
/// nothing is saved; a good look is saved and served.
fn refused(t: &Target) -> Result<(), String> {
    add_user(t, "look-editor", "e2e-artist", "look-editor@e2e.example", "owner")?;
    let mut a = Browser::new(t, "198.51.100.237");
    a.sign_in("look-editor@e2e.example")?;
    let csrf = a.csrf()?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_millis() % 1_000_000_000;
    let slug = format!("e2e-look-form-{stamp}");
    let form = |look: &str| format!("csrf={csrf}&slug={slug}&title=Looks&consent_text=Email+me+news.{look}");
    for (look, field, phrase) in [
        ("&background=%23777777", "background", "4.5:1"),
        ("&button=navy", "button", "#rrggbb"),
        ("&artist_image_url=http%3A%2F%2Fimg.e2e.example%2Fa.jpg", "artist_image_url", "https://"),
    ] {
        let res = a.post("/app/pages/new", &form(look))?;
        let html = body(&res);
        ensure!(res.status() == 422 && html.contains(&format!("id=\"err-{field}\"")) && html.contains(phrase), "{look}: {} {html}", res.status());
    }
    let made: i64 = t.db()?.query_row("SELECT count(*) FROM capture_pages WHERE slug = ?1", [&slug], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(made == 0, "a refused form saved the page");
    let res = a.post("/app/pages/new", &form("&background=%231e1b4b&button=%23facc15&artist_image_url=https%3A%2F%2Fimg.e2e.example%2Fa.jpg"))?;
    ensure!(res.status() == 303, "good look: {} {}", res.status(), body(&res));
    let page = t.send("GET", &format!("/s/{slug}"), &[(t.ip_header(), "198.51.100.238")], b"")?;
    let html = body(&page);
    ensure!(page.status() == 200 && html.contains("class=\"hero\"") && html.contains("background:#1e1b4b"), "the saved look is served: {html}");
    Ok(())
}
