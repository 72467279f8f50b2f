//! The fan rights an artist answers from the dashboard (README "Fan
//! rights"): access and portability (one JSON document with everything
//! held about the fan), erasure, restriction and rectification.
//!
//! Decisions where the issue is silent:
//! - Consent text: an event carries the text the fan agreed to, from the
//!   page's versions on record (`consent_versions`, by page and version)
//!   or else the page's current wording, whichever hashes (SHA-256, checked
//!   here) to the hash recorded with the event; the hash is always there,
//!   and `consent_text_held: false` says when no text on record matches it.
//! - Erasure is owner-only, asks for `confirm=erase` typed in a form first,
//!   deletes child rows explicitly before the fan (cascades are a second
//!   line, not the only one), and leaves an `erasures` row naming no one.
//! - Restriction and rectification are owner-only and recorded in the fan's
//!   consent history (`restrict`, `unrestrict`, `rectify-address`,
//!   `rectify-location`, method `artist`); the values are not copied there.

use maud::{html, Markup};
use serde_json::{json, Value};
use shared::email::Email;
use shared::http::header::{self, HeaderValue};
use shared::http::StatusCode;
use shared::sql::Param;
use shared::{crypto, httpx, Env, Error, Response};

use crate::fans::{iso, one, one_of, Fan};
use crate::view::{self, Nav};
use crate::Ctx;
use shared::auth::Tenant;
use shared::crypto::Keys;

/// The document format, so a reader can tell versions apart.
const FORMAT: &str = "stagedoor.fan-export/1";
/// Longest region or city name accepted (the geo data's are far shorter).
const MAX_PLACE: usize = 100;

