//! Inbound webhooks from email providers: `POST /hooks/email/{provider}`
//! receives bounces and complaints (Resend's event shapes, signed with
//! Svix; or any Standard Webhooks sender using the same shapes).
//!
//! Checks, in order: the provider has secrets configured (else 404: the
//! route does not exist for it), POST (405), the body fits in
//! [`MAX_INBOUND_BODY`] (413, before any crypto), the signature over the
//! raw body and a timestamp within 5 minutes (401), then JSON (400). Only
//! a verified body is parsed. Event types other than bounces and
//! complaints are acknowledged (200) and ignored, so the provider stops
//! retrying them.
//!
//! The fan is named only by the `artist` and `fan` tags Stagedoor puts on
//! every mail to a fan (`shared::mail`); the address in the event is never
//! read. A verified event about no known fan is acknowledged like any other:
//! no answer says whether a fan exists.
//!
//! Settings: `email_webhook_secrets_{provider}` (`-` as `_`; whsec_
//! secrets, space-separated, so a secret rotates without downtime) and
//! `soft_bounce_limit` (default 3).

use shared::http::{header, HeaderValue, Method, StatusCode};
use shared::httpx::{self, JSON};
use shared::sql::{Param, Stmt};
use shared::webhook::{self, Headers, MAX_INBOUND_BODY};
use shared::{Db, Env, Error, ErrorKind, Request, Response};

shared::export!(handle);

/// Where providers post; the provider's name follows.
pub const PATH_PREFIX: &str = "/hooks/email/";

/// Transient bounces since the fan's last (re)subscription that suppress
/// them, unless `soft_bounce_limit` says otherwise.
pub const DEFAULT_SOFT_BOUNCE_LIMIT: i64 = 3;

/// Longest message id kept (Svix's are about 30 characters): a longer one
/// is refused rather than stored.
const MAX_MSG_ID: usize = 256;

