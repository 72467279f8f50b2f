//! Reading capture pages and recording signups.
//!
//! A signup is one atomic batch, one database round trip, of six
//! statements that (1) count the client's and the page's rate-limit
//! windows (a full one fails the batch, see `shared::ratelimit`), (2)
//! insert the fan unless the artist already has this address, (3) append a
//! consent event for a new fan or for an existing one whose state changes,
//! (4) apply that change, (5) queue `fan.subscribed` for the artist's
//! webhook endpoints if (3) recorded something, and (6) reserve a
//! confirmation mail if the fan ends up pending; a signup that gives a
//! first name has a seventh, before (5), storing it encrypted. The unique (artist_id, email_hash) constraint makes
//! concurrent duplicates collapse into one row, and an unchanged re-signup
//! writes nothing but its counters.

use std::rc::Rc;
use std::sync::OnceLock;

use shared::cache::TtlCache;
use shared::capture::{Look, LookInput};
use shared::crypto::{self, Keys};
use shared::email::Email;
use shared::ratelimit::{self, Window};
use shared::sql::{Param, Stmt};
use shared::{Db, Env, Error, ErrorKind};

pub struct Page {
    pub id: String,
    pub slug: String,
    pub artist_id: String,
    pub artist_name: String,
    pub title: String,
    pub consent_text: String,
    pub consent_version: String,
    /// SHA-256 of `consent_text`, the evidence kept with each consent event.
    pub consent_hash: String,
    pub double_opt_in: bool,
    pub thanks_text: Option<String>,
    pub redirect_url: Option<String>,
    /// The artist's image, colours and message (schema/0016).
    pub look: Look,
    /// The look's colours as a stylesheet, and the page's whole
    /// Content-Security-Policy naming its hash: built once per cached
    /// page, not per request.
    pub theme_css: Option<String>,
    pub csp: Option<shared::http::HeaderValue>,
    /// The page as a GET shows it, rendered by the first GET that needs
    /// it: every visitor gets the same bytes, and the settings it reads
    /// (`public_base_url`, `min_age`) are fixed for an instance's life, so
    /// a busy page is rendered once per cache period, not per request.
    pub html: std::cell::OnceCell<String>,
}

/// Fan status after a signup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Subscribed,
    /// Waiting for the fan to confirm (double opt-in).
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Subscribed => "subscribed",
            Status::Pending => "pending",
        }
    }
}

/// Slugs that cannot name a page are a 404 without a query (the rule is
/// shared with the dashboard, which creates pages).
pub use shared::capture::valid_slug;

/// How long a capture page is kept in the instance, unless the
/// `instance_cache_seconds` setting says otherwise
/// (`shared::cache::instance_ttl_ms`). A Workers isolate serves many
/// requests and the CDN does not cache a Worker's answers by itself, so
/// this is what keeps a busy page (and its signups) off the database; an
/// edit shows within this time. Spin starts a fresh instance per request:
/// there the cache is always empty.
pub const PAGE_CACHE_TTL_MS: i64 = shared::cache::DEFAULT_INSTANCE_SECONDS * 1000;

thread_local! {
    static PAGES: TtlCache<Option<Rc<Page>>> = const { TtlCache::new(PAGE_CACHE_TTL_MS, 64) };
}

/// The page behind `slug` (hits and misses cached, see [`PAGE_CACHE_TTL_MS`]).
pub async fn find_page(env: &impl Env, slug: &str) -> Result<Option<Rc<Page>>, Error> {
    if !valid_slug(slug) {
        return Ok(None);
    }
    let now = env.now_ms();
    let ttl = shared::cache::instance_ttl_ms(env);
    if let Some(hit) = PAGES.with(|c| {
        c.set_ttl_ms(ttl);
        c.get(slug, now)
    }) {
        return Ok(hit);
    }
    let page = read_page(env, slug).await?.map(Rc::new);
    PAGES.with(|c| c.insert(slug, page.clone(), now));
    Ok(page)
}

/// Forgets cached pages (tests that edit a page mid-test).
#[cfg(test)]
pub fn forget_pages() {
    PAGES.with(|c| c.clear());
}

