//! Smart links in the dashboard (`/l/{slug}`, served by `functions/links`):
//! the list, and creating and editing links through the links API's own
//! validation and save (`links::edit::save_link`). The form becomes the
//! API's JSON, so the dashboard stores exactly what the API would for the
//! same input, and the API's messages come back next to the field they name.
//! Each link's analytics page (`/app/links/{slug}`) is `analytics`.
//!
//! Decisions where the issue is silent (README "Smart links in the
//! dashboard"):
//! - Owners and members both create and edit links: links are the artist's
//!   published content, which both roles work on (as capture pages); an
//!   edit touches no account, team or fan data, is undone by another edit,
//!   and each one is announced to the artist's webhooks (`link.updated`).
//! - No script: one row per service the API knows (ten), blank rows
//!   ignored; a country's own address is a line `GB https://…`, hidden-in
//!   countries a list of codes. The slug cannot change (as in the API:
//!   shared and printed links point at it).
//! - One refusal at a time, as the API answers: its first error, shown at
//!   its field; 422 for an invalid value, 409 for a slug already taken.
//! - Saved changes are written through to KV at once; the links function
//!   keeps a link in each instance for `instance_cache_seconds` (30 s) and
//!   Workers KV takes up to a minute to reach every location, which the
//!   page after saving says ([`saved_notice`]).
//! - A link whose slug is `new` keeps its analytics at
//!   `/app/links/new`, which is the creation form: it is edited (and
//!   reached) from the list's Edit link.

use links::edit::{save_link, Cache, Definition, Platform, MAX_LABEL, MAX_TITLE};
use links::json::{self, Json};
use maud::{html, Markup};
use shared::http::StatusCode;
use shared::sql::Param;
use shared::{httpx, Env, Error, ErrorKind, Response};

use crate::view::{self, Nav};
use crate::{not_found, Ctx, Form, PAGE_SIZE};

/// One row per service the API knows: each may appear once.
const ROWS: usize = Platform::ALL.len();
/// The public page's own light colours (functions/links), offered as a
/// start when the artist turns their own colours on.
const DEFAULT_THEME: (&str, &str) = ("#f4f4f5", "#111111");
/// Most bytes a countries box or a hidden-in list takes: the API's limits
/// (60 addresses, 250 codes) with room, so a pasted list is refused by the
/// API's sentence rather than cut.
const MAX_LIST: usize = 60 * 2100;
const DAY_MS: i64 = 86_400_000;

/// `GET /app/links[?after={slug}]`: the artist's links in slug order, with
/// clicks in the last 30 days (UTC days, today included) from the daily
/// aggregates (`agg_link_daily`, dimension `all`): 30 key lookups a link,
/// whatever its traffic.
pub async fn list<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    let after = httpx::query_param(&ctx.parts.uri, "after").unwrap_or_default();
    let today = ctx.env.now_ms();
    let (first, last) = (shared::date::ymd(today - 29 * DAY_MS), shared::date::ymd(today));
    let mut rows = ctx
        .db
        .query(
            "WITH RECURSIVE d(day) AS (SELECT ?2 UNION ALL SELECT date(day, '+1 day') FROM d WHERE day < ?3) \
             SELECT l.slug, json_extract(l.definition, '$.title'), \
               (SELECT coalesce(sum(a.n), 0) FROM agg_link_daily a WHERE a.link_id = l.id AND a.artist_id = ?1 \
                  AND a.day IN (SELECT day FROM d) AND a.kind = 'click' AND a.dim = 'all' AND a.value = '') \
             FROM links l WHERE l.artist_id = ?1 AND l.slug > ?4 ORDER BY l.slug LIMIT ?5",
            &[Param::Text(&first), Param::Text(&last), Param::Text(&after), Param::Int(PAGE_SIZE as i64 + 1)],
        )
        .await?;
    let more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    let next = rows.last().filter(|_| more).and_then(|r| r.text(0)).map(|s| format!("/app/links?after={s}"));
    let body = html! {
        h1 { "Smart links" }
        p { a.button href="/app/links/new" { "New smart link" } }
        @if rows.is_empty() && after.is_empty() { p { "No smart links yet." } } @else {
            @if !after.is_empty() { p { a href="/app/links" { "Back to the first links" } } }
            div.table { table {
                thead { tr { th scope="col" { "Link" } th scope="col" { "Title" } th scope="col" .num { "Clicks, last 30 days" } th scope="col" { span.sr { "Actions" } } } }
                tbody { @for r in &rows {
                    @let slug = r.text(0).unwrap_or("");
                    tr {
                        td { a href={ "/app/links/" (slug) } { "/l/" (slug) } }
                        td { (r.text(1).unwrap_or("")) }
                        td.num { (r.int(2).unwrap_or(0)) }
                        td { a href={ "/app/links/" (slug) "/edit" } { "Edit" span.sr { " /l/" (slug) } } }
                    }
                } }
            } }
            @if let Some(next) = next { p { a href=(next) rel="next" { "More links →" } } }
        }
    };
    crate::ok_page(view::app_page(&ctx.session, Nav::Links, "Smart links", body))
}

