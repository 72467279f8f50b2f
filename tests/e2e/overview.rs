//! The overview and a link's analytics on each runtime: after signups and
//! clicks through the public routes, the pages show the counts a recount
//! of the runtime's own database gives (other cases write to the same
//! artist, so the expected numbers are counted, not assumed), and a second
//! artist's session gets the same 404 for the first artist's link as for
//! a missing one.

use std::time::{Duration, Instant};

use crate::cases::{body, Case};
use crate::dashboard::{add_user, signup, Browser};
use crate::ensure;
use crate::runtime::{Kind, Target};

pub const ALL: &[(&str, Case)] = &[("overview_and_link_analytics_show_the_counts", counts), ("overview_link_analytics_other_artist_404", cross_tenant)];

const TOKEN: &str = "sd_e2e_links_token_artist_one_3f9a";
const OTHER_TOKEN: &str = "sd_e2e_links_token_artist_two_7c1d";
const SLUG: &str = "e2e-overview";
const OTHER_SLUG: &str = "e2e-overview-other";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

fn create_link(t: &Target, token: &str, slug: &str, title: &str) -> Result<(), String> {
    let data = format!(
        r#"{{"slug":"{slug}","title":"{title}","targets":[{{"platform":"spotify","url":"https://open.spotify.com/album/ov"}},{{"platform":"deezer","url":"https://www.deezer.com/album/1"}}]}}"#
    );
    let auth = format!("Bearer {token}");
    let res = t.send("POST", "/api/v1/app/links", &[("content-type", "application/json"), ("authorization", &auth)], data.as_bytes())?;
    ensure!(matches!(res.status().as_u16(), 201 | 409), "create {slug}: {} {}", res.status(), body(&res));
    Ok(())
}

