//! Where links live and how they are read: an in-isolate cache (≤ 30 s),
//! then KV (`link:{slug}`, written through on every change), then the
//! database, which is the source of truth and refills KV on a miss. Also
//! the click counters and the API's queries.
//!
//! Staleness: KV is eventually consistent (~60 s between locations) and
//! the cache adds at most [`CACHE_TTL_MS`], so a change reaches every fan
//! within about a minute and a half. KV entries expire (after
//! [`KV_TTL_SECS`], or [`REFILL_TTL_SECS`] when refilled from the
//! database), which bounds how long a failed write-through or a refill
//! racing an update can leave an old definition in KV.

use std::cell::RefCell;
use std::rc::Rc;

use shared::auth::Tenant;
use shared::cache::TtlCache;
use shared::sql::{OwnedParam, OwnedStmt, Param, Stmt};
use shared::{Db, Env, Error, Kv, Row};

use crate::link::{Country, Definition, Link};
use crate::visit::Visit;

/// Both hits and misses are cached: an unknown slug must not cost a
/// database read per request.
pub type Cache = TtlCache<Option<Rc<Link>>>;

/// The default of the `instance_cache_seconds` setting
/// (`shared::cache::instance_ttl_ms`), which [`crate::handle`] applies.
pub const CACHE_TTL_MS: i64 = shared::cache::DEFAULT_INSTANCE_SECONDS * 1000;
pub const CACHE_CAPACITY: usize = 256;
pub const KV_TTL_SECS: u32 = 3600;
/// Shorter for refills: a refill that read the database just before an
/// update can land after that update's write-through, and this bounds how
/// long the older definition then stays in KV.
pub const REFILL_TTL_SECS: u32 = 300;

pub fn kv_key(slug: &str) -> String {
    let mut k = String::with_capacity(5 + slug.len());
    k.push_str("link:");
    k.push_str(slug);
    k
}

/// The link behind `slug`, or `None`, as of `now` (the cache's clock). The
/// slug must already be valid.
pub async fn resolve(env: &impl Env, cache: &Cache, slug: &str, now: i64) -> Result<Option<Rc<Link>>, Error> {
    if let Some(hit) = cache.get(slug, now) {
        return Ok(hit);
    }
    let link = match from_kv(env, slug).await {
        Some(link) => Some(link),
        None => from_db(env, slug).await?,
    };
    let link = link.map(Rc::new);
    cache.insert(slug, link.clone(), now);
    Ok(link)
}

/// A KV failure or a damaged entry is logged and read as a miss: the
/// database can still answer.
async fn from_kv(env: &impl Env, slug: &str) -> Option<Link> {
    match env.kv().get(&kv_key(slug)).await {
        Ok(Some(bytes)) => Link::from_cached(&bytes).map_err(|e| env.log_error(&format!("links: KV entry for {slug}: {e}"))).ok(),
        Ok(None) => None,
        Err(e) => {
            env.log_error(&format!("links: KV read: {e}"));
            None
        }
    }
}

async fn from_db(env: &impl Env, slug: &str) -> Result<Option<Link>, Error> {
    let rows = env.db().query("SELECT id, artist_id, definition FROM links WHERE slug = ?1", &[Param::Text(slug)]).await?;
    let Some(row) = rows.first() else { return Ok(None) };
    let (Some(id), Some(artist_id), Some(def)) = (row.text(0), row.text(1), row.text(2)) else {
        return Err(Error::internal("links row has NULLs"));
    };
    let cached = Link::cached_json(id, artist_id, def);
    let link = Link::from_cached(cached.as_bytes())?;
    if let Err(e) = env.kv().put(&kv_key(slug), cached.as_bytes(), Some(REFILL_TTL_SECS)).await {
        // Two isolates refilling the same key in the same second hit KV's
        // one-write-per-second limit; the other write carries the same bytes.
        env.log_error(&format!("links: KV refill: {e}"));
    }
    Ok(Some(link))
}

/// Write-through attempts after a change; Workers KV takes one write per
/// second per key, so two quick edits collide.
const WRITE_ATTEMPTS: u32 = 4;
const RETRY_AFTER_MS: u32 = 1100;

