//! What a fan's browser gets: the landing page (one button per service, the
//! likely one first), redirects, and the 404. Plain HTML without script;
//! one small stylesheet pinned by hash in the Content-Security-Policy.

use shared::html::escape;
use shared::http::header::{self, HeaderValue};
use shared::http::StatusCode;
use shared::{httpx, Error, Response};

use crate::icons;
use crate::link::{Link, Platform, Rgb, Target, Theme};
use crate::visit::{Device, Visit};
use shared::qr;

pub const CSS: &str = concat!(
    ":root{color-scheme:light dark}",
    "body{font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;margin:0;padding:1.5rem 1.25rem 2rem;color:#111;background:#f4f4f5}",
    "main{max-width:25rem;margin:0 auto;text-align:center}",
    ".art{display:block;width:100%;height:auto;aspect-ratio:1;object-fit:cover;border-radius:.75rem;box-shadow:0 .75rem 2.5rem #0005}",
    "h1{font-size:1.6rem;line-height:1.2;margin:1.25rem 0 .25rem;overflow-wrap:anywhere}",
    "p{margin:0 0 1.25rem;font-size:1.05rem}",
    "nav a{display:flex;align-items:center;gap:.8rem;margin:.65rem 0;padding:.6rem .7rem .6rem 1rem;min-height:3.25rem;box-sizing:border-box;",
    "border-radius:.75rem;background:#111;color:#fff;text-decoration:none;font-weight:600;text-align:left}",
    "nav svg{width:1.6rem;height:1.6rem;flex:none;fill:currentColor}",
    "nav span{flex:1}",
    "nav b{font-size:.85rem;padding:.25rem .9rem;border:2px solid;border-radius:2rem}",
    "nav .on{outline:3px solid #111;outline-offset:3px}",
    ".vh{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}",
    "small{display:block;margin-top:2rem;font-size:.8rem;line-height:1.4}",
    "@media(prefers-color-scheme:dark){body{color:#f4f4f5;background:#111}nav a{background:#f4f4f5;color:#111}nav .on{outline-color:#f4f4f5}}",
    "@media(min-width:40rem){body{padding-top:3.5rem}}",
    // Wide screens: artwork left, everything else right, all above the fold.
    "@media(min-width:52rem){main:has(.art){max-width:56rem;display:grid;grid-template-columns:1fr 1fr;grid-template-rows:auto auto auto auto 1fr;",
    "column-gap:3rem;text-align:left}main:has(.art)>*{grid-column:2}main:has(.art) .art{grid-column:1;grid-row:1/span 5}main:has(.art) h1{margin-top:0}}",
);

