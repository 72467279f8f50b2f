//! The body of every fuzz target: feeds one input to a parser in `shared`
//! that takes outside input and asserts what must hold for any input.
//!
//! Written against `shared` and std only, because it is compiled twice: by
//! the `stagedoor-fuzz` crate (one libFuzzer binary per entry of
//! [`TARGETS`]) and, through `#[path]`, by `shared/tests/fuzz_corpus.rs`,
//! which replays the committed corpus on stable in `make test`.
//!
//! Every check returns normally or panics; a panic is a crash to fix.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use shared::auth::totp;
use shared::geo::mmdb::Mmdb;
use shared::http;
use shared::token::{Purpose, TokenError, TokenKeys};

/// A check: returns, or panics on a bug.
pub type Check = fn(&[u8]);

/// Target name (the file under `fuzz/fuzz_targets/` and the directory under
/// `fuzz/corpus/`) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("email", email),
    ("token", token),
    ("form_query", form_query),
    ("client_addr", client_addr),
    ("url", url),
    ("mmdb", mmdb),
    ("totp", totp),
    ("cookie_csrf", cookie_csrf),
];

/// `Email::parse`: a parsed address is ASCII, bounded, and parses to itself.
pub fn email(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    if let Ok(email) = shared::email::Email::parse(&input) {
        let s = email.as_str();
        assert!(s.is_ascii() && s.len() <= 254, "{s:?}");
        assert_eq!(shared::email::Email::parse(s).as_ref(), Ok(&email), "not idempotent");
        assert_eq!(email.index_key(), s.to_ascii_lowercase());
        assert!(s.ends_with(&format!("@{}", email.domain())), "{s:?}");
    }
}

