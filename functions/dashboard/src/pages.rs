//! Capture pages (`/s/{slug}`, served by `functions/signup`): the list,
//! each page's details, creating and editing them, a preview, and the
//! snippet that embeds the signup form in the artist's own site.
//!
//! Decisions where the issue is silent (README "Capture pages"):
//! - Owners and members both manage pages: pages are the artist's content,
//!   which both roles work on; nothing here touches the account, the team
//!   or fans' data.
//! - A changed consent text gets the next version (`v1`, `v2`, … after the
//!   highest `vN` the page has had, whatever its older versions were
//!   named), and the old text stays in `consent_versions`: the version row
//!   of the text being replaced, the page update and the new version row
//!   are one atomic batch. The slug cannot change: printed flyers and
//!   embeds point at it, and fans' evidence names it.
//! - An edit shows on `/s/{slug}` within signup's page cache
//!   (`instance_cache_seconds`, 30 s) on Workers; at once on Spin.
//! - Preview without script: the edit form's Preview button posts the
//!   draft into a sandboxed frame beside it, where the draft is rendered
//!   by the very function that renders the public page
//!   (`shared::capture::render_page`), under the public page's own policy
//!   (`frame-ancestors 'self'` instead of `'none'`, and `sandbox`, so
//!   nothing in it can sign anyone up). The dashboard's policy gains
//!   `frame-src 'self'` for it and nothing else.
//! - A page's look (artist image, colours, message, the first-name field;
//!   README "Capture page") is checked by the public page's own rules
//!   (`shared::capture::Look`) and saved in the page's batch; what is
//!   stored is what was typed, normalised, so a colour left empty stays
//!   the page's own.
//! - Refused forms come back with what was typed, the message next to the
//!   field: 422 for invalid values, 409 for a slug another page has.

use maud::{html, Markup};
use shared::http::header::{self, HeaderValue};
use shared::http::StatusCode;
use shared::sql::{Param, Row};
use shared::{crypto, httpx, Env, Error, Response};

use shared::capture::{Look, LookInput};

use crate::view::{self, Nav};
use crate::{not_found, Ctx};

/// Longest title, consent text and thank-you text accepted, in characters.
pub const MAX_TITLE: usize = 120;
pub const MAX_CONSENT: usize = 1000;
pub const MAX_THANKS: usize = 500;
/// What a new page's consent box says until the artist changes it.
const DEFAULT_CONSENT: &str = "Yes, email me news about new music and shows. I can unsubscribe at any time.";
/// The name of the frame the Preview button posts into.
const FRAME: &str = "preview";

/// One capture page as the dashboard reads it.
struct Page {
    id: String,
    slug: String,
    title: String,
    consent_text: String,
    consent_version: String,
    double_opt_in: bool,
    thanks_text: String,
    redirect_url: String,
    updated_at: Option<i64>,
    /// The look as stored (schema/0016; empty: unset).
    look: LookFields,
}

/// A page's look as text fields, as stored or as typed.
#[derive(Default, Clone)]
struct LookFields {
    artist_image_url: String,
    background: String,
    button: String,
    message: String,
    ask_first_name: bool,
}

impl LookFields {
    fn input(&self) -> LookInput<'_> {
        LookInput {
            artist_image_url: &self.artist_image_url,
            background: &self.background,
            button: &self.button,
            message: &self.message,
            ask_first_name: self.ask_first_name,
        }
    }
}

const COLUMNS: &str =
    "p.id, p.slug, p.title, p.consent_text, p.consent_version, p.double_opt_in, coalesce(p.thanks_text, ''), coalesce(p.redirect_url, ''), p.updated_at, \
     coalesce(l.artist_image_url, ''), coalesce(l.background, ''), coalesce(l.button, ''), coalesce(l.message, ''), coalesce(l.ask_first_name, 0)";

impl Page {
    fn from_row(mut r: Row) -> Page {
        let mut t = |i| r.take_text(i).unwrap_or_default();
        let (id, slug, title, consent_text, consent_version) = (t(0), t(1), t(2), t(3), t(4));
        let (thanks_text, redirect_url) = (t(6), t(7));
        let (artist_image_url, background, button, message) = (t(9), t(10), t(11), t(12));
        let look = LookFields { artist_image_url, background, button, message, ask_first_name: r.int(13) == Some(1) };
        Page { id, slug, title, consent_text, consent_version, double_opt_in: r.int(5) == Some(1), thanks_text, redirect_url, updated_at: r.int(8), look }
    }
}