/// The one-line notice a redirect back to the fan's page asks for.
pub fn notice<E: Env>(ctx: &Ctx<'_, E>) -> Option<&'static str> {
    match httpx::query_param(&ctx.parts.uri, "did").as_deref() {
        Some("restricted") => Some("Restricted. This fan is left out of exports, the API list and all mail until you lift it."),
        Some("unrestricted") => Some("Restriction lifted."),
        Some("corrected") => Some("Saved. The correction is recorded in the fan's history."),
        _ => None,
    }
}

/// The owner's actions on a fan's page.
pub fn actions<E: Env>(ctx: &Ctx<'_, E>, id: &str, restricted: bool) -> Markup {
    let csrf = view::csrf_field(&ctx.session.csrf);
    html! {
        form method="post" action={ "/app/fans/" (id) (if restricted { "/unrestrict" } else { "/restrict" }) } {
            (csrf)
            @if restricted {
                p { "This fan is restricted: kept, but left out of exports, the API list and all mail." }
                button.secondary type="submit" { "Lift the restriction" }
            } @else {
                p { "Restrict this fan (for example, while they contest their data, or when they object): kept, but left out of exports, the API list and all mail until you lift it." }
                button.secondary type="submit" { "Restrict this fan" }
            }
        }
        p { a href={ "/app/fans/" (id) "/edit" } { "Correct this fan's address or location" } }
        p { a.button.danger href={ "/app/fans/" (id) "/erase" } { "Erase this fan…" } }
    }
}

// ---------------------------------------------------------------- access

/// Whom the document is for, whoever asks: the artist from the dashboard,
/// or the fan through their own verified request (`crate::privacy`). Both
/// get the same document.
pub(crate) struct Scope<'a, 'e, E: Env> {
    pub env: &'e E,
    pub db: &'a Tenant<'e, E>,
    pub keys: &'a Keys,
    pub artist_name: &'a str,
}

impl<'a, 'e, E: Env> Scope<'a, 'e, E> {
    fn of(ctx: &'a Ctx<'e, E>) -> Self {
        Scope { env: ctx.env, db: &ctx.db, keys: &ctx.keys, artist_name: &ctx.session.artist_name }
    }
}

/// Everything held about one fan, as one JSON document.
pub(crate) async fn document<E: Env>(ctx: &Scope<'_, '_, E>, id: &str) -> Result<Value, Error> {
    let fan = one_of(ctx.db, ctx.keys, id).await?;
    let mut extra = ctx
        .db
        .query(
            "SELECT f.updated_at, f.eu, p.slug, p.title, r.since FROM fans f \
             LEFT JOIN capture_pages p ON p.id = f.source_page_id AND p.artist_id = f.artist_id \
             LEFT JOIN fan_restrictions r ON r.fan_id = f.id AND r.artist_id = f.artist_id \
             WHERE f.artist_id = ?1 AND f.id = ?2",
            &[Param::Text(&fan.id)],
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(crate::not_found)?;
    let (slug, title) = (extra.take_text(2), extra.take_text(3));
    let source_page = slug.map(|slug| json!({ "slug": slug, "title": title }));
    let mut doc = json!({
        "format": FORMAT,
        "exported_at": iso(Some(ctx.env.now_ms())),
        "controller": { "artist_id": ctx.db.artist_id(), "artist_name": ctx.artist_name },
        "fan": {
            "id": fan.id,
            "email": fan.email,
            "first_name": non_empty(&fan.first_name),
            "status": fan.status,
            "restricted_since": extra.int(4).map(|ms| iso(Some(ms))),
            "location": {
                "country": non_empty(&fan.country),
                "region": non_empty(&fan.region),
                "city": non_empty(&fan.city),
                "eu": extra.int(1).unwrap_or(0) != 0,
            },
            "source_page": source_page,
            "consent_version": fan.consent_version,
            "created_at": iso(Some(fan.created_at)),
            "subscribed_at": opt_iso(fan.subscribed_at),
            "confirmed_at": opt_iso(fan.confirmed_at),
            "unsubscribed_at": opt_iso(fan.unsubscribed_at),
            "updated_at": opt_iso(extra.int(0)),
        },
    });
    doc["consent_history"] = Value::Array(consent_history(ctx.db, &fan.id).await?);
    doc["mail"] = Value::Array(mail_log(ctx.db, &fan.id).await?);
    doc["bounces_and_complaints"] = Value::Array(mail_events(ctx.db, &fan.id).await?);
    doc["webhook_events"] = Value::Array(webhook_events(ctx.db, &fan.id).await?);
    doc["not_held"] =
        json!(["IP addresses (turned into the approximate location above at signup, then dropped)", "the content of mail sent (only its kind and time)"]);
    Ok(doc)
}

fn or_null(s: &str) -> Param<'_> {
    if s.is_empty() {
        Param::Null
    } else {
        Param::Text(s)
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn opt_iso(ms: Option<i64>) -> Option<String> {
    ms.map(|ms| iso(Some(ms)))
}

async fn consent_history<E: Env>(db: &Tenant<'_, E>, fan_id: &str) -> Result<Vec<Value>, Error> {
    let rows = db
        .query(
            "SELECT e.kind, e.method, e.at, e.consent_version, e.consent_hash, p.slug, p.title, p.consent_text, v.consent_text \
             FROM consent_events e LEFT JOIN capture_pages p ON p.id = e.page_id AND p.artist_id = e.artist_id \
             LEFT JOIN consent_versions v ON v.page_id = e.page_id AND v.version = e.consent_version AND v.artist_id = e.artist_id \
             WHERE e.artist_id = ?1 AND e.fan_id = ?2 ORDER BY e.at, e.id",
            &[Param::Text(fan_id)],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|mut r| {
            let (kind, method, at) = (r.take_text(0), r.take_text(1), r.int(2));
            let (version, hash) = (r.take_text(3), r.take_text(4));
            let (slug, title, current, on_record) = (r.take_text(5), r.take_text(6), r.take_text(7), r.take_text(8));
            // A wording only if it is the one this event hashed: the row
            // on record can predate its hash (schema/0015), and the page
            // may hold the same text under a newer version.
            let hashed = |t: &String| hash.as_deref() == Some(crypto::sha256_hex(t.as_bytes()).as_str());
            let text = on_record.filter(hashed).or_else(|| current.filter(hashed));
            json!({
                "kind": kind,
                "method": method,
                "at": opt_iso(at),
                "page": slug.map(|slug| json!({ "slug": slug, "title": title })),
                "consent_version": version,
                "consent_hash": hash,
                "consent_text_held": text.is_some(),
                "consent_text": text,
            })
        })
        .collect())
}

async fn mail_log<E: Env>(db: &Tenant<'_, E>, fan_id: &str) -> Result<Vec<Value>, Error> {
    let rows = db.query("SELECT kind, at FROM mail_log WHERE artist_id = ?1 AND fan_id = ?2 ORDER BY at, id", &[Param::Text(fan_id)]).await?;
    Ok(rows.into_iter().map(|mut r| json!({ "kind": r.take_text(0), "at": opt_iso(r.int(1)) })).collect())
}

/// What the email provider reported about mail to the fan.
async fn mail_events<E: Env>(db: &Tenant<'_, E>, fan_id: &str) -> Result<Vec<Value>, Error> {
    let rows = db
        .query(
            "SELECT kind, bounce_type, provider, provider_msg_id, email_id, at FROM mail_events WHERE artist_id = ?1 AND fan_id = ?2 ORDER BY at, id",
            &[Param::Text(fan_id)],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|mut r| {
            json!({
                "kind": r.take_text(0),
                "bounce_type": r.take_text(1),
                "provider": r.take_text(2),
                "provider_message_id": r.take_text(3),
                "provider_email_id": r.take_text(4),
                "at": opt_iso(r.int(5)),
            })
        })
        .collect())
}

/// The events about the fan sent (or to be sent) to the artist's own
/// systems: which, where to (the endpoint's host) and when. Each carried
/// the fan's data as the event describes.
async fn webhook_events<E: Env>(db: &Tenant<'_, E>, fan_id: &str) -> Result<Vec<Value>, Error> {
    let rows = db
        .query(
            "SELECT m.id, m.type, e.url, m.status, m.created_at, m.delivered_at FROM webhook_messages m \
             JOIN webhook_endpoints e ON e.id = m.endpoint_id AND e.artist_id = m.artist_id \
             WHERE m.artist_id = ?1 AND m.fan_id = ?2 ORDER BY m.created_at, m.id",
            &[Param::Text(fan_id)],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|mut r| {
            let url = r.take_text(2).unwrap_or_default();
            json!({
                "id": r.take_text(0),
                "type": r.take_text(1),
                "sent_to": scheme_and_host(&url),
                "status": r.take_text(3),
                "created_at": opt_iso(r.int(4)),
                "delivered_at": opt_iso(r.int(5)),
            })
        })
        .collect())
}

