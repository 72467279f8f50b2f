//! Unsubscribe: `GET /u/{token}` shows which list the fan is leaving and a
//! button; `POST /u/{token}` (the button, or a mail client's RFC 8058
//! one-click `List-Unsubscribe=One-Click`) unsubscribes and answers 200
//! without a redirect. No cookies, no login: the signed token is the
//! authority, so leaving always takes one click.
//!
//! GET never changes anything: mail scanners prefetch links.

use shared::html::{self, escape};
use shared::http::{Method, StatusCode};
use shared::sql::{Param, Stmt};
use shared::token::{Claims, Purpose, TokenKeys};
use shared::{Db, Env, Error, Request, Response};

shared::export!(handle);

pub async fn handle(req: Request, env: &impl Env) -> Response {
    let (parts, body) = req.into_parts();
    let Some(token) = parts.uri.path().strip_prefix("/u/").filter(|t| !t.is_empty() && !t.contains('/')) else {
        return plain(StatusCode::NOT_FOUND, "Page not found", "There is nothing at this address.");
    };
    let claims = match verify(env, token) {
        Ok(c) => c,
        Err(res) => return res,
    };
    let fan = match load(env, &claims).await {
        Ok(f) => f,
        Err(e) => return server_fault(env, e),
    };
    match parts.method {
        Method::GET | Method::HEAD => show(&fan),
        Method::POST => unsubscribe(env, &claims, fan, &body).await,
        _ => {
            let mut res = plain(StatusCode::METHOD_NOT_ALLOWED, "Not allowed", "Open the unsubscribe link in your browser, or send it a POST to unsubscribe.");
            res.headers_mut().insert(shared::http::header::ALLOW, shared::http::HeaderValue::from_static("GET, HEAD, POST"));
            res
        }
    }
}

// The error is the page to answer with; boxing it would buy nothing on a
// path that runs once per request.
#[allow(clippy::result_large_err)]
fn verify(env: &impl Env, token: &str) -> Result<Claims, Response> {
    let keys = TokenKeys::from_env(env).map_err(|e| server_fault(env, e))?;
    // Unsubscribe tokens never expire, so the clock is irrelevant here.
    keys.verify(token, Purpose::Unsubscribe, 0).map_err(|_| {
        plain(
            StatusCode::BAD_REQUEST,
            "This unsubscribe link doesn't work",
            "The link is incomplete or damaged. Copy the whole link from the email, or use the unsubscribe link in another email from the same list.",
        )
    })
}

/// The fan as far as this page cares.
struct Fan {
    artist: Option<String>,
    /// `None` when the fan was erased.
    status: Option<String>,
}

async fn load(env: &impl Env, c: &Claims) -> Result<Fan, Error> {
    let rows = env
        .db()
        .query(
            "SELECT a.name, (SELECT status FROM fans WHERE id = ?1 AND artist_id = a.id) FROM artists a WHERE a.id = ?2",
            &[Param::Text(&c.fan_id), Param::Text(&c.artist_id)],
        )
        .await?;
    let row = rows.into_iter().next();
    Ok(Fan { artist: row.as_ref().and_then(|r| r.text(0)).map(str::to_owned), status: row.as_ref().and_then(|r| r.text(1)).map(str::to_owned) })
}

fn list_name(fan: &Fan) -> String {
    match &fan.artist {
        Some(a) => format!("{}'s list", escape(a)),
        None => "this list".to_owned(),
    }
}

fn show(fan: &Fan) -> Response {
    let list = list_name(fan);
    match fan.status.as_deref() {
        None => gone(fan),
        Some("unsubscribed") => plain(StatusCode::OK, "You're unsubscribed", &format!("You're not on {list} anymore. You won't get more emails from it.")),
        Some(_) => {
            let body = format!(
                "<h1>Unsubscribe?</h1><p>Stop getting emails from {list}.</p>\
                 <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><input type=\"hidden\" name=\"via\" value=\"page\">\
                 <button type=\"submit\">Unsubscribe</button></form>"
            );
            html::response(StatusCode::OK, html::page("Unsubscribe", &body))
        }
    }
}

async fn unsubscribe(env: &impl Env, c: &Claims, fan: Fan, body: &[u8]) -> Response {
    if fan.status.is_none() {
        return gone(&fan);
    }
    // The page's button says so; anything else is a mail client's one-click.
    let method = if contains(body, b"via=page") { "link" } else { "one-click" };
    let now = env.now_ms();
    let event_id = match shared::env::random_id(env) {
        Ok(id) => id,
        Err(e) => return server_fault(env, e),
    };
    let event = [Param::Text(&event_id), Param::Text(method), Param::Int(now), Param::Text(&c.fan_id), Param::Text(&c.artist_id)];
    let update = [Param::Int(now), Param::Text(&c.fan_id), Param::Text(&c.artist_id)];
    let hook = [Param::Text(&c.artist_id), Param::Text(&event_id), Param::Int(now)];
    // Guarded by status, so a repeated POST changes (and queues) nothing.
    let result = env
        .db()
        .batch(&[
            Stmt::new(
                "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) \
                 SELECT ?1, id, artist_id, 'unsubscribe', NULL, consent_version, NULL, ?2, ?3 FROM fans \
                 WHERE id = ?4 AND artist_id = ?5 AND status IN ('pending', 'subscribed')",
                &event,
            ),
            Stmt::new(
                "UPDATE fans SET status = 'unsubscribed', unsubscribed_at = ?1, updated_at = ?1 \
                 WHERE id = ?2 AND artist_id = ?3 AND status IN ('pending', 'subscribed')",
                &update,
            ),
            Stmt::new(shared::outbox::FAN_EVENT, &hook),
        ])
        .await;
    match result {
        Ok(mut rows) => {
            shared::outbox::deliver_later(env, shared::outbox::queued(rows.pop().unwrap_or_default()));
            plain(StatusCode::OK, "You're unsubscribed", &format!("You won't get more emails from {}.", list_name(&fan)))
        }
        Err(e) => server_fault(env, e),
    }
}

fn gone(fan: &Fan) -> Response {
    plain(StatusCode::OK, "Not on the list", &format!("This address is no longer on {}.", list_name(fan)))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `body_html` must already be escaped.
fn plain(status: StatusCode, heading: &str, body_html: &str) -> Response {
    let body = format!("<h1>{}</h1><p role=\"status\">{body_html}</p>", escape(heading));
    html::response(status, html::page(heading, &body))
}

fn server_fault(env: &impl Env, e: Error) -> Response {
    env.log_error(&format!("unsubscribe: {e}"));
    let status = e.status();
    plain(status, "Something went wrong", &escape(e.public_message()))
}

#[cfg(test)]
mod tests;
