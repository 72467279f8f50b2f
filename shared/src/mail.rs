//! Email the fans receive: unsubscribe headers (RFC 2369 / RFC 8058) for any
//! message an artist sends, and delivery through an email provider's HTTP
//! API (Resend's `POST /emails` shape; tests point it at a local server).
//!
//! Settings: `public_base_url` (where `/u/…` and `/s/…` links point),
//! `email_api_base` (default `https://api.resend.com`), secret
//! `email_api_key`, `email_from`.

use crate::token::{Purpose, TokenKeys};
use crate::{Env, Error, ErrorKind};

pub const DEFAULT_API_BASE: &str = "https://api.resend.com";

/// What every message to a fan carries so leaving takes one click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeHeaders {
    /// `List-Unsubscribe` value: `<https://…/u/{token}>`.
    pub list_unsubscribe: String,
    /// `List-Unsubscribe-Post` value (RFC 8058).
    pub list_unsubscribe_post: &'static str,
    /// The same URL for the visible link in the message body.
    pub url: String,
    /// Whom the message is for: sent to the provider as the message's
    /// `artist` and `fan` tags, which its bounce and complaint webhooks
    /// echo back (`functions/webhooks` finds the fan by them, never by the
    /// address).
    pub artist_id: String,
    pub fan_id: String,
}

/// Unsubscribe headers for a fan. The token never expires: links must keep
/// working for as long as the fan exists (CASL asks for at least 60 days).
pub fn unsubscribe_headers(env: &impl Env, fan_id: &str, artist_id: &str) -> Result<UnsubscribeHeaders, Error> {
    let token = TokenKeys::from_env(env)?.sign(Purpose::Unsubscribe, 0, fan_id, artist_id)?;
    let url = format!("{}/u/{token}", base_url(env)?);
    Ok(UnsubscribeHeaders {
        list_unsubscribe: format!("<{url}>"),
        list_unsubscribe_post: "List-Unsubscribe=One-Click",
        url,
        artist_id: artist_id.to_owned(),
        fan_id: fan_id.to_owned(),
    })
}

/// The public origin links are built on, without a trailing slash.
/// Refused (so no mail goes out with it) unless it is `https://`, or
/// `http://` to this machine for local development: links in mail carry
/// sign-in and unsubscribe tokens, which must not travel in clear.
pub fn base_url(env: &impl Env) -> Result<String, Error> {
    let base = env.var("public_base_url").map(|b| b.trim().trim_end_matches('/').to_owned()).filter(|b| !b.is_empty());
    let base =
        base.ok_or_else(|| Error::new(ErrorKind::Internal, "setting public_base_url is not set: set it to the public https:// origin of this deployment"))?;
    let local =
        ["http://localhost", "http://127.0.0.1", "http://[::1]"].iter().any(|l| base == *l || base.strip_prefix(l).is_some_and(|rest| rest.starts_with(':')));
    if !(base.starts_with("https://") || local) {
        return Err(Error::new(
            ErrorKind::Internal,
            "setting public_base_url must be an https:// origin (http:// only for localhost): mail links carry tokens",
        ));
    }
    Ok(base)
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use crate::adapters::native::NativeEnv;

    #[test]
    fn public_base_url_must_be_https_except_on_this_machine() {
        let mut env = NativeEnv::memory().unwrap();
        for (value, ok) in [
            ("https://fans.example.com/", Some("https://fans.example.com")),
            ("http://localhost:8787", Some("http://localhost:8787")),
            ("http://127.0.0.1:3000", Some("http://127.0.0.1:3000")),
            ("http://fans.example.com", None),
            ("http://localhost.evil.example", None),
            ("", None),
            ("fans.example.com", None),
        ] {
            env.set_var("public_base_url", value);
            assert_eq!(super::base_url(&env).ok().as_deref(), ok, "{value:?}");
        }
        env.vars.clear();
        assert!(super::base_url(&env).unwrap_err().message.contains("not set"));
    }

    #[test]
    fn fan_mail_is_tagged_with_artist_and_fan_and_other_mail_is_not() {
        let mut env = NativeEnv::memory().unwrap();
        env.set_var("token_keys", "t1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=").set_var("public_base_url", "https://fans.example");
        env.set_var("email_api_key", "re_test").set_var("email_from", "Nova <news@nova.example>");
        let body = |msg: &super::Message<'_>| -> serde_json::Value { serde_json::from_slice(super::request(&env, msg).unwrap().body()).unwrap() };
        let u = super::unsubscribe_headers(&env, "0123456789abcdef0123456789abcdef", "nova-artist").unwrap();
        let mut msg = super::Message { to: "fan@example.com", subject: "s", text: "t", html: "h", unsubscribe: Some(&u) };
        let tags = body(&msg)["tags"].clone();
        assert_eq!(tags, serde_json::json!([{"name": "artist", "value": "nova-artist"}, {"name": "fan", "value": "0123456789abcdef0123456789abcdef"}]));
        assert!(!tags.to_string().contains('@'), "tags never carry the address");
        msg.unsubscribe = None;
        assert!(body(&msg).get("tags").is_none(), "account mail has no fan to tag");
        let odd = super::unsubscribe_headers(&env, "0123456789abcdef0123456789abcdef", "nova artist!").unwrap();
        msg.unsubscribe = Some(&odd);
        let v = body(&msg);
        assert!(v.get("tags").is_none() && v["headers"]["List-Unsubscribe"].is_string(), "an id the provider would refuse drops only the tags");
    }
}

