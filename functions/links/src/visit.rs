//! What one request tells a link about the fan, reduced to what the page
//! and the counters need: device class, bot or not, the remembered service,
//! country, referrer host and UTM tags. The user agent, cookie and address
//! are read here and go no further.

use shared::http::header::{COOKIE, HOST, REFERER, USER_AGENT};
use shared::http::request::Parts;
use shared::httpx::percent_decode;

use crate::link::{Country, Platform};

/// First-party cookie holding only the key of the service the fan last
/// picked, so it can come first next time. No identifier.
pub const CHOICE_COOKIE: &str = "sd_svc";

const UTM_KEYS: [&str; 5] = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];
const MAX_UTM_VALUE: usize = 100;
const MAX_REFERRER: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Ios,
    Android,
    Desktop,
    Other,
}

impl Device {
    pub fn key(self) -> &'static str {
        match self {
            Device::Ios => "ios",
            Device::Android => "android",
            Device::Desktop => "desktop",
            Device::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub device: Device,
    /// Crawlers and link-preview fetchers: they get the page, are never
    /// counted and never auto-redirected.
    pub bot: bool,
    pub remembered: Option<Platform>,
    /// A phone app's own browser (Instagram, TikTok…), which often can't
    /// hand an https link to the service's app: its clicks get the app
    /// link instead (see `Platform::app_link`).
    pub in_app: bool,
    pub country: Option<Country>,
    /// Whether `country` was looked up; if not, the counter asks for it
    /// after the response (`Env::country_later`).
    pub located: bool,
    /// Host name only, `""` when unknown.
    pub referrer: String,
    /// `utm_…=…` pairs to pass on, re-encoded, without a leading `?`.
    pub utm: String,
    /// `?choose`: show the page even when the link auto-redirects, so a
    /// fan can pick another service.
    pub choose: bool,
    /// When it happened (`Env::now_ms`, read once per request).
    pub at_ms: i64,
}

impl Visit {
    pub fn read(parts: &Parts, country: Option<&str>, at_ms: i64) -> Visit {
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        // As bytes: the checks below ignore ASCII case and need no copy.
        let ua = parts.headers.get(USER_AGENT).map_or(&b""[..], |v| v.as_bytes());
        let Agent { device, bot, app } = agent_of(ua);
        let mut visit = Visit {
            device,
            bot,
            // Only phones have apps to open, and a bot opens none.
            in_app: app && matches!(device, Device::Ios | Device::Android),
            remembered: parts.headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(remembered),
            country: country.and_then(Country::parse),
            located: true,
            referrer: String::new(),
            utm: String::new(),
            choose: false,
            at_ms,
        };
        let mut ref_param = None;
        let mut utm: [Option<String>; 5] = Default::default();
        for pair in parts.uri.query().unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "choose" => visit.choose = true,
                "ref" => ref_param = ref_param.or_else(|| percent_decode(v).and_then(|h| clean_host(&h))),
                _ => {
                    if let Some(i) = UTM_KEYS.iter().position(|u| *u == k) {
                        if utm[i].is_none() {
                            utm[i] = percent_decode(v).filter(|v| utm_value_ok(v));
                        }
                    }
                }
            }
        }
        for (key, value) in UTM_KEYS.iter().zip(&utm) {
            if let Some(v) = value {
                if !visit.utm.is_empty() {
                    visit.utm.push('&');
                }
                visit.utm.push_str(key);
                visit.utm.push('=');
                encode_into(&mut visit.utm, v);
            }
        }
        // Our own buttons carry the host the fan came from as `ref` (the
        // landing page sends no Referer). Otherwise use the Referer, unless
        // it is this site.
        visit.referrer = ref_param.unwrap_or_else(|| {
            let own = header(HOST).map(|h| h.split(':').next().unwrap_or(h));
            header(REFERER).and_then(referrer_host).filter(|h| Some(h.as_str()) != own.map(strip_www)).unwrap_or_default()
        });
        visit
    }

    /// The query our buttons carry: UTM tags and the original referrer.
    pub fn forward_query(&self) -> String {
        let mut q = String::new();
        if !self.utm.is_empty() {
            q.push('?');
            q.push_str(&self.utm);
        }
        if !self.referrer.is_empty() {
            q.push(if q.is_empty() { '?' } else { '&' });
            q.push_str("ref=");
            q.push_str(&self.referrer);
        }
        q
    }
}

