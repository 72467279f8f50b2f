//! The capture page and the pages a form post answers with. Plain HTML,
//! works without JavaScript, well under 15 KB.

use std::fmt::Write;

use shared::html::{self, escape};
use shared::http::{header, HeaderValue, StatusCode};
use shared::{Env, Error, Response};

use crate::store::{self, Page, Status};

pub async fn show(slug: &str, env: &impl Env, head: bool) -> Response {
    match store::find_page(env, slug).await {
        Ok(Some(page)) => {
            let mut res = html::response_with_form_target(StatusCode::OK, if head { String::new() } else { render(&page, env, None, "") }, form_target(&page));
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

/// The page again, with the problem next to the form and the address kept.
pub fn show_with_error(page: &Page, env: &impl Env, err: &Error, email: &str) -> Response {
    let mut res = html::response_with_form_target(err.status(), render(page, env, Some(err), email), form_target(page));
    shared::httpx::add_retry_after(&mut res, err);
    res
}

/// Where the form's answer may send the browser besides us.
fn form_target(page: &Page) -> Option<&str> {
    page.redirect_url.as_deref().map(shared::url::origin)
}

fn render(page: &Page, env: &impl Env, err: Option<&Error>, email: &str) -> String {
    let mut b = String::with_capacity(2048);
    let _ = write!(b, "<h1>{}</h1><p class=\"note\">Join {}'s mailing list.</p>", escape(&page.title), escape(&page.artist_name));
    if let Some(e) = err {
        let _ = write!(b, "<p class=\"err\" role=\"alert\">{}</p>", escape(e.public_message()));
    }
    let _ = write!(
        b,
        "<form method=\"post\">\
         <label for=\"email\">Email address</label>\
         <input id=\"email\" name=\"email\" type=\"email\" required maxlength=\"254\" autocomplete=\"email\" inputmode=\"email\" value=\"{}\">\
         <div class=\"hp\" aria-hidden=\"true\"><label for=\"website\">Leave this empty</label><input id=\"website\" name=\"website\" tabindex=\"-1\" autocomplete=\"off\"></div>\
         <label class=\"consent\"><input type=\"checkbox\" name=\"consent\" value=\"yes\" required> <span>{}</span></label>\
         <button type=\"submit\">Sign up</button></form>",
        escape(email),
        escape(&page.consent_text),
    );
    let _ = write!(
        b,
        "<p><small>When you sign up we record your email address (stored encrypted), the time, this page, \
         the consent text you agreed to, and your approximate location (country, region and city), \
         worked out from your IP address. We do not keep your IP address. You can unsubscribe at any time \
         with one click from any email. <a href=\"/privacy/{}\">Your data and your rights</a></small></p>",
        shared::httpx::percent_encode(&page.artist_id)
    );
    if let Some(age) = html::age_notice(env) {
        let _ = write!(b, "<p><small>{age}</small></p>");
    }
    if let Some((text, url)) = env.geo_attribution() {
        let _ = write!(b, "<p><small><a href=\"{}\">{}</a></small></p>", escape(url), escape(text));
    }
    html::page(&page.title, &b)
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
