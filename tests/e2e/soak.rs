//! Soak: "no loss under concurrency", measured (see SOAK.md).
//!
//! `soak_signups_no_loss` sends `SOAK_SIGNUPS` JSON signups to page `e2e`
//! from `SOAK_CLIENTS` concurrent clients, `SOAK_DUPLICATE_PERCENT` of them
//! re-sending an address already in the plan (some right behind the first
//! send, so in flight together), to a fresh instance of the same runtime.
//! That instance differs from the suite's in one setting: the per-page
//! limit is exactly `SOAK_SIGNUPS` per day, so every signup fits and the
//! next one must be refused. The per-client limit stays at its default
//! (10 per 10 minutes): each client moves to a fresh address after 10
//! signups, so every address is used up to, never past, its limit.
//! Addresses come from 198.18.0.0/15 (RFC 2544, benchmarking): the
//! documentation ranges hold 762 hosts, fewer than a full soak needs.
//!
//! `soak_burst_exact_client_limit` sends `SOAK_BURST` signups at once from
//! one client to the suite's own runtime (default limits): exactly 10 pass.
//!
//! Defaults are the short version that `make test` runs; `make soak` sets
//! the full one. Both print their numbers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cases::{body, collect, json, keys, Case};
use crate::ensure;
use crate::runtime::{self, Kind, Target};

pub const ALL: &[(&str, Case)] = &[("soak_signups_no_loss", soak_signups_no_loss), ("soak_burst_exact_client_limit", soak_burst_exact_client_limit)];

/// The default `signup_ip_limit` (functions/signup/wrangler.toml, spin.toml).
const CLIENT_LIMIT: usize = 10;
/// The soak instance's page limit window: a day, so a run is unlikely to
/// straddle two windows (checked, see `page_limit_window`).
const PAGE_WINDOW_SECS: u64 = 86_400;
const ARTIST: &str = "e2e-artist";

struct Config {
    signups: usize,
    clients: usize,
    duplicate_percent: usize,
    burst: usize,
    max_seconds: u64,
}

fn setting(name: &str, default: usize, range: std::ops::RangeInclusive<usize>) -> Result<usize, String> {
    let v = match std::env::var(name) {
        Ok(s) => s.trim().parse().map_err(|_| format!("{name}={s:?} is not a number"))?,
        Err(_) => default,
    };
    ensure!(range.contains(&v), "{name}={v} is outside {range:?}");
    Ok(v)
}

fn config() -> Result<Config, String> {
    Ok(Config {
        signups: setting("SOAK_SIGNUPS", 1_000, 1..=100_000)?,
        clients: setting("SOAK_CLIENTS", 16, 1..=256)?,
        duplicate_percent: setting("SOAK_DUPLICATE_PERCENT", 20, 0..=90)?,
        burst: setting("SOAK_BURST", 200, CLIENT_LIMIT + 1..=1_000)?,
        max_seconds: setting("SOAK_MAX_SECONDS", 300, 1..=3_600)? as u64,
    })
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Workers => "workers",
        Kind::Spin => "spin",
    }
}

/// One request's result: status (0 when the request itself failed),
/// latency, and the answer or the failure for reporting.
struct Outcome {
    status: u16,
    latency: Duration,
    detail: String,
    retry_after: Option<u32>,
}

fn send_signup(t: &Target, ip: &str, email: &str) -> Outcome {
    let start = Instant::now();
    let res = json(t, ip, &format!(r#"{{"page":"e2e","email":"{email}","consent":true}}"#));
    let latency = start.elapsed();
    match res {
        Ok(r) => Outcome {
            status: r.status().as_u16(),
            latency,
            retry_after: r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()),
            detail: body(&r),
        },
        Err(e) => Outcome { status: 0, latency, detail: e, retry_after: None },
    }
}

struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn latency(outcomes: &[Outcome]) -> Latency {
    let mut l: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    l.sort();
    let at = |q: usize| l.get((l.len() * q).div_ceil(100).saturating_sub(1)).copied().unwrap_or_default();
    Latency { p50: at(50), p99: at(99), max: l.last().copied().unwrap_or_default() }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Status counts, e.g. `{200: 990, 500: 10}`, and the first few failures.
fn summary(outcomes: &[Outcome], ok: u16) -> (BTreeMap<u16, usize>, Vec<String>) {
    let mut counts = BTreeMap::new();
    let mut samples = Vec::new();
    for o in outcomes {
        *counts.entry(o.status).or_insert(0) += 1;
        if o.status != ok && samples.len() < 3 {
            samples.push(format!("{}: {:.200}", o.status, o.detail));
        }
    }
    (counts, samples)
}

/// The n-th client address, in 198.18.0.0/15.
fn client_ip(n: usize) -> String {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 1)) + n as u32).to_string()
}

