//! The artists' dashboard: `/app/*` pages and `/api/v1/app/*` JSON (the
//! links API stays in `functions/links`), and the webhooks API for the
//! artist's own systems (`hooks`, API tokens instead of sessions).
//!
//! Fans' privacy pages (`privacy`, `/privacy/{artist}`) take no session:
//! a link mailed to the fan's address is their proof.
//!
//! Every other request goes through [`route`]: sign-in pages are the only ones
//! reachable without a session; everything else loads the session, sends a
//! half-signed-in one to its second factor, checks CSRF on every POST
//! (before any handler runs), and hands handlers a [`Ctx`] whose only way
//! to tenant data is [`shared::auth::Tenant`]. This crate never touches
//! the raw database port (`shared/tests/tidy.rs` checks it).

// The people routes (the dashboard function).
#[cfg(any(test, feature = "people"))]
mod account;
// Public only for its fuzz target (fuzz/fuzz_targets/dashboard_csv.rs).
#[cfg(any(test, feature = "people"))]
#[doc(hidden)]
pub mod csv;
#[cfg(any(test, feature = "people"))]
mod fans;
#[cfg(any(test, feature = "people"))]
mod hooks;
#[cfg(any(test, feature = "people"))]
mod privacy;
#[cfg(any(test, feature = "people"))]
pub mod qr;
#[cfg(any(test, feature = "people"))]
mod rights;
#[cfg(any(test, feature = "people"))]
mod signin;
#[cfg(any(test, feature = "people"))]
mod team;
#[cfg(any(test, feature = "people"))]
mod workspace;
// The studio routes (functions/studio).
#[cfg(any(test, feature = "studio"))]
mod analytics;
#[cfg(any(test, feature = "studio"))]
mod chart;
#[cfg(any(test, feature = "studio"))]
mod links;
#[cfg(any(test, feature = "studio"))]
mod overview;
#[cfg(any(test, feature = "studio"))]
mod pages;
mod view;

use shared::auth::{self, Loaded, Pending, Role, Session, Tenant};
use shared::crypto::Keys;
use shared::http::request::Parts;
use shared::http::{Method, StatusCode};
use shared::{httpx, Env, Error, ErrorKind, Request, Response};

shared::export!(handle);

pub async fn handle(req: Request, env: &impl Env) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    // Machine-facing, token-authenticated: no session, no CSRF form.
    #[cfg(any(test, feature = "people"))]
    if path == hooks::PREFIX || path.strip_prefix(hooks::PREFIX).is_some_and(|r| r.starts_with('/')) {
        return hooks::handle(&parts, &body, env).await;
    }
    // Fans' own privacy page and requests: no session, the mailed link is the proof.
    #[cfg(any(test, feature = "people"))]
    if path == privacy::PREFIX || path.starts_with("/privacy/") {
        return privacy::handle(&parts, &body, env).await;
    }
    // The artists' links API: the links crate's own code, served here so
    // that the links function's hot-path .wasm doesn't carry it (README
    // "Smart links"). It caches nothing across requests here: this
    // function serves no link pages.
    #[cfg(any(test, feature = "studio"))]
    if let Some(rest) = path.strip_prefix(::links::api::PREFIX).filter(|r| r.is_empty() || r.starts_with('/')) {
        return ::links::api::handle(&parts, &body, rest, env, &::links::edit::Cache::new(0, 1)).await;
    }
    let api = path.starts_with("/api/");
    match route(&parts, &body, env).await {
        Ok(res) => res,
        Err(e) => error(env, &e, api),
    }
}

/// What a handler for a signed-in artist gets.
pub struct Ctx<'e, E: Env> {
    pub env: &'e E,
    pub keys: std::rc::Rc<Keys>,
    pub session: Session,
    pub db: Tenant<'e, E>,
    pub parts: &'e Parts,
    /// The decoded form of a POST (already CSRF-checked).
    pub form: Form,
}

impl<E: Env> Ctx<'_, E> {
    pub fn require_owner(&self) -> Result<(), Error> {
        match self.session.role {
            Role::Owner => Ok(()),
            Role::Member => Err(Error::new(ErrorKind::Forbidden, "Only an owner of this workspace can do that.")),
        }
    }
}

/// A decoded `application/x-www-form-urlencoded` body.
#[derive(Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn parse(parts: &Parts, body: &[u8]) -> Result<Form, Error> {
        httpx::require_media_type(parts, "application/x-www-form-urlencoded")?;
        httpx::parse_form(body).map(Form)
    }
}