/// The device class of a user agent.
#[cfg(test)]
pub fn device_of(ua: &[u8]) -> Device {
    agent_of(ua).device
}

/// Names of crawlers, link-preview fetchers and HTTP libraries. The bare
/// word "bot" is matched only before a separator and not as "cubot", a
/// phone brand that appears in model names (CUBOT_X30).
const BOT_MARKS: [&str; 38] = [
    "bot/",
    "bot;",
    "bot)",
    "bot-",
    "bot ",
    "bot_",
    "bot+",
    "crawler",
    "spider",
    "facebookexternalhit",
    "facebookcatalog",
    "meta-external",
    "whatsapp",
    "slack",
    "skypeuripreview",
    "embedly",
    "pinterest",
    "vkshare",
    "iframely",
    "preview",
    "mastodon",
    "cardyb",
    "google-",
    "googleother",
    "headless",
    "lighthouse",
    "curl/",
    "wget/",
    "python-",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww",
    "node-fetch",
    "axios/",
    "scrapy",
    "httpclient",
    "feedfetcher",
];

/// Marks of the in-app browsers of social apps, as they appear in their
/// user agents (README, "Open in the app", lists one real agent per app
/// and device):
const APP_MARKS: [&str; 11] = [
    // Instagram on both: "Instagram 312.0.0.32.112 (iPhone…" / "… Instagram 312.1.0.34.111 Android (…"
    "instagram",
    // Facebook and Messenger on iOS: "[FBAN/FBIOS;…", "[FBAN/MessengerForiOS;…"
    "fban/",
    // … and on Android: "[FB_IAB/FB4A;FBAV/…", "[FB_IAB/Orca-Android;FBAV/…"
    "fb_iab/",
    "fbav/",
    // TikTok: "musical_ly_33.4.0" (iOS, and Android's global build), "trill_330404" (Android, some regions)
    "musical_ly",
    "trill_",
    "bytedancewebview",
    // Snapchat: "Snapchat/12.80.0.40 (iPhone…"
    "snapchat",
    // X: "Twitter for iPhone/10.40", "TwitterAndroid/10.40"
    "twitter",
    // LinkedIn: "[LinkedInApp]/9.29.7450"
    "linkedinapp",
    // Threads: "Barcelona 289.0.0.77.109" (Meta's name for it)
    "barcelona",
];

const IOS_MARKS: [&str; 3] = ["iphone", "ipad", "ipod"];
const ANDROID_MARKS: [&str; 1] = ["android"];
const DESKTOP_MARKS: [&str; 5] = ["windows", "macintosh", "x11", "cros", "linux"];

/// Every list in one set, so one pass over the user agent answers every
/// question the page and the redirect ask (four passes before in-app
/// browsers were looked for: device lists one by one, then bots).
const AGENT_MARKS: [&str; 58] =
    concat::<53, 5, 58>(concat::<49, 4, 53>(concat::<38, 11, 49>(BOT_MARKS, APP_MARKS), concat::<3, 1, 4>(IOS_MARKS, ANDROID_MARKS)), DESKTOP_MARKS);
const AGENTS: Needles = Needles::new(&AGENT_MARKS);
/// Where each list starts in [`AGENT_MARKS`] (bots start at 0).
const APPS_AT: usize = BOT_MARKS.len();
const IOS_AT: usize = APPS_AT + APP_MARKS.len();
const ANDROID_AT: usize = IOS_AT + IOS_MARKS.len();
const DESKTOP_AT: usize = ANDROID_AT + ANDROID_MARKS.len();

/// `a` then `b`, at compile time.
const fn concat<const A: usize, const B: usize, const C: usize>(a: [&'static str; A], b: [&'static str; B]) -> [&'static str; C] {
    assert!(A + B == C, "lengths add up");
    let mut out = [""; C];
    let mut i = 0;
    while i < C {
        out[i] = if i < A { a[i] } else { b[i - A] };
        i += 1;
    }
    out
}

