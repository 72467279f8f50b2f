//! Time-based one-time passwords (RFC 6238) for the second sign-in factor,
//! plus the recovery codes that stand in for a lost authenticator.
//!
//! HMAC-SHA1, 6 digits and 30-second steps are what every authenticator app
//! defaults to (several ignore the `algorithm`/`digits`/`period` parameters
//! altogether), so these are fixed rather than configurable.
//!
//! Replay: the caller stores the step returned by [`verify`] and passes it
//! back next time; a code is then accepted only for a later step, so an
//! observed code cannot be reused within its validity window.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::Error;

type HmacSha1 = Hmac<Sha1>;

pub const DIGITS: u32 = 6;
pub const STEP_SECS: i64 = 30;
/// 160 bits: the HMAC-SHA1 block output size, as RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

/// 10^DIGITS: the modulus of the truncated HMAC.
const MODULUS: u32 = 1_000_000;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Recovery code alphabet: digits and lower-case letters minus 0/o, 1/i/l,
/// which people misread when copying codes from paper. 31 characters, so
/// random bytes are drawn by rejection (see [`codes_from_bytes`]).
const RECOVERY_ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";
const RECOVERY_COUNT: usize = 10;
const RECOVERY_LEN: usize = 10;
/// Largest multiple of 31 that fits in a byte: bytes at or above it are
/// rejected so `byte % 31` is uniform.
const RECOVERY_BYTE_LIMIT: u8 = (256 / RECOVERY_ALPHABET.len() * RECOVERY_ALPHABET.len()) as u8;

/// Fresh secret from the platform CSPRNG.
///
/// The secret is the whole factor: anything less than a CSPRNG would make
/// codes predictable.
pub fn new_secret(env: &impl crate::Env) -> Result<[u8; SECRET_LEN], Error> {
    let mut secret = [0u8; SECRET_LEN];
    env.random(&mut secret)?;
    Ok(secret)
}

/// RFC 4648 base32, upper case, no padding (what authenticator apps expect).
///
/// Base32 rather than hex or base64 because it is how the `otpauth` format
/// carries secrets and it survives being typed in by hand.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(BASE32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Inverse of base32 (accepts lower case, ignores spaces and '='); None on bad input.
///
/// Lenient about case, spaces and padding because people retype secrets
/// shown in groups; strict about everything else (including non-zero
/// leftover bits and impossible lengths) so only one text decodes to a
/// given secret.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    let mut chars = 0usize;
    for b in s.bytes() {
        let v = match b {
            b' ' | b'=' => continue,
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a',
            b'2'..=b'7' => b - b'2' + 26,
            _ => return None,
        };
        chars += 1;
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    // 1, 3 or 6 characters past a multiple of 8 cannot come from whole bytes.
    if matches!(chars % 8, 1 | 3 | 6) || acc != 0 {
        return None;
    }
    Some(out)
}

/// `otpauth://totp/{issuer}:{account}?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`, with issuer and account percent-encoded (RFC 3986 unreserved kept).
///
/// The issuer appears twice because older apps read it only from the label
/// and newer ones prefer the parameter; the fixed parameters are spelled out
/// so apps that honour them agree with [`verify`].
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        account = percent_encode(account),
        secret = base32(secret),
    )
}

