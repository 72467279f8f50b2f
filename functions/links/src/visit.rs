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
        let mut visit = Visit {
            device: device_of(ua),
            bot: bot_of(ua),
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
pub fn device_of(ua: &[u8]) -> Device {
    const IOS: Needles = Needles::new(&["iphone", "ipad", "ipod"]);
    const ANDROID: Needles = Needles::new(&["android"]);
    const DESKTOP: Needles = Needles::new(&["windows", "macintosh", "x11", "cros", "linux"]);
    if IOS.found_in(ua) {
        Device::Ios
    } else if ANDROID.found_in(ua) {
        Device::Android
    } else if DESKTOP.found_in(ua) {
        Device::Desktop
    } else {
        Device::Other
    }
}

/// Names of crawlers, link-preview fetchers and HTTP libraries. The bare
/// word "bot" is matched only before a separator and not as "cubot", a
/// phone brand that appears in model names (CUBOT_X30).
const BOTS: Needles = Needles::new(&[
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
]);

/// Whether a user agent is a crawler or a script.
pub fn bot_of(ua: &[u8]) -> bool {
    // Every browser sends a user agent; a request without one is a script.
    if ua.trim_ascii().is_empty() || ends_with_ignore_case(ua, b"bot") {
        return true;
    }
    BOTS.find(ua, |at, needle| !(needle.starts_with("bot") && ends_with_ignore_case(&ua[..at], b"cu")))
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
    pub fn found_in(&self, hay: &[u8]) -> bool {
        self.find(hay, |_, _| true)
    }

    /// Whether `hay` contains a needle that `accept` (given where it
    /// starts and which it is) takes.
    pub fn find(&self, hay: &[u8], mut accept: impl FnMut(usize, &str) -> bool) -> bool {
        for i in 0..hay.len() {
            let next = hay.get(i + 1).map_or(self.short, |&b| self.second[usize::from(b)]);
            let mut candidates = self.first[usize::from(hay[i])] & next;
            while candidates != 0 {
                let n = self.list[candidates.trailing_zeros() as usize];
                if hay.len() - i >= n.len() && hay[i..i + n.len()].eq_ignore_ascii_case(n.as_bytes()) && accept(i, n) {
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