async fn read_page(env: &impl Env, slug: &str) -> Result<Option<Page>, Error> {
    let rows = env
        .db()
        .query(
            "SELECT p.id, p.artist_id, a.name, p.title, p.consent_text, p.consent_version, \
             p.double_opt_in, p.thanks_text, p.redirect_url, \
             l.artist_image_url, l.background, l.button, l.message, l.ask_first_name \
             FROM capture_pages p JOIN artists a ON a.id = p.artist_id \
             LEFT JOIN capture_page_looks l ON l.page_id = p.id AND l.artist_id = p.artist_id WHERE p.slug = ?1",
            &[Param::Text(slug)],
        )
        .await?;
    let Some(mut r) = rows.into_iter().next() else { return Ok(None) };
    let mut text = |i| r.take_text(i).ok_or_else(|| Error::internal(format_args!("capture_pages column {i} is not text")));
    let (id, artist_id, artist_name, title, consent_text, consent_version) = (text(0)?, text(1)?, text(2)?, text(3)?, text(4)?, text(5)?);
    let stored = |i| r.text(i).unwrap_or("");
    let look = Look::from_stored(
        LookInput { artist_image_url: stored(9), background: stored(10), button: stored(11), message: stored(12), ask_first_name: r.int(13).unwrap_or(0) != 0 },
        |m| env.log_error(&format!("signup: page {slug}: {m}")),
    );
    let theme_css = look.theme.as_ref().map(shared::capture::theme_css);
    let mut page = Page {
        id,
        slug: slug.to_owned(),
        artist_id,
        artist_name,
        title,
        consent_hash: crypto::sha256_hex(consent_text.as_bytes()),
        consent_text,
        consent_version,
        double_opt_in: r.int(6).unwrap_or(0) != 0,
        thanks_text: r.take_text(7).filter(|s| !s.is_empty()),
        // Checked again on every read: a value that slipped past the
        // database's triggers is ignored (the thank-you page is shown).
        redirect_url: r.take_text(8).filter(|s| !s.is_empty()).and_then(|u| match shared::url::check_https(&u, &[]) {
            Ok(u) => Some(u),
            Err(e) => {
                env.log_error(&format!("signup: page {slug}: redirect_url {e}; showing the thank-you page instead"));
                None
            }
        }),
        look,
        theme_css,
        csp: None,
        html: std::cell::OnceCell::new(),
    };
    let theme_hash = page.theme_css.as_deref().map(shared::capture::style_hash);
    // Built from validated hex colours, a hash and a checked origin only,
    // so always a valid header value.
    page.csp = shared::http::HeaderValue::from_str(&shared::capture::csp(theme_hash.as_deref(), page.redirect_url.as_deref().map(shared::url::origin))).ok();
    Ok(Some(page))
}

/// A first name for the fan with this address (just inserted or already
/// there), replacing any earlier one.
const UPSERT_NAME: &str = "INSERT INTO fan_names (fan_id, artist_id, name_enc, updated_at) \
     SELECT id, artist_id, ?3, ?4 FROM fans WHERE artist_id = ?1 AND email_hash = ?2 \
     ON CONFLICT (fan_id) DO UPDATE SET name_enc = excluded.name_enc, updated_at = excluded.updated_at";

const INSERT_FAN: &str = "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, country, region, city, eu, \
     source_page_id, consent_version, created_at, subscribed_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, CASE WHEN ?5 = 'subscribed' THEN ?12 END, ?12) \
     ON CONFLICT (artist_id, email_hash) DO NOTHING";

// For an existing fan: a subscribed fan stays subscribed (a double opt-in
// page never demotes them to pending); one who unsubscribed, bounced or
// complained comes back only through double opt-in, whatever the page
// (anyone can type an address into a single opt-in form); anyone else
// takes the page's status. Something "changed" when that status or the
// consent version differs from what is stored.
const NEXT_STATUS: &str = "CASE WHEN status = 'subscribed' THEN 'subscribed' \
     WHEN status IN ('unsubscribed', 'bounced', 'complained') THEN 'pending' ELSE ?5 END";

