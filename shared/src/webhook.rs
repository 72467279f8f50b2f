//! Standard Webhooks signatures, both ways: verifying what email providers
//! send us (Resend signs with Svix, which is the same scheme under `svix-*`
//! header names) and signing what we send to artists' endpoints.
//!
//! The scheme: `base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))`, sent
//! as `v1,<signature>`; a header may carry several space-separated
//! signatures (one per secret while a secret is rotated), and any one valid
//! signature passes. Secrets are `whsec_` + base64 of the key bytes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, ErrorKind};

/// How far a message's timestamp may be from our clock, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Largest inbound body accepted before verification (413 beyond).
pub const MAX_INBOUND_BODY: usize = 64 * 1024;

/// One signing key.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>`. The prefix is optional on input (some
    /// providers show the bare base64), but the key must be 24–64 bytes.
    pub fn parse(s: &str) -> Result<Secret, Error> {
        let b64 = s.trim().strip_prefix("whsec_").unwrap_or(s.trim());
        let key = STANDARD.decode(b64).map_err(|_| Error::new(ErrorKind::Unprocessable, "a webhook secret must be whsec_ followed by base64"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(Error::new(ErrorKind::Unprocessable, "a webhook secret must hold 24 to 64 bytes"));
        }
        Ok(Secret(key))
    }

    /// A new random secret (32 bytes).
    pub fn generate(env: &impl crate::Env) -> Result<Secret, Error> {
        let mut key = vec![0u8; 32];
        env.random(&mut key)?;
        Ok(Secret(key))
    }

    /// The `whsec_…` form, as shown to the artist once.
    pub fn encode(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// `v1,<base64>` for one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }
}

/// Parses a list of secrets separated by spaces or commas (several are
/// configured while one is rotated).
pub fn parse_secrets(list: &str) -> Result<Vec<Secret>, Error> {
    list.split([' ', ',', '\n']).filter(|s| !s.trim().is_empty()).map(Secret::parse).collect()
}

/// The three headers of a signed message, under either naming.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

impl<'a> Headers<'a> {
    /// `webhook-*` (Standard Webhooks) or `svix-*` (Svix, Resend).
    /// `None` when any of the three is missing.
    pub fn from_map(h: &'a http::HeaderMap) -> Option<Headers<'a>> {
        let get = |std: &str, svix: &str| h.get(std).or_else(|| h.get(svix)).and_then(|v| v.to_str().ok());
        Some(Headers {
            id: get("webhook-id", "svix-id")?,
            timestamp: get("webhook-timestamp", "svix-timestamp")?,
            signature: get("webhook-signature", "svix-signature")?,
        })
    }
}

/// Why a message was refused. All are 401 to the caller; the messages say
/// which check failed, never anything about our data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MissingHeaders,
    BadTimestamp,
    Stale,
    Future,
    BadSignature,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::MissingHeaders => "Missing webhook-id, webhook-timestamp or webhook-signature header (or their svix- forms).",
            Refusal::BadTimestamp => "The webhook timestamp is not a number of seconds.",
            Refusal::Stale => "The webhook timestamp is more than 5 minutes old: refused as a possible replay.",
            Refusal::Future => "The webhook timestamp is more than 5 minutes in the future: check the sender's clock.",
            Refusal::BadSignature => "No valid webhook signature for this body.",
        }
    }
}

