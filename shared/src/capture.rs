//! Capture pages as fans see them: the slug rule, the artist's look (image,
//! colours, message, whether to ask for a first name) and its validation,
//! and the page's HTML, used by `functions/signup` (the public page) and
//! `functions/dashboard` (the artist's preview of a draft), so a preview is
//! the page byte for byte.
//!
//! Styles without weakening the policy: the page's own stylesheet
//! ([`CSS`]) is pinned by hash like every fan page's; an artist's colours
//! are a second `<style>` block whose SHA-256 goes into that page's policy
//! ([`csp`]). Classes can't carry them (any of 16 million colours), and
//! `'unsafe-inline'` or a nonce would loosen the policy for everything.
//! The block depends only on the page, so signup computes it, its hash and
//! the whole policy once per cached page, not per request.

use std::borrow::Cow;
use std::fmt::Write;

use base64::Engine;
use sha2::Digest;

use crate::colour::{self, Rgb, Theme};
use crate::html::{self, escape};
use crate::{Env, Error, ErrorKind};

/// Slugs are lower-case letters, digits and dashes, 1 to 64 of them:
/// anything else cannot name a page (signup answers 404 without a query).
pub fn valid_slug(slug: &str) -> bool {
    (1..=64).contains(&slug.len()) && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Longest artist message, in characters: a short note, not a blog post.
pub const MAX_MESSAGE: usize = 280;
/// Longest first name a fan may give, in characters.
pub const MAX_FIRST_NAME: usize = 64;

/// The page's light background, for a look that sets only a button colour.
pub const DEFAULT_BACKGROUND: Rgb = Rgb([0xf4, 0xf4, 0xf5]);

/// An artist's look for one page, validated. The default is the plain page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Look {
    pub artist_image_url: Option<String>,
    pub theme: Option<Theme>,
    pub message: Option<String>,
    pub ask_first_name: bool,
}

/// A look as typed in the dashboard's form (or as stored): text fields,
/// empty meaning unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct LookInput<'a> {
    pub artist_image_url: &'a str,
    pub background: &'a str,
    pub button: &'a str,
    pub message: &'a str,
    pub ask_first_name: bool,
}

impl Look {
    /// Every problem in `input`, each naming its form field
    /// (`artist_image_url`, `background`, `button`, `message`).
    pub fn check(input: LookInput<'_>) -> Result<Look, Vec<Error>> {
        let (image, theme, message) = (check_image(input.artist_image_url), check_theme(input.background, input.button), check_message(input.message));
        match (image, theme, message) {
            (Ok(artist_image_url), Ok(theme), Ok(message)) => Ok(Look { artist_image_url, theme, message, ask_first_name: input.ask_first_name }),
            (image, theme, message) => Err(image.err().into_iter().chain(theme.err().into_iter().flatten()).chain(message.err()).collect()),
        }
    }

    /// A stored look, checked again as it is read: a piece that no longer
    /// passes (rules tightened, a row written by hand) is left out and
    /// reported to `log`, and the rest of the page still shows.
    pub fn from_stored(input: LookInput<'_>, log: impl Fn(&str)) -> Look {
        let report = |e: &Error| log(&format!("capture page look: {e}; left out"));
        Look {
            artist_image_url: check_image(input.artist_image_url).unwrap_or_else(|e| {
                report(&e);
                None
            }),
            theme: check_theme(input.background, input.button).unwrap_or_else(|e| {
                e.iter().for_each(report);
                None
            }),
            message: check_message(input.message).unwrap_or_else(|e| {
                report(&e);
                None
            }),
            ask_first_name: input.ask_first_name,
        }
    }

    /// The colours as stored (`#rrggbb`), empty when unset.
    pub fn colours(&self) -> (String, String) {
        self.theme.map(|t| (t.background.hex(), t.button.hex())).unwrap_or_default()
    }
}

fn check_image(url: &str) -> Result<Option<String>, Error> {
    match url.trim() {
        "" => Ok(None),
        url => crate::url::check_https(url, &[])
            .map(Some)
            .map_err(|why| Error::field(ErrorKind::Unprocessable, "artist_image_url", format!("The artist image URL {why}."))),
    }
}