/// splitmix64: a fixed, dependency-free sequence, so a failing plan can be
/// replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n.max(1) as u64) as usize
    }
}

/// What to send, in order: indexes into the unique addresses, the second
/// field asking for the address in upper case (the same fan). Every unique
/// address is sent once; each duplicate re-sends one, half of them right
/// behind it (in flight at the same time), half anywhere later.
fn plan(signups: usize, duplicate_percent: usize) -> (usize, Vec<(usize, bool)>) {
    let duplicates = signups * duplicate_percent / 100;
    let unique = signups - duplicates;
    let mut rng = Rng(0x5EED_0F50_A4ED);
    // (position in unique-address units, duplicate?, sequence) orders them.
    let mut order: Vec<(usize, bool, usize, usize, bool)> = (0..unique).map(|u| (u, false, u, u, false)).collect();
    for d in 0..duplicates {
        let u = rng.below(unique);
        let at = if d % 2 == 0 { u + rng.below(2) } else { u + rng.below(unique - u) };
        order.push((at, true, unique + d, u, rng.below(2) == 0));
    }
    order.sort_unstable();
    (unique, order.into_iter().map(|(_, _, _, u, upper)| (u, upper)).collect())
}

fn soak_email(u: usize) -> String {
    format!("soak-fan-{u}@example.com")
}

/// Sends the plan from `clients` threads, each taking the next signup in
/// order and moving to a fresh client address after `CLIENT_LIMIT`. Stops
/// at the deadline; unsent signups are missing from the result.
fn drive(t: &Target, sends: &[(usize, bool)], clients: usize, deadline: Instant) -> (Vec<Outcome>, Duration, usize) {
    let next = AtomicUsize::new(0);
    let addresses = AtomicUsize::new(0);
    let start = Instant::now();
    let outcomes = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    let (mut ip, mut used) = (String::new(), CLIENT_LIMIT);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= sends.len() || Instant::now() > deadline {
                            return out;
                        }
                        if used == CLIENT_LIMIT {
                            (ip, used) = (client_ip(addresses.fetch_add(1, Ordering::Relaxed)), 0);
                        }
                        used += 1;
                        let (u, upper) = sends[i];
                        let email = soak_email(u);
                        out.push(send_signup(t, &ip, &if upper { email.to_ascii_uppercase() } else { email }));
                    }
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect::<Vec<_>>()
    });
    (outcomes, start.elapsed(), addresses.load(Ordering::Relaxed))
}

fn page_limit_window() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) / PAGE_WINDOW_SECS
}

