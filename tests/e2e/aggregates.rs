//! The dashboard's aggregate rows (schema/0014_aggregates.sql, README
//! "Aggregates") on each runtime: after a mixed run over HTTP for two
//! artists (signups on three pages from clients in different places,
//! double opt-in confirmations through the mailed links, one-click
//! unsubscribes, a bounce report, smart-link views and clicks from
//! different devices and referrers, past the referrer cap), every
//! aggregate table in the runtime's own database equals a recount of
//! fans, consent_events and link_stats, artist by artist, and so does
//! whatever the suite's earlier cases left there.
//! Clients 198.51.100.160–169 and the geo test addresses.

use std::time::{Duration, Instant};

use shared::token::{Purpose, TokenKeys};

use crate::cases::{body, Case};
use crate::dashboard::fan_id;
use crate::ensure;
use crate::runtime::{Kind, Target, PUBLIC_BASE, TOKEN_KEY_NEW};

// Shared with the native test (functions/jobs/tests/aggregates.rs), which
// uses the parts this case does not.
#[allow(dead_code)]
#[path = "aggregates_recount.rs"]
mod recount;

pub const ALL: &[(&str, Case)] = &[("aggregates_equal_a_recount", equal_a_recount)];

const ONE: &str = "e2e-artist";
const TWO: &str = "e2e-other-artist";
/// The links API tokens of tests/e2e/fixtures.sql.
const TOKEN_ONE: &str = "sd_e2e_links_token_artist_one_3f9a";
const TOKEN_TWO: &str = "sd_e2e_links_token_artist_two_7c1d";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/// A client somewhere: the address Spin places with MaxMind's test
/// database, and the edge data workerd takes from the override header.
#[derive(Clone, Copy)]
struct Place {
    ip: &'static str,
    cf: &'static str,
}

