//! Fans' own privacy requests (`/privacy/{artist}`, README "Fan rights"):
//! a fan asks for a copy of their data or its erasure, gets a single-use
//! link by mail, and confirms with a POST from it. Modelled on sign-in
//! links: 256 random bits, only their SHA-256 stored, short-lived.
//!
//! Decisions:
//! - One batch for every request, known address or not: the rate-limit
//!   windows and an `INSERT … SELECT … FROM fans` that writes a row only
//!   when the address is a fan of that artist. The same statements run
//!   either way and the mail leaves after the response, so neither the
//!   answer nor its time tells whether someone is on a list.
//! - The per-address window is keyed by a hash of its own
//!   (`privacy-requests` scope), never by the artist's blind index: an
//!   erasure then leaves no copy of the index behind, and the window (an
//!   hour by default) is swept by the jobs function once it ends.
//! - A link works for the artist it was asked at only: every lookup
//!   names the artist of the path as well as the token.
//! - Opening the link changes nothing (mail scanners open links); only the
//!   confirming POST uses it, through [`super::fan_request_tenant`].

use crate::crypto::{self, Keys};
use crate::email::Email;
use crate::ratelimit::{self, Limit, Window};
use crate::sql::{Param, Stmt};
use crate::{Db, Env, Error};

/// What the fan asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A copy of everything held (access, portability).
    Access,
    Erase,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "access" => Some(Kind::Access),
            "erase" => Some(Kind::Erase),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Erase => "erase",
        }
    }
}

/// The named settings this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `privacy_link_minutes` (30): how long an emailed link works.
    pub link_minutes: i64,
    /// `privacy_client_limit` (`10/3600`): requests per client.
    pub client_limit: Limit,
    /// `privacy_address_limit` (`3/3600`): requests per address, counted
    /// whether or not it is on a list (so the limit tells nothing either).
    pub address_limit: Limit,
}

impl Settings {
    pub fn from_env(env: &impl Env) -> Settings {
        let minutes = env.var("privacy_link_minutes").and_then(|v| v.trim().parse::<i64>().ok()).filter(|m| (1..=24 * 60).contains(m));
        Settings {
            link_minutes: minutes.unwrap_or(30),
            client_limit: Limit::from_env(env, "privacy_client_limit", Limit { limit: 10, window_secs: 3600 }),
            address_limit: Limit::from_env(env, "privacy_address_limit", Limit { limit: 3, window_secs: 3600 }),
        }
    }
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not the shape of a token we make: a damaged or truncated link.
    Malformed,
    /// Unknown here, used, or past its time: one answer for all three
    /// (used and expired requests are deleted by the jobs function, so
    /// "unknown" is what an old link usually finds).
    Gone,
}

/// The artist's display name, `None` for no such artist. Public: every
/// capture page shows it.
pub async fn artist_name(env: &impl Env, artist_id: &str) -> Result<Option<String>, Error> {
    if artist_id.is_empty() || artist_id.len() > 64 {
        return Ok(None);
    }
    let rows = env.db().query("SELECT name FROM artists WHERE id = ?1", &[Param::Text(artist_id)]).await?;
    Ok(rows.into_iter().next().and_then(|mut r| r.take_text(0)))
}

/// Records a request and returns the fan id and the link's token when the
/// address is a fan of the artist; `None` (and no row) otherwise. Past a
/// limit the answer is 429 either way.
pub async fn request(env: &impl Env, keys: &Keys, artist_id: &str, email: &Email, kind: Kind) -> Result<Option<(String, String)>, Error> {
    let s = Settings::from_env(env);
    let now = env.now_ms();
    let index_key = email.index_key();
    let client = Window::new(ratelimit::client_key(keys, "privacy", env.client()), s.client_limit, now, "Too many privacy requests came from your network.");
    let address = Window::new(
        format!("privacy-address:{}", keys.blind_index("privacy-requests", &index_key)),
        s.address_limit,
        now,
        "Too many requests were made for this address: use the newest link we sent.",
    );
    let token = super::random_token(env)?;
    let (id, token_hash, fan_hash) = (crate::env::random_id(env)?, crypto::sha256_hex(token.as_bytes()), keys.blind_index(artist_id, &index_key));
    let pair = Window::params_pair(&client, &address);
    let insert = [
        Param::Text(&id),
        Param::Text(&token_hash),
        Param::Text(kind.as_str()),
        Param::Int(now),
        Param::Int(now + s.link_minutes * 60_000),
        Param::Text(artist_id),
        Param::Text(&fan_hash),
    ];
    let stmts = [
        Window::stmt_pair(&pair),
        Stmt::new(
            "INSERT INTO privacy_requests (id, artist_id, fan_id, kind, token_hash, created_at, expires_at) \
             SELECT ?1, artist_id, id, ?3, ?2, ?4, ?5 FROM fans WHERE artist_id = ?6 AND email_hash = ?7 RETURNING fan_id AS privacy_fan",
            &insert,
        ),
    ];
    let rows = match env.db().batch(&stmts).await {
        Ok(rows) => rows,
        Err(e) if ratelimit::is_refusal(&e) => return Err(ratelimit::refusal(env, &[&client, &address]).await),
        Err(e) => return Err(e),
    };
    // Ended windows are left to the jobs function's `rate_windows` job
    // (every minute): `ratelimit::sweep` would bring deferred writes into
    // the dashboard's module for no gain.
    let fan = rows.into_iter().nth(1).and_then(|r| r.into_iter().next()).and_then(|mut r| r.take_text(0));
    Ok(fan.map(|f| (f, token)))
}

