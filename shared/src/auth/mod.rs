//! Artist accounts: passwordless sign-in links, server-side sessions, the
//! second factor, CSRF, and [`Tenant`], the one way dashboard code reaches
//! tenant data.
//!
//! Decisions (see also README "Dashboard"):
//! - Sign-in links live [`SIGN_IN_TTL_MS`], work once, and only in the
//!   browser that asked: the request form sets a random cookie
//!   ([`BINDING_COOKIE`]) whose SHA-256 is stored with the link.
//! - Asking for a link writes a row whether or not the address has an
//!   account, and the mail is sent after the response, so the answer is the
//!   same in content and time. Limits count rows in the database (exact).
//! - Sessions: the cookie holds 256 random bits, the database their
//!   SHA-256. Idle timeout and absolute lifetime are named settings
//!   (`session_idle_minutes`, default 30: OWASP's guidance for apps holding
//!   personal data; `session_max_hours`, default 12: one working day, so a
//!   stolen cookie dies overnight).
//! - CSRF: a token derived from the session id by HMAC (nothing to store),
//!   compared in constant time, plus an Origin / `Sec-Fetch-Site` check.

pub mod fan;
pub mod totp;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::request::Parts;

use crate::crypto::{self, Keys};
use crate::ratelimit::Limit;
use crate::sql::{Param, Row, Stmt};
use crate::{Db, Env, Error, ErrorKind};

pub const SESSION_COOKIE: &str = "__Host-sd_session";
pub const BINDING_COOKIE: &str = "__Host-sd_signin";
/// How long an emailed sign-in link works.
pub const SIGN_IN_TTL_MS: i64 = 10 * 60 * 1000;
/// The binding cookie outlives the link a little, so a link opened at
/// minute nine still finds it.
pub const BINDING_MAX_AGE_SECS: i64 = 15 * 60;
/// Wrong second-factor codes a session may send before it is ended.
pub const MAX_CODE_FAILURES: i64 = 5;
/// `last_seen_at` is written at most this often (idle expiry needs no
/// finer grain, and it spares a write per page view).
const TOUCH_EVERY_MS: i64 = 60 * 1000;

/// The named settings this module reads.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub idle_ms: i64,
    pub absolute_ms: i64,
    /// Sign-in links per address (counted whether or not it has an account).
    pub address_limit: Limit,
    /// Sign-in links per client (address hashed, IPv6 by /64).
    pub client_limit: Limit,
}

impl Settings {
    pub fn from_env(env: &impl Env) -> Settings {
        let num = |name: &str, default: i64| env.var(name).and_then(|v| v.trim().parse::<i64>().ok()).filter(|v| *v > 0).unwrap_or(default);
        Settings {
            idle_ms: num("session_idle_minutes", 30) * 60_000,
            absolute_ms: num("session_max_hours", 12) * 3_600_000,
            address_limit: Limit::from_env(env, "sign_in_address_limit", Limit { limit: 5, window_secs: 900 }),
            client_limit: Limit::from_env(env, "sign_in_client_limit", Limit { limit: 20, window_secs: 900 }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Member,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }
}

/// What a session still needs before it may see tenant data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// Enter a TOTP or recovery code.
    Code,
    /// The workspace requires a second factor this user has not set up.
    Enrol,
}

/// A live session, as loaded from its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    /// The cookie value. Kept for CSRF derivation and rotation only.
    id: String,
    pub user_id: String,
    pub artist_id: String,
    pub artist_name: String,
    pub role: Role,
    pub totp_enabled: bool,
    pub require_totp: bool,
    mfa: bool,
    pub csrf: String,
}

impl Session {
    pub fn pending(&self) -> Option<Pending> {
        if self.totp_enabled && !self.mfa {
            Some(Pending::Code)
        } else if self.require_totp && !self.totp_enabled {
            Some(Pending::Enrol)
        } else {
            None
        }
    }