/// A visit from Sweden on a desktop browser, referred by `ref`.
fn visit(t: &Target, path: &str) -> Result<u16, String> {
    let ip = if t.kind == Kind::Spin { "89.160.20.128" } else { "198.51.100.61" };
    let mut headers = vec![(t.ip_header(), ip), ("user-agent", DESKTOP)];
    if t.kind == Kind::Workers {
        headers.push(("mf-cf-blob", r#"{"country":"SE","clientAcceptEncoding":""}"#));
    }
    Ok(t.send("GET", path, &headers, b"")?.status().as_u16())
}

fn one(t: &Target, sql: &str) -> Result<i64, String> {
    t.db()?.query_row(sql, [], |r| r.get(0)).map_err(|e| format!("{sql}: {e}"))
}

/// Polls until `sql` counts `want` (counters land after the response).
fn wait_for(t: &Target, sql: &str, want: i64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = one(t, sql)?;
        if n >= want {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "{sql}: {n}, expected {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `1234567` → `1,234,567`, as the dashboard writes counts in tables.
fn grouped(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn contains_all(page: &str, what: &str, wants: &[String]) -> Result<(), String> {
    for want in wants {
        ensure!(page.contains(want.as_str()), "{what}: missing {want:?} in {}", &page[page.find("<main").unwrap_or(0)..]);
    }
    Ok(())
}

fn counts(t: &Target) -> Result<(), String> {
    add_user(t, "ov-owner", "e2e-artist", "overview@e2e.example", "owner")?;
    create_link(t, TOKEN, SLUG, "Overview Song")?;
    for i in 0..3 {
        signup(t, &format!("198.51.100.{}", 62 + i), "e2e", &format!("overview-fan-{i}@example.com"))?;
    }
    let link_rows = format!("SELECT coalesce(sum(s.count), 0) FROM link_stats s JOIN links l ON l.id = s.link_id WHERE l.slug = '{SLUG}'");
    let before = one(t, &link_rows)?;
    ensure!(visit(t, &format!("/l/{SLUG}?ref=overview.e2e.example"))? == 200, "landing page");
    for _ in 0..3 {
        ensure!(visit(t, &format!("/l/{SLUG}/spotify?ref=overview.e2e.example"))? == 302, "click");
    }
    ensure!(visit(t, &format!("/l/{SLUG}/deezer"))? == 302, "click");
    wait_for(t, &link_rows, before + 5)?;

    let mut b = Browser::new(t, "198.51.100.65");
    b.sign_in("overview@e2e.example")?;
    let res = b.get("/app/overview")?;
    let page = body(&res);
    ensure!(res.status() == 200, "overview: {} {page}", res.status());
    // What a recount of the runtime's own tables says.
    let mut wants = Vec::new();
    for status in ["subscribed", "pending", "unsubscribed", "bounced", "complained"] {
        let n = one(t, &format!("SELECT count(*) FROM fans WHERE artist_id = 'e2e-artist' AND status = '{status}'"))?;
        wants.push(format!("{status}: <strong>{}</strong>", grouped(n)));
    }
    let today = "strftime('%Y-%m-%d', 'now')";
    let signups = one(
        t,
        &format!("SELECT count(*) FROM consent_events WHERE artist_id = 'e2e-artist' AND kind IN ('subscribe', 'request') AND date(at / 1000, 'unixepoch') = {today}"),
    )?;
    let unsubs = one(
        t,
        &format!("SELECT count(*) FROM consent_events WHERE artist_id = 'e2e-artist' AND kind = 'unsubscribe' AND date(at / 1000, 'unixepoch') = {today}"),
    )?;
    let day: String = t.db()?.query_row(&format!("SELECT {today}"), [], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(signups >= 3, "the three signups are today's");
    wants.push(format!("<th scope=\"row\">{day}</th><td>{}</td><td>{}</td>", grouped(signups), grouped(unsubs)));
    let clicks = one(t, &format!("SELECT coalesce(sum(count), 0) FROM link_stats WHERE artist_id = 'e2e-artist' AND kind = 'click' AND day = {today}"))?;
    wants.push(format!("<th scope=\"row\">{day}</th><td>{}</td></tr>", grouped(clicks)));
    let page_fans = one(t, "SELECT count(*) FROM fans WHERE artist_id = 'e2e-artist' AND source_page_id = 'e2e-page'")?;
    wants.push(format!("<a href=\"/app/pages/e2e-page\">E2E list</a></th><td class=\"num\">{}</td>", grouped(page_fans)));
    contains_all(&page, "overview", &wants)?;
    ensure!(!page.contains("Other list") && !page.contains("Redirecting list"), "the other artist's pages are not listed");

    let res = b.get(&format!("/app/links/{SLUG}"))?;
    let page = body(&res);
    ensure!(res.status() == 200, "link analytics: {} {page}", res.status());
    let wants: Vec<String> = [
        "<h1>Overview Song</h1>",
        "<dt>Page views</dt><dd>1</dd>",
        "<dt>Clicks</dt><dd>4</dd>",
        "<dt>Click-through rate</dt><dd>400.0%</dd>",
        "<th scope=\"row\">spotify</th><td class=\"bar\">",
        "<th scope=\"row\">overview.e2e.example</th>",
        "<th scope=\"row\">SE</th>",
        "<th scope=\"row\">desktop</th>",
        "href=\"/app/links/e2e-overview/edit\"",
    ]
    .map(String::from)
    .to_vec();
    contains_all(&page, "link analytics", &wants)?;
    contains_all(&page, "link analytics", &[format!("<th scope=\"row\">{day}</th><td>1</td><td>4</td>")])?;
    ensure!(b.get("/app/overview?days=7")?.status() == 400, "an unknown period is refused");
    ensure!(b.get(&format!("/app/links/{SLUG}?from=2026-02-10&to=2026-02-01"))?.status() == 400, "a backwards range is refused");
    Ok(())
}

fn cross_tenant(t: &Target) -> Result<(), String> {
    add_user(t, "ov-owner", "e2e-artist", "overview@e2e.example", "owner")?;
    add_user(t, "ov-other-owner", "e2e-other-artist", "overview@other.example", "owner")?;
    create_link(t, TOKEN, SLUG, "Overview Song")?;
    create_link(t, OTHER_TOKEN, OTHER_SLUG, "Other Overview Song")?;
    let mut two = Browser::new(t, "198.51.100.66");
    two.sign_in("overview@other.example")?;
    let theirs = two.get(&format!("/app/links/{SLUG}"))?;
    let missing = two.get("/app/links/e2e-overview-no-such-link")?;
    ensure!(theirs.status() == 404 && missing.status() == 404, "other artist's link: {} / missing: {}", theirs.status(), missing.status());
    ensure!(body(&theirs) == body(&missing), "the same answer for another's link as for none");
    ensure!(!body(&theirs).contains("Overview Song"), "the 404 names the link");
    let own = two.get(&format!("/app/links/{OTHER_SLUG}"))?;
    ensure!(own.status() == 200 && body(&own).contains("<h1>Other Overview Song</h1>"), "own link: {}", own.status());
    let overview = body(&two.get("/app/overview")?);
    ensure!(!overview.contains("E2E list") && !overview.contains("e2e-page"), "artist one's capture page on artist two's overview");
    let mut one = Browser::new(t, "198.51.100.67");
    one.sign_in("overview@e2e.example")?;
    ensure!(one.get(&format!("/app/links/{OTHER_SLUG}"))?.status() == 404, "artist one reads artist two's link analytics");
    Ok(())
}