fn soak_signups_no_loss(t: &Target) -> Result<(), String> {
    let cfg = config()?;
    let name = kind_name(t.kind);
    let started = Instant::now();
    let instance = Instance::start(t.kind, &format!("{}/{PAGE_WINDOW_SECS}", cfg.signups))?;
    let boot = started.elapsed();
    let s = &instance.target;
    let (unique, sends) = plan(cfg.signups, cfg.duplicate_percent);
    let window = page_limit_window();
    let (outcomes, wall, addresses) = drive(s, &sends, cfg.clients, Instant::now() + Duration::from_secs(cfg.max_seconds));
    let (counts, samples) = summary(&outcomes, 200);
    let ok = counts.get(&200).copied().unwrap_or(0);
    let lat = latency(&outcomes);

    // What was stored: one row per unique address, holding that address,
    // each with exactly one consent event.
    let k = keys();
    let expected: HashMap<String, usize> = (0..unique).map(|u| (k.blind_index(ARTIST, &soak_email(u)), u)).collect();
    let db = s.db()?;
    let mut stmt = db
        .prepare(
            "SELECT f.id, f.email_hash, f.email_enc, f.status, \
             (SELECT count(*) FROM consent_events e WHERE e.fan_id = f.id), \
             (SELECT count(*) FROM consent_events e WHERE e.fan_id = f.id AND e.kind = 'subscribe' AND e.page_id = 'e2e-page') \
             FROM fans f WHERE f.artist_id = ?1",
        )
        .map_err(|e| e.to_string())?;
    let rows: Vec<(String, String, String, String, i64, i64)> = stmt
        .query_map([ARTIST], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| format!("fans: {e}"))?;
    let total_events: i64 = db.query_row("SELECT count(*) FROM consent_events WHERE artist_id = ?1", [ARTIST], |r| r.get(0)).map_err(|e| e.to_string())?;
    let mut seen = HashSet::new();
    let (mut duplicated, mut unexpected, mut wrong_address, mut not_subscribed, mut wrong_events) = (0, 0, 0, 0, 0);
    for (id, hash, enc, status, events, subscribe_events) in &rows {
        let Some(&u) = expected.get(hash) else {
            unexpected += 1;
            continue;
        };
        if !seen.insert(hash.clone()) {
            duplicated += 1;
        }
        if k.decrypt_fan_email(enc, ARTIST, id).map(|e| e.to_ascii_lowercase()).ok() != Some(soak_email(u)) {
            wrong_address += 1;
        }
        not_subscribed += usize::from(status != "subscribed");
        wrong_events += usize::from(*events != 1 || *subscribe_events != 1);
    }
    let lost = unique - seen.len();
    drop(stmt);
    drop(db);

    // The page's budget was exactly the number of signups: the next one is
    // refused by the page limit, unless the run straddled two windows.
    let over = send_signup(s, &client_ip(addresses + 1), "soak-over@example.com");
    let same_window = page_limit_window() == window;

    println!(
        "\nsoak {name}: {n} signups ({unique} addresses, {dups} duplicates) from {c} clients over {addresses} client addresses, in {secs:.1} s \
         = {rate:.0} signups/s; latency p50 {p50}, p99 {p99}, max {max}; answers {counts:?}; stored {stored} of {unique} \
         ({lost} lost, {duplicated} duplicated, {unexpected} unexpected, {wrong_address} wrong address), consent events {total_events}; \
         signup {n1}: {over_status} (instance up in {boot:.1} s)",
        n = cfg.signups,
        dups = sends.len() - unique,
        c = cfg.clients,
        secs = wall.as_secs_f64(),
        rate = outcomes.len() as f64 / wall.as_secs_f64(),
        p50 = ms(lat.p50),
        p99 = ms(lat.p99),
        max = ms(lat.max),
        stored = rows.len(),
        n1 = cfg.signups + 1,
        over_status = over.status,
        boot = boot.as_secs_f64(),
    );

    ensure!(outcomes.len() == sends.len(), "deadline: only {} of {} signups sent in {} s (SOAK_MAX_SECONDS)", outcomes.len(), sends.len(), cfg.max_seconds);
    ensure!(
        ok == sends.len(),
        "{} of {} signups not answered 200: {counts:?}; e.g. {samples:?}; see {}",
        sends.len() - ok,
        sends.len(),
        instance.log.display()
    );
    ensure!(lost == 0 && duplicated == 0 && unexpected == 0, "{lost} lost, {duplicated} duplicated, {unexpected} unexpected fans");
    ensure!(wrong_address == 0, "{wrong_address} fans hold another address than their blind index says");
    ensure!(not_subscribed == 0, "{not_subscribed} fans not subscribed");
    ensure!(
        wrong_events == 0 && total_events == unique as i64,
        "{wrong_events} fans without exactly one consent event; {total_events} events for {unique} fans"
    );
    if same_window {
        ensure!(
            over.status == 429 && over.detail.contains("too many sign-ups right now"),
            "signup {} past the page limit of {}: {} {:.200}",
            cfg.signups + 1,
            cfg.signups,
            over.status,
            over.detail
        );
    } else {
        println!("soak {name}: the run straddled two page-limit windows; past-the-limit check skipped");
    }
    let state = instance.target.state.clone();
    drop(instance); // stops the runtime, so its files are complete
    no_clear_text(&state)
}