    /// The tenant-scoped database, for sessions that passed every check.
    pub fn tenant<'e, E: Env>(&self, env: &'e E) -> Result<Tenant<'e, E>, Error> {
        match self.pending() {
            None => Ok(Tenant { env, artist_id: self.artist_id.clone() }),
            Some(_) => Err(Error::new(ErrorKind::Unauthorized, "Finish signing in first.")),
        }
    }
}

/// The tenant an artist API token (`Authorization: Bearer …`) opens, for
/// the machine-facing API. The database keeps only the token's SHA-256.
/// `None` for an unknown or revoked token. Records the use ("last used"
/// in the dashboard) at minute resolution, as the links API does.
pub async fn token_tenant<'e, E: Env>(env: &'e E, token: &str) -> Result<Option<Tenant<'e, E>>, Error> {
    let hash = crate::crypto::sha256_hex(token.as_bytes());
    let rows = env.db().query("SELECT artist_id, id FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL", &[Param::Text(&hash)]).await?;
    let Some(mut row) = rows.into_iter().next() else { return Ok(None) };
    let (Some(artist_id), Some(token_id)) = (row.take_text(0), row.take_text(1)) else { return Ok(None) };
    env.db()
        .execute(
            "INSERT INTO api_token_use (token_id, last_used_at) VALUES (?1, ?2) \
             ON CONFLICT (token_id) DO UPDATE SET last_used_at = excluded.last_used_at WHERE excluded.last_used_at >= api_token_use.last_used_at + 60000",
            &[Param::Text(&token_id), Param::Int(env.now_ms())],
        )
        .await?;
    Ok(Some(Tenant { env, artist_id }))
}

/// The tenant a fan's own privacy request opens (`/privacy/{artist}`,
/// [`fan`]), for exactly one fan: `Ok(Err(_))` unless `token` is a link
/// we mailed for `artist_id`, unused and unexpired.
///
/// Why this is safe without a session: the link went only to the address
/// that is on the artist's list (whoever asked, the mail goes to the fan),
/// so holding it proves control of that mailbox, as a sign-in link does.
/// The check and the use are one statement (`UPDATE … WHERE used_at IS
/// NULL AND expires_at > now … RETURNING`), so of two submits of the same
/// link exactly one gets a tenant, and a link asked for at another artist
/// matches nothing. The caller must act only on the returned fan: the
/// tenant is the artist's, the authority is the fan's.
pub async fn fan_request_tenant<'e, E: Env>(env: &'e E, artist_id: &str, token: &str) -> Result<Result<fan::Verified<'e, E>, fan::Refused>, Error> {
    if !fan::well_formed(token) {
        return Ok(Err(fan::Refused::Malformed));
    }
    let rows = env
        .db()
        .query(
            "UPDATE privacy_requests SET used_at = ?1 WHERE token_hash = ?2 AND artist_id = ?3 AND used_at IS NULL AND expires_at > ?1 \
             RETURNING fan_id, kind",
            &[Param::Int(env.now_ms()), Param::Text(&crypto::sha256_hex(token.as_bytes())), Param::Text(artist_id)],
        )
        .await?;
    let Some(mut row) = rows.into_iter().next() else { return Ok(Err(fan::Refused::Gone)) };
    let (Some(fan_id), Some(kind)) = (row.take_text(0), row.text(1).and_then(fan::Kind::parse)) else { return Ok(Err(fan::Refused::Gone)) };
    Ok(Ok(fan::Verified { tenant: Tenant { env, artist_id: artist_id.to_owned() }, fan_id, kind }))
}

/// Every dashboard query goes through here, and here alone: `?1` is bound
/// to the session's artist, and a statement that does not mention
/// `artist_id` and `?1` is refused before it runs. Dashboard code never
/// sees the raw database port (checked by `shared/tests/tidy.rs`).
pub struct Tenant<'e, E: Env> {
    env: &'e E,
    artist_id: String,
}