/// `GET /app/links/new`
pub async fn new_form<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    Ok(form_page(ctx, None, &Draft::default(), StatusCode::OK))
}

/// `GET /app/links/{slug}/edit`: the stored definition, read back through
/// the API's parser, in the form.
pub async fn edit_form<E: Env>(ctx: &Ctx<'_, E>, slug: &str) -> Result<Response, Error> {
    let def = owned(ctx, slug).await?;
    Ok(form_page(ctx, Some(slug), &Draft::of(&def), StatusCode::OK))
}

/// `POST /app/links/new`
pub async fn create<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    save(ctx, None).await
}

/// `POST /app/links/{slug}/edit`: another artist's link answers as a
/// missing one (404) before anything is read from the form.
pub async fn update<E: Env>(ctx: &Ctx<'_, E>, slug: &str) -> Result<Response, Error> {
    owned(ctx, slug).await?;
    save(ctx, Some(slug)).await
}

async fn save<E: Env>(ctx: &Ctx<'_, E>, slug: Option<&str>) -> Result<Response, Error> {
    let mut d = Draft::from_form(&ctx.form);
    let (json, used) = d.to_json(slug.is_none());
    // The links function's instances keep their own caches; this one only
    // satisfies the save's signature.
    let cache = Cache::new(0, 1);
    match save_link(&ctx.db, ctx.env, &cache, &json, slug, &ctx.session.artist_name).await {
        Ok(stored) => Ok(view::redirect(&format!("/app/links/{}?saved={}", stored.slug, if slug.is_some() { "updated" } else { "created" }))),
        Err(e) if e.kind == ErrorKind::NotFound => Err(not_found()),
        Err(e) if matches!(e.kind, ErrorKind::Unprocessable | ErrorKind::BadRequest | ErrorKind::Conflict) => {
            d.refuse(&e, &used);
            Ok(form_page(ctx, slug, &d, e.status()))
        }
        Err(e) => Err(e),
    }
}

/// The artist's own link, parsed as the API parses it; the same 404 as a
/// missing one otherwise.
async fn owned<E: Env>(ctx: &Ctx<'_, E>, slug: &str) -> Result<Definition, Error> {
    if !links::edit::valid_slug(slug) {
        return Err(not_found());
    }
    let rows = ctx.db.query("SELECT definition FROM links WHERE artist_id = ?1 AND slug = ?2", &[Param::Text(slug)]).await?;
    let stored = rows.first().and_then(|r| r.text(0)).ok_or_else(not_found)?;
    let v = json::parse(stored.as_bytes()).map_err(Error::internal)?;
    Definition::from_json(&v, Some(slug)).map_err(|e| Error::internal(format!("stored link {slug}: {}", e.message)))
}

/// What the page after a save says (`?saved=created|updated`): the public
/// address, and when fans see the change. For `/app/links/{slug}`
/// (`analytics::show`).
pub fn saved_notice<E: Env>(ctx: &Ctx<'_, E>, slug: &str) -> Markup {
    let saved = httpx::query_param(&ctx.parts.uri, "saved");
    let verb = match saved.as_deref() {
        Some("created") => "Created",
        Some("updated") => "Saved",
        _ => return html! {},
    };
    let base = ctx.env.var("public_base_url").unwrap_or_default();
    let url = format!("{}/l/{slug}", base.trim().trim_end_matches('/'));
    html! {
        div.card role="status" {
            p.ok { (verb) ". " a href=(url) { (url) } " is yours to share." }
            p { (live_note(ctx.env)) }
        }
    }
}