/// Either colour may be left empty: a background alone gets buttons in its
/// text colour (white or near-black), a button alone the plain page's
/// light background.
fn check_theme(background: &str, button: &str) -> Result<Option<Theme>, Vec<Error>> {
    let colour = |s: &str, field| (!s.trim().is_empty()).then(|| colour::parse_field(s, field)).transpose();
    match (colour(background, "background"), colour(button, "button")) {
        (Ok(None), Ok(None)) => Ok(None),
        (Ok(bg), Ok(button)) => {
            let bg = bg.unwrap_or(DEFAULT_BACKGROUND);
            Theme::new(bg, button.unwrap_or_else(|| bg.text_on()), ("background", "button"))
        }
        .map(Some)
        .map_err(|e| vec![e]),
        (bg, button) => Err(bg.err().into_iter().chain(button.err()).collect()),
    }
}

fn check_message(s: &str) -> Result<Option<String>, Error> {
    let s = s.trim().replace("\r\n", "\n");
    if s.is_empty() {
        return Ok(None);
    }
    let invalid = |m: &'static str| Err(Error::field(ErrorKind::Unprocessable, "message", m));
    if s.chars().count() > MAX_MESSAGE {
        return invalid("The message is longer than 280 characters. Shorten it: fans read it on a phone, above the form.");
    }
    if s.chars().any(|c| c.is_control() && c != '\n') {
        return invalid("The message contains control characters (such as tabs). Type it as plain text; line breaks are fine.");
    }
    Ok(Some(s))
}

/// A fan's first name: trimmed, at most [`MAX_FIRST_NAME`] characters, on
/// one line; empty is no name.
pub fn check_first_name(s: &str) -> Result<Option<&str>, Error> {
    let s = s.trim();
    let invalid = |m: &'static str| Err(Error::field(ErrorKind::Unprocessable, "first_name", m));
    if s.chars().count() > MAX_FIRST_NAME {
        return invalid("Your first name is longer than 64 characters. A shorter form of it is fine.");
    }
    if s.chars().any(char::is_control) {
        return invalid("Your first name contains a control character (such as a line break). Type it on one line.");
    }
    Ok((!s.is_empty()).then_some(s))
}

/// Associated data a fan's first name is encrypted with: bound to the
/// artist and the fan's address index, so a value copied to another fan's
/// row does not decrypt. (Not the fan's id, as the address is: a signup
/// writes the name in the same batch that may find an existing fan, whose
/// id it does not know. Correcting the address re-encrypts the name.)
pub fn fan_name_context(artist_id: &str, email_hash: &str) -> String {
    format!("fan.name:{artist_id}:{email_hash}")
}

/// The capture page's stylesheet: mobile first, system fonts, light and
/// dark. Error and input colours are fixed pairs so they read on any
/// artist background.
pub const CSS: &str = concat!(
    ":root{color-scheme:light dark}",
    "body{font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;margin:0;padding:1.25rem 1.25rem 2rem;color:#111;background:#f4f4f5}",
    "main{max-width:26rem;margin:0 auto}",
    ".hero{display:block;width:100%;height:auto;aspect-ratio:1;object-fit:cover;border-radius:1rem;box-shadow:0 .75rem 2.5rem #0004;margin:0 0 1.25rem}",
    "h1{font-size:1.75rem;line-height:1.2;margin:.25rem 0;overflow-wrap:anywhere}",
    ".by{margin:0 0 1rem;font-weight:600}",
    ".msg{font-size:1.1rem;margin:0 0 1.25rem;white-space:pre-line;overflow-wrap:anywhere}",
    "label{display:block;margin:.9rem 0 .3rem;font-weight:600}",
    "label i{font-style:normal;font-weight:400}",
    "input[type=email],input[type=text]{width:100%;box-sizing:border-box;padding:.75rem;font-size:1rem;border:1px solid #767676;border-radius:.5rem;background:#fff;color:#111}",
    ".consent{display:flex;gap:.6rem;align-items:flex-start;font-weight:400}",
    ".consent input{margin:.2rem 0 0;width:1.25rem;height:1.25rem;flex:none}",
    "button{margin-top:1.25rem;width:100%;padding:.9rem;font:inherit;font-size:1.05rem;font-weight:700;border:0;border-radius:.6rem;background:#111;color:#fff;cursor:pointer}",
    ".hp{position:absolute;left:-10000px}",
    ".err{margin:1rem 0;padding:.6rem .8rem;border-radius:.5rem;background:#fde8e8;color:#8a0010;font-weight:600}",
    "small{display:block;font-size:.85rem;margin-top:1rem}",
    "a{color:inherit}",
    "@media(prefers-color-scheme:dark){body{color:#f4f4f5;background:#111}input[type=email],input[type=text]{background:#1c1c1f;color:#f4f4f5;border-color:#8f8f8f}button{background:#f4f4f5;color:#111}}",
    "@media(min-width:40rem){body{padding-top:3rem}}",
);