impl<'e, E: Env> Tenant<'e, E> {
    pub fn artist_id(&self) -> &str {
        &self.artist_id
    }

    fn bind<'a>(&'a self, sql: &str, params: &[Param<'a>]) -> Result<Vec<Param<'a>>, Error> {
        if !(sql.contains("artist_id") && sql.contains("?1")) {
            return Err(Error::internal("tenant query without artist_id = ?1"));
        }
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Param::Text(&self.artist_id));
        all.extend_from_slice(params);
        Ok(all)
    }

    /// `params` bind from `?2` on.
    pub async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        let all = self.bind(sql, params)?;
        self.env.db().query(sql, &all).await
    }

    pub async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Error> {
        let all = self.bind(sql, params)?;
        self.env.db().execute(sql, &all).await
    }

    /// One atomic batch; each statement's params bind from `?2` on.
    /// Returns each statement's rows, as [`crate::Db::batch`] does.
    pub async fn batch(&self, stmts: &[(&str, &[Param<'_>])]) -> Result<Vec<Vec<Row>>, Error> {
        let bound = stmts.iter().map(|(sql, p)| self.bind(sql, p)).collect::<Result<Vec<_>, _>>()?;
        let list: Vec<Stmt<'_>> = stmts.iter().zip(&bound).map(|((sql, _), p)| Stmt::new(sql, p)).collect();
        self.env.db().batch(&list).await
    }
}

/// 256 random bits, base64url: session ids, link tokens, binding cookies.
pub fn random_token(env: &impl Env) -> Result<String, Error> {
    let mut b = [0u8; 32];
    env.random(&mut b)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// A cookie's value from the request, if sent.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name && !v.is_empty() && v.len() <= 128).then_some(v)
    })
}

/// A `Set-Cookie` value: `__Host-` rules (Secure, Path=/, no Domain),
/// never readable by script, sent on top-level navigations only.
/// `max_age` None: a browser-session cookie; Some(0) clears it.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> String {
    match max_age {
        Some(age) => format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={age}"),
        None => format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax"),
    }
}

/// A CSRF token tied to a secret (the session id, or before sign-in the
/// binding cookie): nothing to store, useless for any other session.
pub fn csrf_token(keys: &Keys, purpose: &str, secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(keys.mac(&[b"csrf", purpose.as_bytes(), secret.as_bytes()]))
}

/// Whether a state-changing request comes from our own pages. Browsers
/// that send Fetch Metadata say so in `Sec-Fetch-Site`, which no page can
/// forge, and which stays right behind proxies that rewrite the host (as
/// `wrangler dev` does); older ones are judged by `Origin` against `Host`.
/// Clients that send neither (scripts) carry no victim's cookies, and
/// still need the token.
pub fn same_origin(parts: &Parts) -> bool {
    // Bytes, not `to_str`: a value that isn't plain ASCII must count as
    // cross-origin, not as absent (absent passes).
    let header = |n: &str| parts.headers.get(n).map(|v| v.as_bytes());
    if let Some(site) = header("sec-fetch-site") {
        return site == b"same-origin";
    }
    match header("origin") {
        None => true,
        Some(origin) => {
            let host = header("host").or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes()));
            let rest = origin.strip_prefix(b"https://").or_else(|| origin.strip_prefix(b"http://"));
            matches!((rest, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
        }
    }
}

/// Both checks; a failure is 403 with a message a person can act on.
pub fn check_csrf(parts: &Parts, expected: &str, given: Option<&str>) -> Result<(), Error> {
    let token_ok = given.is_some_and(|g| crypto::ct_eq(g.as_bytes(), expected.as_bytes()));
    if same_origin(parts) && token_ok {
        return Ok(());
    }
    Err(csrf_refused())
}

/// The 403 for a request that failed the CSRF checks.
pub fn csrf_refused() -> Error {
    Error::new(ErrorKind::Forbidden, "This form is out of date or came from another site, so nothing was changed. Reload the page and try again.")
}

