//! The fans list (keyset pages, newest first, filters, exact search by
//! blind index), a fan's page with the consent history, the owner's
//! unsubscribe-on-behalf, the CSV export and the JSON list.

use maud::{html, Markup};
use shared::auth::Tenant;
use shared::crypto::Keys;
use shared::email::Email;
use shared::http::header::{self, HeaderValue};
use shared::http::StatusCode;
use shared::sql::{OwnedParam, Param, Row};
use shared::{httpx, Env, Error, ErrorKind, Response};

use crate::csv::Csv;
use crate::view::{self, Nav};
use crate::{not_found, Ctx, PAGE_SIZE};

const STATUSES: [&str; 5] = ["pending", "subscribed", "unsubscribed", "bounced", "complained"];
/// Rows per query of the CSV export: 100,000 fans take 100 queries, a
/// tenth of Workers' 1,000 per invocation.
const EXPORT_BATCH: usize = 1000;

/// The filters as typed, and what they mean once checked.
#[derive(Default)]
struct Filter {
    status: String,
    country: String,
    page: String,
    from: String,
    to: String,
    email: String,
    /// `created_at.id` of the last row of the previous page.
    after: Option<(i64, String)>,
    /// A message next to each field that was refused.
    errors: Vec<(&'static str, &'static str)>,
    /// The blind index of `email`, once it parsed.
    email_hash: Option<String>,
}

impl Filter {
    fn from_query<E: Env>(ctx: &Ctx<'_, E>) -> Filter {
        let q = |name: &str| httpx::query_param(&ctx.parts.uri, name).map(|v| v.trim().to_owned()).unwrap_or_default();
        let mut f = Filter {
            status: q("status"),
            country: q("country").to_ascii_uppercase(),
            page: q("page"),
            from: q("from"),
            to: q("to"),
            email: q("email"),
            ..Filter::default()
        };
        if !f.status.is_empty() && !STATUSES.contains(&f.status.as_str()) {
            f.errors.push(("status", "Choose one of the listed statuses."));
        }
        let country_ok = f.country.len() == 2 && f.country.bytes().all(|b| b.is_ascii_uppercase());
        if !f.country.is_empty() && !country_ok {
            f.errors.push(("country", "Enter a two-letter country code, such as SE or US."));
        }
        for (field, v) in [("from", &f.from), ("to", &f.to)] {
            if !v.is_empty() && view::parse_date(v).is_none() {
                f.errors.push((field, "Enter a date as YYYY-MM-DD."));
            }
        }
        if !f.email.is_empty() {
            match Email::parse(&f.email) {
                Ok(e) => f.email_hash = Some(ctx.keys.blind_index(ctx.db.artist_id(), &e.index_key())),
                Err(_) => f.errors.push(("email", "Enter a whole email address: search finds exact matches only.")),
            }
        }
        f.after = q("after").split_once('.').and_then(|(t, id)| Some((t.parse().ok()?, id.to_owned())));
        f
    }

    fn error(&self, field: &str) -> Option<&'static str> {
        self.errors.iter().find(|(f, _)| *f == field).map(|(_, m)| *m)
    }

    /// The conditions after `f.artist_id = ?1`, with their parameters
    /// (bound from `?2`).
    fn sql(&self) -> (String, Vec<OwnedParam>) {
        let mut sql = String::new();
        let mut params = Vec::new();
        let mut add = |cond: &str, p: OwnedParam| {
            params.push(p);
            sql.push_str(&format!(" AND {cond} ?{}", params.len() + 1));
        };
        if !self.status.is_empty() {
            add("f.status =", OwnedParam::Text(self.status.clone()));
        }
        if !self.country.is_empty() {
            add("f.country =", OwnedParam::Text(self.country.clone()));
        }
        if !self.page.is_empty() {
            add("f.source_page_id =", OwnedParam::Text(self.page.clone()));
        }
        if let Some(ms) = view::parse_date(&self.from) {
            add("f.created_at >=", OwnedParam::Int(ms));
        }
        if let Some(ms) = view::parse_date(&self.to) {
            // Through the end of that day.
            add("f.created_at <", OwnedParam::Int(ms + 86_400_000));
        }
        if let Some(h) = &self.email_hash {
            add("f.email_hash =", OwnedParam::Text(h.clone()));
        }
        (sql, params)
    }

    /// The query string of these filters (for the CSV link and paging).
    fn query(&self) -> String {
        let mut q = String::new();
        for (k, v) in
            [("status", &self.status), ("country", &self.country), ("page", &self.page), ("from", &self.from), ("to", &self.to), ("email", &self.email)]
        {
            if !v.is_empty() {
                q.push_str(if q.is_empty() { "" } else { "&" });
                q.push_str(k);
                q.push('=');
                q.push_str(&httpx::percent_encode(v));
            }
        }
        q
    }
}