/// What a user agent says about the fan's browser.
pub struct Agent {
    pub device: Device,
    /// A crawler, link-preview fetcher or script.
    pub bot: bool,
    /// A social app's in-app browser (never also a bot).
    pub app: bool,
}

pub fn agent_of(ua: &[u8]) -> Agent {
    let mut found = 0u64;
    AGENTS.scan(ua, |at, i| {
        if !(i < APPS_AT && AGENT_MARKS[i].starts_with("bot") && ends_with_ignore_case(&ua[..at], b"cu")) {
            found |= 1 << i;
        }
        false
    });
    let any = |from: usize, to: usize| found & ((1u64 << to) - (1u64 << from)) != 0;
    // Every browser sends a user agent; a request without one is a script.
    let bot = ua.trim_ascii().is_empty() || ends_with_ignore_case(ua, b"bot") || any(0, APPS_AT);
    let device = if any(IOS_AT, ANDROID_AT) {
        Device::Ios
    } else if any(ANDROID_AT, DESKTOP_AT) {
        Device::Android
    } else if any(DESKTOP_AT, AGENT_MARKS.len()) {
        Device::Desktop
    } else {
        Device::Other
    };
    Agent { device, bot, app: !bot && any(APPS_AT, IOS_AT) }
}

/// Whether a user agent is a crawler or a script.
#[cfg(test)]
pub fn bot_of(ua: &[u8]) -> bool {
    agent_of(ua).bot
}

/// Whether a user agent is a social app's in-app browser.
#[cfg(test)]
pub fn in_app_of(ua: &[u8]) -> bool {
    agent_of(ua).app
}

fn ends_with_ignore_case(hay: &[u8], suffix: &[u8]) -> bool {
    hay.len() >= suffix.len() && hay[hay.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// A set of lower-case ASCII substrings to look for, ignoring ASCII case,
/// in one pass (see [`Needles::found_in`]).
pub struct Needles {
    list: &'static [&'static str],
    /// Per byte, a bit for each needle that starts with it (in either case).
    first: [u64; 256],
    /// Per byte, a bit for each needle whose second byte it is (in either
    /// case); one-byte needles have their bit everywhere.
    second: [u64; 256],
    /// The one-byte needles: all that can start at the last byte.
    short: u64,
}

impl Needles {
    pub const fn new(list: &'static [&'static str]) -> Needles {
        assert!(list.len() <= 64, "at most 64 needles");
        let (mut first, mut second, mut short) = ([0u64; 256], [0u64; 256], 0u64);
        let mut i = 0;
        while i < list.len() {
            let b = list[i].as_bytes();
            let bit = 1 << i;
            assert!(!b.is_empty(), "empty needle");
            let mut j = 0;
            while j < b.len() {
                assert!(b[j].is_ascii() && !b[j].is_ascii_uppercase(), "needles are lower-case ASCII");
                j += 1;
            }
            first[b[0] as usize] |= bit;
            first[b[0].to_ascii_uppercase() as usize] |= bit;
            if b.len() == 1 {
                short |= bit;
                let mut k = 0;
                while k < 256 {
                    second[k] |= bit;
                    k += 1;
                }
            } else {
                second[b[1] as usize] |= bit;
                second[b[1].to_ascii_uppercase() as usize] |= bit;
            }
            i += 1;
        }
        Needles { list, first, second, short }
    }

    /// Whether `hay` contains any needle. One pass over `hay`, comparing
    /// needles only where its first two bytes could start one: checking
    /// each needle with `str::contains` (after lower-casing a copy) set up
    /// a searcher and scanned `hay` once per needle, which made bot
    /// detection the redirect's costliest step.
    #[cfg(test)]
    pub fn found_in(&self, hay: &[u8]) -> bool {
        self.find(hay, |_, _| true)
    }

    /// Whether `hay` contains a needle that `accept` (given where it
    /// starts and which it is) takes.
    #[cfg(test)]
    pub fn find(&self, hay: &[u8], mut accept: impl FnMut(usize, &str) -> bool) -> bool {
        self.scan(hay, |at, i| accept(at, self.list[i]))
    }

    /// Calls `f` with where each needle starts and its index in the list,
    /// until `f` answers true (then true).
    pub fn scan(&self, hay: &[u8], mut f: impl FnMut(usize, usize) -> bool) -> bool {
        for i in 0..hay.len() {
            let next = hay.get(i + 1).map_or(self.short, |&b| self.second[usize::from(b)]);
            let mut candidates = self.first[usize::from(hay[i])] & next;
            while candidates != 0 {
                let k = candidates.trailing_zeros() as usize;
                let n = self.list[k];
                if hay.len() - i >= n.len() && hay[i..i + n.len()].eq_ignore_ascii_case(n.as_bytes()) && f(i, k) {
                    return true;
                }
                candidates &= candidates - 1;
            }
        }
        false
    }
}