/// `sha256-…` of [`CSS`], for the policy; pinned by a test.
pub const CSS_HASH: &str = "sha256-6D7xf2rxf6p4R1VIhUiGULN93jvY9cruw6Om4mYutQE=";

/// The artist's colours as a second stylesheet, after [`CSS`] so it wins in
/// both colour schemes: the artist's look is the look. Text colours are the
/// ones [`Theme`] derived for contrast; inputs keep their fixed pair.
pub fn theme_css(t: &Theme) -> String {
    let mut css = String::with_capacity(200);
    css.push_str(if t.text == Rgb::WHITE { ":root{color-scheme:dark}" } else { ":root{color-scheme:light}" });
    css.push_str("body{background:");
    t.background.write(&mut css);
    css.push_str(";color:");
    t.text.write(&mut css);
    css.push_str("}button{background:");
    t.button.write(&mut css);
    css.push_str(";color:");
    t.button_text.write(&mut css);
    css.push_str("}.consent input{accent-color:");
    t.button.write(&mut css);
    css.push_str("}input[type=email],input[type=text]{background:#fff;color:#111;border-color:#767676}");
    css
}

/// `sha256-…` of a stylesheet, as a policy names it.
pub fn style_hash(css: &str) -> String {
    let digest = sha2::Sha256::digest(css.as_bytes());
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest))
}

/// The page's policy: no script, nothing loaded but images, forms post only
/// to us (and `form_target`, where the page redirects after signing up),
/// never framed. `theme_hash`: the artist's colours' block, if any.
pub fn csp(theme_hash: Option<&str>, form_target: Option<&str>) -> String {
    let theme = theme_hash.map(|h| format!(" '{h}'")).unwrap_or_default();
    let target = form_target.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'none'; style-src '{CSS_HASH}'{theme}; img-src 'self' https: data:; form-action 'self'{target}; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// What the page shows of a capture page.
pub struct View<'a> {
    pub title: &'a str,
    pub artist_id: &'a str,
    pub artist_name: &'a str,
    pub consent_text: &'a str,
}

/// What the fan typed, kept in the form when it comes back with an error.
#[derive(Default, Clone, Copy)]
pub struct Typed<'a> {
    pub email: &'a str,
    pub first_name: &'a str,
}

