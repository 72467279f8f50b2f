//! Small HTTP helpers shared by the functions: body limits, content types,
//! form decoding, client IP parsing and response builders.

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::StatusCode;

use crate::{Error, ErrorKind, Response};

/// Largest request body a public route accepts (see [`body_limit`] for the
/// exceptions). Adapters stop reading past it and answer 413 before a
/// function runs.
pub const MAX_BODY: usize = 8 * 1024;

/// Routes, by path prefix, that take more than [`MAX_BODY`]: email
/// providers' webhooks carry a bounce's diagnostics and the mail's headers,
/// and are verified (not parsed) before anything reads them.
pub const LARGE_BODY_ROUTES: &[(&str, usize)] = &[("/hooks/", crate::webhook::MAX_INBOUND_BODY)];

/// The largest body a request to `path` may carry: what adapters read at most.
pub fn body_limit(path: &str) -> usize {
    LARGE_BODY_ROUTES.iter().find(|(prefix, _)| path.starts_with(prefix)).map_or(MAX_BODY, |&(_, limit)| limit)
}

/// The request headers a function gets; adapters pass no others (they
/// read what they need themselves: body length, client address). Fetching only
/// these keeps the hot paths cheap (on Workers every header read crosses
/// the JS boundary) and keeps what a function never needs, such as
/// forwarding chains, out of its reach. A function that starts reading a
/// new header adds it here; the end-to-end tests run through the adapters
/// and fail otherwise.
///
/// The last [`BODY_ONLY_HEADERS`] matter only to requests that change
/// state (the CSRF checks read `origin` and `sec-fetch-site`; a webhook's
/// signature headers, under both namings, come with its POST): adapters
/// may skip them for GET and HEAD, which keeps the redirect from paying
/// for them.
pub const REQUEST_HEADERS: [&str; 14] = [
    "authorization",
    "cookie",
    "host",
    "referer",
    "user-agent",
    "content-type",
    "origin",
    "sec-fetch-site",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
];

/// How many names at the end of [`REQUEST_HEADERS`] GET and HEAD skip.
pub const BODY_ONLY_HEADERS: usize = 9;

/// How many names at the end of [`REQUEST_HEADERS`] only inbound webhooks
/// (`/hooks/…`) read: adapters may skip them elsewhere.
pub const SIGNATURE_HEADERS: usize = 6;

pub const HTML: &str = "text/html; charset=utf-8";
pub const JSON: &str = "application/json";

/// The media type of a request, lower-cased, without parameters.
pub fn media_type(req: &http::request::Parts) -> Option<String> {
    let v = req.headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let mt = v.split(';').next()?.trim();
    (!mt.is_empty()).then(|| mt.to_ascii_lowercase())
}

/// Fails with 415 unless the request's media type is `expected`.
pub fn require_media_type(req: &http::request::Parts, expected: &str) -> Result<(), Error> {
    match media_type(req) {
        Some(mt) if mt == expected => Ok(()),
        _ => Err(Error::new(ErrorKind::UnsupportedMediaType, format!("Send the body as {expected}."))),
    }
}

/// Decodes an `application/x-www-form-urlencoded` body into (name, value)
/// pairs. Invalid UTF-8 or percent escapes → 400.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, Error> {
    let bad = || Error::new(ErrorKind::BadRequest, "The form data could not be read. Please submit the form again.");
    let body = std::str::from_utf8(body).map_err(|_| bad())?;
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k).ok_or_else(bad)?, percent_decode(v).ok_or_else(bad)?))
        })
        .collect()
}

/// Percent-encodes everything but RFC 3986's unreserved characters: safe
/// in a query value or a path segment.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `+` and `%XX` escapes; `None` on a broken escape or bad UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex_val(*bytes.get(i + 1)?)?;
                let lo = hex_val(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Value of query parameter `name`, decoded.
pub fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v)).flatten()
    })
}

/// A response with a body and content type. `no-store` by default: most
/// answers are personal or state-changing; cacheable ones override it.
pub fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    res
}

/// `{"error":{"code":…,"message":…,"field":…}}`, with `Retry-After` on 429.
pub fn json_error(err: &Error) -> Response {
    let body = serde_json::json!({
        "error": { "code": err.code(), "message": err.public_message(), "field": err.field }
    });
    let mut res = respond(err.status(), JSON, body.to_string());
    add_retry_after(&mut res, err);
    res
}

/// Whether a request's body is an HTML form's (its errors are pages).
pub fn is_form(content_type: Option<&[u8]>) -> bool {
    content_type.is_some_and(|ct| {
        let ct = ct.trim_ascii_start();
        ct.len() >= 19 && (ct[..19].eq_ignore_ascii_case(b"application/x-www-f") || ct[..19].eq_ignore_ascii_case(b"multipart/form-data"))
    })
}

