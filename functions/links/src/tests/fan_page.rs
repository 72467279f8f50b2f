//! The smart-link page worth sharing (issue #17): the artist's colours and
//! their contrast rules, service marks, the remembered service, app links
//! for in-app browsers, the page's size and policy, and the QR code.

use super::*;
use crate::icons;
use crate::link::Rgb;
use shared::qr;

/// Every service, artwork and a theme: the largest page there is.
const FULL: &str = r##"{
  "slug": "full-house", "title": "Full House", "artist": "Nova & the Tides", "artwork_url": "https://img.example.com/fh.jpg",
  "theme": {"background": "#1E1B4B", "button": "#facc15"},
  "targets": [
    {"platform": "spotify", "url": "https://open.spotify.com/intl-de/album/4aawyAB9vmqN3uQ7FjRGTy?si=abc"},
    {"platform": "apple-music", "url": "https://music.apple.com/us/album/full-house/1"},
    {"platform": "youtube-music", "url": "https://music.youtube.com/playlist?list=OLAK5"},
    {"platform": "youtube", "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"},
    {"platform": "deezer", "url": "https://www.deezer.com/album/1"},
    {"platform": "tidal", "url": "https://tidal.com/album/9"},
    {"platform": "amazon-music", "url": "https://music.amazon.com/albums/B0"},
    {"platform": "soundcloud", "url": "https://soundcloud.com/nova/full-house"},
    {"platform": "bandcamp", "url": "https://nova.bandcamp.com/album/full-house#tracks"},
    {"platform": "other", "label": "Signed vinyl", "url": "https://shop.example.com/fh"}
  ]
}"##;

fn b64_sha256(s: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s.as_bytes()))
}

/// The contents of every `<style>` block, in order.
fn style_blocks(html: &str) -> Vec<&str> {
    html.split("<style>").skip(1).map(|s| s.split("</style>").next().unwrap_or("")).collect()
}

