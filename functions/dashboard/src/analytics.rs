//! One smart link's analytics (`/app/links/{slug}`): views and clicks per
//! day, click-through rate, and clicks by service, country, referrer and
//! device, for the last 7/30/90/365 days or a chosen range of at most 366.
//!
//! Everything comes from `agg_link_daily` in one query that reads the
//! link's rows for the period once: per-day totals (`dim = 'all'`) and
//! per-dimension click totals are grouped apart by the `CASE` key.

use maud::{html, Markup};
use shared::http::StatusCode;
use shared::sql::{Param, Row};
use shared::{httpx, Env, Error, Response};

use crate::chart::{self, Series};
use crate::overview::{days_param, int, period_nav, text, Period};
use crate::view::{self, Nav};
use crate::{not_found, Ctx};

const PERIODS: [i64; 4] = [30, 7, 90, 365];
/// A chosen range covers at most a leap year, both ends included.
const MAX_RANGE_DAYS: i64 = 366;
const DIMENSIONS: [(&str, &str, &str); 4] = [
    ("platform", "Clicks by service", "Service"),
    ("country", "Clicks by country", "Country"),
    ("referrer", "Clicks by referrer", "Referrer"),
    ("device", "Clicks by device", "Device"),
];

const LINK_SQL: &str = "SELECT id AS id, coalesce(json_extract(definition, '$.title'), '') AS t FROM links WHERE artist_id = ?1 AND slug = ?2";
const STATS_SQL: &str = "SELECT CASE WHEN dim = 'all' THEN day ELSE '' END AS d, kind AS k, dim AS m, value AS v, sum(n) AS total FROM agg_link_daily \
     WHERE link_id = ?2 AND artist_id = ?1 AND day BETWEEN ?3 AND ?4 AND n > 0 AND (dim = 'all' OR kind = 'click') GROUP BY d, k, m, v";

/// The period asked for: `?from=&to=` when either is given, else `?days=`.
enum Asked {
    Last(i64),
    Range(String, String),
}

/// What the range form refused, next to its field.
#[derive(Default)]
struct RangeErrors {
    from: Option<&'static str>,
    to: Option<&'static str>,
}

/// What was asked for, and its days or what is wrong with the range.
fn asked<E: Env>(ctx: &Ctx<'_, E>) -> Result<(Asked, Result<Period, RangeErrors>), Error> {
    let q = |name: &str| httpx::query_param(&ctx.parts.uri, name).map(|v| v.trim().to_owned());
    let (from, to) = (q("from").unwrap_or_default(), q("to").unwrap_or_default());
    if from.is_empty() && to.is_empty() {
        let n = days_param(ctx, &PERIODS, "Choose a period of 7, 30, 90 or 365 days.")?;
        return Ok((Asked::Last(n), Ok(Period::last(ctx.env.now_ms(), n))));
    }
    let day = |s: &str| view::parse_date(s).map(|ms| ms.div_euclid(shared::date::DAY_MS));
    let mut errors = RangeErrors::default();
    let (first, last) = (day(&from), day(&to));
    if first.is_none() {
        errors.from = Some("Enter the first day as YYYY-MM-DD.");
    }
    if last.is_none() {
        errors.to = Some("Enter the last day as YYYY-MM-DD.");
    }
    if let (Some(a), Some(b)) = (first, last) {
        if b < a {
            errors.to = Some("The last day must not come before the first.");
        } else if b - a + 1 > MAX_RANGE_DAYS {
            errors.to = Some("Choose at most 366 days.");
        }
    }
    let period = match (first, last, &errors) {
        (Some(a), Some(b), RangeErrors { from: None, to: None }) => Ok(Period::between(a, b)),
        _ => Err(errors),
    };
    Ok((Asked::Range(from, to), period))
}

