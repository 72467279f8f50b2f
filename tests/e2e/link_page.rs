//! Cases for the smart-link page worth sharing (issue #17): app links for
//! in-app browsers by user agent (each app × iOS / Android) against plain
//! browsers, the artist's colours and artwork refused when unreadable or
//! unsafe, the themed page's policy, and the QR code.

use std::time::{Duration, Instant};

use crate::cases::{body, Case, Res};
use crate::ensure;
use crate::runtime::{Kind, Target};

pub const ALL: &[(&str, Case)] = &[
    ("link_page_app_links_by_user_agent", link_page_app_links_by_user_agent),
    ("link_page_bad_theme_or_artwork_refused", link_page_bad_theme_or_artwork_refused),
    ("link_page_theme_policy_and_qr", link_page_theme_policy_and_qr),
];

const TOKEN: &str = "sd_e2e_links_token_artist_one_3f9a";
const SLUG: &str = "e2e-apps";
const LINK: &str = r##"{
  "slug": "e2e-apps", "title": "Open In App", "artwork_url": "https://img.e2e.example/apps.jpg",
  "theme": {"background": "#1e1b4b", "button": "#facc15"},
  "targets": [
    {"platform": "spotify", "url": "https://open.spotify.com/album/4aawyAB9vmqN3uQ7FjRGTy"},
    {"platform": "apple-music", "url": "https://music.apple.com/us/album/e2e/1"},
    {"platform": "youtube-music", "url": "https://music.youtube.com/playlist?list=e2e"},
    {"platform": "bandcamp", "url": "https://e2e.bandcamp.com/album/apps"}
  ]
}"##;
const CLIENT: &str = "198.51.100.43";

const IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";
const ANDROID: &str =
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240605.024; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36";

/// Each app's mark in its in-app browser's user agent, as (app, iOS suffix,
/// Android suffix); README "Open in the app" lists the same.
const APPS: [(&str, &str, &str); 8] = [
    (
        "Instagram",
        "Instagram 334.0.4.32.98 (iPhone15,3; iOS 17_5; en_US; en; scale=3.00; 1290x2796; 609849962)",
        "Instagram 334.0.0.42.95 Android (34/14; 420dpi; 1080x2205; Google/google; Pixel 8; shiba; shiba; en_US; 609849920)",
    ),
    (
        "Facebook",
        "[FBAN/FBIOS;FBAV/468.0.0.53.109;FBBV/612404093;FBDV/iPhone15,3;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
        "[FB_IAB/FB4A;FBAV/468.0.0.54.109;]",
    ),
    (
        "Messenger",
        "[FBAN/MessengerForiOS;FBAV/460.0.0.40.109;FBBV/603496712;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
        "[FB_IAB/Orca-Android;FBAV/460.0.0.48.109;]",
    ),
    (
        "TikTok",
        "musical_ly_35.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US WKWebView/1 BytedanceWebview/d8a21c6",
        "trill_350104 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/trill app_version/35.1.4 BytedanceWebview/d8a21c6",
    ),
    ("Snapchat", "Snapchat/13.0.0.40 (like Safari/8618.2.12.10.7, panda)", "Snapchat/13.0.0.46 (Pixel 8; Android 14#e3fa0c40a#34; gzip)"),
    ("X", "Twitter for iPhone/10.50", "TwitterAndroid/10.50.0-release.0"),
    ("LinkedIn", "[LinkedInApp]/9.30.1234", "[LinkedInApp]/4.1.950"),
    (
        "Threads",
        "Barcelona 340.0.0.22.109 (iPhone15,3; iOS 17_5; en_US; en; scale=3.00; 1290x2796; 612346780)",
        "Barcelona 340.0.0.22.109 Android (34/14; 420dpi; 1080x2205; Google/google; Pixel 8; shiba; en_US; 612346700)",
    ),
];

