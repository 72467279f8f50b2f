//! Cases for smart links: the artists' API, the landing page per device,
//! remembered choice and country, tracked redirects and their counters, and
//! the read path's fallback from KV to the database.
//!
//! The fan's country comes from `request.cf` on Workers (set per request
//! with the `mf-cf-blob` override; the edge's `CF-IPCountry` header, when
//! sent, comes first) and from the MaxMind test database by
//! client address on Spin. Counters are written after the response
//! (`waitUntil` on Workers), so cases poll the database for them. Every
//! case uses its own referrer host so their counters never mix.

use std::time::{Duration, Instant};

use crate::cases::{body, Case, Res};
use crate::ensure;
use crate::runtime::{Kind, Target};

pub const ALL: &[(&str, Case)] = &[
    ("links_api_creates_and_lists", links_api_creates_and_lists),
    ("links_landing_per_device", links_landing_per_device),
    ("links_remembered_choice_first", links_remembered_choice_first),
    ("links_country_override_and_hiding", links_country_override_and_hiding),
    ("links_country_from_edge_header", links_country_from_edge_header),
    ("links_tracked_redirect_counted", links_tracked_redirect_counted),
    ("links_analytics_after_n_clicks", links_analytics_after_n_clicks),
    ("links_redirects_in_a_row", links_redirects_in_a_row),
    ("links_bots_not_counted", links_bots_not_counted),
    ("links_unknown_slug_404", links_unknown_slug_404),
    ("links_api_rejects_invalid", links_api_rejects_invalid),
    ("links_kv_miss_reads_database", links_kv_miss_reads_database),
    ("links_store_no_user_agent_or_cookie", links_store_no_user_agent_or_cookie),
];

const TOKEN: &str = "sd_e2e_links_token_artist_one_3f9a";
const OTHER_TOKEN: &str = "sd_e2e_links_token_artist_two_7c1d";
const SLUG: &str = "e2e-night";
const LINK: &str = r#"{
  "slug": "e2e-night", "title": "Night Drive", "artwork_url": "https://img.e2e.example/night.jpg",
  "targets": [
    {"platform": "spotify", "url": "https://open.spotify.com/album/e2e"},
    {"platform": "apple-music", "url": "https://music.apple.com/us/album/e2e/1",
     "countries": {"SE": "https://music.apple.com/se/album/e2e/1"}},
    {"platform": "youtube-music", "url": "https://music.youtube.com/playlist?list=e2e"},
    {"platform": "tidal", "url": "https://tidal.com/album/e2e", "hidden_in": ["SE"]},
    {"platform": "bandcamp", "url": "https://e2e.bandcamp.com/album/night"},
    {"platform": "other", "label": "Band shop", "url": "https://shop.e2e.example/night"}
  ]
}"#;

/// Appended to every user agent these cases send, so the last case can
/// prove none was stored.
const UA_MARK: &str = "E2eLinksBrowser/1.0";
const COOKIE_SECRET: &str = "e2e-cookie-secret-4711";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const CLIENT: &str = "198.51.100.41";

/// A fan: where they are, what they use, what they remember.
struct Fan<'a> {
    t: &'a Target,
    country: Option<&'static str>,
    ua: String,
    cookie: Option<String>,
}

fn fan<'a>(t: &'a Target, country: Option<&'static str>, ua: &str) -> Fan<'a> {
    let ua = if ua.is_empty() || !ua.starts_with("Mozilla") { ua.to_owned() } else { format!("{ua} {UA_MARK}") };
    Fan { t, country, ua, cookie: None }
}

