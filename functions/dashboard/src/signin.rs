//! Passwordless sign-in: ask for a link, open it in the same browser,
//! then the second factor when the user has one. See `shared::auth` for
//! the rules; this module is the pages around them.

use maud::html;
use shared::auth::{self, CodeCheck, LinkError, Session};
use shared::crypto::Keys;
use shared::email::Email;
use shared::http::request::Parts;
use shared::http::{Method, StatusCode};
use shared::mail::{self, Message};
use shared::{httpx, Env, Error, ErrorKind, Response};

use crate::{view, Form};

pub async fn route(parts: &Parts, body: &[u8], rest: &str, env: &impl Env) -> Result<Response, Error> {
    let keys = Keys::from_env(env)?;
    match (rest, &parts.method) {
        ("", &Method::GET) | ("", &Method::HEAD) => Ok(form_page(env, parts, None, "", StatusCode::OK)?),
        ("", &Method::POST) => request(parts, body, env, &keys).await,
        ("/verify", &Method::GET) | ("/verify", &Method::HEAD) => verify_page(parts, &keys),
        ("/verify", &Method::POST) => verify(parts, body, env, &keys).await,
        _ => Err(Error::new(ErrorKind::MethodNotAllowed, "This address accepts GET and POST only.")),
    }
}

/// The browser-binding cookie: the one sent, or a new one.
fn binding(parts: &Parts, env: &impl Env) -> Result<(String, bool), Error> {
    match auth::cookie(parts, auth::BINDING_COOKIE) {
        Some(b) => Ok((b.to_owned(), false)),
        None => Ok((auth::random_token(env)?, true)),
    }
}

