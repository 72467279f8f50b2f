//! The links API for artists, `/api/v1/app/links`: create, replace, read and
//! list links (reading the click counters is the dashboard's job). Until
//! the dashboard has sessions it takes an artist API token (`Authorization:
//! Bearer …`); the database keeps only the token's SHA-256, so a leaked
//! database leaks no usable token.
//!
//! Another artist's link answers exactly like a missing one (404): the API
//! can't be used to learn what others have. Only creating reveals that a
//! slug is taken, which its public `/l/{slug}` page shows anyway.

use std::fmt::Write;

use shared::http::header::{self, HeaderValue};
use shared::http::request::Parts;
use shared::http::{Method, StatusCode};
use shared::{crypto, httpx, Env, Error, ErrorKind, Response};

use crate::json::{self, Json, Obj};
use crate::link::{valid_slug, Definition};
use crate::store::{self, Artist, ByToken, Cache, Scope, Stored};

pub const PREFIX: &str = "/api/v1/app/links";
const MAX_TOKEN: usize = 256;
/// Links per page of the list, in slug order; `next` is the cursor.
const PAGE: i64 = 100;

/// `rest` is the path after [`PREFIX`]: empty or starting with `/`.
pub async fn handle(parts: &Parts, body: &[u8], rest: &str, env: &impl Env, cache: &Cache) -> Response {
    let result = match authenticate(parts, env).await {
        Ok(artist) => route(parts, body, rest, &artist, env, cache).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| error(env, &e))
}

async fn authenticate(parts: &Parts, env: &impl Env) -> Result<Artist, Error> {
    let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = value.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim());
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN) else {
        return Err(Error::new(ErrorKind::Unauthorized, "Send an artist API token as `Authorization: Bearer <token>`."));
    };
    store::artist_for_token(env, &crypto::sha256_hex(token.as_bytes()))
        .await?
        .ok_or_else(|| Error::new(ErrorKind::Unauthorized, "This API token is not valid or has been revoked."))
}

async fn route(parts: &Parts, body: &[u8], rest: &str, artist: &Artist, env: &impl Env, cache: &Cache) -> Result<Response, Error> {
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let mut segments = rest.splitn(2, '/');
    let slug = segments.next().unwrap_or("");
    let m = &parts.method;
    match (slug, segments.next()) {
        ("", None) if m == Method::GET => list(parts, artist, env).await,
        ("", None) if m == Method::POST => save(parts, body, None, artist, env, cache).await,
        ("", None) => Ok(not_allowed("GET, POST")),
        (slug, None) if m == Method::GET => get(slug, artist, env).await,
        (slug, None) if m == Method::PUT => save(parts, body, Some(slug), artist, env, cache).await,
        (_, None) => Ok(not_allowed("GET, PUT")),
        _ => Err(no_such_link()),
    }
}

/// POST (create, `path_slug` None) and PUT (replace) share one path.
async fn save(parts: &Parts, body: &[u8], path_slug: Option<&str>, artist: &Artist, env: &impl Env, cache: &Cache) -> Result<Response, Error> {
    if path_slug.is_some_and(|s| !valid_slug(s)) {
        return Err(no_such_link());
    }
    let json = json_body(parts, body)?;
    let stored = save_link(&ByToken { env, artist }, env, cache, &json, path_slug, &artist.name).await?;
    let create = path_slug.is_none();
    let mut res = respond_json(if create { StatusCode::CREATED } else { StatusCode::OK }, link_json(&stored)?);
    if create {
        if let Ok(v) = HeaderValue::from_str(&format!("{PREFIX}/{}", stored.slug)) {
            res.headers_mut().insert(header::LOCATION, v);
        }
    }
    Ok(res)
}

async fn get(slug: &str, artist: &Artist, env: &impl Env) -> Result<Response, Error> {
    Ok(respond_json(StatusCode::OK, link_json(&owned(slug, artist, env).await?)?))
}