/// The artist's page `id`, or the one 404 for missing and not theirs.
async fn one<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Page, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM capture_pages p LEFT JOIN capture_page_looks l ON l.page_id = p.id AND l.artist_id = p.artist_id WHERE p.artist_id = ?1 AND p.id = ?2"
    );
    let rows = ctx.db.query(&sql, &[Param::Text(id)]).await?;
    rows.into_iter().next().map(Page::from_row).ok_or_else(not_found)
}

// ------------------------------------------------------------------ views

/// `GET /app/pages`
pub async fn list<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    // Fans per page from the aggregate (schema/0014_aggregates.sql): one
    // row per page, whatever the list's size.
    let rows = ctx
        .db
        .query(
            "SELECT p.id, p.slug, p.title, p.double_opt_in, coalesce((SELECT a.n FROM agg_fan_page a WHERE a.artist_id = ?1 AND a.page_id = p.id), 0) \
             FROM capture_pages p WHERE p.artist_id = ?1 ORDER BY p.slug",
            &[],
        )
        .await?;
    let body = html! {
        div.actions {
            h1 { "Capture pages" }
            a.button href="/app/pages/new" { "New capture page" }
        }
        @if rows.is_empty() { p { "No capture pages yet. A capture page is where fans join your list: create one, then share its address or embed its form." } } @else {
            div.table { table {
                thead { tr { th scope="col" { "Page" } th scope="col" { "Title" } th scope="col" { "Opt-in" } th scope="col" { "Fans" } } }
                tbody { @for r in &rows { tr {
                    td { a href={ "/app/pages/" (r.text(0).unwrap_or("")) } { "/s/" (r.text(1).unwrap_or("")) } }
                    td { (r.text(2).unwrap_or("")) }
                    td { @if r.int(3) == Some(1) { "double" } @else { "single" } }
                    td { (r.int(4).unwrap_or(0)) }
                } } }
            } }
        }
    };
    crate::ok_page(view::app_page(&ctx.session, Nav::Pages, "Capture pages", body))
}

