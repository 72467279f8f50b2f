//! URL checks shared by every place that takes a URL from outside and
//! later sends a browser there (smart-link targets, capture pages'
//! redirect after signup): https only, ASCII only (punycode for IDNs, so
//! it fits in a `Location` header), a real host name, no user name, port
//! or IP literal, and an optional allow-list of domains.

use std::borrow::Cow;

/// Longest URL accepted.
pub const MAX_URL: usize = 2048;

/// Characters allowed anywhere in a target URL: RFC 3986's unreserved and
/// reserved sets without brackets (IP literals are refused anyway) plus `%`
/// for escapes. No space, quote, angle bracket or backslash: browsers read
/// `\` as `/`, which is how allow-lists get bypassed.
fn url_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#@!$&'()*+,;=%".contains(&b)
}

/// Checks an https URL and returns it with the scheme and host in lower
/// case. `hosts` empty: any public host name. Errors complete a sentence
/// that starts with the field's name.
pub fn check_https(url: &str, hosts: &[&str]) -> Result<String, Cow<'static, str>> {
    if url.len() > MAX_URL {
        return Err(format!("is longer than {MAX_URL} characters").into());
    }
    let rest = match url.get(..8) {
        Some(scheme) if scheme.eq_ignore_ascii_case("https://") => &url[8..],
        _ => return Err("must start with https://".into()),
    };
    if !url.bytes().all(url_char) {
        return Err("contains a space or a character that must be percent-encoded".into());
    }
    if !escapes_ok(url.as_bytes()) {
        return Err("has a broken %-escape".into());
    }
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err("must not contain a user name or password".into());
    }
    if authority.contains(':') {
        return Err("must not name a port".into());
    }
    let host = authority.to_ascii_lowercase();
    check_host(&host)?;
    if !hosts.is_empty() && !hosts.iter().any(|d| on_domain(&host, d)) {
        return Err(format!("must be on {} (or a subdomain), not {host}", hosts.join(", ")).into());
    }
    let mut out = String::with_capacity(url.len());
    out.push_str("https://");
    out.push_str(&host);
    out.push_str(tail);
    Ok(out)
}

fn escapes_ok(b: &[u8]) -> bool {
    b.iter()
        .enumerate()
        .filter(|(_, &c)| c == b'%')
        .all(|(i, _)| b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
}

fn check_host(host: &str) -> Result<(), Cow<'static, str>> {
    if host.is_empty() {
        return Err("has no host name".into());
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.iter().all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit())) {
        return Err("must use a host name, not an IP address".into());
    }
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') && !l.starts_with('-') && !l.ends_with('-')
    };
    let tld_ok = labels.last().is_some_and(|t| !t.bytes().all(|b| b.is_ascii_digit()));
    if host.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) || !tld_ok {
        return Err(format!("has an invalid host name \"{host}\"").into());
    }
    Ok(())
}

/// `host` is `domain` or a subdomain of it (so `evilspotify.com` and
/// `spotify.com.evil.net` are not Spotify).
fn on_domain(host: &str, domain: &str) -> bool {
    host == domain || (host.len() > domain.len() && host.ends_with(domain) && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// `https://host` of a URL [`check_https`] accepted: the origin to allow
/// in a Content-Security-Policy.
pub fn origin(checked: &str) -> &str {
    let rest = checked.strip_prefix("https://").unwrap_or(checked);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    &checked[..checked.len() - rest.len() + end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_must_be_https_ascii_hosts() {
        assert_eq!(check_https("HTTPS://Shop.Example.com/thanks?x=1", &[]).as_deref(), Ok("https://shop.example.com/thanks?x=1"));
        for bad in [
            "http://shop.example.com/",
            "https://bücher.example/",
            "https://shop.example.com/ä",
            "https://user@shop.example.com/",
            "https://shop.example.com:8443/",
            "https://10.0.0.1/",
            "javascript:alert(1)",
            "https://shop/",
        ] {
            assert!(check_https(bad, &[]).is_err(), "{bad} accepted");
        }
        assert!(check_https("https://xn--bcher-kva.example/", &[]).is_ok(), "punycode is ASCII");
        assert_eq!(origin("https://shop.example.com/thanks?x=1"), "https://shop.example.com");
        assert_eq!(origin("https://shop.example.com"), "https://shop.example.com");
    }
}