pub async fn show<E: Env>(ctx: &Ctx<'_, E>, slug: &str) -> Result<Response, Error> {
    if slug.len() > 128 {
        return Err(not_found());
    }
    let link = ctx.db.query(LINK_SQL, &[Param::Text(slug)]).await?.into_iter().next().ok_or_else(not_found)?;
    let (id, title) = (text(&link, 0), text(&link, 1));
    let title = if title.is_empty() { format!("/l/{slug}") } else { title };
    let (asked, period) = asked(ctx)?;
    let (status, form, body) = match period {
        Ok(period) => {
            let rows = ctx.db.query(STATS_SQL, &[Param::Text(&id), Param::Text(period.first()), Param::Text(period.last_day())]).await?;
            (StatusCode::OK, range_form(slug, &asked, &RangeErrors::default()), stats(&period, &rows))
        }
        Err(errors) => (StatusCode::BAD_REQUEST, range_form(slug, &asked, &errors), html! {}),
    };
    let current = match asked {
        Asked::Last(n) => Some(n),
        Asked::Range(..) => None,
    };
    let page = html! {
        p { a href="/app/links" { "← All smart links" } }
        h1 { (title) }
        (crate::links::saved_notice(ctx, slug))
        div.actions {
            span { "Address: " a href={ "/l/" (slug) } { "/l/" (slug) } }
            a.button href={ "/app/links/" (slug) "/edit" } { "Edit" }
        }
        (period_nav(&format!("/app/links/{slug}"), &[7, 30, 90, 365], current))
        (form)
        (body)
    };
    Ok(view::html_response(status, view::app_page(&ctx.session, Nav::Links, &title, page)))
}

/// The GET form for a chosen range, keeping what was typed.
fn range_form(slug: &str, asked: &Asked, errors: &RangeErrors) -> Markup {
    let (from, to) = match asked {
        Asked::Range(f, t) => (f.as_str(), t.as_str()),
        Asked::Last(_) => ("", ""),
    };
    html! {
        form.filters method="get" action={ "/app/links/" (slug) } aria-label="Choose days" {
            div {
                label for="from" { "From" }
                input #from type="date" name="from" value=(from) required aria-describedby=[errors.from.map(|_| "err-from")];
                @if let Some(e) = errors.from { p.err #err-from role="alert" { (e) } }
            }
            div {
                label for="to" { "To" }
                input #to type="date" name="to" value=(to) required aria-describedby=[errors.to.map(|_| "err-to")];
                @if let Some(e) = errors.to { p.err #err-to role="alert" { (e) } }
            }
            div { button type="submit" { "Show these days" } }
        }
    }
}

/// The numbers and charts for one period.
fn stats(period: &Period, rows: &[Row]) -> Markup {
    // Columns: day ('' unless dim = 'all'), kind, dim, value, n.
    let per_day = |kind: &str| {
        let mut v: Vec<(String, u64)> = rows.iter().filter(|r| r.text(2) == Some("all") && r.text(1) == Some(kind)).map(|r| (text(r, 0), int(r, 4))).collect();
        v.sort_unstable();
        v
    };
    let (views, clicks) = (per_day("view"), per_day("click"));
    let lists: Vec<_> = DIMENSIONS
        .iter()
        .map(|&(dim, caption, head)| {
            let mut list: Vec<(String, u64)> = rows
                .iter()
                .filter(|r| r.text(2) == Some(dim) && r.text(1) == Some("click"))
                .map(|r| (label(dim, r.text(3).unwrap_or("")), int(r, 4)))
                .collect();
            list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            (caption, head, list)
        })
        .collect();
    let (views, clicks) = (period.spread(&views), period.spread(&clicks));
    let (total_views, total_clicks) = (views.iter().sum::<u64>(), clicks.iter().sum::<u64>());
    let desc = format!("Page views and clicks per UTC day, {} to {}", period.first(), period.last_day());
    html! {
        p.muted { (period.first()) " to " (period.last_day()) " (UTC)" }
        dl.figures {
            div { dt { "Page views" } dd { (chart::human(total_views)) } }
            div { dt { "Clicks" } dd { (chart::human(total_clicks)) } }
            div { dt { "Click-through rate" } dd { (chart::percent(total_clicks, total_views)) } }
        }
        p.muted { "Click-through rate: clicks on a service's button per landing-page view. Links that redirect at once count clicks without views." }
        (chart::days("Views and clicks per day", &desc, &period.days, &[
            Series { name: "Page views", class: "c1", values: views },
            Series { name: "Clicks", class: "c2", values: clicks },
        ]))
        div.grid {
            @for (caption, head, list) in &lists {
                @if list.is_empty() { section { h2 { (caption) } p.muted { "No clicks in this period." } } }
                @else { (chart::bars(caption, head, "Clicks", list, "c2")) }
            }
        }
    }
}

/// A dimension value for people: empty means unknown or none.
fn label(dim: &str, value: &str) -> String {
    match (dim, value) {
        ("referrer", "") => "None (direct)".to_owned(),
        ("referrer", "(other)") => "Others (beyond the day's first 50)".to_owned(),
        ("country", c) => crate::overview::country(c),
        (_, "") => "Unknown".to_owned(),
        (_, v) => v.to_owned(),
    }
}