/// Blind index of a user's address (scoped to all users, see the schema).
pub fn user_index(keys: &Keys, email: &crate::email::Email) -> String {
    keys.blind_index("users", &email.index_key())
}

/// Records a sign-in request and returns the user id and link token when
/// the address has an account. Writes one row either way; past a limit
/// the answer is 429 either way.
pub async fn request_sign_in(env: &impl Env, keys: &Keys, email: &crate::email::Email, binding: &str) -> Result<Option<(String, String)>, Error> {
    let s = Settings::from_env(env);
    let email_hash = user_index(keys, email);
    let client = crate::ratelimit::client_key(keys, "sign-in", env.client());
    let user = env.db().query("SELECT id FROM users WHERE email_hash = ?1", &[Param::Text(&email_hash)]).await?;
    let user_id = user.into_iter().next().and_then(|mut r| r.take_text(0));
    let token = random_token(env)?;
    let now = env.now_ms();
    let (a, c) = (s.address_limit, s.client_limit);
    let inserted = env
        .db()
        .execute(
            "INSERT INTO sign_in_links (token_hash, user_id, email_hash, client_hash, browser_hash, created_at, expires_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
             WHERE (SELECT count(*) FROM sign_in_links WHERE email_hash = ?3 AND created_at > ?6 - ?8) < ?9 \
               AND (SELECT count(*) FROM sign_in_links WHERE client_hash = ?4 AND created_at > ?6 - ?10) < ?11",
            &[
                Param::Text(&crypto::sha256_hex(token.as_bytes())),
                user_id.as_deref().into(),
                Param::Text(&email_hash),
                Param::Text(&client),
                Param::Text(&crypto::sha256_hex(binding.as_bytes())),
                Param::Int(now),
                Param::Int(now + SIGN_IN_TTL_MS),
                Param::Int(i64::from(a.window_secs) * 1000),
                Param::Int(i64::from(a.limit)),
                Param::Int(i64::from(c.window_secs) * 1000),
                Param::Int(i64::from(c.limit)),
            ],
        )
        .await?;
    if inserted == 0 {
        let minutes = a.window_secs.max(c.window_secs).div_ceil(60);
        return Err(Error::new(
            ErrorKind::RateLimited { retry_after: a.window_secs.max(c.window_secs) },
            format!("Too many sign-in links were asked for. Use the newest one you got, or try again in {minutes} minutes."),
        ));
    }
    Ok(user_id.map(|u| (u, token)))
}

/// Why a sign-in link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Unknown, used or past its time: one answer for all three.
    Expired,
    /// Genuine, but opened in another browser than the one that asked.
    WrongBrowser,
}

/// Redeems a link: single use, in time, in the browser that asked (a link
/// made by `make dev` has no browser and works only where the setting
/// `allow_unbound_sign_in` is "1", which only local dev sets). Returns a
/// new session's cookie value.
pub async fn redeem_sign_in(env: &impl Env, token: &str, binding: Option<&str>) -> Result<Result<String, LinkError>, Error> {
    let token_hash = crypto::sha256_hex(token.as_bytes());
    let rows = env
        .db()
        .query(
            "SELECT l.user_id, l.browser_hash, l.expires_at, l.used_at, u.artist_id, u.totp_enc IS NOT NULL, coalesce(st.require_totp, 0) \
             FROM sign_in_links l JOIN users u ON u.id = l.user_id LEFT JOIN artist_settings st ON st.artist_id = u.artist_id \
             WHERE l.token_hash = ?1",
            &[Param::Text(&token_hash)],
        )
        .await?;
    let Some(mut row) = rows.into_iter().next() else { return Ok(Err(LinkError::Expired)) };
    let now = env.now_ms();
    if row.int(3).is_some() || row.int(2).is_none_or(|exp| exp <= now) {
        return Ok(Err(LinkError::Expired));
    }
    let browser_ok = match (row.text(1), binding) {
        (Some(stored), Some(b)) => crypto::ct_eq(stored.as_bytes(), crypto::sha256_hex(b.as_bytes()).as_bytes()),
        (None, _) => env.var("allow_unbound_sign_in").as_deref() == Some("1"),
        (Some(_), None) => false,
    };
    if !browser_ok {
        return Ok(Err(LinkError::WrongBrowser));
    }
    let used = env
        .db()
        .execute("UPDATE sign_in_links SET used_at = ?1 WHERE token_hash = ?2 AND used_at IS NULL", &[Param::Int(now), Param::Text(&token_hash)])
        .await?;
    if used == 0 {
        return Ok(Err(LinkError::Expired));
    }
    let (user_id, artist_id) = (row.take_text(0).unwrap_or_default(), row.take_text(4).unwrap_or_default());
    // The second factor is asked for on the next page; until then mfa = 0.
    let needs_code = row.int(5) == Some(1);
    env.db().execute("UPDATE users SET last_sign_in_at = ?1 WHERE id = ?2", &[Param::Int(now), Param::Text(&user_id)]).await?;
    start_session(env, &user_id, &artist_id, !needs_code).await.map(Ok)
}

