//! Smart links: one short URL per release that sends each fan to the
//! service they use. `GET`/`HEAD /l/{slug}` shows the landing page (or, for
//! a link that auto-redirects, goes straight to the fan's remembered
//! service); `GET`/`HEAD /l/{slug}/{platform}` counts the click and answers
//! 302. The artists' links API (`/api/v1/app/links`, [`api`]) is code of
//! this crate served by the studio function (functions/studio, through
//! `functions/links/lib`): the router and spin.toml send it there, which
//! keeps its token checks, listing and saving out of this hot-path .wasm
//! (12 KB gzip, README "Smart links").
//!
//! This is the hottest route in the system. On a cache hit the redirect
//! touches neither KV nor the database and parses no JSON; its one write,
//! the counter, runs after the response.

pub mod api;
mod icons;
// Public only for its fuzz target (fuzz/fuzz_targets/links_json.rs).
#[doc(hidden)]
pub mod json;
mod link;
mod page;

mod store;
mod visit;

/// What the dashboard's link editor uses: the API's own validation and
/// save (one code path), and the types to show a definition in a form.
pub mod edit {
    pub use crate::api::save_link;
    pub use crate::link::{valid_slug, Country, Definition, Platform, Target, MAX_LABEL, MAX_TITLE};
    pub use crate::store::{Cache, Scope, Stored};
}

use std::rc::Rc;

use shared::http::Method;
use shared::{Env, Error, ErrorKind, Request, Response};

use link::{Link, Platform, Target};
use store::{Cache, Event};
use visit::Visit;

/// `/l/{slug}/qr.svg`: no platform key has a dot, so it can't shadow one.
const QR_PATH: &str = "qr.svg";

thread_local! {
    // One per wasm instance: a Workers isolate keeps it across requests.
    // Its time to live is the `instance_cache_seconds` setting (default
    // 30 s), set at each request from a value read once.
    static CACHE: Rc<Cache> = Rc::new(Cache::new(store::CACHE_TTL_MS, store::CACHE_CAPACITY));
}

shared::export!(handle);

/// The route family's single entry point.
pub async fn handle(req: Request, env: &impl Env) -> Response {
    let cache = CACHE.with(Rc::clone);
    cache.set_ttl_ms(shared::cache::instance_ttl_ms(env));
    serve(req, env, &cache).await
}

/// [`handle`] with the cache passed in, so tests each get their own.
pub async fn serve(req: Request, env: &impl Env, cache: &Cache) -> Response {
    let (parts, _) = req.into_parts();
    let path = parts.uri.path();
    let head = parts.method == Method::HEAD;
    if !head && parts.method != Method::GET {
        return page::error(&Error::new(ErrorKind::MethodNotAllowed, "Links answer GET and HEAD only."), false);
    }
    let Some(rest) = path.strip_prefix("/l/") else { return page::not_found(head) };
    let (slug, platform) = rest.split_once('/').unwrap_or((rest, ""));
    if !link::valid_slug(slug) {
        return page::not_found(head);
    }
    // One clock reading serves the cache and the counters.
    let now = env.now_ms();
    let link = match store::resolve(env, cache, slug, now).await {
        Ok(Some(link)) => link,
        Ok(None) => return page::not_found(head),
        Err(e) => {
            env.log_error(&format!("links: {e}"));
            return page::error(&e, head);
        }
    };
    if platform == QR_PATH {
        return page::qr(&link, &origin(&parts), head);
    }
    // Where the lookup costs I/O (Spin) and the answer does not depend on
    // the country, only the counter needs it: it is looked up after the
    // response.
    let located = !env.country_costs_io()
        || match Platform::from_key(platform) {
            // A click needs only its own service's rules; the page shows them all.
            Some(p) => link.target(p).is_some_and(Target::depends_on_country),
            None => link.depends_on_country(),
        };
    let mut visit = Visit::read(&parts, if located { env.country() } else { None }.as_deref(), now);
    visit.located = located;
    if platform.is_empty() {
        landing(&link, &visit, &origin(&parts), head, env)
    } else {
        click(&link, platform, &visit, head, env)
    }
}

/// The public origin links are shared with (`https://host`; `http://` for
/// this machine), from the request's `Host`: the one origin that serves
/// every route (DESIGN.md), read without a settings lookup on the landing
/// page's path.
fn origin(parts: &shared::http::request::Parts) -> String {
    let host = parts.headers.get(shared::http::header::HOST).and_then(|h| h.to_str().ok()).or_else(|| parts.uri.authority().map(|a| a.as_str())).unwrap_or("");
    let host = host.trim();
    // Only host-name characters reach the page and the QR code.
    let host = if host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')) { host } else { "" };
    let name = host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(n, _)| n);
    let local = matches!(name, "localhost" | "127.0.0.1" | "[::1]");
    let mut o = String::with_capacity(host.len() + 8);
    o.push_str(if local { "http://" } else { "https://" });
    o.push_str(host);
    o
}

fn landing(link: &Link, visit: &Visit, origin: &str, head: bool, env: &impl Env) -> Response {
    if link.def.auto_redirect && !visit.bot && !visit.choose {
        let remembered = visit.remembered.and_then(|p| link.target(p)).filter(|t| t.available_in(visit.country));
        if let Some(t) = remembered {
            // The page was never shown: should the in-app browser refuse an
            // app link, the fan would be left on an error page, not on the
            // choice. So the web URL, as for every ordinary browser.
            return go(link, t, visit, head, false, env);
        }
    }
    if !visit.bot && !head {
        store::count(env, link, Event::View, "", visit);
    }
    page::landing(link, visit, origin, head)
}

fn click(link: &Link, key: &str, visit: &Visit, head: bool, env: &impl Env) -> Response {
    let Some(p) = Platform::from_key(key) else { return page::not_found(head) };
    match link.target(p).filter(|t| t.available_in(visit.country)) {
        Some(t) => go(link, t, visit, head, true, env),
        // Not on this link, or hidden where the fan is: let them choose.
        None => {
            let mut to = String::with_capacity(link.def.slug.len() + visit.utm.len() + 4);
            to.push_str("/l/");
            to.push_str(&link.def.slug);
            if !visit.utm.is_empty() {
                to.push('?');
                to.push_str(&visit.utm);
            }
            page::redirect(&to, None)
        }
    }
}

/// The tracked redirect. Bots and HEAD requests are answered the same way
/// but neither counted nor remembered. `tapped`: the fan chose this
/// service on our page, so an in-app browser gets the app link (counted
/// and remembered the same: only where the 302 points changes).
fn go(link: &Link, t: &Target, visit: &Visit, head: bool, tapped: bool, env: &impl Env) -> Response {
    let counted = !visit.bot && !head;
    if counted {
        store::count(env, link, Event::Click, t.platform.key(), visit);
    }
    let utm = if t.platform.takes_utm() { visit.utm.as_str() } else { "" };
    // "other" is not a service, so it is never remembered (see visit.rs).
    let remember = counted && t.platform != Platform::Other;
    let web = visit::with_utm(t.url_for(visit.country), utm);
    let app = if tapped && visit.in_app { t.platform.app_link(&web, visit.device) } else { None };
    page::redirect(app.as_deref().unwrap_or(&web), remember.then(|| visit::choice_cookie(t.platform)))
}

#[cfg(test)]
mod tests;