/// One fan as the list shows it.
pub(crate) struct Fan {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) status: String,
    pub(crate) country: String,
    pub(crate) region: String,
    pub(crate) city: String,
    pub(crate) page: String,
    pub(crate) created_at: i64,
    pub(crate) consent_version: String,
    pub(crate) subscribed_at: Option<i64>,
    pub(crate) confirmed_at: Option<i64>,
    pub(crate) unsubscribed_at: Option<i64>,
    /// Held back from exports, the JSON list and mail (schema/0009).
    pub(crate) restricted: bool,
    /// What they gave on a page that asks for it (schema/0016); empty: none.
    pub(crate) first_name: String,
}

const COLUMNS: &str = "f.id, f.email_enc, f.status, coalesce(f.country, ''), coalesce(f.region, ''), coalesce(f.city, ''), coalesce(p.slug, ''), \
     f.created_at, f.consent_version, f.subscribed_at, f.confirmed_at, f.unsubscribed_at, \
     EXISTS (SELECT 1 FROM fan_restrictions r WHERE r.fan_id = f.id), \
     (SELECT n.name_enc FROM fan_names n WHERE n.fan_id = f.id AND n.artist_id = f.artist_id), f.email_hash";

fn fan_from(keys: &Keys, artist_id: &str, mut r: Row) -> Result<Fan, Error> {
    let mut text = |i| r.take_text(i).unwrap_or_default();
    let (id, enc, status, country, region, city, page) = (text(0), text(1), text(2), text(3), text(4), text(5), text(6));
    let consent_version = text(8);
    let email = keys.decrypt_fan_email(&enc, artist_id, &id)?;
    // The name's encryption is bound to the address's blind index.
    let email_hash = text(14);
    let first_name = match r.take_text(13) {
        Some(enc) => {
            let plain = keys.decrypt(&enc, shared::capture::fan_name_context(artist_id, &email_hash).as_bytes())?;
            String::from_utf8(plain).map_err(Error::internal)?
        }
        None => String::new(),
    };
    Ok(Fan {
        id,
        email,
        status,
        country,
        region,
        city,
        page,
        created_at: r.int(7).unwrap_or(0),
        consent_version,
        subscribed_at: r.int(9),
        confirmed_at: r.int(10),
        unsubscribed_at: r.int(11),
        restricted: r.int(12).unwrap_or(0) != 0,
        first_name,
    })
}

/// Who a query shows: the dashboard's own list shows restricted fans (the
/// artist must find them to lift it); exports and the API leave them out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Restricted {
    Shown,
    Left,
}

/// One page of fans matching `f`, newest first, after its cursor.
async fn fetch<E: Env>(ctx: &Ctx<'_, E>, f: &Filter, after: Option<&(i64, String)>, limit: usize, restricted: Restricted) -> Result<Vec<Fan>, Error> {
    let (mut cond, mut params) = f.sql();
    if restricted == Restricted::Left {
        cond.push_str(" AND NOT EXISTS (SELECT 1 FROM fan_restrictions r WHERE r.fan_id = f.id)");
    }
    if let Some((t, id)) = after {
        let n = params.len() + 2;
        cond.push_str(&format!(" AND (f.created_at < ?{n} OR (f.created_at = ?{n} AND f.id < ?{}))", n + 1));
        params.push(OwnedParam::Int(*t));
        params.push(OwnedParam::Text(id.clone()));
    }
    params.push(OwnedParam::Int(limit as i64));
    let sql = format!(
        "SELECT {COLUMNS} FROM fans f LEFT JOIN capture_pages p ON p.id = f.source_page_id AND p.artist_id = f.artist_id \
         WHERE f.artist_id = ?1{cond} ORDER BY f.created_at DESC, f.id DESC LIMIT ?{}",
        params.len() + 1
    );
    let bound: Vec<Param<'_>> = params.iter().map(OwnedParam::as_param).collect();
    ctx.db.query(&sql, &bound).await?.into_iter().map(|r| fan_from(&ctx.keys, ctx.db.artist_id(), r)).collect()
}

