//! The capture page, its QR code, and the pages a form post answers with.
//! Plain HTML, works without JavaScript, well under 15 KB.

use shared::html::{self, escape};
use shared::http::{header, HeaderValue, StatusCode};
use shared::{Env, Error, Response};

use shared::capture::Typed;

use crate::input::Form;
use crate::store::{self, Page, Status};

pub async fn show(slug: &str, env: &impl Env, head: bool) -> Response {
    match store::find_page(env, slug).await {
        Ok(Some(page)) => {
            let body = if head { String::new() } else { page.html.get_or_init(|| render(&page, env, None, Typed::default())).clone() };
            let mut res = respond(&page, StatusCode::OK, body);
            // Same bytes for every visitor: browsers and any shared cache in
            // front may keep it a minute. (A Worker's answers aren't cached
            // by the CDN on their own; the page definition is cached in the
            // isolate instead, see store::PAGE_CACHE_TTL_MS.)
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
            res
        }
        Ok(None) => not_found(),
        Err(e) => {
            env.log_error(&format!("signup: {e}"));
            error(&e)
        }
    }
}

/// The page again, with the problem above the form and what was typed kept.
pub fn show_with_error(page: &Page, env: &impl Env, err: &Error, form: &Form) -> Response {
    let typed = Typed { email: &form.email, first_name: &form.first_name };
    let mut res = respond(page, err.status(), render(page, env, Some(err), typed));
    shared::httpx::add_retry_after(&mut res, err);
    res
}

/// An HTML answer under the page's own policy (see `Page::csp`).
fn respond(page: &Page, status: StatusCode, body: String) -> Response {
    let mut res = shared::httpx::respond(status, shared::httpx::HTML, body);
    let h = res.headers_mut();
    // Never without a policy: were it missing, the strictest one (the
    // page then shows unstyled).
    let csp = page.csp.clone().unwrap_or_else(|| HeaderValue::from_static("default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"));
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

/// The page's public address, when `public_base_url` is set (the sharing
/// tags and the QR code need an absolute URL; mail links use the same).
fn public_url(env: &impl Env, slug: &str) -> Option<String> {
    shared::mail::base_url(env).ok().map(|base| format!("{base}/s/{slug}"))
}

fn render(page: &Page, env: &impl Env, err: Option<&Error>, typed: Typed<'_>) -> String {
    let view = shared::capture::View { title: &page.title, artist_id: &page.artist_id, artist_name: &page.artist_name, consent_text: &page.consent_text };
    let url = public_url(env, &page.slug);
    shared::capture::render_page(&view, &page.look, page.theme_css.as_deref(), url.as_deref(), env, err.map(Error::public_message), typed)
}

/// `GET /s/{slug}/qr.svg`: the page's public URL as a QR code, for posters
/// and merch tables. Nothing about the visitor changes it and a slug never
/// changes, so any cache may keep it a day. An unknown page is the page's
/// own 404.
pub async fn qr(slug: &str, env: &impl Env, head: bool) -> Response {
    let page = match store::find_page(env, slug).await {
        Ok(Some(page)) => page,
        Ok(None) => return not_found(),
        Err(e) => {
            env.log_error(&format!("signup: {e}"));
            return error(&e);
        }
    };
    let code = match shared::mail::base_url(env) {
        Ok(base) => shared::qr::Code::encode(format!("{base}/s/{}", page.slug).as_bytes()),
        Err(e) => {
            env.log_error(&format!("signup: qr.svg: {e}"));
            return error(&Error::internal("public_base_url"));
        }
    };
    // A 64-character slug on a 140-character origin still fits version 10.
    let Some(code) = code else { return error(&Error::internal("the page's URL is too long for a QR code")) };
    let mut res = shared::httpx::respond(StatusCode::OK, "image/svg+xml", if head { String::new() } else { code.svg() });
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'"));
    res
}

pub fn thanks(page: &Page, status: Status) -> Response {
    if let Some(url) = &page.redirect_url {
        if let Ok(v) = HeaderValue::from_str(url) {
            let mut res = shared::httpx::respond(StatusCode::SEE_OTHER, shared::httpx::HTML, Vec::new());
            res.headers_mut().insert(header::LOCATION, v);
            return res;
        }
    }
    let default = match status {
        // The same words for a comeback, who is left pending and mailed a
        // confirmation link: the page must not tell who was on the list.
        Status::Subscribed => format!("Thanks! You're on {}'s list. If you had left it before, check your inbox to confirm.", page.artist_name),
        Status::Pending => "Almost done: check your inbox and confirm your address.".to_owned(),
    };
    let text = page.thanks_text.as_deref().unwrap_or(&default);
    let body = format!("<h1>{}</h1><p role=\"status\">{}</p>", escape(&page.title), escape(text));
    html::response(StatusCode::OK, html::page(&page.title, &body))
}

pub fn not_found() -> Response {
    let body = "<h1>Page not found</h1><p>There is no sign-up page at this address. Check the link you followed.</p>";
    html::response(StatusCode::NOT_FOUND, html::page("Not found", body))
}

/// A bare error page, for failures before we know which page to show.
pub fn error(err: &Error) -> Response {
    let body = format!("<h1>Something is not right</h1><p role=\"alert\">{}</p>", escape(err.public_message()));
    let mut res = html::response(err.status(), html::page("Error", &body));
    shared::httpx::add_retry_after(&mut res, err);
    res
}
