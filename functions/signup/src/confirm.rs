//! Double opt-in: the confirmation email, and `/s/{page}/confirm?t=…`.
//!
//! GET only shows a button (mail scanners prefetch links, so opening the
//! link must not confirm); the button's POST confirms. Confirmation mails
//! are capped per address — one per 10 minutes, three per day — so the
//! form can't be used to flood someone's inbox.
//!
//! The mail leaves after the response, so a new address (mail sent) and
//! one already on the list (nothing to send) answer in the same time; if
//! the provider refuses it, the send slot is given back and the fan, who
//! stays pending, can sign up again to get another.

use shared::html::{self, escape};
use shared::http::StatusCode;
use shared::mail::{self, Message};
use shared::sql::{OwnedParam, OwnedStmt, Param, Stmt};
use shared::token::{Purpose, TokenError, TokenKeys};
use shared::{Db, Env, Error, Response};

use crate::store::{self, Page};

/// How long a confirmation link works.
pub const CONFIRM_TTL_SECS: u32 = 7 * 24 * 3600;

// Reserves a send slot atomically, as the last statement of the signup's
// batch (`store::record_signup`): at most 1 in 10 minutes, 3 in a day, and
// only while the fan is pending and not restricted (schema/0009: a
// restricted fan gets no mail until the artist lifts it); the fan's id
// comes back when a slot was taken. Run for every address, pending or not,
// so both cases do the same work. ?1 artist, ?2 blind index, ?3 now (ms).
pub const RESERVE: &str = "INSERT INTO mail_log (fan_id, artist_id, kind, at) SELECT f.id, f.artist_id, 'confirm', ?3 FROM fans f \
     WHERE f.artist_id = ?1 AND f.email_hash = ?2 AND f.status = 'pending' \
     AND NOT EXISTS (SELECT 1 FROM fan_restrictions r WHERE r.fan_id = f.id) \
     AND (SELECT count(*) FROM mail_log m WHERE m.fan_id = f.id AND m.kind = 'confirm' AND m.at > ?3 - 600000) < 1 \
     AND (SELECT count(*) FROM mail_log m WHERE m.fan_id = f.id AND m.kind = 'confirm' AND m.at > ?3 - 86400000) < 3 \
     RETURNING fan_id";

/// Queues the confirmation mail for a slot [`RESERVE`] took; a refusal
/// gives the slot back. A capped send is silent: the fan sees the same
/// "check your inbox" page, and the earlier mail is still valid.
pub fn deliver(env: &impl Env, page: &Page, to: &str, fan_id: &str, now_ms: i64) -> Result<(), Error> {
    let expires = (now_ms / 1000) as u32 + CONFIRM_TTL_SECS;
    let token = TokenKeys::from_env(env)?.sign(Purpose::Confirm, expires, fan_id, &page.artist_id)?;
    let link = format!("{}/s/{}/confirm?t={token}", mail::base_url(env)?, page.slug);
    let unsubscribe = mail::unsubscribe_headers(env, fan_id, &page.artist_id)?;
    let privacy = format!("{}/privacy/{}", mail::base_url(env)?, shared::httpx::percent_encode(&page.artist_id));
    let artist = &page.artist_name;
    let subject = format!("Confirm your subscription to {artist}");
    let text = format!(
        "Please confirm that you want emails from {artist}:\n{link}\n\nThe link works for 7 days. If you didn't sign up, ignore this email and you won't hear from us again.\n\nUnsubscribe: {}\nYour data and your rights: {privacy}\n",
        unsubscribe.url
    );
    let body = format!(
        "<p>Please confirm that you want emails from {a}.</p><p><a href=\"{l}\">Confirm my subscription</a></p><p>The link works for 7 days. If you didn't sign up, ignore this email and you won't hear from us again.</p><p><small><a href=\"{u}\">Unsubscribe</a> · <a href=\"{p}\">Your data and your rights</a></small></p>",
        a = escape(artist),
        l = escape(&link),
        u = escape(&unsubscribe.url),
        p = escape(&privacy)
    );
    let release = OwnedStmt {
        sql: "DELETE FROM mail_log WHERE fan_id = ?1 AND kind = 'confirm' AND at = ?2".into(),
        params: vec![OwnedParam::Text(fan_id.to_owned()), OwnedParam::Int(now_ms)],
    };
    mail::send_later(env, &Message { to, subject: &subject, text: &text, html: &body, unsubscribe: Some(&unsubscribe) }, vec![release])
}

/// What the token and the database say about a confirmation link.
enum State {
    /// What the fan agreed to when they asked (the page's text may have
    /// changed since): the confirmation records that, not today's text.
    Pending {
        fan_id: String,
        consent_version: String,
        consent_hash: String,
    },
    AlreadySubscribed,
    /// Unsubscribed, bounced or complained since: confirming must not
    /// re-subscribe them.
    NotPending,
    Erased,
}