/// The artist's capture pages, for the filter.
async fn pages<E: Env>(ctx: &Ctx<'_, E>) -> Result<Vec<(String, String)>, Error> {
    let rows = ctx.db.query("SELECT id, slug FROM capture_pages WHERE artist_id = ?1 ORDER BY slug", &[]).await?;
    Ok(rows.into_iter().map(|mut r| (r.take_text(0).unwrap_or_default(), r.take_text(1).unwrap_or_default())).collect())
}

pub async fn list<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    let f = Filter::from_query(ctx);
    let pages = pages(ctx).await?;
    let (fans, more) = if f.errors.is_empty() {
        let mut fans = fetch(ctx, &f, f.after.as_ref(), PAGE_SIZE + 1, Restricted::Shown).await?;
        let more = fans.len() > PAGE_SIZE;
        fans.truncate(PAGE_SIZE);
        (fans, more)
    } else {
        (Vec::new(), false)
    };
    let query = f.query();
    let next = fans.last().filter(|_| more).map(|l| format!("/app/fans?{query}{}after={}.{}", if query.is_empty() { "" } else { "&" }, l.created_at, l.id));
    let body = html! {
        h1 { "Fans" }
        (filter_form(&f, &pages))
        div.actions {
            a.button href={ "/app/fans.csv" @if !query.is_empty() { "?" (query) } } download { "Download CSV" }
            @if f.after.is_some() { a href={ "/app/fans" @if !query.is_empty() { "?" (query) } } { "Back to the newest" } }
        }
        @if fans.is_empty() {
            p role="status" { @if f.errors.is_empty() { "No fans match these filters." } @else { "Fix the filters above to see fans." } }
        } @else {
            div.table { table.fans {
                caption.muted { "Newest first" }
                thead { tr { th scope="col" { "Email" } th scope="col" { "Status" } th scope="col" { "Location" } th scope="col" { "Capture page" } th scope="col" { "Signed up" } } }
                tbody { @for fan in &fans { tr {
                    td.email { a href={ "/app/fans/" (fan.id) } { (fan.email) } }
                    td { span.status { (fan.status) } @if fan.restricted { " " span.status { "restricted" } } }
                    td { (location(fan)) }
                    td { (fan.page) }
                    td { (view::datetime(Some(fan.created_at))) }
                } } }
            } }
        }
        @if let Some(next) = next { p { a href=(next) rel="next" { "Older fans →" } } }
    };
    let status = if f.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(view::html_response(status, view::app_page(&ctx.session, Nav::Fans, "Fans", body)))
}

fn location(fan: &Fan) -> String {
    [fan.city.as_str(), fan.region.as_str(), fan.country.as_str()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(", ")
}

fn filter_form(f: &Filter, pages: &[(String, String)]) -> Markup {
    let field_error = |name: &str| f.error(name).map(|m| html! { p.err id={ "err-" (name) } role="alert" { (m) } });
    let described = |name: &str| f.error(name).map(|_| format!("err-{name}"));
    html! {
        form.filters method="get" action="/app/fans" aria-label="Filter fans" {
            div {
                label for="status" { "Status" }
                select #status name="status" aria-describedby=[described("status")] {
                    option value="" selected[f.status.is_empty()] { "Any" }
                    @for s in STATUSES { option value=(s) selected[f.status == s] { (s) } }
                }
                @if let Some(e) = field_error("status") { (e) }
            }
            div {
                label for="country" { "Country" }
                input #country name="country" value=(f.country) maxlength="2" placeholder="SE" autocomplete="off" aria-describedby=[described("country")];
                @if let Some(e) = field_error("country") { (e) }
            }
            div {
                label for="page" { "Capture page" }
                select #page name="page" {
                    option value="" selected[f.page.is_empty()] { "Any" }
                    @for (id, slug) in pages { option value=(id) selected[&f.page == id] { (slug) } }
                }
            }
            div {
                label for="from" { "From" }
                input #from type="date" name="from" value=(f.from) aria-describedby=[described("from")];
                @if let Some(e) = field_error("from") { (e) }
            }
            div {
                label for="to" { "To" }
                input #to type="date" name="to" value=(f.to) aria-describedby=[described("to")];
                @if let Some(e) = field_error("to") { (e) }
            }
            div {
                label for="search-email" { "Email" }
                input #search-email type="email" name="email" value=(f.email) placeholder="exact address" aria-describedby=[described("email")];
                @if let Some(e) = field_error("email") { (e) }
            }
            div { button type="submit" { "Apply filters" } }
        }
    }
}