/// Creates a session and returns its cookie value.
pub async fn start_session(env: &impl Env, user_id: &str, artist_id: &str, mfa: bool) -> Result<String, Error> {
    let id = random_token(env)?;
    let now = env.now_ms();
    env.db()
        .execute(
            "INSERT INTO sessions (id_hash, user_id, artist_id, created_at, last_seen_at, mfa) VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            &[Param::Text(&crypto::sha256_hex(id.as_bytes())), Param::Text(user_id), Param::Text(artist_id), Param::Int(now), Param::from(mfa)],
        )
        .await?;
    Ok(id)
}

/// What a session cookie leads to.
pub enum Loaded {
    None,
    /// Timed out (idle or absolute); the row is gone.
    Expired,
    Active(Session),
}

/// Loads the session a cookie names, ending it if it has timed out.
pub async fn load_session(env: &impl Env, keys: &Keys, id: &str) -> Result<Loaded, Error> {
    let s = Settings::from_env(env);
    let id_hash = crypto::sha256_hex(id.as_bytes());
    let rows = env
        .db()
        .query(
            "SELECT s.user_id, s.artist_id, s.created_at, s.last_seen_at, s.mfa, u.role, u.totp_enc IS NOT NULL, coalesce(st.require_totp, 0), a.name \
             FROM sessions s JOIN users u ON u.id = s.user_id AND u.artist_id = s.artist_id JOIN artists a ON a.id = s.artist_id \
             LEFT JOIN artist_settings st ON st.artist_id = s.artist_id WHERE s.id_hash = ?1",
            &[Param::Text(&id_hash)],
        )
        .await?;
    let Some(mut row) = rows.into_iter().next() else { return Ok(Loaded::None) };
    let now = env.now_ms();
    let (created, seen) = (row.int(2).unwrap_or(0), row.int(3).unwrap_or(0));
    if now - seen >= s.idle_ms || now - created >= s.absolute_ms {
        env.db().execute("DELETE FROM sessions WHERE id_hash = ?1", &[Param::Text(&id_hash)]).await?;
        return Ok(Loaded::Expired);
    }
    if now - seen >= TOUCH_EVERY_MS {
        env.db().execute("UPDATE sessions SET last_seen_at = ?1 WHERE id_hash = ?2", &[Param::Int(now), Param::Text(&id_hash)]).await?;
    }
    Ok(Loaded::Active(Session {
        csrf: csrf_token(keys, "session", id),
        id: id.to_owned(),
        user_id: row.take_text(0).unwrap_or_default(),
        artist_id: row.take_text(1).unwrap_or_default(),
        mfa: row.int(4) == Some(1),
        role: row.text(5).and_then(Role::parse).unwrap_or(Role::Member),
        totp_enabled: row.int(6) == Some(1),
        require_totp: row.int(7) == Some(1),
        artist_name: row.take_text(8).unwrap_or_default(),
    }))
}

