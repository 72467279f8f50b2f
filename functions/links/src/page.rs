//! What a fan's browser gets: the landing page (one button per service, the
//! likely one first), redirects, and the 404. Plain HTML without script;
//! one small stylesheet pinned by hash in the Content-Security-Policy.

use shared::html::escape;
use shared::http::header::{self, HeaderValue};
use shared::http::StatusCode;
use shared::{httpx, Error, Response};

use crate::link::{Link, Platform, Target};
use crate::visit::{Device, Visit};

pub const CSS: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:1.25rem;color:#111;background:#f4f4f5}main{max-width:24rem;margin:0 auto;text-align:center}img{width:100%;max-width:18rem;height:auto;border-radius:.5rem}h1{font-size:1.4rem;margin:.75rem 0 0}p{margin:.25rem 0 1rem;color:#444}nav a{display:block;margin:.5rem 0;padding:.8rem;border-radius:.5rem;background:#111;color:#fff;text-decoration:none;font-weight:600}small{display:block;margin-top:1.5rem;color:#555;font-size:.8rem}";

/// No script, nothing loaded but the artwork, never framed. The style hash
/// is [`CSS`]'s SHA-256; a test fails if one changes without the other.
pub const CSP: &str = "default-src 'none'; style-src 'sha256-gNDU//3Q18uztVF9Z/pPU4OuOum9Swq6tS8jkb+al90='; img-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The buttons to show, in order: the remembered service first, then the
/// device's usual one(s), then the artist's order. Services unavailable in
/// the fan's country are left out.
pub fn ordered<'a>(link: &'a Link, visit: &Visit) -> Vec<&'a Target> {
    let mut shown: Vec<&Target> = link.def.targets.iter().filter(|t| t.available_in(visit.country)).collect();
    // Insertion sort: stable (equal ranks keep the artist's order), plenty
    // for ten buttons, and a fraction of the std sort's wasm.
    for i in 1..shown.len() {
        let mut j = i;
        while j > 0 && rank(shown[j - 1].platform, visit) > rank(shown[j].platform, visit) {
            shown.swap(j - 1, j);
            j -= 1;
        }
    }
    shown
}

fn rank(p: Platform, visit: &Visit) -> u8 {
    if visit.remembered == Some(p) {
        return 0;
    }
    match (visit.device, p) {
        (Device::Ios, Platform::AppleMusic) | (Device::Android, Platform::YoutubeMusic) => 1,
        (Device::Android, Platform::Spotify) => 2,
        _ => 3,
    }
}

/// The landing page. Cached by the fan's browser only: its order depends
/// on their device, cookie and country, so a shared cache would hand one
/// fan's order to the next.
pub fn landing(link: &Link, visit: &Visit, head: bool) -> Response {
    let mut res = html(StatusCode::OK, if head { String::new() } else { render(link, visit) });
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=60"));
    h.insert(header::VARY, HeaderValue::from_static("User-Agent, Cookie"));
    res
}

