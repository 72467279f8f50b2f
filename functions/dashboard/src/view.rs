//! The page frame every dashboard page shares: one stylesheet served as a
//! content-hashed asset (the CSP allows only `'self'` styles and no script
//! at all), the header with the workspace name, navigation and sign-out,
//! and the security headers.

// The studio build (functions/studio) uses part of the frame only.
#![cfg_attr(not(any(test, feature = "people")), allow(dead_code))]

use maud::{html, Markup, PreEscaped, DOCTYPE};
use shared::auth::{Role, Session};
use shared::http::header::{self, HeaderValue};
use shared::http::StatusCode;
use shared::{httpx, Response};

/// System fonts, one column on a phone, light and dark; contrast ≥ 4.5:1
/// for text in both schemes, a visible focus ring everywhere.
pub const CSS: &str = "\
:root{color-scheme:light dark;--fg:#16181d;--muted:#4a5160;--bg:#fbfbfc;--card:#fff;--line:#d5d8de;--accent:#1d4ed8;--accent-fg:#fff;--err:#a11414;--ok:#116129}\
@media (prefers-color-scheme:dark){:root{--fg:#eceef2;--muted:#b4bac6;--bg:#121418;--card:#1b1e24;--line:#383d47;--accent:#8fb0ff;--accent-fg:#0b1020;--err:#ff9b9b;--ok:#7ee2a0}}\
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);background:var(--bg)}\
a{color:var(--accent)}a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
.skip{position:absolute;left:-10000px}.skip:focus{left:1rem;top:1rem;background:var(--card);padding:.5rem}\
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;padding:.75rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}\
header .brand{font-weight:700;text-decoration:none;color:var(--fg)}header .who{color:var(--muted);font-size:.9rem}\
nav{display:flex;flex-wrap:wrap;gap:.25rem .9rem}nav a{text-decoration:none;padding:.25rem 0}nav a[aria-current]{font-weight:700;text-decoration:underline}\
header form{margin-left:auto}main{max-width:72rem;margin:0 auto;padding:1rem}main.narrow{max-width:28rem}main.prose{max-width:42rem}\
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}\
label{display:block;font-weight:600;margin:.5rem 0 .2rem}input,select{font:inherit;color:inherit;background:var(--card);border:1px solid var(--muted);border-radius:.35rem;padding:.5rem;width:100%;max-width:24rem}\
input[type=checkbox]{width:auto}button,.button{font:inherit;display:inline-block;border:0;border-radius:.35rem;padding:.55rem 1rem;background:var(--accent);color:var(--accent-fg);cursor:pointer;text-decoration:none;margin:.5rem 0}\
button.secondary{background:transparent;color:var(--accent);border:1px solid var(--accent)}button.danger,a.button.danger{background:var(--err);color:var(--bg)}\
.filters{display:grid;grid-template-columns:repeat(auto-fill,minmax(10rem,1fr));gap:.25rem 1rem;align-items:end;padding:.75rem;border:1px solid var(--line);border-radius:.5rem;background:var(--card)}\
.filters div{min-width:0}.actions{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center}\
.table{overflow-x:auto}table{border-collapse:collapse;width:100%;background:var(--card)}th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}th{font-size:.85rem;color:var(--muted)}\
td.email{overflow-wrap:anywhere}.muted,small{color:var(--muted)}.err{color:var(--err);font-weight:600}.ok{color:var(--ok);font-weight:600}\
.status{display:inline-block;padding:0 .4rem;border:1px solid var(--line);border-radius:.3rem;font-size:.85rem}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{color:var(--muted)}dd{margin:0}\
.codes{font:1.05rem/1.8 ui-monospace,monospace;columns:2}.secret{font-family:ui-monospace,monospace;word-break:break-all}\
.qr{background:#fff;display:inline-block;padding:.5rem;border-radius:.35rem}.card{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:1rem;margin:1rem 0}\
:root{--c1:#1d4ed8;--c2:#c2410c;--s1:#15803d;--s2:#a16207;--s3:#6b7280;--s4:#b91c1c;--s5:#7e22ce}@media (prefers-color-scheme:dark){:root{--c1:#8fb0ff;--c2:#fdba74;--s1:#4ade80;--s2:#facc15;--s3:#9ca3af;--s4:#f87171;--s5:#d8b4fe}}\
.c1{fill:var(--c1);background:var(--c1)}.c2{fill:var(--c2);background:var(--c2)}.st-sub{fill:var(--s1);background:var(--s1)}.st-pend{fill:var(--s2);background:var(--s2)}.st-unsub{fill:var(--s3);background:var(--s3)}.st-bounce{fill:var(--s4);background:var(--s4)}.st-compl{fill:var(--s5);background:var(--s5)}.empty{fill:var(--line)}\
figure.chart{margin:1rem 0;padding:.75rem;background:var(--card);border:1px solid var(--line);border-radius:.5rem}figcaption{font-weight:600}.plot svg{display:block;width:100%;height:10rem}.axis{stroke:var(--muted)}svg.stack{display:block;width:100%;height:1.5rem;margin:.5rem 0}\
.scale,.ticks{font-size:.8rem;color:var(--muted)}.ticks{display:flex;justify-content:space-between}ul.legend{list-style:none;padding:0;margin:.5rem 0;display:flex;flex-wrap:wrap;gap:.25rem 1rem}.key{display:inline-block;width:.8rem;height:.8rem;border-radius:.15rem;margin-right:.35rem;vertical-align:-.05rem}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(17rem,1fr));gap:0 1rem;align-items:start}table.bars caption{text-align:left;font-weight:600;padding:.5rem 0}td.bar{width:40%;vertical-align:middle}td.bar svg{display:block;width:100%;height:.75rem}.num{text-align:right;font-variant-numeric:tabular-nums}\
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}nav.periods{margin:0 0 .5rem}nav.periods a{padding:.25rem .6rem;border:1px solid var(--line);border-radius:.35rem}dl.figures{display:flex;flex-wrap:wrap;gap:.75rem}dl.figures div{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:.5rem 1rem;min-width:9rem}dl.figures dd{font-size:1.5rem;font-weight:700}\
textarea{font:inherit;color:inherit;background:var(--card);border:1px solid var(--muted);border-radius:.35rem;padding:.5rem;width:100%;max-width:36rem}textarea:focus-visible{outline:3px solid var(--accent);outline-offset:2px}[aria-invalid=true]{border:2px solid var(--err)}.hint{margin:0 0 .25rem;font-size:.9rem;color:var(--muted)}\
.field.check{display:grid;grid-template-columns:auto 1fr;gap:0 .5rem;align-items:center;margin:.75rem 0}.field.check label{margin:0}.field.check .hint{grid-column:2}.editor{display:grid;gap:1rem 2rem;grid-template-columns:repeat(auto-fit,minmax(min(100%,22rem),1fr));align-items:start}.editor h2{margin-top:0}\
.preview iframe{display:block;width:100%;max-width:30rem;height:34rem;border:1px solid var(--line);border-radius:.5rem;background:#fafafa}pre.snippet{overflow-x:auto;padding:1rem;background:var(--card);border:1px solid var(--line);border-radius:.5rem;font-size:.85rem;line-height:1.4}\
fieldset.target,fieldset.theme{border:1px solid var(--line);border-radius:.5rem;margin:.75rem 0;padding:.25rem 1rem .75rem;background:var(--card);max-width:56rem}legend{font-weight:600;padding:0 .25rem}fieldset.target{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,12rem),1fr));gap:0 1rem;align-items:start}fieldset.target details{grid-column:1/-1}summary{cursor:pointer;margin:.5rem 0 0}.colours{display:flex;flex-wrap:wrap;gap:0 1.5rem}input[type=color]{width:4.5rem;height:2.6rem;padding:.15rem}@media (min-width:40rem){fieldset.target .wide{grid-column:span 2}}\
@media (max-width:40rem){table.fans th:nth-child(4),table.fans td:nth-child(4),table.fans th:nth-child(5),table.fans td:nth-child(5){display:none}}";