impl Fan<'_> {
    fn send(&self, method: &str, path: &str) -> Result<Res, String> {
        // Spin locates the fan by address (MaxMind's test database);
        // workerd takes the edge's data from the override header.
        let ip = match (self.t.kind, self.country) {
            (Kind::Spin, Some("SE")) => "89.160.20.128",
            (Kind::Spin, Some("GB")) => "81.2.69.142",
            _ => CLIENT,
        };
        let cf = match self.country {
            Some(c) => format!(r#"{{"country":"{c}","clientAcceptEncoding":""}}"#),
            None => r#"{"clientAcceptEncoding":""}"#.to_owned(),
        };
        let mut headers = vec![(self.t.ip_header(), ip), ("user-agent", self.ua.as_str())];
        if self.t.kind == Kind::Workers {
            headers.push(("mf-cf-blob", &cf));
        }
        if let Some(c) = &self.cookie {
            headers.push(("cookie", c));
        }
        self.t.send(method, path, &headers, b"")
    }

    fn get(&self, path: &str) -> Result<Res, String> {
        self.send("GET", path)
    }
}

fn header<'a>(res: &'a Res, name: &str) -> &'a str {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn api(t: &Target, method: &str, path: &str, token: Option<&str>, data: &str) -> Result<Res, String> {
    let auth = token.map(|tk| format!("Bearer {tk}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    t.send(method, path, &headers, data.as_bytes())
}

/// Creates the shared link unless an earlier case did.
fn ensure_link(t: &Target) -> Result<(), String> {
    let res = api(t, "POST", "/api/v1/app/links", Some(TOKEN), LINK)?;
    ensure!(matches!(res.status().as_u16(), 201 | 409), "create {SLUG}: {} {}", res.status(), body(&res));
    Ok(())
}

/// The platform keys of the landing page's buttons, in order.
fn buttons(html: &str) -> Vec<String> {
    // The remembered service's button carries a class before its href.
    let prefix = format!(" href=\"/l/{SLUG}/");
    html.split(prefix.as_str()).skip(1).map(|s| s.split(['?', '"']).next().unwrap_or("").to_owned()).collect()
}

/// Counter total for this link and referrer, polled until it reaches
/// `want` (deferred writes land after the response) or 3 s pass.
fn clicks(t: &Target, referrer: &str, extra: &str, want: i64) -> Result<i64, String> {
    let sql = format!("SELECT coalesce(sum(s.count), 0) FROM link_stats s JOIN links l ON l.id = s.link_id WHERE l.slug = ?1 AND s.referrer = ?2 {extra}");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let n: i64 = t.db()?.query_row(&sql, [SLUG, referrer], |r| r.get(0)).map_err(|e| format!("{sql}: {e}"))?;
        if n >= want || Instant::now() > deadline {
            return Ok(n);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn links_api_creates_and_lists(t: &Target) -> Result<(), String> {
    let res = api(t, "POST", "/api/v1/app/links", Some(TOKEN), LINK)?;
    ensure!(res.status() == 201, "create: {} {}", res.status(), body(&res));
    ensure!(header(&res, "location") == "/api/v1/app/links/e2e-night", "Location {:?}", header(&res, "location"));
    let v: serde_json::Value = serde_json::from_str(&body(&res)).map_err(|e| e.to_string())?;
    ensure!(v["path"] == "/l/e2e-night" && v["artist"] == "E2E Band", "created: {v}");
    let got = api(t, "GET", "/api/v1/app/links/e2e-night", Some(TOKEN), "")?;
    ensure!(got.status() == 200 && body(&got) == body(&res), "GET differs: {}", body(&got));
    let list = api(t, "GET", "/api/v1/app/links", Some(TOKEN), "")?;
    let lv: serde_json::Value = serde_json::from_str(&body(&list)).map_err(|e| e.to_string())?;
    let slugs: Vec<&str> = lv["links"].as_array().map(|a| a.iter().filter_map(|l| l["slug"].as_str()).collect()).unwrap_or_default();
    ensure!(slugs.contains(&"e2e-night") && slugs.contains(&"e2e-db-only"), "list: {slugs:?}");
    let stored: String = t.db()?.query_row("SELECT definition FROM links WHERE slug = 'e2e-night'", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(stored.contains("https://music.apple.com/se/album/e2e/1"), "stored definition: {stored}");
    Ok(())
}

fn links_landing_per_device(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    let cases: &[(&str, &[&str])] = &[
        (IPHONE, &["apple-music", "spotify", "youtube-music"]),
        (ANDROID, &["youtube-music", "spotify", "apple-music"]),
        (DESKTOP, &["spotify", "apple-music", "youtube-music"]),
    ];
    for (ua, first) in cases {
        let res = fan(t, Some("GB"), ua).get("/l/e2e-night?ref=landing.e2e.example")?;
        ensure!(res.status() == 200, "{ua:.20}: {}", res.status());
        let html = body(&res);
        let order = buttons(&html);
        ensure!(order.len() == 6 && order[..3] == first[..], "{ua:.20}: {order:?}");
        ensure!(html.contains("og:title") && html.contains("https://img.e2e.example/night.jpg"), "no Open Graph tags");
        ensure!(header(&res, "cache-control") == "private, max-age=60", "Cache-Control {:?}", header(&res, "cache-control"));
    }
    let head = fan(t, Some("GB"), DESKTOP).send("HEAD", "/l/e2e-night")?;
    ensure!(head.status() == 200 && head.body().is_empty(), "HEAD: {} with {} bytes", head.status(), head.body().len());
    Ok(())
}

fn links_remembered_choice_first(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    let mut f = fan(t, Some("GB"), IPHONE);
    let res = f.get("/l/e2e-night/bandcamp?ref=choice.e2e.example")?;
    ensure!(res.status() == 302, "click: {}", res.status());
    let cookie = header(&res, "set-cookie");
    ensure!(cookie.starts_with("sd_svc=bandcamp;") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "Set-Cookie {cookie:?}");
    // The browser sends back what it was given; the iPhone's Apple Music
    // comes second.
    f.cookie = Some(format!("theme=dark; sd_svc=bandcamp; session={COOKIE_SECRET}"));
    let order = buttons(&body(&f.get("/l/e2e-night")?));
    ensure!(order.first().map(String::as_str) == Some("bandcamp") && order.get(1).map(String::as_str) == Some("apple-music"), "{order:?}");
    Ok(())
}

fn links_country_override_and_hiding(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    let cases: &[(Option<&'static str>, bool, &str)] = &[
        (Some("SE"), false, "https://music.apple.com/se/album/e2e/1"),
        (Some("GB"), true, "https://music.apple.com/us/album/e2e/1"),
        (None, true, "https://music.apple.com/us/album/e2e/1"),
    ];
    for (country, tidal, apple) in cases {
        let f = fan(t, *country, DESKTOP);
        let order = buttons(&body(&f.get("/l/e2e-night?ref=country.e2e.example")?));
        ensure!(order.iter().any(|b| b == "tidal") == *tidal, "{country:?}: {order:?}");
        let res = f.get("/l/e2e-night/apple-music?ref=country.e2e.example")?;
        ensure!(res.status() == 302 && header(&res, "location") == *apple, "{country:?}: apple → {} {:?}", res.status(), header(&res, "location"));
        let res = f.get("/l/e2e-night/tidal?utm_source=e2e&ref=country.e2e.example")?;
        let expected = if *tidal { "https://tidal.com/album/e2e" } else { "/l/e2e-night?utm_source=e2e" };
        ensure!(header(&res, "location") == expected, "{country:?}: tidal → {:?}", header(&res, "location"));
    }
    let se = clicks(t, "country.e2e.example", "AND s.kind = 'click' AND s.country = 'SE'", 1)?;
    ensure!(se == 1, "{se} counted clicks from SE (the hidden service must not count)");
    Ok(())
}

/// Workers takes the country from the edge's `CF-IPCountry` header when
/// there is one (cheaper than `request.cf`); Spin never trusts it, as there
/// a client could set it.
fn links_country_from_edge_header(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    let ip = if t.kind == Kind::Spin { "81.2.69.142" } else { CLIENT };
    let headers = [(t.ip_header(), ip), ("user-agent", DESKTOP), ("cf-ipcountry", "SE"), ("mf-cf-blob", r#"{"country":"GB","clientAcceptEncoding":""}"#)];
    let res = t.send("GET", "/l/e2e-night/apple-music?ref=edge-header.e2e.example", &headers, b"")?;
    let expected = match t.kind {
        Kind::Workers => "https://music.apple.com/se/album/e2e/1",
        Kind::Spin => "https://music.apple.com/us/album/e2e/1",
    };
    ensure!(res.status() == 302 && header(&res, "location") == expected, "apple → {} {:?}", res.status(), header(&res, "location"));
    Ok(())
}

fn links_tracked_redirect_counted(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    let res = fan(t, Some("GB"), IPHONE).get("/l/e2e-night/spotify?utm_source=e2e&utm_campaign=night%20drive&ref=tracked.e2e.example")?;
    ensure!(res.status() == 302, "status {}", res.status());
    let location = header(&res, "location");
    ensure!(location == "https://open.spotify.com/album/e2e?utm_source=e2e&utm_campaign=night%20drive", "Location {location:?}");
    ensure!(header(&res, "cache-control") == "no-store", "Cache-Control {:?}", header(&res, "cache-control"));
    let n = clicks(t, "tracked.e2e.example", "", 1)?;
    ensure!(n == 1, "{n} clicks counted");
    let today: String = t.db()?.query_row("SELECT date('now')", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    let row: (String, String, String, String, String) = t
        .db()?
        .query_row("SELECT kind, platform, country, device, day FROM link_stats WHERE referrer = 'tracked.e2e.example'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .map_err(|e| e.to_string())?;
    let expected = ("click".to_owned(), "spotify".to_owned(), "GB".to_owned(), "ios".to_owned(), today);
    ensure!(row == expected, "counter row {row:?}, expected {expected:?}");
    Ok(())
}

fn links_analytics_after_n_clicks(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    const N: i64 = 7;
    let android_se = fan(t, Some("SE"), ANDROID);
    let desktop_gb = fan(t, Some("GB"), DESKTOP);
    for _ in 0..N {
        let res = android_se.get("/l/e2e-night/youtube-music?ref=n-clicks.e2e.example")?;
        ensure!(res.status() == 302, "click: {}", res.status());
    }
    for _ in 0..2 {
        desktop_gb.get("/l/e2e-night/youtube-music?ref=n-clicks.e2e.example")?;
        desktop_gb.get("/l/e2e-night?ref=n-clicks.e2e.example")?;
    }
    let total = clicks(t, "n-clicks.e2e.example", "", N + 4)?;
    ensure!(total == N + 4, "{total} counted, expected {}", N + 4);
    let conn = t.db()?;
    let mut st = conn
        .prepare("SELECT kind, platform, country, device, count FROM link_stats WHERE referrer = 'n-clicks.e2e.example' ORDER BY kind, country")
        .map_err(|e| e.to_string())?;
    let rows: Vec<(String, String, String, String, i64)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).and_then(Iterator::collect).map_err(|e| e.to_string())?;
    let s = |v: &str| v.to_owned();
    let expected = vec![
        (s("click"), s("youtube-music"), s("GB"), s("desktop"), 2),
        (s("click"), s("youtube-music"), s("SE"), s("android"), N),
        (s("view"), s(""), s("GB"), s("desktop"), 2),
    ];
    ensure!(rows == expected, "rows {rows:?}, expected {expected:?}");
    Ok(())
}

/// Redirects back to back, each right after one with the same or other
/// headers (the Workers adapter reuses the last response's headers when
/// they repeat): every answer must carry its own.
fn links_redirects_in_a_row(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    let f = fan(t, Some("GB"), DESKTOP);
    let spotify = ("spotify", "https://open.spotify.com/album/e2e", "sd_svc=spotify;");
    let apple = ("apple-music", "https://music.apple.com/us/album/e2e/1", "sd_svc=apple-music;");
    for (method, (key, location, cookie)) in [("GET", spotify), ("GET", spotify), ("GET", apple), ("HEAD", apple), ("GET", apple), ("GET", spotify)] {
        let res = f.send(method, &format!("/l/e2e-night/{key}?ref=in-a-row.e2e.example"))?;
        let set_cookie = header(&res, "set-cookie");
        // HEAD is answered the same way but neither counted nor remembered.
        let cookie_ok = if method == "HEAD" { set_cookie.is_empty() } else { set_cookie.starts_with(cookie) };
        ensure!(
            res.status() == 302 && header(&res, "location") == location && cookie_ok,
            "{method} {key}: {} {:?} {set_cookie:?}",
            res.status(),
            header(&res, "location")
        );
    }
    let res = f.get("/l/no-such-e2e-link/spotify")?;
    ensure!(res.status() == 404 && header(&res, "location").is_empty(), "unknown slug after redirects: {}", res.status());
    Ok(())
}

fn links_bots_not_counted(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    let bots = [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "WhatsApp/2.23.20.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ];
    for ua in bots {
        let f = fan(t, Some("GB"), ua);
        let res = f.get("/l/e2e-night?ref=bots.e2e.example")?;
        let html = body(&res);
        ensure!(
            res.status() == 200 && html.contains("property=\"og:title\" content=\"Night Drive\"") && html.contains("og:image"),
            "{ua}: page without Open Graph tags"
        );
        let click = f.get("/l/e2e-night/spotify?ref=bots.e2e.example")?;
        ensure!(click.status() == 302 && header(&click, "set-cookie").is_empty(), "{ua}: click {}", click.status());
    }
    // A person after the bots: once their click is counted, the bots'
    // deferred work (had there been any) has had its turn too.
    fan(t, Some("GB"), DESKTOP).get("/l/e2e-night/bandcamp?ref=bots.e2e.example")?;
    ensure!(clicks(t, "bots.e2e.example", "AND s.platform = 'bandcamp'", 1)? == 1, "the person's click was not counted");
    std::thread::sleep(Duration::from_millis(300));
    let counted = clicks(t, "bots.e2e.example", "AND s.platform <> 'bandcamp'", 0)?;
    ensure!(counted == 0, "{counted} bot requests counted");
    Ok(())
}

fn links_unknown_slug_404(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    let f = fan(t, Some("GB"), DESKTOP);
    for path in ["/l/no-such-e2e-link", "/l/no-such-e2e-link/spotify", "/l/e2e-night/napster", "/l/NOPE"] {
        let res = f.get(path)?;
        ensure!(res.status() == 404, "{path}: {}", res.status());
        ensure!(body(&res).contains("Link not found"), "{path}: not the 404 page");
    }
    let head = f.send("HEAD", "/l/no-such-e2e-link")?;
    ensure!(head.status() == 404, "HEAD: {}", head.status());
    Ok(())
}

fn links_api_rejects_invalid(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    let target = |platform: &str, url: &str| format!(r#"{{"slug":"e2e-bad","title":"Bad","targets":[{{"platform":"{platform}","url":"{url}"}}]}}"#);
    // (token, body, status, field, words the message must contain)
    type Rejection<'a> = (Option<&'a str>, String, u16, Option<&'a str>, &'a str);
    let cases: Vec<Rejection> = vec![
        (Some(TOKEN), LINK.replace("\"e2e-night\"", "\"E2E Night!\""), 422, Some("slug"), "lower-case letters"),
        (Some(TOKEN), LINK.replace("\"e2e-night\"", "\"ab\""), 422, Some("slug"), "3 to 64 characters"),
        (Some(TOKEN), target("spotify", "https://spotify.evil.example/album/x"), 422, Some("targets"), "must be on spotify.com"),
        (Some(TOKEN), target("spotify", "http://open.spotify.com/album/x"), 422, Some("targets"), "https://"),
        (Some(TOKEN), target("apple-music", "https://user:pass@music.apple.com/x"), 422, Some("targets"), "user name or password"),
        (Some(TOKEN), target("napster", "https://napster.com/x"), 422, Some("targets"), "not one we know"),
        (Some(TOKEN), "{\"slug\": \"e2e-bad\",".to_owned(), 400, None, "not valid JSON"),
        (Some(TOKEN), LINK.to_owned(), 409, Some("slug"), "already taken"),
        (Some(OTHER_TOKEN), LINK.to_owned(), 409, Some("slug"), "already taken"),
        (None, target("spotify", "https://open.spotify.com/x"), 401, None, "API token"),
        (Some("sd_not_a_real_token"), target("spotify", "https://open.spotify.com/x"), 401, None, "not valid"),
    ];
    for (token, data, status, field, words) in &cases {
        let res = api(t, "POST", "/api/v1/app/links", *token, data)?;
        let text = body(&res);
        ensure!(res.status() == *status, "{data:.60}: {} {text:.200}", res.status());
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{status}: not JSON ({e}): {text:.200}"))?;
        let message = v["error"]["message"].as_str().unwrap_or("");
        ensure!(message.contains(words), "{status}: message {message:?} lacks {words:?}");
        if let Some(f) = field {
            ensure!(v["error"]["field"] == *f, "{status}: field {}", v["error"]["field"]);
        }
        if *status == 401 {
            ensure!(header(&res, "www-authenticate").starts_with("Bearer"), "401 without WWW-Authenticate");
        }
    }
    // Another artist's link is invisible, not forbidden.
    let theirs = api(t, "GET", "/api/v1/app/links/e2e-night", Some(OTHER_TOKEN), "")?;
    let missing = api(t, "GET", "/api/v1/app/links/e2e-missing", Some(OTHER_TOKEN), "")?;
    ensure!(theirs.status() == 404 && body(&theirs) == body(&missing), "other artist: {} {}", theirs.status(), body(&theirs));
    let put = api(t, "PUT", "/api/v1/app/links/e2e-night", Some(OTHER_TOKEN), &LINK.replace("Night Drive", "Hijacked"))?;
    ensure!(put.status() == 404, "other artist PUT: {}", put.status());
    let bad: i64 = t
        .db()?
        .query_row("SELECT count(*) FROM links WHERE slug IN ('e2e-bad', 'ab') OR definition LIKE '%Hijacked%'", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    ensure!(bad == 0, "{bad} rejected links stored");
    Ok(())
}

fn links_kv_miss_reads_database(t: &Target) -> Result<(), String> {
    // e2e-db-only was inserted by fixtures.sql straight into the database:
    // KV never had it, so this first read must come from the database.
    let f = fan(t, Some("GB"), DESKTOP);
    let res = f.get("/l/e2e-db-only")?;
    ensure!(res.status() == 200 && body(&res).contains("Only in the database"), "landing: {} {:.200}", res.status(), body(&res));
    let click = f.get("/l/e2e-db-only/deezer")?;
    ensure!(header(&click, "location") == "https://www.deezer.com/album/302127", "Location {:?}", header(&click, "location"));
    // …and the read refilled KV: the key is now in the runtime's KV files.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if state_contains(t, b"link:e2e-db-only") {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "KV was not refilled (no link:e2e-db-only under {})", t.state.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn links_store_no_user_agent_or_cookie(t: &Target) -> Result<(), String> {
    for needle in [UA_MARK, COOKIE_SECRET, "Pixel 8", "iPhone OS"] {
        ensure!(!state_contains(t, needle.as_bytes()), "{needle:?} was stored under {}", t.state.display());
    }
    Ok(())
}

/// Whether any file the runtime persisted holds `needle`.
fn state_contains(t: &Target, needle: &[u8]) -> bool {
    fn walk(dir: &std::path::Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
            let p = e.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Our own inputs to the runtime and its logs are not storage.
            if matches!(name, "spin.toml" | "wrangler.log" | "spin-host.log" | "config") {
                return false;
            }
            if p.is_dir() {
                walk(&p, needle)
            } else {
                std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            }
        })
    }
    walk(&t.state, needle)
}