/// Verifies a raw body against its headers before anything parses it.
/// The timestamp is checked first (cheap), then every `v1,` signature
/// against every secret, in constant time each.
pub fn verify(secrets: &[Secret], h: Option<Headers<'_>>, body: &[u8], now_secs: i64) -> Result<(), Refusal> {
    let h = h.ok_or(Refusal::MissingHeaders)?;
    let ts: i64 = h.timestamp.trim().parse().map_err(|_| Refusal::BadTimestamp)?;
    if ts < now_secs - TOLERANCE_SECS {
        return Err(Refusal::Stale);
    }
    if ts > now_secs + TOLERANCE_SECS {
        return Err(Refusal::Future);
    }
    let given: Vec<Vec<u8>> = h.signature.split(' ').filter_map(|s| s.strip_prefix("v1,")).filter_map(|b64| STANDARD.decode(b64.trim()).ok()).collect();
    let mut ok = false;
    for secret in secrets {
        let want = secret.mac(h.id, ts, body);
        for g in &given {
            // No early exit: every comparison runs whatever matched.
            ok |= crate::crypto::ct_eq(g, &want);
        }
    }
    if ok {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's published example (secret,
    // id, timestamp, body and the signature its reference code computes).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> Option<Headers<'a>> {
        Some(Headers { id, timestamp: ts, signature: sig })
    }

    #[test]
    fn matches_the_specification_example() {
        let s = Secret::parse(SPEC_SECRET).unwrap();
        assert_eq!(s.sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
        let ts = SPEC_TS.to_string();
        assert_eq!(verify(&[s], headers(SPEC_ID, &ts, SPEC_SIG), SPEC_BODY, SPEC_TS + 10), Ok(()));
    }

    #[test]
    fn refusals() {
        let s = Secret::parse(SPEC_SECRET).unwrap();
        let other = Secret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        let ts = SPEC_TS.to_string();
        let now = SPEC_TS;
        let v = |secrets: &[Secret], sig: &str, body: &[u8], now: i64| verify(secrets, headers(SPEC_ID, &ts, sig), body, now);
        assert_eq!(v(std::slice::from_ref(&s), SPEC_SIG, b"{\"test\": 2432232315}", now), Err(Refusal::BadSignature), "tampered body");
        assert_eq!(v(std::slice::from_ref(&other), SPEC_SIG, SPEC_BODY, now), Err(Refusal::BadSignature), "wrong secret");
        assert_eq!(v(std::slice::from_ref(&s), SPEC_SIG, SPEC_BODY, now + TOLERANCE_SECS + 1), Err(Refusal::Stale));
        assert_eq!(v(std::slice::from_ref(&s), SPEC_SIG, SPEC_BODY, now - TOLERANCE_SECS - 1), Err(Refusal::Future));
        assert_eq!(v(std::slice::from_ref(&s), "v1,bm9wZQ== v2,xyz", SPEC_BODY, now), Err(Refusal::BadSignature));
        assert_eq!(v(std::slice::from_ref(&s), "", SPEC_BODY, now), Err(Refusal::BadSignature));
        assert_eq!(verify(std::slice::from_ref(&s), headers(SPEC_ID, "soon", SPEC_SIG), SPEC_BODY, now), Err(Refusal::BadTimestamp));
        assert_eq!(verify(std::slice::from_ref(&s), None, SPEC_BODY, now), Err(Refusal::MissingHeaders));
        // Several signatures, one valid; several secrets, one right.
        let several = format!("v1,bm9wZQ== {SPEC_SIG} v1a,whatever");
        assert_eq!(v(std::slice::from_ref(&s), &several, SPEC_BODY, now), Ok(()));
        assert_eq!(v(&[other, s], SPEC_SIG, SPEC_BODY, now), Ok(()));
        assert_eq!(v(&[], SPEC_SIG, SPEC_BODY, now), Err(Refusal::BadSignature), "no secret configured verifies nothing");
    }

    #[test]
    fn secrets_parse_and_round_trip() {
        assert!(Secret::parse("whsec_!!").is_err());
        assert!(Secret::parse("whsec_c2hvcnQ=").is_err(), "too short");
        let s = Secret::parse(SPEC_SECRET).unwrap();
        assert_eq!(Secret::parse(&s.encode()).unwrap().0, s.0);
        assert_eq!(parse_secrets(&format!("{SPEC_SECRET} {}", s.encode())).unwrap().len(), 2);
        assert!(parse_secrets("").unwrap().is_empty());
        let mut h = http::HeaderMap::new();
        h.insert("svix-id", "a".parse().unwrap());
        h.insert("svix-timestamp", "1".parse().unwrap());
        assert!(Headers::from_map(&h).is_none());
        h.insert("webhook-signature", "v1,x".parse().unwrap());
        assert_eq!(Headers::from_map(&h).unwrap().signature, "v1,x");
    }
}
