//! Email address validation and normalisation for fan signups: std only, allocation-light, panic-free.
//!
//! Deliberate scope decisions (each keeps the wasm small or the data we store predictable):
//! - Quoted local parts (`"a b"@x.com`) are rejected: real signups never use them, and every
//!   downstream system (CSV exports, email APIs, blind indexes) would have to handle quoting.
//! - Non-ASCII local parts (SMTPUTF8, RFC 6531) are rejected: the providers and sending APIs we
//!   rely on do not accept them reliably, so storing one would only produce a bounce later.
//! - Internationalised domains are lower-cased with `char::to_lowercase`, full-width ASCII and
//!   ideographic dots are folded, and each label is Punycode-encoded (RFC 3492). Full UTS #46
//!   mapping and NFC normalisation are NOT done: the `idna` crate would add 100+ KB of Unicode
//!   tables to every function's wasm, and lower-casing + Punycode covers what people type.
//! - Address literals (`a@[1.2.3.4]`) and single-label domains are rejected: nobody signs up to
//!   a mailing list from a bare host or an IP address, and they are a common typo signature.

use std::fmt;

/// Anything longer is hostile or garbage; refusing it first keeps the cost of bad input flat.
const MAX_INPUT: usize = 1024;
/// RFC 5321 path limit (256) minus the angle brackets.
const MAX_ADDRESS: usize = 254;
const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 253;
const MAX_LABEL: usize = 63;

/// A validated, normalised address: local part as typed (case preserved: RFC 5321 says local
/// parts may be case-sensitive), domain lower-cased and in ASCII (IDN labels → Punycode `xn--`
/// A-labels). The whole string is always ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validates and normalises `input`; surrounding ASCII whitespace is ignored.
    ///
    /// # Errors
    /// The first rule the input breaks, as an [`EmailError`] whose `message()` can be shown
    /// to the fan as is.
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        if input.len() > MAX_INPUT {
            return Err(EmailError::TooLong);
        }
        let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        // The last '@' is the separator: an '@' can only legally appear earlier inside a quoted
        // local part, which is then rejected as LocalInvalid rather than misread as a domain.
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::MissingAt)?;
        check_local(local)?;
        // ASCII domains never grow, so the common path allocates exactly once.
        let cap = if domain.is_ascii() { s.len() } else { MAX_ADDRESS };
        let mut out = String::with_capacity(cap);
        out.push_str(local);
        out.push('@');
        push_domain(domain, &mut out)?;
        if out.len() > MAX_ADDRESS {
            return Err(EmailError::TooLong);
        }
        Ok(Email(out))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Key for deduplication / blind indexing: the normalised address with the local part
    /// lower-cased too. RFC 5321 allows case-sensitive local parts, but practically every
    /// provider ignores case, and treating `Ana@` and `ana@` as two fans would double-send.
    /// Dots and `+tags` are never altered: that is provider-specific (only some ignore them)
    /// and a fan may use a tag on purpose to filter or track us.
    #[must_use]
    pub fn index_key(&self) -> String {
        // Sound because the whole address is guaranteed ASCII.
        self.0.to_ascii_lowercase()
    }

    #[must_use]
    pub fn domain(&self) -> &str {
        let at = self.0.rfind('@').map_or(0, |i| i + 1);
        self.0.get(at..).unwrap_or("")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailError {
    Empty,
    TooLong,
    MissingAt,
    LocalEmpty,
    LocalTooLong,
    LocalInvalid,
    DomainEmpty,
    DomainTooLong,
    DomainInvalid,
    LabelTooLong,
    IdnInvalid,
}

impl EmailError {
    /// A sentence a fan can act on; safe to show verbatim next to the form field.
    #[must_use]
    pub fn message(&self) -> &'static str {
        match self {
            EmailError::Empty => "Enter your email address.",
            EmailError::TooLong => "That email address is too long. Check it and try again.",
            EmailError::MissingAt => "Enter an email address like name@example.com.",
            EmailError::LocalEmpty => "Add your name before the @, like name@example.com.",
            EmailError::LocalTooLong => "The part before the @ is too long. It can be at most 64 characters.",
            EmailError::LocalInvalid => {
                "The part before the @ can use letters, numbers and symbols like . + - _, \
                 but no spaces, accents, quotes or double dots."
            }
            EmailError::DomainEmpty => "Add the domain after the @, like name@example.com.",
            EmailError::DomainTooLong => "The part after the @ is too long. Check the domain and try again.",
            EmailError::DomainInvalid => "The part after the @ should be a domain like example.com. Check for typos.",
            EmailError::LabelTooLong => "Part of the domain after the @ is too long. Check it for typos.",
            EmailError::IdnInvalid => "The domain after the @ contains characters that can't be used. Check it for typos.",
        }
    }
}

