//! The overview (`/app/overview`): fans by status, signups and
//! unsubscribes per day, where fans are, signups per capture page, and
//! link clicks per day and by platform, for 30, 90 or 365 days.
//!
//! It reads only the aggregate tables of schema/0014 (kept equal to a full
//! recount by triggers) plus the artist's page titles, all in one batch,
//! so its cost follows the number of days, places and pages, never the
//! number of fans or clicks. The "world view" is the full country list as
//! ranked bars: a map would add tens of KB of outlines to the .wasm.

use maud::{html, Markup};
use shared::http::StatusCode;
use shared::sql::{Param, Row};
use shared::{httpx, Env, Error, ErrorKind, Response};

use crate::chart::{self, Series};
use crate::view::{self, Nav};
use crate::Ctx;

/// In the order a fan moves through them; classes colour the status bar.
const STATUSES: [(&str, &str); 5] =
    [("subscribed", "st-sub"), ("pending", "st-pend"), ("unsubscribed", "st-unsub"), ("bounced", "st-bounce"), ("complained", "st-compl")];

/// Pages listed at most (an artist with more sees the busiest).
const MAX_PAGES: i64 = 100;

/// A period of whole UTC days ending today (today counts so far).
pub(crate) struct Period {
    pub(crate) days: Vec<String>,
}

impl Period {
    /// `n` days up to and including the day of `now_ms`.
    pub(crate) fn last(now_ms: i64, n: i64) -> Period {
        let today = now_ms.div_euclid(shared::date::DAY_MS);
        Period::between(today - n + 1, today)
    }

    /// Days since the epoch, both ends included.
    pub(crate) fn between(first: i64, last: i64) -> Period {
        Period { days: (first..=last).map(|d| shared::date::ymd(d * shared::date::DAY_MS)).collect() }
    }

    pub(crate) fn first(&self) -> &str {
        self.days.first().map_or("", String::as_str)
    }

    pub(crate) fn last_day(&self) -> &str {
        self.days.last().map_or("", String::as_str)
    }

    /// One value per day from `(day, value)` pairs (see [`by_day`]); days
    /// without one are 0.
    pub(crate) fn spread(&self, rows: &[(String, u64)]) -> Vec<u64> {
        self.days.iter().map(|d| rows.binary_search_by(|(day, _)| day.cmp(d)).map_or(0, |i| rows[i].1)).collect()
    }
}

/// `?days=` among `allowed` (the first is the default); anything else is
/// refused rather than quietly replaced, so a mistyped link says so.
pub(crate) fn days_param<E: Env>(ctx: &Ctx<'_, E>, allowed: &[i64], message: &'static str) -> Result<i64, Error> {
    match httpx::query_param(&ctx.parts.uri, "days") {
        None => Ok(allowed[0]),
        Some(v) => v.parse().ok().filter(|d| allowed.contains(d)).ok_or_else(|| Error::field(ErrorKind::BadRequest, "days", message)),
    }
}

/// Links to the same page for each period, the current one marked.
pub(crate) fn period_nav(base: &str, allowed: &[i64], current: Option<i64>) -> Markup {
    html! {
        nav.periods aria-label="Period" {
            @for d in allowed {
                @if current == Some(*d) { a href={ (base) "?days=" (d) } aria-current="page" { (d) " days" } }
                @else { a href={ (base) "?days=" (d) } { (d) " days" } }
            }
        }
    }
}

pub(crate) fn int(r: &Row, i: usize) -> u64 {
    r.int(i).unwrap_or(0).max(0) as u64
}

pub(crate) fn text(r: &Row, i: usize) -> String {
    r.text(i).unwrap_or("").to_owned()
}

/// `(day, n)` pairs sorted by day, for [`Period::spread`]. (Sorted lists
/// rather than a `HashMap`, whose code costs the .wasm ~2 KB gzip.)
pub(crate) fn by_day(rows: &[Row], col: usize) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = rows.iter().map(|r| (text(r, 0), int(r, col))).collect();
    out.sort_unstable();
    out
}