/// The page, its look applied. `theme_css`: [`theme_css`] of the look's
/// theme (computed once by the caller, who also puts its hash in the
/// policy); `url`: the page's public address, for sharing tags.
pub fn render_page(page: &View<'_>, look: &Look, theme_css: Option<&str>, url: Option<&str>, env: &impl Env, error: Option<&str>, typed: Typed<'_>) -> String {
    let mut b = String::with_capacity(CSS.len() + 3072);
    let _ = write!(
        b,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{} – {}</title>",
        escape(page.title),
        escape(page.artist_name)
    );
    let description: Cow<'_, str> = match &look.message {
        Some(m) => m.as_str().into(),
        None => format!("Join {}'s mailing list.", page.artist_name).into(),
    };
    meta(&mut b, "name", "description", &description);
    if let Some(url) = url {
        let _ = write!(b, "<link rel=\"canonical\" href=\"{}\">", escape(url));
        meta(&mut b, "property", "og:url", url);
    }
    meta(&mut b, "property", "og:type", "website");
    meta(&mut b, "property", "og:title", page.title);
    meta(&mut b, "property", "og:description", &description);
    meta(&mut b, "name", "twitter:title", page.title);
    meta(&mut b, "name", "twitter:description", &description);
    if let Some(img) = &look.artist_image_url {
        meta(&mut b, "property", "og:image", img);
        meta(&mut b, "property", "og:image:alt", page.artist_name);
        meta(&mut b, "name", "twitter:card", "summary_large_image");
        meta(&mut b, "name", "twitter:image", img);
    } else {
        meta(&mut b, "name", "twitter:card", "summary");
    }
    if let Some(t) = &look.theme {
        meta(&mut b, "name", "theme-color", &t.background.hex());
    }
    let _ = write!(b, "<style>{CSS}</style>");
    if let Some(css) = theme_css {
        let _ = write!(b, "<style>{css}</style>");
    }
    b.push_str("</head><body><main>");
    if let Some(img) = &look.artist_image_url {
        // Width and height reserve the square before the image arrives.
        let _ = write!(b, "<img class=\"hero\" src=\"{}\" alt=\"{}\" width=\"640\" height=\"640\">", escape(img), escape(page.artist_name));
    }
    let _ = write!(b, "<h1>{}</h1><p class=\"by\">Join {}'s mailing list.</p>", escape(page.title), escape(page.artist_name));
    if let Some(m) = &look.message {
        let _ = write!(b, "<p class=\"msg\">{}</p>", escape(m));
    }
    form(&mut b, page, look.ask_first_name, error, typed);
    notice(&mut b, page, env);
    b.push_str("</main></body></html>");
    b
}

fn meta(b: &mut String, attr: &str, name: &str, content: &str) {
    let _ = write!(b, "<meta {attr}=\"{name}\" content=\"{}\">", escape(content));
}

fn form(b: &mut String, page: &View<'_>, ask_first_name: bool, error: Option<&str>, typed: Typed<'_>) {
    if let Some(e) = error {
        let _ = write!(b, "<p class=\"err\" role=\"alert\">{}</p>", escape(e));
    }
    b.push_str("<form method=\"post\">");
    if ask_first_name {
        let _ = write!(
            b,
            "<label for=\"first_name\">First name <i>(optional)</i></label>\
             <input id=\"first_name\" name=\"first_name\" type=\"text\" maxlength=\"64\" autocomplete=\"given-name\" value=\"{}\">",
            escape(typed.first_name)
        );
    }
    let _ = write!(
        b,
        "<label for=\"email\">Email address</label>\
         <input id=\"email\" name=\"email\" type=\"email\" required maxlength=\"254\" autocomplete=\"email\" inputmode=\"email\" value=\"{}\">\
         <div class=\"hp\" aria-hidden=\"true\"><label for=\"website\">Leave this empty</label><input id=\"website\" name=\"website\" tabindex=\"-1\" autocomplete=\"off\"></div>\
         <label class=\"consent\"><input type=\"checkbox\" name=\"consent\" value=\"yes\" required> <span>{}</span></label>\
         <button type=\"submit\">Sign up</button></form>",
        escape(typed.email),
        escape(page.consent_text),
    );
}