/// After a change: KV gets the new definition and this isolate forgets
/// what it cached; other isolates catch up within the cache TTL. A refused
/// write (two edits within a second) is retried after a second with the
/// definition read again from the database, so whichever write lands last
/// carries the latest edit, not the one that happened to retry. Only if
/// every attempt fails does the old entry stay, until its TTL.
async fn write_through(env: &impl Env, cache: &Cache, slug: &str, cached: &str) {
    let mut value = cached.to_owned();
    for attempt in 1..=WRITE_ATTEMPTS {
        match env.kv().put(&kv_key(slug), value.as_bytes(), Some(KV_TTL_SECS)).await {
            Ok(()) => break,
            Err(e) if attempt == WRITE_ATTEMPTS => {
                env.log_error(&format!("links: KV write-through failed {attempt} times, old entry stays up to {KV_TTL_SECS} s: {e}"));
            }
            Err(_) => {
                env.sleep_ms(RETRY_AFTER_MS).await;
                match latest(env, slug).await {
                    Ok(Some(v)) => value = v,
                    Ok(None) => break,
                    Err(e) => env.log_error(&format!("links: re-reading {slug} for KV: {e}")),
                }
            }
        }
    }
    cache.remove(slug);
}

/// The definition as KV keeps it, fresh from the database.
async fn latest(env: &impl Env, slug: &str) -> Result<Option<String>, Error> {
    let rows = env.db().query("SELECT id, artist_id, definition FROM links WHERE slug = ?1", &[Param::Text(slug)]).await?;
    Ok(rows.first().and_then(|r| Some(Link::cached_json(r.text(0)?, r.text(1)?, r.text(2)?))))
}

const COUNT_INSERT: &str = "INSERT INTO link_stats (link_id, artist_id, day, kind, platform, country, referrer, device, count) VALUES ";
const COUNT_ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
const COUNT_UPSERT: &str = " ON CONFLICT (link_id, day, kind, platform, country, referrer, device) DO UPDATE SET count = count + excluded.count";
/// D1 binds at most 100 parameters per statement: 11 rows of 9.
pub const ROWS_PER_STATEMENT: usize = 11;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    View,
    Click,
}

/// One counter row's dimensions: nothing else about the visit is kept.
struct Key {
    link_id: String,
    artist_id: String,
    /// Days since the epoch (UTC), formatted when written.
    day: i64,
    kind: &'static str,
    platform: &'static str,
    country: String,
    referrer: String,
    device: &'static str,
}

/// Increments not yet written, and whether a write task is running.
#[derive(Default)]
struct Pending {
    rows: Vec<(Key, i64)>,
    flushing: bool,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::default();
}

/// A write task hands over after this many batches, so none outlives the
/// platform's limit for work after a response under endless traffic.
pub const MAX_BATCHES: u32 = 64;

/// Adds one to the counter for this visit; the database write happens
/// after the response. On Workers one isolate serves many requests:
/// increments that arrive while a write is under way leave together in the
/// next batch, so a busy link costs a few writes a second, not one per
/// click. Every increment is covered by a running write task, so none
/// waits for a later request to be written.
pub fn count(env: &impl Env, link: &Link, event: Event, platform: &'static str, visit: &Visit) {
    let day = visit.at_ms.div_euclid(DAY_MS);
    let kind = match event {
        Event::View => "view",
        Event::Click => "click",
    };
    let device = visit.device.key();
    if visit.located {
        let country = visit.country.as_ref().map_or("", |c| c.as_str());
        PENDING.with(|p| add(&mut p.borrow_mut(), &link.id, &link.artist_id, day, kind, platform, country, &visit.referrer, device));
    } else {
        // Looked up after the response (Spin: the geo file's reads cost
        // more than the rest of the redirect); the write task below runs
        // after that.
        let (id, artist, referrer) = (link.id.clone(), link.artist_id.clone(), visit.referrer.clone());
        env.country_later(move |c| {
            let country = c.as_deref().and_then(Country::parse);
            let country = country.as_ref().map_or("", |c| c.as_str());
            PENDING.with(|p| add(&mut p.borrow_mut(), &id, &artist, day, kind, platform, country, &referrer, device));
        });
    }
    let start = PENDING.with(|p| !std::mem::replace(&mut p.borrow_mut().flushing, true));
    if start {
        let mut batches = 0;
        env.defer_writes(move || next_batch(&mut batches));
    }
}

/// One increment. Compared field by field: a repeat visit (the common case
/// on a busy link) allocates nothing.
#[allow(clippy::too_many_arguments)]
fn add(
    p: &mut Pending,
    link_id: &str,
    artist_id: &str,
    day: i64,
    kind: &'static str,
    platform: &'static str,
    country: &str,
    referrer: &str,
    device: &'static str,
) {
    let same = |k: &Key| {
        k.day == day && k.kind == kind && k.platform == platform && k.device == device && k.country == country && k.referrer == referrer && k.link_id == link_id
    };
    match p.rows.iter_mut().find(|(k, _)| same(k)) {
        Some((_, n)) => *n += 1,
        None => {
            let key = Key {
                link_id: link_id.to_owned(),
                artist_id: artist_id.to_owned(),
                day,
                kind,
                platform,
                country: country.to_owned(),
                referrer: referrer.to_owned(),
                device,
            };
            p.rows.push((key, 1));
        }
    }
}