async fn route(parts: &Parts, body: &[u8], env: &impl Env) -> Result<Response, Error> {
    let path = parts.uri.path();
    #[cfg(any(test, feature = "people"))]
    if path == view::CSS_PATH {
        return Ok(view::css());
    }
    #[cfg(any(test, feature = "people"))]
    if let Some(rest) = path.strip_prefix("/app/sign-in") {
        if rest.is_empty() || rest == "/verify" {
            return signin::route(parts, body, rest, env).await;
        }
    }
    let api = path.starts_with("/api/v1/app/");
    let keys = Keys::from_env(env)?;
    let session = match current_session(parts, env, &keys).await? {
        Ok(s) => s,
        Err(expired) if api => {
            return Err(Error::new(ErrorKind::Unauthorized, if expired { "Your session has ended. Sign in again." } else { "Sign in first." }))
        }
        Err(expired) => return Ok(view::redirect(if expired { "/app/sign-in?ended=1" } else { "/app/sign-in" })),
    };
    let form = if parts.method == Method::POST {
        let form = Form::parse(parts, body)?;
        auth::check_csrf(parts, &session.csrf, form.get("csrf"))?;
        form
    } else {
        Form::default()
    };
    #[cfg(any(test, feature = "people"))]
    match (path, &parts.method) {
        ("/app/sign-out", &Method::POST) => return signin::sign_out(env, &session, false).await,
        ("/app/sign-out-everywhere", &Method::POST) => return signin::sign_out(env, &session, true).await,
        _ => {}
    }
    if session.pending().is_some() && api {
        return Err(Error::new(ErrorKind::Unauthorized, "Finish signing in (second factor) in the dashboard first."));
    }
    match session.pending() {
        #[cfg(any(test, feature = "people"))]
        Some(Pending::Code) if path == "/app/sign-in/code" => return signin::second_factor(parts, &form, env, &keys, &session).await,
        Some(Pending::Code) if parts.method == Method::GET => return Ok(view::redirect("/app/sign-in/code")),
        Some(Pending::Code) => return Err(Error::new(ErrorKind::Unauthorized, "Enter your authentication code first.")),
        Some(Pending::Enrol) if !path.starts_with("/app/account") => return Ok(view::redirect("/app/account")),
        #[cfg(any(test, feature = "people"))]
        Some(Pending::Enrol) => return account::route(parts, path, &form, env, &keys, &session).await,
        #[cfg(not(any(test, feature = "people")))]
        Some(Pending::Enrol) => return Ok(view::redirect("/app/account")),
        None => {}
    }
    let db = session.tenant(env)?;
    let ctx = Ctx { env, keys, session, db, parts, form };
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    let post = parts.method == Method::POST;
    #[cfg(any(test, feature = "studio"))]
    if let Some(res) = studio_routes(&ctx, &segs, get, post).await {
        return res;
    }
    #[cfg(any(test, feature = "people"))]
    if let Some(res) = people_routes(&ctx, &segs, get, post).await {
        return res;
    }
    if get || post {
        Err(not_found())
    } else {
        Err(Error::new(ErrorKind::MethodNotAllowed, "This address accepts GET and POST only."))
    }
}

/// The dashboard function's pages (README "Functions and sizes").
#[cfg(any(test, feature = "people"))]
async fn people_routes<E: Env>(ctx: &Ctx<'_, E>, segs: &[&str], get: bool, post: bool) -> Option<Result<Response, Error>> {
    let (parts, path, env) = (ctx.parts, ctx.parts.uri.path(), ctx.env);
    Some(match segs {
        ["app"] | ["app", "sign-in", "code"] if get => Ok(view::redirect("/app/overview")),
        ["app", "fans"] if get => fans::list(ctx).await,
        ["app", "fans.csv"] if get => fans::csv(ctx).await,
        ["app", "fans", id] if get => fans::show(ctx, id).await,
        ["app", "fans", id, "unsubscribe"] if post => fans::unsubscribe(ctx, id).await,
        ["app", "fans", id, "export.json"] if get => rights::download(ctx, id).await,
        ["app", "fans", id, "erase"] if get => rights::erase_form(ctx, id).await,
        ["app", "fans", id, "erase"] if post => rights::erase(ctx, id).await,
        ["app", "fans", id, "restrict"] if post => rights::restrict(ctx, id, true).await,
        ["app", "fans", id, "unrestrict"] if post => rights::restrict(ctx, id, false).await,
        ["app", "fans", id, "edit"] if get => rights::edit_form(ctx, id).await,
        ["app", "fans", id, "edit"] if post => rights::edit(ctx, id).await,
        ["app", "account", ..] => account::route(parts, path, &ctx.form, env, &ctx.keys, &ctx.session).await,
        ["app", "team"] if get => team::list(ctx).await,
        ["app", "team"] if post => team::invite(ctx).await,
        ["app", "team", "require-second-factor"] if post => team::require_totp(ctx).await,
        ["app", "team", id, "remove"] if post => team::remove(ctx, id).await,
        ["app", "tokens"] if get => team::tokens(ctx).await,
        ["app", "tokens"] if post => team::create_token(ctx).await,
        ["app", "tokens", id, "revoke"] if post => team::revoke_token(ctx, id).await,
        ["app", "workspace", "delete"] if get => workspace::form(ctx).await,
        ["app", "workspace", "delete"] if post => workspace::delete(ctx).await,
        ["app", "workspace", "export.json"] if get => workspace::export(ctx).await,
        ["api", "v1", "app", "fans"] if get => fans::api_list(ctx).await,
        ["api", "v1", "app", "fans", id] if get => fans::api_show(ctx, id).await,
        ["api", "v1", "app", "fans", id, "export"] if get => rights::api_export(ctx, id).await,
        ["api", "v1", "app", "me"] if get => account::api_me(ctx),
        _ => return None,
    })
}