/// `GET /app/pages/{id}`: details, versions, preview and embed snippet.
pub async fn show<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    let page = one(ctx, id).await?;
    let fans = ctx.db.query("SELECT n FROM agg_fan_page WHERE artist_id = ?1 AND page_id = ?2", &[Param::Text(&page.id)]).await?;
    let fans = fans.first().and_then(|r| r.int(0)).unwrap_or(0);
    let versions = ctx
        .db
        .query(
            "SELECT version, consent_text, created_at FROM consent_versions WHERE artist_id = ?1 AND page_id = ?2 ORDER BY created_at DESC, version DESC",
            &[Param::Text(&page.id)],
        )
        .await?;
    let base = public_base(ctx.env);
    let address = format!("{base}/s/{}", page.slug);
    // Signup keeps a page for `instance_cache_seconds` (the same setting
    // here, README "Settings and secrets").
    let within = format!("Fans see the change within {} seconds.", shared::cache::instance_ttl_ms(ctx.env) / 1000);
    let notice = match httpx::query_param(&ctx.parts.uri, "did").as_deref() {
        Some("created") => Some("Created. The page is live at its address now.".to_owned()),
        Some("saved") => Some(format!("Saved. {within}")),
        Some("new-version") => Some(format!("Saved, with a new consent version. Fans who agreed to an earlier text keep it on record. {within}")),
        _ => None,
    };
    let body = html! {
        p { a href="/app/pages" { "← All capture pages" } }
        @if let Some(n) = notice { p.ok role="status" { (n) } }
        div.actions {
            h1 { (page.title) }
            a.button href={ "/app/pages/" (page.id) "/edit" } { "Edit" }
        }
        dl {
            dt { "Address" } dd { a href=(address) { (address) } }
            dt { "Fans" } dd { (fans) }
            dt { "Opt-in" } dd { @if page.double_opt_in { "double (fans confirm by email)" } @else { "single" } }
            dt { "Consent version" } dd { (page.consent_version) }
            dt { "After signing up" } dd { @if page.redirect_url.is_empty() { @if page.thanks_text.is_empty() { "the default thank-you page" } @else { "thank-you page: " (page.thanks_text) } } @else { "sent to " (page.redirect_url) } }
            dt { "Artist image" } dd { @if page.look.artist_image_url.is_empty() { "none" } @else { (page.look.artist_image_url) } }
            dt { "Colours" } dd { @if page.look.background.is_empty() && page.look.button.is_empty() { "the page's own, light or dark as the fan's device is set" } @else {
                "background " (or_default(&page.look.background)) ", buttons " (or_default(&page.look.button)) } }
            dt { "Message" } dd { @if page.look.message.is_empty() { "none" } @else { (page.look.message) } }
            dt { "First name" } dd { @if page.look.ask_first_name { "asked (optional for fans)" } @else { "not asked" } }
            dt { "QR code" } dd { a href={ "/s/" (page.slug) "/qr.svg" } download={ (page.slug) "-qr.svg" } { "Download the QR code (SVG)" } }
            dt { "Updated" } dd { (view::datetime(page.updated_at)) }
        }
        h2 { "Consent text fans see" }
        blockquote.card { (page.consent_text) }
        h2 { "Preview" }
        (frame(&format!("/app/pages/{}/preview", page.id)))
        h2 #versions { "Consent versions" }
        p { "Each wording fans have agreed to, newest first. A fan's consent record names the version they saw; the text stays here for them." }
        @if versions.is_empty() { p.muted { "Recorded from the next edit on." } } @else {
            div.table { table.versions {
                thead { tr { th scope="col" { "Version" } th scope="col" { "Since" } th scope="col" { "Text" } } }
                tbody { @for r in &versions { tr {
                    td { (r.text(0).unwrap_or("")) }
                    td { (view::datetime(r.int(2))) }
                    td { (r.text(1).unwrap_or("")) }
                } } }
            } }
        }
        h2 #embed { "Embed the form in your site" }
        p { "Paste this into a page of your own site. It posts to the signup API (" code { "POST /api/v1/signup" } ") with this page's address, so signups count here, with the same checks and the same consent record." }
        p.muted { "It carries today's consent text (" (page.consent_version) "): paste it again after changing the text, so fans see the wording that is recorded." }
        pre.snippet { code { (snippet(&base, ctx.db.artist_id(), &page.slug, &page.consent_text)) } }
    };
    crate::ok_page(view::app_page(&ctx.session, Nav::Pages, &page.title, body))
}

/// Where the public pages live (`public_base_url`), without a final slash;
/// empty (addresses relative to this site) when it is not set.
fn public_base(env: &impl Env) -> String {
    env.var("public_base_url").map(|b| b.trim().trim_end_matches('/').to_owned()).unwrap_or_default()
}

/// The sandboxed frame that shows a preview (see the module's notes).
fn frame(src: &str) -> Markup {
    html! {
        div.preview {
            iframe name=(FRAME) src=(src) sandbox="" title="Preview of the capture page as fans see it" {}
        }
    }
}

/// An HTML form and a small script for the artist's own site, with this
/// page's slug and consent text filled in. Shown as text (escaped again by
/// the template), never run here.
fn snippet(base: &str, artist_id: &str, slug: &str, consent: &str) -> String {
    let consent = shared::html::escape(consent);
    let privacy = httpx::percent_encode(artist_id);
    format!(
        r#"<form id="signup-{slug}">
  <label for="signup-{slug}-email">Email address</label>
  <input id="signup-{slug}-email" name="email" type="email" required autocomplete="email">
  <input name="website" tabindex="-1" autocomplete="off" aria-hidden="true" hidden>
  <label><input name="consent" type="checkbox" required> {consent}</label>
  <button type="submit">Sign up</button>
  <p role="status"></p>
  <p><small>We record your email address (encrypted), the time, this consent and your approximate location.
    <a href="{base}/privacy/{privacy}">Your data and your rights</a></small></p>
</form>
<script>
document.getElementById("signup-{slug}").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const form = event.currentTarget;
  const status = form.querySelector("[role=status]");
  try {{
    const res = await fetch("{base}/api/v1/signup", {{
      method: "POST",
      headers: {{ "content-type": "application/json" }},
      body: JSON.stringify({{
        page: "{slug}",
        email: form.elements.email.value,
        consent: form.elements.consent.checked,
        website: form.elements.website.value,
      }}),
    }});
    const body = await res.json();
    status.textContent = res.ok
      ? (body.status === "pending" ? "Almost done: check your inbox to confirm." : "Thanks, you're on the list!")
      : body.error.message;
  }} catch {{
    status.textContent = "Something went wrong. Please try again.";
  }}
}});
</script>"#
    )
}