/// Two keys, so lookup by key id and rotation are exercised too.
const TOKEN_KEYS: &str = "t2:HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=,t1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// `TokenKeys::verify` on the input as a token; then a token signed from
/// fields taken from the input must verify to exactly those fields.
pub fn token(data: &[u8]) {
    let keys = TokenKeys::parse(TOKEN_KEYS).expect("the fixed key spec parses");
    let input = String::from_utf8_lossy(data);
    for purpose in [Purpose::Unsubscribe, Purpose::Confirm] {
        for now in [0, 1_700_000_000, u64::MAX] {
            if let Ok(claims) = keys.verify(&input, purpose, now) {
                assert_eq!(claims.purpose, purpose);
                assert!(claims.expires == 0 || u64::from(claims.expires) > now, "expired token accepted");
                assert!(claims.fan_id.len() == 32 && claims.fan_id.bytes().all(|b| b.is_ascii_hexdigit()));
                // Only a token we signed verifies, and signing is deterministic.
                let (id, _) = input.split_once('.').expect("a valid token has a key id");
                let key = TOKEN_KEYS.split(',').find_map(|e| e.strip_prefix(id)?.strip_prefix(':')).expect("the key id is listed");
                let single = TokenKeys::parse(&format!("{id}:{key}")).expect("one listed key parses");
                if let Ok(again) = single.sign(purpose, claims.expires, &claims.fan_id, &claims.artist_id) {
                    assert_eq!(again, input, "re-signing the claims gives another token");
                }
            }
        }
    }
    // Purpose (1 byte), expiry (4), fan id (16), artist id (the rest, cut to 64 bytes).
    let Some((head, artist)) = data.split_first_chunk::<21>() else { return };
    let purpose = if head[0] & 1 == 0 { Purpose::Unsubscribe } else { Purpose::Confirm };
    let other = if purpose == Purpose::Unsubscribe { Purpose::Confirm } else { Purpose::Unsubscribe };
    let expires = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let fan_id = shared::crypto::hex(&head[5..]);
    let artist = String::from_utf8_lossy(artist);
    let mut cut = artist.len().min(64);
    while !artist.is_char_boundary(cut) {
        cut -= 1;
    }
    let artist_id = &artist[..cut];
    if artist_id.is_empty() {
        return;
    }
    let t = keys.sign(purpose, expires, &fan_id, artist_id).expect("valid fields sign");
    assert!(t.starts_with("t2.") && t.len() <= 256, "{t}");
    let claims = keys.verify(&t, purpose, u64::from(expires.saturating_sub(1))).expect("a fresh token verifies");
    assert_eq!((claims.expires, claims.fan_id.as_str(), claims.artist_id.as_str()), (expires, fan_id.as_str(), artist_id));
    assert_eq!(keys.verify(&t, other, 0), Err(TokenError::Invalid), "purpose is not bound");
    if expires != 0 {
        assert_eq!(keys.verify(&t, purpose, u64::from(expires)), Err(TokenError::Expired));
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `parse_form`, `percent_decode`, `query_param` and `is_form`: decoding
/// never grows a string, and what we encode decodes back.
pub fn form_query(data: &[u8]) {
    use shared::httpx::{parse_form, percent_decode, query_param};
    let _ = shared::httpx::is_form(Some(data));
    if let Ok(pairs) = parse_form(data) {
        assert!(std::str::from_utf8(data).is_ok(), "a form that is not UTF-8 was accepted");
        let encoded: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
        assert_eq!(parse_form(encoded.join("&").as_bytes()).ok().as_ref(), Some(&pairs), "re-encoded form differs");
    }
    let s = String::from_utf8_lossy(data);
    match percent_decode(&s) {
        Some(d) => {
            assert!(d.len() <= s.len(), "decoding grew {s:?}");
            if !s.contains(['%', '+']) {
                assert_eq!(d, s);
            }
        }
        None => assert!(s.contains('%'), "{s:?} has no escape to break"),
    }
    assert_eq!(percent_decode(&percent_encode(&s)).as_deref(), Some(&*s));
    let Ok(uri) = http::Uri::try_from(data) else { return };
    for name in ["t", "u", ""] {
        let v = query_param(&uri, name);
        assert!(uri.query().is_some() || v.is_none());
    }
    if let Some((k, v)) = uri.query().and_then(|q| q.split('&').next()).map(|p| p.split_once('=').unwrap_or((p, ""))) {
        if let Some(decoded) = percent_decode(v) {
            assert_eq!(query_param(&uri, k), Some(decoded), "the first pair is not found");
        }
    }
}

/// `parse_client_addr`: an address it returns, written out, parses to itself.
pub fn client_addr(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Some(ip) = shared::env::parse_client_addr(&s) {
        assert_eq!(shared::env::parse_client_addr(&ip.to_string()), Some(ip));
    }
}

/// `check_https` with and without an allow-list, and `origin` on what it
/// accepts: the result is an accepted URL of the same length, and an
/// allow-list only ever narrows.
pub fn url(data: &[u8]) {
    use shared::url::{check_https, origin};
    let s = String::from_utf8_lossy(data);
    let open = check_https(&s, &[]);
    let listed = check_https(&s, &["example.com", "open.spotify.com"]);
    if let Ok(out) = &listed {
        assert_eq!(open.as_ref(), Ok(out), "the allow-list widened what is accepted");
    }
    if let Ok(out) = &open {
        assert!(out.starts_with("https://") && out.len() == s.len() && out.eq_ignore_ascii_case(&s), "{s:?} became {out:?}");
        assert_eq!(check_https(out, &[]).as_ref(), Ok(out), "not idempotent");
        let o = origin(out);
        assert!(out.starts_with(o) && o.len() > "https://".len(), "{o:?}");
        assert_eq!(check_https(o, &[]).as_deref(), Ok(o), "origin of an accepted URL is refused");
    }
}

/// `Mmdb::open` over the input, then lookups: fixed addresses and ones
/// taken from the input. A lookup gives the same answer twice (the IPv4
/// start node is cached after the first).
pub fn mmdb(data: &[u8]) {
    let Ok(db) = Mmdb::open(data) else { return };
    let meta = db.metadata();
    assert!(matches!(meta.record_size, 24 | 28 | 32) && matches!(meta.ip_version, 4 | 6) && meta.node_count > 0, "{meta:?}");
    let mut ips: Vec<IpAddr> = vec![
        Ipv4Addr::new(1, 2, 3, 4).into(),
        Ipv4Addr::new(10, 1, 2, 3).into(),
        Ipv4Addr::new(81, 2, 69, 160).into(),
        Ipv4Addr::BROADCAST.into(),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(),
        Ipv6Addr::new(0x2a02, 0xd8c0, 0, 0, 0, 0, 0, 1).into(),
        Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped().into(),
    ];
    if let Some(b) = data.first_chunk::<16>() {
        ips.push(Ipv6Addr::from(*b).into());
        ips.push(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into());
    }
    for ip in ips {
        let first = db.lookup(ip);
        let again = db.lookup(ip);
        assert_eq!(first.as_ref().ok(), again.as_ref().ok(), "{ip}: lookups disagree");
        assert_eq!(first.is_ok(), again.is_ok(), "{ip}: lookups disagree");
        if let Ok(Some(place)) = first {
            assert!(place.country.is_some() || place.region.is_some() || place.city.is_some(), "{ip}: empty place");
            if let Some(c) = &place.country {
                assert!(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()), "{c:?}");
            }
        }
        let _ = shared::geo::lookup(std::slice::from_ref(&db), ip);
    }
}

/// `totp::verify`, `base32_decode` and `normalize_recovery`.
pub fn totp(data: &[u8]) {
    // base32 round trips both ways; only one text (up to case, spaces and
    // padding) decodes to a given secret.
    assert_eq!(totp::base32_decode(&totp::base32(data)).as_deref(), Some(data));
    let s = String::from_utf8_lossy(data);
    if let Some(bytes) = totp::base32_decode(&s) {
        let canonical: String = s.chars().filter(|c| !matches!(c, ' ' | '=')).map(|c| c.to_ascii_uppercase()).collect();
        assert_eq!(totp::base32(&bytes), canonical, "two texts decode to one secret");
    }
    if let Some(code) = totp::normalize_recovery(&s) {
        assert!(code.len() == 10 && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{code:?}");
        assert_eq!(totp::normalize_recovery(&code).as_ref(), Some(&code), "not idempotent");
    }
    // Clock (8 bytes), last used step (8), secret (up to 20), typed code (the rest).
    let Some((clock, rest)) = data.split_first_chunk::<8>() else { return };
    let Some((last, rest)) = rest.split_first_chunk::<8>() else { return };
    let now_ms = i64::from_be_bytes(*clock);
    let last = (clock[0] & 1 == 0).then_some(i64::from_be_bytes(*last));
    let (secret, typed) = rest.split_at(rest.len().min(totp::SECRET_LEN));
    let typed = String::from_utf8_lossy(typed);
    let now = now_ms.div_euclid(totp::STEP_SECS * 1000);
    if let Some(step) = totp::verify(secret, &typed, now_ms, last) {
        assert!((now - 1..=now + 1).contains(&step) && last.is_none_or(|l| step > l), "step {step} at {now}, last {last:?}");
        let digits: String = typed.chars().filter(|&c| c != ' ').collect();
        assert_eq!(digits, format!("{:06}", totp::code_at(secret, step)), "accepted a code that is not the step's");
    }
    // The current code is accepted, as typed or grouped, for now or the step
    // before (should that step's code happen to be the same).
    let code = format!("{:06}", totp::code_at(secret, now));
    for typed in [code.clone(), format!("{} {}", &code[..3], &code[3..])] {
        let step = totp::verify(secret, &typed, now_ms, None);
        assert!(step == Some(now) || step == Some(now - 1), "the current code was refused: {step:?}");
        let step = totp::verify(secret, &typed, now_ms, Some(now));
        assert!(step.is_none() || step == Some(now + 1), "a used step was accepted again: {step:?}");
    }
}

/// `auth::cookie`, `same_origin`, `check_csrf` and `httpx::media_type` on a
/// request whose first input line is the URI and the others `name: value`
/// headers (those the `http` crate refuses are skipped, as a server would
/// never pass them on).
pub fn cookie_csrf(data: &[u8]) {
    use shared::auth::{check_csrf, cookie, same_origin, BINDING_COOKIE, SESSION_COOKIE};
    let mut lines = data.split(|&b| b == b'\n');
    let mut req = http::Request::new(());
    if let Some(uri) = lines.next().and_then(|l| http::Uri::try_from(l).ok()) {
        *req.uri_mut() = uri;
    }
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii_start());
        if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name), http::HeaderValue::from_bytes(value)) {
            req.headers_mut().append(name, value);
        }
    }
    let (parts, ()) = req.into_parts();
    for name in [SESSION_COOKIE, BINDING_COOKIE, "a"] {
        if let Some(v) = cookie(&parts, name) {
            assert!(!v.is_empty() && v.len() <= 128 && !v.contains(';'), "{v:?}");
        }
    }
    // Raw bytes: a header that is present but not plain ASCII counts as
    // present (and so as cross-origin), never as absent.
    let header = |n: &str| parts.headers.get(n).map(http::HeaderValue::as_bytes);
    let same = same_origin(&parts);
    match (header("sec-fetch-site"), header("origin")) {
        (Some(site), _) => assert_eq!(same, site == b"same-origin", "sec-fetch-site {site:?} misread"),
        (None, None) => assert!(same, "a request without Origin was refused"),
        (None, Some(origin)) => {
            if same {
                let host = header("host").or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes()));
                let rest = origin.strip_prefix(b"https://").or_else(|| origin.strip_prefix(b"http://"));
                assert!(matches!((rest, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h)), "Origin {origin:?} accepted for host {host:?}");
            }
        }
    }
    if let Some(mt) = shared::httpx::media_type(&parts) {
        assert!(!mt.is_empty() && !mt.contains(';') && mt == mt.trim() && mt == mt.to_ascii_lowercase(), "{mt:?}");
    }
    let given = cookie(&parts, "csrf");
    if check_csrf(&parts, "expected-token", given).is_ok() {
        assert!(same && given == Some("expected-token"), "CSRF check passed without a same-origin request and the token");
    }
}