/// `scheme://host[:port]` of an endpoint URL: where the data went, without
/// the path (which may hold the artist's own tokens).
fn scheme_and_host(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    &url[..end]
}

/// `GET /api/v1/app/fans/{id}/export`
pub async fn api_export<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    let doc = document(&Scope::of(ctx), id).await?;
    Ok(httpx::respond(StatusCode::OK, httpx::JSON, doc.to_string()))
}

/// `GET /app/fans/{id}/export.json`: the same document, as a download.
pub async fn download<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    attachment(&Scope::of(ctx), id).await
}

/// The document as a file to save (`fan-{id}-{date}.json`).
pub(crate) async fn attachment<E: Env>(ctx: &Scope<'_, '_, E>, id: &str) -> Result<Response, Error> {
    let doc = document(ctx, id).await?;
    let mut res = httpx::respond(StatusCode::OK, httpx::JSON, serde_json::to_string_pretty(&doc).map_err(Error::internal)?);
    let safe: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    let name = format!("attachment; filename=\"fan-{safe}-{}.json\"", view::date(ctx.env.now_ms()));
    if let Ok(v) = HeaderValue::from_str(&name) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

// --------------------------------------------------------------- erasure

/// The word the confirmation form asks for.
const CONFIRM_WORD: &str = "erase";

/// `GET /app/fans/{id}/erase`: what will happen, and the confirmation form.
pub async fn erase_form<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    ctx.require_owner()?;
    let fan = one(ctx, id).await?;
    Ok(erase_page(ctx, &fan, StatusCode::OK, None))
}

fn erase_page<E: Env>(ctx: &Ctx<'_, E>, fan: &Fan, status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        p { a href={ "/app/fans/" (fan.id) } { "← Back to this fan" } }
        h1 { "Erase " (fan.email) }
        p { "This removes the fan, their consent history and the record of mail sent to them, at once and for good. It cannot be undone." }
        p { "Download their data first if you need to send it to them: " a href={ "/app/fans/" (fan.id) "/export.json" } download { "their data (JSON)" } "." }
        p { "The dashboard keeps only a note that you erased a fan, with the time: not who it was." }
        form method="post" action={ "/app/fans/" (fan.id) "/erase" } {
            (view::csrf_field(&ctx.session.csrf))
            div {
                label for="confirm" { "Type " strong { (CONFIRM_WORD) } " to confirm" }
                input #confirm name="confirm" autocomplete="off" required aria-describedby=[error.map(|_| "err-confirm")];
                @if let Some(e) = error { p.err #err-confirm role="alert" { (e) } }
            }
            button.danger type="submit" { "Erase this fan" }
        }
    };
    view::html_response(status, view::app_page(&ctx.session, Nav::Fans, "Erase a fan", body))
}

