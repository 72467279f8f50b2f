//! Bad input: a corpus of malformed and hostile requests against every
//! route, built from tables of generators, run on each runtime.
//!
//! Every answer must be below 500 (a wasm trap shows as a 500), and a 4xx
//! must carry a readable message: `{"error":{"message":…}}` on the JSON
//! routes, a page with text elsewhere, and nothing that looks internal
//! (stack traces, SQL, file paths). Redirects and 204s are fine where a
//! route gives them. Around each family the database must be unchanged:
//! the corpus is built so that no request can pass validation (no signup
//! carries a valid address together with consent and no honeypot, no
//! links API body could create or replace a link, no dashboard POST with a
//! valid CSRF token can change anything), so even the rate-limit and
//! sign-in tables must stay as they were.
//!
//! Clients are 198.51.100.200–254 and addresses are under @example.com,
//! which the final scan looks for.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use shared::token::{Purpose, TokenKeys};

use crate::cases::{keys, Case, Res};
use crate::ensure;
use crate::runtime::{Kind, Target, TOKEN_KEY_NEW, TOKEN_KEY_OLD};

pub const ALL: &[(&str, Case)] = &[
    ("bad_input_signup", signup),
    ("bad_input_unsubscribe", unsubscribe),
    ("bad_input_links", links),
    ("bad_input_api", api),
    ("bad_input_dashboard", dashboard),
];

/// Requests whose answer breaks a rule today: bugs in the code, not in
/// this corpus. Each is `(family, label, runtime or None for both, what is
/// wrong)`; such a request is reported but doesn't fail its case, and is
/// built so that even the wrong answer changes nothing. Remove an entry
/// once the code is fixed (a passing entry is reported too).
const KNOWN: &[(&str, &str, Option<Kind>, &str)] = &[
    // Accepted, not a bug: on Workers an empty `Origin:` header never
    // reaches the function, so it reads as absent, like a client that sends
    // none; the CSRF token is still required (Spin refuses it: 403).
    ("dashboard", "ask link origin empty", Some(Kind::Workers), "empty Origin reads as absent on Workers"),
    ("dashboard", "verify origin empty", Some(Kind::Workers), "empty Origin reads as absent on Workers"),
    ("dashboard", "signed in csrf origin empty", Some(Kind::Workers), "empty Origin reads as absent on Workers"),
];

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";
/// The fixture tokens (tests/e2e/fixtures.sql) of the e2e artist and the
/// second artist.
const TOKEN_ONE: &str = "sd_e2e_links_token_artist_one_3f9a";
const TOKEN_TWO: &str = "sd_e2e_links_token_artist_two_7c1d";
/// A fan id no fan has.
const NO_FAN: &str = "0bad0000000000000000000000000000";
/// The dashboard family's own artist and owner.
const ARTIST: &str = "e2e-bad-input-artist";
const OWNER_ID: &str = "e2e-bad-input-owner";
const OWNER_EMAIL: &str = "bad-input-owner@example.com";

/// Methods no route takes (OPTIONS is added where a route doesn't take it).
const WRONG_METHODS: &[&str] = &["PATCH", "DELETE", "PUT", "TRACE", "FOO", "get", "PROPFIND", "M-SEARCH"];

/// Tables the corpus must leave alone, each as an expression that changes
/// when a row is added, removed or (where it matters) changed. Not
/// included: `link_stats` (views and clicks of a real link by a browser
/// user agent are counted, by design, and Workers writes them after the
/// response) and `api_token_use` (a valid API token's use is recorded
/// even when the request is then refused).
const TABLES: &[(&str, &str)] = &[
    ("fans", "SELECT count(*) || '/' || total(updated_at) || '/' || total(status = 'subscribed') FROM fans"),
    ("consent_events", "SELECT count(*) FROM consent_events"),
    ("links", "SELECT count(*) || '/' || total(updated_at) FROM links"),
    ("api_tokens", "SELECT count(*) || '/' || count(revoked_at) FROM api_tokens"),
    ("users", "SELECT count(*) || '/' || count(totp_enc) || '/' || count(totp_pending_enc) FROM users"),
    ("sessions", "SELECT count(*) FROM sessions"),
    ("sign_in_links", "SELECT count(*) || '/' || count(used_at) FROM sign_in_links"),
    ("mail_log", "SELECT count(*) FROM mail_log"),
    ("rate_windows", "SELECT count(*) || '/' || total(count) FROM rate_windows"),
    ("artists", "SELECT count(*) FROM artists"),
    ("capture_pages", "SELECT count(*) FROM capture_pages"),
    ("recovery_codes", "SELECT count(*) FROM recovery_codes"),
    ("artist_settings", "SELECT count(*) FROM artist_settings"),
];

/// What an answer's message must not contain (compared lower-cased).
const INTERNAL: &[&str] = &[
    "panicked",
    "backtrace",
    ".rs:",
    "/work/",
    "/root/",
    "/home/",
    "sqlite",
    "select ",
    "insert into",
    "wasm",
    "unreachable",
    "runtimeerror",
    "node_modules",
    "stack trace",
    "traceback",
    "exception",
    "d1_",
    "workerd",
    "miniflare",
];

// ---------------------------------------------------------------------------
// Requests and the runner

type Headers = Vec<(String, String)>;

#[derive(Clone)]
struct Req {
    /// Unique within its family; KNOWN names requests by it.
    what: String,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The exact status expected, where the rules say one.
    want: Option<u16>,
    /// A client address header value of its own (else the family's).
    client: Option<String>,
}

fn req(what: impl Into<String>, method: &str, path: impl Into<String>) -> Req {
    Req { what: what.into(), method: method.to_owned(), path: path.into(), headers: Vec::new(), body: Vec::new(), want: None, client: None }
}

impl Req {
    fn h(mut self, name: &str, value: impl Into<String>) -> Req {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
    fn hs(mut self, headers: &[(String, String)]) -> Req {
        self.headers.extend_from_slice(headers);
        self
    }
    fn ct(self, value: &str) -> Req {
        self.h("content-type", value)
    }
    fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self
    }
    fn want(mut self, status: u16) -> Req {
        self.want = Some(status);
        self
    }
    fn client(mut self, value: &str) -> Req {
        self.client = Some(value.to_owned());
        self
    }
}

fn clip(s: &str, max: usize) -> String {
    let s = s.replace('\r', "\\r").replace('\n', "\\n");
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…(+{} bytes)", &s[..at], s.len() - at),
        None => s,
    }
}

fn describe_req(r: &Req) -> String {
    let headers: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}: {}", clip(v, 120))).collect();
    format!(
        "[{}] {} {}\n    headers: {}\n    body ({} bytes): {}",
        r.what,
        r.method,
        clip(&r.path, 200),
        if headers.is_empty() { "-".to_owned() } else { headers.join(" | ") },
        r.body.len(),
        clip(&String::from_utf8_lossy(&r.body), 200)
    )
}

fn content_type(res: &Res) -> String {
    res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase()
}

fn describe_res(res: &Res) -> String {
    format!("{} ({}) {}", res.status().as_u16(), content_type(res), clip(&String::from_utf8_lossy(res.body()), 400))
}

/// The text a person sees on a page: tags, styles and scripts dropped.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        out.push(' ');
        let tail = &rest[at..];
        let lower = tail.get(..8).unwrap_or(tail).to_ascii_lowercase();
        let end_tag = if lower.starts_with("<style") {
            "</style>"
        } else if lower.starts_with("<script") {
            "</script>"
        } else {
            ">"
        };
        rest = match tail.find(end_tag) {
            Some(i) => &tail[i + end_tag.len()..],
            None => "",
        };
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a path names one of the JSON routes (as written, before any
/// normalisation by the runtime).
fn json_route(path: &str) -> bool {
    let p = path.split('?').next().unwrap_or("").to_ascii_lowercase();
    (p == "/api/v1/signup" || p.starts_with("/api/v1/app/")) && !p.contains("..") && !p.contains("%2e")
}

/// What an answer was, beyond passing.
#[derive(PartialEq)]
enum Note {
    Plain,
    /// An HTML route answered with a JSON error (the adapters' own 413
    /// and 400 are JSON everywhere).
    JsonOnHtmlRoute,
    /// workerd itself refused a method it doesn't know (501), before any
    /// Worker ran: not the functions' doing.
    RuntimeRefusedMethod,
}

fn check(kind: Kind, r: &Req, res: &Res) -> Result<Note, String> {
    let status = res.status().as_u16();
    if kind == Kind::Workers && status == 501 && res.body().starts_with(b"ERROR: Unrecognized request method.") {
        return Ok(Note::RuntimeRefusedMethod);
    }
    ensure!(status < 500, "status {status}: a server fault or a wasm trap");
    if let Some(w) = r.want {
        ensure!(status == w, "status {status}, expected {w}");
    }
    if !(400..500).contains(&status) || r.method == "HEAD" {
        return Ok(Note::Plain);
    }
    let ct = content_type(res);
    let text = String::from_utf8_lossy(res.body()).into_owned();
    let json = ct.starts_with("application/json");
    ensure!(json || !json_route(&r.path), "a {status} on a JSON route answered {ct:?}, not JSON");
    let message = if json {
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("a {status} with JSON that doesn't parse ({e})"))?;
        v["error"]["message"].as_str().map(str::to_owned).ok_or_else(|| format!("a {status} without error.message"))?
    } else if ct.starts_with("text/html") {
        visible_text(&text)
    } else {
        text.trim().to_owned()
    };
    ensure!(message.split_whitespace().count() >= 2 || (!json && message.len() >= 5), "a {status} without a readable message");
    let lower = message.to_ascii_lowercase();
    if let Some(n) = INTERNAL.iter().find(|n| lower.contains(**n)) {
        return Err(format!("a {status} whose message looks internal ({n:?}): {}", clip(&message, 300)));
    }
    Ok(if json && !r.path.starts_with("/api/") { Note::JsonOnHtmlRoute } else { Note::Plain })
}

fn snapshot(t: &Target) -> Result<Vec<String>, String> {
    let db = t.db()?;
    TABLES
        .iter()
        .map(|(_, sql)| db.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0)).map(|v| format!("{v:?}")).map_err(|e| format!("{sql}: {e}")))
        .collect()
}

