//! Parsing and validating a signup, identical for the form and the JSON API.

use shared::email::Email;
use shared::http::request::Parts;
use shared::ratelimit::{self, Limit, Window};
use shared::{httpx, Env, Error, ErrorKind};

use crate::store::Page;

/// What both paths extract before validation.
pub struct Fields<'a> {
    pub email: &'a str,
    pub consent: bool,
    /// The honeypot: a field people never see, so only bots fill it in.
    pub honeypot: &'a str,
    /// Optional, on pages that ask for it; empty: none given.
    pub first_name: &'a str,
}

/// A signup that passed the checks.
pub struct Valid<'a> {
    pub email: Email,
    pub first_name: Option<&'a str>,
}

pub struct Form {
    pub email: String,
    pub first_name: String,
    consent: bool,
    honeypot: String,
}

impl Form {
    pub fn parse(parts: &Parts, body: &[u8]) -> Result<Form, Error> {
        httpx::require_media_type(parts, "application/x-www-form-urlencoded")?;
        let mut form = Form { email: String::new(), first_name: String::new(), consent: false, honeypot: String::new() };
        for (name, value) in httpx::parse_form(body)? {
            match name.as_str() {
                "email" => form.email = value,
                "first_name" => form.first_name = value,
                // A checked box sends its value; an unchecked one sends nothing.
                "consent" => form.consent = !value.is_empty(),
                "website" => form.honeypot = value,
                _ => {}
            }
        }
        Ok(form)
    }

    pub fn fields(&self) -> Fields<'_> {
        Fields { email: &self.email, consent: self.consent, honeypot: &self.honeypot, first_name: &self.first_name }
    }
}

#[derive(serde::Deserialize)]
pub struct Json {
    pub page: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    consent: bool,
    #[serde(default)]
    website: String,
    #[serde(default)]
    first_name: String,
}

impl Json {
    pub fn parse(parts: &Parts, body: &[u8]) -> Result<Json, Error> {
        httpx::require_media_type(parts, httpx::JSON)?;
        serde_json::from_slice(body).map_err(|e| {
            let msg = if e.is_data() {
                format!("The JSON body has a wrong or missing field: {e}. Expected {{\"page\": string, \"email\": string, \"consent\": true}} and optionally \"first_name\": string.")
            } else {
                "The body is not valid JSON.".to_owned()
            };
            Error::new(ErrorKind::BadRequest, msg)
        })
    }

    pub fn fields(&self) -> Fields<'_> {
        Fields { email: &self.email, consent: self.consent, honeypot: &self.website, first_name: &self.first_name }
    }
}

/// `ask_first_name`: the page asks for one. A name sent to a page that
/// doesn't is refused rather than dropped, so an embed that sends one
/// learns the page's setting instead of losing names without a word.
pub fn validate<'a>(f: Fields<'a>, ask_first_name: bool) -> Result<Valid<'a>, Error> {
    if !f.honeypot.is_empty() {
        return Err(Error::field(
            ErrorKind::BadRequest,
            "website",
            "This form looks automatically filled in. If you are a person, leave the hidden \"website\" field empty.",
        ));
    }
    let email = Email::parse(f.email).map_err(|e| Error::field(ErrorKind::Unprocessable, "email", e.message()))?;
    let first_name = shared::capture::check_first_name(f.first_name)?;
    if first_name.is_some() && !ask_first_name {
        return Err(Error::field(
            ErrorKind::Unprocessable,
            "first_name",
            "This page does not ask for a first name: leave first_name out, or turn on \"Ask for the fan's first name\" in the page's settings.",
        ));
    }
    if !f.consent {
        return Err(Error::field(ErrorKind::Unprocessable, "consent", "Please tick the box to agree to receive emails."));
    }
    Ok(Valid { email, first_name })
}

/// Default limits; each is a named setting (`signup_ip_limit`,
/// `signup_page_limit`, format `count/seconds`).
pub const IP_LIMIT: Limit = Limit { limit: 10, window_secs: 600 };
pub const PAGE_LIMIT: Limit = Limit { limit: 1000, window_secs: 600 };

/// The client's and the page's current windows, counted exactly in the
/// signup's own batch (see `shared::ratelimit`).
pub fn rate_windows(env: &impl Env, keys: &shared::crypto::Keys, page: &Page) -> [Window; 2] {
    let now = env.now_ms();
    let client = ratelimit::client_key(keys, "signup-client", env.client());
    [
        Window::new(
            client,
            Limit::from_env(env, "signup_ip_limit", IP_LIMIT),
            now,
            "Too many sign-ups from your connection. Please wait a few minutes and try again.",
        ),
        Window::new(
            format!("signup-page:{}", page.id),
            Limit::from_env(env, "signup_page_limit", PAGE_LIMIT),
            now,
            "This page is receiving too many sign-ups right now. Please try again in a few minutes.",
        ),
    ]
}