/// `POST /app/fans/{id}/erase` with `confirm=erase`.
pub async fn erase<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    ctx.require_owner()?;
    let fan = one(ctx, id).await?;
    if !ctx.form.get("confirm").is_some_and(|c| c.trim().eq_ignore_ascii_case(CONFIRM_WORD)) {
        let msg = "Type erase in this box to confirm. Nothing was erased.";
        return Ok(erase_page(ctx, &fan, StatusCode::UNPROCESSABLE_ENTITY, Some(msg)));
    }
    erase_fan(ctx.env, &ctx.db, &fan.id, ErasedBy::Artist(&ctx.session.user_id)).await?;
    let body = html! {
        h1 { "Erased" }
        p.ok role="status" { "The fan and everything held about them are gone. A note that you erased a fan (not who) is kept with the time." }
        p { a href="/app/fans" { "Back to fans" } }
    };
    Ok(view::html_response(StatusCode::OK, view::app_page(&ctx.session, Nav::Fans, "Erased", body)))
}

/// Who erased a fan, as the `erasures` row records it (`by_user`, `method`).
#[derive(Clone, Copy)]
pub(crate) enum ErasedBy<'a> {
    /// An owner, from the dashboard: their user id.
    Artist(&'a str),
    /// The fan, through their own confirmed request.
    Fan,
}

/// The erasure, whoever asked: one atomic batch that removes the fan and
/// every row naming them, records that an erasure happened (not whom),
/// and queues `fan.erased` for the artist's endpoints.
pub(crate) async fn erase_fan<E: Env>(env: &E, db: &Tenant<'_, E>, fan_id: &str, by: ErasedBy<'_>) -> Result<(), Error> {
    let (now, erasure_id) = (env.now_ms(), shared::env::random_id(env)?);
    let (by_user, method) = match by {
        ErasedBy::Artist(user) => (user, "artist"),
        ErasedBy::Fan => ("fan", "fan"),
    };
    let fan_only = [Param::Text(fan_id)];
    let record = [Param::Text(fan_id), Param::Text(&erasure_id), Param::Int(now), Param::Text(by_user), Param::Text(method)];
    let erased = [Param::Text(&erasure_id), Param::Text(fan_id), Param::Int(now)];
    // Children first, explicitly: every engine then ends in the same state
    // whether or not it enforces the schema's cascades. `fan.erased` names
    // no fan row, so it survives the deletes that follow.
    let mut rows = db
        .batch(&[
            (shared::outbox::FAN_ERASED, &erased),
            ("DELETE FROM privacy_requests WHERE artist_id = ?1 AND fan_id = ?2", &fan_only),
            ("DELETE FROM fan_restrictions WHERE artist_id = ?1 AND fan_id = ?2", &fan_only),
            ("DELETE FROM mail_events WHERE artist_id = ?1 AND fan_id = ?2", &fan_only),
            (
                "DELETE FROM webhook_attempts WHERE artist_id = ?1 AND message_id IN \
                 (SELECT id FROM webhook_messages WHERE artist_id = ?1 AND fan_id = ?2)",
                &fan_only,
            ),
            ("DELETE FROM webhook_messages WHERE artist_id = ?1 AND fan_id = ?2", &fan_only),
            ("DELETE FROM mail_log WHERE artist_id = ?1 AND fan_id = ?2", &fan_only),
            ("DELETE FROM consent_events WHERE artist_id = ?1 AND fan_id = ?2", &fan_only),
            ("INSERT INTO erasures (id, artist_id, at, by_user, method) SELECT ?3, artist_id, ?4, ?5, ?6 FROM fans WHERE artist_id = ?1 AND id = ?2", &record),
            ("DELETE FROM fans WHERE artist_id = ?1 AND id = ?2", &fan_only),
        ])
        .await?;
    shared::outbox::deliver_later(env, shared::outbox::queued(rows.first_mut().map(std::mem::take).unwrap_or_default()));
    Ok(())
}

// ----------------------------------------------------------- restriction