/// The request form. It (re)sets the binding cookie, so the link works in
/// this browser for the next quarter hour.
fn form_page(env: &impl Env, parts: &Parts, error: Option<&str>, email: &str, status: StatusCode) -> Result<Response, Error> {
    let (bind, _) = binding(parts, env)?;
    let keys = Keys::from_env(env)?;
    let ended = httpx::query_param(&parts.uri, "ended").is_some();
    let body = html! {
        h1 { "Sign in" }
        @if ended { p.muted role="status" { "Your session has ended. Sign in again to continue." } }
        p { "Enter the email address of your Stagedoor account. We'll email you a link that signs you in, in this browser, for the next 10 minutes." }
        form method="post" action="/app/sign-in" novalidate {
            (view::csrf_field(&auth::csrf_token(&keys, "sign-in", &bind)))
            label for="email" { "Email" }
            input #email type="email" name="email" autocomplete="email" required value=(email) aria-describedby=[error.map(|_| "email-error")];
            @if let Some(e) = error { p #email-error .err role="alert" { (e) } }
            button type="submit" { "Send me a sign-in link" }
        }
    };
    let mut res = view::html_response(status, view::bare_page("Sign in", body));
    view::add_cookie(&mut res, &auth::set_cookie(auth::BINDING_COOKIE, &bind, Some(auth::BINDING_MAX_AGE_SECS)));
    Ok(res)
}

async fn request(parts: &Parts, body: &[u8], env: &impl Env, keys: &Keys) -> Result<Response, Error> {
    let form = Form::parse(parts, body)?;
    let typed = form.get("email").unwrap_or("").trim().to_owned();
    let Some(bind) = auth::cookie(parts, auth::BINDING_COOKIE) else {
        // Cookies off, or the form sat open too long: a fresh cookie comes
        // with the form, and nothing about the address is revealed.
        return form_page(
            env,
            parts,
            Some("Your browser didn't send back our sign-in cookie. Allow cookies for this site, then send the form again."),
            &typed,
            StatusCode::BAD_REQUEST,
        );
    };
    auth::check_csrf(parts, &auth::csrf_token(keys, "sign-in", bind), form.get("csrf"))?;
    let email = match Email::parse(&typed) {
        Ok(e) => e,
        Err(e) => return form_page(env, parts, Some(e.message()), &typed, StatusCode::UNPROCESSABLE_ENTITY),
    };
    if let Some((_user, token)) = auth::request_sign_in(env, keys, &email, bind).await? {
        // After the response: the answer takes the same time whether or
        // not the address has an account.
        send_link(env, email.as_str(), &format!("{}/app/sign-in/verify?t={token}", mail::base_url(env)?))?;
    }
    let body = html! {
        h1 { "Check your email" }
        p role="status" { "If " strong { (email.as_str()) } " belongs to a Stagedoor account, a sign-in link is on its way. It works once, for 10 minutes, in this browser only." }
        p.muted { "Nothing arrived? Check your spam folder, or " a href="/app/sign-in" { "ask for another link" } "." }
    };
    Ok(view::html_response(StatusCode::OK, view::bare_page("Check your email", body)))
}

fn send_link(env: &impl Env, to: &str, link: &str) -> Result<(), Error> {
    let text = format!(
        "Sign in to Stagedoor:\n{link}\n\nThe link works once, for 10 minutes, in the browser where you asked for it. If you didn't ask, ignore this email.\n"
    );
    let html = format!(
        "<p><a href=\"{l}\">Sign in to Stagedoor</a></p><p>The link works once, for 10 minutes, in the browser where you asked for it. If you didn't ask, ignore this email.</p>",
        l = shared::html::escape(link)
    );
    mail::send_later(env, &Message { to, subject: "Your Stagedoor sign-in link", text: &text, html: &html, unsubscribe: None }, Vec::new())
}

fn verify_page(parts: &Parts, keys: &Keys) -> Result<Response, Error> {
    let token = httpx::query_param(&parts.uri, "t").unwrap_or_default();
    let bind = auth::cookie(parts, auth::BINDING_COOKIE).unwrap_or("");
    // Opening the link changes nothing (mail scanners open links); the
    // button does.
    let body = html! {
        h1 { "Sign in to Stagedoor" }
        form method="post" action="/app/sign-in/verify" {
            (view::csrf_field(&auth::csrf_token(keys, "verify", bind)))
            input type="hidden" name="t" value=(token);
            button type="submit" { "Sign in" }
        }
    };
    Ok(view::html_response(StatusCode::OK, view::bare_page("Sign in", body)))
}

async fn verify(parts: &Parts, body: &[u8], env: &impl Env, keys: &Keys) -> Result<Response, Error> {
    let form = Form::parse(parts, body)?;
    let bind = auth::cookie(parts, auth::BINDING_COOKIE);
    let token = form.get("t").unwrap_or("");
    if !auth::same_origin(parts) {
        return Err(auth::csrf_refused());
    }
    // Without the binding cookie the CSRF token can't match either; say
    // what actually went wrong.
    let csrf_ok = bind.is_some_and(|b| shared::crypto::ct_eq(auth::csrf_token(keys, "verify", b).as_bytes(), form.get("csrf").unwrap_or("").as_bytes()));
    let outcome =
        if token.is_empty() || token.len() > 64 { Err(LinkError::Expired) } else { auth::redeem_sign_in(env, token, bind.filter(|_| csrf_ok)).await? };
    match outcome {
        Ok(session_id) => {
            let mut res = view::redirect("/app/overview");
            view::add_cookie(&mut res, &auth::set_cookie(auth::SESSION_COOKIE, &session_id, None));
            view::add_cookie(&mut res, &auth::set_cookie(auth::BINDING_COOKIE, "", Some(0)));
            Ok(res)
        }
        Err(LinkError::WrongBrowser) => link_refused(
            StatusCode::FORBIDDEN,
            "This link was asked for in a different browser",
            "For your safety a sign-in link only works in the browser where you asked for it. Open it there, or ask for a new link here.",
        ),
        Err(LinkError::Expired) => {
            link_refused(StatusCode::GONE, "This sign-in link has expired", "Sign-in links work once and for 10 minutes. Ask for a new one.")
        }
    }
}

fn link_refused(status: StatusCode, heading: &str, text: &str) -> Result<Response, Error> {
    let body = html! {
        h1 { (heading) }
        p role="alert" { (text) }
        p { a.button href="/app/sign-in" { "Get a new sign-in link" } }
    };
    Ok(view::html_response(status, view::bare_page(heading, body)))
}

/// The second-factor step of a signed-in but not yet verified session.
pub async fn second_factor(parts: &Parts, form: &Form, env: &impl Env, keys: &Keys, session: &Session) -> Result<Response, Error> {
    if parts.method != Method::POST {
        return code_page(session, None, StatusCode::OK);
    }
    let typed = form.get("code").unwrap_or("");
    match auth::check_code(env, keys, session, typed).await? {
        CodeCheck::Passed(new_id) => {
            let mut res = view::redirect("/app/overview");
            view::add_cookie(&mut res, &auth::set_cookie(auth::SESSION_COOKIE, &new_id, None));
            Ok(res)
        }
        CodeCheck::Wrong => code_page(
            session,
            Some("That code didn't work. Codes change every 30 seconds and each works once; a recovery code works once too."),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        CodeCheck::TooMany => {
            let mut res = view::redirect("/app/sign-in?ended=1");
            view::add_cookie(&mut res, &auth::set_cookie(auth::SESSION_COOKIE, "", Some(0)));
            Ok(res)
        }
    }
}

fn code_page(session: &Session, error: Option<&str>, status: StatusCode) -> Result<Response, Error> {
    let body = html! {
        h1 { "Enter your authentication code" }
        p { "Open your authenticator app and enter the 6-digit code for Stagedoor, or one of your recovery codes." }
        (view::code_form("/app/sign-in/code", &session.csrf, "Code", "Verify", error))
        form method="post" action="/app/sign-out" {
            (view::csrf_field(&session.csrf))
            button.secondary type="submit" { "Sign out" }
        }
    };
    Ok(view::html_response(status, view::bare_page("Authentication code", body)))
}

pub async fn sign_out(env: &impl Env, session: &Session, everywhere: bool) -> Result<Response, Error> {
    if everywhere {
        auth::end_all_sessions(env, session).await?;
    } else {
        auth::end_session(env, session).await?;
    }
    let mut res = view::redirect("/app/sign-in");
    view::add_cookie(&mut res, &auth::set_cookie(auth::SESSION_COOKIE, "", Some(0)));
    Ok(res)
}