fn render(link: &Link, visit: &Visit) -> String {
    let d = &link.def;
    let artist = d.artist.as_deref().unwrap_or("");
    let shown = ordered(link, visit);
    let query = visit.forward_query();
    let mut b = String::with_capacity(CSS.len() + 1536);
    open(&mut b, &d.title);
    if !artist.is_empty() {
        b.push_str(" – ");
        b.push_str(&escape(artist));
    }
    b.push_str("</title>");
    // Open Graph for link previews (chat apps, social posts).
    meta(&mut b, "property", "og:type", "website");
    meta(&mut b, "property", "og:title", &d.title);
    let names: Vec<&str> = d.targets.iter().map(Target::label).collect();
    let mut description = String::new();
    if !artist.is_empty() {
        description.push_str(artist);
        description.push_str(" · ");
    }
    description.push_str("Listen on ");
    description.push_str(&names.join(", "));
    meta(&mut b, "property", "og:description", &description);
    meta(&mut b, "name", "description", &description);
    if let Some(art) = &d.artwork_url {
        meta(&mut b, "property", "og:image", art);
        meta(&mut b, "name", "twitter:card", "summary_large_image");
    } else {
        meta(&mut b, "name", "twitter:card", "summary");
    }
    b.push_str("<style>");
    b.push_str(CSS);
    b.push_str("</style></head><body><main>");
    if let Some(art) = &d.artwork_url {
        b.push_str("<img src=\"");
        b.push_str(&escape(art));
        b.push_str("\" alt=\"Artwork\" width=\"288\" height=\"288\">");
    }
    b.push_str("<h1>");
    b.push_str(&escape(&d.title));
    b.push_str("</h1>");
    if !artist.is_empty() {
        b.push_str("<p>");
        b.push_str(&escape(artist));
        b.push_str("</p>");
    }
    if shown.is_empty() {
        b.push_str("<p role=\"status\">This release isn't on any of its services in your country yet.</p>");
    } else {
        b.push_str("<nav aria-label=\"Listen on\">");
        for t in shown {
            b.push_str("<a href=\"/l/");
            b.push_str(&d.slug);
            b.push('/');
            b.push_str(t.platform.key());
            b.push_str(&escape(&query));
            b.push_str("\">");
            b.push_str(&escape(t.label()));
            b.push_str("</a>");
        }
        b.push_str("</nav>");
    }
    b.push_str(
        "<small>The service you pick is remembered on this device (a cookie holding only its name) so it comes first next time. \
         Visits are counted in total only: your IP address and browser details are not stored.</small></main></body></html>",
    );
    b
}

fn meta(b: &mut String, attr: &str, name: &str, content: &str) {
    b.push_str("<meta ");
    b.push_str(attr);
    b.push_str("=\"");
    b.push_str(name);
    b.push_str("\" content=\"");
    b.push_str(&escape(content));
    b.push_str("\">");
}

/// A 302 that no cache keeps: each one is a counted click, and the target
/// may differ by country.
pub fn redirect(location: &str, set_cookie: Option<&'static str>) -> Response {
    let Ok(loc) = HeaderValue::from_str(location) else {
        return error(&Error::internal("target URL is not a valid header value"), false);
    };
    // No body, so no content type either: just where to go, and that
    // neither browsers nor the edge may reuse the answer (each one counts).
    let mut res = Response::new(Vec::new());
    *res.status_mut() = StatusCode::FOUND;
    res.headers_mut().insert(header::LOCATION, loc);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = set_cookie {
        res.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_static(c));
    }
    res
}

pub fn not_found(head: bool) -> Response {
    let body = "<h1>Link not found</h1><p>There is no link at this address. Check the link you followed for typos.</p>";
    html(StatusCode::NOT_FOUND, if head { String::new() } else { shell("Link not found", body) })
}

pub fn error(err: &Error, head: bool) -> Response {
    let mut body = String::from("<h1>Something is not right</h1><p role=\"alert\">");
    body.push_str(&escape(err.public_message()));
    body.push_str("</p>");
    let mut res = html(err.status(), if head { String::new() } else { shell("Error", &body) });
    if err.kind == shared::ErrorKind::MethodNotAllowed {
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    res
}

/// The document up to the title's text (left open for the caller to end).
fn open(b: &mut String, title: &str) {
    b.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>");
    b.push_str(&escape(title));
}

fn shell(title: &str, body: &str) -> String {
    let mut b = String::with_capacity(CSS.len() + body.len() + 256);
    open(&mut b, title);
    b.push_str("</title><style>");
    b.push_str(CSS);
    b.push_str("</style></head><body><main>");
    b.push_str(body);
    b.push_str("</main></body></html>");
    b
}

fn html(status: StatusCode, body: String) -> Response {
    let mut res = httpx::respond(status, httpx::HTML, body);
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    // The page's URL carries UTM tags; the services don't need them twice.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}