async fn list(parts: &Parts, artist: &Artist, env: &impl Env) -> Result<Response, Error> {
    // Any string orders against slugs; a made-up one just starts elsewhere.
    let after = httpx::query_param(&parts.uri, "after").unwrap_or_default();
    // One extra row tells whether another page follows.
    let mut page = store::list(env, &artist.id, &after, PAGE + 1).await?;
    let more = page.len() as i64 > PAGE;
    page.truncate(PAGE as usize);
    let mut out = String::with_capacity(64 + page.iter().map(|s| s.definition.len() + 96).sum::<usize>());
    let mut o = Obj::new(&mut out);
    let list = o.key("links");
    list.push('[');
    for (i, s) in page.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(&link_json(s)?);
    }
    list.push(']');
    match page.last().filter(|_| more) {
        Some(last) => {
            o.str("next", &last.slug);
        }
        None => o.key("next").push_str("null"),
    }
    o.end();
    Ok(respond_json(StatusCode::OK, out))
}

/// The artist's own link, or the same 404 as for a missing one.
async fn owned(slug: &str, artist: &Artist, env: &impl Env) -> Result<Stored, Error> {
    if !valid_slug(slug) {
        return Err(no_such_link());
    }
    store::get(env, &artist.id, slug).await?.ok_or_else(no_such_link)
}

/// Validates a definition (the API's JSON) and saves it: the one code
/// path for the API and the dashboard's link editor, which builds the same
/// JSON from its form. `path_slug` as for [`Definition::from_json`]: None
/// creates. Errors name their field (a taken slug is a 409 on `slug`).
pub async fn save_link(scope: &impl Scope, env: &impl Env, cache: &Cache, json: &Json, path_slug: Option<&str>, artist_name: &str) -> Result<Stored, Error> {
    let mut def = Definition::from_json(json, path_slug)?;
    fill_artist(artist_name, &mut def);
    let create = path_slug.is_none();
    store::save(scope, env, cache, &def, create).await?.ok_or_else(|| {
        if create {
            Error::field(ErrorKind::Conflict, "slug", format!("The slug \"{}\" is already taken. Choose another.", def.slug))
        } else {
            no_such_link()
        }
    })
}

/// Links show the account's name unless the definition names the artist.
fn fill_artist(name: &str, def: &mut Definition) {
    if def.artist.is_none() && !name.is_empty() {
        def.artist = Some(name.to_owned());
    }
}

fn json_body(parts: &Parts, body: &[u8]) -> Result<Json, Error> {
    httpx::require_media_type(parts, httpx::JSON)?;
    json::parse(body).map_err(|e| Error::new(ErrorKind::BadRequest, format!("The body is not valid JSON: {e}.")))
}

/// The stored definition (an object) with what only the server knows
/// spliced in before its closing brace.
fn link_json(stored: &Stored) -> Result<String, Error> {
    let def = stored.definition.trim_end();
    let body = def.strip_suffix('}').filter(|d| d.starts_with('{') && d.len() > 1).ok_or_else(|| Error::internal("stored link is not a JSON object"))?;
    let mut out = String::with_capacity(def.len() + 96);
    out.push_str(body);
    out.push_str(",\"path\":\"/l/");
    out.push_str(&stored.slug);
    let _ = write!(out, "\",\"created_at\":{},\"updated_at\":{}}}", stored.created_at, stored.updated_at);
    Ok(out)
}

fn no_such_link() -> Error {
    Error::field(ErrorKind::NotFound, "slug", "You have no link with that slug.")
}

fn respond_json(status: StatusCode, body: String) -> Response {
    httpx::respond(status, httpx::JSON, body)
}

fn not_allowed(allow: &'static str) -> Response {
    let mut res = httpx::json_error(&Error::new(ErrorKind::MethodNotAllowed, format!("This address accepts {allow}.")));
    res.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

/// Server faults are logged once here; clients get the generic sentence.
fn error(env: &impl Env, e: &Error) -> Response {
    if e.is_server_fault() {
        env.log_error(&format!("links api: {e}"));
    }
    let mut res = httpx::json_error(e);
    if e.kind == ErrorKind::Unauthorized {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"stagedoor\""));
    }
    res
}