/// Whether `token` could be one of ours (43 base64url characters), before
/// any lookup.
pub(super) fn well_formed(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a link is for, without using it (the page the link opens).
pub async fn peek(env: &impl Env, artist_id: &str, token: &str) -> Result<Result<Kind, Refused>, Error> {
    if !well_formed(token) {
        return Ok(Err(Refused::Malformed));
    }
    let rows = env
        .db()
        .query(
            "SELECT kind FROM privacy_requests WHERE token_hash = ?1 AND artist_id = ?2 AND used_at IS NULL AND expires_at > ?3",
            &[Param::Text(&crypto::sha256_hex(token.as_bytes())), Param::Text(artist_id), Param::Int(env.now_ms())],
        )
        .await?;
    Ok(rows.first().and_then(|r| r.text(0)).and_then(Kind::parse).ok_or(Refused::Gone))
}

/// A request its link confirmed: the tenant it opens, and what was asked.
pub struct Verified<'e, E: Env> {
    pub tenant: super::Tenant<'e, E>,
    pub fan_id: String,
    pub kind: Kind,
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use crate::adapters::native::{block_on, NativeEnv};

    const DATA_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const INDEX_KEY: &str = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

    #[test]
    fn settings_defaults_and_nonsense() {
        let mut env = NativeEnv::memory().unwrap();
        let d = Settings::from_env(&env);
        assert_eq!((d.link_minutes, d.client_limit, d.address_limit), (30, Limit { limit: 10, window_secs: 3600 }, Limit { limit: 3, window_secs: 3600 }));
        env.set_var("privacy_link_minutes", "0").set_var("privacy_address_limit", "x");
        assert_eq!(Settings::from_env(&env), d);
        env.set_var("privacy_link_minutes", "5").set_var("privacy_address_limit", "1/60");
        let s = Settings::from_env(&env);
        assert_eq!((s.link_minutes, s.address_limit), (5, Limit { limit: 1, window_secs: 60 }));
    }

    #[test]
    fn a_link_is_used_once_for_its_artist_only() {
        let env = NativeEnv::memory().unwrap();
        let keys = Keys::parse(DATA_KEYS, INDEX_KEY).unwrap();
        let email = Email::parse("fan@example.com").unwrap();
        env.db.conn().execute_batch("INSERT INTO artists VALUES ('a1', 'A', 0), ('a2', 'B', 0)").unwrap();
        env.db
            .conn()
            .execute(
                "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, consent_version, created_at, updated_at) VALUES ('f1', 'a1', 'x', ?1, 'subscribed', 'v1', 0, 0)",
                [keys.blind_index("a1", &email.index_key())],
            )
            .unwrap();
        assert_eq!(block_on(request(&env, &keys, "a2", &email, Kind::Erase)).unwrap(), None, "not a2's fan");
        let (fan, token) = block_on(request(&env, &keys, "a1", &email, Kind::Erase)).unwrap().unwrap();
        assert_eq!(fan, "f1");
        assert_eq!(block_on(peek(&env, "a2", &token)).unwrap(), Err(Refused::Gone));
        assert_eq!(block_on(peek(&env, "a1", "short")).unwrap(), Err(Refused::Malformed));
        assert!(matches!(block_on(super::super::fan_request_tenant(&env, "a2", &token)).unwrap(), Err(Refused::Gone)));
        assert_eq!(block_on(peek(&env, "a1", &token)).unwrap(), Ok(Kind::Erase), "still good after a try elsewhere");
        let v = block_on(super::super::fan_request_tenant(&env, "a1", &token)).unwrap().ok().unwrap();
        assert_eq!((v.tenant.artist_id(), v.fan_id.as_str(), v.kind), ("a1", "f1", Kind::Erase));
        assert!(matches!(block_on(super::super::fan_request_tenant(&env, "a1", &token)).unwrap(), Err(Refused::Gone)), "once");
    }
}