/// Everything pending, as multi-row upserts; none when there is nothing
/// left (the task then ends, and the next increment starts a new one).
fn next_batch(batches: &mut u32) -> Vec<OwnedStmt> {
    if *batches >= MAX_BATCHES {
        return Vec::new();
    }
    *batches += 1;
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let rows = std::mem::take(&mut p.rows);
        if rows.is_empty() || *batches == MAX_BATCHES {
            p.flushing = false;
        }
        let text = OwnedParam::Text;
        let mut out: Vec<OwnedStmt> = Vec::new();
        for (i, (k, n)) in rows.into_iter().enumerate() {
            if i % ROWS_PER_STATEMENT == 0 {
                out.push(OwnedStmt { sql: COUNT_INSERT.into(), params: Vec::with_capacity(9 * ROWS_PER_STATEMENT) });
            }
            let Some(stmt) = out.last_mut() else { break };
            let sql = stmt.sql.to_mut();
            if i % ROWS_PER_STATEMENT > 0 {
                sql.push_str(", ");
            }
            sql.push_str(COUNT_ROW);
            stmt.params.extend([
                text(k.link_id),
                text(k.artist_id),
                text(utc_day(k.day * DAY_MS)),
                text(k.kind.to_owned()),
                text(k.platform.to_owned()),
                text(k.country),
                text(k.referrer),
                text(k.device.to_owned()),
                OwnedParam::Int(n),
            ]);
        }
        for stmt in &mut out {
            stmt.sql.to_mut().push_str(COUNT_UPSERT);
        }
        out
    })
}

const DAY_MS: i64 = 86_400_000;

/// `YYYY-MM-DD` (UTC) of a time in ms since the epoch.
pub fn utc_day(ms: i64) -> String {
    shared::date::ymd(ms)
}

// ---- The API's queries. Every one is scoped by the authenticated artist.

/// The account an API token belongs to.
pub struct Artist {
    pub id: String,
    pub name: String,
}

/// The artist a (hashed) API token belongs to, unless revoked.
pub async fn artist_for_token(env: &impl Env, token_hash: &str) -> Result<Option<Artist>, Error> {
    let rows = env
        .db()
        .query(
            "SELECT t.artist_id, a.name, t.id FROM api_tokens t JOIN artists a ON a.id = t.artist_id \
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL",
            &[Param::Text(token_hash)],
        )
        .await?;
    let Some(row) = rows.first() else { return Ok(None) };
    // "Last used" in the dashboard; minute resolution spares a write per
    // call. `query`, not `execute`: this crate uses no other `execute`, and
    // D1's needs ~12 KB (gzip) more wasm on the hottest function.
    env.db()
        .query(
            "INSERT INTO api_token_use (token_id, last_used_at) VALUES (?1, ?2) \
             ON CONFLICT (token_id) DO UPDATE SET last_used_at = excluded.last_used_at WHERE excluded.last_used_at >= api_token_use.last_used_at + 60000",
            &[Param::Text(row.text(2).unwrap_or("")), Param::Int(env.now_ms())],
        )
        .await?;
    Ok(row.text(0).map(|id| Artist { id: id.to_owned(), name: row.text(1).unwrap_or("").to_owned() }))
}