/// The fan if it is this artist's, else the same 404 as for no fan.
pub(crate) async fn one<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Fan, Error> {
    one_of(&ctx.db, &ctx.keys, id).await
}

/// [`one`] without a session (a fan's own request, `crate::privacy`).
pub(crate) async fn one_of<E: Env>(db: &Tenant<'_, E>, keys: &Keys, id: &str) -> Result<Fan, Error> {
    if id.len() > 64 {
        return Err(not_found());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM fans f LEFT JOIN capture_pages p ON p.id = f.source_page_id AND p.artist_id = f.artist_id WHERE f.artist_id = ?1 AND f.id = ?2"
    );
    let row = db.query(&sql, &[Param::Text(id)]).await?.into_iter().next().ok_or_else(not_found)?;
    fan_from(keys, db.artist_id(), row)
}

struct ConsentEvent {
    kind: String,
    page: String,
    version: String,
    hash: String,
    method: String,
    at: i64,
}

async fn history<E: Env>(ctx: &Ctx<'_, E>, fan_id: &str) -> Result<Vec<ConsentEvent>, Error> {
    let rows = ctx
        .db
        .query(
            "SELECT e.kind, coalesce(p.slug, ''), coalesce(e.consent_version, ''), coalesce(e.consent_hash, ''), e.method, e.at \
             FROM consent_events e LEFT JOIN capture_pages p ON p.id = e.page_id AND p.artist_id = e.artist_id \
             WHERE e.artist_id = ?1 AND e.fan_id = ?2 ORDER BY e.at, e.id",
            &[Param::Text(fan_id)],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|mut r| ConsentEvent {
            kind: r.take_text(0).unwrap_or_default(),
            page: r.take_text(1).unwrap_or_default(),
            version: r.take_text(2).unwrap_or_default(),
            hash: r.take_text(3).unwrap_or_default(),
            method: r.take_text(4).unwrap_or_default(),
            at: r.int(5).unwrap_or(0),
        })
        .collect())
}

/// A bounce or complaint the email provider reported (`mail_events`).
struct MailReport {
    kind: String,
    bounce_type: String,
    provider: String,
    msg_id: String,
    at: i64,
}

async fn mail_reports<E: Env>(ctx: &Ctx<'_, E>, fan_id: &str) -> Result<Vec<MailReport>, Error> {
    let rows = ctx
        .db
        .query(
            "SELECT kind, coalesce(bounce_type, ''), provider, provider_msg_id, at FROM mail_events WHERE artist_id = ?1 AND fan_id = ?2 ORDER BY at, id",
            &[Param::Text(fan_id)],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|mut r| MailReport {
            kind: r.take_text(0).unwrap_or_default(),
            bounce_type: r.take_text(1).unwrap_or_default(),
            provider: r.take_text(2).unwrap_or_default(),
            msg_id: r.take_text(3).unwrap_or_default(),
            at: r.int(4).unwrap_or(0),
        })
        .collect())
}

