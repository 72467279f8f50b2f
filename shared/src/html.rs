//! HTML rendering helpers: escaping and the page shell shared by the
//! fan-facing pages. Pages are plain server-rendered HTML: no script at all,
//! one small stylesheet pinned by hash in the Content-Security-Policy.

use std::fmt::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.bytes().any(|b| matches!(b, b'<' | b'>' | b'&' | b'"' | b'\'')) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out.into()
}

/// Mobile-first, system fonts, no external assets.
pub const CSS: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:1.25rem;color:#111;background:#fafafa}main{max-width:28rem;margin:0 auto}h1{font-size:1.5rem;margin:.5rem 0 1rem}label{display:block;margin:.75rem 0 .25rem;font-weight:600}input[type=email]{width:100%;box-sizing:border-box;padding:.7rem;font-size:1rem;border:1px solid #888;border-radius:.4rem}.consent{display:flex;gap:.5rem;align-items:flex-start;font-weight:400}.consent input{margin-top:.3rem}button{margin-top:1rem;width:100%;padding:.8rem;font-size:1rem;border:0;border-radius:.4rem;background:#111;color:#fff}.hp{position:absolute;left:-10000px}.err{color:#a00;font-weight:600}small,.note{color:#555;font-size:.85rem}a{color:#03c}";

/// `sha256-…` of [`CSS`], for the CSP; pinned by a test so a CSS edit that
/// forgets it fails loudly instead of unstyling every page.
pub const CSS_HASH: &str = "sha256-i44Pi9RQfQqYxX/BNoWjlQFsZS2GLrHzSgg2+5Jf3aI=";

/// Strict policy for fan pages: no script, no external loads, forms post
/// only to us, never framed.
pub fn csp() -> String {
    csp_with_form_target(None)
}

/// The same, letting a form's answer redirect to `origin` too: Chromium
/// applies `form-action` to the redirects that follow a form post, so a
/// capture page that sends fans to the artist's site after signing up
/// must name that site.
pub fn csp_with_form_target(origin: Option<&str>) -> String {
    let extra = origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!("default-src 'none'; style-src '{CSS_HASH}'; img-src 'self' https: data:; form-action 'self'{extra}; base-uri 'none'; frame-ancestors 'none'")
}

/// The age notice every fan page shows, from setting `min_age` (16 by
/// default: the GDPR's age of consent where a country sets none lower; 0
/// shows none). A value that doesn't parse keeps the default rather than
/// dropping the notice.
pub fn age_notice(env: &impl crate::Env) -> Option<String> {
    let age = env.var("min_age").and_then(|v| v.trim().parse::<u8>().ok()).unwrap_or(16);
    (age > 0).then(|| format!("Not for children under {age}."))
}

/// Wraps `body` in the page shell.
pub fn page(title: &str, body: &str) -> String {
    let mut out = String::with_capacity(CSS.len() + body.len() + 256);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    );
    out
}

/// An HTML response with the fan-page security headers.
pub fn response(status: http::StatusCode, html: String) -> crate::Response {
    response_with_form_target(status, html, None)
}

/// [`response`] for a page whose form may redirect to `origin`.
pub fn response_with_form_target(status: http::StatusCode, html: String, origin: Option<&str>) -> crate::Response {
    let mut res = crate::httpx::respond(status, crate::httpx::HTML, html);
    let h = res.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(&csp_with_form_target(origin)) {
        h.insert(http::header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(http::header::REFERRER_POLICY, http::HeaderValue::from_static("no-referrer"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use sha2::Digest;

    #[test]
    fn css_hash_matches_css() {
        let digest = sha2::Sha256::digest(CSS.as_bytes());
        let expected = format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest));
        assert_eq!(CSS_HASH, expected, "update CSS_HASH after editing CSS");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert!(matches!(escape("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
