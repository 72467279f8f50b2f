//! A smart link: the platforms it can point to, the rules every definition
//! must pass, and its JSON form — the same JSON the API accepts, the
//! database stores and KV caches, so reading a link never re-validates by
//! hand what the API already checked.
//!
//! Targets are the one place a link could become an open redirect, so each
//! known platform has a host allow-list, every URL must be https without
//! credentials or a port, and only characters that are safe in a
//! `Location` header and an HTML attribute get through.

use std::borrow::Cow;
use std::cell::OnceCell;

pub use shared::url::check_https as check_url;
use shared::{Error, ErrorKind};

use crate::json::{self, Json, Obj};
use crate::visit::{encode_into, Device};

pub const MAX_TITLE: usize = 120;
pub const MAX_LABEL: usize = 40;
pub const MAX_OVERRIDES: usize = 60;
pub const MAX_COUNTRY_LIST: usize = 250;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Spotify,
    AppleMusic,
    YoutubeMusic,
    Youtube,
    Deezer,
    Tidal,
    AmazonMusic,
    Soundcloud,
    Bandcamp,
    Other,
}

struct Info {
    key: &'static str,
    name: &'static str,
    /// A target's host must be one of these or a subdomain of one. Empty:
    /// any public host name (only "other", whose button names itself).
    hosts: &'static [&'static str],
    /// Whether UTM tags are appended. Off where the platform's links carry
    /// their own campaign scheme or nothing reads them, so we don't clutter
    /// deep links that apps open.
    utm: bool,
    /// The Android app that opens this service's https links, named in
    /// `intent://` URLs (README, "Open in the app", gives our confidence in
    /// each). `None`: no app that takes every link of the service.
    android: Option<&'static str>,
}

const AMAZON: &[&str] = &[
    "music.amazon.com",
    "music.amazon.ca",
    "music.amazon.com.mx",
    "music.amazon.com.br",
    "music.amazon.co.uk",
    "music.amazon.de",
    "music.amazon.fr",
    "music.amazon.it",
    "music.amazon.es",
    "music.amazon.in",
    "music.amazon.co.jp",
    "music.amazon.com.au",
];

// Indexed by `Platform as usize`.
const INFO: [Info; 10] = [
    Info { key: "spotify", name: "Spotify", hosts: &["spotify.com", "spotify.link"], utm: true, android: Some("com.spotify.music") },
    Info { key: "apple-music", name: "Apple Music", hosts: &["music.apple.com", "itunes.apple.com"], utm: false, android: Some("com.apple.android.music") },
    Info { key: "youtube-music", name: "YouTube Music", hosts: &["music.youtube.com"], utm: false, android: Some("com.google.android.apps.youtube.music") },
    Info { key: "youtube", name: "YouTube", hosts: &["youtube.com", "youtu.be"], utm: false, android: Some("com.google.android.youtube") },
    Info { key: "deezer", name: "Deezer", hosts: &["deezer.com"], utm: true, android: Some("deezer.android.app") },
    Info { key: "tidal", name: "TIDAL", hosts: &["tidal.com"], utm: false, android: Some("com.aspiro.tidal") },
    Info { key: "amazon-music", name: "Amazon Music", hosts: AMAZON, utm: false, android: Some("com.amazon.mp3") },
    Info { key: "soundcloud", name: "SoundCloud", hosts: &["soundcloud.com"], utm: true, android: Some("com.soundcloud.android") },
    // Artists' pages are subdomains (nova.bandcamp.com): the web page it is.
    Info { key: "bandcamp", name: "Bandcamp", hosts: &["bandcamp.com"], utm: true, android: None },
    Info { key: "other", name: "Other", hosts: &[], utm: true, android: None },
];

impl Platform {
    pub const ALL: [Platform; 10] = [
        Platform::Spotify,
        Platform::AppleMusic,
        Platform::YoutubeMusic,
        Platform::Youtube,
        Platform::Deezer,
        Platform::Tidal,
        Platform::AmazonMusic,
        Platform::Soundcloud,
        Platform::Bandcamp,
        Platform::Other,
    ];

