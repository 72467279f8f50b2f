//! Encryption at rest (AES-256-GCM) and keyed hashing (HMAC-SHA256).
//!
//! Stored ciphertexts look like `{key_id}.{base64url(nonce ‖ ciphertext ‖ tag)}`
//! so keys can rotate: new values use the first (active) key, old values stay
//! readable while their key is still listed. Each ciphertext is bound to its
//! context (e.g. the owning artist) through GCM's associated data, so a value
//! copied into another row or tenant fails to decrypt.
//!
//! Key material comes from platform secrets (`data_keys`, `index_key`),
//! never from files in the repository.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use std::cell::RefCell;
use std::rc::Rc;

use crate::{Error, ErrorKind};

thread_local! {
    /// The secrets last parsed by [`Keys::from_env`] and their keys.
    static PARSED: RefCell<Option<(String, String, Rc<Keys>)>> = const { RefCell::new(None) };
}

type HmacSha256 = Hmac<Sha256>;

pub const NONCE_LEN: usize = 12;

/// The data keys (for AES-GCM) and the index key (for blind indexes).
pub struct Keys {
    data: Vec<(String, Aes256Gcm)>,
    index: [u8; 32],
    /// For hashing client addresses (rate limits), derived from the index
    /// key so one secret serves both, yet a blind index and a client hash
    /// can never be compared or confused.
    client: [u8; 32],
}

impl Keys {
    /// Parses `data_keys` = `id:base64key[,id:base64key…]` (first = active;
    /// each key 32 bytes) and `index_key` = base64 of 32 bytes.
    pub fn parse(data_keys: &str, index_key: &str) -> Result<Keys, Error> {
        let mut data = Vec::new();
        for entry in data_keys.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key) = entry.split_once(':').ok_or_else(|| config("data_keys entries must look like id:base64key"))?;
            let valid_id = !id.is_empty() && id.len() <= 16 && id.bytes().all(|b| b.is_ascii_alphanumeric());
            if !valid_id {
                return Err(config("data_keys ids must be 1-16 letters or digits"));
            }
            let key = decode_key(key).ok_or_else(|| config("each data key must be base64 of 32 bytes"))?;
            let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| config("bad data key length"))?;
            // Two keys under one id would make old values undecryptable
            // or silently pick the wrong key.
            if data.iter().any(|(k, _)| k == id) {
                return Err(config("data_keys lists the same key id twice"));
            }
            data.push((id.to_owned(), cipher));
        }
        if data.is_empty() {
            return Err(config("data_keys is empty"));
        }
        let index = decode_key(index_key).ok_or_else(|| config("index_key must be base64 of 32 bytes"))?;
        let client = hmac_parts(&index, &[b"derive", b"rate-limit-client"]);
        Ok(Keys { data, index, client })
    }

    /// Reads the keys from the platform's secrets. Parsed keys (AES key
    /// schedule, derived HMAC key) are kept for the instance's life and
    /// reused while the secrets read the same: a Workers isolate serves
    /// many requests, and parsing took a visible share of a signup's CPU.
    pub fn from_env(env: &impl crate::Env) -> Result<Rc<Keys>, Error> {
        let data = env.var("data_keys").ok_or_else(|| config("secret data_keys is not set"))?;
        let index = env.var("index_key").ok_or_else(|| config("secret index_key is not set"))?;
        PARSED.with(|cell| {
            let mut cell = cell.borrow_mut();
            if let Some((d, i, keys)) = cell.as_ref() {
                if *d == data && *i == index {
                    return Ok(Rc::clone(keys));
                }
            }
            let keys = Rc::new(Keys::parse(&data, &index)?);
            *cell = Some((data, index, Rc::clone(&keys)));
            Ok(keys)
        })
    }

    /// Encrypts under the active key with a fresh random nonce (drawn
    /// here, so no caller can reuse one: a repeated GCM nonce under one key
    /// leaks both plaintexts).
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> Result<String, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| Error::internal(format_args!("getrandom: {e}")))?;
        self.encrypt_with_nonce(nonce, plaintext, context)
    }

    fn encrypt_with_nonce(&self, nonce: [u8; NONCE_LEN], plaintext: &[u8], context: &[u8]) -> Result<String, Error> {
        let (id, cipher) = &self.data[0];
        let sealed = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context }).map_err(|_| Error::internal("encryption failed"))?;
        let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        let mut out = String::with_capacity(id.len() + 1 + raw.len() * 4 / 3 + 4);
        out.push_str(id);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&raw, &mut out);
        Ok(out)
    }

    /// Decrypts a value made by [`Keys::encrypt`] with any listed key.
    pub fn decrypt(&self, stored: &str, context: &[u8]) -> Result<Vec<u8>, Error> {
        let bad = || Error::internal("stored ciphertext is malformed or its key is gone");
        let (id, body) = stored.split_once('.').ok_or_else(bad)?;
        let (_, cipher) = self.data.iter().find(|(k, _)| k == id).ok_or_else(bad)?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(bad());
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: context }).map_err(|_| bad())
    }

    /// Blind index: HMAC-SHA256 of `value` under the index key, scoped by
    /// `scope` (e.g. the artist id) so the same address has unrelated
    /// indexes under different artists. base64url, 43 chars.
    pub fn blind_index(&self, scope: &str, value: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(&[b"bidx", scope.as_bytes(), value.as_bytes()]))
    }

    /// Keyed hash of `parts` (length-prefixed, so part boundaries can't be
    /// shifted to forge a collision).
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        hmac_parts(&self.index, parts)
    }

    /// Keyed hash of a client address's `parts`, under its own derived key.
    pub fn client_mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        hmac_parts(&self.client, parts)
    }
}

