//! `/privacy/{artist}`: the artist's privacy notice for fans, and fans'
//! own requests for a copy of their data or its erasure (README "Fan
//! rights"). No session and no cookie: the fan proves they hold the
//! address by opening a single-use link mailed to it (`shared::auth::fan`).
//!
//! Decisions:
//! - The answer to a request is the same page, status and time whether or
//!   not the address is on the artist's list: the statements are the same
//!   either way, and the mail leaves after the response.
//! - Opening the mailed link only describes what will happen; the button's
//!   POST does it (mail scanners open links). The link is spent by that
//!   POST whatever happens next, so a double submit acts once.
//! - Access gives the same document as the dashboard's export, erasure
//!   runs the same batch as the dashboard's (`crate::rights`), recorded as
//!   `by_user = 'fan'`, `method = 'fan'`.
//! - The retention periods shown are read from the settings the jobs
//!   function enforces (`shared::retention::Settings`), never written here.
//! - Rectification and restriction stay with the artist, who can check
//!   what the fan says before changing it; the page says how to ask.

use maud::{html, Markup, PreEscaped};
use shared::auth;
use shared::auth::fan::{self, Kind, Refused};
use shared::crypto::Keys;
use shared::email::Email;
use shared::http::header::{self, HeaderValue};
use shared::http::request::Parts;
use shared::http::{Method, StatusCode};
use shared::mail::{self, Message};
use shared::{httpx, Env, Error, ErrorKind, Response};

use crate::rights::{self, ErasedBy, Scope};
use crate::{fans, view, Form};

pub const PREFIX: &str = "/privacy";

/// The artist whose page this is. The name is escaped once and the path
/// percent-encoded once: the pages repeat them, and each escape maud
/// writes is code of its own in a module with a size budget.
struct Artist {
    id: String,
    name: String,
    html: Markup,
    /// `/privacy/{id}`, safe in an attribute as it is.
    href: Markup,
}

impl Artist {
    fn new(id: String, name: String) -> Artist {
        let (html, href) = (PreEscaped(shared::html::escape(&name).into_owned()), PreEscaped(format!("{PREFIX}/{}", httpx::percent_encode(&id))));
        Artist { id, name, html, href }
    }
}

/// Our own text: nothing to escape.
fn ours(s: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(s)
}

pub async fn handle(parts: &Parts, body: &[u8], env: &impl Env) -> Response {
    match route(parts, body, env).await {
        Ok(res) => res,
        Err(e) => error_page(env, &e),
    }
}

async fn route(parts: &Parts, body: &[u8], env: &impl Env) -> Result<Response, Error> {
    let rest = parts.uri.path().strip_prefix(PREFIX).and_then(|r| r.strip_prefix('/')).unwrap_or("");
    let (raw, confirming) = match rest.split_once('/') {
        None => (rest, false),
        Some((raw, "confirm")) => (raw, true),
        Some(_) => return Err(missing()),
    };
    let id = httpx::percent_decode(raw).ok_or_else(missing)?;
    let name = fan::artist_name(env, &id).await?.ok_or_else(missing)?;
    let a = Artist::new(id, name);
    match (confirming, &parts.method) {
        (false, &Method::GET | &Method::HEAD) => Ok(notice(env, &a, &Typed::default(), StatusCode::OK)),
        (false, &Method::POST) => request(parts, body, env, &a).await,
        (true, &Method::GET | &Method::HEAD) => confirm_page(parts, env, &a).await,
        (true, &Method::POST) => confirm(parts, body, env, &a).await,
        _ => Err(Error::new(ErrorKind::MethodNotAllowed, "This address accepts GET and POST only.")),
    }
}

fn missing() -> Error {
    Error::new(ErrorKind::NotFound, "There is no privacy page at this address. Check the link you followed.")
}

fn error_page(env: &impl Env, e: &Error) -> Response {
    if e.is_server_fault() {
        env.log_error(&format!("privacy: {e}"));
    }
    let heading = match e.kind {
        ErrorKind::NotFound => "Not found",
        ErrorKind::Unavailable | ErrorKind::Internal => "Something went wrong",
        _ => "That didn't work",
    };
    let body = html! { h1 { (ours(heading)) } p role="alert" { (e.public_message()) } };
    let mut res = view::html_response(e.status(), view::fan_page(heading, "Stagedoor", false, body));
    if e.kind == ErrorKind::MethodNotAllowed {
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    }
    res
}