    fn info(self) -> &'static Info {
        &INFO[self as usize]
    }
    /// The name in URLs, JSON, the cookie and the counters.
    pub fn key(self) -> &'static str {
        self.info().key
    }
    pub fn name(self) -> &'static str {
        self.info().name
    }
    pub fn takes_utm(self) -> bool {
        self.info().utm
    }
    pub fn from_key(key: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.key() == key)
    }

    /// What a click from an in-app browser is sent to instead of `web`
    /// (this service's https URL, UTM tags included), or `None` to keep
    /// `web`. On Android an `intent://` URL names the app and carries `web`
    /// as the fallback, so a phone without the app still gets the page.
    /// On iOS only Spotify: its `spotify:` URIs name exactly the item the
    /// web link does; the other services' https links are Universal Links,
    /// which need no help outside in-app browsers and get none inside
    /// without a scheme we could trust to open the same item.
    pub fn app_link(self, web: &str, device: Device) -> Option<String> {
        match device {
            Device::Android => android_intent(web, self.info().android?),
            Device::Ios if self == Platform::Spotify => spotify_uri(web),
            _ => None,
        }
    }
}

/// `intent://host/path?query#Intent;scheme=https;package=…;S.browser_fallback_url=…;end`.
fn android_intent(web: &str, package: &str) -> Option<String> {
    let rest = web.strip_prefix("https://")?;
    // A fragment would end the intent's data where `#Intent` must start;
    // the fallback keeps it.
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let mut out = String::with_capacity(rest.len() + web.len() * 3 / 2 + package.len() + 64);
    out.push_str("intent://");
    out.push_str(rest);
    out.push_str("#Intent;scheme=https;package=");
    out.push_str(package);
    out.push_str(";S.browser_fallback_url=");
    encode_into(&mut out, web);
    out.push_str(";end");
    Some(out)
}

/// `https://open.spotify.com[/intl-xx]/{kind}/{id}[?…]` → `spotify:{kind}:{id}`;
/// anything else (short `spotify.link` URLs, user pages) stays on the web.
fn spotify_uri(web: &str) -> Option<String> {
    let path = web.strip_prefix("https://open.spotify.com/")?;
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    let mut parts = path.split('/').filter(|s| !s.is_empty()).skip_while(|s| s.starts_with("intl-"));
    let (kind, id) = (parts.next()?, parts.next()?);
    let known = ["track", "album", "artist", "playlist", "show", "episode"].contains(&kind);
    let id_ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !(known && id_ok && parts.next().is_none()) {
        return None;
    }
    let mut uri = String::with_capacity(10 + kind.len() + id.len());
    uri.push_str("spotify:");
    uri.push_str(kind);
    uri.push(':');
    uri.push_str(id);
    Some(uri)
}

/// ISO 3166-1 alpha-2, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country([u8; 2]);

impl Country {
    pub fn parse(s: &str) -> Option<Country> {
        match *s.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Some(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()])),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &str {
        // Built only from two ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub platform: Platform,
    pub url: String,
    /// Button text; "other" only (known platforms show their own name).
    pub label: Option<String>,
    /// A different URL for fans in these countries.
    pub countries: Vec<(Country, String)>,
    /// Hide the button in these countries.
    pub hidden_in: Vec<Country>,
}

impl Link {
    /// Whether where the fan is changes what they get: a country's own URL
    /// or a service hidden somewhere.
    pub fn depends_on_country(&self) -> bool {
        self.def.targets.iter().any(Target::depends_on_country)
    }
}

impl Target {
    /// Whether this service's button or URL changes with the fan's country.
    pub fn depends_on_country(&self) -> bool {
        !self.countries.is_empty() || !self.hidden_in.is_empty()
    }

    /// Fans we can't locate see every service: hiding one from them would
    /// hide it from people who can use it.
    pub fn available_in(&self, country: Option<Country>) -> bool {
        let Some(c) = country else { return true };
        !self.hidden_in.contains(&c)
    }

    pub fn url_for(&self, country: Option<Country>) -> &str {
        country.and_then(|c| self.countries.iter().find(|(k, _)| *k == c)).map_or(&self.url, |(_, url)| url)
    }

    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(self.platform.name())
    }
}

/// What an artist defines; everything but the owner and id.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub slug: String,
    pub title: String,
    /// Display name; filled from the artist's account when not given.
    pub artist: Option<String>,
    pub artwork_url: Option<String>,
    /// The artist's colours; `None`: the page's own light and dark looks.
    pub theme: Option<Theme>,
    /// Send fans who picked a service before straight there.
    pub auto_redirect: bool,
    /// In the artist's order.
    pub targets: Vec<Target>,
}

/// A link as the redirect path uses it, read from KV or the database.
#[derive(Debug, Clone)]
pub struct Link {
    pub id: String,
    pub artist_id: String,
    pub def: Definition,
    /// Its landing page, rendered at the first view (see `page::landing`).
    pub page: OnceCell<crate::page::Prebuilt>,
}

impl Link {
    pub fn target(&self, p: Platform) -> Option<&Target> {
        self.def.targets.iter().find(|t| t.platform == p)
    }

