//! The signed-in user's own security: turning the second factor on (QR
//! code, confirm with a code, recovery codes shown once) and off, and
//! signing out everywhere. Reachable by a session that still has to enrol
//! because the workspace requires a second factor.

use maud::html;
use shared::auth::{self, Pending, Role, Session};
use shared::crypto::Keys;
use shared::http::request::Parts;
use shared::http::{Method, StatusCode};
use shared::{httpx, Env, Error, ErrorKind, Response};

use crate::view::{self, Nav};
use crate::{qr, Ctx, Form};

/// The `done=` notice of a page we redirected to after a change.
pub fn notice(parts: &Parts) -> Option<&'static str> {
    match httpx::query_param(&parts.uri, "done").as_deref() {
        Some("invited") => Some("Invitation sent."),
        Some("removed") => Some("Removed. Their sessions have ended."),
        Some("saved") => Some("Saved."),
        Some("revoked") => Some("Revoked."),
        Some("disabled") => Some("Two-factor authentication is off."),
        _ => None,
    }
}

pub async fn route(parts: &Parts, path: &str, form: &Form, env: &impl Env, keys: &Keys, session: &Session) -> Result<Response, Error> {
    match (path, &parts.method) {
        ("/app/account", &Method::GET) | ("/app/account", &Method::HEAD) => overview(parts, session),
        ("/app/account/totp/start", &Method::POST) => {
            let secret = auth::begin_totp(env, keys, &session.user_id).await?;
            enrol_page(session, &secret, None, StatusCode::OK)
        }
        ("/app/account/totp/confirm", &Method::POST) => confirm(form, env, keys, session).await,
        ("/app/account/totp/disable", &Method::POST) => disable(form, env, keys, session).await,
        (_, &Method::GET) | (_, &Method::POST) => Err(crate::not_found()),
        _ => Err(Error::new(ErrorKind::MethodNotAllowed, "This address accepts GET and POST only.")),
    }
}

fn frame(session: &Session, title: &str, body: maud::Markup) -> String {
    // A session that must enrol first gets no navigation into tenant data.
    if session.pending() == Some(Pending::Enrol) {
        view::bare_page(title, body)
    } else {
        view::app_page(session, Nav::Account, title, body)
    }
}

fn overview(parts: &Parts, session: &Session) -> Result<Response, Error> {
    let must_enrol = session.pending() == Some(Pending::Enrol);
    let body = html! {
        h1 { "Account" }
        @if let Some(n) = notice(parts) { p.ok role="status" { (n) } }
        h2 { "Two-factor authentication" }
        @if must_enrol { p.err role="alert" { "Your workspace requires an authenticator app. Set one up to continue." } }
        @if session.totp_enabled {
            p { "On. Signing in asks for a code from your authenticator app (or a recovery code)." }
            @if session.require_totp { p.muted { "Your workspace requires it, so it can't be turned off." } } @else {
                form method="post" action="/app/account/totp/disable" {
                    (view::csrf_field(&session.csrf))
                    label for="off-code" { "Current code" }
                    input #off-code name="code" autocomplete="one-time-code" required;
                    button.secondary type="submit" { "Turn off" }
                }
            }
        } @else {
            p { "Off. Add a code from an authenticator app to every sign-in, so a stolen mailbox isn't enough to get in." }
            form method="post" action="/app/account/totp/start" {
                (view::csrf_field(&session.csrf))
                button type="submit" { "Set up two-factor authentication" }
            }
        }
        h2 { "Sessions" }
        form method="post" action="/app/sign-out-everywhere" {
            (view::csrf_field(&session.csrf))
            p { "Sign out of every browser where you are signed in, this one included." }
            button.secondary type="submit" { "Sign out everywhere" }
        }
        @if session.role == Role::Owner && !must_enrol {
            h2 { "Workspace" }
            p { "Download everything, then delete " (session.artist_name) " and all its data." }
            p { a.button.danger href="/app/workspace/delete" { "Delete this workspace…" } }
        }
    };
    Ok(view::html_response(StatusCode::OK, frame(session, "Account", body)))
}

fn enrol_page(session: &Session, secret: &[u8], error: Option<&str>, status: StatusCode) -> Result<Response, Error> {
    let uri = auth::totp::otpauth_uri(secret, "Stagedoor", &session.artist_name);
    let svg = qr::svg(&uri, "QR code to add Stagedoor to your authenticator app")?;
    let body = html! {
        h1 { "Set up two-factor authentication" }
        ol {
            li { "Scan this code with an authenticator app." }
            li { "Enter the 6-digit code the app shows." }
        }
        div.qr { (view::trusted(svg)) }
        details {
            summary { "Can't scan? Enter the key by hand" }
            p.secret { (auth::totp::base32(secret)) }
            p.secret { small { (uri) } }
        }
        (view::code_form("/app/account/totp/confirm", &session.csrf, "Code from the app", "Turn on", error))
    };
    Ok(view::html_response(status, frame(session, "Two-factor authentication", body)))
}

async fn confirm(form: &Form, env: &impl Env, keys: &Keys, session: &Session) -> Result<Response, Error> {
    let typed = form.get("code").unwrap_or("").trim();
    match auth::confirm_totp(env, keys, session, typed).await? {
        Some((codes, new_id)) => {
            let body = html! {
                h1 { "Two-factor authentication is on" }
                p { "Keep these recovery codes somewhere safe. Each signs you in once if you lose your phone. They won't be shown again." }
                ul.codes { @for c in &codes { li { (c) } } }
                p { a.button href="/app/fans" { "Continue to the dashboard" } }
            };
            let mut res = view::html_response(StatusCode::OK, view::bare_page("Recovery codes", body));
            view::add_cookie(&mut res, &auth::set_cookie(auth::SESSION_COOKIE, &new_id, None));
            Ok(res)
        }
        None => match auth::pending_totp(env, keys, &session.user_id).await? {
            Some(secret) => enrol_page(
                session,
                &secret,
                Some("That code didn't match. Check the time on your phone and enter the newest code."),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            None => Ok(view::redirect("/app/account")),
        },
    }
}

async fn disable(form: &Form, env: &impl Env, keys: &Keys, session: &Session) -> Result<Response, Error> {
    if session.require_totp {
        return Err(Error::new(ErrorKind::Forbidden, "Your workspace requires two-factor authentication, so it can't be turned off."));
    }
    if !auth::verify_code_only(env, keys, session, form.get("code").unwrap_or("").trim()).await? {
        return Err(Error::field(
            ErrorKind::Unprocessable,
            "code",
            "That code didn't work, so two-factor authentication is still on. Enter the newest code from your app.",
        ));
    }
    auth::disable_totp(env, session).await?;
    Ok(view::redirect("/app/account?done=disabled"))
}

pub fn api_me<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    let s = &ctx.session;
    let body = serde_json::json!({
        "artist": { "id": s.artist_id, "name": s.artist_name },
        "user": { "id": s.user_id, "role": s.role.as_str(), "second_factor": s.totp_enabled },
    });
    Ok(httpx::respond(StatusCode::OK, httpx::JSON, body.to_string()))
}