/// The remembered service. Never "other": that button is whatever each
/// artist made it (a shop, a ticket page), so a pick on one link says
/// nothing about another.
fn remembered(cookie_header: &str) -> Option<Platform> {
    cookie_header
        .split(';')
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == CHOICE_COOKIE).then(|| Platform::from_key(v.trim())).flatten()
        })
        .filter(|p| *p != Platform::Other)
}

/// The `Set-Cookie` value remembering `p` (the cookie is [`CHOICE_COOKIE`],
/// kept 90 days and refreshed on every pick): one static string per
/// platform because the redirect sets it on every click. A test checks
/// each against the platform's key.
pub fn choice_cookie(p: Platform) -> &'static str {
    macro_rules! cookie {
        ($key:literal) => {
            concat!("sd_svc=", $key, "; Max-Age=7776000; Path=/l/; Secure; HttpOnly; SameSite=Lax")
        };
    }
    match p {
        Platform::Spotify => cookie!("spotify"),
        Platform::AppleMusic => cookie!("apple-music"),
        Platform::YoutubeMusic => cookie!("youtube-music"),
        Platform::Youtube => cookie!("youtube"),
        Platform::Deezer => cookie!("deezer"),
        Platform::Tidal => cookie!("tidal"),
        Platform::AmazonMusic => cookie!("amazon-music"),
        Platform::Soundcloud => cookie!("soundcloud"),
        Platform::Bandcamp => cookie!("bandcamp"),
        Platform::Other => cookie!("other"),
    }
}

/// The host of a Referer (`https://l.instagram.com/…`, `android-app://…`).
fn referrer_host(referer: &str) -> Option<String> {
    let rest = referer.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    clean_host(host.split(':').next().unwrap_or(host))
}

fn strip_www(h: &str) -> &str {
    h.strip_prefix("www.").unwrap_or(h)
}

/// A host name fit to be a counter dimension: lower case, without `www.`,
/// only host-name characters, bounded. Anything else is dropped, including
/// IP addresses: an address is never stored, whoever's it is.
fn clean_host(h: &str) -> Option<String> {
    let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
    let h = strip_www(&h);
    let name_like = h.rsplit('.').next().is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_lowercase()));
    let ok = (1..=MAX_REFERRER).contains(&h.len())
        && h.contains('.')
        && name_like
        && h.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    ok.then(|| h.to_owned())
}

fn utm_value_ok(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_UTM_VALUE && !v.chars().any(char::is_control)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_into(out: &mut String, v: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// `url` with the visit's UTM tags appended where the target doesn't set
/// the same key itself (the artist's own tags win), before any fragment.
pub fn with_utm<'a>(url: &'a str, utm: &str) -> std::borrow::Cow<'a, str> {
    if utm.is_empty() {
        return url.into();
    }
    let (base, fragment) = url.split_once('#').map_or((url, None), |(b, f)| (b, Some(f)));
    let existing = base.split_once('?').map_or("", |(_, q)| q);
    let mut out = String::with_capacity(url.len() + utm.len() + 1);
    out.push_str(base);
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for pair in utm.split('&') {
        let key = pair.split('=').next().unwrap_or(pair);
        let already = existing.split('&').any(|p| p.split('=').next() == Some(key));
        if !already {
            out.push(sep);
            out.push_str(pair);
            sep = '&';
        }
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out.into()
}