// ------------------------------------------------------------------ forms

/// A page's fields as typed, with what is wrong with them.
#[derive(Default)]
struct Draft {
    slug: String,
    title: String,
    consent_text: String,
    double_opt_in: bool,
    thanks_text: String,
    redirect_url: String,
    look: LookFields,
    errors: Vec<(&'static str, String)>,
}

impl Draft {
    fn of(page: &Page) -> Draft {
        Draft {
            slug: page.slug.clone(),
            title: page.title.clone(),
            consent_text: page.consent_text.clone(),
            double_opt_in: page.double_opt_in,
            thanks_text: page.thanks_text.clone(),
            redirect_url: page.redirect_url.clone(),
            look: page.look.clone(),
            errors: Vec::new(),
        }
    }

    /// The form's fields, trimmed, with line breaks as `\n`; `slug` only
    /// when creating (a page keeps its address).
    fn from_form<E: Env>(ctx: &Ctx<'_, E>, slug: Option<&str>) -> Draft {
        let f = |name: &str| ctx.form.get(name).unwrap_or("").replace("\r\n", "\n").trim().to_owned();
        Draft {
            slug: slug.map_or_else(|| f("slug").to_ascii_lowercase(), str::to_owned),
            title: f("title"),
            consent_text: f("consent_text"),
            double_opt_in: ctx.form.get("double_opt_in").is_some_and(|v| !v.is_empty()),
            thanks_text: f("thanks_text"),
            redirect_url: f("redirect_url"),
            look: LookFields {
                artist_image_url: f("artist_image_url"),
                background: f("background").to_ascii_lowercase(),
                button: f("button").to_ascii_lowercase(),
                message: f("message"),
                ask_first_name: ctx.form.get("ask_first_name").is_some_and(|v| !v.is_empty()),
            },
            errors: Vec::new(),
        }
    }

    /// Checks every field, so the artist sees every problem at once. The
    /// redirect comes back normalised (`shared::url::check_https`).
    fn check(&mut self, creating: bool) {
        if creating && self.slug.is_empty() {
            self.errors.push(("slug", "Choose an address for the page, such as tour-news.".into()));
        } else if creating && !shared::capture::valid_slug(&self.slug) {
            self.errors.push(("slug", "Use only lower-case letters a–z, digits and dashes, at most 64 (such as tour-news).".into()));
        }
        let chars = |s: &str| s.chars().count();
        if self.title.is_empty() {
            self.errors.push(("title", "Give the page a title: it is the heading fans see.".into()));
        } else if chars(&self.title) > MAX_TITLE || self.title.chars().any(char::is_control) {
            self.errors.push(("title", format!("Use at most {MAX_TITLE} characters, on one line.")));
        }
        if self.consent_text.is_empty() {
            self.errors.push(("consent_text", "Write what fans agree to by ticking the box, such as \"Email me news about new music\".".into()));
        } else if chars(&self.consent_text) > MAX_CONSENT || has_control(&self.consent_text) {
            self.errors.push(("consent_text", format!("Use at most {MAX_CONSENT} characters.")));
        }
        if chars(&self.thanks_text) > MAX_THANKS || has_control(&self.thanks_text) {
            self.errors.push(("thanks_text", format!("Use at most {MAX_THANKS} characters.")));
        }
        if !self.redirect_url.is_empty() {
            match shared::url::check_https(&self.redirect_url, &[]) {
                Ok(url) => self.redirect_url = url,
                Err(why) => self.errors.push(("redirect_url", format!("This address {why}. Use a full https:// address, such as https://example.com/thanks."))),
            }
        }
        // The look's rules are the public page's (`shared::capture`); what
        // is stored is what was typed, normalised, so a colour left empty
        // stays the page's own.
        match Look::check(self.look.input()) {
            Ok(look) => {
                self.look.artist_image_url = look.artist_image_url.unwrap_or_default();
                self.look.message = look.message.unwrap_or_default();
            }
            Err(errors) => self.errors.extend(errors.iter().map(|e| (e.field.unwrap_or("artist_image_url"), e.public_message().to_owned()))),
        }
    }

    fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }
}

/// Control characters other than line breaks.
fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n')
}

/// The create or edit form, with the preview frame beside it.
fn form_page<E: Env>(ctx: &Ctx<'_, E>, page: Option<&Page>, d: &Draft, status: StatusCode) -> Response {
    let (action, back, heading) = match page {
        Some(p) => (format!("/app/pages/{}/edit", p.id), format!("/app/pages/{}", p.id), format!("Edit {}", p.title)),
        None => ("/app/pages/new".to_owned(), "/app/pages".to_owned(), "New capture page".to_owned()),
    };
    let preview = match page {
        Some(p) => format!("/app/pages/{}/preview", p.id),
        None => "/app/pages/new/preview".to_owned(),
    };
    let field = |name: &'static str, label: &str, hint: &str, input: Markup| {
        let err = d.error(name);
        html! {
            div.field {
                label for=(name) { (label) }
                p.hint id={ "hint-" (name) } { (hint) }
                (input)
                @if let Some(e) = err { p.err id={ "err-" (name) } role="alert" { (e) } }
            }
        }
    };
    let described = |name: &str| match d.error(name) {
        Some(_) => format!("hint-{name} err-{name}"),
        None => format!("hint-{name}"),
    };
    let invalid = |name: &str| d.error(name).map(|_| "true");
    let body = html! {
        p { a href=(back) { "← Back" } }
        h1 { (heading) }
        @if !d.errors.is_empty() { p.err role="alert" { "Nothing was saved: fix the fields marked below." } }
        div.editor {
            form method="post" action=(action) {
                (view::csrf_field(&ctx.session.csrf))
                @if page.is_none() {
                    (field("slug", "Address", "The page's address: /s/ followed by lower-case letters, digits and dashes (at most 64). It cannot be changed later.", html! {
                        input #slug name="slug" value=(d.slug) maxlength="64" required autocomplete="off" spellcheck="false" aria-describedby=(described("slug")) aria-invalid=[invalid("slug")];
                    }))
                }
                (field("title", "Title", &format!("The heading fans see (at most {MAX_TITLE} characters)."), html! {
                    input #title name="title" value=(d.title) maxlength=(MAX_TITLE) required autocomplete="off" aria-describedby=(described("title")) aria-invalid=[invalid("title")];
                }))
                (field("consent_text", "Consent text", &format!("Shown next to the box fans tick (at most {MAX_CONSENT} characters). Changing it starts a new consent version; fans who agreed to the old text keep it on record."), html! {
                    textarea #consent_text name="consent_text" rows="4" maxlength=(MAX_CONSENT) required aria-describedby=(described("consent_text")) aria-invalid=[invalid("consent_text")] { (d.consent_text) }
                }))
                div.field.check {
                    input #double_opt_in type="checkbox" name="double_opt_in" value="1" checked[d.double_opt_in] aria-describedby="hint-double_opt_in";
                    label for="double_opt_in" { "Double opt-in" }
                    p.hint #hint-double_opt_in { "Fans confirm their address by email before they are on your list." }
                }
                (field("thanks_text", "Thank-you text (optional)", &format!("Shown after signing up, unless fans are sent to the address below (at most {MAX_THANKS} characters)."), html! {
                    textarea #thanks_text name="thanks_text" rows="2" maxlength=(MAX_THANKS) aria-describedby=(described("thanks_text")) aria-invalid=[invalid("thanks_text")] { (d.thanks_text) }
                }))
                (field("redirect_url", "Send fans here after signing up (optional)", "A full https:// address on your own site, such as https://example.com/thanks.", html! {
                    input #redirect_url name="redirect_url" type="url" value=(d.redirect_url) maxlength=(shared::url::MAX_URL) autocomplete="off" spellcheck="false" aria-describedby=(described("redirect_url")) aria-invalid=[invalid("redirect_url")];
                }))
                h2 { "Look" }
                (field("artist_image_url", "Artist image (optional)", "A full https:// address of a photo or artwork, shown large and square above the title, and in link previews when the page is shared.", html! {
                    input #artist_image_url name="artist_image_url" type="url" value=(d.look.artist_image_url) maxlength=(shared::url::MAX_URL) autocomplete="off" spellcheck="false" aria-describedby=(described("artist_image_url")) aria-invalid=[invalid("artist_image_url")];
                }))
                (field("background", "Background colour (optional)", "Six hex digits, such as #1e1b4b. Text on it is white or near-black, whichever reads better; a colour neither reads on is refused. Empty: the page's own light and dark looks.", html! {
                    input #background name="background" value=(d.look.background) maxlength="7" placeholder="#1e1b4b" autocomplete="off" spellcheck="false" aria-describedby=(described("background")) aria-invalid=[invalid("background")];
                }))
                (field("button", "Button colour (optional)", "Six hex digits, such as #facc15; it must stand out from the background (3:1).", html! {
                    input #button name="button" value=(d.look.button) maxlength="7" placeholder="#facc15" autocomplete="off" spellcheck="false" aria-describedby=(described("button")) aria-invalid=[invalid("button")];
                }))
                (field("message", "Message to fans (optional)", &format!("A short note shown under the title (at most {} characters, plain text).", shared::capture::MAX_MESSAGE), html! {
                    textarea #message name="message" rows="3" maxlength=(shared::capture::MAX_MESSAGE) aria-describedby=(described("message")) aria-invalid=[invalid("message")] { (d.look.message) }
                }))
                div.field.check {
                    input #ask_first_name type="checkbox" name="ask_first_name" value="1" checked[d.look.ask_first_name] aria-describedby="hint-ask_first_name";
                    label for="ask_first_name" { "Ask for the fan's first name" }
                    p.hint #hint-ask_first_name { "An optional field above the address. Names are stored encrypted, like addresses, and appear in your CSV." }
                }
                div.actions {
                    button type="submit" { @if page.is_some() { "Save" } @else { "Create the page" } }
                    button.secondary type="submit" formaction=(preview) formtarget=(FRAME) formnovalidate { "Preview" }
                }
            }
            section aria-labelledby="preview-h" {
                h2 #preview-h { "Preview" }
                p.hint { "Press Preview to see your changes here before saving. Its form does not sign anyone up." }
                (frame(&preview))
            }
        }
    };
    view::html_response(status, view::app_page(&ctx.session, Nav::Pages, &heading, body))
}