/// Sends every request of a family, checks every answer and that the
/// database is as it was; reports all failures at once.
fn run(t: &Target, family: &str, ips: &[&str], reqs: &[Req]) -> Result<(), String> {
    let start = Instant::now();
    let before = snapshot(t)?;
    let mut seen = HashSet::new();
    let mut failures = Vec::new();
    let (mut known_failed, mut json_on_html, mut refused) = (0, Vec::new(), 0);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for (i, r) in reqs.iter().enumerate() {
        ensure!(seen.insert(r.what.as_str()), "{family}: two requests labelled {:?}", r.what);
        let ip = r.client.as_deref().unwrap_or(ips[i % ips.len()]);
        let mut headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        headers.push((t.ip_header(), ip));
        let outcome = match t.send(&r.method, &r.path, &headers, &r.body) {
            Ok(res) => {
                let status = res.status().as_u16();
                *statuses.entry(status).or_default() += 1;
                check(t.kind, r, &res).map_err(|e| format!("{e}\n    answer: {}", describe_res(&res))).map(|n| (n, status))
            }
            Err(e) => Err(format!("no answer: {e}")),
        };
        let known = KNOWN.iter().find(|(f, w, k, _)| *f == family && *w == r.what && k.is_none_or(|k| k == t.kind));
        match (outcome, known) {
            (Ok((note, status)), None) => match note {
                Note::JsonOnHtmlRoute => json_on_html.push(format!("{status} {}", r.what)),
                Note::RuntimeRefusedMethod => refused += 1,
                Note::Plain => {}
            },
            (Ok(_), Some(_)) => eprintln!("[{:?}] {family}: KNOWN entry {:?} passes now: remove it from KNOWN", t.kind, r.what),
            (Err(e), Some((_, _, _, why))) => {
                known_failed += 1;
                eprintln!("[{:?}] {family}: KNOWN failure ({why}): {}\n    {e}", t.kind, describe_req(r));
            }
            (Err(e), None) => failures.push(format!("{}\n    {e}", describe_req(r))),
        }
    }
    // Deferred work (mail, counters) runs after the answers; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    let after = snapshot(t)?;
    eprintln!("[{:?}] {family}: {} requests in {:.1?}, {} failed, {known_failed} known failures", t.kind, reqs.len(), start.elapsed(), failures.len());
    let histogram: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
    eprintln!("[{:?}] {family}: answers {}", t.kind, histogram.join(" "));
    if refused > 0 {
        eprintln!("[{:?}] {family}: {refused} requests with methods workerd doesn't know got its own 501 before any Worker ran", t.kind);
    }
    if !json_on_html.is_empty() {
        eprintln!("[{:?}] {family}: {} HTML-route answers were JSON errors: {}", t.kind, json_on_html.len(), json_on_html.join("; "));
    }
    for ((name, _), (b, a)) in TABLES.iter().zip(before.iter().zip(&after)) {
        if b != a {
            failures.push(format!("table {name} changed: {b} -> {a}"));
        }
    }
    ensure!(failures.is_empty(), "{family}: {} of {} requests failed:\n{}", failures.len(), reqs.len(), failures.join("\n"));
    Ok(())
}

// ---------------------------------------------------------------------------
// Shared generators

/// Path tricks under `prefix` around a good name.
fn path_tricks(prefix: &str, good: &str) -> Vec<(&'static str, String)> {
    let upper = good.to_ascii_uppercase();
    vec![
        ("bare prefix", prefix.to_owned()),
        ("no trailing slash", prefix.trim_end_matches('/').to_owned()),
        ("double slash", format!("{prefix}/{good}")),
        ("trailing slash", format!("{prefix}{good}/")),
        ("trailing double slash", format!("{prefix}{good}//")),
        ("dot", format!("{prefix}.")),
        ("dot dot", format!("{prefix}..")),
        ("dot dot then name", format!("{prefix}../{good}")),
        ("dot dot after name", format!("{prefix}{good}/..")),
        ("climb out", format!("{prefix}../../../../etc/passwd")),
        ("encoded dot dot", format!("{prefix}%2e%2e/{good}")),
        ("encoded climb", format!("{prefix}%2E%2E%2F%2E%2E%2Fapp%2Ffans")),
        ("encoded slash", format!("{prefix}{good}%2fconfirm")),
        ("encoded backslash", format!("{prefix}..%5c..%5c{good}")),
        ("nul after", format!("{prefix}{good}%00")),
        ("nul inside", format!("{prefix}{}%00{}", &good[..1], &good[1..])),
        ("nul only", format!("{prefix}%00")),
        ("raw unicode", format!("{prefix}ünïcødé-{good}")),
        ("encoded unicode", format!("{prefix}%C3%BCn%C3%AF")),
        ("overlong utf-8", format!("{prefix}%C0%AE%C0%AE")),
        ("invalid utf-8", format!("{prefix}%ff%fe")),
        ("broken escape", format!("{prefix}%zz")),
        ("lone percent", format!("{prefix}{good}%")),
        ("upper case", format!("{prefix}{upper}")),
        ("semicolon params", format!("{prefix}{good};jsessionid=1")),
        ("encoded space", format!("{prefix}{good}%20")),
        ("plus", format!("{prefix}{good}+")),
        ("sql", format!("{prefix}'%20OR%201=1--")),
        ("markup", format!("{prefix}%3Cscript%3Ealert(1)%3C%2Fscript%3E")),
        ("crlf", format!("{prefix}{good}%0d%0aSet-Cookie:%20x=1")),
        ("deeper", format!("{prefix}{good}/x/y/z")),
        ("very long name", format!("{prefix}{}", "a".repeat(4000))),
        ("very long tail", format!("{prefix}{good}/{}", "b/".repeat(1500))),
        ("many slashes", format!("{prefix}{}{good}", "/".repeat(500))),
    ]
}

/// Query strings: repeated keys, broken escapes, garbage. `key` is the
/// route's own parameter.
fn query_tricks(key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("empty query", "?".to_owned()),
        ("only ampersands", "?&&&".to_owned()),
        ("only equals", "?=&==&=x".to_owned()),
        ("repeated key", format!("?{key}=a&{key}=b&{key}=c")),
        ("repeated empty key", format!("?{key}=&{key}=&{key}=")),
        ("broken escape", format!("?{key}=%zz")),
        ("lone percent", format!("?{key}=%")),
        ("invalid utf-8", format!("?{key}=%ff%fe")),
        ("nul", format!("?{key}=%00")),
        ("raw unicode", format!("?{key}=ünï")),
        ("plus and space", format!("?{key}=a+b%20c")),
        ("long value", format!("?{key}={}", "q".repeat(3000))),
        ("many keys", format!("?{}", (0..300).map(|i| format!("k{i}={i}")).collect::<Vec<_>>().join("&"))),
        ("key without value", format!("?{key}")),
        ("encoded key", format!("?%{:02X}{}=x", key.as_bytes()[0], &key[1..])),
    ]
}

/// Hostile `Cookie` headers, each a list of headers (some send several).
fn cookie_tricks() -> Vec<(&'static str, Vec<(String, String)>)> {
    let c = |v: String| vec![("cookie".to_owned(), v)];
    vec![
        ("cookie empty", c(String::new())),
        ("cookie malformed", c("=;=;;;; ;=x;a".to_owned())),
        ("cookie name only", c("__Host-sd_session".to_owned())),
        ("cookie session empty", c("__Host-sd_session=".to_owned())),
        ("cookie session garbage", c("__Host-sd_session=garbage".to_owned())),
        ("cookie session 128", c(format!("__Host-sd_session={}", "A".repeat(128)))),
        ("cookie session 129", c(format!("__Host-sd_session={}", "A".repeat(129)))),
        ("cookie session very long", c(format!("__Host-sd_session={}", "A".repeat(6000)))),
        ("cookie session unicode", c("__Host-sd_session=ünï;__Host-sd_signin=ü".to_owned())),
        ("cookie session sql", c("__Host-sd_session=' OR '1'='1".to_owned())),
        ("cookie session twice", c("__Host-sd_session=a; __Host-sd_session=b".to_owned())),
        ("cookie quoted", c("__Host-sd_session=\"abc\"".to_owned())),
        ("cookie huge", c(format!("big={}", "x".repeat(7000)))),
        ("cookie many", c((0..300).map(|i| format!("c{i}=v{i}")).collect::<Vec<_>>().join("; "))),
        (
            "cookie several headers",
            vec![("cookie".to_owned(), "__Host-sd_session=one".to_owned()), ("cookie".to_owned(), "__Host-sd_session=two; sd_svc=spotify".to_owned())],
        ),
        ("cookie signin garbage", c(format!("__Host-sd_signin={}", "%".repeat(100)))),
        ("cookie choice garbage", c("sd_svc=%00%ff; sd_svc=../../etc".to_owned())),
    ]
}

/// Hostile `Origin` / `Sec-Fetch-Site` pairs.
fn origin_tricks() -> Vec<(&'static str, Vec<(String, String)>)> {
    let o = |v: &str| vec![("origin".to_owned(), v.to_owned())];
    let s = |v: &str| vec![("sec-fetch-site".to_owned(), v.to_owned())];
    vec![
        ("origin null", o("null")),
        ("origin evil", o("https://evil.example")),
        ("origin empty", o("")),
        ("origin garbage", o("garbage")),
        ("origin scheme only", o("https://")),
        ("origin file", o("file://")),
        ("origin long", o(&format!("https://{}.example", "a".repeat(2000)))),
        ("origin unicode", o("https://ünï.example")),
        ("sec-fetch-site cross-site", s("cross-site")),
        ("sec-fetch-site same-site", s("same-site")),
        ("sec-fetch-site none", s("none")),
        ("sec-fetch-site upper", s("SAME-ORIGIN")),
        ("sec-fetch-site list", s("same-origin, cross-site")),
        ("sec-fetch-site garbage", s("ünï")),
    ]
}