/// A link as the API shows it.
pub struct Stored {
    pub slug: String,
    pub definition: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// From `slug, definition, created_at, updated_at` starting at column `first`.
fn stored(row: &Row, first: usize) -> Result<Stored, Error> {
    let text = |i| row.text(i).map(str::to_owned).ok_or_else(|| Error::internal("links row: slug or definition is not text"));
    Ok(Stored { slug: text(first)?, definition: text(first + 1)?, created_at: row.int(first + 2).unwrap_or(0), updated_at: row.int(first + 3).unwrap_or(0) })
}

const CREATE: &str = "INSERT INTO links (id, artist_id, slug, definition, created_at, updated_at) \
     VALUES (lower(hex(randomblob(16))), ?1, ?2, ?3, ?4, ?4) ON CONFLICT (slug) DO NOTHING RETURNING id AS link_id, created_at AS link_created";
const REPLACE: &str =
    "UPDATE links SET definition = ?3, updated_at = ?4 WHERE artist_id = ?1 AND slug = ?2 RETURNING id AS link_id, created_at AS link_created";

/// Where a save's statements run: `?1` is bound to the artist, the other
/// parameters from `?2` on. The dashboard saves through its session's
/// [`Tenant`] (its one way to the database), the API through [`ByToken`]:
/// the same statements either way.
#[allow(async_fn_in_trait)]
pub trait Scope {
    fn artist_id(&self) -> &str;
    /// One atomic batch; each statement's rows, as [`Db::batch`] returns them.
    async fn batch(&self, stmts: &[(&str, &[Param<'_>])]) -> Result<Vec<Vec<Row>>, Error>;
}

impl<E: Env> Scope for Tenant<'_, E> {
    fn artist_id(&self) -> &str {
        Tenant::artist_id(self)
    }
    async fn batch(&self, stmts: &[(&str, &[Param<'_>])]) -> Result<Vec<Vec<Row>>, Error> {
        Tenant::batch(self, stmts).await
    }
}

/// The artist an API token named.
pub struct ByToken<'a, E: Env> {
    pub env: &'a E,
    pub artist: &'a Artist,
}

impl<E: Env> Scope for ByToken<'_, E> {
    fn artist_id(&self) -> &str {
        &self.artist.id
    }
    async fn batch(&self, stmts: &[(&str, &[Param<'_>])]) -> Result<Vec<Vec<Row>>, Error> {
        let bound: Vec<Vec<Param<'_>>> = stmts.iter().map(|(_, p)| [&[Param::Text(&self.artist.id)], *p].concat()).collect();
        let list: Vec<Stmt<'_>> = stmts.iter().zip(&bound).map(|((sql, _), p)| Stmt::new(sql, p)).collect();
        self.env.db().batch(&list).await
    }
}

/// Creates the link (`create`) or replaces the artist's own. `None` when
/// creating a slug anyone already has, or replacing one the artist doesn't
/// have (another artist's link looks the same). The database draws the id.
pub async fn save(scope: &impl Scope, env: &impl Env, cache: &Cache, def: &Definition, create: bool) -> Result<Option<Stored>, Error> {
    let now = env.now_ms();
    let definition = def.to_json();
    let params = [Param::Text(&def.slug), Param::Text(&definition), Param::Int(now)];
    let change_id = shared::env::random_id(env)?;
    let kind = if create { "link.created" } else { "link.updated" };
    let hook = [Param::Text(&change_id), Param::Text(&def.slug), Param::Text(kind), Param::Int(now)];
    // The save and its webhook event in one batch: neither without the
    // other. The event's first attempt is the jobs function's next run (a
    // minute at most), not this function's: sending costs the redirect's
    // .wasm ~45 KB gzip (AES-GCM for the endpoint's secret, HTTP client),
    // over its 120 KiB budget (README "Webhooks").
    let mut results = scope.batch(&[(if create { CREATE } else { REPLACE }, &params), (shared::outbox::LINK_EVENT, &hook)]).await?;
    results.pop();
    let rows = results.pop().unwrap_or_default();
    let Some(row) = rows.first() else { return Ok(None) };
    let id = row.text(0).ok_or_else(|| Error::internal("links.id is not text"))?;
    write_through(env, cache, &def.slug, &Link::cached_json(id, scope.artist_id(), &definition)).await;
    Ok(Some(Stored { slug: def.slug.clone(), definition, created_at: row.int(1).unwrap_or(now), updated_at: now }))
}

pub async fn get(env: &impl Env, artist_id: &str, slug: &str) -> Result<Option<Stored>, Error> {
    let rows = env
        .db()
        .query("SELECT slug, definition, created_at, updated_at FROM links WHERE slug = ?1 AND artist_id = ?2", &[Param::Text(slug), Param::Text(artist_id)])
        .await?;
    rows.first().map(|r| stored(r, 0)).transpose()
}

/// One page of the artist's links in slug order, after `after`.
pub async fn list(env: &impl Env, artist_id: &str, after: &str, limit: i64) -> Result<Vec<Stored>, Error> {
    let rows = env
        .db()
        .query(
            "SELECT slug, definition, created_at, updated_at FROM links WHERE artist_id = ?1 AND slug > ?2 ORDER BY slug LIMIT ?3",
            &[Param::Text(artist_id), Param::Text(after), Param::Int(limit)],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(stored(r, 0)?);
    }
    Ok(out)
}