/// `POST /app/fans/{id}/restrict` and `…/unrestrict`. Repeats change
/// nothing and record nothing.
pub async fn restrict<E: Env>(ctx: &Ctx<'_, E>, id: &str, on: bool) -> Result<Response, Error> {
    ctx.require_owner()?;
    let fan = one(ctx, id).await?;
    let (now, event_id) = (ctx.env.now_ms(), shared::env::random_id(ctx.env)?);
    let (kind, guard) = if on { ("restrict", "NOT EXISTS") } else { ("unrestrict", "EXISTS") };
    let event_sql = format!(
        "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) \
         SELECT ?3, id, artist_id, '{kind}', NULL, NULL, NULL, 'artist', ?4 FROM fans f WHERE artist_id = ?1 AND id = ?2 \
         AND {guard} (SELECT 1 FROM fan_restrictions r WHERE r.fan_id = f.id)"
    );
    let event = [Param::Text(&fan.id), Param::Text(&event_id), Param::Int(now)];
    let place = [Param::Text(&fan.id), Param::Int(now), Param::Text(&ctx.session.user_id)];
    let change: (&str, &[Param<'_>]) = if on {
        (
            "INSERT INTO fan_restrictions (fan_id, artist_id, since, by_user) SELECT id, artist_id, ?3, ?4 FROM fans WHERE artist_id = ?1 AND id = ?2 \
             ON CONFLICT (fan_id) DO NOTHING",
            &place,
        )
    } else {
        ("DELETE FROM fan_restrictions WHERE artist_id = ?1 AND fan_id = ?2", &place[..1])
    };
    // The event first: its guard reads the state before the change.
    ctx.db.batch(&[(&event_sql, &event), change]).await?;
    Ok(view::redirect(&format!("/app/fans/{}?did={}", fan.id, if on { "restricted" } else { "unrestricted" })))
}

// --------------------------------------------------------- rectification

/// What the correction form holds, as typed.
#[derive(Default)]
struct Correction {
    email: String,
    country: String,
    region: String,
    city: String,
    errors: Vec<(&'static str, &'static str)>,
}

impl Correction {
    fn of(fan: &Fan) -> Correction {
        Correction { email: fan.email.clone(), country: fan.country.clone(), region: fan.region.clone(), city: fan.city.clone(), errors: Vec::new() }
    }

    fn from_form<E: Env>(ctx: &Ctx<'_, E>) -> (Correction, Option<Email>) {
        let f = |name: &str| ctx.form.get(name).unwrap_or("").trim().to_owned();
        let mut c = Correction { email: f("email"), country: f("country").to_ascii_uppercase(), region: f("region"), city: f("city"), errors: Vec::new() };
        let email = Email::parse(&c.email).ok();
        if email.is_none() {
            c.errors.push(("email", "Enter a whole email address, such as name@example.com."));
        }
        let country_ok = c.country.len() == 2 && c.country.bytes().all(|b| b.is_ascii_uppercase());
        if !c.country.is_empty() && !country_ok {
            c.errors.push(("country", "Enter a two-letter country code, such as SE or US, or leave it empty."));
        }
        for (field, v) in [("region", &c.region), ("city", &c.city)] {
            if v.chars().count() > MAX_PLACE || v.chars().any(char::is_control) {
                c.errors.push((field, "Use at most 100 characters, on one line."));
            }
        }
        (c, email)
    }

    fn error(&self, field: &str) -> Option<&'static str> {
        self.errors.iter().find(|(f, _)| *f == field).map(|(_, m)| *m)
    }
}

/// `GET /app/fans/{id}/edit`
pub async fn edit_form<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    ctx.require_owner()?;
    let fan = one(ctx, id).await?;
    Ok(edit_page(ctx, &fan.id, &Correction::of(&fan), StatusCode::OK))
}

fn edit_page<E: Env>(ctx: &Ctx<'_, E>, id: &str, c: &Correction, status: StatusCode) -> Response {
    let field = |name: &'static str, label: &str, value: &str, kind: &str, max: usize| {
        let err = c.error(name);
        html! {
            div {
                label for=(name) { (label) }
                input id=(name) name=(name) type=(kind) value=(value) maxlength=(max) autocomplete="off" aria-describedby=[err.map(|_| format!("err-{name}"))];
                @if let Some(e) = err { p.err id={ "err-" (name) } role="alert" { (e) } }
            }
        }
    };
    let body = html! {
        p { a href={ "/app/fans/" (id) } { "← Back to this fan" } }
        h1 { "Correct this fan's data" }
        p { "Use this when the fan tells you their address or location is wrong. The change is recorded in their history (what changed, not the old values)." }
        form method="post" action={ "/app/fans/" (id) "/edit" } {
            (view::csrf_field(&ctx.session.csrf))
            (field("email", "Email address", &c.email, "email", 320))
            (field("country", "Country (two letters)", &c.country, "text", 2))
            (field("region", "Region", &c.region, "text", MAX_PLACE))
            (field("city", "City", &c.city, "text", MAX_PLACE))
            button type="submit" { "Save the correction" }
        }
    };
    view::html_response(status, view::app_page(&ctx.session, Nav::Fans, "Correct a fan", body))
}