/// The consent event: for the fan this signup inserted (`id = ?10`; for
/// it `NEXT_STATUS` is its own status, so kind and method come out as the
/// page gives them), or for an existing fan whose status or consent
/// version changes. The address is unique per artist, so at most one row
/// matches. Runs before `update_existing`, which it reads the old state of.
fn event_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) \
             SELECT ?1, id, artist_id, CASE WHEN {NEXT_STATUS} = 'subscribed' THEN 'subscribe' ELSE 'request' END, ?2, ?3, ?4, \
             CASE WHEN {NEXT_STATUS} = 'pending' THEN 'double' ELSE ?6 END, ?7 \
             FROM fans WHERE artist_id = ?8 AND email_hash = ?9 \
             AND (id = ?10 OR {NEXT_STATUS} <> status OR consent_version <> ?3)"
        )
    })
}

fn update_existing() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "UPDATE fans SET \
         subscribed_at = CASE WHEN status <> 'subscribed' AND {NEXT_STATUS} = 'subscribed' THEN ?7 ELSE subscribed_at END, \
         status = {NEXT_STATUS}, consent_version = ?3, source_page_id = ?2, \
         country = ?11, region = ?12, city = ?13, eu = ?14, updated_at = ?7 \
         WHERE artist_id = ?8 AND email_hash = ?9 AND id <> ?10 \
         AND ({NEXT_STATUS} <> status OR consent_version <> ?3)"
        )
    })
}

/// What a recorded signup asks of the caller.
pub struct Recorded {
    pub status: Status,
    /// The fan to send a confirmation mail to: a send slot was reserved.
    pub confirm: Option<String>,
    pub at_ms: i64,
}

/// Records the signup; see the module doc for the shape of the batch.
/// `limits` (client, page) are counted in the batch; a refusal by either
/// rolls back both, so a refused client never spends the page's budget.
pub async fn record_signup(env: &impl Env, page: &Page, email: &Email, first_name: Option<&str>, keys: &Keys, limits: [&Window; 2]) -> Result<Recorded, Error> {
    let now = env.now_ms();
    let status = if page.double_opt_in { Status::Pending } else { Status::Subscribed };
    let method = if page.double_opt_in { "double" } else { "single" };
    let hash = keys.blind_index(&page.artist_id, &email.index_key());
    let fan_id = random_id(env)?;
    let enc = keys.encrypt(email.as_str().as_bytes(), crypto::fan_email_context(&page.artist_id, &fan_id).as_bytes())?;
    let place = env.place();
    let eu = place.is_eu();
    let event_id = random_id(env)?;
    let (country, region, city) = (place.country.as_deref(), place.region.as_deref(), place.city.as_deref());

    let insert = [
        Param::Text(&fan_id),
        Param::Text(&page.artist_id),
        Param::Text(&enc),
        Param::Text(&hash),
        Param::Text(status.as_str()),
        country.into(),
        region.into(),
        city.into(),
        eu.into(),
        Param::Text(&page.id),
        Param::Text(&page.consent_version),
        Param::Int(now),
    ];
    let existing = [
        Param::Text(&event_id),
        Param::Text(&page.id),
        Param::Text(&page.consent_version),
        Param::Text(&page.consent_hash),
        Param::Text(status.as_str()),
        Param::Text(method),
        Param::Int(now),
        Param::Text(&page.artist_id),
        Param::Text(&hash),
        Param::Text(&fan_id),
        country.into(),
        region.into(),
        city.into(),
        eu.into(),
    ];
    let reserve = [Param::Text(&page.artist_id), Param::Text(&hash), Param::Int(now)];
    let hook = [Param::Text(&page.artist_id), Param::Text(&event_id), Param::Int(now)];
    let windows = Window::params_pair(limits[0], limits[1]);
    let name_enc = match first_name {
        Some(name) => Some(keys.encrypt(name.as_bytes(), shared::capture::fan_name_context(&page.artist_id, &hash).as_bytes())?),
        None => None,
    };
    let name = name_enc.as_deref().map(|enc| [Param::Text(&page.artist_id), Param::Text(&hash), Param::Text(enc), Param::Int(now)]);
    let mut stmts = Vec::with_capacity(7);
    stmts.extend([
        Window::stmt_pair(&windows),
        Stmt::new(INSERT_FAN, &insert),
        Stmt::new(event_sql(), &existing[..10]),
        Stmt::new(update_existing(), &existing),
    ]);
    // Only when a name is given: signups without one keep their six statements.
    if let Some(name) = &name {
        stmts.push(Stmt::new(UPSERT_NAME, name));
    }
    // These two last: their results are read from the end below.
    stmts.extend([Stmt::new(shared::outbox::FAN_EVENT, &hook), Stmt::new(crate::confirm::RESERVE, &reserve)]);
    let result = env.db().batch(&stmts).await;
    let mut results = match result {
        Ok(r) => r,
        Err(e) if ratelimit::is_refusal(&e) => return Err(ratelimit::refusal(env, &limits).await),
        // The page was read (or cached, up to PAGE_CACHE_TTL_MS) before its
        // workspace was deleted; schema/0013's trigger refused the batch.
        Err(e) if e.message.contains(WORKSPACE_DELETED) => return Err(Error::new(ErrorKind::NotFound, "This page no longer takes signups.")),
        Err(e) => return Err(e),
    };
    ratelimit::sweep(env);
    let confirm = results.pop().and_then(|rows| rows.into_iter().next()).and_then(|mut r| r.take_text(0));
    shared::outbox::deliver_later(env, shared::outbox::queued(results.pop().unwrap_or_default()));
    Ok(Recorded { status, confirm, at_ms: now })
}

