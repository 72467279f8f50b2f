//! Signed, URL-safe tokens for links in emails (unsubscribe, double opt-in
//! confirmation).
//!
//! `{key_id}.{base64url(payload ‖ tag)}` where payload = purpose (1 byte) ‖
//! expiry (u32 seconds since the epoch, 0 = never) ‖ fan id (16 bytes) ‖
//! artist id (UTF-8), and tag = the first 16 bytes of HMAC-SHA256 over key
//! id ‖ payload. A token names a fan and an artist but reveals no address,
//! cannot be altered, and keeps verifying after a key rotation as long as its
//! key is still listed in `token_keys` (first key signs, all verify).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, ErrorKind};

const TAG_LEN: usize = 16;
const FAN_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 4 + FAN_LEN;
const MAX_ARTIST_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe = 1,
    Confirm = 2,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub purpose: Purpose,
    /// Seconds since the epoch after which the token is refused; 0 = never.
    pub expires: u32,
    /// The fan's id (32 hex chars in the database).
    pub fan_id: String,
    pub artist_id: String,
}

/// Why a token was refused. Callers show a plain page for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Malformed, altered, for another purpose or signed by an unknown key.
    Invalid,
    /// Genuine but past its expiry.
    Expired,
}

pub struct TokenKeys(Vec<(String, Vec<u8>)>);

impl TokenKeys {
    /// `id:base64key[,id:base64key…]`, first = signing key, keys ≥ 32 bytes.
    pub fn parse(spec: &str) -> Result<TokenKeys, Error> {
        let bad = || Error::new(ErrorKind::Internal, "token_keys must look like id:base64key[,…] with keys of at least 32 bytes");
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key) = entry.split_once(':').ok_or_else(bad)?;
            let valid_id = !id.is_empty() && id.len() <= 16 && id.bytes().all(|b| b.is_ascii_alphanumeric());
            let key = STANDARD.decode(key.trim()).or_else(|_| URL_SAFE_NO_PAD.decode(key.trim())).map_err(|_| bad())?;
            if !valid_id || key.len() < 32 {
                return Err(bad());
            }
            if keys.iter().any(|(k, _): &(String, Vec<u8>)| k == id) {
                return Err(Error::new(ErrorKind::Internal, "token_keys lists the same key id twice"));
            }
            keys.push((id.to_owned(), key));
        }
        if keys.is_empty() {
            return Err(bad());
        }
        Ok(TokenKeys(keys))
    }

    pub fn from_env(env: &impl crate::Env) -> Result<TokenKeys, Error> {
        let spec = env.var("token_keys").ok_or_else(|| Error::new(ErrorKind::Internal, "secret token_keys is not set"))?;
        TokenKeys::parse(&spec)
    }

    /// Signs a token with the active key. `fan_id` is the 32-hex-char id.
    pub fn sign(&self, purpose: Purpose, expires: u32, fan_id: &str, artist_id: &str) -> Result<String, Error> {
        let fan = decode_hex16(fan_id).ok_or_else(|| Error::internal("fan id is not 32 hex chars"))?;
        if artist_id.is_empty() || artist_id.len() > MAX_ARTIST_LEN {
            return Err(Error::internal("artist id length out of range"));
        }
        let (id, key) = &self.0[0];
        let mut raw = Vec::with_capacity(HEADER_LEN + artist_id.len() + TAG_LEN);
        raw.push(purpose as u8);
        raw.extend_from_slice(&expires.to_be_bytes());
        raw.extend_from_slice(&fan);
        raw.extend_from_slice(artist_id.as_bytes());
        let tag = tag(key, id, &raw);
        raw.extend_from_slice(&tag);
        let mut out = format!("{id}.");
        URL_SAFE_NO_PAD.encode_string(&raw, &mut out);
        Ok(out)
    }

    /// Checks signature, purpose and expiry (`now_secs`).
    pub fn verify(&self, token: &str, purpose: Purpose, now_secs: u64) -> Result<Claims, TokenError> {
        if token.len() > 256 {
            return Err(TokenError::Invalid);
        }
        let (id, body) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let (_, key) = self.0.iter().find(|(k, _)| k == id).ok_or(TokenError::Invalid)?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Invalid)?;
        if raw.len() < HEADER_LEN + 1 + TAG_LEN {
            return Err(TokenError::Invalid);
        }
        let (payload, given) = raw.split_at(raw.len() - TAG_LEN);
        let mut mac = mac(key, id);
        mac.update(payload);
        mac.verify_truncated_left(given).map_err(|_| TokenError::Invalid)?;
        if payload[0] != purpose as u8 {
            return Err(TokenError::Invalid);
        }
        let expires = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
        let artist_id = std::str::from_utf8(&payload[HEADER_LEN..]).map_err(|_| TokenError::Invalid)?.to_owned();
        if expires != 0 && u64::from(expires) <= now_secs {
            return Err(TokenError::Expired);
        }
        Ok(Claims { purpose, expires, fan_id: crate::crypto::hex(&payload[5..HEADER_LEN]), artist_id })
    }
}