/// JSON documents that are broken, not objects, or hostile in shape.
/// `base` is a valid object's members without braces, which must not
/// pass validation on its own route.
fn json_tricks(base: &str) -> Vec<(&'static str, Vec<u8>)> {
    let deep_arrays = format!("{}{}", "[".repeat(4000), "]".repeat(4000));
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(1300), "}".repeat(1300));
    let mut v: Vec<(&'static str, Vec<u8>)> = vec![
        ("json empty", b"".to_vec()),
        ("json whitespace", b" \n\t ".to_vec()),
        ("json null", b"null".to_vec()),
        ("json true", b"true".to_vec()),
        ("json number", b"0".to_vec()),
        ("json string", b"\"page\"".to_vec()),
        ("json array", b"[]".to_vec()),
        ("json array of object", format!("[{{{base}}}]").into_bytes()),
        ("json empty object", b"{}".to_vec()),
        ("json truncated", format!("{{{base}").into_bytes()),
        ("json truncated in string", b"{\"page\":\"e2".to_vec()),
        ("json truncated after colon", b"{\"page\":".to_vec()),
        ("json trailing garbage", format!("{{{base}}} x").into_bytes()),
        ("json two documents", format!("{{{base}}}{{{base}}}").into_bytes()),
        ("json trailing comma", format!("{{{base},}}").into_bytes()),
        ("json single quotes", b"{'page':'e2e'}".to_vec()),
        ("json comment", format!("{{/*c*/{base}}}").into_bytes()),
        ("json bom", [&b"\xEF\xBB\xBF"[..], format!("{{{base}}}").as_bytes()].concat()),
        ("json invalid utf-8", [&b"{\"page\":\"\xff\xfe\","[..], base.as_bytes(), b"}"].concat()),
        ("json overlong utf-8", [&b"{\"x\":\"\xc0\xaf\","[..], base.as_bytes(), b"}"].concat()),
        ("json lone surrogate", format!("{{\"x\":\"\\ud800\",{base}}}").into_bytes()),
        ("json bad escape", format!("{{\"x\":\"\\q\",{base}}}").into_bytes()),
        ("json raw control char", format!("{{\"x\":\"a\u{1}b\",{base}}}").into_bytes()),
        ("json nan", format!("{{\"x\":NaN,{base}}}").into_bytes()),
        ("json infinity", format!("{{\"x\":-Infinity,{base}}}").into_bytes()),
        ("json huge exponent", format!("{{\"x\":1e999999,{base}}}").into_bytes()),
        ("json huge integer", format!("{{\"x\":{},{base}}}", "9".repeat(400)).into_bytes()),
        ("json leading zeros", format!("{{\"x\":007,{base}}}").into_bytes()),
        ("json deep arrays", deep_arrays.clone().into_bytes()),
        ("json deep objects", deep_objects.into_bytes()),
        ("json deep member", format!("{{{base},\"x\":{}}}", &deep_arrays[..3000 * 2]).into_bytes()),
        ("json deep member 40", format!("{{{base},\"x\":{}{}}}", "[".repeat(40), "]".repeat(40)).into_bytes()),
        ("json duplicate member", format!("{{{base},{base}}}").into_bytes()),
        ("json nul escape key", format!("{{\"\\u0000\":1,{base}}}").into_bytes()),
        ("json many members", format!("{{{base},{}}}", (0..400).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(",")).into_bytes()),
    ];
    v.push(("json unterminated deep", "[".repeat(7000).into_bytes()));
    v
}

fn enc(s: &str) -> String {
    shared::httpx::percent_encode(s)
}

/// A body of exactly `n` bytes: `head`, filler, `tail`.
fn padded(head: &str, tail: &str, n: usize) -> Vec<u8> {
    let fill = n.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(fill)).into_bytes()
}

fn ips(from: u8, to: u8) -> Vec<String> {
    (from..=to).map(|i| format!("198.51.100.{i}")).collect()
}

fn run_family(t: &Target, family: &str, range: (u8, u8), reqs: &[Req]) -> Result<(), String> {
    let ips = ips(range.0, range.1);
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    run(t, family, &ips, reqs)
}

// ---------------------------------------------------------------------------
// Signup: /s/{page}, /s/{page}/confirm, /api/v1/signup

fn token(key: &str, purpose: Purpose, expires: u32, fan: &str, artist: &str) -> String {
    TokenKeys::parse(key).and_then(|k| k.sign(purpose, expires, fan, artist)).unwrap_or_default()
}

/// Tokens that must not work as `purpose` for a real fan of the e2e
/// artist: damaged, foreign, for another purpose, or for no fan at all.
fn token_tricks(purpose: Purpose) -> Vec<(&'static str, String)> {
    let other = if purpose == Purpose::Confirm { Purpose::Unsubscribe } else { Purpose::Confirm };
    let future = 4_000_000_000;
    let good = token(TOKEN_KEY_NEW, purpose, if purpose == Purpose::Confirm { future } else { 0 }, NO_FAN, "e2e-artist");
    let (id, body) = good.split_once('.').unwrap_or(("t2", ""));
    let mut altered = body.as_bytes().to_vec();
    let mid = altered.len() / 2;
    altered[mid] = if altered[mid] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap_or_default();
    vec![
        ("token for no fan", good.clone()),
        ("token old key no fan", token(TOKEN_KEY_OLD, purpose, if purpose == Purpose::Confirm { future } else { 0 }, NO_FAN, "e2e-artist")),
        ("token for no artist", token(TOKEN_KEY_NEW, purpose, future, NO_FAN, "no-such-artist")),
        ("token other artist", token(TOKEN_KEY_NEW, purpose, future, NO_FAN, "e2e-other-artist")),
        ("token hostile artist", token(TOKEN_KEY_NEW, purpose, future, NO_FAN, "e2e-artist' OR '1'='1")),
        ("token other purpose", token(TOKEN_KEY_NEW, other, future, NO_FAN, "e2e-artist")),
        ("token expired", token(TOKEN_KEY_NEW, purpose, 1, NO_FAN, "e2e-artist")),
        ("token truncated by one", good[..good.len() - 1].to_owned()),
        ("token truncated by half", good[..good.len() / 2].to_owned()),
        ("token key id only", format!("{id}.")),
        ("token altered", format!("{id}.{altered}")),
        ("token unknown key", format!("t9.{body}")),
        ("token no key id", format!(".{body}")),
        ("token no dot", body.to_owned()),
        ("token upper case", good.to_ascii_uppercase()),
        ("token padded", format!("{good}==")),
        ("token standard base64", format!("{id}.{}", body.replace('-', "+").replace('_', "/"))),
        ("token extra dots", format!("{id}.{body}.{body}")),
        ("token base64 garbage", "t2.!!!!@@@@####".to_owned()),
        ("token short base64", "t2.YWJj".to_owned()),
        ("token 10 KB", format!("t2.{}", "A".repeat(10 * 1024))),
        ("token nul", format!("{good}%00")),
        ("token unicode", format!("{id}.ü{body}")),
        ("token spaces", format!("%20{good}%20")),
        ("token broken escape", format!("{id}.%zz{body}")),
    ]
}