impl fmt::Display for EmailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for EmailError {}

/// RFC 5322 `atext`, the only characters allowed in an unquoted local part besides dots.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

fn check_local(local: &str) -> Result<(), EmailError> {
    let bytes = local.as_bytes();
    match (bytes.first(), bytes.last()) {
        (None, _) | (_, None) => return Err(EmailError::LocalEmpty),
        (Some(b'.'), _) | (_, Some(b'.')) => return Err(EmailError::LocalInvalid),
        _ => {}
    }
    if bytes.len() > MAX_LOCAL {
        return Err(EmailError::LocalTooLong);
    }
    // Byte-wise is enough: any non-ASCII byte fails `is_atext`, which is the SMTPUTF8 rejection.
    let dots_ok = !bytes.windows(2).any(|w| w == b"..");
    if !dots_ok || !bytes.iter().all(|&b| b == b'.' || is_atext(b)) {
        return Err(EmailError::LocalInvalid);
    }
    Ok(())
}

/// Label separators: the ASCII dot plus the ideographic and full-width dots that CJK input
/// methods produce when a fan types '.', so `例え。テスト` means what it looks like.
fn is_dot(c: char) -> bool {
    matches!(c, '.' | '\u{3002}' | '\u{FF0E}' | '\u{FF61}')
}

/// Full-width ASCII (U+FF01..U+FF5E) comes from the same input methods; folding it is the one
/// slice of UTS #46 that is a single subtraction rather than a table.
fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Invisible formatting characters: without UTS #46 we cannot map them away, and letting them
/// through would make visually identical domains encode differently (a spoofing vector).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}' | '\u{FFF0}'..='\u{FFFF}')
}

fn push_domain(domain: &str, out: &mut String) -> Result<(), EmailError> {
    if domain.is_empty() {
        return Err(EmailError::DomainEmpty);
    }
    // Every mapping below keeps or grows the character count, so this bound is exact enough to
    // refuse oversized domains before any per-label work.
    if domain.chars().count() > MAX_DOMAIN {
        return Err(EmailError::DomainTooLong);
    }
    let start = out.len();
    let mut labels = 0;
    let mut last = start;
    for label in domain.split(is_dot) {
        if labels > 0 {
            out.push('.');
        }
        last = out.len();
        push_label(label, out)?;
        labels += 1;
    }
    // A bare TLD is never a mailbox domain, and an all-numeric last label means an IP address
    // or a typo (RFC 3696 §2: TLDs are never all-numeric).
    let tld = out.get(last..).unwrap_or("");
    if labels < 2 || tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EmailError::DomainInvalid);
    }
    if out.len() - start > MAX_DOMAIN {
        return Err(EmailError::DomainTooLong);
    }
    Ok(())
}

/// Appends one label in ASCII form. Labels are folded into a fixed stack buffer: anything that
/// does not fit is too long anyway, since the encoded form is never shorter than the decoded one.
fn push_label(label: &str, out: &mut String) -> Result<(), EmailError> {
    let mut buf = ['\0'; MAX_LABEL];
    let mut len = 0;
    for c in label.chars().map(fold_width) {
        if c.is_whitespace() || c.is_control() {
            return Err(EmailError::DomainInvalid);
        }
        if is_invisible(c) {
            return Err(EmailError::IdnInvalid);
        }
        for lc in c.to_lowercase() {
            if lc.is_ascii() && !(lc.is_ascii_alphanumeric() || lc == '-') {
                return Err(EmailError::DomainInvalid);
            }
            *buf.get_mut(len).ok_or(EmailError::LabelTooLong)? = lc;
            len += 1;
        }
    }
    let chars = buf.get(..len).unwrap_or(&[]);
    match (chars.first(), chars.last()) {
        (None, _) | (_, None | Some('-')) | (Some('-'), _) => return Err(EmailError::DomainInvalid),
        _ => {}
    }
    let start = out.len();
    // Lower-casing can turn a non-ASCII letter into ASCII (e.g. KELVIN SIGN → 'k'), so decide
    // on the folded form, not the input.
    if chars.iter().all(char::is_ascii) {
        out.extend(chars);
    } else {
        out.push_str("xn--");
        punycode_encode(chars, out)?;
    }
    if out.len() - start > MAX_LABEL {
        return Err(EmailError::LabelTooLong);
    }
    Ok(())
}