fn mac(key: &[u8], id: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac
}

fn tag(key: &[u8], id: &str, payload: &[u8]) -> [u8; TAG_LEN] {
    let mut mac = mac(key, id);
    mac.update(payload);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&full[..TAG_LEN]);
    out
}

fn decode_hex16(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in b.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
    const FAN: &str = "00112233445566778899aabbccddeeff";

    fn keys(spec: &str) -> TokenKeys {
        TokenKeys::parse(spec).unwrap()
    }

    #[test]
    fn round_trip_is_short_and_reveals_no_address() {
        let k = keys(&format!("t1:{K1}"));
        let t = k.sign(Purpose::Unsubscribe, 0, FAN, "demo-artist").unwrap();
        assert!(t.len() < 80, "{t}");
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "URL-safe: {t}");
        let c = k.verify(&t, Purpose::Unsubscribe, 1_900_000_000).unwrap();
        assert_eq!((c.fan_id.as_str(), c.artist_id.as_str(), c.expires), (FAN, "demo-artist", 0));
    }

    #[test]
    fn altered_truncated_or_foreign_tokens_are_invalid() {
        let k = keys(&format!("t1:{K1}"));
        let t = k.sign(Purpose::Unsubscribe, 0, FAN, "a1").unwrap();
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(b).unwrap();
            if altered != t {
                assert_eq!(k.verify(&altered, Purpose::Unsubscribe, 0), Err(TokenError::Invalid), "flip at {i}");
            }
        }
        for cut in 1..t.len() {
            assert_eq!(k.verify(&t[..cut], Purpose::Unsubscribe, 0), Err(TokenError::Invalid), "cut at {cut}");
        }
        assert_eq!(k.verify(&t, Purpose::Confirm, 0), Err(TokenError::Invalid), "purpose is bound");
        let other = keys(&format!("t1:{K2}"));
        assert_eq!(other.verify(&t, Purpose::Unsubscribe, 0), Err(TokenError::Invalid), "wrong key");
        for junk in ["", ".", "t1.", "t1.!!!", &"x".repeat(300)] {
            assert_eq!(k.verify(junk, Purpose::Unsubscribe, 0), Err(TokenError::Invalid));
        }
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let old = keys(&format!("t1:{K1}"));
        let t = old.sign(Purpose::Unsubscribe, 0, FAN, "a1").unwrap();
        let rotated = keys(&format!("t2:{K2},t1:{K1}"));
        assert!(rotated.verify(&t, Purpose::Unsubscribe, 0).is_ok());
        assert!(rotated.sign(Purpose::Unsubscribe, 0, FAN, "a1").unwrap().starts_with("t2."));
    }

    #[test]
    fn expiry_is_enforced() {
        let k = keys(&format!("t1:{K1}"));
        let t = k.sign(Purpose::Confirm, 1_000, FAN, "a1").unwrap();
        assert!(k.verify(&t, Purpose::Confirm, 999).is_ok());
        assert_eq!(k.verify(&t, Purpose::Confirm, 1_000), Err(TokenError::Expired));
    }

    #[test]
    fn bad_inputs_to_sign_and_parse() {
        let k = keys(&format!("t1:{K1}"));
        assert!(k.sign(Purpose::Unsubscribe, 0, "xyz", "a1").is_err());
        assert!(k.sign(Purpose::Unsubscribe, 0, FAN, "").is_err());
        assert!(k.sign(Purpose::Unsubscribe, 0, FAN, &"a".repeat(65)).is_err());
        for bad in ["", "t1", "t1:AAAA", "bad id:AAAA", &format!("t1:{K1},t1:{K1}")] {
            assert!(TokenKeys::parse(bad).is_err(), "{bad:?}");
        }
    }
}