/// The links function's instance cache time is the same setting as
/// ours (`instance_cache_seconds`, README "Settings and secrets").
fn live_note(env: &impl Env) -> String {
    format!(
        "Fans see a change within about a minute and a half: each instance of the link page keeps a link for up to {} seconds, \
         and the copy it reads can take up to a minute to reach every location (on a single machine, within {0} seconds).",
        shared::cache::instance_ttl_ms(env) / 1000
    )
}

/// One service row as typed.
#[derive(Default, Clone)]
struct TargetRow {
    platform: String,
    url: String,
    label: String,
    /// `CC https://…`, one a line.
    countries: String,
    /// Country codes, separated by commas or spaces.
    hidden: String,
}

impl TargetRow {
    fn is_blank(&self) -> bool {
        [&self.platform, &self.url, &self.label, &self.countries, &self.hidden].iter().all(|s| s.trim().is_empty())
    }
}

/// The form as typed, and the one refusal to show: (input id, message).
#[derive(Default)]
struct Draft {
    slug: String,
    title: String,
    artist: String,
    artwork_url: String,
    auto_redirect: bool,
    themed: bool,
    background: String,
    button: String,
    rows: Vec<TargetRow>,
    error: Option<(String, String)>,
}

impl Draft {
    fn of(def: &Definition) -> Draft {
        let rows = def
            .targets
            .iter()
            .map(|t| TargetRow {
                platform: t.platform.key().to_owned(),
                url: t.url.clone(),
                label: t.label.clone().unwrap_or_default(),
                countries: t.countries.iter().map(|(c, u)| format!("{} {u}", c.as_str())).collect::<Vec<_>>().join("\n"),
                hidden: t.hidden_in.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
            })
            .collect();
        Draft {
            slug: def.slug.clone(),
            title: def.title.clone(),
            artist: def.artist.clone().unwrap_or_default(),
            artwork_url: def.artwork_url.clone().unwrap_or_default(),
            auto_redirect: def.auto_redirect,
            themed: def.theme.is_some(),
            background: def.theme.map(|t| t.background.hex()).unwrap_or_default(),
            button: def.theme.map(|t| t.button.hex()).unwrap_or_default(),
            rows,
            error: None,
        }
    }

    fn from_form(form: &Form) -> Draft {
        let get = |name: &str| form.get(name).unwrap_or("").to_owned();
        let rows = (0..ROWS)
            .map(|i| TargetRow {
                platform: get(&format!("t{i}-platform")),
                url: get(&format!("t{i}-url")),
                label: get(&format!("t{i}-label")),
                countries: get(&format!("t{i}-countries")),
                hidden: get(&format!("t{i}-hidden")),
            })
            .collect();
        Draft {
            slug: get("slug"),
            title: get("title"),
            artist: get("artist"),
            artwork_url: get("artwork_url"),
            auto_redirect: form.get("auto_redirect").is_some(),
            themed: form.get("themed").is_some(),
            background: get("background"),
            button: get("button"),
            rows,
            error: None,
        }
    }