const GB: Place = Place { ip: "81.2.69.142", cf: r#"{"country":"GB","region":"England","city":"London","clientAcceptEncoding":""}"# };
const SE: Place = Place { ip: "89.160.20.128", cf: r#"{"country":"SE","region":"Östergötland County","city":"Linköping","clientAcceptEncoding":""}"# };
const US: Place = Place { ip: "216.160.83.56", cf: r#"{"country":"US","region":"Washington","city":"Milton","clientAcceptEncoding":""}"# };
/// Nowhere the database knows.
const fn nowhere(ip: &'static str) -> Place {
    Place { ip, cf: r#"{"clientAcceptEncoding":""}"# }
}

fn headers<'a>(t: &Target, at: &'a Place, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![(t.ip_header(), at.ip)];
    if t.kind == Kind::Workers {
        h.push(("mf-cf-blob", at.cf));
    }
    h.extend_from_slice(extra);
    h
}

fn signup(t: &Target, at: Place, page: &str, email: &str) -> Result<(), String> {
    let data = format!(r#"{{"page":"{page}","email":"{email}","consent":true}}"#);
    let res = t.send("POST", "/api/v1/signup", &headers(t, &at, &[("content-type", "application/json")]), data.as_bytes())?;
    ensure!(res.status() == 200, "signup {email}: {} {}", res.status(), body(&res));
    Ok(())
}

/// The confirmation link mailed to `to` (sent after the response on
/// Workers, so polled), as a path.
fn confirm_link(t: &Target, to: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let link = t.mail.requests().iter().rev().find_map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
            (v["to"][0] == to).then(|| v["text"].as_str()?.split_whitespace().find(|w| w.contains("/confirm?t=")).map(str::to_owned)).flatten()
        });
        if let Some(l) = link {
            return Ok(l.trim_start_matches(PUBLIC_BASE).to_owned());
        }
        ensure!(Instant::now() < deadline, "no confirmation mail for {to}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn one_click(t: &Target, artist: &str, fan: &str) -> Result<(), String> {
    let token = TokenKeys::parse(TOKEN_KEY_NEW).map_err(|e| e.to_string())?.sign(Purpose::Unsubscribe, 0, fan, artist).map_err(|e| e.to_string())?;
    let res = t.send("POST", &format!("/u/{token}"), &[("content-type", "application/x-www-form-urlencoded")], b"List-Unsubscribe=One-Click")?;
    ensure!(res.status() == 200, "one-click unsubscribe: {} {}", res.status(), body(&res));
    Ok(())
}

fn link(t: &Target, token: &str, slug: &str) -> Result<(), String> {
    let def = format!(
        r#"{{"slug":"{slug}","title":"Aggregates","targets":[{{"platform":"spotify","url":"https://open.spotify.com/album/agg"}},{{"platform":"apple-music","url":"https://music.apple.com/album/agg"}}]}}"#
    );
    let auth = format!("Bearer {token}");
    let res = t.send("POST", "/api/v1/app/links", &[("content-type", "application/json"), ("authorization", &auth)], def.as_bytes())?;
    ensure!(matches!(res.status().as_u16(), 201 | 409), "create {slug}: {} {}", res.status(), body(&res));
    Ok(())
}

fn visit(t: &Target, at: Place, path: &str, ua: &str, referer: Option<&str>) -> Result<(), String> {
    let mut extra = vec![("user-agent", ua)];
    if let Some(r) = referer {
        extra.push(("referer", r));
    }
    let res = t.send("GET", path, &headers(t, &at, &extra), b"")?;
    ensure!(matches!(res.status().as_u16(), 200 | 302), "{path}: {}", res.status());
    Ok(())
}

/// Counter rows land after the response: waits until the slugs' counts
/// add up to `want` (or 5 s pass) and returns the total.
fn counted(t: &Target, slugs: &[&str], want: i64) -> Result<i64, String> {
    let sql = "SELECT coalesce(sum(s.count), 0) FROM link_stats s JOIN links l ON l.id = s.link_id WHERE l.slug IN (SELECT value FROM json_each(?1))";
    let list = serde_json::to_string(slugs).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = t.db()?.query_row(sql, [&list], |r| r.get(0)).map_err(|e| e.to_string())?;
        if n >= want || Instant::now() > deadline {
            return Ok(n);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn n(t: &Target, sql: &str, args: &[&str]) -> Result<i64, String> {
    t.db()?.query_row(sql, rusqlite::params_from_iter(args), |r| r.get(0)).map_err(|e| format!("{sql}: {e}"))
}

fn equal_a_recount(t: &Target) -> Result<(), String> {
    // Signups: artist one's single opt-in page from three countries and
    // from nowhere known, its double opt-in page, artist two's page.
    let pages = [
        (GB, "e2e", "agg-a@example.com"),
        (GB, "e2e", "agg-b@example.com"),
        (SE, "e2e", "agg-c@example.com"),
        (US, "e2e", "agg-d@example.com"),
        (nowhere("198.51.100.160"), "e2e", "agg-e@example.com"),
        (SE, "e2e-doi", "agg-f@example.com"),
        (nowhere("198.51.100.161"), "e2e-doi", "agg-g@example.com"),
        (nowhere("198.51.100.161"), "e2e-doi", "agg-h@example.com"),
        (GB, "e2e-other", "agg-i@example.com"),
        (US, "e2e-other", "agg-j@example.com"),
        (nowhere("198.51.100.162"), "e2e-other", "agg-k@example.com"),
    ];
    for (at, page, email) in pages {
        signup(t, at, page, email)?;
    }
    // Two of three confirm, one of them twice.
    for (email, times) in [("agg-f@example.com", 2), ("agg-g@example.com", 1)] {
        let path = confirm_link(t, email)?;
        for _ in 0..times {
            let res = t.send("POST", &path, &[("content-type", "application/x-www-form-urlencoded")], b"")?;
            ensure!(res.status() == 200, "confirm {email}: {} {}", res.status(), body(&res));
        }
    }
    // One-click unsubscribes on both sides, and a bounce.
    one_click(t, ONE, &fan_id(t, ONE, "agg-b@example.com")?)?;
    one_click(t, TWO, &fan_id(t, TWO, "agg-j@example.com")?)?;
    crate::hooks_in::report(t, "email.bounced", "agg-c@example.com", "Permanent", ONE, &fan_id(t, ONE, "agg-c@example.com")?)?;

    // Links: views and clicks of each artist's own link, then 52 referrer
    // hosts on artist one's (50 keep their names, the rest are '(other)').
    link(t, TOKEN_ONE, "e2e-agg-one")?;
    link(t, TOKEN_TWO, "e2e-agg-two")?;
    let before = counted(t, &["e2e-agg-one", "e2e-agg-two"], 0)?;
    let visits = [
        (SE, "/l/e2e-agg-one", IPHONE, None),
        (SE, "/l/e2e-agg-one/spotify", IPHONE, Some("https://l.instagram.com/")),
        (GB, "/l/e2e-agg-one/apple-music", DESKTOP, Some("https://www.example.org/post")),
        (nowhere("198.51.100.163"), "/l/e2e-agg-one/spotify", ANDROID, None),
        (US, "/l/e2e-agg-two/spotify", ANDROID, Some("https://news.example/")),
        (US, "/l/e2e-agg-two", DESKTOP, None),
    ];
    for (at, path, ua, referer) in visits {
        visit(t, at, path, ua, referer)?;
    }
    for i in 0..52 {
        visit(t, GB, "/l/e2e-agg-one/spotify", IPHONE, Some(&format!("https://agg{i}.example/")))?;
    }
    let want = before + visits.len() as i64 + 52;
    let got = counted(t, &["e2e-agg-one", "e2e-agg-two"], want)?;
    ensure!(got == want, "{got} visits counted of {want}");

    // Every table against its recount, leaving out workspaces deleted
    // and not yet purged (their counts go at once, their fans later).
    let db = t.db()?;
    let deleted: Vec<String> =
        db.prepare("SELECT artist_id FROM workspace_deletions").and_then(|mut s| s.query_map([], |r| r.get(0))?.collect()).map_err(|e| e.to_string())?;
    recount::check_but(&db, &deleted)?;
    drop(db);
    for (table, _, _) in recount::TABLES {
        for artist in [ONE, TWO] {
            ensure!(recount::of_artist(&t.db()?, table, artist)? > 0, "{table} has no row of {artist}");
        }
    }
    // What this case did, seen in the rows the dashboard reads.
    let signups = "SELECT coalesce(sum(n), 0) FROM agg_consent_daily WHERE artist_id = ?1 AND page_id = ?2 AND kind IN ('subscribe', 'request')";
    ensure!(n(t, signups, &[TWO, "e2e-other-page"])? >= 3, "artist two's signups");
    let other = "SELECT coalesce(sum(a.n), 0) FROM agg_link_daily a JOIN links l ON l.id = a.link_id \
                 WHERE l.slug = 'e2e-agg-one' AND a.dim = 'referrer' AND a.value = '(other)'";
    // 54 hosts on that link and day: the 52, Instagram and example.org.
    ensure!(n(t, other, &[])? == 4, "referrers past the cap: {}", n(t, other, &[])?);
    let two = "SELECT coalesce(sum(n), 0) FROM agg_link_artist_daily WHERE artist_id = ?1";
    let two_stats = "SELECT coalesce(sum(count), 0) FROM link_stats WHERE artist_id = ?1";
    ensure!(n(t, two, &[TWO])? == n(t, two_stats, &[TWO])?, "artist two's link totals");
    Ok(())
}
