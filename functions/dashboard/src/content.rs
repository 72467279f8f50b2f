//! Read-only views of the artist's capture pages and smart links (their
//! management and charts come with the dashboard's second part).

use maud::html;
use shared::http::StatusCode;
use shared::sql::Param;
use shared::{Env, Error, Response};

use crate::view::{self, Nav};
use crate::{not_found, Ctx};

pub async fn pages<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    let rows = ctx
        .db
        .query(
            "SELECT p.id, p.slug, p.title, p.double_opt_in, (SELECT count(*) FROM fans f WHERE f.artist_id = ?1 AND f.source_page_id = p.id) \
             FROM capture_pages p WHERE p.artist_id = ?1 ORDER BY p.slug",
            &[],
        )
        .await?;
    let body = html! {
        h1 { "Capture pages" }
        @if rows.is_empty() { p { "No capture pages yet." } } @else {
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
    Ok(view::html_response(StatusCode::OK, view::app_page(&ctx.session, Nav::Pages, "Capture pages", body)))
}

pub async fn page<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    let rows = ctx
        .db
        .query(
            "SELECT slug, title, consent_text, consent_version, double_opt_in, coalesce(redirect_url, ''), created_at, updated_at FROM capture_pages WHERE artist_id = ?1 AND id = ?2",
            &[Param::Text(id)],
        )
        .await?;
    let r = rows.first().ok_or_else(not_found)?;
    let title = r.text(1).unwrap_or("").to_owned();
    let body = html! {
        p { a href="/app/pages" { "← All capture pages" } }
        h1 { (title) }
        dl {
            dt { "Address" } dd { "/s/" (r.text(0).unwrap_or("")) }
            dt { "Opt-in" } dd { @if r.int(4) == Some(1) { "double (fans confirm by email)" } @else { "single" } }
            dt { "Consent version" } dd { (r.text(3).unwrap_or("")) }
            dt { "After signing up" } dd { @if r.text(5).unwrap_or("").is_empty() { "thank-you page" } @else { (r.text(5).unwrap_or("")) } }
            dt { "Updated" } dd { (view::datetime(r.int(7))) }
        }
        h2 { "Consent text fans see" }
        blockquote.card { (r.text(2).unwrap_or("")) }
    };
    Ok(view::html_response(StatusCode::OK, view::app_page(&ctx.session, Nav::Pages, &title, body)))
}

pub async fn links<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    let rows = ctx
        .db
        .query(
            "SELECT l.slug, json_extract(l.definition, '$.title'), (SELECT coalesce(sum(s.count), 0) FROM link_stats s WHERE s.artist_id = ?1 AND s.link_id = l.id AND s.kind = 'click') \
             FROM links l WHERE l.artist_id = ?1 ORDER BY l.slug",
            &[],
        )
        .await?;
    let body = html! {
        h1 { "Smart links" }
        @if rows.is_empty() { p { "No smart links yet." } } @else {
            div.table { table {
                thead { tr { th scope="col" { "Link" } th scope="col" { "Title" } th scope="col" { "Clicks" } } }
                tbody { @for r in &rows { tr {
                    td { a href={ "/app/links/" (r.text(0).unwrap_or("")) } { "/l/" (r.text(0).unwrap_or("")) } }
                    td { (r.text(1).unwrap_or("")) }
                    td { (r.int(2).unwrap_or(0)) }
                } } }
            } }
        }
    };
    Ok(view::html_response(StatusCode::OK, view::app_page(&ctx.session, Nav::Links, "Smart links", body)))
}

pub async fn link<E: Env>(ctx: &Ctx<'_, E>, slug: &str) -> Result<Response, Error> {
    let rows = ctx
        .db
        .query(
            "SELECT json_extract(l.definition, '$.title'), l.updated_at, \
               (SELECT coalesce(sum(s.count), 0) FROM link_stats s WHERE s.artist_id = ?1 AND s.link_id = l.id AND s.kind = 'view'), \
               (SELECT coalesce(sum(s.count), 0) FROM link_stats s WHERE s.artist_id = ?1 AND s.link_id = l.id AND s.kind = 'click'), \
               (SELECT group_concat(json_extract(t.value, '$.platform'), ', ') FROM json_each(l.definition, '$.targets') t) \
             FROM links l WHERE l.artist_id = ?1 AND l.slug = ?2",
            &[Param::Text(slug)],
        )
        .await?;
    let r = rows.first().ok_or_else(not_found)?;
    let title = r.text(0).unwrap_or("").to_owned();
    let body = html! {
        p { a href="/app/links" { "← All smart links" } }
        h1 { (title) }
        dl {
            dt { "Address" } dd { "/l/" (slug) }
            dt { "Services" } dd { (r.text(4).unwrap_or("")) }
            dt { "Page views" } dd { (r.int(2).unwrap_or(0)) }
            dt { "Clicks" } dd { (r.int(3).unwrap_or(0)) }
            dt { "Updated" } dd { (view::datetime(r.int(1))) }
        }
    };
    Ok(view::html_response(StatusCode::OK, view::app_page(&ctx.session, Nav::Links, &title, body)))
}