/// `GET /app/pages/new`
pub async fn new_form<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    let d = Draft { consent_text: DEFAULT_CONSENT.to_owned(), ..Draft::default() };
    Ok(form_page(ctx, None, &d, StatusCode::OK))
}

/// `GET /app/pages/{id}/edit`
pub async fn edit_form<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    let page = one(ctx, id).await?;
    Ok(form_page(ctx, Some(&page), &Draft::of(&page), StatusCode::OK))
}

/// Records the page's current text as its current version (written with
/// the hash of `?5`, only while the page still holds `?5`), unless that
/// version is on record; fills a hash the migration could not compute.
/// `?2` page, `?3` hash, `?4` now, `?5` text.
const RECORD_VERSION: &str = "INSERT INTO consent_versions (artist_id, page_id, version, consent_text, consent_sha256, created_at) \
     SELECT artist_id, id, consent_version, consent_text, ?3, ?4 FROM capture_pages WHERE artist_id = ?1 AND id = ?2 AND consent_text = ?5 \
     ON CONFLICT (page_id, version) DO UPDATE SET consent_sha256 = excluded.consent_sha256 \
     WHERE consent_versions.consent_sha256 IS NULL AND consent_versions.consent_text = excluded.consent_text";

/// The page's look, replacing the one it had (`?2` page, then the fields
/// and the time). Written in the same batch as the page.
const SAVE_LOOK: &str = "INSERT INTO capture_page_looks (page_id, artist_id, artist_image_url, background, button, message, ask_first_name, updated_at) \
     SELECT id, artist_id, ?3, ?4, ?5, ?6, ?7, ?8 FROM capture_pages WHERE artist_id = ?1 AND id = ?2 \
     ON CONFLICT (page_id) DO UPDATE SET artist_image_url = excluded.artist_image_url, background = excluded.background, button = excluded.button, \
     message = excluded.message, ask_first_name = excluded.ask_first_name, updated_at = excluded.updated_at";