/// `POST /app/fans/{id}/edit`: a new address is encrypted for this fan and
/// indexed again; one another fan of this artist has is refused (409).
pub async fn edit<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    ctx.require_owner()?;
    let fan = one(ctx, id).await?;
    let (mut c, email) = Correction::from_form(ctx);
    let Some(email) = email.filter(|_| c.errors.is_empty()) else {
        return Ok(edit_page(ctx, &fan.id, &c, StatusCode::UNPROCESSABLE_ENTITY));
    };
    let artist = ctx.db.artist_id();
    let hash = ctx.keys.blind_index(artist, &email.index_key());
    let address_changed = email.as_str() != fan.email;
    if address_changed {
        let taken =
            ctx.db.query("SELECT 1 FROM fans WHERE artist_id = ?1 AND email_hash = ?2 AND id <> ?3", &[Param::Text(&hash), Param::Text(&fan.id)]).await?;
        if !taken.is_empty() {
            c.errors.push(("email", "Another fan of yours already has this address. Erase or correct that fan first; nothing was changed."));
            return Ok(edit_page(ctx, &fan.id, &c, StatusCode::CONFLICT));
        }
    }
    let location_changed = (c.country.as_str(), c.region.as_str(), c.city.as_str()) != (fan.country.as_str(), fan.region.as_str(), fan.city.as_str());
    if !address_changed && !location_changed {
        return Ok(view::redirect(&format!("/app/fans/{}", fan.id)));
    }
    let enc = ctx.keys.encrypt(email.as_str().as_bytes(), crypto::fan_email_context(artist, &fan.id).as_bytes())?;
    let now = ctx.env.now_ms();
    let eu = i64::from(shared::geo::is_eu_country(&c.country));
    let (country, region, city) = (or_null(&c.country), or_null(&c.region), or_null(&c.city));
    let update = [Param::Text(&fan.id), Param::Text(&enc), Param::Text(&hash), country, region, city, Param::Int(eu), Param::Int(now)];
    let mut stmts: Vec<(&str, Vec<Param<'_>>)> = vec![(
        "UPDATE fans SET email_enc = ?3, email_hash = ?4, country = ?5, region = ?6, city = ?7, eu = ?8, updated_at = ?9 WHERE artist_id = ?1 AND id = ?2",
        update.to_vec(),
    )];
    let ids = [shared::env::random_id(ctx.env)?, shared::env::random_id(ctx.env)?];
    const EVENT: &str = "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) \
         SELECT ?3, id, artist_id, ?4, NULL, NULL, NULL, 'artist', ?5 FROM fans WHERE artist_id = ?1 AND id = ?2";
    for (i, (changed, kind)) in [(address_changed, "rectify-address"), (location_changed, "rectify-location")].into_iter().enumerate() {
        if changed {
            stmts.push((EVENT, vec![Param::Text(&fan.id), Param::Text(&ids[i]), Param::Text(kind), Param::Int(now)]));
        }
    }
    // The first name's encryption is bound to the address's index: a new
    // address re-encrypts it, in the same batch.
    let name_enc = match (&fan.first_name, address_changed) {
        (name, true) if !name.is_empty() => Some(ctx.keys.encrypt(name.as_bytes(), shared::capture::fan_name_context(artist, &hash).as_bytes())?),
        _ => None,
    };
    if let Some(enc) = &name_enc {
        stmts.push((
            "UPDATE fan_names SET name_enc = ?3, updated_at = ?4 WHERE artist_id = ?1 AND fan_id = ?2",
            vec![Param::Text(&fan.id), Param::Text(enc), Param::Int(now)],
        ));
    }
    let list: Vec<(&str, &[Param<'_>])> = stmts.iter().map(|(s, p)| (*s, p.as_slice())).collect();
    match ctx.db.batch(&list).await {
        Ok(_) => Ok(view::redirect(&format!("/app/fans/{}?did=corrected", fan.id))),
        // Another request gave that address to another fan in between: the
        // unique index refused the whole batch.
        Err(e) if e.to_string().contains("UNIQUE") => {
            c.errors.push(("email", "Another fan of yours already has this address. Erase or correct that fan first; nothing was changed."));
            Ok(edit_page(ctx, &fan.id, &c, StatusCode::CONFLICT))
        }
        Err(e) => Err(e),
    }
}