/// An error an adapter answers with before any function runs (a body over
/// [`MAX_BODY`], an unreadable request): a page for a form post, so the
/// person who sent it reads a sentence, JSON for everyone else.
pub fn early_error(err: &Error, form: bool) -> Response {
    if !form {
        return json_error(err);
    }
    let body = format!("<h1>That didn't go through</h1><p role=\"alert\">{}</p><p>Go back and try again.</p>", crate::html::escape(err.public_message()));
    let mut res = crate::html::response(err.status(), crate::html::page("Error", &body));
    add_retry_after(&mut res, err);
    res
}

pub fn add_retry_after(res: &mut Response, err: &Error) {
    if let ErrorKind::RateLimited { retry_after } = err.kind {
        res.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after));
    }
}

/// The 413 an adapter returns when a body exceeds [`MAX_BODY`].
pub fn too_large() -> Error {
    too_large_for(MAX_BODY)
}

/// The 413 for a body over `limit` (a route's [`body_limit`]).
pub fn too_large_for(limit: usize) -> Error {
    Error::new(ErrorKind::PayloadTooLarge, format!("The request body is larger than {} KB.", limit / 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let f = parse_form(b"email=a%2Bb%40x.io&consent=yes&website=&x").unwrap();
        assert_eq!(f[0], ("email".into(), "a+b@x.io".into()));
        assert_eq!(f[1], ("consent".into(), "yes".into()));
        assert_eq!(f[2], ("website".into(), "".into()));
        assert_eq!(f[3], ("x".into(), "".into()));
        assert_eq!(parse_form(b"a=hello+world").unwrap()[0].1, "hello world");
        for bad in [&b"a=%zz"[..], b"a=%4", b"a=%ff", b"\xff=1"] {
            assert_eq!(parse_form(bad).unwrap_err().kind, ErrorKind::BadRequest, "{bad:?}");
        }
    }

    #[test]
    fn media_type_ignores_params_and_case() {
        let req = http::Request::builder().header("content-type", "Application/JSON; charset=utf-8").body(()).unwrap();
        let (parts, _) = req.into_parts();
        assert!(require_media_type(&parts, JSON).is_ok());
        assert_eq!(require_media_type(&parts, HTML).unwrap_err().kind, ErrorKind::UnsupportedMediaType);
    }

    #[test]
    fn percent_encoding_round_trips() {
        for s in ["a b+c@d.e", "Linköping", "x=1&y=%", ""] {
            assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
        }
        assert_eq!(percent_encode("a b@x.io"), "a%20b%40x.io");
    }

    #[test]
    fn query_params() {
        let uri: http::Uri = "/s/x/confirm?t=a%2Eb&u=".parse().unwrap();
        assert_eq!(query_param(&uri, "t").as_deref(), Some("a.b"));
        assert_eq!(query_param(&uri, "u").as_deref(), Some(""));
        assert_eq!(query_param(&uri, "v"), None);
    }

    #[test]
    fn early_errors_are_pages_for_forms() {
        let e = too_large();
        let page = early_error(&e, is_form(Some(b"application/x-www-form-urlencoded; charset=utf-8")));
        assert_eq!(page.status(), 413);
        assert_eq!(page.headers()["content-type"], HTML);
        assert!(String::from_utf8_lossy(page.body()).contains("larger than 8 KB"));
        assert!(is_form(Some(b"Multipart/Form-Data; boundary=x")));
        for other in [Some(&b"application/json"[..]), Some(b"text/plain"), None, Some(b"application/x-www")] {
            assert!(!is_form(other), "{other:?}");
        }
        assert_eq!(early_error(&e, false).headers()["content-type"], JSON);
    }

    #[test]
    fn body_limits_by_route() {
        assert_eq!(body_limit("/s/demo"), MAX_BODY);
        assert_eq!(body_limit("/api/v1/signup"), MAX_BODY);
        assert_eq!(body_limit("/hooks/email/resend"), 64 * 1024);
        assert_eq!(body_limit("/hooksx"), MAX_BODY);
        assert!(too_large_for(body_limit("/hooks/email/resend")).message.contains("64 KB"));
    }

    #[test]
    fn json_error_shape() {
        let e = Error::field(ErrorKind::Unprocessable, "email", "Bad.");
        let res = json_error(&e);
        assert_eq!(res.status(), 422);
        let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(v["error"]["code"], "invalid");
        assert_eq!(v["error"]["field"], "email");
        let e = Error::new(ErrorKind::RateLimited { retry_after: 30 }, "Slow down.");
        assert_eq!(json_error(&e).headers()["retry-after"], "30");
        let e = Error::internal("db path /secret leaked");
        assert!(!String::from_utf8_lossy(json_error(&e).body()).contains("secret"));
    }
}