    /// The API's JSON for this form, and for each of its targets the form
    /// row it came from. Only what the form can't say is decided here:
    /// empty optional fields are left out, blank rows skipped, addresses
    /// trimmed (as a browser does for `type=url`); every check is the API's.
    fn to_json(&self, create: bool) -> (Json, Vec<usize>) {
        let s = |v: &str| Json::String(v.to_owned());
        let mut obj: Vec<(String, Json)> = Vec::with_capacity(8);
        if create {
            obj.push(("slug".into(), s(self.slug.trim())));
        }
        obj.push(("title".into(), s(&self.title)));
        if !self.artist.trim().is_empty() {
            obj.push(("artist".into(), s(&self.artist)));
        }
        if !self.artwork_url.trim().is_empty() {
            obj.push(("artwork_url".into(), s(self.artwork_url.trim())));
        }
        if self.themed {
            obj.push(("theme".into(), Json::Object(vec![("background".into(), s(&self.background)), ("button".into(), s(&self.button))])));
        }
        obj.push(("auto_redirect".into(), Json::Bool(self.auto_redirect)));
        let mut used = Vec::new();
        let mut targets = Vec::new();
        for (i, r) in self.rows.iter().enumerate().filter(|(_, r)| !r.is_blank()) {
            used.push(i);
            let mut t: Vec<(String, Json)> = Vec::with_capacity(5);
            for (key, value) in [("platform", r.platform.trim()), ("url", r.url.trim()), ("label", r.label.as_str())] {
                if !value.trim().is_empty() {
                    t.push((key.into(), s(value)));
                }
            }
            let countries: Vec<(String, Json)> = r
                .countries
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (code, url) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
                    (code.to_owned(), s(url.trim()))
                })
                .collect();
            if !countries.is_empty() {
                t.push(("countries".into(), Json::Object(countries)));
            }
            let hidden: Vec<Json> = r.hidden.split(|c: char| c == ',' || c.is_whitespace()).filter(|c| !c.is_empty()).map(s).collect();
            if !hidden.is_empty() {
                t.push(("hidden_in".into(), Json::Array(hidden)));
            }
            targets.push(Json::Object(t));
        }
        obj.push(("targets".into(), Json::Array(targets)));
        (Json::Object(obj), used)
    }

    /// Puts the API's refusal next to the input it is about.
    fn refuse(&mut self, e: &Error, used: &[usize]) {
        let message = e.public_message();
        let (id, text) = match e.field {
            Some("targets") => target_error(message, used),
            Some(f) if f.starts_with("theme.") => {
                (f[6..].to_owned(), reword(message, f, if f == "theme.button" { "The button colour" } else { "The background colour" }))
            }
            Some(f @ ("slug" | "title" | "artist" | "artwork_url" | "auto_redirect" | "theme")) => (f.to_owned(), reword(message, f, label(f))),
            _ => ("form".to_owned(), message.to_owned()),
        };
        self.error = Some((id, text));
    }

    fn error(&self, id: &str) -> Option<&str> {
        self.error.as_ref().filter(|(i, _)| i == id).map(|(_, m)| m.as_str())
    }
}

fn label(field: &str) -> &'static str {
    match field {
        "slug" => "The address",
        "title" => "The title",
        "artist" => "The artist name",
        "artwork_url" => "The artwork address",
        "auto_redirect" => "Auto-redirect",
        _ => "The colours",
    }
}

/// The API names a field by its JSON key at the start of a sentence
/// ("title is required."); here it is the form's label.
fn reword(message: &str, key: &str, label: &str) -> String {
    match message.strip_prefix(key) {
        Some(rest) if rest.starts_with(' ') => format!("{label}{rest}"),
        _ => message.to_owned(),
    }
}

/// `targets[i].url …` → the URL input of the form row target `i` came
/// from, reworded for the form; a message about the list as a whole goes
/// to the first row's service.
fn target_error(message: &str, used: &[usize]) -> (String, String) {
    let parsed = message.strip_prefix("targets[").and_then(|rest| {
        let (i, rest) = rest.split_once(']')?;
        let row = *used.get(i.parse::<usize>().ok()?)?;
        Some((row, rest))
    });
    let Some((row, rest)) = parsed else {
        let text = match message.strip_prefix("targets ") {
            Some(rest) => format!("The services {rest}"),
            None => message.to_owned(),
        };
        return ("t0-platform".to_owned(), text);
    };
    let end = rest.find([' ', ':']).unwrap_or(rest.len());
    let (path, tail) = rest.split_at(end);
    let path = path.trim_start_matches('.');
    let (input, what) = match path.split_once('.').unwrap_or((path, "")) {
        ("url", _) => ("url", "This address".to_owned()),
        ("label", _) => ("label", "The button text".to_owned()),
        ("platform", _) => ("platform", "The service".to_owned()),
        ("countries", "") => ("countries", "Country addresses".to_owned()),
        ("countries", code) => ("countries", format!("The address for {code}")),
        ("hidden_in", _) => ("hidden", "Hidden in".to_owned()),
        _ => ("platform", String::new()),
    };
    let colon = tail.starts_with(':');
    let tail = tail.trim_start_matches(':').trim_start();
    let text = match (what.is_empty(), colon) {
        (true, _) => tail.chars().next().map(|f| f.to_uppercase().chain(tail.chars().skip(1)).collect()).unwrap_or_default(),
        (false, true) => format!("{what}: {tail}"),
        (false, false) => format!("{what} {tail}"),
    };
    (format!("t{row}-{input}"), text)
}