/// Signs this session out on the server.
pub async fn end_session(env: &impl Env, session: &Session) -> Result<(), Error> {
    env.db().execute("DELETE FROM sessions WHERE id_hash = ?1", &[Param::Text(&crypto::sha256_hex(session.id.as_bytes()))]).await.map(drop)
}

/// Signs the user out everywhere (every browser, this one included).
pub async fn end_all_sessions(env: &impl Env, session: &Session) -> Result<(), Error> {
    env.db().execute("DELETE FROM sessions WHERE user_id = ?1", &[Param::Text(&session.user_id)]).await.map(drop)
}

/// Replaces the session with a new id once the second factor passed
/// (a privilege change gets a fresh id). Returns the new cookie value.
async fn upgrade_session(env: &impl Env, session: &Session) -> Result<String, Error> {
    let id = start_session(env, &session.user_id, &session.artist_id, true).await?;
    end_session(env, session).await?;
    Ok(id)
}

/// Outcome of a typed second-factor code.
#[derive(Debug)]
pub enum CodeCheck {
    /// Accepted: the new session cookie value.
    Passed(String),
    Wrong,
    /// Too many wrong codes: the session was ended.
    TooMany,
}

/// Checks a TOTP code (each usable once) or, failing that shape, a
/// recovery code (each usable once) for the session's user.
pub async fn check_code(env: &impl Env, keys: &Keys, session: &Session, typed: &str) -> Result<CodeCheck, Error> {
    let typed = typed.trim();
    let ok = if typed.bytes().filter(|b| *b != b' ').all(|b| b.is_ascii_digit()) {
        use_totp(env, keys, &session.user_id, typed).await?
    } else {
        use_recovery_code(env, keys, &session.user_id, typed).await?
    };
    if ok {
        return upgrade_session(env, session).await.map(CodeCheck::Passed);
    }
    let id_hash = crypto::sha256_hex(session.id.as_bytes());
    let rows =
        env.db().query("UPDATE sessions SET totp_failures = totp_failures + 1 WHERE id_hash = ?1 RETURNING totp_failures", &[Param::Text(&id_hash)]).await?;
    if rows.first().and_then(|r| r.int(0)).unwrap_or(MAX_CODE_FAILURES) >= MAX_CODE_FAILURES {
        end_session(env, session).await?;
        return Ok(CodeCheck::TooMany);
    }
    Ok(CodeCheck::Wrong)
}

async fn use_totp(env: &impl Env, keys: &Keys, user_id: &str, typed: &str) -> Result<bool, Error> {
    let rows = env.db().query("SELECT totp_enc, totp_last_step FROM users WHERE id = ?1", &[Param::Text(user_id)]).await?;
    let Some(row) = rows.first() else { return Ok(false) };
    let Some(enc) = row.text(0) else { return Ok(false) };
    let secret = keys.decrypt(enc, user_id.as_bytes())?;
    let Some(step) = totp::verify(&secret, typed, env.now_ms(), row.int(1)) else { return Ok(false) };
    // Guarded in SQL, so two requests racing with one code can't both pass.
    let n = env
        .db()
        .execute(
            "UPDATE users SET totp_last_step = ?1 WHERE id = ?2 AND (totp_last_step IS NULL OR totp_last_step < ?1)",
            &[Param::Int(step), Param::Text(user_id)],
        )
        .await?;
    Ok(n == 1)
}

fn recovery_hash(keys: &Keys, user_id: &str, code: &str) -> String {
    crypto::hex(&keys.mac(&[b"recovery", user_id.as_bytes(), code.as_bytes()]))
}