fn hmac_parts(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// GCM associated data for a fan's address: binds the ciphertext to its
/// artist and to the fan's row, so it can't be copied into another
/// tenant's table or onto another fan of the same artist.
pub fn fan_email_context(artist_id: &str, fan_id: &str) -> String {
    format!("fan.email:{artist_id}:{fan_id}")
}

impl Keys {
    /// A fan's address. Rows written before addresses were bound to the
    /// fan carry the artist-only context, and stay readable.
    pub fn decrypt_fan_email(&self, stored: &str, artist_id: &str, fan_id: &str) -> Result<String, Error> {
        let plain = self
            .decrypt(stored, fan_email_context(artist_id, fan_id).as_bytes())
            .or_else(|_| self.decrypt(stored, format!("fan.email:{artist_id}").as_bytes()))?;
        String::from_utf8(plain).map_err(|_| Error::internal("stored address is not UTF-8"))
    }
}

fn decode_key(b64: &str) -> Option<[u8; 32]> {
    let b64 = b64.trim();
    let bytes = STANDARD.decode(b64).or_else(|_| URL_SAFE_NO_PAD.decode(b64)).ok()?;
    bytes.try_into().ok()
}

fn config(msg: &'static str) -> Error {
    Error::new(ErrorKind::Internal, msg)
}

/// SHA-256 as lower-case hex: content fingerprints (e.g. consent text).
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Equality without an early exit, for secrets compared with what a client
/// sent (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

    fn keys(data: &str) -> Keys {
        Keys::parse(data, K2).unwrap()
    }

    #[test]
    fn round_trip_and_context_binding() {
        let k = keys(&format!("k1:{K1}"));
        let c = k.encrypt(b"fan@example.com", b"artist-a").unwrap();
        assert!(c.starts_with("k1."));
        assert!(!c.contains("fan@example.com"));
        assert_eq!(k.decrypt(&c, b"artist-a").unwrap(), b"fan@example.com");
        assert!(k.decrypt(&c, b"artist-b").is_err(), "context must be bound");
    }

    #[test]
    fn every_encryption_draws_a_new_nonce() {
        let k = keys(&format!("k1:{K1}"));
        let (a, b) = (k.encrypt(b"same", b"").unwrap(), k.encrypt(b"same", b"").unwrap());
        assert_ne!(a, b, "same plaintext, same ciphertext: the nonce repeated");
        assert_eq!(k.decrypt(&b, b"").unwrap(), b"same");
        assert_eq!(k.encrypt_with_nonce([5; 12], b"x", b"").unwrap(), k.encrypt_with_nonce([5; 12], b"x", b"").unwrap());
    }

    #[test]
    fn fan_addresses_are_bound_to_the_fan() {
        let k = keys(&format!("k1:{K1}"));
        let c = k.encrypt(b"fan@example.com", fan_email_context("a1", "f1").as_bytes()).unwrap();
        assert_eq!(k.decrypt_fan_email(&c, "a1", "f1").unwrap(), "fan@example.com");
        assert!(k.decrypt_fan_email(&c, "a1", "f2").is_err(), "moved onto another fan");
        assert!(k.decrypt_fan_email(&c, "a2", "f1").is_err(), "moved to another artist");
        let legacy = k.encrypt(b"old@example.com", b"fan.email:a1").unwrap();
        assert_eq!(k.decrypt_fan_email(&legacy, "a1", "f9").unwrap(), "old@example.com");
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = keys(&format!("k1:{K1}"));
        let c = old.encrypt(b"x@y.zz", b"").unwrap();
        let rotated = keys(&format!("k2:{K2},k1:{K1}"));
        assert_eq!(rotated.decrypt(&c, b"").unwrap(), b"x@y.zz");
        assert!(rotated.encrypt(b"a", b"").unwrap().starts_with("k2."));
        let dropped = keys(&format!("k2:{K2}"));
        assert!(dropped.decrypt(&c, b"").is_err());
    }

    #[test]
    fn tampering_is_detected() {
        let k = keys(&format!("k1:{K1}"));
        let c = k.encrypt(b"fan@example.com", b"").unwrap();
        for i in 3..c.len() {
            let mut t = c.clone().into_bytes();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(t).unwrap();
            if t != c {
                assert!(k.decrypt(&t, b"").is_err(), "flip at {i} accepted");
            }
        }
        assert!(k.decrypt("k1.", b"").is_err());
        assert!(k.decrypt("nodot", b"").is_err());
    }

    #[test]
    fn blind_index_is_scoped_and_stable() {
        let k = keys(&format!("k1:{K1}"));
        let a = k.blind_index("artist-a", "fan@example.com");
        assert_eq!(a, k.blind_index("artist-a", "fan@example.com"));
        assert_ne!(a, k.blind_index("artist-b", "fan@example.com"));
        assert_eq!(a.len(), 43);
        // Length-prefixing: moving bytes between parts changes the MAC.
        assert_ne!(k.mac(&[b"ab", b"c"]), k.mac(&[b"a", b"bc"]));
        // Client hashes use a key of their own.
        assert_ne!(k.mac(&[b"x"]), k.client_mac(&[b"x"]));
    }

    #[test]
    fn bad_key_config_is_rejected() {
        for bad in ["", "k1", "k1:short", "bad id:AAAA", &format!(":{K1}"), &format!("k1:{K1},k1:{K2}")] {
            assert!(Keys::parse(bad, K2).is_err(), "{bad:?} accepted");
        }
        assert!(Keys::parse(&format!("k1:{K1}"), "short").is_err());
    }

    #[test]
    fn sha256_hex_known_answer() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