// Every column has its own alias: D1 returns rows as objects, where two
// columns with one name would collapse into one.
const STATUS_SQL: &str = "SELECT status AS s, n AS n FROM agg_fan_status WHERE artist_id = ?1 AND n > 0";
const DAILY_SQL: &str =
    "SELECT day AS d, sum(CASE WHEN kind = 'unsubscribe' THEN 0 ELSE n END) AS s, sum(CASE WHEN kind = 'unsubscribe' THEN n ELSE 0 END) AS u \
     FROM agg_consent_daily WHERE artist_id = ?1 AND day BETWEEN ?2 AND ?3 AND kind IN ('subscribe', 'request', 'unsubscribe') GROUP BY day";
const COUNTRIES_SQL: &str = "SELECT country AS c, sum(n) AS total FROM agg_fan_place WHERE artist_id = ?1 AND n > 0 GROUP BY country ORDER BY total DESC, c";
const REGIONS_SQL: &str = "SELECT country AS c, region AS r, sum(n) AS total FROM agg_fan_place WHERE artist_id = ?1 AND n > 0 AND region <> '' \
     GROUP BY country, region ORDER BY total DESC, c, r LIMIT 10";
const CITIES_SQL: &str = "SELECT country AS c, region AS r, city AS y, n AS total FROM agg_fan_place WHERE artist_id = ?1 AND n > 0 AND city <> '' \
     ORDER BY total DESC, c, r, y LIMIT 10";
const PAGES_NOW_SQL: &str = "SELECT a.page_id AS id, coalesce(c.title, '') AS t, a.n AS total FROM agg_fan_page a \
     LEFT JOIN capture_pages c ON c.id = a.page_id AND c.artist_id = ?1 WHERE a.artist_id = ?1 AND a.n > 0 ORDER BY total DESC LIMIT ?2";
const PAGES_PERIOD_SQL: &str = "SELECT d.page_id AS id, coalesce(c.title, '') AS t, sum(d.n) AS total FROM agg_consent_daily d \
     LEFT JOIN capture_pages c ON c.id = d.page_id AND c.artist_id = ?1 \
     WHERE d.artist_id = ?1 AND d.day BETWEEN ?2 AND ?3 AND d.kind IN ('subscribe', 'request') AND d.n > 0 GROUP BY d.page_id ORDER BY total DESC LIMIT ?4";
const CLICKS_SQL: &str =
    "SELECT day AS d, sum(n) AS total FROM agg_link_artist_daily WHERE artist_id = ?1 AND day BETWEEN ?2 AND ?3 AND kind = 'click' GROUP BY day";
const PLATFORMS_SQL: &str =
    "SELECT platform AS p, sum(n) AS total FROM agg_link_artist_daily WHERE artist_id = ?1 AND day BETWEEN ?2 AND ?3 AND kind = 'click' \
     GROUP BY platform HAVING total > 0 ORDER BY total DESC, p LIMIT 20";