/// What the `fans_of_deleted_workspace` trigger (schema/0013) says when it
/// refuses a signup batch.
const WORKSPACE_DELETED: &str = "workspace deleted";

pub use shared::env::random_id;

#[cfg(test)]
mod deleted_workspace_tests {
    use shared::adapters::native::{block_on, NativeEnv};
    use shared::http::{Method, Request};

    fn signup(env: &NativeEnv, email: &str) -> (u16, String) {
        let body = format!(r#"{{"page":"tour","email":"{email}","consent":true}}"#);
        let req = Request::builder().method(Method::POST).uri("/api/v1/signup").header("content-type", "application/json").body(body.into_bytes()).unwrap();
        let res = block_on(crate::handle(req, env));
        (res.status().as_u16(), String::from_utf8_lossy(res.body()).into_owned())
    }

    fn count(env: &NativeEnv, sql: &str) -> i64 {
        env.db.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// A page cached before its workspace was deleted still shows its
    /// form for up to 30 s on Workers; a signup through it must not create
    /// or change a fan, nor count against any limit.
    #[test]
    fn a_cached_page_of_a_deleted_workspace_takes_no_signup() {
        let mut env = NativeEnv::memory().unwrap();
        env.set_var("data_keys", "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").set_var("index_key", "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=");
        env.client.ip = Some("203.0.113.9".parse().unwrap());
        env.db
            .conn()
            .execute_batch(
                "INSERT INTO artists VALUES ('a1', 'Nova', 0);
                 INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
                   VALUES ('p1', 'a1', 'tour', 'Tour news', 'Send me tour news.', 'v1', 0, 0, 0);",
            )
            .unwrap();
        super::forget_pages();
        assert_eq!(signup(&env, "before@example.com").0, 200, "the page is now cached");
        let windows = count(&env, "SELECT coalesce(sum(count), 0) FROM rate_windows");
        // What the dashboard's deletion does to the page, and its record.
        env.db
            .conn()
            .execute_batch(
                "INSERT INTO workspace_deletions (artist_id, requested_at, by_user, purge_after) VALUES ('a1', 0, 'u1', 1);
                 DELETE FROM capture_pages WHERE artist_id = 'a1';",
            )
            .unwrap();
        for email in ["after@example.com", "before@example.com"] {
            let (status, body) = signup(&env, email);
            assert_eq!(status, 404, "{email}: {body}");
            assert!(body.contains("no longer takes signups"), "{body}");
        }
        assert_eq!(count(&env, "SELECT count(*) FROM fans"), 1, "no fan created");
        assert_eq!(count(&env, "SELECT count(*) FROM consent_events"), 1, "no consent recorded");
        assert_eq!(count(&env, "SELECT coalesce(sum(count), 0) FROM rate_windows"), windows, "the refused batch counted nothing");
        // Once the cache forgets the page, the page itself is gone.
        super::forget_pages();
        assert_eq!(signup(&env, "later@example.com").0, 404);
    }
}