    /// The cached form: `{"id","artist_id","link":<definition>}`. Built by
    /// concatenation so refilling KV from the database re-serialises nothing.
    pub fn cached_json(id: &str, artist_id: &str, definition: &str) -> String {
        let mut s = String::with_capacity(definition.len() + id.len() + artist_id.len() + 32);
        let mut o = Obj::new(&mut s);
        o.str("id", id).str("artist_id", artist_id);
        o.key("link").push_str(definition);
        o.end();
        s
    }

    /// Parses [`Link::cached_json`] output. The definition goes through the
    /// same checks as API input: a damaged entry fails here, not in a fan's
    /// browser.
    pub fn from_cached(bytes: &[u8]) -> Result<Link, Error> {
        let v = json::parse(bytes).map_err(Error::internal)?;
        let text = |k: &str| v.get(k).and_then(Json::as_str).map(str::to_owned);
        let (Some(id), Some(artist_id)) = (text("id"), text("artist_id")) else {
            return Err(Error::internal("cached link lacks its id"));
        };
        let def = Definition::from_json(v.get("link").unwrap_or(&Json::Null), None).map_err(|e| Error::internal(e.message))?;
        Ok(Link { id, artist_id, def, page: OnceCell::new() })
    }
}

/// Lower-case letters, digits and `-`, 3 to 64 characters.
pub fn valid_slug(slug: &str) -> bool {
    (3..=64).contains(&slug.len()) && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Keys the API hands out (GET) but ignores on the way in, so a fetched
/// link can be edited and sent back as it is.
const READ_ONLY: [&str; 3] = ["path", "created_at", "updated_at"];
/// For error messages; a test keeps them in step with the lists.
pub const PLATFORM_KEYS: &str = "spotify, apple-music, youtube-music, youtube, deezer, tidal, amazon-music, soundcloud, bandcamp, other";
const FIELDS: [&str; 7] = ["slug", "title", "artist", "artwork_url", "theme", "auto_redirect", "targets"];
const TARGET_FIELDS: [&str; 5] = ["platform", "url", "label", "countries", "hidden_in"];

fn invalid(field: &'static str, msg: impl Into<Cow<'static, str>>) -> Error {
    Error::field(ErrorKind::Unprocessable, field, msg)
}

fn wrong_type(field: &'static str, what: &str, expected: &str) -> Error {
    Error::field(ErrorKind::BadRequest, field, format!("{what} must be {expected}."))
}

impl Definition {
    /// Validates a definition. `path_slug` is the slug of the link being
    /// replaced (PUT): the body may omit it but can't change it.
    pub fn from_json(v: &Json, path_slug: Option<&str>) -> Result<Definition, Error> {
        let obj = v.as_object().ok_or_else(|| Error::new(ErrorKind::BadRequest, "The body must be a JSON object describing the link."))?;
        if let Some((k, _)) = obj.iter().find(|(k, _)| !FIELDS.contains(&k.as_str()) && !READ_ONLY.contains(&k.as_str())) {
            return Err(Error::new(
                ErrorKind::Unprocessable,
                format!("Unknown field \"{k}\". A link has: slug, title, artist, artwork_url, theme, auto_redirect, targets."),
            ));
        }
        let slug = match (opt_str(obj, "slug", "slug")?, path_slug) {
            (Some(s), Some(p)) if s != p => return Err(invalid("slug", "slug can't be changed; create a new link instead.")),
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) => return Err(invalid("slug", "slug is required.")),
        };
        if !valid_slug(slug) {
            return Err(invalid("slug", "slug must be 3 to 64 characters: lower-case letters, digits and dashes."));
        }
        let title = opt_str(obj, "title", "title")?.map(str::trim).unwrap_or("");
        if title.is_empty() {
            return Err(invalid("title", "title is required."));
        }
        check_text(title, "title", "title", MAX_TITLE)?;
        let artist = opt_str(obj, "artist", "artist")?.map(str::trim).filter(|a| !a.is_empty());
        if let Some(a) = artist {
            check_text(a, "artist", "artist", MAX_TITLE)?;
        }
        let artwork_url = match opt_str(obj, "artwork_url", "artwork_url")? {
            Some(u) => Some(check_url(u, &[]).map_err(|e| invalid("artwork_url", format!("artwork_url {e}.")))?),
            None => None,
        };
        let auto_redirect = match member(obj, "auto_redirect") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(_) => return Err(wrong_type("auto_redirect", "auto_redirect", "true or false")),
        };
        let theme = theme(member(obj, "theme"))?;
        let targets = targets(member(obj, "targets"))?;
        Ok(Definition { slug: slug.to_owned(), title: title.to_owned(), artist: artist.map(str::to_owned), artwork_url, theme, auto_redirect, targets })
    }

    /// The canonical JSON (what is stored and cached).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256 + self.targets.len() * 128);
        let mut o = Obj::new(&mut out);
        o.str("slug", &self.slug).str("title", &self.title);
        if let Some(a) = &self.artist {
            o.str("artist", a);
        }
        if let Some(u) = &self.artwork_url {
            o.str("artwork_url", u);
        }
        if let Some(t) = &self.theme {
            let mut m = Obj::new(o.key("theme"));
            m.str("background", &t.background.hex()).str("button", &t.button.hex());
            m.end();
        }
        o.bool("auto_redirect", self.auto_redirect);
        let list = o.key("targets");
        list.push('[');
        for (i, t) in self.targets.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            target_json(list, t);
        }
        list.push(']');
        o.end();
        out
    }
}