pub async fn show<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    const ALLOWED: [i64; 3] = [30, 90, 365];
    let n = days_param(ctx, &ALLOWED, "Choose a period of 30, 90 or 365 days.")?;
    let period = Period::last(ctx.env.now_ms(), n);
    let (from, to) = (Param::Text(period.first()), Param::Text(period.last_day()));
    let range = [from, to];
    let mut r = ctx
        .db
        .batch(&[
            (STATUS_SQL, &[]),
            (DAILY_SQL, &range),
            (COUNTRIES_SQL, &[]),
            (REGIONS_SQL, &[]),
            (CITIES_SQL, &[]),
            (PAGES_NOW_SQL, &[Param::Int(MAX_PAGES)]),
            (PAGES_PERIOD_SQL, &[from, to, Param::Int(MAX_PAGES)]),
            (CLICKS_SQL, &range),
            (PLATFORMS_SQL, &range),
        ])
        .await?
        .into_iter();
    let mut next = || r.next().unwrap_or_default();
    let (status, daily, countries, regions, cities, pages_now, pages_period, clicks, platforms) =
        (next(), next(), next(), next(), next(), next(), next(), next(), next());

    let held = |s: &str| status.iter().find(|r| r.text(0) == Some(s)).map_or(0, |r| int(r, 1));
    let parts: Vec<(&str, &str, u64)> = STATUSES.iter().map(|(s, class)| (*s, *class, held(s))).collect();
    let signups = by_day(&daily, 1);
    let unsubs = by_day(&daily, 2);
    let place = |r: &Row, cols: &[usize]| cols.iter().map(|&i| text(r, i)).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ");
    let countries: Vec<(String, u64)> = countries.iter().map(|r| (country(&text(r, 0)), int(r, 1))).collect();
    let regions: Vec<(String, u64)> = regions.iter().map(|r| (place(r, &[1, 0]), int(r, 2))).collect();
    let cities: Vec<(String, u64)> = cities.iter().map(|r| (place(r, &[2, 1, 0]), int(r, 3))).collect();
    let platforms: Vec<(String, u64)> = platforms.iter().map(|r| (text(r, 0), int(r, 1))).collect();
    let pages = page_rows(&pages_now, &pages_period);
    let clicks = by_day(&clicks, 1);

    let body = html! {
        h1 { "Overview" }
        (period_nav("/app/overview", &ALLOWED, Some(n)))
        p.muted { "The last " (n) " days, " (period.first()) " to " (period.last_day()) " (UTC; today so far)." }
        section aria-labelledby="h-fans" {
            h2 #h-fans { "Fans" }
            (chart::stack("Fans by status", &parts))
        }
        section aria-labelledby="h-signups" {
            h2 #h-signups { "Signups" }
            (chart::days("Signups and unsubscribes per day", &format!("Signups (subscribe and request) and unsubscribes per UTC day, {} to {}", period.first(), period.last_day()), &period.days, &[
                Series { name: "Signups", class: "c1", values: period.spread(&signups) },
                Series { name: "Unsubscribes", class: "c2", values: period.spread(&unsubs) },
            ]))
        }
        section aria-labelledby="h-where" {
            h2 #h-where { "Where your fans are" }
            @if countries.is_empty() { p { "No fans yet." } } @else {
                div.grid {
                    (chart::bars("Top countries", "Country", "Fans", &countries[..countries.len().min(10)], "c1"))
                    (chart::bars("Top regions", "Region", "Fans", &regions, "c1"))
                    (chart::bars("Top cities", "City", "Fans", &cities, "c1"))
                }
                details {
                    summary { "Every country (" (countries.len()) ")" }
                    (chart::bars("Fans by country", "Country", "Fans", &countries, "c1"))
                }
            }
        }
        section aria-labelledby="h-pages" {
            h2 #h-pages { "Capture pages" }
            @if pages.is_empty() { p { "No signups through a capture page yet." } } @else {
                div.table { table {
                    thead { tr { th scope="col" { "Page" } th.num scope="col" { "Fans now" } th.num scope="col" { "Signups, last " (n) " days" } } }
                    tbody { @for (id, title, now, recent) in &pages { tr {
                        th scope="row" { @if id.is_empty() { "No capture page" } @else if title.is_empty() { "A deleted page" } @else { a href={ "/app/pages/" (id) } { (title) } } }
                        td.num { (chart::grouped(*now)) }
                        td.num { (chart::grouped(*recent)) }
                    } } }
                } }
            }
        }
        section aria-labelledby="h-links" {
            h2 #h-links { "Smart link clicks" }
            (chart::days("Clicks per day", &format!("Clicks on all smart links per UTC day, {} to {}", period.first(), period.last_day()), &period.days, &[
                Series { name: "Clicks", class: "c1", values: period.spread(&clicks) },
            ]))
            @if !platforms.is_empty() { (chart::bars("Clicks by service", "Service", "Clicks", &platforms, "c2")) }
        }
    };
    Ok(view::html_response(StatusCode::OK, view::app_page(&ctx.session, Nav::Overview, "Overview", body)))
}

/// A country code as shown: there is no name table in `shared::geo`, and
/// codes are what the fans list filters by.
pub(crate) fn country(code: &str) -> String {
    if code.is_empty() {
        "Unknown".to_owned()
    } else {
        code.to_owned()
    }
}

/// Pages by fans held now, then pages that only had signups in the period
/// (`(id, title, fans now, signups in the period)`).
fn page_rows(now: &[Row], period: &[Row]) -> Vec<(String, String, u64, u64)> {
    let recent = |id: &str| period.iter().find(|r| r.text(0) == Some(id)).map_or(0, |r| int(r, 2));
    let mut out: Vec<(String, String, u64, u64)> = now.iter().map(|r| (text(r, 0), text(r, 1), int(r, 2), recent(r.text(0).unwrap_or("")))).collect();
    for r in period {
        if !out.iter().any(|p| p.0 == text(r, 0)) {
            out.push((text(r, 0), text(r, 1), 0, int(r, 2)));
        }
    }
    out
}

#[cfg(test)]
mod tests;