const PLAIN: [(&str, &str); 6] = [
    ("Safari iOS", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"),
    ("Chrome Android", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36"),
    ("Firefox Android", "Mozilla/5.0 (Android 14; Mobile; rv:126.0) Gecko/126.0 Firefox/126.0"),
    (
        "Chrome iOS",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/125.0.6422.80 Mobile/15E148 Safari/604.1",
    ),
    ("Chrome desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36"),
    ("Firefox desktop", "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"),
];

const SPOTIFY_WEB: &str = "https://open.spotify.com/album/4aawyAB9vmqN3uQ7FjRGTy";
const APPLE_WEB: &str = "https://music.apple.com/us/album/e2e/1";
const YTM_WEB: &str = "https://music.youtube.com/playlist?list=e2e";
const BANDCAMP_WEB: &str = "https://e2e.bandcamp.com/album/apps";
const SPOTIFY_IOS: &str = "spotify:album:4aawyAB9vmqN3uQ7FjRGTy";
const SPOTIFY_ANDROID: &str = "intent://open.spotify.com/album/4aawyAB9vmqN3uQ7FjRGTy#Intent;scheme=https;package=com.spotify.music;\
     S.browser_fallback_url=https%3A%2F%2Fopen.spotify.com%2Falbum%2F4aawyAB9vmqN3uQ7FjRGTy;end";
const APPLE_ANDROID: &str = "intent://music.apple.com/us/album/e2e/1#Intent;scheme=https;package=com.apple.android.music;\
     S.browser_fallback_url=https%3A%2F%2Fmusic.apple.com%2Fus%2Falbum%2Fe2e%2F1;end";
const YTM_ANDROID: &str = "intent://music.youtube.com/playlist?list=e2e#Intent;scheme=https;package=com.google.android.apps.youtube.music;\
     S.browser_fallback_url=https%3A%2F%2Fmusic.youtube.com%2Fplaylist%3Flist%3De2e;end";

fn send(t: &Target, method: &str, path: &str, ua: &str) -> Result<Res, String> {
    let mut headers = vec![(t.ip_header(), CLIENT), ("user-agent", ua)];
    if t.kind == Kind::Workers {
        headers.push(("mf-cf-blob", r#"{"country":"GB","clientAcceptEncoding":""}"#));
    }
    t.send(method, path, &headers, b"")
}

fn header<'a>(res: &'a Res, name: &str) -> &'a str {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn api(t: &Target, method: &str, path: &str, data: &str) -> Result<Res, String> {
    t.send(method, path, &[("content-type", "application/json"), ("authorization", &format!("Bearer {TOKEN}"))], data.as_bytes())
}

fn ensure_link(t: &Target) -> Result<(), String> {
    let res = api(t, "POST", "/api/v1/app/links", LINK)?;
    ensure!(matches!(res.status().as_u16(), 201 | 409), "create {SLUG}: {} {}", res.status(), body(&res));
    Ok(())
}

/// Clicks on this link from `referrer`, polled until `want` arrive
/// (counters land after the response) or 3 s pass.
fn counted(t: &Target, referrer: &str, want: i64) -> Result<(i64, i64), String> {
    let sql = "SELECT coalesce(sum(s.count), 0), count(DISTINCT s.platform) FROM link_stats s JOIN links l ON l.id = s.link_id \
               WHERE l.slug = ?1 AND s.referrer = ?2 AND s.kind = 'click'";
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let n: (i64, i64) = t.db()?.query_row(sql, [SLUG, referrer], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| format!("{sql}: {e}"))?;
        if n.0 >= want || Instant::now() > deadline {
            return Ok(n);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where each service's button sends `ua`: (spotify, apple-music, youtube-music, bandcamp).
fn locations(t: &Target, ua: &str, referrer: &str) -> Result<[String; 4], String> {
    let mut out: [String; 4] = Default::default();
    for (i, p) in ["spotify", "apple-music", "youtube-music", "bandcamp"].into_iter().enumerate() {
        let res = send(t, "GET", &format!("/l/{SLUG}/{p}?ref={referrer}"), ua)?;
        ensure!(res.status() == 302 && header(&res, "cache-control") == "no-store", "{ua:.50} {p}: {}", res.status());
        ensure!(header(&res, "set-cookie").starts_with(&format!("sd_svc={p};")), "{ua:.50} {p}: remembered as {:?}", header(&res, "set-cookie"));
        out[i] = header(&res, "location").to_owned();
    }
    Ok(out)
}

fn link_page_app_links_by_user_agent(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    let referrer = "apps.e2e.example";
    let mut clicks = 0;
    for (app, ios, android) in APPS {
        let got = locations(t, &format!("{IOS} {ios}"), referrer)?;
        ensure!(got == [SPOTIFY_IOS, APPLE_WEB, YTM_WEB, BANDCAMP_WEB], "{app} on iOS: {got:?}");
        let got = locations(t, &format!("{ANDROID} {android}"), referrer)?;
        ensure!(got == [SPOTIFY_ANDROID, APPLE_ANDROID, YTM_ANDROID, BANDCAMP_WEB], "{app} on Android: {got:?}");
        clicks += 8;
    }
    for (browser, ua) in PLAIN {
        let got = locations(t, ua, referrer)?;
        ensure!(got == [SPOTIFY_WEB, APPLE_WEB, YTM_WEB, BANDCAMP_WEB], "{browser}: {got:?}");
        clicks += 4;
    }
    // Every click counted once, under the service tapped, app link or not.
    let (n, platforms) = counted(t, referrer, clicks)?;
    ensure!((n, platforms) == (clicks, 4), "counted {n} clicks on {platforms} services, sent {clicks}");
    // The page's own buttons stay the counted route, in an app too.
    let page = send(t, "GET", &format!("/l/{SLUG}"), &format!("{ANDROID} {}", APPS[0].2))?;
    let html = body(&page);
    ensure!(page.status() == 200 && html.contains(&format!("href=\"/l/{SLUG}/spotify\"")) && !html.contains("intent://"), "landing in app: {html:.300}");
    Ok(())
}

fn link_page_bad_theme_or_artwork_refused(t: &Target) -> Result<(), String> {
    let with =
        |field: &str| LINK.replace("\"e2e-apps\"", "\"e2e-bad-look\"").replace("\"theme\": {\"background\": \"#1e1b4b\", \"button\": \"#facc15\"}", field);
    let cases = [
        (with(r##""theme": {"background": "navy", "button": "#facc15"}"##), "theme.background", "#rrggbb"),
        (with(r##""theme": {"background": "#1e1b4b", "button": "#1e1b4"}"##), "theme.button", "#rrggbb"),
        (with(r##""theme": {"background": "#7a7a7a", "button": "#000000"}"##), "theme.background", "4.5:1"),
        (with(r##""theme": {"background": "#1e1b4b", "button": "#312e81"}"##), "theme.button", "3:1"),
        (
            LINK.replace("\"e2e-apps\"", "\"e2e-bad-look\"").replace("https://img.e2e.example/apps.jpg", "http://img.e2e.example/apps.jpg"),
            "artwork_url",
            "https://",
        ),
    ];
    for (data, field, words) in &cases {
        let res = api(t, "POST", "/api/v1/app/links", data)?;
        let text = body(&res);
        ensure!(res.status() == 422, "{field}: {} {text:.200}", res.status());
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text:.200}"))?;
        ensure!(v["error"]["field"] == *field, "{field}: field {}", v["error"]["field"]);
        let message = v["error"]["message"].as_str().unwrap_or("");
        ensure!(message.contains(words), "{field}: message {message:?} lacks {words:?}");
    }
    let stored: i64 = t.db()?.query_row("SELECT count(*) FROM links WHERE slug = 'e2e-bad-look'", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    ensure!(stored == 0, "a refused link was stored");
    Ok(())
}

fn link_page_theme_policy_and_qr(t: &Target) -> Result<(), String> {
    ensure_link(t)?;
    let page = send(t, "GET", &format!("/l/{SLUG}"), PLAIN[4].1)?;
    let html = body(&page);
    ensure!(page.status() == 200, "landing: {}", page.status());
    let styles: Vec<&str> = html.split("<style>").skip(1).map(|s| s.split("</style>").next().unwrap_or("")).collect();
    ensure!(styles.len() == 2 && styles[1].contains("background:#1e1b4b"), "style blocks: {styles:?}");
    let csp = header(&page, "content-security-policy");
    for css in &styles {
        let hash = format!("'sha256-{}'", b64_sha256(css));
        ensure!(csp.contains(&hash), "CSP {csp:?} lacks {hash}");
    }
    ensure!(!csp.contains("unsafe-inline") && !html.contains(" style=") && !html.contains("<script"), "policy weakened: {csp}");
    ensure!(html.contains(&format!("<meta property=\"og:url\" content=\"{}/l/{SLUG}\">", t.base)), "og:url is not the public URL {}: {html:.600}", t.base);
    ensure!(html.contains("<meta property=\"og:image\" content=\"https://img.e2e.example/apps.jpg\">"), "og:image missing");

    let qr = send(t, "GET", &format!("/l/{SLUG}/qr.svg"), PLAIN[4].1)?;
    let svg = body(&qr);
    ensure!(qr.status() == 200 && header(&qr, "content-type") == "image/svg+xml", "qr: {} {:?}", qr.status(), header(&qr, "content-type"));
    ensure!(header(&qr, "cache-control") == "public, max-age=86400", "qr Cache-Control {:?}", header(&qr, "cache-control"));
    ensure!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ") && svg.ends_with("</svg>"), "qr body: {svg:.120}");
    let missing = send(t, "GET", "/l/no-such-e2e-link/qr.svg", PLAIN[4].1)?;
    let missing_page = send(t, "GET", "/l/no-such-e2e-link", PLAIN[4].1)?;
    ensure!(missing.status() == 404 && body(&missing) == body(&missing_page), "unknown qr: {} {:.100}", missing.status(), body(&missing));
    Ok(())
}

/// Base64 of SHA-256, as a CSP hash source writes it (the suite has no
/// base64 crate; six lines do).
fn b64_sha256(s: &str) -> String {
    let hex = shared::crypto::sha256_hex(s.as_bytes());
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect();
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ABC[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}