fn signup_corpus() -> Vec<Req> {
    let mut v = Vec::new();
    for (name, p) in path_tricks("/s/", "e2e") {
        v.push(req(format!("page path {name}"), "GET", p.clone()));
        v.push(req(format!("page path {name} HEAD"), "HEAD", p));
    }
    for (name, q) in query_tricks("page") {
        v.push(req(format!("page query {name}"), "GET", format!("/s/e2e{q}")));
    }
    for m in WRONG_METHODS.iter().chain(&["OPTIONS"]) {
        v.push(req(format!("page method {m}"), m, "/s/e2e").ct(FORM).body("email=x").want(405));
    }
    for m in WRONG_METHODS {
        v.push(req(format!("api method {m}"), m, "/api/v1/signup").ct(JSON).body("{}").want(405));
        v.push(req(format!("confirm method {m}"), m, "/s/e2e-doi/confirm?t=x").want(405));
    }
    for m in ["GET", "HEAD"] {
        v.push(req(format!("api method {m}"), m, "/api/v1/signup").want(405));
    }
    // The form. No body carries a valid address together with consent
    // and an empty honeypot: each fails validation or earlier.
    let forms: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("ampersands", b"&&&".to_vec()),
        ("equals", b"=&==".to_vec()),
        ("name only", b"email".to_vec()),
        ("empty email", b"email=&consent=yes".to_vec()),
        ("no consent", b"email=bad-input%40example.com".to_vec()),
        ("no email", b"consent=yes".to_vec()),
        ("consent emptied by repeat", b"email=bad-input%40example.com&consent=yes&consent=".to_vec()),
        ("email replaced by repeat", b"email=bad-input%40example.com&email=not-an-email&consent=yes".to_vec()),
        ("honeypot", b"email=bad-input%40example.com&consent=yes&website=http%3A%2F%2Fspam.example".to_vec()),
        ("honeypot repeated", b"website=&website=x&email=bad-input%40example.com&consent=yes".to_vec()),
        ("lone percent", b"email=%&consent=yes".to_vec()),
        ("short escape", b"email=%4&consent=yes".to_vec()),
        ("broken escape", b"email=%zz&consent=yes".to_vec()),
        ("broken escape in name", b"%zz=1&email=x".to_vec()),
        ("escaped invalid utf-8", b"email=%ff%fe%40example.com&consent=yes".to_vec()),
        ("escaped half utf-8", b"email=bad%C3%40example.com".to_vec()),
        ("raw invalid utf-8", b"email=\xff\xfe@example.com&consent=yes".to_vec()),
        ("raw unicode email", "email=bäd-input@example.com".as_bytes().to_vec()),
        ("nul in email", b"email=bad%00input%40example.com".to_vec()),
        ("crlf in email", b"email=bad-input%40example.com%0d%0aBcc%3A%20x%40example.com".to_vec()),
        ("double at", b"email=bad%40%40example.com&consent=yes".to_vec()),
        ("space in email", b"email=bad+input%40example.com".to_vec()),
        ("quoted local part", b"email=%22bad%22%40example.com".to_vec()),
        ("markup email", b"email=%3Cscript%3E%40example.com&consent=yes".to_vec()),
        ("formula email", b"email=%3D1%2B2%40example.com".to_vec()),
        ("long email", format!("email={}%40example.com", "a".repeat(7000)).into_bytes()),
        ("array names", b"email[]=bad-input%40example.com&consent[]=yes".to_vec()),
        ("json as form", br#"{"email":"bad-input@example.com","consent":"yes"}"#.to_vec()),
        ("truncated", b"email=bad-input%40exa".to_vec()),
        ("truncated escape", b"email=bad-input%4".to_vec()),
        ("many fields", (0..500).map(|i| format!("f{i}={i}")).collect::<Vec<_>>().join("&").into_bytes()),
        ("exactly 8 KB", padded("email=bad-input%40example.com&pad=", "", 8192)),
    ];
    for (name, body) in forms {
        let r = req(format!("form {name}"), "POST", "/s/e2e").ct(FORM).body(body);
        v.push(if name == "exactly 8 KB" { r.want(422) } else { r });
    }
    v.push(req("form over 8 KB by one", "POST", "/s/e2e").ct(FORM).body(padded("email=x&pad=", "", 8193)).want(413));
    v.push(req("form 64 KB", "POST", "/s/e2e").ct(FORM).body(padded("email=x&pad=", "", 64 * 1024)).want(413));
    v.push(req("form unknown page", "POST", "/s/no-such-page").ct(FORM).body("email=bad-input%40example.com&consent=yes").want(404));
    v.push(req("form upper-case page", "POST", "/s/E2E").ct(FORM).body("email=bad-input%40example.com&consent=yes").want(404));
    v.push(req("form page with nul", "POST", "/s/e2e%00").ct(FORM).body("email=bad-input%40example.com&consent=yes").want(404));
    let content_types = [
        ("no content type", None),
        ("empty content type", Some("")),
        ("text/plain", Some("text/plain")),
        ("json content type", Some(JSON)),
        ("multipart", Some("multipart/form-data; boundary=x")),
        ("form utf-16", Some("application/x-www-form-urlencoded; charset=utf-16")),
        ("form suffix", Some("application/x-www-form-urlencodedx")),
        ("form upper case", Some("APPLICATION/X-WWW-FORM-URLENCODED")),
        ("content type list", Some("application/x-www-form-urlencoded, text/plain")),
        ("content type semicolons", Some(";;;")),
        ("content type unicode", Some("application/x-www-förm-urlencoded")),
        ("content type long", Some("x/")),
    ];
    for (name, ct) in content_types {
        let mut r = req(format!("form {name}"), "POST", "/s/e2e").body("email=bad-input%40example.com");
        match (name, ct) {
            ("content type long", _) => r = r.ct(&format!("x/{}", "y".repeat(3000))),
            (_, Some(ct)) => r = r.ct(ct),
            (_, None) => {}
        }
        v.push(r);
    }
    for (name, hs) in origin_tricks().into_iter().chain(cookie_tricks()) {
        v.push(req(format!("form {name}"), "POST", "/s/e2e").ct(FORM).hs(&hs).body("email=bad-input%40example.com&consent=yes&website=x"));
    }
    v.push(req("form bearer token", "POST", "/s/e2e").ct(FORM).h("authorization", format!("Bearer {TOKEN_ONE}")).body("email=x"));
    for (name, client) in [
        ("client garbage", "not-an-address"),
        ("client list", "198.51.100.250, 198.51.100.251"),
        ("client out of range", "198.51.100.999"),
        ("client empty", ""),
        ("client long", "1"),
    ] {
        let client = if name == "client long" { "1".repeat(3000) } else { client.to_owned() };
        v.push(req(format!("form {name}"), "POST", "/s/e2e").ct(FORM).client(&client).body("email=bad-input%40example.com"));
    }
    // The JSON API: consent is never given together with a valid address.
    let base = r#""page":"e2e","email":"bad-input@example.com","consent":false"#;
    for (name, body) in json_tricks(base) {
        v.push(req(format!("api {name}"), "POST", "/api/v1/signup").ct(JSON).body(body));
    }
    let api_bodies: Vec<(&str, String)> = vec![
        ("page missing", r#"{"email":"bad-input@example.com","consent":false}"#.to_owned()),
        ("page null", r#"{"page":null,"email":"bad-input@example.com","consent":false}"#.to_owned()),
        ("page number", r#"{"page":5,"email":"bad-input@example.com","consent":false}"#.to_owned()),
        ("page huge number", r#"{"page":1e400,"email":"bad-input@example.com"}"#.to_owned()),
        ("page array", r#"{"page":["e2e"],"email":"bad-input@example.com"}"#.to_owned()),
        ("page object", r#"{"page":{"slug":"e2e"},"email":"bad-input@example.com"}"#.to_owned()),
        ("page empty", r#"{"page":"","email":"bad-input@example.com","consent":true}"#.to_owned()),
        ("page unknown", r#"{"page":"no-such-page","email":"bad-input@example.com","consent":true}"#.to_owned()),
        ("page upper case", r#"{"page":"E2E","email":"bad-input@example.com","consent":true}"#.to_owned()),
        ("page path", r#"{"page":"../e2e","email":"bad-input@example.com","consent":true}"#.to_owned()),
        ("page nul", r#"{"page":"e2e\u0000","email":"bad-input@example.com","consent":true}"#.to_owned()),
        ("page sql", r#"{"page":"e2e' OR '1'='1","email":"bad-input@example.com","consent":true}"#.to_owned()),
        ("page unicode", r#"{"page":"ünï","email":"bad-input@example.com","consent":true}"#.to_owned()),
        ("page long", format!(r#"{{"page":"{}","email":"bad-input@example.com","consent":true}}"#, "a".repeat(6000))),
        ("page twice", r#"{"page":"e2e","page":"e2e-doi","email":"bad-input@example.com","consent":false}"#.to_owned()),
        ("email null", r#"{"page":"e2e","email":null,"consent":false}"#.to_owned()),
        ("email number", r#"{"page":"e2e","email":12345678901234567890123,"consent":false}"#.to_owned()),
        ("email array", r#"{"page":"e2e","email":["bad-input@example.com"],"consent":false}"#.to_owned()),
        ("email object", r#"{"page":"e2e","email":{"a":1},"consent":false}"#.to_owned()),
        ("email twice", r#"{"page":"e2e","email":"x","email":"bad-input@example.com","consent":false}"#.to_owned()),
        ("email empty", r#"{"page":"e2e","email":"","consent":true}"#.to_owned()),
        ("email no at", r#"{"page":"e2e","email":"bad-input.example.com","consent":true}"#.to_owned()),
        ("email double at", r#"{"page":"e2e","email":"bad@@example.com","consent":true}"#.to_owned()),
        ("email nul", r#"{"page":"e2e","email":"bad\u0000input@example.com","consent":false}"#.to_owned()),
        ("email crlf", r#"{"page":"e2e","email":"bad-input@example.com\r\nBcc: x@example.com","consent":false}"#.to_owned()),
        ("email unicode local", r#"{"page":"e2e","email":"bäd@example.com","consent":true}"#.to_owned()),
        ("email idn domain", r#"{"page":"e2e","email":"bad-input@exämple.com","consent":false}"#.to_owned()),
        ("email quoted", r#"{"page":"e2e","email":"\"bad input\"@example.com","consent":true}"#.to_owned()),
        ("email markup", r#"{"page":"e2e","email":"<script>alert(1)</script>@example.com","consent":true}"#.to_owned()),
        ("email long", format!(r#"{{"page":"e2e","email":"{}@example.com","consent":true}}"#, "a".repeat(7000))),
        ("email long domain", format!(r#"{{"page":"e2e","email":"bad@{}.example.com","consent":true}}"#, "d".repeat(300))),
        ("email lone surrogate", r#"{"page":"e2e","email":"bad\ud800@example.com","consent":true}"#.to_owned()),
        ("consent null", r#"{"page":"e2e","email":"bad-input@example.com","consent":null}"#.to_owned()),
        ("consent string", r#"{"page":"e2e","email":"bad-input@example.com","consent":"true"}"#.to_owned()),
        ("consent number", r#"{"page":"e2e","email":"bad-input@example.com","consent":1}"#.to_owned()),
        ("consent huge number", r#"{"page":"e2e","email":"bad-input@example.com","consent":1e999999}"#.to_owned()),
        ("consent array", r#"{"page":"e2e","email":"bad-input@example.com","consent":[true]}"#.to_owned()),
        ("consent twice", r#"{"page":"e2e","email":"bad-input@example.com","consent":false,"consent":true}"#.to_owned()),
        ("consent missing", r#"{"page":"e2e","email":"bad-input@example.com"}"#.to_owned()),
        ("website filled", r#"{"page":"e2e","email":"bad-input@example.com","consent":true,"website":"x"}"#.to_owned()),
        ("website null", r#"{"page":"e2e","email":"bad-input@example.com","consent":false,"website":null}"#.to_owned()),
        ("website number", r#"{"page":"e2e","email":"bad-input@example.com","consent":true,"website":1}"#.to_owned()),
        ("unknown fields", r#"{"page":"e2e","email":"bad-input@example.com","consent":false,"admin":true,"__proto__":{"x":1}}"#.to_owned()),
    ];
    for (name, body) in api_bodies {
        v.push(req(format!("api {name}"), "POST", "/api/v1/signup").ct(JSON).body(body));
    }
    let exact = padded(r#"{"page":"e2e","email":"bad-input@example.com","consent":false,"pad":""#, r#""}"#, 8192);
    v.push(req("api exactly 8 KB", "POST", "/api/v1/signup").ct(JSON).body(exact).want(422));
    v.push(req("api over 8 KB by one", "POST", "/api/v1/signup").ct(JSON).body(padded(r#"{"pad":""#, r#""}"#, 8193)).want(413));
    v.push(req("api 64 KB", "POST", "/api/v1/signup").ct(JSON).body(padded(r#"{"pad":""#, r#""}"#, 64 * 1024)).want(413));
    for (name, ct) in [
        ("no content type", ""),
        ("text/plain", "text/plain"),
        ("form content type", FORM),
        ("json suffix", "application/jsonx"),
        ("json list", "application/json, text/plain"),
        ("json latin1", "application/json; charset=latin1"),
        ("json upper case", "APPLICATION/JSON"),
        ("json problem", "application/problem+json"),
    ] {
        let r = req(format!("api {name}"), "POST", "/api/v1/signup").body(format!("{{{base}}}"));
        v.push(if ct.is_empty() { r } else { r.ct(ct) });
    }
    for (name, hs) in origin_tricks().into_iter().chain(cookie_tricks()) {
        v.push(req(format!("api {name}"), "POST", "/api/v1/signup").ct(JSON).hs(&hs).body(format!("{{{base}}}")));
    }
    for (name, hs) in origin_tricks() {
        v.push(req(format!("api preflight {name}"), "OPTIONS", "/api/v1/signup").hs(&hs).h("access-control-request-method", "DELETE"));
    }
    v.push(req("api preflight garbage request headers", "OPTIONS", "/api/v1/signup").h("access-control-request-headers", "x".repeat(3000)));
    // Double opt-in confirmation links.
    for (name, tok) in token_tricks(Purpose::Confirm) {
        let q = format!("/s/e2e-doi/confirm?t={tok}");
        v.push(req(format!("confirm GET {name}"), "GET", q.clone()));
        v.push(req(format!("confirm POST {name}"), "POST", q).ct(FORM).body("confirm=1"));
    }
    for (name, q) in query_tricks("t") {
        v.push(req(format!("confirm query {name}"), "GET", format!("/s/e2e-doi/confirm{q}")));
        v.push(req(format!("confirm query {name} POST"), "POST", format!("/s/e2e-doi/confirm{q}")));
    }
    let good = token(TOKEN_KEY_NEW, Purpose::Confirm, 4_000_000_000, NO_FAN, "e2e-artist");
    for (name, path) in [
        ("no query", "/s/e2e-doi/confirm".to_owned()),
        ("unknown page", format!("/s/no-such-page/confirm?t={good}")),
        ("other artist's page", format!("/s/e2e-other/confirm?t={good}")),
        ("single opt-in page", format!("/s/e2e/confirm?t={good}")),
        ("extra segment", format!("/s/e2e-doi/confirm/x?t={good}")),
        ("trailing slash", format!("/s/e2e-doi/confirm/?t={good}")),
        ("upper case", format!("/s/e2e-doi/CONFIRM?t={good}")),
        ("encoded slash", format!("/s/e2e-doi%2fconfirm?t={good}")),
        ("empty page", format!("/s//confirm?t={good}")),
        ("token twice", format!("/s/e2e-doi/confirm?t=garbage&t={good}")),
    ] {
        v.push(req(format!("confirm path {name}"), "GET", path.clone()));
        v.push(req(format!("confirm path {name} HEAD"), "HEAD", path.clone()));
        v.push(req(format!("confirm path {name} POST"), "POST", path).body(b"\xff\xfe".to_vec()));
    }
    v.push(req("confirm POST 9 KB", "POST", format!("/s/e2e-doi/confirm?t={good}")).ct(FORM).body(padded("a=", "", 9 * 1024)).want(413));
    v
}

fn signup(t: &Target) -> Result<(), String> {
    run_family(t, "signup", (200, 209), &signup_corpus())
}

// ---------------------------------------------------------------------------
// Unsubscribe: /u/{token}

fn unsubscribe_corpus() -> Vec<Req> {
    let mut v = Vec::new();
    for (name, tok) in token_tricks(Purpose::Unsubscribe) {
        let p = format!("/u/{tok}");
        v.push(req(format!("GET {name}"), "GET", p.clone()));
        v.push(req(format!("HEAD {name}"), "HEAD", p.clone()));
        v.push(req(format!("POST {name}"), "POST", p).ct(FORM).body("List-Unsubscribe=One-Click"));
    }
    let good = token(TOKEN_KEY_NEW, Purpose::Unsubscribe, 0, NO_FAN, "e2e-artist");
    for (name, p) in path_tricks("/u/", &good) {
        v.push(req(format!("path {name}"), "GET", p.clone()));
        v.push(req(format!("path {name} POST"), "POST", p).ct(FORM).body("List-Unsubscribe=One-Click"));
    }
    for (name, q) in query_tricks("t") {
        v.push(req(format!("query {name}"), "POST", format!("/u/{good}{q}")).ct(FORM).body("List-Unsubscribe=One-Click"));
    }
    for m in WRONG_METHODS.iter().chain(&["OPTIONS"]) {
        v.push(req(format!("method {m}"), m, format!("/u/{good}")).want(405));
        v.push(req(format!("method {m} bad token"), m, "/u/garbage").want(400));
    }
    let bodies: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("body empty", None, Vec::new()),
        ("body json", Some(JSON), br#"{"List-Unsubscribe":"One-Click"}"#.to_vec()),
        ("body text", Some("text/plain"), b"List-Unsubscribe=One-Click".to_vec()),
        ("body invalid utf-8", Some(FORM), b"List-Unsubscribe=\xff\xfe".to_vec()),
        ("body broken escape", Some(FORM), b"List-Unsubscribe=%zz&via=%".to_vec()),
        ("body repeated", Some(FORM), b"List-Unsubscribe=One-Click&List-Unsubscribe=No&via=page&via=x".to_vec()),
        ("body nul", Some(FORM), b"List-Unsubscribe=One-Click\0\0".to_vec()),
        ("body exactly 8 KB", Some(FORM), padded("List-Unsubscribe=One-Click&pad=", "", 8192)),
        ("body multipart", Some("multipart/form-data; boundary=x"), b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--x--".to_vec()),
    ];
    for (name, ct, body) in bodies {
        let r = req(name.to_owned(), "POST", format!("/u/{good}")).body(body.clone());
        v.push(match ct {
            Some(ct) => r.ct(ct),
            None => r,
        });
        let r = req(format!("{name} bad token"), "POST", "/u/t2.garbage").body(body);
        v.push(match ct {
            Some(ct) => r.ct(ct),
            None => r,
        });
    }
    v.push(req("body over 8 KB", "POST", format!("/u/{good}")).ct(FORM).body(padded("a=", "", 8193)).want(413));
    v.push(req("body over 8 KB bad token", "POST", "/u/garbage").ct(FORM).body(padded("a=", "", 20_000)).want(413));
    for (name, hs) in origin_tricks().into_iter().chain(cookie_tricks()) {
        v.push(req(name.to_owned(), "POST", format!("/u/{good}")).ct(FORM).hs(&hs).body("List-Unsubscribe=One-Click"));
    }
    v.push(req("bearer token", "POST", format!("/u/{good}")).h("authorization", format!("Bearer {TOKEN_ONE}")).ct(FORM).body("List-Unsubscribe=One-Click"));
    v
}

fn unsubscribe(t: &Target) -> Result<(), String> {
    run_family(t, "unsubscribe", (210, 214), &unsubscribe_corpus())
}

// ---------------------------------------------------------------------------
// Smart links: /l/{slug}, /l/{slug}/{platform}

fn links_corpus() -> Vec<Req> {
    const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/128.0";
    let mut v = Vec::new();
    for (name, p) in path_tricks("/l/", "e2e-db-only") {
        v.push(req(format!("path {name}"), "GET", p.clone()).h("user-agent", BROWSER));
        v.push(req(format!("path {name} HEAD"), "HEAD", p));
    }
    for (name, platform) in [
        ("deezer", "deezer".to_owned()),
        ("absent spotify", "spotify".to_owned()),
        ("other", "other".to_owned()),
        ("upper case", "DEEZER".to_owned()),
        ("unknown", "myspace".to_owned()),
        ("empty", String::new()),
        ("trailing slash", "deezer/".to_owned()),
        ("extra segment", "deezer/extra".to_owned()),
        ("dot dot", "..".to_owned()),
        ("encoded dot dot", "%2e%2e".to_owned()),
        ("nul", "deezer%00".to_owned()),
        ("unicode", "dëezer".to_owned()),
        ("invalid utf-8", "%ff".to_owned()),
        ("broken escape", "%zz".to_owned()),
        ("long", "p".repeat(3000)),
    ] {
        let p = format!("/l/e2e-db-only/{platform}");
        v.push(req(format!("platform {name}"), "GET", p.clone()).h("user-agent", BROWSER));
        v.push(req(format!("platform {name} HEAD"), "HEAD", p.clone()));
        v.push(req(format!("platform {name} bot"), "GET", p));
    }
    for (name, q) in query_tricks("utm_source")
        .into_iter()
        .map(|(n, q)| (format!("utm {n}"), q))
        .chain(query_tricks("ref").into_iter().map(|(n, q)| (format!("ref {n}"), q)))
        .chain([
            ("choose repeated".to_owned(), "?choose&choose=1&choose=%zz".to_owned()),
            (
                "utm all long".to_owned(),
                format!("?{}", ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"].map(|k| format!("{k}={}", "u".repeat(101))).join("&")),
            ),
            ("ref javascript".to_owned(), "?ref=javascript:alert(1)".to_owned()),
            ("ref ipv6".to_owned(), "?ref=http://[::1]/".to_owned()),
            ("ref markup".to_owned(), "?ref=%22%3E%3Cscript%3E".to_owned()),
        ])
    {
        v.push(req(format!("query {name}"), "GET", format!("/l/e2e-db-only{q}")).h("user-agent", BROWSER));
        v.push(req(format!("query {name} click"), "GET", format!("/l/e2e-db-only/deezer{q}")).h("user-agent", BROWSER));
    }
    for m in WRONG_METHODS.iter().chain(&["OPTIONS", "POST"]) {
        v.push(req(format!("method {m}"), m, "/l/e2e-db-only").ct(FORM).body("x=1").want(405));
        v.push(req(format!("method {m} click"), m, "/l/e2e-db-only/deezer").want(405));
    }
    v.push(req("POST 9 KB", "POST", "/l/e2e-db-only").ct(FORM).body(padded("a=", "", 9 * 1024)));
    let headers: Vec<(&str, Vec<(String, String)>)> = cookie_tricks()
        .into_iter()
        .chain(
            [
                ("ua empty", "user-agent", String::new()),
                ("ua long", "user-agent", format!("Mozilla/5.0 {}", "x".repeat(6000))),
                ("ua unicode", "user-agent", "Mozilla/5.0 (iPhone; ünï) Sàfari".to_owned()),
                ("ua cubot", "user-agent", "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) bot".to_owned()),
                ("referer garbage", "referer", "garbage".to_owned()),
                ("referer scheme only", "referer", "https://".to_owned()),
                ("referer ipv6", "referer", "https://[::1]:99999/x".to_owned()),
                ("referer broken ipv6", "referer", "https://[::1/x".to_owned()),
                ("referer long host", "referer", format!("https://{}.example/", "h".repeat(3000))),
                ("referer unicode", "referer", "https://ünï.example/päth".to_owned()),
                ("referer javascript", "referer", "javascript:alert(1)".to_owned()),
                ("referer userinfo", "referer", "https://user:pass@evil.example:8080/".to_owned()),
                ("country garbage", "cf-ipcountry", "XYZ".to_owned()),
                ("country unicode", "cf-ipcountry", "ÜÜ".to_owned()),
                ("country tor", "cf-ipcountry", "T1".to_owned()),
                ("accept-language garbage", "accept-language", "*;q=garbage,ü".to_owned()),
            ]
            .map(|(n, h, val)| (n, vec![(h.to_owned(), val)])),
        )
        .collect();
    for (name, hs) in headers {
        let has_ua = hs.iter().any(|(k, _)| k == "user-agent");
        let with_ua = |r: Req| if has_ua { r } else { r.h("user-agent", BROWSER) };
        v.push(with_ua(req(format!("header {name}"), "GET", "/l/e2e-db-only")).hs(&hs));
        v.push(with_ua(req(format!("header {name} click"), "GET", "/l/e2e-db-only/deezer")).hs(&hs));
    }
    v
}

fn links(t: &Target) -> Result<(), String> {
    run_family(t, "links", (215, 219), &links_corpus())
}

// ---------------------------------------------------------------------------
// JSON APIs: /api/v1/app/links (Bearer tokens) and the dashboard's
// /api/v1/app/* without a session

fn api_corpus() -> Vec<Req> {
    let mut v = Vec::new();
    let bearer = |t: &str| format!("Bearer {t}");
    let auths: Vec<(&str, Option<String>)> = vec![
        ("no authorization", None),
        ("empty", Some(String::new())),
        ("scheme only", Some("Bearer".to_owned())),
        ("scheme and space", Some("Bearer ".to_owned())),
        ("basic", Some("Basic dXNlcjpwYXNz".to_owned())),
        ("other scheme", Some(format!("Token {TOKEN_ONE}"))),
        ("no scheme", Some(TOKEN_ONE.to_owned())),
        ("scheme glued", Some(format!("Bearer{TOKEN_ONE}"))),
        ("tab separator", Some(format!("Bearer\t{TOKEN_ONE}"))),
        ("truncated", Some(bearer(&TOKEN_ONE[..TOKEN_ONE.len() - 1]))),
        ("extended", Some(bearer(&format!("{TOKEN_ONE}x")))),
        ("altered", Some(bearer(&TOKEN_ONE.replace("3f9a", "3f9b")))),
        ("upper case", Some(bearer(&TOKEN_ONE.to_ascii_uppercase()))),
        ("hash instead", Some(bearer("67558ee38f9d0ae7cf07ee0c622fd92513556198e12df7cbd07e43adaf2b1fa4"))),
        ("base64 garbage", Some(bearer("!!!!////++++===="))),
        ("256 chars", Some(bearer(&"a".repeat(256)))),
        ("257 chars", Some(bearer(&"a".repeat(257)))),
        ("10 KB", Some(bearer(&"A".repeat(10 * 1024)))),
        ("unicode", Some(bearer("ünïcødé"))),
        ("two tokens", Some(format!("Bearer {TOKEN_ONE}, Bearer {TOKEN_TWO}"))),
        ("sql", Some(bearer("' OR '1'='1"))),
        ("null", Some(bearer("null"))),
    ];
    let valid_body = r#"{"slug":"e2e-db-only","title":"Taken","targets":[{"platform":"deezer","url":"https://www.deezer.com/album/1"}]}"#;
    for (name, auth) in &auths {
        for (route, method, path) in
            [("list", "GET", "/api/v1/app/links"), ("create", "POST", "/api/v1/app/links"), ("replace", "PUT", "/api/v1/app/links/e2e-db-only")]
        {
            let mut r = req(format!("links auth {name} {route}"), method, path).want(401);
            if method != "GET" {
                r = r.ct(JSON).body(valid_body);
            }
            if let Some(a) = auth {
                r = r.h("authorization", a.clone());
            }
            v.push(r);
        }
    }
    v.push(req("links auth two headers", "GET", "/api/v1/app/links").h("authorization", "Bearer garbage").h("authorization", bearer(TOKEN_ONE)).want(401));
    let one = bearer(TOKEN_ONE);
    for m in WRONG_METHODS.iter().filter(|m| **m != "PUT").chain(&["OPTIONS", "HEAD"]) {
        v.push(req(format!("links method {m}"), m, "/api/v1/app/links").h("authorization", one.clone()).want(405));
    }
    for m in WRONG_METHODS.iter().filter(|m| **m != "PUT").chain(&["OPTIONS", "POST"]) {
        v.push(req(format!("links method {m} one"), m, "/api/v1/app/links/e2e-db-only").h("authorization", one.clone()).want(405));
    }
    // Create: every body would be refused, and a valid one still names a
    // slug that is taken (409), so no link is made.
    let base = r#""slug":"e2e-db-only","title":"Taken","targets":[{"platform":"deezer","url":"https://www.deezer.com/album/1"}]"#;
    for (name, body) in json_tricks(base) {
        v.push(req(format!("links create {name}"), "POST", "/api/v1/app/links").h("authorization", one.clone()).ct(JSON).body(body));
    }
    let target = |t: &str| format!(r#"{{"slug":"e2e-db-only","title":"Taken","targets":[{t}]}}"#);
    let link_bodies: Vec<(&str, String)> = vec![
        ("taken slug", valid_body.to_owned()),
        ("slug null", r#"{"slug":null,"title":"x","targets":[]}"#.to_owned()),
        ("slug number", r#"{"slug":123,"title":"x","targets":[]}"#.to_owned()),
        ("slug upper case", r#"{"slug":"BAD-INPUT","title":"x","targets":[]}"#.to_owned()),
        ("slug path", r#"{"slug":"../e2e-db-only","title":"x","targets":[]}"#.to_owned()),
        ("slug nul", r#"{"slug":"bad-input\u0000","title":"x","targets":[]}"#.to_owned()),
        ("slug long", format!(r#"{{"slug":"{}","title":"x","targets":[]}}"#, "s".repeat(65))),
        ("slug unicode", r#"{"slug":"bäd-input","title":"x","targets":[]}"#.to_owned()),
        ("title null", r#"{"slug":"bad-input-x","title":null,"targets":[]}"#.to_owned()),
        ("title object", r#"{"slug":"bad-input-x","title":{"a":1},"targets":[]}"#.to_owned()),
        ("title long", format!(r#"{{"slug":"bad-input-x","title":"{}","targets":[]}}"#, "t".repeat(121))),
        ("title control chars", "{\"slug\":\"bad-input-x\",\"title\":\"a\\u0007\\u001b[31m\",\"targets\":[]}".to_owned()),
        ("targets null", r#"{"slug":"bad-input-x","title":"x","targets":null}"#.to_owned()),
        ("targets object", r#"{"slug":"bad-input-x","title":"x","targets":{"platform":"deezer"}}"#.to_owned()),
        ("targets empty", r#"{"slug":"bad-input-x","title":"x","targets":[]}"#.to_owned()),
        ("targets of nulls", r#"{"slug":"bad-input-x","title":"x","targets":[null,null]}"#.to_owned()),
        ("targets eleven", target(&[r#"{"platform":"other","label":"x","url":"https://shop.example/"}"#; 11].join(","))),
        ("target javascript url", target(r#"{"platform":"other","label":"x","url":"javascript:alert(1)"}"#)),
        ("target http url", target(r#"{"platform":"deezer","url":"http://www.deezer.com/album/1"}"#)),
        ("target userinfo", target(r#"{"platform":"deezer","url":"https://u:p@www.deezer.com/album/1"}"#)),
        ("target port", target(r#"{"platform":"deezer","url":"https://www.deezer.com:8443/album/1"}"#)),
        ("target ip", target(r#"{"platform":"other","label":"x","url":"https://127.0.0.1/"}"#)),
        ("target ipv6", target(r#"{"platform":"other","label":"x","url":"https://[::1]/"}"#)),
        ("target lookalike host", target(r#"{"platform":"spotify","url":"https://open.spotify.com.evil.example/x"}"#)),
        ("target unicode url", target(r#"{"platform":"deezer","url":"https://www.deezer.com/älbum"}"#)),
        ("target crlf url", target(r#"{"platform":"deezer","url":"https://www.deezer.com/a\r\nLocation: https://evil.example"}"#)),
        ("target long url", target(&format!(r#"{{"platform":"deezer","url":"https://www.deezer.com/{}"}}"#, "a".repeat(2100)))),
        ("target unknown platform", target(r#"{"platform":"myspace","url":"https://myspace.com/x"}"#)),
        ("target platform twice", target(r#"{"platform":"deezer","url":"https://www.deezer.com/1"},{"platform":"deezer","url":"https://www.deezer.com/2"}"#)),
        ("target other without label", target(r#"{"platform":"other","url":"https://shop.example/"}"#)),
        ("target label on platform", target(r#"{"platform":"deezer","label":"x","url":"https://www.deezer.com/1"}"#)),
        ("target countries bad code", target(r#"{"platform":"deezer","url":"https://www.deezer.com/1","countries":{"Sweden":"https://www.deezer.com/2"}}"#)),
        ("target countries null", target(r#"{"platform":"deezer","url":"https://www.deezer.com/1","countries":null}"#)),
        ("target countries array", target(r#"{"platform":"deezer","url":"https://www.deezer.com/1","countries":["SE"]}"#)),
        ("target hidden_in garbage", target(r#"{"platform":"deezer","url":"https://www.deezer.com/1","hidden_in":["ü",1,null,"XYZ"]}"#)),
        ("target hidden_in many", target(&format!(r#"{{"platform":"deezer","url":"https://www.deezer.com/1","hidden_in":[{}]}}"#, ["\"SE\""; 300].join(",")))),
        ("target unknown field", target(r#"{"platform":"deezer","url":"https://www.deezer.com/1","extra":1}"#)),
        ("auto_redirect string", r#"{"slug":"e2e-db-only","title":"x","auto_redirect":"yes","targets":[]}"#.to_owned()),
        ("artwork http", r#"{"slug":"e2e-db-only","title":"x","artwork_url":"http://img.example/x.jpg","targets":[]}"#.to_owned()),
        ("read-only fields", r#"{"slug":"e2e-db-only","title":"x","path":"/l/x","created_at":1e999,"updated_at":-1,"targets":[]}"#.to_owned()),
    ];
    for (name, body) in &link_bodies {
        v.push(req(format!("links create {name}"), "POST", "/api/v1/app/links").h("authorization", one.clone()).ct(JSON).body(body.clone()));
    }
    // Replace: only links that aren't the caller's (404 whatever the body).
    for (name, body) in link_bodies.iter().take(12) {
        let body = body.replace("\"e2e-db-only\"", "\"bad-input-none\"");
        v.push(req(format!("links replace missing {name}"), "PUT", "/api/v1/app/links/bad-input-none").h("authorization", one.clone()).ct(JSON).body(body));
    }
    let two = bearer(TOKEN_TWO);
    v.push(req("links replace foreign", "PUT", "/api/v1/app/links/e2e-db-only").h("authorization", two.clone()).ct(JSON).body(valid_body).want(404));
    v.push(req("links read foreign", "GET", "/api/v1/app/links/e2e-db-only").h("authorization", two).want(404));
    for (name, p) in path_tricks("/api/v1/app/links/", "bad-input-none") {
        v.push(req(format!("links path {name}"), "GET", p.clone()).h("authorization", one.clone()));
        v.push(
            req(format!("links path {name} PUT"), "PUT", p).h("authorization", one.clone()).ct(JSON).body(valid_body.replace("e2e-db-only", "bad-input-none")),
        );
    }
    v.push(req("links prefix glued", "GET", "/api/v1/app/linksX").h("authorization", one.clone()));
    for (name, q) in query_tricks("after") {
        v.push(req(format!("links list {name}"), "GET", format!("/api/v1/app/links{q}")).h("authorization", one.clone()));
    }
    for (name, ct) in [
        ("no content type", ""),
        ("text/plain", "text/plain"),
        ("form", FORM),
        ("json suffix", "application/jsonx"),
        ("json list", "application/json, text/html"),
    ] {
        let r = req(format!("links create {name}"), "POST", "/api/v1/app/links").h("authorization", one.clone()).body(valid_body);
        v.push(if ct.is_empty() { r } else { r.ct(ct) });
    }
    let exact = padded(r#"{"slug":"e2e-db-only","title":"x","targets":[],"pad":""#, r#""}"#, 8192);
    v.push(req("links create exactly 8 KB", "POST", "/api/v1/app/links").h("authorization", one.clone()).ct(JSON).body(exact).want(422));
    v.push(
        req("links create over 8 KB", "POST", "/api/v1/app/links").h("authorization", one.clone()).ct(JSON).body(padded("{\"a\":\"", "\"}", 8193)).want(413),
    );
    v.push(req("links create 64 KB no auth", "POST", "/api/v1/app/links").ct(JSON).body(padded("{\"a\":\"", "\"}", 64 * 1024)).want(413));
    for (name, hs) in origin_tricks().into_iter().chain(cookie_tricks()) {
        v.push(req(format!("links create {name}"), "POST", "/api/v1/app/links").h("authorization", one.clone()).hs(&hs).ct(JSON).body(valid_body).want(409));
    }
    // The dashboard's JSON without a session.
    for (name, hs) in cookie_tricks() {
        for path in ["/api/v1/app/fans", "/api/v1/app/me"] {
            v.push(req(format!("{path} {name}"), "GET", path).hs(&hs).want(401));
        }
    }
    for (name, path) in [
        ("fan", "/api/v1/app/fans/x".to_owned()),
        ("fan long", format!("/api/v1/app/fans/{}", "f".repeat(3000))),
        ("unknown", "/api/v1/app/unknown".to_owned()),
        ("bare", "/api/v1/app/".to_owned()),
        ("double slash", "/api/v1/app//fans".to_owned()),
        ("fans query", "/api/v1/app/fans?status=%zz&after=%ff".to_owned()),
    ] {
        v.push(req(format!("dashboard api {name}"), "GET", path.clone()).h("authorization", one.clone()));
        for m in ["POST", "PUT", "DELETE", "PATCH"] {
            v.push(req(format!("dashboard api {name} {m}"), m, path.clone()).ct(JSON).body("{}"));
        }
    }
    v
}

fn api(t: &Target) -> Result<(), String> {
    run_family(t, "api", (220, 229), &api_corpus())
}

// ---------------------------------------------------------------------------
// Dashboard: /app/*, signed out and signed in

/// A signed-in owner of the family's own artist.
struct Owner {
    cookie: String,
    csrf: String,
}

/// Adds the artist and owner (as `stagedoor-admin` would) and signs in
/// through the mailed link, in one browser.
fn sign_in(t: &Target, ip: &str) -> Result<Owner, String> {
    let k = keys();
    let stored = k.encrypt(OWNER_EMAIL.as_bytes(), format!("user.email:{ARTIST}").as_bytes()).map_err(|e| e.to_string())?;
    {
        let db = t.db_rw()?;
        db.execute("INSERT OR IGNORE INTO artists (id, name, created_at) VALUES (?1, 'Bad Input Band', 0)", [ARTIST]).map_err(|e| e.to_string())?;
        db.execute(
            "INSERT OR IGNORE INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, 'owner', 0)",
            [OWNER_ID, ARTIST, &stored, &k.blind_index("users", OWNER_EMAIL)],
        )
        .map_err(|e| e.to_string())?;
    }
    let bind = format!("bad-input-binding-{}", std::process::id());
    let bind_cookie = format!("__Host-sd_signin={bind}");
    let form = |csrf: &str, rest: &str| format!("csrf={}&{rest}", enc(csrf));
    let same = [("content-type", FORM), ("origin", t.base.as_str()), ("sec-fetch-site", "same-origin"), ("cookie", bind_cookie.as_str()), (t.ip_header(), ip)];
    let before = mails_to(t).len();
    let csrf = shared::auth::csrf_token(&k, "sign-in", &bind);
    let res = t.send("POST", "/app/sign-in", &same, form(&csrf, &format!("email={}", enc(OWNER_EMAIL))).as_bytes())?;
    ensure!(res.status() == 200, "sign-in request: {}", describe_res(&res));
    let deadline = Instant::now() + Duration::from_secs(5);
    let link = loop {
        let links = mails_to(t);
        if links.len() > before {
            break links[links.len() - 1].clone();
        }
        ensure!(Instant::now() < deadline, "no sign-in mail for {OWNER_EMAIL}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let token = link.rsplit_once("?t=").map(|(_, t)| t.to_owned()).unwrap_or_default();
    let csrf = shared::auth::csrf_token(&k, "verify", &bind);
    let res = t.send("POST", "/app/sign-in/verify", &same, form(&csrf, &format!("t={token}")).as_bytes())?;
    ensure!(res.status() == 303, "verify: {}", describe_res(&res));
    let id = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("__Host-sd_session=").map(|v| v.split(';').next().unwrap_or("").to_owned()))
        .ok_or("no session cookie")?;
    Ok(Owner { cookie: format!("__Host-sd_session={id}"), csrf: shared::auth::csrf_token(&k, "session", &id) })
}

/// The sign-in links mailed to the owner, as paths.
fn mails_to(t: &Target) -> Vec<String> {
    t.mail
        .requests()
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter(|v| v["to"][0] == OWNER_EMAIL)
        .filter_map(|v| v["text"].as_str().and_then(|t| t.split_whitespace().find(|w| w.contains("/app/sign-in/verify"))).map(str::to_owned))
        .collect()
}

fn dashboard_corpus(base: &str, owner: &Owner, foreign_fan: &str) -> Vec<Req> {
    let mut v = Vec::new();
    let same: Vec<(String, String)> = [("origin", base), ("sec-fetch-site", "same-origin")].map(|(k, val)| (k.to_owned(), val.to_owned())).to_vec();
    // Signed out.
    for (name, p) in path_tricks("/app/", "fans") {
        v.push(req(format!("signed out path {name}"), "GET", p.clone()));
        v.push(req(format!("signed out path {name} POST"), "POST", p).ct(FORM).hs(&same).body("csrf=x"));
    }
    for path in ["/app/fans", "/app/tokens"] {
        for (name, hs) in cookie_tricks() {
            v.push(req(format!("signed out {path} {name}"), "GET", path).hs(&hs));
            v.push(req(format!("signed out {path} {name} POST"), "POST", path).hs(&hs).hs(&same).ct(FORM).body("csrf=x&label=x"));
        }
    }
    for m in WRONG_METHODS.iter().chain(&["OPTIONS"]) {
        v.push(req(format!("signed out method {m}"), m, "/app/fans"));
        v.push(req(format!("sign-in method {m}"), m, "/app/sign-in").want(405));
        v.push(req(format!("verify method {m}"), m, "/app/sign-in/verify?t=x").want(405));
    }
    // Asking for a link: never with a valid address together with a
    // valid CSRF token, so no sign_in_links row is written.
    let bind = "bad-input-hostile-binding";
    let bind_cookie = vec![("cookie".to_owned(), format!("__Host-sd_signin={bind}"))];
    let k = keys();
    let csrf = enc(&shared::auth::csrf_token(&k, "sign-in", bind));
    let asks: Vec<(&str, Headers, String)> = vec![
        ("no binding cookie", Vec::new(), format!("csrf={csrf}&email={}", enc(OWNER_EMAIL))),
        ("binding too long", vec![("cookie".to_owned(), format!("__Host-sd_signin={}", "b".repeat(129)))], format!("csrf={csrf}&email=x")),
        ("no csrf", bind_cookie.clone(), format!("email={}", enc(OWNER_EMAIL))),
        ("wrong csrf", bind_cookie.clone(), format!("csrf=forged&email={}", enc(OWNER_EMAIL))),
        (
            "csrf for another binding",
            bind_cookie.clone(),
            format!("csrf={}&email={}", enc(&shared::auth::csrf_token(&k, "sign-in", "other")), enc(OWNER_EMAIL)),
        ),
        ("csrf of verify", bind_cookie.clone(), format!("csrf={}&email={}", enc(&shared::auth::csrf_token(&k, "verify", bind)), enc(OWNER_EMAIL))),
        ("csrf twice wrong first", bind_cookie.clone(), format!("csrf=forged&csrf={csrf}&email={}", enc(OWNER_EMAIL))),
        ("empty email", bind_cookie.clone(), format!("csrf={csrf}&email=")),
        ("no email", bind_cookie.clone(), format!("csrf={csrf}")),
        ("email without at", bind_cookie.clone(), format!("csrf={csrf}&email=bad-input.example.com")),
        ("email double at", bind_cookie.clone(), format!("csrf={csrf}&email=bad%40%40example.com")),
        ("email with space", bind_cookie.clone(), format!("csrf={csrf}&email=bad+input%40example.com")),
        ("email nul", bind_cookie.clone(), format!("csrf={csrf}&email=bad%00%40example.com")),
        ("email unicode", bind_cookie.clone(), format!("csrf={csrf}&email=b%C3%A4d%40example.com")),
        ("email long", bind_cookie.clone(), format!("csrf={csrf}&email={}%40example.com", "a".repeat(6000))),
        ("email markup", bind_cookie.clone(), format!("csrf={csrf}&email=%3Cscript%3E%40example.com")),
        ("email broken escape", bind_cookie.clone(), format!("csrf={csrf}&email=%zz")),
        ("invalid utf-8", bind_cookie.clone(), format!("csrf={csrf}&email=\u{fffd}")),
        ("emails repeated", bind_cookie.clone(), format!("csrf={csrf}&email=not-an-email&email={}", enc(OWNER_EMAIL))),
    ];
    for (name, cookie, body) in asks {
        let mut body = body.into_bytes();
        if name == "invalid utf-8" {
            body.extend_from_slice(b"\xff\xfe");
        }
        v.push(req(format!("ask link {name}"), "POST", "/app/sign-in").hs(&cookie).hs(&same).ct(FORM).body(body));
    }
    for (name, hs) in origin_tricks() {
        v.push(
            // An invalid address: a request that wrongly passes the origin
            // check gets 422 and writes nothing.
            req(format!("ask link {name}"), "POST", "/app/sign-in").hs(&bind_cookie).hs(&hs).ct(FORM).body(format!("csrf={csrf}&email=not-an-email")).want(403),
        );
    }
    for (name, ct) in [("no content type", ""), ("json", JSON), ("text", "text/plain"), ("multipart", "multipart/form-data; boundary=x")] {
        let r = req(format!("ask link {name}"), "POST", "/app/sign-in").hs(&bind_cookie).hs(&same).body(format!("csrf={csrf}&email={}", enc(OWNER_EMAIL)));
        v.push(if ct.is_empty() { r } else { r.ct(ct) });
    }
    v.push(req("ask link over 8 KB", "POST", "/app/sign-in").hs(&bind_cookie).hs(&same).ct(FORM).body(padded("email=x&pad=", "", 8193)).want(413));
    for (name, q) in query_tricks("ended") {
        v.push(req(format!("sign-in page {name}"), "GET", format!("/app/sign-in{q}")));
    }
    // Opening a link: damaged tokens, other browsers, forged forms.
    let verify_csrf = enc(&shared::auth::csrf_token(&k, "verify", bind));
    for (name, q) in query_tricks("t") {
        v.push(req(format!("verify page {name}"), "GET", format!("/app/sign-in/verify{q}")));
    }
    let verifies: Vec<(&str, Headers, String)> = vec![
        ("garbage token", bind_cookie.clone(), format!("csrf={verify_csrf}&t=garbage")),
        ("empty token", bind_cookie.clone(), format!("csrf={verify_csrf}&t=")),
        ("no token", bind_cookie.clone(), format!("csrf={verify_csrf}")),
        ("64-char token", bind_cookie.clone(), format!("csrf={verify_csrf}&t={}", "A".repeat(64))),
        ("65-char token", bind_cookie.clone(), format!("csrf={verify_csrf}&t={}", "A".repeat(65))),
        ("7 KB token", bind_cookie.clone(), format!("csrf={verify_csrf}&t={}", "A".repeat(7000))),
        ("nul token", bind_cookie.clone(), format!("csrf={verify_csrf}&t=%00")),
        ("sql token", bind_cookie.clone(), format!("csrf={verify_csrf}&t=%27+OR+%271%27%3D%271")),
        ("no binding cookie", Vec::new(), format!("csrf={verify_csrf}&t=garbage")),
        ("no csrf", bind_cookie.clone(), "t=garbage".to_owned()),
        ("broken escape", bind_cookie.clone(), "csrf=%zz&t=%".to_owned()),
        ("tokens repeated", bind_cookie.clone(), format!("csrf={verify_csrf}&t=a&t=b&t=")),
    ];
    for (name, cookie, body) in verifies {
        v.push(req(format!("verify {name}"), "POST", "/app/sign-in/verify").hs(&cookie).hs(&same).ct(FORM).body(body));
    }
    for (name, hs) in origin_tricks() {
        v.push(
            req(format!("verify {name}"), "POST", "/app/sign-in/verify")
                .hs(&bind_cookie)
                .hs(&hs)
                .ct(FORM)
                .body(format!("csrf={verify_csrf}&t=garbage"))
                .want(403),
        );
    }
    v.push(req("verify over 8 KB", "POST", "/app/sign-in/verify").hs(&bind_cookie).hs(&same).ct(FORM).body(padded("t=", "", 9000)).want(413));
    v.push(req("verify json", "POST", "/app/sign-in/verify").hs(&bind_cookie).hs(&same).ct(JSON).body("{\"t\":\"x\"}"));
    // Signed in: hostile queries and ids (reads only), refused forms.
    let session = vec![("cookie".to_owned(), owner.cookie.clone())];
    let filters: Vec<(&str, &str)> = vec![
        ("status unknown", "?status=deleted"),
        ("status repeated", "?status=subscribed&status=x"),
        ("country word", "?country=Sweden"),
        ("country unicode", "?country=%C3%9C%C3%9C"),
        ("country digits", "?country=12"),
        ("country nul", "?country=S%00"),
        ("from month 13", "?from=2024-13-01"),
        ("from day 0", "?from=2024-01-00"),
        ("from february 31", "?from=2024-02-31"),
        ("from five-digit year", "?from=99999-01-01"),
        ("from plus sign", "?from=%2B1990-01-01"),
        ("from negative", "?from=-001-01-01"),
        ("from before epoch", "?from=1969-12-31"),
        ("to huge", "?to=9999999999999999999-01-01"),
        ("to last day", "?to=9999-12-31"),
        ("email garbage", "?email=not-an-email"),
        ("email long", "?email=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%40example.com"),
        ("email unicode", "?email=b%C3%A4d%40example.com"),
        ("page garbage", "?page=%27+OR+1%3D1--"),
        ("after garbage", "?after=garbage"),
        ("after huge", "?after=99999999999999999999999.x"),
        ("after min", "?after=-9223372036854775808.x"),
        ("after max", "?after=9223372036854775807.%00"),
        ("after empty id", "?after=1."),
        ("after many dots", "?after=1.2.3.4"),
        ("all broken escapes", "?status=%zz&country=%&from=%ff&to=%C3&email=%00&page=%&after=%zz"),
        ("everything at once", "?status=x&country=xx1&from=x&to=y&email=z&page=p&after=a.b"),
    ];
    for (name, q) in &filters {
        for path in ["/app/fans", "/app/fans.csv", "/api/v1/app/fans"] {
            v.push(req(format!("signed in {path} {name}"), "GET", format!("{path}{q}")).hs(&session));
        }
    }
    for (name, q) in query_tricks("done") {
        v.push(req(format!("signed in team {name}"), "GET", format!("/app/team{q}")).hs(&session));
    }
    let ids: Vec<(&str, String)> = vec![
        ("foreign fan", foreign_fan.to_owned()),
        ("garbage", "garbage".to_owned()),
        ("64 chars", "f".repeat(64)),
        ("65 chars", "f".repeat(65)),
        ("4000 chars", "f".repeat(4000)),
        ("nul", "%00".to_owned()),
        ("dot dot", "..".to_owned()),
        ("encoded dot dot", "%2e%2e".to_owned()),
        ("unicode", "ünï".to_owned()),
        ("sql", "'%20OR%20'1'='1".to_owned()),
        ("percent", "%".to_owned()),
        ("invalid utf-8", "%ff".to_owned()),
    ];
    for (name, id) in &ids {
        for (what, path) in [
            ("fan", format!("/app/fans/{id}")),
            ("api fan", format!("/api/v1/app/fans/{id}")),
            ("page", format!("/app/pages/{id}")),
            ("link", format!("/app/links/{id}")),
        ] {
            v.push(req(format!("signed in {what} {name}"), "GET", path).hs(&session));
        }
        // Valid CSRF, but nothing of this artist's is named: 404s.
        let csrf = format!("csrf={}", enc(&owner.csrf));
        for (what, path) in [
            ("unsubscribe", format!("/app/fans/{id}/unsubscribe")),
            ("revoke", format!("/app/tokens/{id}/revoke")),
            ("remove", format!("/app/team/{id}/remove")),
        ] {
            v.push(req(format!("signed in {what} {name}"), "POST", path).hs(&session).hs(&same).ct(FORM).body(csrf.clone()));
        }
    }
    let csrf = enc(&owner.csrf);
    let posts: Vec<(&str, &str, String)> = vec![
        ("token label empty", "/app/tokens", format!("csrf={csrf}&label=")),
        ("token label spaces", "/app/tokens", format!("csrf={csrf}&label=+++")),
        ("token label missing", "/app/tokens", format!("csrf={csrf}")),
        ("token label 61", "/app/tokens", format!("csrf={csrf}&label={}", "l".repeat(61))),
        ("token label 61 unicode", "/app/tokens", format!("csrf={csrf}&label={}", "%C3%A9".repeat(61))),
        ("token label long", "/app/tokens", format!("csrf={csrf}&label={}", "l".repeat(7000))),
        ("invite empty", "/app/team", format!("csrf={csrf}&email=&role=owner")),
        ("invite no at", "/app/team", format!("csrf={csrf}&email=bad-input.example.com&role=owner")),
        ("invite double at", "/app/team", format!("csrf={csrf}&email=bad%40%40example.com")),
        ("invite space", "/app/team", format!("csrf={csrf}&email=bad+input%40example.com&role=admin")),
        ("invite long", "/app/team", format!("csrf={csrf}&email={}", "a".repeat(5000))),
        ("remove self", "/app/team/e2e-bad-input-owner/remove", format!("csrf={csrf}")),
        ("totp confirm garbage", "/app/account/totp/confirm", format!("csrf={csrf}&code=garbage")),
        ("totp confirm long", "/app/account/totp/confirm", format!("csrf={csrf}&code={}", "1".repeat(5000))),
        ("totp disable garbage", "/app/account/totp/disable", format!("csrf={csrf}&code=000000")),
        ("totp unknown", "/app/account/totp/unknown", format!("csrf={csrf}")),
        ("unknown path", "/app/unknown", format!("csrf={csrf}")),
        ("code page", "/app/sign-in/code", format!("csrf={csrf}&code=123456")),
        ("csrf twice valid first", "/app/tokens/garbage/revoke", format!("csrf={csrf}&csrf=forged")),
    ];
    for (name, path, body) in posts {
        v.push(req(format!("signed in post {name}"), "POST", path).hs(&session).hs(&same).ct(FORM).body(body));
    }
    // Valid token, hostile origin, on a route where passing changes
    // nothing (404): must be refused.
    for (name, hs) in origin_tricks() {
        v.push(
            req(format!("signed in csrf {name}"), "POST", "/app/tokens/garbage/revoke").hs(&session).hs(&hs).ct(FORM).body(format!("csrf={csrf}")).want(403),
        );
    }
    // Refused before any handler: these routes would change something
    // with a valid token, so they never get one.
    for path in ["/app/sign-out", "/app/sign-out-everywhere", "/app/team/require-second-factor", "/app/account/totp/start", "/app/tokens"] {
        for (name, body, hs) in [
            ("no csrf", "label=x&require=1".to_owned(), same.clone()),
            ("forged csrf", "csrf=forged&label=x&require=1".to_owned(), same.clone()),
            ("csrf twice forged first", format!("csrf=forged&csrf={csrf}&label=x&require=1"), same.clone()),
            ("other session's csrf", format!("csrf={}&label=x", enc(&shared::auth::csrf_token(&k, "session", "other"))), same.clone()),
            ("long csrf", format!("csrf={}&label=x", "c".repeat(5000)), same.clone()),
            ("cross-site", format!("csrf={csrf}&label=x&require=1"), vec![("sec-fetch-site".to_owned(), "cross-site".to_owned())]),
            ("evil origin", format!("csrf={csrf}&label=x&require=1"), vec![("origin".to_owned(), "https://evil.example".to_owned())]),
            ("null origin", format!("csrf={csrf}&label=x&require=1"), vec![("origin".to_owned(), "null".to_owned())]),
        ] {
            v.push(req(format!("signed in refused {path} {name}"), "POST", path).hs(&session).hs(&hs).ct(FORM).body(body).want(403));
        }
        for (name, ct) in [("json", JSON), ("text", "text/plain")] {
            v.push(req(format!("signed in refused {path} {name}"), "POST", path).hs(&session).hs(&same).ct(ct).body(format!("csrf={csrf}")).want(415));
        }
        v.push(req(format!("signed in refused {path} invalid utf-8"), "POST", path).hs(&session).hs(&same).ct(FORM).body(b"csrf=\xff".to_vec()).want(400));
        v.push(req(format!("signed in refused {path} over 8 KB"), "POST", path).hs(&session).hs(&same).ct(FORM).body(padded("a=", "", 8193)).want(413));
    }
    for path in ["/app/fans", "/app/team", "/app/account", "/api/v1/app/me"] {
        for m in WRONG_METHODS.iter().chain(&["OPTIONS"]) {
            v.push(req(format!("signed in method {m} {path}"), m, path).hs(&session).want(405));
        }
    }
    for (name, p) in path_tricks("/app/", "fans") {
        v.push(req(format!("signed in path {name}"), "GET", p.clone()).hs(&session));
        v.push(req(format!("signed in path {name} HEAD"), "HEAD", p).hs(&session));
    }
    for (name, hs) in cookie_tricks() {
        // The real session first, then the hostile cookies.
        let mut cookie = hs.clone();
        if let Some(first) = cookie.first_mut() {
            first.1 = format!("{}; {}", owner.cookie, first.1);
        }
        v.push(req(format!("signed in plus {name}"), "GET", "/app/fans").hs(&cookie));
    }
    v
}

fn dashboard(t: &Target) -> Result<(), String> {
    let owner = sign_in(t, "198.51.100.230")?;
    // Some other artist's fan, if the run has one yet.
    let foreign: String = t
        .db()?
        .query_row("SELECT coalesce((SELECT id FROM fans WHERE artist_id <> ?1 LIMIT 1), ?2)", [ARTIST, NO_FAN], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let reqs = dashboard_corpus(&t.base, &owner, &foreign);
    run_family(t, "dashboard", (231, 239), &reqs)?;
    // The session survived everything above.
    let res = t.send("GET", "/app/fans", &[("cookie", &owner.cookie), (t.ip_header(), "198.51.100.230")], b"")?;
    ensure!(res.status() == 200, "the owner's session didn't survive the corpus: {}", describe_res(&res));
    Ok(())
}