/// Neither the client addresses nor the email addresses appear in clear
/// in anything the soak instance stored.
fn no_clear_text(dir: &Path) -> Result<(), String> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    ensure!(!files.is_empty(), "nothing stored under {}", dir.display());
    for f in &files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b.to_ascii_lowercase(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", f.display())),
        };
        for needle in ["@example.com", "soak-fan-", "198.18.", "198.19."] {
            ensure!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{} contains {needle:?}", f.display());
        }
    }
    Ok(())
}

/// `SOAK_BURST` signups at once from one client against the suite's
/// runtime, default limits: exactly `CLIENT_LIMIT` pass, exactly those are
/// stored, the rest are told when to retry.
fn soak_burst_exact_client_limit(t: &Target) -> Result<(), String> {
    let n = config()?.burst;
    let ip = "198.51.100.200";
    let emails: Vec<String> = (0..n).map(|i| format!("soak-burst-{i}@example.com")).collect();
    let barrier = Barrier::new(n);
    let start = Instant::now();
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = emails
            .iter()
            .map(|email| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    send_signup(t, ip, email)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Outcome { status: 0, latency: Duration::ZERO, detail: "thread panicked".into(), retry_after: None }))
            .collect()
    });
    let wall = start.elapsed();
    let (counts, samples) = summary(&outcomes, 429);
    let lat = latency(&outcomes);
    let accepted: HashSet<String> = emails.iter().zip(&outcomes).filter(|(_, o)| o.status == 200).map(|(e, _)| keys().blind_index(ARTIST, e)).collect();
    let burst_hashes: HashSet<String> = emails.iter().map(|e| keys().blind_index(ARTIST, e)).collect();
    let db = t.db()?;
    let mut stmt = db.prepare("SELECT email_hash FROM fans WHERE artist_id = ?1").map_err(|e| e.to_string())?;
    let stored: HashSet<String> = stmt
        .query_map([ARTIST], |r| r.get(0))
        .and_then(|rows| rows.collect::<Result<HashSet<String>, _>>())
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|h| burst_hashes.contains(h))
        .collect();
    let limited = counts.get(&429).copied().unwrap_or(0);
    println!(
        "\nsoak {}: burst of {n} from one client in {:.2} s: answers {counts:?}; latency p50 {}, p99 {}; stored {} (limit {CLIENT_LIMIT})",
        kind_name(t.kind),
        wall.as_secs_f64(),
        ms(lat.p50),
        ms(lat.p99),
        stored.len()
    );
    ensure!(
        accepted.len() == CLIENT_LIMIT && limited == n - CLIENT_LIMIT,
        "{} accepted, {limited} limited of {n}: {counts:?}; e.g. {samples:?}",
        accepted.len()
    );
    let bad_retry = outcomes.iter().filter(|o| o.status == 429 && !o.retry_after.is_some_and(|s| (1..=600).contains(&s))).count();
    ensure!(bad_retry == 0, "{bad_retry} answers 429 without a Retry-After of 1..=600 s");
    ensure!(stored == accepted, "stored {} fans of the burst, not the {} accepted ones", stored.len(), accepted.len());
    Ok(())
}

// --- A second instance of a runtime, for the soak --------------------------

/// An extra runtime of the same kind with the soak's page limit, stopped
/// when dropped.
struct Instance {
    _server: runtime::Server,
    target: std::sync::Arc<Target>,
    log: PathBuf,
}

impl Instance {
    fn start(kind: Kind, page_limit: &str) -> Result<Instance, String> {
        let dir = match kind {
            Kind::Workers => "soak-workers",
            Kind::Spin => "soak-spin",
        };
        let setup = runtime::Setup { dir, overrides: vec![("signup_page_limit", page_limit.to_owned())] };
        let (server, target) = match kind {
            Kind::Workers => runtime::start_workers_in(&setup)?,
            Kind::Spin => runtime::start_spin_in(&setup)?,
        };
        let log = runtime::root().join("target/e2e").join(dir).join(if kind == Kind::Workers { "wrangler.log" } else { "spin-host.log" });
        Ok(Instance { _server: server, target, log })
    }
}