pub async fn show<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    let fan = one(ctx, id).await?;
    let events = history(ctx, &fan.id).await?;
    let reports = mail_reports(ctx, &fan.id).await?;
    let done = httpx::query_param(&ctx.parts.uri, "done").is_some();
    let body = html! {
        p { a href="/app/fans" { "← All fans" } }
        h1 { (fan.email) }
        @if done { p.ok role="status" { "Unsubscribed. The fan's history records that you did it." } }
        @if let Some(msg) = crate::rights::notice(ctx) { p.ok role="status" { (msg) } }
        dl {
            @if !fan.first_name.is_empty() { dt { "First name" } dd { (fan.first_name) } }
            dt { "Status" } dd { span.status { (fan.status) } @if fan.restricted { " " span.status { "restricted" } " (left out of exports, the API list and all mail)" } }
            dt { "Location" } dd { (location(&fan)) @if fan.country.is_empty() { span.muted { "unknown" } } }
            dt { "Capture page" } dd { (fan.page) }
            dt { "Signed up" } dd { (view::datetime(Some(fan.created_at))) }
            dt { "Subscribed" } dd { (view::datetime(fan.subscribed_at)) }
            dt { "Confirmed" } dd { (view::datetime(fan.confirmed_at)) }
            dt { "Unsubscribed" } dd { (view::datetime(fan.unsubscribed_at)) }
            dt { "Consent version" } dd { (fan.consent_version) }
        }
        h2 { "Consent history" }
        div.table { table {
            thead { tr { th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "How" } th scope="col" { "Page" } th scope="col" { "Consent text (version, SHA-256)" } } }
            tbody { @for e in &events { tr {
                td { (view::datetime(Some(e.at))) }
                td { (e.kind) }
                td { (e.method) }
                td { (e.page) }
                td { (e.version) @if !e.hash.is_empty() { br; small.secret { (e.hash) } } }
            } } }
        } }
        @if !reports.is_empty() {
            h2 { "Bounces and complaints" }
            div.table { table {
                thead { tr { th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "Reported by" } th scope="col" { "Provider's message id" } } }
                tbody { @for r in &reports { tr {
                    td { (view::datetime(Some(r.at))) }
                    td { (r.kind) @if !r.bounce_type.is_empty() { " (" (r.bounce_type) ")" } }
                    td { (r.provider) }
                    td { small.secret { (r.msg_id) } }
                } } }
            } }
        }
        h2 { "Their data" }
        p { a.button href={ "/app/fans/" (fan.id) "/export.json" } download { "Download everything held about this fan (JSON)" } }
        @if ctx.session.role == shared::auth::Role::Owner {
            h2 { "Actions" }
            @if matches!(fan.status.as_str(), "pending" | "subscribed") {
                form method="post" action={ "/app/fans/" (fan.id) "/unsubscribe" } {
                    (view::csrf_field(&ctx.session.csrf))
                    p { "Unsubscribe this fan on their behalf (for example, when they asked you by email). It is recorded in their history as done by you." }
                    button.danger type="submit" { "Unsubscribe this fan" }
                }
            }
            (crate::rights::actions(ctx, &fan.id, fan.restricted))
        }
    };
    Ok(view::html_response(StatusCode::OK, view::app_page(&ctx.session, Nav::Fans, &fan.email, body)))
}

pub async fn unsubscribe<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    ctx.require_owner()?;
    let fan = one(ctx, id).await?;
    let now = ctx.env.now_ms();
    let event_id = shared::env::random_id(ctx.env)?;
    // Guarded by status like the fan's own unsubscribe, so a repeat
    // changes (and queues) nothing; `artist` in the history says who did it.
    let mut rows = ctx
        .db
        .batch(&[
            (
                "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) \
                 SELECT ?2, id, artist_id, 'unsubscribe', NULL, consent_version, NULL, 'artist', ?3 FROM fans \
                 WHERE artist_id = ?1 AND id = ?4 AND status IN ('pending', 'subscribed')",
                &[Param::Text(&event_id), Param::Int(now), Param::Text(&fan.id)],
            ),
            (
                "UPDATE fans SET status = 'unsubscribed', unsubscribed_at = ?2, updated_at = ?2 WHERE artist_id = ?1 AND id = ?3 AND status IN ('pending', 'subscribed')",
                &[Param::Int(now), Param::Text(&fan.id)],
            ),
            (shared::outbox::FAN_EVENT, &[Param::Text(&event_id), Param::Int(now)]),
        ])
        .await?;
    shared::outbox::deliver_later(ctx.env, shared::outbox::queued(rows.pop().unwrap_or_default()));
    Ok(view::redirect(&format!("/app/fans/{}?done=1", fan.id)))
}

