//! `stagedoor-admin`: operator commands that print SQL, so one command
//! serves both runtimes (pipe it to `wrangler d1 execute` or hand it to
//! `spin up --sqlite @file`). Keys come from the environment (`DATA_KEYS`,
//! `INDEX_KEY`, the same secrets the functions use) and never touch disk.
//!
//! ```text
//! stagedoor-admin artist --name "Nova & the Tides" --owner nova@example.com [--id nova]
//! stagedoor-admin user --artist nova --email tour@example.com [--role member|owner]
//! stagedoor-admin sign-in-link --email nova@example.com --base http://localhost:8787 [--minutes 10]
//! ```
//! `sign-in-link` makes a link that works in any browser; the dashboard
//! accepts such links only where `allow_unbound_sign_in` is "1" (local dev).
//! It prints the SQL on stdout and the link on stderr.

use std::collections::HashMap;
use std::process::ExitCode;

use shared::crypto::{self, Keys};
use shared::email::Email;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stagedoor-admin: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let (cmd, rest) = args.split_first().ok_or(USAGE)?;
    let opts = options(rest)?;
    let opt = |name: &str| opts.get(name).map(String::as_str);
    let need = |name: &str| opt(name).ok_or_else(|| format!("--{name} is required\n{USAGE}"));
    let keys = Keys::parse(&env("DATA_KEYS")?, &env("INDEX_KEY")?).map_err(|e| e.message.to_string())?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_millis() as i64;
    match cmd.as_str() {
        "artist" => {
            let name = need("name")?;
            if name.is_empty() || name.chars().count() > 120 {
                return Err("--name must be 1 to 120 characters".into());
            }
            let id = match opt("id") {
                Some(id) => checked_id(id)?,
                None => random_hex()?,
            };
            println!("INSERT INTO artists (id, name, created_at) VALUES ({}, {}, {now});", q(&id), q(name));
            println!("{}", user_sql(&keys, &id, need("owner")?, "owner", now)?);
            eprintln!("artist id: {id}");
        }
        "user" => {
            let role = opt("role").unwrap_or("member");
            if !matches!(role, "owner" | "member") {
                return Err("--role must be owner or member".into());
            }
            println!("{}", user_sql(&keys, &checked_id(need("artist")?)?, need("email")?, role, now)?);
        }
        "sign-in-link" => {
            let email = parse_email(need("email")?)?;
            let base = need("base")?.trim_end_matches('/');
            let minutes: i64 = opt("minutes").unwrap_or("10").parse().map_err(|_| "--minutes must be a number")?;
            let mut raw = [0u8; 32];
            getrandom::getrandom(&mut raw).map_err(|e| e.to_string())?;
            let token: String = crypto::hex(&raw);
            let hash = keys.blind_index("users", &email.index_key());
            println!(
                "INSERT INTO sign_in_links (token_hash, user_id, email_hash, client_hash, browser_hash, created_at, expires_at) \
                 SELECT {}, id, email_hash, 'operator', NULL, {now}, {} FROM users WHERE email_hash = {};",
                q(&crypto::sha256_hex(token.as_bytes())),
                now + minutes * 60_000,
                q(&hash)
            );
            eprintln!("{base}/app/sign-in/verify?t={token}");
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}

const USAGE: &str = "usage: stagedoor-admin artist --name NAME --owner EMAIL [--id ID] | user --artist ID --email EMAIL [--role member|owner] | sign-in-link --email EMAIL --base URL [--minutes N]";

fn options(rest: &[String]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut it = rest.iter();
    while let Some(k) = it.next() {
        let name = k.strip_prefix("--").ok_or_else(|| format!("unexpected argument {k}\n{USAGE}"))?;
        let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        out.insert(name.to_owned(), v.clone());
    }
    Ok(out)
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set (the same secret the functions use)"))
}

fn parse_email(s: &str) -> Result<Email, String> {
    Email::parse(s).map_err(|e| format!("{s}: {}", e.message()))
}

fn checked_id(id: &str) -> Result<String, String> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err("ids are 1 to 64 letters, digits, - and _".into());
    }
    Ok(id.to_owned())
}

fn random_hex() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| e.to_string())?;
    Ok(crypto::hex(&b))
}

/// An SQL string literal.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Adds a user, or does nothing if the address already has an account.
fn user_sql(keys: &Keys, artist: &str, email: &str, role: &str, now: i64) -> Result<String, String> {
    let email = parse_email(email)?;
    let enc = keys.encrypt(email.as_str().as_bytes(), format!("user.email:{artist}").as_bytes()).map_err(|e| e.message.to_string())?;
    Ok(format!(
        "INSERT OR IGNORE INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES ({}, {}, {}, {}, {}, {now});",
        q(&random_hex()?),
        q(artist),
        q(&enc),
        q(&keys.blind_index("users", &email.index_key())),
        q(role)
    ))
}