fn form_page<E: Env>(ctx: &Ctx<'_, E>, slug: Option<&str>, d: &Draft, status: StatusCode) -> Response {
    let (heading, action, back) = match slug {
        Some(s) => (format!("Edit /l/{s}"), format!("/app/links/{s}/edit"), format!("/app/links/{s}")),
        None => ("New smart link".to_owned(), "/app/links/new".to_owned(), "/app/links".to_owned()),
    };
    let described = |id: &str| match d.error(id) {
        Some(_) => format!("hint-{id} err-{id}"),
        None => format!("hint-{id}"),
    };
    let invalid = |id: &str| d.error(id).map(|_| "true");
    let err = |id: &str| html! { @if let Some(e) = d.error(id) { p.err id={ "err-" (id) } role="alert" { (e) } } };
    let field = |id: &str, label: &str, hint: &str, input: Markup| {
        html! { div.field { label for=(id) { (label) } p.hint id={ "hint-" (id) } { (hint) } (input) (err(id)) } }
    };
    let empty = TargetRow::default();
    let body = html! {
        p { a href=(back) { "← Back" } }
        h1 { (heading) }
        @if let Some((id, _)) = &d.error {
            @if id == "form" { p.err role="alert" { "Nothing was saved. " (d.error("form").unwrap_or("")) } }
            @else { p.err role="alert" { "Nothing was saved: " a href={ "#" (id) } { "fix the field marked below" } "." } }
        }
        form.link-editor method="post" action=(action) novalidate {
            (view::csrf_field(&ctx.session.csrf))
            @if let Some(s) = slug {
                p { "Address: " strong { "/l/" (s) } " (it cannot change: shared and printed links point at it)." }
            } @else {
                (field("slug", "Link address", "The link's address: /l/ followed by 3 to 64 lower-case letters, digits and dashes. It cannot be changed later.", html! {
                    input #slug name="slug" value=(d.slug) maxlength="64" required autocomplete="off" spellcheck="false" aria-describedby=(described("slug")) aria-invalid=[invalid("slug")];
                }))
            }
            (field("title", "Title", &format!("The release's name, shown large on the page (at most {MAX_TITLE} characters)."), html! {
                input #title name="title" value=(d.title) maxlength=(MAX_TITLE) required autocomplete="off" aria-describedby=(described("title")) aria-invalid=[invalid("title")];
            }))
            (field("artist", "Artist name (optional)", &format!("Shown under the title; your workspace's name ({}) when empty.", ctx.session.artist_name), html! {
                input #artist name="artist" value=(d.artist) maxlength=(MAX_TITLE) autocomplete="off" aria-describedby=(described("artist")) aria-invalid=[invalid("artist")];
            }))
            (field("artwork_url", "Artwork address (optional)", "A full https:// address of the cover image.", html! {
                input #artwork_url name="artwork_url" type="url" value=(d.artwork_url) maxlength=(shared::url::MAX_URL) autocomplete="off" spellcheck="false" aria-describedby=(described("artwork_url")) aria-invalid=[invalid("artwork_url")];
            }))
            div.field.check {
                input #auto_redirect type="checkbox" name="auto_redirect" value="1" checked[d.auto_redirect] aria-describedby=(described("auto_redirect"));
                label for="auto_redirect" { "Auto-redirect" }
                p.hint #hint-auto_redirect { "Fans who chose a service on this link before go straight there next time." }
                (err("auto_redirect"))
            }
            fieldset.theme {
                legend { "Colours" }
                div.field.check {
                    input #theme type="checkbox" name="themed" value="1" checked[d.themed] aria-describedby=(described("theme"));
                    label for="theme" { "Use my own colours" }
                    p.hint #hint-theme { "Otherwise the page follows each fan's light or dark setting. Text colours are chosen for contrast." }
                    (err("theme"))
                }
                div.colours {
                    (field("background", "Background", "", html! {
                        input #background name="background" type="color" value=(or(&d.background, DEFAULT_THEME.0)) aria-describedby=(described("background")) aria-invalid=[invalid("background")];
                    }))
                    (field("button", "Buttons", "", html! {
                        input #button name="button" type="color" value=(or(&d.button, DEFAULT_THEME.1)) aria-describedby=(described("button")) aria-invalid=[invalid("button")];
                    }))
                }
            }
            h2 { "Services" }
            p.hint { "One row per service, in the order fans see them; empty rows are left out. Use “Other” for anything else (a shop, a video), with its button text." }
            @for i in 0..ROWS {
                @let r = d.rows.get(i).unwrap_or(&empty);
                @let id = |k: &str| format!("t{i}-{k}");
                fieldset.target {
                    legend { "Service " (i + 1) }
                    div.field {
                        label for=(id("platform")) { "Service" }
                        select id=(id("platform")) name=(id("platform")) aria-describedby=[d.error(&id("platform")).map(|_| format!("err-{}", id("platform")))] aria-invalid=[invalid(&id("platform"))] {
                            option value="" selected[r.platform.is_empty()] { "—" }
                            @for p in Platform::ALL { option value=(p.key()) selected[r.platform == p.key()] { (p.name()) } }
                        }
                        (err(&id("platform")))
                    }
                    div.field.wide {
                        label for=(id("url")) { "Address" }
                        input id=(id("url")) name=(id("url")) type="url" value=(r.url) maxlength=(shared::url::MAX_URL) autocomplete="off" spellcheck="false" placeholder="https://" aria-describedby=[d.error(&id("url")).map(|_| format!("err-{}", id("url")))] aria-invalid=[invalid(&id("url"))];
                        (err(&id("url")))
                    }
                    div.field {
                        label for=(id("label")) { "Button text (Other only)" }
                        input id=(id("label")) name=(id("label")) value=(r.label) maxlength=(MAX_LABEL) autocomplete="off" aria-describedby=[d.error(&id("label")).map(|_| format!("err-{}", id("label")))] aria-invalid=[invalid(&id("label"))];
                        (err(&id("label")))
                    }
                    details open[!r.countries.is_empty() || !r.hidden.is_empty() || d.error.as_ref().is_some_and(|(e, _)| e == &id("countries") || e == &id("hidden"))] {
                        summary { "By country" }
                        div.field {
                            label for=(id("countries")) { "Other addresses by country" }
                            p.hint id={ "hint-" (id("countries")) } { "One a line: a two-letter country code, a space, the address (GB https://…)." }
                            textarea id=(id("countries")) name=(id("countries")) rows="2" maxlength=(MAX_LIST) spellcheck="false" aria-describedby=(described(&id("countries"))) aria-invalid=[invalid(&id("countries"))] { (r.countries) }
                            (err(&id("countries")))
                        }
                        div.field {
                            label for=(id("hidden")) { "Hide in these countries" }
                            p.hint id={ "hint-" (id("hidden")) } { "Two-letter codes, separated by commas (CN, RU)." }
                            input id=(id("hidden")) name=(id("hidden")) value=(r.hidden) maxlength=(MAX_LIST) autocomplete="off" spellcheck="false" aria-describedby=(described(&id("hidden"))) aria-invalid=[invalid(&id("hidden"))];
                            (err(&id("hidden")))
                        }
                    }
                }
            }
            p.hint { (live_note(ctx.env)) }
            button type="submit" { @if slug.is_some() { "Save" } @else { "Create the link" } }
        }
    };
    view::html_response(status, view::app_page(&ctx.session, Nav::Links, &heading, body))
}

fn or<'a>(v: &'a str, default: &'a str) -> &'a str {
    if v.is_empty() {
        default
    } else {
        v
    }
}

#[cfg(test)]
mod tests;