/// The stylesheet's address carries a hash of its content, so it can be
/// cached for a year and still change on the next deploy (pinned by a test).
pub const CSS_PATH: &str = "/app/assets/app-13010f03.css";

/// Which section the navigation marks as current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Fans,
    Pages,
    Links,
    Team,
    Tokens,
    Account,
}

/// The policy for every dashboard page: our own stylesheet, our own forms,
/// no script, never framed, nothing sent elsewhere. Frames of our own only:
/// the capture-page preview (`pages`, sandboxed).
pub const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-src 'self'; base-uri 'none'; frame-ancestors 'none'";

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width,initial-scale=1";
        meta name="referrer" content="no-referrer";
        title { (title) " · Stagedoor" }
        link rel="stylesheet" href=(CSS_PATH);
        // No icon: keeps the browser from asking for /favicon.ico.
        link rel="icon" href="data:,";
    }
}

/// A page for a signed-in artist.
pub fn app_page(session: &Session, nav: Nav, title: &str, body: Markup) -> String {
    let item = |n: Nav, href: &str, label: &str| {
        html! {
            @if n == nav { a href=(href) aria-current="page" { (label) } } @else { a href=(href) { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    a.brand href="/app/overview" { "Stagedoor" }
                    span.who { (session.artist_name) }
                    nav aria-label="Dashboard" {
                        (item(Nav::Overview, "/app/overview", "Overview"))
                        (item(Nav::Fans, "/app/fans", "Fans"))
                        (item(Nav::Pages, "/app/pages", "Capture pages"))
                        (item(Nav::Links, "/app/links", "Smart links"))
                        (item(Nav::Team, "/app/team", "Team"))
                        @if session.role == Role::Owner { (item(Nav::Tokens, "/app/tokens", "API tokens")) }
                        (item(Nav::Account, "/app/account", "Account"))
                    }
                    form method="post" action="/app/sign-out" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button.secondary type="submit" { "Sign out" }
                    }
                }
                main #main { (body) }
            }
        }
    }
    .into_string()
}

