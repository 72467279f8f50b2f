//! Fan signup: an artist's capture page (`GET /s/{page}`), its form post
//! (`POST /s/{page}`), its QR code (`GET /s/{page}/qr.svg`) and the JSON
//! API for embedding (`POST /api/v1/signup`).
//! Both posts run the same checks and the same store logic.

mod confirm;
mod input;
mod page;
mod store;

use shared::http::{header, Method, StatusCode};
use shared::{httpx, Env, Error, ErrorKind, Request, Response};

shared::export!(handle);

/// The route family's single entry point.
pub async fn handle(req: Request, env: &impl Env) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    if path == "/api/v1/signup" {
        return with_cors(match parts.method {
            Method::POST => api_signup(&parts, &body, env).await,
            Method::OPTIONS => httpx::respond(StatusCode::NO_CONTENT, "text/plain", Vec::new()),
            _ => with_allow(httpx::json_error(&method_not_allowed("POST (and OPTIONS for CORS)")), "POST, OPTIONS"),
        });
    }
    let Some(rest) = path.strip_prefix("/s/") else {
        return page::not_found();
    };
    let slug = match rest.split_once('/') {
        Some((slug, "qr.svg")) => {
            return match parts.method {
                Method::GET => page::qr(slug, env, false).await,
                Method::HEAD => page::qr(slug, env, true).await,
                _ => with_allow(page::error(&method_not_allowed("GET")), "GET, HEAD"),
            };
        }
        Some((slug, "confirm")) => {
            let token = shared::httpx::query_param(&parts.uri, "t").unwrap_or_default();
            return match parts.method {
                Method::GET | Method::HEAD => confirm::show(slug, &token, env).await,
                Method::POST => confirm::confirm(slug, &token, env).await,
                _ => with_allow(page::error(&method_not_allowed("GET and POST")), "GET, HEAD, POST"),
            };
        }
        Some(_) => return page::not_found(),
        None => rest,
    };
    match parts.method {
        Method::GET => page::show(slug, env, false).await,
        Method::HEAD => page::show(slug, env, true).await,
        Method::POST => form_signup(slug, &parts, &body, env).await,
        _ => with_allow(page::error(&method_not_allowed("GET and POST")), "GET, HEAD, POST"),
    }
}

async fn form_signup(slug: &str, parts: &shared::http::request::Parts, body: &[u8], env: &impl Env) -> Response {
    let form = match input::Form::parse(parts, body) {
        Ok(form) => form,
        Err(e) => return page::error(&e),
    };
    let page = match store::find_page(env, slug).await {
        Ok(Some(page)) => page,
        Ok(None) => return page::not_found(),
        Err(e) => return page::error(&logged(env, e)),
    };
    match signup(&page, form.fields(), env).await {
        Ok(status) => page::thanks(&page, status),
        Err(e) => page::show_with_error(&page, env, &logged(env, e), &form),
    }
}

async fn api_signup(parts: &shared::http::request::Parts, body: &[u8], env: &impl Env) -> Response {
    let result = async {
        let json = input::Json::parse(parts, body)?;
        let page =
            store::find_page(env, &json.page).await?.ok_or_else(|| Error::field(ErrorKind::NotFound, "page", "No capture page with that name exists."))?;
        signup(&page, json.fields(), env).await
    };
    match result.await {
        Ok(status) => {
            let body = format!("{{\"status\":\"{}\"}}", status.as_str());
            httpx::respond(StatusCode::OK, httpx::JSON, body)
        }
        Err(e) => httpx::json_error(&logged(env, e)),
    }
}

/// Checks shared by both paths, then the write. The answer is the same
/// whether or not the address was already on the list, so the endpoint
/// can't be used to find out who is.
async fn signup(page: &store::Page, fields: input::Fields<'_>, env: &impl Env) -> Result<store::Status, Error> {
    let valid = input::validate(fields, page.look.ask_first_name)?;
    let email = valid.email;
    let keys = shared::crypto::Keys::from_env(env)?;
    let [client, page_window] = input::rate_windows(env, &keys, page);
    let recorded = store::record_signup(env, page, &email, valid.first_name, &keys, [&client, &page_window]).await?;
    // On a single opt-in page too: a comeback after unsubscribing,
    // bouncing or complaining is left pending and must confirm by mail.
    if let Some(fan_id) = recorded.confirm {
        confirm::deliver(env, page, email.as_str(), &fan_id, recorded.at_ms)?;
    }
    Ok(recorded.status)
}

fn method_not_allowed(methods: &str) -> Error {
    Error::new(ErrorKind::MethodNotAllowed, format!("This address accepts {methods} only."))
}

/// A 405 says which methods would work.
fn with_allow(mut res: Response, allow: &'static str) -> Response {
    res.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
    res
}

/// Server faults are logged here, once, without personal data.
fn logged(env: &impl Env, e: Error) -> Error {
    if e.is_server_fault() {
        env.log_error(&format!("signup: {e}"));
    }
    e
}

/// The JSON API is meant to be called from artists' own sites.
fn with_cors(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, header::HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, header::HeaderValue::from_static("POST, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, header::HeaderValue::from_static("content-type"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, header::HeaderValue::from_static("86400"));
    res
}

#[cfg(test)]
mod tests;