pub async fn handle(req: Request, env: &impl Env) -> Response {
    let (parts, body) = req.into_parts();
    let Some(provider) = provider(parts.uri.path()) else { return not_found() };
    let secrets = match env.var(&secrets_setting(provider)).map(|list| webhook::parse_secrets(&list)) {
        None => return not_found(),
        Some(Ok(s)) if s.is_empty() => return not_found(),
        Some(Ok(s)) => s,
        Some(Err(_)) => {
            // The provider retries on a 5xx, so nothing is lost while the
            // operator fixes the setting.
            return server_fault(env, Error::internal(format_args!("setting {} holds something other than whsec_ secrets", secrets_setting(provider))));
        }
    };
    if parts.method != Method::POST {
        let mut res = httpx::json_error(&Error::new(ErrorKind::MethodNotAllowed, "Webhooks are delivered with POST."));
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
    if body.len() > MAX_INBOUND_BODY {
        return httpx::json_error(&Error::new(ErrorKind::PayloadTooLarge, format!("The webhook body is larger than {} KB.", MAX_INBOUND_BODY / 1024)));
    }
    let headers = Headers::from_map(&parts.headers);
    if let Err(refusal) = webhook::verify(&secrets, headers, &body, env.now_ms().div_euclid(1000)) {
        return httpx::json_error(&Error::new(ErrorKind::Unauthorized, refusal.message()));
    }
    // verify() refuses a message without headers, so these are present.
    let msg_id = headers.map(|h| h.id.trim()).unwrap_or_default();
    if msg_id.is_empty() || msg_id.len() > MAX_MSG_ID {
        return httpx::json_error(&Error::new(ErrorKind::BadRequest, "The webhook id must be 1 to 256 characters."));
    }
    let event = match parse(&body) {
        Ok(Some(e)) => e,
        Ok(None) => return received(),
        Err(e) => return httpx::json_error(&e),
    };
    match apply(env, provider, msg_id, &event).await {
        Ok(queued) => {
            shared::outbox::deliver_later(env, queued);
            received()
        }
        Err(e) => server_fault(env, e),
    }
}

/// The provider named by the path: `[a-z0-9-]{1,32}`.
fn provider(path: &str) -> Option<&str> {
    let name = path.strip_prefix(PATH_PREFIX)?;
    let name = name.strip_suffix('/').unwrap_or(name);
    let ok = (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(name)
}

/// `email_webhook_secrets_{provider}`, with `-` as `_` (setting names are
/// lower_snake_case; Workers upper-cases them).
pub fn secrets_setting(provider: &str) -> String {
    format!("email_webhook_secrets_{}", provider.replace('-', "_"))
}

/// What a provider reported about one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    /// The provider's id of the mail (`data.email_id`).
    pub email_id: Option<String>,
    /// From the mail's tags; `None` when the mail carried none we set.
    pub fan: Option<FanRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A hard bounce: the address does not take mail.
    PermanentBounce,
    /// A soft bounce (`Transient`, or `Undetermined`, or no type given):
    /// counted, and only a run of them suppresses.
    TransientBounce,
    Complaint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanRef {
    pub artist_id: String,
    pub fan_id: String,
}

/// The event in a verified body: `Ok(None)` for a type we do not act on.
/// A body that is not a JSON object with a string `type` is 400; past
/// that, missing or odd fields make the event say less (no fan, no
/// bounce type), never fail, so a provider is not made to retry forever.
pub fn parse(body: &[u8]) -> Result<Option<Event>, Error> {
    let bad = || Error::new(ErrorKind::BadRequest, "The webhook body is not a JSON object with a \"type\".");
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| bad())?;
    let ty = v.get("type").and_then(|t| t.as_str()).ok_or_else(bad)?;
    let data = v.get("data");
    let field = |name: &str| data.and_then(|d| d.get(name));
    let kind = match ty {
        "email.bounced" => {
            let bounce_type = field("bounce").and_then(|b| b.get("type")).and_then(|t| t.as_str()).unwrap_or("");
            if bounce_type.eq_ignore_ascii_case("permanent") {
                Kind::PermanentBounce
            } else {
                Kind::TransientBounce
            }
        }
        "email.complained" => Kind::Complaint,
        _ => return Ok(None),
    };
    let email_id = field("email_id").and_then(|e| e.as_str()).filter(|e| !e.is_empty() && e.len() <= MAX_MSG_ID).map(str::to_owned);
    let fan = field("tags").and_then(fan_from_tags);
    Ok(Some(Event { kind, email_id, fan }))
}

/// The `artist` and `fan` tags, as an object (`{"artist": "…", "fan": "…"}`,
/// how Resend's webhooks carry them) or as the list the send API takes
/// (`[{"name": "artist", "value": "…"}, …]`).
fn fan_from_tags(tags: &serde_json::Value) -> Option<FanRef> {
    let tag = |name: &str| -> Option<&str> {
        match tags {
            serde_json::Value::Object(map) => map.get(name)?.as_str(),
            serde_json::Value::Array(list) => list.iter().find(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))?.get("value")?.as_str(),
            _ => None,
        }
    };
    // Ids are what Stagedoor makes (hex, or an operator's slug): anything
    // else was not set by us and names nobody.
    let id = |s: &str| (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let (artist, fan) = (tag("artist")?, tag("fan")?);
    (id(artist) && id(fan)).then(|| FanRef { artist_id: artist.to_owned(), fan_id: fan.to_owned() })
}

// The fan statements below all name the fan by id AND artist, so a tag
// pair that mixes one artist's id with another's fan matches nobody.

/// The mail history row, for any fan the tags name, whatever their status.
/// ?1 id, ?2 kind, ?3 bounce type, ?4 provider, ?5 message id, ?6 email id,
/// ?7 now, ?8 fan, ?9 artist.
const MAIL_EVENT: &str = "INSERT INTO mail_events (id, fan_id, artist_id, kind, bounce_type, provider, provider_msg_id, email_id, at) \
     SELECT ?1, id, artist_id, ?2, ?3, ?4, ?5, ?6, ?7 FROM fans WHERE id = ?8 AND artist_id = ?9";

/// The consent event of a status change, written only when the event
/// changes the fan's status; [`SET_STATUS`] and the outbox follow it.
/// ?1 id, ?2 kind, ?3 now, ?4 fan, ?5 artist (and ?6, the soft bounce limit).
macro_rules! status_change {
    ($when:literal) => {
        concat!(
            "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) \
             SELECT ?1, f.id, f.artist_id, ?2, NULL, f.consent_version, NULL, 'provider', ?3 FROM fans f \
             WHERE f.id = ?4 AND f.artist_id = ?5 AND ",
            $when
        )
    };
}

/// A complaint is the strongest word a fan can send: it overrides
/// unsubscribed and bounced too.
const COMPLAINT_CHANGE: &str = status_change!("f.status <> 'complained'");

/// Only a fan who still gets mail (pending or subscribed) can bounce:
/// an unsubscribed fan stays unsubscribed.
const HARD_BOUNCE_CHANGE: &str = status_change!("f.status IN ('pending', 'subscribed')");

/// The `?6`th soft bounce since the fan last (re)subscribed — the later of
/// `subscribed_at` and `confirmed_at`; all of them if both are NULL —
/// counting the one [`MAIL_EVENT`] just wrote.
const SOFT_BOUNCE_CHANGE: &str = status_change!(
    "f.status IN ('pending', 'subscribed') AND (SELECT count(*) FROM mail_events m \
     WHERE m.fan_id = f.id AND m.kind = 'bounce' AND m.bounce_type = 'transient' \
     AND m.at >= COALESCE(max(f.subscribed_at, f.confirmed_at), f.subscribed_at, f.confirmed_at, 0)) >= ?6"
);

/// Follows the consent event: the fan changes exactly when the batch wrote
/// one (its id is fresh, so nothing else can have). ?1 status, ?2 now,
/// ?3 fan, ?4 artist, ?5 consent event id.
const SET_STATUS: &str = "UPDATE fans SET status = ?1, updated_at = ?2 \
     WHERE id = ?3 AND artist_id = ?4 AND EXISTS (SELECT 1 FROM consent_events WHERE id = ?5)";

const RECORD_ID: &str = "INSERT INTO inbound_webhooks (provider, msg_id, received_at) VALUES (?1, ?2, ?3)";
const SEEN: &str = "SELECT 1 AS seen FROM inbound_webhooks WHERE provider = ?1 AND msg_id = ?2";

/// Records the message and applies the event, once per message id;
/// returns the outbound messages it queued.
///
/// The look-up first spares the usual replay (a provider retrying after a
/// timeout) a transaction bound to fail; [`commit`] alone is what makes
/// replays harmless, concurrent ones included.
async fn apply(env: &impl Env, provider: &str, msg_id: &str, event: &Event) -> Result<Vec<String>, Error> {
    if seen(env, provider, msg_id).await? {
        return Ok(Vec::new());
    }
    commit(env, provider, msg_id, event).await
}

async fn seen(env: &impl Env, provider: &str, msg_id: &str) -> Result<bool, Error> {
    Ok(!env.db().query(SEEN, &[Param::Text(provider), Param::Text(msg_id)]).await?.is_empty())
}

/// The message id and the change in one atomic batch.
///
/// Replays: the batch's first statement is a plain INSERT of the message
/// id, so of any number of deliveries of one id — one after another or at
/// the same moment on different instances — exactly one batch commits;
/// every other one fails on the primary key and rolls back whole, fan
/// statements included. A failed batch is then told apart from a replay by
/// looking the id up: present means another delivery applied it (200,
/// nothing changed twice); absent means a real fault (5xx, so the
/// provider retries). `INSERT … ON CONFLICT DO NOTHING` would not do:
/// nothing in SQLite lets a later statement of the batch see whether that
/// insert happened (`changes()` speaks only of the statement just
/// before), and matching on `received_at` breaks on equal clocks.
pub async fn commit(env: &impl Env, provider: &str, msg_id: &str, event: &Event) -> Result<Vec<String>, Error> {
    let now = env.now_ms();
    let record = [Param::Text(provider), Param::Text(msg_id), Param::Int(now)];
    let result = match &event.fan {
        // Recorded anyway, so a replay of it is recognised as one.
        None => env.db().batch(&[Stmt::new(RECORD_ID, &record)]).await,
        Some(fan) => {
            let mail_event_id = shared::env::random_id(env)?;
            let consent_id = shared::env::random_id(env)?;
            let (kind, bounce_type, status, change) = match event.kind {
                Kind::PermanentBounce => ("bounce", Some("permanent"), "bounced", HARD_BOUNCE_CHANGE),
                Kind::TransientBounce => ("bounce", Some("transient"), "bounced", SOFT_BOUNCE_CHANGE),
                Kind::Complaint => ("complaint", None, "complained", COMPLAINT_CHANGE),
            };
            let limit = soft_bounce_limit(env);
            let (fan_id, artist_id) = (fan.fan_id.as_str(), fan.artist_id.as_str());
            let mail = [
                Param::Text(&mail_event_id),
                Param::Text(kind),
                bounce_type.into(),
                Param::Text(provider),
                Param::Text(msg_id),
                event.email_id.as_deref().into(),
                Param::Int(now),
                Param::Text(fan_id),
                Param::Text(artist_id),
            ];
            // The consent event's kind is the mail event's (bounce, complaint).
            let consent = [Param::Text(&consent_id), Param::Text(kind), Param::Int(now), Param::Text(fan_id), Param::Text(artist_id), Param::Int(limit)];
            // Only the soft bounce's statement takes the limit.
            let consent = if event.kind == Kind::TransientBounce { &consent[..] } else { &consent[..5] };
            let set = [Param::Text(status), Param::Int(now), Param::Text(fan_id), Param::Text(artist_id), Param::Text(&consent_id)];
            let outbox = [Param::Text(artist_id), Param::Text(&consent_id), Param::Int(now)];
            env.db()
                .batch(&[
                    Stmt::new(RECORD_ID, &record),
                    Stmt::new(MAIL_EVENT, &mail),
                    Stmt::new(change, consent),
                    Stmt::new(SET_STATUS, &set),
                    Stmt::new(shared::outbox::FAN_EVENT, &outbox),
                ])
                .await
        }
    };
    match result {
        // The last statement's rows: the outbox's message ids (none for
        // the id-only batch, whose one statement returns nothing).
        Ok(mut rows) => Ok(rows.pop().unwrap_or_default().into_iter().filter_map(|mut r| r.take_text(0)).collect()),
        Err(e) => match seen(env, provider, msg_id).await {
            Ok(true) => Ok(Vec::new()),
            _ => Err(e),
        },
    }
}

/// `soft_bounce_limit`: a whole number from 1 to 1000; anything else is
/// the default.
pub fn soft_bounce_limit(env: &impl Env) -> i64 {
    env.var("soft_bounce_limit").and_then(|v| v.trim().parse::<i64>().ok()).filter(|n| (1..=1000).contains(n)).unwrap_or(DEFAULT_SOFT_BOUNCE_LIMIT)
}

/// The one answer to every accepted message, whatever it changed: a
/// provider needs only the 2xx, and nobody learns whether a fan exists.
fn received() -> Response {
    httpx::respond(StatusCode::OK, JSON, r#"{"received":true}"#)
}

fn not_found() -> Response {
    httpx::json_error(&Error::new(ErrorKind::NotFound, "Not found."))
}

fn server_fault(env: &impl Env, e: Error) -> Response {
    env.log_error(&format!("webhooks: {e}"));
    httpx::json_error(&e)
}

#[cfg(test)]
mod tests;