fn target_json(out: &mut String, t: &Target) {
    let mut o = Obj::new(out);
    o.str("platform", t.platform.key()).str("url", &t.url);
    if let Some(l) = &t.label {
        o.str("label", l);
    }
    if !t.countries.is_empty() {
        let mut m = Obj::new(o.key("countries"));
        for (c, u) in &t.countries {
            m.str(c.as_str(), u);
        }
        m.end();
    }
    if !t.hidden_in.is_empty() {
        let out = o.key("hidden_in");
        out.push('[');
        for (i, c) in t.hidden_in.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::write_str(out, c.as_str());
        }
        out.push(']');
    }
    o.end();
}

/// `{"background": "#rrggbb", "button": "#rrggbb"}`, either key optional
/// (the other keeps the page's light colour); `{}` or `null`: no theme.
fn theme(v: Option<&Json>) -> Result<Option<Theme>, Error> {
    let obj = match v {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::Object(o)) => o,
        Some(_) => return Err(wrong_type("theme", "theme", "an object such as {\"background\": \"#1e1b4b\", \"button\": \"#facc15\"}")),
    };
    if let Some((k, _)) = obj.iter().find(|(k, _)| k != "background" && k != "button") {
        return Err(invalid("theme", format!("Unknown field \"theme.{k}\". A theme has: background, button.")));
    }
    if obj.is_empty() {
        return Ok(None);
    }
    let colour = |key: &str, field: &'static str, default: Rgb| match member(obj, key) {
        None | Some(Json::Null) => Ok(default),
        Some(Json::String(s)) => shared::colour::parse_field(s, field),
        Some(_) => Err(wrong_type(field, field, "a string such as \"#1e1b4b\"")),
    };
    let (background, button) = (colour("background", "theme.background", DEFAULT_BACKGROUND)?, colour("button", "theme.button", DEFAULT_BUTTON)?);
    Theme::new(background, button, ("theme.background", "theme.button")).map(Some)
}

fn member<'v>(obj: &'v [(String, Json)], key: &str) -> Option<&'v Json> {
    obj.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn opt_str<'v>(obj: &'v [(String, Json)], key: &str, field: &'static str) -> Result<Option<&'v str>, Error> {
    match member(obj, key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(field, key, "a string")),
    }
}

fn check_text(s: &str, field: &'static str, what: &str, max: usize) -> Result<(), Error> {
    if s.chars().count() > max {
        return Err(invalid(field, format!("{what} is longer than {max} characters.")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, format!("{what} contains control characters.")));
    }
    Ok(())
}

fn targets(v: Option<&Json>) -> Result<Vec<Target>, Error> {
    let list = match v {
        Some(Json::Array(a)) => a,
        None | Some(Json::Null) => return Err(invalid("targets", "targets is required: a list of {\"platform\", \"url\"} objects.")),
        Some(_) => return Err(wrong_type("targets", "targets", "a list")),
    };
    if list.is_empty() {
        return Err(invalid("targets", "targets needs at least one platform."));
    }
    if list.len() > Platform::ALL.len() {
        return Err(invalid("targets", format!("targets has {} entries; each platform can appear once.", list.len())));
    }
    let mut out: Vec<Target> = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let t = target(i, v)?;
        if out.iter().any(|o| o.platform == t.platform) {
            return Err(invalid("targets", format!("targets[{i}]: {} is listed twice; each platform can appear once.", t.platform.key())));
        }
        out.push(t);
    }
    Ok(out)
}