pub struct Message<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    /// Mail to fans must carry these; account mail to artists (sign-in
    /// links) has no list to leave. They also tag the message with the
    /// artist and fan (see [`UnsubscribeHeaders::fan_id`]), so every fan
    /// mail is tagged and no other mail is (mail to a fan that is not list
    /// mail goes through [`send_later_to_fan`], tagged too).
    pub unsubscribe: Option<&'a UnsubscribeHeaders>,
}

/// Sends one message through the provider. A non-2xx answer is
/// `Unavailable` (the provider's body is not echoed: it may hold the address).
pub async fn send(env: &impl Env, msg: &Message<'_>) -> Result<(), Error> {
    let res = env.fetch(request(env, msg)?).await?;
    if !res.status().is_success() {
        return Err(Error::unavailable(format_args!("email provider answered {}", res.status())));
    }
    Ok(())
}

/// Sends one message after the response; `on_failure` is written if the
/// provider refuses it (see [`Env::fetch_later`]).
pub fn send_later(env: &impl Env, msg: &Message<'_>, on_failure: Vec<crate::sql::OwnedStmt>) -> Result<(), Error> {
    env.fetch_later(request(env, msg)?, on_failure);
    Ok(())
}

/// What Resend accepts as a tag value: ASCII letters, digits, `_` and `-`,
/// at most 256 of them.
fn tag_value_ok(v: &str) -> bool {
    (1..=256).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// [`send_later`] for mail a fan asked for that is not list mail (the
/// link of their own privacy request): no unsubscribe headers, but tagged
/// with the artist and fan like every other mail to a fan, so a bounce or
/// complaint about it reaches the fan's record.
pub fn send_later_to_fan(env: &impl Env, msg: &Message<'_>, artist_id: &str, fan_id: &str) -> Result<(), Error> {
    env.fetch_later(tagged_request(env, msg, Some((artist_id, fan_id)))?, Vec::new());
    Ok(())
}

/// The provider call for one message.
fn request(env: &impl Env, msg: &Message<'_>) -> Result<crate::Request, Error> {
    tagged_request(env, msg, msg.unsubscribe.map(|u| (u.artist_id.as_str(), u.fan_id.as_str())))
}

fn tagged_request(env: &impl Env, msg: &Message<'_>, fan: Option<(&str, &str)>) -> Result<crate::Request, Error> {
    let key = env.var("email_api_key").ok_or_else(|| Error::new(ErrorKind::Internal, "secret email_api_key is not set"))?;
    let from = env.var("email_from").ok_or_else(|| Error::new(ErrorKind::Internal, "setting email_from is not set"))?;
    let base = env.var("email_api_base").unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
    let mut body = serde_json::json!({
        "from": from,
        "to": [msg.to],
        "subject": msg.subject,
        "text": msg.text,
        "html": msg.html,
    });
    if let Some(u) = msg.unsubscribe {
        body["headers"] = serde_json::json!({
            "List-Unsubscribe": u.list_unsubscribe,
            "List-Unsubscribe-Post": u.list_unsubscribe_post,
        });
    }
    // The provider refuses a message whose tags hold other characters; an
    // id that would (an operator's odd artist id) leaves the tags off
    // rather than the mail undelivered.
    if let Some((artist_id, fan_id)) = fan.filter(|(a, f)| tag_value_ok(a) && tag_value_ok(f)) {
        body["tags"] = serde_json::json!([
            { "name": "artist", "value": artist_id },
            { "name": "fan", "value": fan_id },
        ]);
    }
    http::Request::post(format!("{}/emails", base.trim_end_matches('/')))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::AUTHORIZATION, format!("Bearer {key}"))
        .body(body.to_string().into_bytes())
        .map_err(Error::internal)
}