/// A page for fans (`/privacy/…`): the same stylesheet and headers, and
/// nothing that leads into the dashboard.
pub fn fan_page(title: &str, artist: &str, wide: bool, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                header { span.brand { (artist) } }
                main #main class=(if wide { "prose" } else { "narrow" }) { (body) }
            }
        }
    }
    .into_string()
}

/// A page outside the signed-in frame (sign-in, errors before a session).
pub fn bare_page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                header { a.brand href="/app" { "Stagedoor" } }
                main.narrow #main { (body) }
            }
        }
    }
    .into_string()
}

/// An HTML response with the dashboard's security headers. `no-store`
/// comes from `httpx::respond`: every page may show personal data.
pub fn html_response(status: StatusCode, html: String) -> Response {
    let mut res = httpx::respond(status, httpx::HTML, html);
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

pub fn css() -> Response {
    let mut res = httpx::respond(StatusCode::OK, "text/css; charset=utf-8", CSS);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    res
}

/// A 303 to a path of ours.
pub fn redirect(to: &str) -> Response {
    let mut res = httpx::respond(StatusCode::SEE_OTHER, httpx::HTML, Vec::new());
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

pub fn add_cookie(res: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A hidden CSRF field for forms.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// The form that asks for a one-time code (TOTP or recovery code), with
/// its error next to the field.
pub fn code_form(action: &str, csrf: &str, label: &str, button: &str, error: Option<&str>) -> Markup {
    html! {
        form method="post" action=(action) {
            (csrf_field(csrf))
            label for="code" { (label) }
            input #code name="code" autocomplete="one-time-code" required aria-describedby=[error.map(|_| "code-error")];
            @if let Some(e) = error { p #code-error .err role="alert" { (e) } }
            button type="submit" { (button) }
        }
    }
}

/// Dates for people: `2026-01-31 14:05 UTC`.
pub fn datetime(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => {
            let (y, m, d, hh, mm) = civil(ms);
            format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC")
        }
        None => "—".to_owned(),
    }
}

/// `YYYY-MM-DD` of a UTC timestamp.
pub fn date(ms: i64) -> String {
    let (y, m, d, _, _) = civil(ms);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Civil date and time of day from ms since the epoch (UTC).
fn civil(ms: i64) -> (i64, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = shared::date::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32)
}

/// Ms since the epoch of a `YYYY-MM-DD` (UTC midnight), if valid.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) || s.len() != 10 {
        return None;
    }
    let days = shared::date::days_from_civil(y, m as u32, d as u32);
    let ms = days * 86_400_000;
    (date(ms) == s).then_some(ms)
}

/// Unescaped markup we built ourselves (an SVG from the QR module).
pub fn trusted(s: String) -> Markup {
    PreEscaped(s)
}