/// The studio function's pages (functions/studio): overview, link
/// analytics, capture pages and smart links.
#[cfg(any(test, feature = "studio"))]
async fn studio_routes<E: Env>(ctx: &Ctx<'_, E>, segs: &[&str], get: bool, post: bool) -> Option<Result<Response, Error>> {
    Some(match segs {
        ["app", "overview"] if get => overview::show(ctx).await,
        ["app", "pages"] if get => pages::list(ctx).await,
        ["app", "pages", "new"] if get => pages::new_form(ctx).await,
        ["app", "pages", "new"] if post => pages::create(ctx).await,
        ["app", "pages", "new", "preview"] if get || post => pages::preview(ctx, None).await,
        ["app", "pages", id] if get => pages::show(ctx, id).await,
        ["app", "pages", id, "edit"] if get => pages::edit_form(ctx, id).await,
        ["app", "pages", id, "edit"] if post => pages::update(ctx, id).await,
        ["app", "pages", id, "preview"] if get || post => pages::preview(ctx, Some(id)).await,
        ["app", "links"] if get => links::list(ctx).await,
        ["app", "links", "new"] if get => links::new_form(ctx).await,
        ["app", "links", "new"] if post => links::create(ctx).await,
        ["app", "links", slug] if get => analytics::show(ctx, slug).await,
        ["app", "links", slug, "edit"] if get => links::edit_form(ctx, slug).await,
        ["app", "links", slug, "edit"] if post => links::update(ctx, slug).await,
        _ => return None,
    })
}

/// The session the cookie names: `Err(true)` when it timed out,
/// `Err(false)` when there is none.
async fn current_session(parts: &Parts, env: &impl Env, keys: &Keys) -> Result<Result<Session, bool>, Error> {
    let Some(id) = auth::cookie(parts, auth::SESSION_COOKIE) else { return Ok(Err(false)) };
    Ok(match auth::load_session(env, keys, id).await? {
        Loaded::Active(s) => Ok(s),
        Loaded::Expired => Err(true),
        Loaded::None => Err(false),
    })
}

/// The one answer for anything missing or belonging to another artist.
pub fn not_found() -> Error {
    Error::new(ErrorKind::NotFound, "There is nothing here, or it isn't yours to see.")
}

fn error(env: &impl Env, e: &Error, api: bool) -> Response {
    if e.is_server_fault() {
        env.log_error(&format!("dashboard: {e}"));
    }
    let mut res = if api { httpx::json_error(e) } else { page_error(e) };
    if e.kind == ErrorKind::MethodNotAllowed {
        // Every dashboard address takes GET (and HEAD) or POST.
        res.headers_mut().insert(shared::http::header::ALLOW, shared::http::HeaderValue::from_static("GET, HEAD, POST"));
    }
    res
}

fn page_error(e: &Error) -> Response {
    let heading = match e.kind {
        ErrorKind::NotFound => "Not found",
        ErrorKind::Forbidden => "Not allowed",
        ErrorKind::RateLimited { .. } => "Slow down",
        ErrorKind::Unavailable | ErrorKind::Internal => "Something went wrong",
        _ => "That didn't work",
    };
    let body = maud::html! {
        h1 { (heading) }
        p role="alert" { (e.public_message()) }
        p { a href="/app" { "Back to the dashboard" } }
    };
    let mut res = view::html_response(e.status(), view::bare_page(heading, body));
    httpx::add_retry_after(&mut res, e);
    res
}

/// Pages of 50 rows for lists people read.
pub const PAGE_SIZE: usize = 50;

/// 200 with HTML.
pub fn ok_page(html: String) -> Result<Response, Error> {
    Ok(view::html_response(StatusCode::OK, html))
}

#[cfg(test)]
mod tests;