async fn check(env: &impl Env, page: &Page, token: &str) -> Result<State, Response> {
    let keys = TokenKeys::from_env(env).map_err(|e| server_fault(env, e))?;
    let claims = match keys.verify(token, Purpose::Confirm, (env.now_ms() / 1000) as u64) {
        Ok(c) if c.artist_id == page.artist_id => c,
        Err(TokenError::Expired) => {
            return Err(plain(
                page,
                StatusCode::GONE,
                "This link has expired",
                &format!("Confirmation links work for 7 days. Sign up again on <a href=\"/s/{}\">the sign-up page</a> to get a new one.", escape(&page.slug)),
            ))
        }
        _ => {
            return Err(plain(
                page,
                StatusCode::BAD_REQUEST,
                "This link doesn't work",
                "The confirmation link is incomplete or damaged. Copy the whole link from the email, or sign up again.",
            ))
        }
    };
    // The fan's status, and their latest request: on which page, agreeing
    // to which text. A link works only on the page it was sent for.
    let rows = env
        .db()
        .query(
            "SELECT f.status, e.page_id, e.consent_version, e.consent_hash FROM fans f \
             LEFT JOIN consent_events e ON e.id = (SELECT id FROM consent_events WHERE fan_id = f.id AND kind = 'request' ORDER BY at DESC, id DESC LIMIT 1) \
             WHERE f.id = ?1 AND f.artist_id = ?2",
            &[Param::Text(&claims.fan_id), Param::Text(&page.artist_id)],
        )
        .await
        .map_err(|e| server_fault(env, e))?;
    if let Some(r) = rows.first() {
        if r.text(0) == Some("pending") && r.text(1) != Some(page.id.as_str()) {
            return Err(plain(
                page,
                StatusCode::BAD_REQUEST,
                "This link doesn't work",
                "This confirmation link belongs to another sign-up page. Use the link from the latest email, or sign up again.",
            ));
        }
    }
    let text = |i| rows.first().and_then(|r| r.text(i)).unwrap_or("").to_owned();
    Ok(match rows.first().and_then(|r| r.text(0)) {
        None => State::Erased,
        Some("pending") => State::Pending { fan_id: claims.fan_id, consent_version: text(2), consent_hash: text(3) },
        Some("subscribed") => State::AlreadySubscribed,
        Some(_) => State::NotPending,
    })
}

pub async fn show(slug: &str, token: &str, env: &impl Env) -> Response {
    let page = match find(env, slug).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    match check(env, &page, token).await {
        Ok(State::Pending { .. }) => {
            let body = format!(
                "<h1>{}</h1><p>Confirm that you want emails from {}.</p><form method=\"post\"><button type=\"submit\">Confirm my subscription</button></form>",
                escape(&page.title),
                escape(&page.artist_name)
            );
            html::response(StatusCode::OK, html::page(&page.title, &body))
        }
        Ok(state) => outcome(&page, state),
        Err(res) => res,
    }
}

pub async fn confirm(slug: &str, token: &str, env: &impl Env) -> Response {
    let page = match find(env, slug).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let (fan_id, consent_version, consent_hash) = match check(env, &page, token).await {
        Ok(State::Pending { fan_id, consent_version, consent_hash }) => (fan_id, consent_version, consent_hash),
        Ok(state) => return outcome(&page, state),
        Err(res) => return res,
    };
    let now = env.now_ms();
    let event_id = match store::random_id(env) {
        Ok(id) => id,
        Err(e) => return server_fault(env, e),
    };
    let event =
        [Param::Text(&event_id), Param::Text(&page.id), Param::Text(&consent_version), Param::Text(&consent_hash), Param::Int(now), Param::Text(&fan_id)];
    let update = [Param::Int(now), Param::Text(&fan_id)];
    let hook = [Param::Text(&page.artist_id), Param::Text(&event_id), Param::Int(now)];
    // Guarded by status = 'pending', so a double click confirms (and
    // queues `fan.confirmed`) once.
    let result = env
        .db()
        .batch(&[
            Stmt::new(
                "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) \
                 SELECT ?1, id, artist_id, 'confirm', ?2, ?3, ?4, 'double', ?5 FROM fans WHERE id = ?6 AND status = 'pending'",
                &event,
            ),
            Stmt::new(
                "UPDATE fans SET status = 'subscribed', confirmed_at = ?1, subscribed_at = ?1, updated_at = ?1 WHERE id = ?2 AND status = 'pending'",
                &update,
            ),
            Stmt::new(shared::outbox::FAN_EVENT, &hook),
        ])
        .await;
    match result {
        Ok(mut rows) => {
            shared::outbox::deliver_later(env, shared::outbox::queued(rows.pop().unwrap_or_default()));
            outcome(&page, State::AlreadySubscribed)
        }
        Err(e) => server_fault(env, e),
    }
}

async fn find(env: &impl Env, slug: &str) -> Result<std::rc::Rc<Page>, Response> {
    match store::find_page(env, slug).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(crate::page::not_found()),
        Err(e) => Err(server_fault(env, e)),
    }
}

fn outcome(page: &Page, state: State) -> Response {
    let artist = escape(&page.artist_name);
    match state {
        State::AlreadySubscribed | State::Pending { .. } => plain(page, StatusCode::OK, "You're confirmed", &format!("Thanks! You're on {artist}'s list.")),
        State::NotPending => plain(
            page,
            StatusCode::OK,
            "Nothing to confirm",
            &format!(
                "This address isn't waiting for confirmation on {artist}'s list. To join again, sign up on <a href=\"/s/{}\">the sign-up page</a>.",
                escape(&page.slug)
            ),
        ),
        State::Erased => plain(page, StatusCode::OK, "Not on the list", &format!("This address is no longer on {artist}'s list.")),
    }
}

/// `body_html` must already be escaped.
fn plain(page: &Page, status: StatusCode, heading: &str, body_html: &str) -> Response {
    let body = format!("<h1>{}</h1><p role=\"status\">{body_html}</p>", escape(heading));
    html::response(status, html::page(&page.title, &body))
}

fn server_fault(env: &impl Env, e: Error) -> Response {
    env.log_error(&format!("signup: {e}"));
    crate::page::error(&e)
}
