//! Smart links: one short URL per release that sends each fan to the
//! service they use. `GET`/`HEAD /l/{slug}` shows the landing page (or, for
//! a link that auto-redirects, goes straight to the fan's remembered
//! service); `GET`/`HEAD /l/{slug}/{platform}` counts the click and answers
//! 302; `/api/v1/app/links` is the artists' API (see [`api`]).
//!
//! This is the hottest route in the system. On a cache hit the redirect
//! touches neither KV nor the database and parses no JSON; its one write,
//! the counter, runs after the response.

mod api;
// Public only for its fuzz target (fuzz/fuzz_targets/links_json.rs).
#[doc(hidden)]
pub mod json;
mod link;
mod page;
mod store;
mod visit;

use std::rc::Rc;

use shared::http::Method;
use shared::{Env, Error, ErrorKind, Request, Response};

use link::{Link, Platform, Target};
use store::{Cache, Event};
use visit::Visit;

thread_local! {
    // One per wasm instance: a Workers isolate keeps it across requests.
    static CACHE: Rc<Cache> = Rc::new(Cache::new(store::CACHE_TTL_MS, store::CACHE_CAPACITY));
}

shared::export!(handle);

/// The route family's single entry point.
pub async fn handle(req: Request, env: &impl Env) -> Response {
    let cache = CACHE.with(Rc::clone);
    serve(req, env, &cache).await
}

/// [`handle`] with the cache passed in, so tests each get their own.
pub async fn serve(req: Request, env: &impl Env, cache: &Cache) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    if let Some(rest) = path.strip_prefix(api::PREFIX).filter(|r| r.is_empty() || r.starts_with('/')) {
        return api::handle(&parts, &body, rest, env, cache).await;
    }
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
        landing(&link, &visit, head, env)
    } else {
        click(&link, platform, &visit, head, env)
    }
}

fn landing(link: &Link, visit: &Visit, head: bool, env: &impl Env) -> Response {
    if link.def.auto_redirect && !visit.bot && !visit.choose {
        let remembered = visit.remembered.and_then(|p| link.target(p)).filter(|t| t.available_in(visit.country));
        if let Some(t) = remembered {
            return go(link, t, visit, head, env);
        }
    }
    if !visit.bot && !head {
        store::count(env, link, Event::View, "", visit);
    }
    page::landing(link, visit, head)
}

fn click(link: &Link, key: &str, visit: &Visit, head: bool, env: &impl Env) -> Response {
    let Some(p) = Platform::from_key(key) else { return page::not_found(head) };
    match link.target(p).filter(|t| t.available_in(visit.country)) {
        Some(t) => go(link, t, visit, head, env),
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
/// but neither counted nor remembered.
fn go(link: &Link, t: &Target, visit: &Visit, head: bool, env: &impl Env) -> Response {
    let counted = !visit.bot && !head;
    if counted {
        store::count(env, link, Event::Click, t.platform.key(), visit);
    }
    let utm = if t.platform.takes_utm() { visit.utm.as_str() } else { "" };
    // "other" is not a service, so it is never remembered (see visit.rs).
    let remember = counted && t.platform != Platform::Other;
    page::redirect(&visit::with_utm(t.url_for(visit.country), utm), remember.then(|| visit::choice_cookie(t.platform)))
}

#[cfg(test)]
mod tests;