// RFC 3492 §5 parameters for IDNA.
const BASE: u32 = 36;
const TMIN: u32 = 1;
const TMAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 128;

/// RFC 3492 §6.6 bias adaptation.
fn adapt(delta: u32, num_points: u32, first: bool) -> u32 {
    let mut delta = if first { delta / DAMP } else { delta / 2 };
    delta += delta / num_points;
    let mut k = 0;
    while delta > ((BASE - TMIN) * TMAX) / 2 {
        delta /= BASE - TMIN;
        k += BASE;
    }
    k + (BASE - TMIN + 1) * delta / (delta + SKEW)
}

fn digit(d: u32) -> char {
    // Lower-case digits so encoded labels are already in canonical domain form.
    const DIGITS: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    DIGITS.get(d as usize).map_or('?', |&b| char::from(b))
}

/// RFC 3492 §6.3 encoder, writing straight into `out`. Arithmetic is checked even though a
/// 63-char label cannot overflow u32, so a future change to the limits fails safe, not wrong.
fn punycode_encode(input: &[char], out: &mut String) -> Result<(), EmailError> {
    let overflow = EmailError::IdnInvalid;
    let len = u32::try_from(input.len()).map_err(|_| overflow)?;
    let mut basic = 0;
    for &c in input.iter().filter(|c| c.is_ascii()) {
        out.push(c);
        basic += 1;
    }
    if basic > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias, mut handled) = (INITIAL_N, 0u32, INITIAL_BIAS, basic);
    while handled < len {
        let m = input.iter().map(|&c| c as u32).filter(|&c| c >= n).min().ok_or(overflow)?;
        let step = (m - n).checked_mul(handled + 1).ok_or(overflow)?;
        delta = delta.checked_add(step).ok_or(overflow)?;
        n = m;
        for &c in input {
            let c = c as u32;
            if c < n {
                delta = delta.checked_add(1).ok_or(overflow)?;
            } else if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        TMIN
                    } else if k >= bias + TMAX {
                        TMAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1).ok_or(overflow)?;
        n += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use EmailError::*;

    /// The single entry point for address cases: checks the result and, for valid addresses,
    /// the invariants every `Email` must satisfy.
    fn check(input: &str, want: Result<&str, EmailError>) {
        let got = Email::parse(input);
        assert_eq!(got.as_ref().map(Email::as_str).map_err(|e| *e), want, "input: {input:?}");
        if let Ok(email) = got {
            let s = email.as_str();
            assert!(s.is_ascii() && s.len() <= MAX_ADDRESS, "{s:?}");
            assert_eq!(Email::parse(s), Ok(email.clone()), "not idempotent: {s:?}");
            assert_eq!(email.index_key(), s.to_ascii_lowercase());
            assert!(s.ends_with(&format!("@{}", email.domain())));
        }
    }

    #[test]
    fn valid_addresses() {
        let cases = [
            ("fan@example.com", "fan@example.com"),
            ("fan+tour2025@example.com", "fan+tour2025@example.com"),
            ("first.last@mail.example.co.uk", "first.last@mail.example.co.uk"),
            ("fan@EXAMPLE.Com", "fan@example.com"),
            ("Ana.Silva@Example.COM", "Ana.Silva@example.com"),
            ("o'brien!#$%&*/=?^_`{|}~-@example.com", "o'brien!#$%&*/=?^_`{|}~-@example.com"),
            ("  \t fan@example.com \r\n", "fan@example.com"),
            ("fan@my-band.example", "fan@my-band.example"),
            ("fan@xn--bcher-kva.example", "fan@xn--bcher-kva.example"),
            ("fan@bücher.example", "fan@xn--bcher-kva.example"),
            ("fan@BÜCHER.example", "fan@xn--bcher-kva.example"),
            ("fan@münchen.de", "fan@xn--mnchen-3ya.de"),
            ("fan@例え.テスト", "fan@xn--r8jz45g.xn--zckzah"),
            ("fan@例え。テスト", "fan@xn--r8jz45g.xn--zckzah"),
            ("fan@例え．テスト", "fan@xn--r8jz45g.xn--zckzah"),
            ("fan@例え｡テスト", "fan@xn--r8jz45g.xn--zckzah"),
            ("fan@ｅｘａｍｐｌｅ.com", "fan@example.com"),
            ("fan@\u{212A}iss.example", "fan@kiss.example"),
            // RFC 3492 §7.1 samples (A, B, C, E, G, I, R) as domain labels.
            (
                "a@\u{644}\u{64A}\u{647}\u{645}\u{627}\u{628}\u{62A}\u{643}\u{644}\u{645}\u{648}\
                 \u{634}\u{639}\u{631}\u{628}\u{64A}\u{61F}.example",
                "a@xn--egbpdaj6bu4bxfgehfvwxn.example",
            ),
            ("a@他们为什么不说中文.example", "a@xn--ihqwcrb4cv8a8dqg056pqjye.example"),
            ("a@他們爲什麽不說中文.example", "a@xn--ihqwctvzc91f659drss3x8bo0yb.example"),
            (
                "a@\u{5DC}\u{5DE}\u{5D4}\u{5D4}\u{5DD}\u{5E4}\u{5E9}\u{5D5}\u{5D8}\u{5DC}\u{5D0}\
                 \u{5DE}\u{5D3}\u{5D1}\u{5E8}\u{5D9}\u{5DD}\u{5E2}\u{5D1}\u{5E8}\u{5D9}\u{5EA}.example",
                "a@xn--4dbcagdahymbxekheh6e0a7fei0b.example",
            ),
            ("a@なぜみんな日本語を話してくれないのか.example", "a@xn--n8jok5ay5dzabd5bym9f0cm5685rrjetr6pdxa.example"),
            ("a@почемужеонинеговорятпорусски.example", "a@xn--b1abfaaepdrnnbgefbadotcwatmq2g4l.example"),
            ("a@ПОЧЕМУЖЕОНИНЕГОВОРЯТПОРУССКИ.example", "a@xn--b1abfaaepdrnnbgefbadotcwatmq2g4l.example"),
            ("a@そのスピードで.example", "a@xn--d9juau41awczczp.example"),
        ];
        for (input, want) in cases {
            check(input, Ok(want));
        }
    }

    #[test]
    fn invalid_addresses() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_label = format!("fan@{}.com", "a".repeat(64));
        let d = format!("{}.{}.{}", "a".repeat(60), "b".repeat(60), "c".repeat(60));
        let at_254 = format!("{}@{d}.dd.com", "l".repeat(64));
        let at_255 = format!("{}@{d}.ddd.com", "l".repeat(64));
        let long_domain = format!("a@{d}.{}.eeeee.com", "d".repeat(63));
        let huge = format!("{}@example.com", "a".repeat(2000));
        let korean = "a@세계의모든사람들이한국어를이해한다면얼마나좋을까.example";
        check(&at_254, Ok(&at_254));
        let cases: &[(&str, EmailError)] = &[
            ("", Empty),
            (" \t\r\n ", Empty),
            ("fan.example.com", MissingAt),
            ("@example.com", LocalEmpty),
            ("fan@", DomainEmpty),
            ("fan..club@example.com", LocalInvalid),
            (".fan@example.com", LocalInvalid),
            ("fan.@example.com", LocalInvalid),
            (&long_local, LocalTooLong),
            ("\"fan club\"@example.com", LocalInvalid),
            ("\"fan@club\"@example.com", LocalInvalid),
            ("fan club@example.com", LocalInvalid),
            ("fan\u{7}@example.com", LocalInvalid),
            ("fan\u{0}@example.com", LocalInvalid),
            ("jöhn@example.com", LocalInvalid),
            ("fan(comment)@example.com", LocalInvalid),
            (&long_label, LabelTooLong),
            (korean, LabelTooLong),
            (&at_255, TooLong),
            (&long_domain, DomainTooLong),
            (&huge, TooLong),
            ("fan@localhost", DomainInvalid),
            ("fan@example..com", DomainInvalid),
            ("fan@.example.com", DomainInvalid),
            ("fan@example.com.", DomainInvalid),
            ("fan@band-.example", DomainInvalid),
            ("fan@-band.example", DomainInvalid),
            ("fan@-ü.example", DomainInvalid),
            ("fan@[192.0.2.1]", DomainInvalid),
            ("fan@192.0.2.1", DomainInvalid),
            ("fan@exa mple.com", DomainInvalid),
            ("fan@example\u{3000}com", DomainInvalid),
            ("fan@exa_mple.com", DomainInvalid),
            ("fan@exa\u{85}mple.com", DomainInvalid),
            ("fan@example.com\u{0}", DomainInvalid),
            ("fan@ｅｘａ＠ｍｐｌｅ.com", DomainInvalid),
            ("fan@exa\u{200B}mple.com", IdnInvalid),
            ("fan@b\u{FFFD}cher.example", IdnInvalid),
        ];
        for &(input, want) in cases {
            check(input, Err(want));
        }
    }

    #[test]
    fn index_key_and_domain() {
        let email = Email::parse("Ana.Silva+Tour@Bücher.Example").expect("valid");
        assert_eq!(email.as_str(), "Ana.Silva+Tour@xn--bcher-kva.example");
        assert_eq!(email.index_key(), "ana.silva+tour@xn--bcher-kva.example");
        assert_eq!(email.domain(), "xn--bcher-kva.example");
    }

    #[test]
    fn punycode_keeps_basic_code_points() {
        // RFC 3492 §7.1 samples L, P and S, which mix basic and non-basic code points.
        let cases = [("3年B組金八先生", "3B-ww4c5e180e575a65lsy2b"), ("MajiでKoiする5秒前", "MajiKoi5-783gue6qz075azm5e"), ("-> $1.00 <-", "-> $1.00 <--")];
        for (input, want) in cases {
            let chars: Vec<char> = input.chars().collect();
            let mut out = String::new();
            assert_eq!(punycode_encode(&chars, &mut out), Ok(()));
            assert_eq!(out, want);
        }
    }

    #[test]
    fn every_error_has_a_sentence() {
        let all = [Empty, TooLong, MissingAt, LocalEmpty, LocalTooLong, LocalInvalid, DomainEmpty, DomainTooLong, DomainInvalid, LabelTooLong, IdnInvalid];
        for e in all {
            let m = e.to_string();
            assert!(m.ends_with('.') && m.len() > 15 && m == e.message(), "{e:?}");
        }
    }

    #[test]
    fn never_panics_on_generated_input() {
        // Hostile soup, plus friendlier pools so that odd rounds often yield valid addresses
        // and the invariants in `check` get exercised on non-trivial domains.
        let soup = [
            "a",
            "Z",
            "0",
            "-",
            ".",
            "@",
            "+",
            "\"",
            " ",
            "\t",
            "\u{0}",
            "\u{7F}",
            "[",
            "]",
            "_",
            "ü",
            "Ü",
            "例",
            "。",
            "．",
            "｡",
            "ｅ",
            "＠",
            "İ",
            "ß",
            "\u{212A}",
            "\u{200B}",
            "\u{FFFD}",
            "\u{10FFFF}",
            "😀",
            "\u{3000}",
            "xn--",
            "ä",
            "\u{301}",
        ];
        let local = ["a", "Z", "0", "+", "_", "a.b"];
        let label = ["a", "Z", "0", "-", "ü", "Ü", "例", "ｅ", "İ", "ß", "\u{212A}", "😀", "\u{301}"];
        let mut state: u64 = 0x5EED_F0F5;
        let mut next = |n: usize| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as usize % n
        };
        let (mut s, mut valid) = (String::new(), 0);
        for i in 0..20_000 {
            s.clear();
            if i % 2 == 1 {
                (0..1 + next(12)).for_each(|_| s.push_str(local[next(local.len())]));
                for l in 0..2 + next(3) {
                    s.push(if l == 0 { '@' } else { '.' });
                    (0..1 + next(10)).for_each(|_| s.push_str(label[next(label.len())]));
                }
            } else {
                let len = if i % 100 == 0 { next(400) } else { next(40) };
                (0..len).for_each(|_| s.push_str(soup[next(soup.len())]));
            }
            if let Ok(email) = Email::parse(&s) {
                check(&s, Ok(email.as_str()));
                valid += 1;
            }
        }
        assert!(valid > 1000, "generator too hostile: {valid} valid");
    }
}