fn with_theme(theme: &str) -> String {
    format!(r#"{{"slug":"themed","title":"T","theme":{theme},"targets":[{{"platform":"spotify","url":"https://open.spotify.com/album/x"}}]}}"#)
}

#[test]
fn theme_colours_and_artwork_urls_are_validated_with_the_field_named() {
    let t = setup();
    let cases: Vec<(String, u16, &str, &str)> = vec![
        (with_theme(r#"{"background":"red"}"#), 422, "theme.background", "#rrggbb"),
        (with_theme(r##"{"background":"#12345"}"##), 422, "theme.background", "#rrggbb"),
        (with_theme(r##"{"background":"#1234567"}"##), 422, "theme.background", "#rrggbb"),
        (with_theme(r##"{"background":"#12345g"}"##), 422, "theme.background", "#rrggbb"),
        (with_theme(r##"{"background":"#+12345"}"##), 422, "theme.background", "#rrggbb"),
        (with_theme(r##"{"button":"#fff"}"##), 422, "theme.button", "#rrggbb"),
        (with_theme(r#"{"button":"rgb(0,0,0)"}"#), 422, "theme.button", "#rrggbb"),
        (with_theme(r#"{"button":7}"#), 400, "theme.button", "must be a string"),
        (with_theme(r#""dark""#), 400, "theme", "must be an object"),
        (with_theme(r##"{"text":"#000000"}"##), 422, "theme", "Unknown field \"theme.text\""),
        // Mid grey: white text reaches 3.9:1 and near-black 4.4:1.
        (with_theme(r##"{"background":"#7a7a7a","button":"#000000"}"##), 422, "theme.background", "can't carry readable text"),
        (with_theme(r##"{"background":"#ffffff","button":"#7b7b7b"}"##), 422, "theme.button", "can't carry readable text"),
        // Readable each, but the buttons vanish into the page.
        (with_theme(r##"{"background":"#1e1b4b","button":"#312e81"}"##), 422, "theme.button", "too close to theme.background #1e1b4b (1.3:1)"),
        (with_theme(r##"{"background":"#222222"}"##), 422, "theme.button", "too close to theme.background #222222"),
        (
            r#"{"slug":"ok-slug","title":"T","artwork_url":"ftp://img.example.com/a.jpg","targets":[{"platform":"spotify","url":"https://open.spotify.com/album/x"}]}"#.to_owned(),
            422,
            "artwork_url",
            "https://",
        ),
        (
            r#"{"slug":"ok-slug","title":"T","artwork_url":"javascript:alert(1)","targets":[{"platform":"spotify","url":"https://open.spotify.com/album/x"}]}"#.to_owned(),
            422,
            "artwork_url",
            "https://",
        ),
        (
            r#"{"slug":"ok-slug","title":"T","artwork_url":"https://img.example.com/a b.jpg","targets":[{"platform":"spotify","url":"https://open.spotify.com/album/x"}]}"#.to_owned(),
            422,
            "artwork_url",
            "percent-encoded",
        ),
        (
            r#"{"slug":"ok-slug","title":"T","artwork_url":"https://127.0.0.1/a.jpg","targets":[{"platform":"spotify","url":"https://open.spotify.com/album/x"}]}"#.to_owned(),
            422,
            "artwork_url",
            "IP address",
        ),
    ];
    for (body, status, field, words) in &cases {
        let res = t.api(Method::POST, "/api/v1/app/links", TOKEN_A1, body);
        assert_eq!(res.status(), *status, "{body:.150}: {}", text(&res));
        let v = json_of(&res);
        let message = v["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(words), "{body:.150}: message {message:?} lacks {words:?}");
        assert_eq!(v["error"]["field"], *field, "{body:.150}");
    }
    assert_eq!(t.count("SELECT count(*) FROM links"), 0, "nothing refused was stored");
}

#[test]
fn a_theme_is_stored_in_one_spelling_and_survives_the_round_trip() {
    let t = setup();
    let v = json_of(&t.create(&with_theme(r##"{"background":" #1E1B4B ","button":"#FACC15"}"##)));
    assert_eq!(v["theme"], serde_json::json!({"background": "#1e1b4b", "button": "#facc15"}));
    // One key given: the other is the page's own light colour.
    let res = t.api(Method::PUT, "/api/v1/app/links/themed", TOKEN_A1, &with_theme(r##"{"background":"#fde68a"}"##));
    assert_eq!(json_of(&res)["theme"], serde_json::json!({"background": "#fde68a", "button": "#111111"}));
    // `{}` and null both mean no theme.
    for none in ["{}", "null"] {
        let res = t.api(Method::PUT, "/api/v1/app/links/themed", TOKEN_A1, &with_theme(none));
        assert_eq!(res.status(), 200, "{none}");
        assert!(json_of(&res).get("theme").is_none(), "{none}");
    }
    let def = Definition::from_json(&json::parse(FULL.as_bytes()).expect("json"), None).expect("valid");
    let again = Definition::from_json(&json::parse(def.to_json().as_bytes()).expect("json"), None).expect("valid");
    assert_eq!(def, again);
}

#[test]
fn contrast_follows_wcag() {
    let ratio = |a: &str, b: &str| Rgb::parse(a).expect("a").contrast_tenths(Rgb::parse(b).expect("b"));
    // Known ratios: 21:1, #767676 on white just passes AA (4.54), #777777 just fails (4.48).
    assert_eq!(ratio("#000000", "#ffffff"), 210);
    assert_eq!(ratio("#ffffff", "#767676"), 45);
    assert_eq!(ratio("#777777", "#ffffff"), 44);
    assert_eq!(ratio("#ff0000", "#ffffff"), 39);
    // The integer table agrees with the formula to the tenth everywhere on the grey ramp.
    for c in 0..=255u8 {
        let lin = |v: u8| {
            let s = f64::from(v) / 255.0;
            if s <= 0.04045 {
                s / 12.92
            } else {
                ((s + 0.055) / 1.055).powf(2.4)
            }
        };
        let exact = (1.05 / (lin(c) + 0.05) * 10.0).floor() as u64;
        let got = Rgb([c; 3]).contrast_tenths(Rgb::WHITE);
        assert!(got.abs_diff(exact) <= 1, "#{c:02x}: {got} vs {exact}");
    }
    assert_eq!(Rgb::parse("#1e1b4b").expect("rgb").text_on(), Rgb::WHITE);
    assert_eq!(Rgb::parse("#facc15").expect("rgb").text_on(), Rgb::INK);
}

#[test]
fn every_button_carries_its_service_mark_and_a_verb() {
    assert_eq!(icons::KEYS, Platform::ALL.map(Platform::key), "tools/icons.mjs lists the platforms in Platform::ALL order");
    let mut t = setup();
    t.create(FULL);
    t.client_at(Some(GB_IP));
    let html = text(&t.get("/l/full-house", &[("user-agent", DESKTOP)]));
    for p in Platform::ALL {
        let start = html.find(&format!("/l/full-house/{}\"", p.key())).unwrap_or_else(|| panic!("no {} button", p.key()));
        let button = &html[start..start + html[start..].find("</a>").unwrap_or(0)];
        assert!(button.contains(&format!("<path d=\"{}\"/>", icons::PATHS[p as usize])), "{}: no mark", p.key());
        assert!(button.contains("<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\">"), "{}", p.key());
        let verb = match p {
            Platform::Youtube => "Watch",
            Platform::Bandcamp => "Buy",
            Platform::Other => "Open",
            _ => "Play",
        };
        assert!(button.ends_with(&format!("<b>{verb}</b>")), "{}: {button:.80}", p.key());
    }
    // Distinct marks: a copy-paste slip in the generator would show here.
    let mut paths = icons::PATHS.to_vec();
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(paths.len(), Platform::ALL.len());
}

#[test]
fn the_remembered_service_comes_first_and_is_highlighted() {
    let mut t = setup();
    t.create(FULL);
    t.client_at(Some(GB_IP));
    for (cookie, first) in [("sd_svc=tidal", "tidal"), ("a=b; sd_svc=soundcloud", "soundcloud")] {
        let html = text(&t.get("/l/full-house", &[("user-agent", IPHONE), ("cookie", cookie)]));
        assert_eq!(buttons(&html)[0], first, "{cookie}");
        assert_eq!(html.matches("class=\"on\"").count(), 1, "{cookie}");
        assert!(html.contains(&format!("<a class=\"on\" href=\"/l/full-house/{first}\"")), "{cookie}");
        assert!(html.contains(", your last pick</i>"), "named for screen readers too");
    }
    let html = text(&t.get("/l/full-house", &[("user-agent", IPHONE)]));
    assert!(!html.contains("class=\"on\""), "no cookie, nothing highlighted");
}

#[test]
fn the_page_stays_small_and_its_policy_names_exactly_its_stylesheets() {
    let mut t = setup();
    t.create(FULL);
    t.create(NIGHT_DRIVE);
    t.client_at(Some(GB_IP));
    let res = t.get("/l/full-house?utm_source=instagram&utm_campaign=launch", &[("user-agent", IPHONE), ("host", "fans.example"), ("cookie", "sd_svc=deezer")]);
    let html = text(&res);
    assert!(html.len() < 15 * 1024, "HTML + CSS is {} bytes", html.len());
    let csp = header(&res, "content-security-policy");
    let blocks = style_blocks(&html);
    assert_eq!(blocks.len(), 2, "the page's sheet and the theme's");
    assert_eq!(blocks[0], crate::page::CSS);
    let style_src = csp.split("; ").find(|d| d.starts_with("style-src ")).unwrap_or("");
    let allowed: Vec<String> = blocks.iter().map(|b| format!("'sha256-{}'", b64_sha256(b))).collect();
    assert_eq!(style_src, format!("style-src {}", allowed.join(" ")), "{csp}");
    assert_eq!(csp.replace(&format!(" {}", allowed[1]), ""), crate::page::CSP, "otherwise the same policy");
    for banned in ["unsafe-inline", "script", "nonce"] {
        assert!(!csp.contains(banned), "{csp}");
    }
    assert!(!html.contains(" style=") && !html.contains("<script"), "no inline style attribute or script");
    assert!(blocks[1].contains("body{background:#1e1b4b;color:#ffffff}") && blocks[1].contains("nav a{background:#facc15;color:#111111}"), "{}", blocks[1]);
    // Sharing: the canonical URL and the artwork.
    for tag in [
        "<link rel=\"canonical\" href=\"https://fans.example/l/full-house\">",
        "<meta property=\"og:url\" content=\"https://fans.example/l/full-house\">",
        "<meta property=\"og:image\" content=\"https://img.example.com/fh.jpg\">",
        "<meta name=\"twitter:card\" content=\"summary_large_image\">",
        "<img class=\"art\" src=\"https://img.example.com/fh.jpg\" alt=\"Artwork of Full House\"",
    ] {
        assert!(html.contains(tag), "no {tag}");
    }
    // Unthemed: the one static policy, one sheet.
    let plain = t.get("/l/night-drive", &[("user-agent", IPHONE), ("host", "localhost:8787")]);
    assert_eq!(header(&plain, "content-security-policy"), crate::page::CSP);
    assert_eq!(style_blocks(&text(&plain)), [crate::page::CSS]);
    assert!(text(&plain).contains("<meta property=\"og:url\" content=\"http://localhost:8787/l/night-drive\">"), "http only on this machine");
    // The page is rendered once per cached link, for the first origin
    // seen; another host name still gets its own URLs, and the first one
    // its cached page, policy included.
    for host in ["other.example", "fans.example"] {
        let again = t.get("/l/full-house", &[("user-agent", DESKTOP), ("host", host)]);
        let html = text(&again);
        assert!(html.contains(&format!("<link rel=\"canonical\" href=\"https://{host}/l/full-house\">")), "{host}");
        assert_eq!(header(&again, "content-security-policy"), csp, "{host}");
        assert!(!html.contains("class=\"on\"") && !html.contains("utm_"), "nothing of the first visit's fan: {host}");
    }
}

// Real user agents of each app's in-app browser (2024–2025 builds).
const IOS_APPS: [(&str, &str); 8] = [
    ("Instagram", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 334.0.4.32.98 (iPhone15,3; iOS 17_5; en_US; en; scale=3.00; 1290x2796; 609849962)"),
    ("Facebook", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/468.0.0.53.109;FBBV/612404093;FBDV/iPhone15,3;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]"),
    ("Messenger", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/MessengerForiOS;FBAV/460.0.0.40.109;FBBV/603496712;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]"),
    ("TikTok", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 musical_ly_35.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US isDarkMode/0 WKWebView/1 BytedanceWebview/d8a21c6"),
    ("Snapchat", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/13.0.0.40 (like Safari/8618.2.12.10.7, panda)"),
    ("X", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Twitter for iPhone/10.50"),
    ("LinkedIn", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.30.1234"),
    ("Threads", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Barcelona 340.0.0.22.109 (iPhone15,3; iOS 17_5; en_US; en; scale=3.00; 1290x2796; 612346780)"),
];

const ANDROID_WV: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240605.024; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36";

fn android_apps() -> [(&'static str, String); 8] {
    [
        ("Instagram", format!("{ANDROID_WV} Instagram 334.0.0.42.95 Android (34/14; 420dpi; 1080x2205; Google/google; Pixel 8; shiba; shiba; en_US; 609849920)")),
        ("Facebook", format!("{ANDROID_WV} [FB_IAB/FB4A;FBAV/468.0.0.54.109;]")),
        ("Messenger", format!("{ANDROID_WV} [FB_IAB/Orca-Android;FBAV/460.0.0.48.109;]")),
        ("TikTok", format!("{ANDROID_WV} trill_350104 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/trill app_version/35.1.4 ByteLocale/en Region/US BytedanceWebview/d8a21c6")),
        ("Snapchat", format!("{ANDROID_WV} Snapchat/13.0.0.46 (Pixel 8; Android 14#e3fa0c40a#34; gzip)")),
        ("X", format!("{ANDROID_WV} TwitterAndroid/10.50.0-release.0")),
        ("LinkedIn", format!("{ANDROID_WV} [LinkedInApp]/4.1.950")),
        ("Threads", format!("{ANDROID_WV} Barcelona 340.0.0.22.109 Android (34/14; 420dpi; 1080x2205; Google/google; Pixel 8; shiba; shiba; en_US; 612346700)")),
    ]
}

const PLAIN: [(&str, &str); 6] = [
    ("Safari iOS", IPHONE),
    ("Chrome Android", ANDROID),
    ("Firefox Android", "Mozilla/5.0 (Android 14; Mobile; rv:126.0) Gecko/126.0 Firefox/126.0"),
    (
        "Chrome iOS",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/125.0.6422.80 Mobile/15E148 Safari/604.1",
    ),
    ("Chrome desktop", DESKTOP),
    ("Firefox desktop", "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"),
];

/// Where a click on each service of [`FULL`] goes, from `ua` (UTM tags
/// from the page's URL appended where the service takes them).
fn clicks(t: &T, ua: &str) -> Vec<(Platform, String)> {
    Platform::ALL
        .into_iter()
        .map(|p| {
            let res = t.get(&format!("/l/full-house/{}?utm_source=ig", p.key()), &[("user-agent", ua)]);
            assert_eq!(res.status(), 302, "{ua:.60} {}", p.key());
            assert_eq!(header(&res, "cache-control"), "no-store");
            (p, header(&res, "location").to_owned())
        })
        .collect()
}

fn web(p: Platform) -> &'static str {
    match p {
        Platform::Spotify => "https://open.spotify.com/intl-de/album/4aawyAB9vmqN3uQ7FjRGTy?si=abc&utm_source=ig",
        Platform::AppleMusic => "https://music.apple.com/us/album/full-house/1",
        Platform::YoutubeMusic => "https://music.youtube.com/playlist?list=OLAK5",
        Platform::Youtube => "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        Platform::Deezer => "https://www.deezer.com/album/1?utm_source=ig",
        Platform::Tidal => "https://tidal.com/album/9",
        Platform::AmazonMusic => "https://music.amazon.com/albums/B0",
        Platform::Soundcloud => "https://soundcloud.com/nova/full-house?utm_source=ig",
        Platform::Bandcamp => "https://nova.bandcamp.com/album/full-house?utm_source=ig#tracks",
        Platform::Other => "https://shop.example.com/fh?utm_source=ig",
    }
}

/// The expected Android intent for `p`, or its web URL.
fn android_expected(p: Platform) -> String {
    let package = match p {
        Platform::Spotify => "com.spotify.music",
        Platform::AppleMusic => "com.apple.android.music",
        Platform::YoutubeMusic => "com.google.android.apps.youtube.music",
        Platform::Youtube => "com.google.android.youtube",
        Platform::Deezer => "deezer.android.app",
        Platform::Tidal => "com.aspiro.tidal",
        Platform::AmazonMusic => "com.amazon.mp3",
        Platform::Soundcloud => "com.soundcloud.android",
        Platform::Bandcamp | Platform::Other => return web(p).to_owned(),
    };
    let w = web(p);
    let mut fallback = String::new();
    visit::encode_into(&mut fallback, w);
    format!("intent://{}#Intent;scheme=https;package={package};S.browser_fallback_url={fallback};end", &w["https://".len()..])
}

#[test]
fn in_app_browsers_get_app_links_and_ordinary_browsers_the_web() {
    let mut t = setup();
    t.create(FULL);
    t.client_at(Some(GB_IP));
    for (app, ua) in IOS_APPS {
        assert!(visit::in_app_of(ua.as_bytes()) && !visit::bot_of(ua.as_bytes()), "{app} iOS");
        for (p, location) in clicks(&t, ua) {
            let expected = if p == Platform::Spotify { "spotify:album:4aawyAB9vmqN3uQ7FjRGTy" } else { web(p) };
            assert_eq!(location, expected, "{app} iOS, {}", p.key());
        }
    }
    for (app, ua) in android_apps() {
        assert!(visit::in_app_of(ua.as_bytes()) && !visit::bot_of(ua.as_bytes()), "{app} Android");
        for (p, location) in clicks(&t, &ua) {
            assert_eq!(location, android_expected(p), "{app} Android, {}", p.key());
        }
    }
    for (browser, ua) in PLAIN {
        assert!(!visit::in_app_of(ua.as_bytes()), "{browser}");
        for (p, location) in clicks(&t, ua) {
            assert_eq!(location, web(p), "{browser}, {}", p.key());
        }
    }
    // Each click counted once, under its own service, whatever the 302 says.
    let per_platform = t.count("SELECT count(DISTINCT platform) FROM link_stats WHERE kind = 'click'");
    let total = t.count("SELECT sum(count) FROM link_stats WHERE kind = 'click'");
    assert_eq!((per_platform, total), (10, 10 * (8 + 8 + 6)));
    // The buttons on the page stay ours (counted), in-app or not.
    let html = text(&t.get("/l/full-house", &[("user-agent", IOS_APPS[0].1)]));
    assert_eq!(buttons(&html).len(), 10);
    assert!(!html.contains("intent://") && !html.contains("spotify:"));
}

#[test]
fn app_links_only_where_they_open_the_same_item() {
    let ios = |url: &str| Platform::Spotify.app_link(url, Device::Ios);
    assert_eq!(ios("https://open.spotify.com/track/11dFghVXANMlKmJXsNCbNl?si=x").as_deref(), Some("spotify:track:11dFghVXANMlKmJXsNCbNl"));
    assert_eq!(ios("https://open.spotify.com/intl-pt/artist/0OdUWJ0sBjDrqHygGUXeCF").as_deref(), Some("spotify:artist:0OdUWJ0sBjDrqHygGUXeCF"));
    for web in [
        "https://spotify.link/abc",
        "https://open.spotify.com/user/nova",
        "https://open.spotify.com/album/abc/extra",
        "https://open.spotify.com/album/a%20b",
        "https://play.spotify.com/album/abc",
    ] {
        assert_eq!(ios(web), None, "{web}");
    }
    assert_eq!(Platform::AppleMusic.app_link("https://music.apple.com/us/album/x/1", Device::Ios), None);
    assert_eq!(Platform::Spotify.app_link("https://open.spotify.com/album/abc", Device::Desktop), None);
    assert_eq!(Platform::Bandcamp.app_link("https://nova.bandcamp.com/album/x", Device::Android), None);
    // Auto-redirects keep the web URL even in an app: the page was never shown.
    let t = setup();
    t.create(&FULL.replace("\"theme\"", "\"auto_redirect\": true, \"theme\""));
    let res = t.get("/l/full-house", &[("user-agent", &android_apps()[0].1), ("cookie", "sd_svc=deezer")]);
    assert_eq!((res.status().as_u16(), header(&res, "location")), (302, "https://www.deezer.com/album/1"));
}

#[test]
fn qr_svg_is_the_links_public_url_and_cacheable() {
    let t = setup();
    t.create(NIGHT_DRIVE);
    let res = t.get("/l/night-drive/qr.svg", &[("host", "fans.example"), ("user-agent", DESKTOP)]);
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-type"), "image/svg+xml");
    assert_eq!(header(&res, "cache-control"), "public, max-age=86400");
    let svg = text(&res);
    let expected = qr::Code::encode(b"https://fans.example/l/night-drive").expect("fits").svg();
    assert_eq!(svg, expected);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 37 37\""), "version 3 plus the quiet zone: {svg:.120}");
    assert!(svg.len() < 8 * 1024, "{} bytes", svg.len());
    let head = t.send(Method::HEAD, "/l/night-drive/qr.svg", &[("host", "fans.example")], "");
    assert_eq!((head.status().as_u16(), head.body().len(), header(&head, "content-type")), (200, 0, "image/svg+xml"));
    let missing = t.get("/l/no-such-link/qr.svg", &[("user-agent", DESKTOP)]);
    assert_eq!(missing.status(), 404);
    assert_eq!(text(&missing), text(&t.get("/l/no-such-link", &[("user-agent", DESKTOP)])), "the page's own 404");
    assert_eq!(t.count("SELECT count(*) FROM link_stats"), 0, "a QR code is neither a view nor a click");
}
