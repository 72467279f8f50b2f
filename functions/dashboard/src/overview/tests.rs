//! The overview and a link's analytics against the real SQLite engine,
//! whose aggregate rows come from the schema's own triggers: two artists
//! with fans, consent events and link counters of their own, so every
//! number one artist sees is checked against the other's.

use shared::adapters::native::recorder::Recorder;
use shared::adapters::native::NativeEnv;
use shared::Env;

use crate::tests::{text, Browser};

const DAY: i64 = 86_400_000;

struct World {
    env: NativeEnv,
    mail: Recorder,
    today: String,
}

fn day(env: &NativeEnv, back: i64) -> String {
    shared::date::ymd(env.now_ms() - back * DAY)
}

/// Artist one (`a1`, owner@one.example): five fans in three places, events
/// today, yesterday and 60 days ago, one link with views and clicks.
/// Artist two (`a2`): 1,111 fans in Berlin and 4,321 clicks, numbers that
/// would show if a query forgot whose data it reads.
fn world() -> World {
    let (mail, env) = crate::tests::mail_and_env();
    let (today, yesterday, long_ago) = (day(&env, 0), day(&env, 1), day(&env, 60));
    let now = env.now_ms();
    let conn = env.db.conn();
    conn.execute_batch("INSERT INTO artists VALUES ('a1', 'Artist One', 0), ('a2', 'Artist Two', 0);").unwrap();
    crate::tests::add_users(&env, &[("u-one", "a1", "owner@one.example", "owner"), ("u-two", "a2", "owner@two.example", "owner")]);
    conn.execute_batch(&format!(
        "INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at) VALUES
           ('p1', 'a1', 'tour', 'Tour news', 'Send me tour news.', 'v1', 0, 0, 0),
           ('p2', 'a2', 'secret', 'Secret Club', 'Other news.', 'v1', 0, 0, 0);
         INSERT INTO fans (id, artist_id, email_enc, email_hash, status, country, region, city, source_page_id, consent_version, created_at, updated_at) VALUES
           ('f1', 'a1', 'x', 'h1', 'subscribed', 'SE', 'Östergötland', 'Linköping', 'p1', 'v1', {now}, {now}),
           ('f2', 'a1', 'x', 'h2', 'subscribed', 'SE', 'Östergötland', 'Linköping', 'p1', 'v1', {now}, {now}),
           ('f3', 'a1', 'x', 'h3', 'subscribed', 'US', 'Texas', 'Austin', 'p1', 'v1', {now}, {now}),
           ('f4', 'a1', 'x', 'h4', 'pending', NULL, NULL, NULL, 'p1', 'v1', {now}, {now}),
           ('f5', 'a1', 'x', 'h5', 'unsubscribed', 'SE', '', '', NULL, 'v1', {now}, {now});
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1111)
           INSERT INTO fans (id, artist_id, email_enc, email_hash, status, country, region, city, source_page_id, consent_version, created_at, updated_at)
           SELECT 'g' || i, 'a2', 'x', 'g' || i, 'bounced', 'DE', 'Berlin', 'Berlin', 'p2', 'v1', {now}, {now} FROM c;
         INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at) VALUES
           ('e1', 'f1', 'a1', 'subscribe', 'p1', 'v1', 'h', 'single', {now}),
           ('e2', 'f2', 'a1', 'subscribe', 'p1', 'v1', 'h', 'single', {now}),
           ('e3', 'f4', 'a1', 'request', 'p1', 'v1', 'h', 'double', {now}),
           ('e4', 'f5', 'a1', 'unsubscribe', NULL, 'v1', NULL, 'one-click', {yesterday_ms}),
           ('e5', 'f3', 'a1', 'subscribe', 'p1', 'v1', 'h', 'single', {long_ago_ms});
         INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at)
           SELECT 'x' || id, id, 'a2', 'subscribe', 'p2', 'v1', 'h', 'single', {now} FROM fans WHERE artist_id = 'a2';
         INSERT INTO links (id, artist_id, slug, definition, created_at, updated_at) VALUES
           ('l1', 'a1', 'night', '{{\"title\":\"Night Drive\",\"targets\":[]}}', 0, 0),
           ('l2', 'a2', 'theirs', '{{\"title\":\"Their Song\",\"targets\":[]}}', 0, 0);
         INSERT INTO link_stats (link_id, artist_id, day, kind, platform, country, referrer, device, count) VALUES
           ('l1', 'a1', '{today}', 'view', '', 'SE', 'instagram.com', 'ios', 8),
           ('l1', 'a1', '{today}', 'click', 'spotify', 'SE', 'instagram.com', 'ios', 3),
           ('l1', 'a1', '{today}', 'click', 'deezer', 'FR', '', 'desktop', 1),
           ('l1', 'a1', '{yesterday}', 'click', 'spotify', 'SE', '', 'android', 2),
           ('l1', 'a1', '{long_ago}', 'click', 'spotify', 'SE', '', 'android', 50),
           ('l2', 'a2', '{today}', 'click', 'tidal', 'DE', 'secret.example', 'ios', 4321);",
        yesterday_ms = now - DAY,
        long_ago_ms = now - 60 * DAY,
    ))
    .unwrap();
    drop(conn);
    World { env, mail, today }
}