fn target(i: usize, v: &Json) -> Result<Target, Error> {
    let obj = v.as_object().ok_or_else(|| wrong_type("targets", &format!("targets[{i}]"), "an object"))?;
    if let Some((k, _)) = obj.iter().find(|(k, _)| !TARGET_FIELDS.contains(&k.as_str())) {
        return Err(invalid("targets", format!("targets[{i}]: unknown field \"{k}\". A target has: platform, url, label, countries, hidden_in.")));
    }
    let key = opt_str(obj, "platform", "targets")?.ok_or_else(|| invalid("targets", format!("targets[{i}].platform is required.")))?;
    let platform = Platform::from_key(key)
        .ok_or_else(|| invalid("targets", format!("targets[{i}].platform \"{key}\" is not one we know. Use one of: {PLATFORM_KEYS}.")))?;
    let hosts = platform.info().hosts;
    let url = opt_str(obj, "url", "targets")?.ok_or_else(|| invalid("targets", format!("targets[{i}].url is required.")))?;
    let url = check_url(url, hosts).map_err(|e| invalid("targets", format!("targets[{i}].url {e}.")))?;
    let label = opt_str(obj, "label", "targets")?.map(str::trim).filter(|l| !l.is_empty());
    let label = match (platform, label) {
        (Platform::Other, None) => return Err(invalid("targets", format!("targets[{i}].label is required for \"other\": it is the button's text."))),
        (Platform::Other, Some(l)) => {
            check_text(l, "targets", &format!("targets[{i}].label"), MAX_LABEL)?;
            Some(l.to_owned())
        }
        (_, Some(_)) => {
            return Err(invalid("targets", format!("targets[{i}].label is only for \"other\"; {} buttons show the platform's name.", platform.name())))
        }
        (_, None) => None,
    };
    let countries = overrides(i, member(obj, "countries"), hosts)?;
    let hidden_in = country_list(i, "hidden_in", member(obj, "hidden_in"))?;
    Ok(Target { platform, url, label, countries, hidden_in })
}

fn overrides(i: usize, v: Option<&Json>, hosts: &[&str]) -> Result<Vec<(Country, String)>, Error> {
    let map = match v {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::Object(m)) => m,
        Some(_) => return Err(wrong_type("targets", &format!("targets[{i}].countries"), "an object of country code → URL")),
    };
    if map.len() > MAX_OVERRIDES {
        return Err(invalid("targets", format!("targets[{i}].countries has more than {MAX_OVERRIDES} entries.")));
    }
    let mut out = Vec::with_capacity(map.len());
    for (code, url) in map {
        let c = Country::parse(code)
            .ok_or_else(|| invalid("targets", format!("targets[{i}].countries: \"{code}\" is not a two-letter country code (ISO 3166-1).")))?;
        if out.iter().any(|(k, _)| *k == c) {
            return Err(invalid("targets", format!("targets[{i}].countries lists {} twice.", c.as_str())));
        }
        let url = url.as_str().ok_or_else(|| wrong_type("targets", &format!("targets[{i}].countries.{code}"), "a URL string"))?;
        let url = check_url(url, hosts).map_err(|e| invalid("targets", format!("targets[{i}].countries.{code} {e}.")))?;
        out.push((c, url));
    }
    Ok(out)
}

fn country_list(i: usize, key: &str, v: Option<&Json>) -> Result<Vec<Country>, Error> {
    let list = match v {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::Array(a)) => a,
        Some(_) => return Err(wrong_type("targets", &format!("targets[{i}].{key}"), "a list of country codes")),
    };
    if list.len() > MAX_COUNTRY_LIST {
        return Err(invalid("targets", format!("targets[{i}].{key} has more than {MAX_COUNTRY_LIST} entries.")));
    }
    let mut out = Vec::with_capacity(list.len());
    for c in list {
        let c = c.as_str().ok_or_else(|| wrong_type("targets", &format!("targets[{i}].{key}"), "a list of country code strings"))?;
        let code =
            Country::parse(c).ok_or_else(|| invalid("targets", format!("targets[{i}].{key}: \"{c}\" is not a two-letter country code (ISO 3166-1).")))?;
        if !out.contains(&code) {
            out.push(code);
        }
    }
    Ok(out)
}

/// The artist's colours and their rules: shared with the capture page
/// (signup), so both pages accept and refuse the same themes.
pub use shared::colour::{Rgb, Theme};

/// The page's own colours, which a theme that sets only one key keeps for
/// the other (light mode's).
pub const DEFAULT_BACKGROUND: Rgb = Rgb([0xf4, 0xf4, 0xf5]);
pub const DEFAULT_BUTTON: Rgb = Rgb([0x11, 0x11, 0x11]);