/// Everything but RFC 3986 unreserved characters, as `%XX` of the UTF-8 bytes,
/// so a ':' or '&' in a name cannot change the URI's structure.
fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// The code for one time step (RFC 4226 dynamic truncation, modulo 10^6).
///
/// Takes the step rather than a time so tests and [`verify`]'s window share
/// one definition of "the step".
pub fn code_at(secret: &[u8], step: i64) -> u32 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha1::new_from_slice(secret).expect("HMAC takes keys of any length");
    // Steps are non-negative for any time after 1970; the two's-complement
    // bytes of an earlier one are as good a counter as any.
    mac.update(&(step as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([h[offset] & 0x7f, h[offset + 1], h[offset + 2], h[offset + 3]]);
    bin % MODULUS
}

/// The step a typed code matches among now-1, now, now+1, if any and only if that step is greater than `last_used_step` (so a code cannot be used twice, nor an older one after a newer). Accepts the 6 digits with optional single inner space (e.g. "123 456"); anything else → None.
///
/// The ±1 step window absorbs clock drift and the seconds it takes to type;
/// a wider one would only give guessers more targets. All candidates are
/// computed and compared whatever matches, so timing does not tell an
/// attacker which step (or whether any) was close.
pub fn verify(secret: &[u8], typed: &str, now_ms: i64, last_used_step: Option<i64>) -> Option<i64> {
    let typed = parse_code(typed)?;
    let now = now_ms.div_euclid(STEP_SECS * 1000);
    let mut found: u64 = 0;
    let mut chosen: i64 = 0;
    // Latest step first, so on a (vanishingly rare) collision the earliest
    // matching step wins and a later code stays usable.
    for step in [now + 1, now, now - 1] {
        let fresh = last_used_step.is_none_or(|last| step > last);
        let matches = ct_eq(code_at(secret, step), typed) & mask(fresh);
        chosen = ((step as u64 & matches) | (chosen as u64 & !matches)) as i64;
        found |= matches;
    }
    (found != 0).then_some(chosen)
}

/// The typed code as a number, if it is exactly six ASCII digits with at
/// most one space between two of them (apps show codes as "123 456").
fn parse_code(typed: &str) -> Option<u32> {
    let b = typed.as_bytes();
    let mut digits = [0u8; 6];
    match b.len() {
        6 => digits.copy_from_slice(b),
        7 => {
            let space = b.iter().position(|&c| c == b' ')?;
            if space == 0 || space == 6 {
                return None;
            }
            digits[..space].copy_from_slice(&b[..space]);
            digits[space..].copy_from_slice(&b[space + 1..]);
        }
        _ => return None,
    }
    digits.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
}

/// All ones if `a == b`, else zero, without a data-dependent branch.
fn ct_eq(a: u32, b: u32) -> u64 {
    let diff = u64::from(a ^ b);
    // diff | -diff has the top bit set iff diff != 0.
    let nonzero = (diff | diff.wrapping_neg()) >> 63;
    nonzero.wrapping_sub(1)
}

fn mask(b: bool) -> u64 {
    u64::from(b).wrapping_neg()
}

/// Ten one-time recovery codes, each 10 characters from an unambiguous alphabet (no 0/O/1/I/L), shown as `xxxxx-xxxxx` lower case.
///
/// 10 characters of a 31-letter alphabet are ~49 bits each: far beyond
/// online guessing behind a rate limit, yet short enough to copy by hand.
pub fn recovery_codes(env: &impl crate::Env) -> Result<Vec<String>, Error> {
    // 100 characters need ~103 bytes on average; 256 leave no realistic
    // chance of running short, and a few retries cover even that.
    let mut buf = [0u8; 256];
    for _ in 0..4 {
        env.random(&mut buf)?;
        if let Some(codes) = codes_from_bytes(&buf) {
            return Ok(codes);
        }
    }
    Err(Error::internal("random source gave too few usable bytes for recovery codes"))
}

/// The codes [`recovery_codes`] makes from these random bytes, or None if
/// they run out first. Separate so the shaping is testable without an `Env`.
fn codes_from_bytes(bytes: &[u8]) -> Option<Vec<String>> {
    let mut chars = bytes.iter().filter(|&&b| b < RECOVERY_BYTE_LIMIT).map(|&b| RECOVERY_ALPHABET[usize::from(b) % RECOVERY_ALPHABET.len()] as char);
    let mut codes: Vec<String> = Vec::with_capacity(RECOVERY_COUNT);
    while codes.len() < RECOVERY_COUNT {
        let mut code = String::with_capacity(RECOVERY_LEN + 1);
        for i in 0..RECOVERY_LEN {
            if i == RECOVERY_LEN / 2 {
                code.push('-');
            }
            code.push(chars.next()?);
        }
        // Duplicates are astronomically unlikely, but one would silently
        // leave the user with nine codes.
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    Some(codes)
}

/// The canonical form of a typed recovery code (lower-cased, spaces and dashes removed), or None if it cannot be one (wrong length or characters).
///
/// Stored codes (or their hashes) are kept in this form, so whatever grouping
/// or case the user types compares equal; rejecting impossible input early
/// spares a lookup.
pub fn normalize_recovery(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(RECOVERY_LEN);
    for c in typed.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        // ASCII-only lower-casing: Unicode folding would turn e.g. the Kelvin
        // sign into 'k' and let look-alikes through.
        let c = c.to_ascii_lowercase();
        if out.len() == RECOVERY_LEN || !c.is_ascii() || !RECOVERY_ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == RECOVERY_LEN).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        let cases: [(i64, u32); 6] = [
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ];
        for (t, eight) in cases {
            let step = t / STEP_SECS;
            assert_eq!(code_at(RFC_SECRET, step), eight % MODULUS, "t={t}");
            // And verify agrees at that moment.
            let typed = format!("{:06}", eight % MODULUS);
            assert_eq!(verify(RFC_SECRET, &typed, t * 1000, None), Some(step), "t={t}");
        }
    }

    #[test]
    fn base32_rfc4648_vectors() {
        let cases = [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI")];
        for (plain, enc) in cases {
            assert_eq!(base32(plain.as_bytes()), enc);
            assert_eq!(base32_decode(enc).as_deref(), Some(plain.as_bytes()));
        }
        // Padding, spaces and lower case are tolerated.
        assert_eq!(base32_decode("mzxw 6ytb oi======").as_deref(), Some(&b"foobar"[..]));
    }

    #[test]
    fn base32_round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).rev().collect();
        for n in 0..64 {
            let enc = base32(&data[..n]);
            assert!(!enc.contains('='));
            assert_eq!(base32_decode(&enc).as_deref(), Some(&data[..n]), "n={n}");
        }
        let secret = [0xA5u8; SECRET_LEN];
        assert_eq!(base32(&secret).len(), 32);
    }

    #[test]
    fn base32_rejects_bad_input() {
        for bad in ["MZXW1", "MZXW6!", "M", "MZX", "MZXW6YTBO", "MZ", "MZXW7", "é"] {
            // "MZ" and "MZXW7" have non-zero leftover bits; the others bad
            // characters or impossible lengths.
            assert_eq!(base32_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn otpauth_uri_shape_and_escaping() {
        let uri = otpauth_uri(b"Hello!\xde\xad\xbe\xef", "Stagedoor", "owner@example.com");
        assert_eq!(uri, "otpauth://totp/Stagedoor:owner%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Stagedoor&algorithm=SHA1&digits=6&period=30");
        let uri = otpauth_uri(b"x", "A&B: Ü", "a b?c#d~e.f_g-h");
        assert_eq!(uri, "otpauth://totp/A%26B%3A%20%C3%9C:a%20b%3Fc%23d~e.f_g-h?secret=PA&issuer=A%26B%3A%20%C3%9C&algorithm=SHA1&digits=6&period=30");
    }

    fn code_str(step: i64) -> String {
        format!("{:06}", code_at(RFC_SECRET, step))
    }

    #[test]
    fn window_is_plus_minus_one_step() {
        let now_ms = 1_767_225_615_000; // mid-step
        let now = now_ms / 30_000;
        for d in -1..=1 {
            assert_eq!(verify(RFC_SECRET, &code_str(now + d), now_ms, None), Some(now + d), "d={d}");
        }
        for d in [-2, 2] {
            let code = code_str(now + d);
            // Skip the 1-in-10^6 chance that the far code equals a near one.
            if (-1..=1).any(|n| code_str(now + n) == code) {
                continue;
            }
            assert_eq!(verify(RFC_SECRET, &code, now_ms, None), None, "d={d}");
        }
    }

    #[test]
    fn codes_are_single_use_and_monotonic() {
        let now_ms = 1_767_225_600_000;
        let now = now_ms / 30_000;
        let code = code_str(now);
        let used = verify(RFC_SECRET, &code, now_ms, None);
        assert_eq!(used, Some(now));
        // The same code again: refused.
        assert_eq!(verify(RFC_SECRET, &code, now_ms, used), None);
        assert_eq!(verify(RFC_SECRET, &code, now_ms + 29_000, used), None);
        // An older code after a newer one: refused.
        assert_eq!(verify(RFC_SECRET, &code_str(now - 1), now_ms, used), None);
        // The next step's code: accepted.
        assert_eq!(verify(RFC_SECRET, &code_str(now + 1), now_ms, used), Some(now + 1));
    }

    #[test]
    fn typed_forms() {
        let now_ms = 59_000;
        assert_eq!(verify(RFC_SECRET, "287082", now_ms, None), Some(1));
        assert_eq!(verify(RFC_SECRET, "287 082", now_ms, None), Some(1));
        assert_eq!(verify(RFC_SECRET, "2 87082", now_ms, None), Some(1));
        for bad in ["", "28708", "2870820", " 287082", "287082 ", "287  082", "287-082", "28708x", "２87082", "+87082", "287\u{a0}082", "2870 8 2"] {
            assert_eq!(verify(RFC_SECRET, bad, now_ms, None), None, "{bad:?}");
        }
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        for t in [i64::MIN, -1, 0, i64::MAX] {
            let _ = verify(RFC_SECRET, "000000", t, Some(i64::MAX));
            let _ = verify(&[], "123456", t, None);
            let _ = code_at(&[0u8; 200], t);
        }
    }

    #[test]
    fn ct_eq_works() {
        assert_eq!(ct_eq(5, 5), u64::MAX);
        assert_eq!(ct_eq(0, 0), u64::MAX);
        assert_eq!(ct_eq(5, 4), 0);
        assert_eq!(ct_eq(0, u32::MAX), 0);
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn recovery_code_shape_and_uniqueness() {
        let codes = codes_from_bytes(&pseudo_random(256, 0x9E37_79B9_7F4A_7C15)).expect("256 bytes suffice");
        assert_eq!(codes.len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 11, "{c}");
            assert_eq!(c.as_bytes()[5], b'-');
            for ch in c.chars().filter(|&ch| ch != '-') {
                assert!(ch.is_ascii_lowercase() || ch.is_ascii_digit(), "{c}");
                assert!(!"0o1il".contains(ch), "{c}");
            }
            assert_eq!(normalize_recovery(c).as_deref(), Some(c.replace('-', "").as_str()));
        }
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 10);
    }

    #[test]
    fn recovery_bytes_are_rejected_not_folded() {
        // Bytes ≥ 248 are skipped; too few usable bytes → None.
        assert_eq!(codes_from_bytes(&[255u8; 1000]), None);
        assert_eq!(codes_from_bytes(&[0u8; 99]), None);
        // All-equal input cannot make ten distinct codes.
        assert_eq!(codes_from_bytes(&[7u8; 1000]), None);
        let mut bytes: Vec<u8> = vec![248, 249, 250];
        bytes.extend(0..=247u8);
        let codes = codes_from_bytes(&bytes).expect("248 usable bytes");
        assert_eq!(codes[0], "23456-789ab");
    }

    #[test]
    fn normalize_recovery_forms() {
        assert_eq!(normalize_recovery("abcde-fghjk").as_deref(), Some("abcdefghjk"));
        assert_eq!(normalize_recovery(" ABCDE FGHJK ").as_deref(), Some("abcdefghjk"));
        assert_eq!(normalize_recovery("ab-cd-ef-gh-jk").as_deref(), Some("abcdefghjk"));
        for bad in [
            "",
            "abcde-fghj",
            "abcde-fghjkm",
            "abcde-fghj0",
            "abcde-fghjo",
            "abcde-fghj1",
            "abcde-fghji",
            "abcde-fghjl",
            "abcde_fghjk",
            "abcde-fghj\u{212a}",
            "abcde-fghjé",
        ] {
            assert_eq!(normalize_recovery(bad), None, "{bad:?}");
        }
    }

    #[cfg(feature = "native")]
    #[test]
    fn env_backed_generators() {
        let env = crate::adapters::native::NativeEnv::memory().expect("memory env");
        let a = new_secret(&env).expect("random");
        let b = new_secret(&env).expect("random");
        assert_ne!(a, b);
        let codes = recovery_codes(&env).expect("random");
        assert_eq!(codes.len(), 10);
        assert!(codes.iter().all(|c| normalize_recovery(c).is_some()));
    }
}