fn signed_in(w: &World, email: &str) -> Browser {
    let mut b = Browser::new();
    b.sign_in_with(&w.env, &w.mail, email);
    b
}

fn page(b: &mut Browser, w: &World, uri: &str) -> (u16, String) {
    let res = b.get(&w.env, uri);
    (res.status().as_u16(), text(&res))
}

#[test]
fn overview_shows_own_numbers_and_none_of_another_artists() {
    let w = world();
    let mut b = signed_in(&w, "owner@one.example");
    let (status, html) = page(&mut b, &w, "/app/overview");
    assert_eq!(status, 200, "{html}");
    for want in [
        "Fans by status: <strong>5</strong>",
        "subscribed: <strong>3</strong>",
        "pending: <strong>1</strong>",
        "unsubscribed: <strong>1</strong>",
        // Today's signups (2 subscribe + 1 request), yesterday's unsubscribe.
        &format!("<th scope=\"row\">{}</th><td>3</td><td>0</td>", w.today),
        &format!("<th scope=\"row\">{}</th><td>0</td><td>1</td>", day(&w.env, 1)),
        "Signups: <strong>3</strong>",
        "Unsubscribes: <strong>1</strong>",
        "<th scope=\"row\">Linköping, Östergötland, SE</th>",
        "<th scope=\"row\">Austin, Texas, US</th>",
        "<th scope=\"row\">Unknown</th>",
        "Tour news",
        "No capture page",
        "Clicks: <strong>6</strong>",
        "<th scope=\"row\">spotify</th>",
    ] {
        assert!(html.contains(want), "missing {want:?} in {html}");
    }
    for leak in ["Berlin", "DE", "1,111", "Secret Club", "4,321", "tidal", "bounced: <strong>1"] {
        assert!(!html.contains(leak), "artist two's {leak:?} leaked into {html}");
    }
    assert!(html.contains("bounced: <strong>0</strong>"));
    // And the other way round: artist two sees theirs, none of one's.
    let mut two = signed_in(&w, "owner@two.example");
    let (_, html) = page(&mut two, &w, "/app/overview");
    for want in ["bounced: <strong>1,111</strong>", "Secret Club", "<th scope=\"row\">tidal</th>", "Clicks: <strong>4,321</strong>"] {
        assert!(html.contains(want), "missing {want:?} in {html}");
    }
    for leak in ["Linköping", "Tour news", "spotify"] {
        assert!(!html.contains(leak), "artist one's {leak:?} leaked into {html}");
    }
}

#[test]
fn overview_periods_and_the_dashboard_home() {
    let w = world();
    let mut b = signed_in(&w, "owner@one.example");
    let res = b.get(&w.env, "/app");
    assert_eq!((res.status().as_u16(), res.headers()["location"].to_str().unwrap()), (303, "/app/overview"));
    let (_, html) = page(&mut b, &w, "/app/overview?days=90");
    assert!(html.contains("Signups: <strong>4</strong>"), "the signup 60 days ago counts in 90 days: {html}");
    assert!(html.contains("Clicks: <strong>56</strong>"), "{html}");
    assert!(html.contains("<a href=\"/app/overview?days=90\" aria-current=\"page\">"), "{html}");
    let (_, html) = page(&mut b, &w, "/app/overview?days=365");
    assert!(html.contains("The last 365 days"));
    for bad in ["7", "abc", "", "30x", "-30", "99999999999999999999"] {
        let (status, html) = page(&mut b, &w, &format!("/app/overview?days={bad}"));
        assert_eq!(status, 400, "days={bad}");
        assert!(html.contains("Choose a period of 30, 90 or 365 days."), "{html}");
    }
}

#[test]
fn charts_carry_title_desc_tables_and_no_inline_style() {
    let w = world();
    let mut b = signed_in(&w, "owner@one.example");
    for uri in ["/app/overview", "/app/overview?days=365", "/app/links/night", "/app/links/night?days=365"] {
        let (status, html) = page(&mut b, &w, uri);
        assert_eq!(status, 200, "{uri}");
        assert!(!html.contains("style="), "CSP forbids inline style: {uri}");
        assert!(!html.contains("<script"), "{uri}");
        let charts = html.matches("role=\"img\"").count();
        assert!(charts >= 1, "{uri}");
        assert_eq!(html.matches("<title>").count(), charts + 1, "a <title> per chart plus the page's: {uri}");
        assert_eq!(html.matches("<desc>").count(), charts, "{uri}");
        assert!(html.contains("<details><summary>Table of"), "a table for every day chart: {uri}");
    }
}