fn look_params<'a>(page: &'a str, look: &'a LookFields, now: i64) -> [Param<'a>; 7] {
    [
        Param::Text(page),
        or_null(&look.artist_image_url),
        or_null(&look.background),
        or_null(&look.button),
        or_null(&look.message),
        Param::from(look.ask_first_name),
        Param::Int(now),
    ]
}

/// `POST /app/pages/new`
pub async fn create<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    let mut d = Draft::from_form(ctx, None);
    d.check(true);
    if !d.errors.is_empty() {
        return Ok(form_page(ctx, None, &d, StatusCode::UNPROCESSABLE_ENTITY));
    }
    let (id, now) = (shared::env::random_id(ctx.env)?, ctx.env.now_ms());
    let hash = crypto::sha256_hex(d.consent_text.as_bytes());
    let page = [
        Param::Text(&id),
        Param::Text(&d.slug),
        Param::Text(&d.title),
        Param::Text(&d.consent_text),
        Param::from(d.double_opt_in),
        or_null(&d.thanks_text),
        or_null(&d.redirect_url),
        Param::Int(now),
    ];
    let version = [Param::Text(&id), Param::Text(&hash), Param::Int(now), Param::Text(&d.consent_text)];
    let result = ctx
        .db
        .batch(&[
            (
                "INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, thanks_text, redirect_url, created_at, updated_at) \
                 VALUES (?2, ?1, ?3, ?4, ?5, 'v1', ?6, ?7, ?8, ?9, ?9)",
                &page,
            ),
            (RECORD_VERSION, &version),
            (SAVE_LOOK, &look_params(&id, &d.look, now)),
        ])
        .await;
    match result {
        Ok(_) => Ok(view::redirect(&format!("/app/pages/{id}?did=created"))),
        Err(e) => refused_by_database(ctx, None, d, e),
    }
}

/// `POST /app/pages/{id}/edit`
pub async fn update<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    let page = one(ctx, id).await?;
    let mut d = Draft::from_form(ctx, Some(&page.slug));
    d.check(false);
    if !d.errors.is_empty() {
        return Ok(form_page(ctx, Some(&page), &d, StatusCode::UNPROCESSABLE_ENTITY));
    }
    let new_text = d.consent_text != page.consent_text;
    let now = ctx.env.now_ms();
    let (old_hash, new_hash) = (crypto::sha256_hex(page.consent_text.as_bytes()), crypto::sha256_hex(d.consent_text.as_bytes()));
    let old = [Param::Text(&page.id), Param::Text(&old_hash), Param::Int(now), Param::Text(&page.consent_text)];
    let new = [Param::Text(&page.id), Param::Text(&new_hash), Param::Int(now), Param::Text(&d.consent_text)];
    let fields = [
        Param::Text(&page.id),
        Param::Text(&d.title),
        Param::Text(&d.consent_text),
        Param::from(d.double_opt_in),
        or_null(&d.thanks_text),
        or_null(&d.redirect_url),
        Param::Int(now),
    ];
    // The old text on record first (a page made outside the dashboard has
    // no row yet), then the page, then its new text. SET expressions read
    // the row as it was, so the version moves only when the text does.
    let result = ctx
        .db
        .batch(&[
            (RECORD_VERSION, &old),
            (
                "UPDATE capture_pages SET title = ?3, consent_text = ?4, double_opt_in = ?5, thanks_text = ?6, redirect_url = ?7, updated_at = ?8, \
                 consent_version = CASE WHEN consent_text = ?4 THEN consent_version ELSE 'v' || (1 + max( \
                   coalesce((SELECT max(CAST(substr(v.version, 2) AS INTEGER)) FROM consent_versions v \
                     WHERE v.artist_id = ?1 AND v.page_id = ?2 AND v.version GLOB 'v[0-9]*'), 0), \
                   CASE WHEN consent_version GLOB 'v[0-9]*' THEN CAST(substr(consent_version, 2) AS INTEGER) ELSE 0 END)) END \
                 WHERE artist_id = ?1 AND id = ?2",
                &fields,
            ),
            (RECORD_VERSION, &new),
            (SAVE_LOOK, &look_params(&page.id, &d.look, now)),
        ])
        .await;
    match result {
        Ok(_) => Ok(view::redirect(&format!("/app/pages/{}?did={}", page.id, if new_text { "new-version" } else { "saved" }))),
        Err(e) => refused_by_database(ctx, Some(&page), d, e),
    }
}