/// What is recorded, said plainly under the form.
fn notice(b: &mut String, page: &View<'_>, env: &impl Env) {
    let _ = write!(
        b,
        "<small>When you sign up we record your email address (stored encrypted), the time, this page, \
         the consent text you agreed to, and your approximate location (country, region and city), \
         worked out from your IP address. We do not keep your IP address. You can unsubscribe at any time \
         with one click from any email. <a href=\"/privacy/{}\">Your data and your rights</a></small>",
        crate::httpx::percent_encode(page.artist_id)
    );
    if let Some(age) = html::age_notice(env) {
        let _ = write!(b, "<small>{age}</small>");
    }
    if let Some((text, url)) = env.geo_attribution() {
        let _ = write!(b, "<small><a href=\"{}\">{}</a></small>", escape(url), escape(text));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn css_hash_matches_css() {
        assert_eq!(CSS_HASH, style_hash(CSS), "update CSS_HASH after editing CSS");
    }

    fn input<'a>(image: &'a str, background: &'a str, button: &'a str, message: &'a str) -> LookInput<'a> {
        LookInput { artist_image_url: image, background, button, message, ask_first_name: true }
    }

    #[test]
    fn a_look_is_checked_field_by_field() {
        let look = Look::check(input(" https://img.example/nova.jpg ", "#1E1B4B", "", " Hi!\r\nNew album in May. ")).unwrap();
        assert_eq!(look.artist_image_url.as_deref(), Some("https://img.example/nova.jpg"));
        assert_eq!(look.colours(), ("#1e1b4b".to_owned(), "#ffffff".to_owned()), "a background alone: buttons in its text colour");
        assert_eq!(look.message.as_deref(), Some("Hi!\nNew album in May."));
        assert_eq!(Look::check(input("", "", "", "")).unwrap(), Look { ask_first_name: true, ..Look::default() });
        // (input, the fields refused, a phrase of the first error)
        let long = "x".repeat(281);
        let cases: &[(LookInput<'_>, &[&str], &str)] = &[
            (input("http://img.example/a.jpg", "", "", ""), &["artist_image_url"], "must start with https://"),
            (input("javascript:alert(1)", "", "", ""), &["artist_image_url"], "https://"),
            (input("", "navy", "", ""), &["background"], "#rrggbb"),
            (input("", "#777777", "", ""), &["background"], "4.5:1"),
            (input("", "#ffffff", "#f0f0f0", ""), &["button"], "too close"),
            (input("", "#12345", "#zzzzzz", ""), &["background", "button"], "#rrggbb"),
            (input("", "", "", &long), &["message"], "280 characters"),
            (input("", "", "", "tab\there"), &["message"], "control characters"),
            (input("ftp://x", "red", "", "\u{7}"), &["artist_image_url", "background", "message"], "https://"),
        ];
        for (i, fields, phrase) in cases {
            let errors = Look::check(*i).unwrap_err();
            let named: Vec<_> = errors.iter().map(|e| e.field.unwrap()).collect();
            assert_eq!(&named, fields, "{i:?}");
            assert!(errors[0].public_message().contains(phrase), "{i:?}: {}", errors[0]);
            assert!(errors.iter().all(|e| e.status() == 422));
        }
    }

    #[test]
    fn a_stored_look_keeps_what_still_passes() {
        let logged = std::cell::RefCell::new(Vec::new());
        let look = Look::from_stored(input("http://old.example/a.jpg", "#1e1b4b", "#facc15", "Hello"), |m| logged.borrow_mut().push(m.to_owned()));
        assert_eq!(look.artist_image_url, None);
        assert!(look.theme.is_some() && look.message.as_deref() == Some("Hello"));
        assert_eq!(logged.borrow().len(), 1, "{:?}", logged.borrow());
    }

    #[test]
    fn first_names_are_trimmed_short_and_on_one_line() {
        assert_eq!(check_first_name("  Ana María ").unwrap(), Some("Ana María"));
        assert_eq!(check_first_name("   ").unwrap(), None);
        assert_eq!(check_first_name(&"é".repeat(64)).unwrap().map(|s| s.chars().count()), Some(64));
        for bad in ["é".repeat(65), "Ana\nMaría".to_owned(), "A\u{0}".to_owned(), "\u{1b}[31mX".to_owned()] {
            let e = check_first_name(&bad).unwrap_err();
            assert_eq!((e.field, e.status().as_u16()), (Some("first_name"), 422), "{bad:?}");
        }
    }

    #[test]
    fn the_theme_block_and_the_policy_agree() {
        let theme = Theme::new(Rgb([0x1e, 0x1b, 0x4b]), Rgb([0xfa, 0xcc, 0x15]), ("background", "button")).unwrap();
        let css = theme_css(&theme);
        assert!(css.contains("body{background:#1e1b4b;color:#ffffff}") && css.contains("button{background:#facc15;color:#111111}"), "{css}");
        let policy = csp(Some(&style_hash(&css)), Some("https://shop.example"));
        assert!(policy.contains(&format!("style-src '{CSS_HASH}' '{}'", style_hash(&css))), "{policy}");
        assert!(policy.contains("form-action 'self' https://shop.example;") && !policy.contains("unsafe"));
    }
}