pub(crate) fn iso(ms: Option<i64>) -> String {
    ms.map(|ms| {
        let d = view::datetime(Some(ms));
        // "YYYY-MM-DD HH:MM UTC" → ISO 8601 with seconds
        let secs = ms.div_euclid(1000) % 60;
        format!("{}T{}:{secs:02}Z", &d[..10], &d[11..16])
    })
    .unwrap_or_default()
}

pub async fn csv<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    let f = Filter::from_query(ctx);
    if let Some((field, msg)) = f.errors.first() {
        return Err(Error::field(ErrorKind::Unprocessable, field, *msg));
    }
    let mut out = Csv::new();
    out.row([
        "email",
        "status",
        "country",
        "region",
        "city",
        "source_page",
        "signed_up_at",
        "consent_version",
        "subscribed_at",
        "confirmed_at",
        "unsubscribed_at",
        // Last, so tools that read the columns by position keep working.
        "first_name",
    ]);
    let mut after = None;
    loop {
        let batch = fetch(ctx, &f, after.as_ref(), EXPORT_BATCH, Restricted::Left).await?;
        for fan in &batch {
            let times = [iso(Some(fan.created_at)), iso(fan.subscribed_at), iso(fan.confirmed_at), iso(fan.unsubscribed_at)];
            out.row([
                fan.email.as_str(),
                &fan.status,
                &fan.country,
                &fan.region,
                &fan.city,
                &fan.page,
                &times[0],
                &fan.consent_version,
                &times[1],
                &times[2],
                &times[3],
                &fan.first_name,
            ]);
        }
        match batch.last() {
            Some(last) if batch.len() == EXPORT_BATCH => after = Some((last.created_at, last.id.clone())),
            _ => break,
        }
    }
    let mut res = httpx::respond(StatusCode::OK, "text/csv; charset=utf-8", out.finish());
    let name = format!("attachment; filename=\"fans-{}.csv\"", view::date(ctx.env.now_ms()));
    if let Ok(v) = HeaderValue::from_str(&name) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

fn fan_json(fan: &Fan) -> serde_json::Value {
    serde_json::json!({
        "id": fan.id, "email": fan.email, "first_name": (!fan.first_name.is_empty()).then_some(&fan.first_name), "status": fan.status,
        "country": (!fan.country.is_empty()).then_some(&fan.country),
        "region": (!fan.region.is_empty()).then_some(&fan.region),
        "city": (!fan.city.is_empty()).then_some(&fan.city),
        "source_page": (!fan.page.is_empty()).then_some(&fan.page),
        "consent_version": fan.consent_version,
        "created_at": fan.created_at, "subscribed_at": fan.subscribed_at,
        "confirmed_at": fan.confirmed_at, "unsubscribed_at": fan.unsubscribed_at,
    })
}

pub async fn api_list<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    let f = Filter::from_query(ctx);
    if let Some((field, msg)) = f.errors.first() {
        return Err(Error::field(ErrorKind::Unprocessable, field, *msg));
    }
    let mut fans = fetch(ctx, &f, f.after.as_ref(), PAGE_SIZE + 1, Restricted::Left).await?;
    let more = fans.len() > PAGE_SIZE;
    fans.truncate(PAGE_SIZE);
    let next = fans.last().filter(|_| more).map(|l| format!("{}.{}", l.created_at, l.id));
    let body = serde_json::json!({ "fans": fans.iter().map(fan_json).collect::<Vec<_>>(), "next": next });
    Ok(httpx::respond(StatusCode::OK, httpx::JSON, body.to_string()))
}

pub async fn api_show<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    let fan = one(ctx, id).await?;
    let events = history(ctx, &fan.id).await?;
    let mut v = fan_json(&fan);
    v["consent_history"] = events
        .iter()
        .map(|e| serde_json::json!({ "kind": e.kind, "method": e.method, "page": e.page, "consent_version": e.version, "consent_hash": e.hash, "at": e.at }))
        .collect();
    Ok(httpx::respond(StatusCode::OK, httpx::JSON, v.to_string()))
}