// ---------------------------------------------------------------- notice

/// What the request form holds, as typed, and what was wrong with it.
#[derive(Default)]
struct Typed {
    email: String,
    kind: String,
    email_error: Option<&'static str>,
    kind_error: Option<&'static str>,
    /// A refusal of the whole request (a rate limit), and when to retry.
    alert: Option<String>,
    retry_after: Option<u32>,
}

fn plural(n: i64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// [`plural`] for a page: digits and our words, nothing to escape.
fn count(n: i64, one: &str) -> Markup {
    PreEscaped(plural(n, one))
}

/// `GET /privacy/{artist}`: what is kept, why, by whom, for how long, the
/// rights and how to use them, and the request form.
fn notice(env: &impl Env, a: &Artist, t: &Typed, status: StatusCode) -> Response {
    let r = shared::retention::Settings::from_env(env);
    let link_minutes = fan::Settings::from_env(env).link_minutes;
    let artist = &a.html;
    let age = shared::html::age_notice(env).map(PreEscaped);
    let body = html! {
        h1 { "Your data on " (artist) "'s mailing list" }
        p { "What is kept about you when you sign up to " (artist) "'s news, why, for how long, and how to see it, take it with you or have it erased." }
        @if let Some(age) = &age { p { strong { (age) } " If you are younger, please don't sign up." } }
        h2 { "Who" }
        p { (artist) " decides what happens with your data (the controller). Stagedoor runs the sign-up pages and keeps the data for them (the processor), and uses it for nothing else." }
        h2 { "What is kept" }
        ul {
            li { "Your email address, stored encrypted." }
            li { "Your approximate location (country, region and city), worked out from your IP address when you sign up. The IP address itself is never stored." }
            li { "Which sign-up page you used and when, and proof of your consent: the version of the consent text you agreed to and its SHA-256 hash, with the times you confirmed or unsubscribed." }
            li { "The mail sent to you (its kind and time, never its content), and any bounce or spam complaint your mail provider reported." }
        }
        h2 { "Why" }
        p { "To send you " (artist) "'s news, which you asked for. Nothing else: it is not sold, and not used for advertising." }
        h2 { "How long" }
        ul {
            li { "Your address, location and consent record: for as long as you are on the list. After you unsubscribe they are kept, with the proof that you left, so that no more mail is sent; erase them with the form below." }
            li { "A sign-up you never confirmed by email: " (count(r.pending_signup_days, "day")) ", then it is deleted." }
            li { "The record of mail sent to you: " (count(r.mail_log_days, "day")) "." }
            li { "Events about you sent to " (artist) "'s own systems (webhooks), and the log of their delivery: " (count(r.webhook_days, "day")) "." }
            li { "Click counts on " (artist) "'s links: " (count(r.link_stats_months, "month")) ". They are totals per day and name no one." }
            li { "Requests made on this page: deleted once used, or after " (count(link_minutes, "minute")) "." }
        }
        h2 { "Your rights" }
        ul {
            li { strong { "A copy of your data" } " (access, portability): ask below, and you get everything as a JSON file." }
            li { strong { "Erasure" } ": ask below. Everything about you goes at once; " (artist) " keeps only a note that an erasure happened, not whose. Backups of the database may hold it for up to 30 days more." }
            li { strong { "No more mail" } " (objection): the unsubscribe link in every mail, one click." }
            li { strong { "Correcting your data, or having it kept but not used" } " (rectification, restriction): ask " (artist) ", who can do it from their dashboard." }
            li { "You may also complain to your data protection authority." }
        }
        h2 #ask { "Ask for a copy or for erasure" }
        (form(a, t, link_minutes))
    };
    let mut res = view::html_response(status, view::fan_page("Your data", &a.name, true, body));
    if let Some(v) = t.retry_after.and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

fn form(a: &Artist, t: &Typed, link_minutes: i64) -> Markup {
    let selected = |k: &str| t.kind == k;
    html! {
        @if let Some(alert) = &t.alert { p.err role="alert" { (alert) } }
        form method="post" action=(a.href) novalidate {
            label for="email" { "Your email address" }
            input #email type="email" name="email" autocomplete="email" required maxlength="254" value=(t.email) aria-describedby=[t.email_error.map(|_| "email-error")];
            @if let Some(e) = t.email_error { p #email-error .err role="alert" { (e) } }
            div {
                label for="kind" { "What do you want?" }
                select #kind name="kind" aria-describedby=[t.kind_error.map(|_| "kind-error")] {
                    option value="access" selected[selected("access")] { "A copy of my data (a JSON file)" }
                    option value="erase" selected[selected("erase")] { "Erase my data" }
                }
                @if let Some(e) = t.kind_error { p #kind-error .err role="alert" { (e) } }
            }
            button type="submit" { "Send me a link" }
        }
        p.muted { "If the address is on the list we email it a link. Nothing happens until you open it and press its button. It works once, for " (count(link_minutes, "minute")) "." }
    }
}

// --------------------------------------------------------------- request

/// `POST /privacy/{artist}`: `email`, `kind` (`access` or `erase`).
async fn request(parts: &Parts, body: &[u8], env: &impl Env, a: &Artist) -> Result<Response, Error> {
    if !auth::same_origin(parts) {
        return Err(auth::csrf_refused());
    }
    let form = Form::parse(parts, body)?;
    let mut t = Typed { email: form.get("email").unwrap_or("").trim().to_owned(), kind: form.get("kind").unwrap_or("").to_owned(), ..Typed::default() };
    let email = Email::parse(&t.email).map_err(|e| t.email_error = Some(e.message())).ok();
    let kind = Kind::parse(&t.kind);
    if kind.is_none() {
        t.kind_error = Some("Choose a copy of your data or its erasure.");
    }
    let (Some(email), Some(kind)) = (email, kind) else {
        return Ok(notice(env, a, &t, StatusCode::UNPROCESSABLE_ENTITY));
    };
    let keys = Keys::from_env(env)?;
    match fan::request(env, &keys, &a.id, &email, kind).await {
        Ok(Some((fan_id, token))) => send_link(env, a, &email, kind, &fan_id, &token)?,
        Ok(None) => {}
        Err(Error { kind: ErrorKind::RateLimited { retry_after }, message, .. }) => {
            t.alert = Some(format!("{message} You can ask again in {}.", plural(i64::from(retry_after.div_ceil(60)), "minute")));
            t.retry_after = Some(retry_after);
            return Ok(notice(env, a, &t, StatusCode::TOO_MANY_REQUESTS));
        }
        Err(e) => return Err(e),
    }
    let minutes = fan::Settings::from_env(env).link_minutes;
    let body = html! {
        h1 { "Check your email" }
        p role="status" {
            "If " strong { (email.as_str()) } " is on " (a.html) "'s mailing list, a link is on its way to it. Open it within "
            (count(minutes, "minute")) " and press the button on the page it opens: nothing happens until you do."
        }
        p.muted { "Nothing arrived? Check your spam folder, or " a href=(a.href) { "ask again" } ". No mail is sent to an address that is not on the list: nothing is held about it." }
    };
    Ok(view::html_response(StatusCode::OK, view::fan_page("Check your email", &a.name, false, body)))
}

/// The link, to the fan's own address, after the response.
fn send_link(env: &impl Env, a: &Artist, email: &Email, kind: Kind, fan_id: &str, token: &str) -> Result<(), Error> {
    let base = mail::base_url(env)?;
    let (link, page) = (format!("{base}{}/confirm?t={token}", a.href.0), format!("{base}{}", a.href.0));
    let minutes = plural(fan::Settings::from_env(env).link_minutes, "minute");
    let what = match kind {
        Kind::Access => "a copy of the data they hold about you",
        Kind::Erase => "the erasure of the data they hold about you",
    };
    let artist = &a.name;
    let subject = format!("Confirm your request to {artist}");
    let text = format!(
        "Someone, we hope you, asked {artist} for {what}.\n\nTo go ahead, open this link and press the button on the page:\n{link}\n\n\
         The link works once, for {minutes}. If you didn't ask, ignore this email: nothing happens.\n\nHow {artist} handles your data: {page}\n"
    );
    let esc = shared::html::escape;
    let html = format!(
        "<p>Someone, we hope you, asked {a} for {what}.</p><p><a href=\"{l}\">Go ahead</a> (then press the button on the page)</p>\
         <p>The link works once, for {minutes}. If you didn't ask, ignore this email: nothing happens.</p>\
         <p><small><a href=\"{p}\">How {a} handles your data</a></small></p>",
        a = esc(artist),
        l = esc(&link),
        p = esc(&page)
    );
    mail::send_later_to_fan(env, &Message { to: email.as_str(), subject: &subject, text: &text, html: &html, unsubscribe: None }, &a.id, fan_id)
}

// ---------------------------------------------------------- confirmation

/// `GET /privacy/{artist}/confirm?t=…`: what the button will do.
async fn confirm_page(parts: &Parts, env: &impl Env, a: &Artist) -> Result<Response, Error> {
    let token = httpx::query_param(&parts.uri, "t").unwrap_or_default();
    let kind = match fan::peek(env, &a.id, &token).await? {
        Ok(kind) => kind,
        Err(r) => return Ok(refused(a, r)),
    };
    let (title, text, button) = match kind {
        Kind::Access => (
            "Download your data",
            "Press the button to download everything held about you on this list, as a JSON file. The link then stops working: ask again for a fresh copy.",
            "Download my data",
        ),
        Kind::Erase => (
            "Erase your data",
            "Press the button to erase your address, location, consent record and the record of mail sent to you, at once and for good. You will get no more mail from this list. This cannot be undone.",
            "Erase my data",
        ),
    };
    let body = html! {
        h1 { (ours(title)) }
        p { (ours(text)) }
        @if kind == Kind::Erase { p.muted { "Want a copy first? " a href=(a.href) { "Ask for one" } " before you erase." } }
        form method="post" action={ (a.href) "/confirm" } {
            input type="hidden" name="t" value=(token);
            button class=[(kind == Kind::Erase).then_some("danger")] type="submit" { (ours(button)) }
        }
    };
    Ok(view::html_response(StatusCode::OK, view::fan_page(title, &a.name, false, body)))
}

/// `POST /privacy/{artist}/confirm` with `t`: spends the link, then acts.
async fn confirm<E: Env>(parts: &Parts, body: &[u8], env: &E, a: &Artist) -> Result<Response, Error> {
    if !auth::same_origin(parts) {
        return Err(auth::csrf_refused());
    }
    let form = Form::parse(parts, body)?;
    let v = match auth::fan_request_tenant(env, &a.id, form.get("t").unwrap_or("")).await? {
        Ok(v) => v,
        Err(r) => return Ok(refused(a, r)),
    };
    let keys = Keys::from_env(env)?;
    let scope = Scope { env, db: &v.tenant, keys: &keys, artist_name: &a.name };
    // Erased meanwhile (by the artist): nothing left to give or erase.
    let gone = |e: Error| if e.kind == ErrorKind::NotFound { Ok(refused(a, Refused::Gone)) } else { Err(e) };
    match v.kind {
        Kind::Access => rights::attachment(&scope, &v.fan_id).await.or_else(gone),
        Kind::Erase => {
            if let Err(e) = fans::one_of(&v.tenant, &keys, &v.fan_id).await {
                return gone(e);
            }
            rights::erase_fan(env, &v.tenant, &v.fan_id, ErasedBy::Fan).await?;
            let body = html! {
                h1 { "Erased" }
                p.ok role="status" { "Your data is gone from " (a.html) "'s list. You will get no more mail from it." }
                p { (a.html) " keeps only a note that an erasure happened, with the time: not whose. Their own systems that had your data were told." }
            };
            Ok(view::html_response(StatusCode::OK, view::fan_page("Erased", &a.name, false, body)))
        }
    }
}

/// A link that can't be used: damaged (400), or used, expired or unknown
/// here (410). Either way, asking again is the way on.
fn refused(a: &Artist, r: Refused) -> Response {
    let (status, heading, text) = match r {
        Refused::Malformed => {
            (StatusCode::BAD_REQUEST, "This link doesn't work", "The link is incomplete or damaged. Copy the whole link from the email, or ask again.")
        }
        Refused::Gone => (
            StatusCode::GONE,
            "This link has expired or was used",
            "Links work once and for a short time. Nothing was done with this one: ask again for a new link.",
        ),
    };
    let body = html! {
        h1 { (ours(heading)) }
        p role="alert" { (ours(text)) }
        p { a.button href={ (a.href) "#ask" } { "Ask again" } }
    };
    view::html_response(status, view::fan_page(heading, &a.name, false, body))
}

#[cfg(test)]
mod tests;