/// A batch the schema refused: the slug taken by any page (slugs are one
/// namespace, `/s/{slug}`), or a redirect the trigger of
/// `schema/0006_capture_page_checks.sql` refused (a backstop behind
/// `shared::url`). Anything else is the server's fault.
fn refused_by_database<E: Env>(ctx: &Ctx<'_, E>, page: Option<&Page>, mut d: Draft, e: Error) -> Result<Response, Error> {
    let text = e.to_string();
    if page.is_none() && text.contains("UNIQUE") {
        d.errors.push(("slug", format!("The address /s/{} is taken. Choose another one; nothing was saved.", d.slug)));
        return Ok(form_page(ctx, page, &d, StatusCode::CONFLICT));
    }
    if text.contains("redirect_url must be") {
        d.errors.push(("redirect_url", "Use a full https:// address in plain ASCII, such as https://example.com/thanks.".into()));
        return Ok(form_page(ctx, page, &d, StatusCode::UNPROCESSABLE_ENTITY));
    }
    Err(e)
}

/// A colour as shown on the page's details: empty is the page's own.
fn or_default(s: &str) -> &str {
    if s.is_empty() {
        "the page's own"
    } else {
        s
    }
}

fn or_null(s: &str) -> Param<'_> {
    if s.is_empty() {
        Param::Null
    } else {
        Param::Text(s)
    }
}

// ---------------------------------------------------------------- preview

/// `GET` and `POST /app/pages/{id}/preview` (`id` `None`: a new page).
/// GET shows the page as saved (a new page: the form's defaults); POST, the
/// draft the edit form sent, valid or not, without saving anything.
pub async fn preview<E: Env>(ctx: &Ctx<'_, E>, id: Option<&str>) -> Result<Response, Error> {
    let page = match id {
        Some(id) => Some(one(ctx, id).await?),
        None => None,
    };
    let posted = ctx.parts.method == shared::http::Method::POST;
    let d = match (&page, posted) {
        (_, true) => Draft::from_form(ctx, Some("")),
        (Some(p), false) => Draft::of(p),
        (None, false) => Draft { title: "New capture page".to_owned(), consent_text: DEFAULT_CONSENT.to_owned(), ..Draft::default() },
    };
    let clip = |s: &str, max: usize| s.chars().take(max).collect::<String>();
    let (title, consent) = (clip(&d.title, MAX_TITLE), clip(&d.consent_text, MAX_CONSENT));
    let view = shared::capture::View { title: &title, artist_id: ctx.db.artist_id(), artist_name: &ctx.session.artist_name, consent_text: &consent };
    // A draft's look as far as it is valid: what the form refuses is left
    // out, as signup leaves out a stored piece that no longer passes.
    let look = Look::check(d.look.input()).unwrap_or_else(|_| Look::from_stored(d.look.input(), |_| {}));
    let theme = look.theme.as_ref().map(shared::capture::theme_css);
    let hash = theme.as_deref().map(shared::capture::style_hash);
    let html = shared::capture::render_page(&view, &look, theme.as_deref(), None, ctx.env, None, shared::capture::Typed::default());
    let mut res = httpx::respond(StatusCode::OK, httpx::HTML, html);
    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, preview_csp(hash.as_deref()));
    res.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(res)
}

/// The public page's own policy (`shared::capture::csp`), framed by the
/// dashboard only, in a sandbox whose forms go nowhere. `theme_hash`: the
/// look's colour block, as the public page names it.
fn preview_csp(theme_hash: Option<&str>) -> HeaderValue {
    let csp = shared::capture::csp(theme_hash, None)
        .replace("form-action 'self'", "form-action 'none'")
        .replace("frame-ancestors 'none'", "frame-ancestors 'self'; sandbox");
    HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'self'; sandbox"))
}

#[cfg(test)]
mod tests;