async fn use_recovery_code(env: &impl Env, keys: &Keys, user_id: &str, typed: &str) -> Result<bool, Error> {
    let Some(code) = totp::normalize_recovery(typed) else { return Ok(false) };
    let n = env
        .db()
        .execute(
            "UPDATE recovery_codes SET used_at = ?1 WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL",
            &[Param::Int(env.now_ms()), Param::Text(user_id), Param::Text(&recovery_hash(keys, user_id, &code))],
        )
        .await?;
    Ok(n == 1)
}

/// Starts TOTP enrolment: a fresh secret, kept encrypted as pending until
/// a code from it is confirmed. Returns the secret for the QR code.
pub async fn begin_totp(env: &impl Env, keys: &Keys, user_id: &str) -> Result<[u8; totp::SECRET_LEN], Error> {
    let secret = totp::new_secret(env)?;
    let enc = keys.encrypt(&secret, user_id.as_bytes())?;
    env.db().execute("UPDATE users SET totp_pending_enc = ?1 WHERE id = ?2", &[Param::Text(&enc), Param::Text(user_id)]).await?;
    Ok(secret)
}

/// The pending secret, to show its QR code again after a wrong code.
pub async fn pending_totp(env: &impl Env, keys: &Keys, user_id: &str) -> Result<Option<Vec<u8>>, Error> {
    let rows = env.db().query("SELECT totp_pending_enc FROM users WHERE id = ?1", &[Param::Text(user_id)]).await?;
    match rows.first().and_then(|r| r.text(0)) {
        Some(enc) => keys.decrypt(enc, user_id.as_bytes()).map(Some),
        None => Ok(None),
    }
}

/// Confirms enrolment with a code from the pending secret: the secret
/// becomes active and ten new recovery codes replace any old ones. Returns
/// the codes (shown once) and the session's new cookie value, or None for
/// a wrong code.
pub async fn confirm_totp(env: &impl Env, keys: &Keys, session: &Session, typed: &str) -> Result<Option<(Vec<String>, String)>, Error> {
    let Some(secret) = pending_totp(env, keys, &session.user_id).await? else { return Ok(None) };
    let Some(step) = totp::verify(&secret, typed, env.now_ms(), None) else { return Ok(None) };
    let codes = totp::recovery_codes(env)?;
    let hashes: Vec<String> = codes.iter().filter_map(|c| totp::normalize_recovery(c)).map(|c| recovery_hash(keys, &session.user_id, &c)).collect();
    let uid = Param::Text(&session.user_id);
    let activate = [Param::Int(step), uid];
    let mut stmts = vec![
        Stmt::new(
            "UPDATE users SET totp_enc = totp_pending_enc, totp_pending_enc = NULL, totp_last_step = ?1 WHERE id = ?2 AND totp_pending_enc IS NOT NULL",
            &activate,
        ),
        Stmt::new("DELETE FROM recovery_codes WHERE user_id = ?1", std::slice::from_ref(&activate[1])),
    ];
    let inserts: Vec<[Param<'_>; 2]> = hashes.iter().map(|h| [uid, Param::Text(h)]).collect();
    stmts.extend(inserts.iter().map(|p| Stmt::new("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)", p)));
    env.db().batch(&stmts).await?;
    let id = upgrade_session(env, session).await?;
    Ok(Some((codes, id)))
}

/// Turns the second factor off for the session's user (the caller has
/// checked a current code and that the workspace does not require it).
pub async fn disable_totp(env: &impl Env, session: &Session) -> Result<(), Error> {
    let uid = [Param::Text(&session.user_id)];
    env.db()
        .batch(&[
            Stmt::new("UPDATE users SET totp_enc = NULL, totp_pending_enc = NULL WHERE id = ?1", &uid),
            Stmt::new("DELETE FROM recovery_codes WHERE user_id = ?1", &uid),
        ])
        .await
        .map(drop)
}

/// Checks a code without changing the session (for confirming a sensitive
/// action such as turning the second factor off).
pub async fn verify_code_only(env: &impl Env, keys: &Keys, session: &Session, typed: &str) -> Result<bool, Error> {
    use_totp(env, keys, &session.user_id, typed).await
}