// The policy's two halves as macros, so [`CSP`] is one literal and a
// theme's hash can go between them.
macro_rules! csp_styles {
    () => {
        "default-src 'none'; style-src 'sha256-PCdCxFo2kfvSmyoP4ZyXnra8f/KFI6zKA7vFgNnGCuU='"
    };
}
macro_rules! csp_rest {
    () => {
        "; img-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    };
}

/// No script, nothing loaded but the artwork, never framed. The style hash
/// is [`CSS`]'s SHA-256; a test fails if one changes without the other. A
/// themed link's page adds its own `<style>` and that block's hash (see
/// [`theme_css`]).
pub const CSP: &str = concat!(csp_styles!(), csp_rest!());

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
/// fan's order to the next. Everything that does not depend on the fan is
/// rendered once per cached link ([`Prebuilt`]); a request only orders the
/// buttons and adds its query.
pub fn landing(link: &Link, visit: &Visit, origin: &str, head: bool) -> Response {
    let fresh;
    let pre = match link.page.get() {
        Some(pre) if pre.origin == origin => pre,
        // Another host name than the first one seen (rare: one origin
        // serves every route), rendered for this answer only.
        Some(_) => {
            fresh = Prebuilt::new(link, origin);
            &fresh
        }
        None => link.page.get_or_init(|| Prebuilt::new(link, origin)),
    };
    let mut res = html(StatusCode::OK, if head { String::new() } else { render(pre, link, visit) });
    let h = res.headers_mut();
    if let Some(csp) = &pre.csp {
        h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=60"));
    h.insert(header::VARY, HeaderValue::from_static("User-Agent, Cookie"));
    res
}

/// A link's landing page without the fan: the head and heading as one
/// string, each button around the two places a request fills in (its
/// highlight and its query), and a themed page's policy. Lives with the
/// link in the isolate's cache, so it is rebuilt when the link is.
#[derive(Debug, Clone)]
pub struct Prebuilt {
    /// The origin the canonical URL and `og:url` were written for.
    origin: String,
    head: String,
    /// Per target, in the definition's order: `/l/{slug}/{key}` and what
    /// follows the query up to `</span>`.
    buttons: Vec<(String, String)>,
    csp: Option<HeaderValue>,
}

impl Prebuilt {
    pub fn new(link: &Link, origin: &str) -> Prebuilt {
        let theme = link.def.theme.map(|t| theme_css(&t));
        // Built from validated hex colours only, so always a valid value.
        let csp = theme.as_deref().and_then(|css| HeaderValue::from_str(&themed_csp(css)).ok());
        let buttons = link
            .def
            .targets
            .iter()
            .map(|t| {
                let mut href = String::with_capacity(link.def.slug.len() + 20);
                href.push_str("/l/");
                href.push_str(&link.def.slug);
                href.push('/');
                href.push_str(t.platform.key());
                let mut rest = String::with_capacity(900);
                rest.push_str("\"><svg viewBox=\"0 0 24 24\" aria-hidden=\"true\"><path d=\"");
                rest.push_str(icons::PATHS[t.platform as usize]);
                rest.push_str("\"/></svg><span>");
                rest.push_str(&escape(t.label()));
                (href, rest)
            })
            .collect();
        Prebuilt { origin: origin.to_owned(), head: head(link, origin, theme.as_deref()), buttons, csp }
    }
}
/// The artist's colours as a second stylesheet, after [`CSS`] so it wins in
/// both colour schemes: the artist's look is the look. Text colours are the
/// ones [`Theme`] derived for contrast, so nothing here can make text
/// unreadable.
pub fn theme_css(t: &Theme) -> String {
    let mut css = String::with_capacity(160);
    css.push_str(if t.text == Rgb::WHITE { ":root{color-scheme:dark}" } else { ":root{color-scheme:light}" });
    css.push_str("body{background:");
    t.background.write(&mut css);
    css.push_str(";color:");
    t.text.write(&mut css);
    css.push_str("}nav a{background:");
    t.button.write(&mut css);
    css.push_str(";color:");
    t.button_text.write(&mut css);
    css.push_str("}nav .on{outline-color:");
    t.text.write(&mut css);
    css.push('}');
    css
}

/// [`CSP`] allowing one more stylesheet, `css`, by its SHA-256: hashing
/// keeps the policy as strict as the plain page's (no `'unsafe-inline'`,
/// no nonce to leak), and the artist's colours can't be classes because
/// they are any of 16 million.
pub fn themed_csp(css: &str) -> String {
    let mut csp = String::with_capacity(CSP.len() + 56);
    csp.push_str(csp_styles!());
    csp.push_str(" 'sha256-");
    // Through shared's SHA-256 (the API token hashes use it) rather than a
    // second instance of the hasher in this crate's wasm.
    let hex = shared::crypto::sha256_hex(css.as_bytes());
    let mut digest = [0u8; 32];
    for (i, d) in digest.iter_mut().enumerate() {
        *d = hex.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
    }
    base64_into(&mut csp, &digest);
    csp.push('\'');
    csp.push_str(csp_rest!());
    csp
}

/// Standard base64 with padding; a few lines instead of a crate's engine.
fn base64_into(out: &mut String, bytes: &[u8]) {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ABC[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
}

/// What each button says after the service's name: streaming services
/// play, a video service plays a video, a store sells, and the artist's
/// own button opens whatever it is.
fn verb(p: Platform) -> &'static str {
    match p {
        Platform::Youtube => "Watch",
        Platform::Bandcamp => "Buy",
        Platform::Other => "Open",
        _ => "Play",
    }
}

/// Everything before the buttons: the document head and the heading.
fn head(link: &Link, origin: &str, theme: Option<&str>) -> String {
    let d = &link.def;
    let artist = d.artist.as_deref().unwrap_or("");
    let mut b = String::with_capacity(CSS.len() + theme.map_or(0, str::len) + 1536);
    open(&mut b, &d.title);
    if !artist.is_empty() {
        b.push_str(" – ");
        b.push_str(&escape(artist));
    }
    b.push_str("</title>");
    let mut url = String::with_capacity(origin.len() + d.slug.len() + 3);
    url.push_str(origin);
    url.push_str("/l/");
    url.push_str(&d.slug);
    b.push_str("<link rel=\"canonical\" href=\"");
    b.push_str(&escape(&url));
    b.push_str("\">");
    // Open Graph for link previews (chat apps, social posts).
    meta(&mut b, "property", "og:type", "website");
    meta(&mut b, "property", "og:url", &url);
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
    b.push_str("</style>");
    if let Some(css) = theme {
        b.push_str("<style>");
        b.push_str(css);
        b.push_str("</style>");
    }
    b.push_str("</head><body><main>");
    if let Some(art) = &d.artwork_url {
        b.push_str("<img class=\"art\" src=\"");
        b.push_str(&escape(art));
        b.push_str("\" alt=\"Artwork of ");
        b.push_str(&escape(&d.title));
        b.push_str("\" width=\"400\" height=\"400\">");
    }
    b.push_str("<h1>");
    b.push_str(&escape(&d.title));
    b.push_str("</h1>");
    if !artist.is_empty() {
        b.push_str("<p>");
        b.push_str(&escape(artist));
        b.push_str("</p>");
    }
    b
}

const TAIL: &str = "<small>The service you pick is remembered on this device (a cookie holding only its name) so it comes first next time. \
     Visits are counted in total only: your IP address and browser details are not stored.</small></main></body></html>";

fn render(pre: &Prebuilt, link: &Link, visit: &Visit) -> String {
    let shown = ordered(link, visit);
    let forward = visit.forward_query();
    let query = escape(&forward);
    let buttons: usize = pre.buttons.iter().map(|(href, rest)| href.len() + rest.len() + query.len() + 80).sum();
    let mut b = String::with_capacity(pre.head.len() + buttons + TAIL.len() + 128);
    b.push_str(&pre.head);
    if shown.is_empty() {
        b.push_str("<p role=\"status\">This release isn't on any of its services in your country yet.</p>");
    } else {
        b.push_str("<nav aria-label=\"Listen on\">");
        for t in shown {
            // Targets are unique per service, so the index finds its pieces.
            let Some((href, rest)) = link.def.targets.iter().position(|x| x.platform == t.platform).and_then(|i| pre.buttons.get(i)) else { continue };
            let picked = visit.remembered == Some(t.platform);
            b.push_str(if picked { "<a class=\"on\" href=\"" } else { "<a href=\"" });
            b.push_str(href);
            b.push_str(&query);
            b.push_str(rest);
            if picked {
                b.push_str("<i class=\"vh\">, your last pick</i>");
            }
            b.push_str("</span><b>");
            b.push_str(verb(t.platform));
            b.push_str("</b></a>");
        }
        b.push_str("</nav>");
    }
    b.push_str(TAIL);
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

/// The link's public URL as a QR code. Nothing about the fan changes it and
/// a slug never changes, so any cache may keep it a day.
pub fn qr(link: &Link, origin: &str, head: bool) -> Response {
    let mut url = String::with_capacity(origin.len() + link.def.slug.len() + 3);
    url.push_str(origin);
    url.push_str("/l/");
    url.push_str(&link.def.slug);
    let Some(code) = qr::Code::encode(url.as_bytes()) else {
        return error(&Error::internal("the link's URL is too long for a QR code"), head);
    };
    let mut res = httpx::respond(StatusCode::OK, "image/svg+xml", if head { String::new() } else { code.svg() });
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'"));
    res
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