#[test]
fn link_analytics_from_the_aggregates_for_a_period() {
    let w = world();
    let mut b = signed_in(&w, "owner@one.example");
    let (status, html) = page(&mut b, &w, "/app/links/night");
    assert_eq!(status, 200, "{html}");
    for want in [
        "<h1>Night Drive</h1>",
        "href=\"/app/links/night/edit\"",
        "<dt>Page views</dt><dd>8</dd>",
        "<dt>Clicks</dt><dd>6</dd>",
        "<dt>Click-through rate</dt><dd>75.0%</dd>",
        "<th scope=\"row\">spotify</th><td class=\"bar\">",
        "<th scope=\"row\">FR</th>",
        "<th scope=\"row\">instagram.com</th>",
        "<th scope=\"row\">None (direct)</th>",
        "<th scope=\"row\">android</th>",
        &format!("<th scope=\"row\">{}</th><td>8</td><td>4</td>", w.today),
    ] {
        assert!(html.contains(want), "missing {want:?} in {html}");
    }
    let (_, html) = page(&mut b, &w, "/app/links/night?days=7");
    assert!(html.contains("<dt>Clicks</dt><dd>6</dd>"), "{html}");
    let (_, html) = page(&mut b, &w, "/app/links/night?days=90");
    assert!(html.contains("<dt>Clicks</dt><dd>56</dd>"), "{html}");
    // A chosen range: only the day 60 days ago.
    let old = day(&w.env, 60);
    let (status, html) = page(&mut b, &w, &format!("/app/links/night?from={old}&to={old}"));
    assert_eq!(status, 200);
    assert!(html.contains("<dt>Clicks</dt><dd>50</dd>") && html.contains("<dt>Click-through rate</dt><dd>—</dd>"), "{html}");
    assert!(html.contains(&format!("value=\"{old}\"")), "the form keeps the range");
}

#[test]
fn link_analytics_refuses_bad_periods_next_to_the_field() {
    let w = world();
    let mut b = signed_in(&w, "owner@one.example");
    for (query, message) in [
        ("from=2026-02-10&to=2026-02-01", "The last day must not come before the first."),
        ("from=2025-01-01&to=2026-01-02", "Choose at most 366 days."),
        ("from=2026-02-30&to=2026-03-01", "Enter the first day as YYYY-MM-DD."),
        ("from=2026-02-01", "Enter the last day as YYYY-MM-DD."),
        ("to=yesterday", "Enter the first day as YYYY-MM-DD."),
    ] {
        let (status, html) = page(&mut b, &w, &format!("/app/links/night?{query}"));
        assert_eq!(status, 400, "{query}");
        assert!(html.contains(message), "{query}: {html}");
        assert!(html.contains("role=\"alert\""), "{query}");
        assert!(!html.contains("Page views"), "no numbers for a refused range");
    }
    let (status, _) = page(&mut b, &w, "/app/links/night?from=2025-01-01&to=2025-12-31");
    assert_eq!(status, 200, "365 days are fine");
    let (status, _) = page(&mut b, &w, "/app/links/night?from=2024-01-01&to=2024-12-31");
    assert_eq!(status, 200, "a leap year's 366 days are fine");
    let (status, html) = page(&mut b, &w, "/app/links/night?days=14");
    assert_eq!(status, 400);
    assert!(html.contains("Choose a period of 7, 30, 90 or 365 days."), "{html}");
}

#[test]
fn another_artists_link_is_the_same_404_as_a_missing_one() {
    let w = world();
    let mut one = signed_in(&w, "owner@one.example");
    let (status, theirs) = page(&mut one, &w, "/app/links/theirs");
    let (missing_status, missing) = page(&mut one, &w, "/app/links/no-such-link");
    assert_eq!((status, missing_status), (404, 404));
    assert_eq!(theirs, missing);
    assert!(!theirs.contains("Their Song") && !theirs.contains("4,321"));
    let (status, _) = page(&mut one, &w, &format!("/app/links/{}", "x".repeat(5000)));
    assert_eq!(status, 404);
    let mut two = signed_in(&w, "owner@two.example");
    let (status, html) = page(&mut two, &w, "/app/links/night");
    assert_eq!(status, 404);
    assert!(!html.contains("Night Drive"));
    let (status, html) = page(&mut two, &w, "/app/links/theirs");
    assert_eq!(status, 200);
    assert!(html.contains("<dt>Clicks</dt><dd>4,321</dd>"), "{html}");
}
