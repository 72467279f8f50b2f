//! Starting and stopping the local runtimes, and talking to them.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::adapters::native::recorder::Recorder;
use shared::http;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// The suite's own keys and settings, handed to both runtimes (never the
/// developer's `.dev.vars`). Token keys are rotated: `t2` signs new links and
/// `t1` must still verify, so the suite can prove old links keep working.
pub const DATA_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const INDEX_KEY: &str = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
pub const TOKEN_KEY_OLD: &str = "t1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
pub const TOKEN_KEY_NEW: &str = "t2:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=";
pub const PUBLIC_BASE: &str = "https://fans.e2e.example";
/// The operator's secret for the jobs route (Spin: `POST /jobs/run`).
pub const JOBS_SECRET: &str = "e2e-jobs-secret-6d1c0b";
/// The email provider's webhook secrets (tests/e2e/hooks_in.rs), rotated:
/// both verify.
pub const HOOK_SECRET_NEW: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const HOOK_SECRET_OLD: &str = "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// Where a runtime keeps its files under `target/e2e/`, and settings that
/// differ from the suite's (the soak's raised page limit).
pub struct Setup {
    pub dir: &'static str,
    pub overrides: Vec<(&'static str, String)>,
}

impl Setup {
    fn suite(dir: &'static str) -> Setup {
        Setup { dir, overrides: Vec::new() }
    }
}

/// Settings every function gets, as (name, value); names are the Spin
/// spelling, upper-cased for Workers.
fn settings(mail_url: &str, overrides: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut all = base_settings(mail_url);
    for (k, v) in overrides {
        all.retain(|(name, _)| name != k);
        all.push((k, v.clone()));
    }
    all
}

/// The instance caches' time to live in the suite (README "Settings and
/// secrets", `instance_cache_seconds`; 30 s by default): edits and
/// deletions are checked to show within it, without waiting half a minute
/// each on Workers.
pub const INSTANCE_CACHE_SECONDS: u64 = 2;

fn base_settings(mail_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("instance_cache_seconds", INSTANCE_CACHE_SECONDS.to_string()),
        ("data_keys", DATA_KEYS.to_owned()),
        ("index_key", INDEX_KEY.to_owned()),
        ("token_keys", format!("{TOKEN_KEY_NEW},{TOKEN_KEY_OLD}")),
        ("public_base_url", PUBLIC_BASE.to_owned()),
        ("email_api_base", mail_url.to_owned()),
        ("email_api_key", "re_e2e_key".to_owned()),
        ("email_from", "E2E Band <news@e2e.example>".to_owned()),
        ("jobs_secret", JOBS_SECRET.to_owned()),
        // Outbound webhooks (tests/e2e/hooks_out.rs): receivers run on this
        // machine, retries come a second apart and a hung receiver times
        // out in 1.5 s, so a whole retry story fits in a test.
        ("webhook_allow_loopback_for_tests", "true".to_owned()),
        ("webhook_retry_schedule", "1 1 1 1 1 1 1 1 1".to_owned()),
        ("webhook_timeout_ms", "1500".to_owned()),
        ("email_webhook_secrets_resend", format!("{HOOK_SECRET_NEW} {HOOK_SECRET_OLD}")),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Workers,
    Spin,
}

/// A running runtime as the cases see it.
pub struct Target {
    pub kind: Kind,
    pub base: String,
    /// Directory holding every file the runtime persisted.
    pub state: PathBuf,
    pub db_path: PathBuf,
    /// The stand-in email provider this runtime sends to.
    pub mail: Recorder,
}

/// A child process group, stopped on drop.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // Kill the whole group: npx → wrangler → workerd.
        let _ = Command::new("kill").args(["-TERM", "--"]).arg(format!("-{}", self.0.id())).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--"]).arg(format!("-{}", self.0.id())).status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = root().join("target/e2e").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create state dir");
    dir
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

fn wrangler(root: &Path, registry: &Path) -> Command {
    let mut cmd = Command::new(root.join("node_modules/.bin/wrangler"));
    cmd.current_dir(root)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("XDG_CONFIG_HOME", root.join(".wrangler/config"))
        .env("WRANGLER_LOG_PATH", root.join(".wrangler/logs"))
        // A dev registry per session: every session's Workers have the same
        // names, and must not take over (or, stopping, break) the bindings
        // of another session (a second runtime, a developer's make dev).
        .env("WRANGLER_REGISTRY_PATH", registry);
    cmd
}

/// The files (not subdirectories) of `from`, into `to`.
fn copy_files(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?.flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).map_err(|err| format!("{}: {err}", e.path().display()))?;
        }
    }
    Ok(())
}

/// Copies of the real wrangler configs with absolute paths, the suite's
/// settings as vars and its secrets in a `.dev.vars` beside each (wrangler's
/// `--var` and `--env-file` reach only the first Worker of a session).
fn worker_configs(root: &Path, out: &Path, settings: &[(&str, String)]) -> Result<Vec<String>, String> {
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("functions")).map_err(|e| e.to_string())?.flatten().map(|e| e.path()).collect();
    dirs.sort();
    let mut configs = vec![(root.to_path_buf(), "router".to_owned())];
    configs.extend(dirs.into_iter().filter(|d| d.join("wrangler.toml").exists()).map(|d| {
        let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        (d, name)
    }));
    let mut args = Vec::new();
    for (dir, name) in configs {
        let text = std::fs::read_to_string(dir.join("wrangler.toml")).map_err(|e| e.to_string())?;
        let mut out_text = String::new();
        let cfg_dir = out.join(&name);
        std::fs::create_dir_all(&cfg_dir).map_err(|e| e.to_string())?;
        for line in text.lines() {
            if let Some(rel) = line.strip_prefix("main = \"").and_then(|rest| rest.split('"').next()) {
                // A copy of the built module: a rebuild or an edit in the
                // tree mid-run would make wrangler reload, and requests in
                // flight would answer 503.
                let (from, to) = (dir.join(rel), cfg_dir.join(rel));
                copy_files(from.parent().unwrap_or(&dir), to.parent().unwrap_or(&cfg_dir))?;
                out_text.push_str(&format!("main = \"{}\"", to.display()));
            } else if let Some(rest) = line.strip_prefix("migrations_dir = \"") {
                out_text.push_str(&format!("migrations_dir = \"{}/{rest}", dir.display()));
            } else {
                out_text.push_str(line);
            }
            out_text.push('\n');
        }
        if name != "router" {
            let vars: String = settings.iter().map(|(k, v)| format!("{}={v}\n", k.to_uppercase())).collect();
            std::fs::write(cfg_dir.join(".dev.vars"), vars).map_err(|e| e.to_string())?;
        }
        std::fs::write(cfg_dir.join("wrangler.toml"), out_text).map_err(|e| e.to_string())?;
        args.push("-c".to_owned());
        args.push(cfg_dir.join("wrangler.toml").display().to_string());
    }
    Ok(args)
}

pub fn start_workers() -> crate::Started {
    start_workers_in(&Setup::suite("workers"))
}

pub fn start_workers_in(setup: &Setup) -> crate::Started {
    let root = root();
    let state = fresh_dir(setup.dir);
    let mail = Recorder::start().map_err(|e| format!("mail recorder: {e}"))?;
    let configs = worker_configs(&root, &state.join("config"), &settings(&mail.url, &setup.overrides))?;
    let persist = state.join("state");
    let registry = state.join("registry");
    run(wrangler(&root, &registry).args(["d1", "migrations", "apply", "DB", "--local", "-c", "wrangler.toml", "--persist-to"]).arg(&persist))?;
    run(wrangler(&root, &registry)
        .args(["d1", "execute", "DB", "--local", "-c", "wrangler.toml", "--file", "tests/e2e/fixtures.sql", "--persist-to"])
        .arg(&persist))?;
    let port = free_port();
    let log = std::fs::File::create(state.join("wrangler.log")).map_err(|e| e.to_string())?;
    let child = wrangler(&root, &registry)
        .arg("dev")
        .args(&configs)
        .args(["--ip", "127.0.0.1", "--port", &port.to_string(), "--show-interactive-dev-session=false", "--log-level", "warn"])
        .arg("--persist-to")
        .arg(&persist)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("wrangler dev: {e}"))?;
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base, Duration::from_secs(120)).map_err(|e| format!("{e}; see {}", state.join("wrangler.log").display()))?;
    let d1 = persist.join("v3/d1/miniflare-D1DatabaseObject");
    let db_path = std::fs::read_dir(&d1)
        .map_err(|e| format!("{}: {e}", d1.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "sqlite") && !p.ends_with("metadata.sqlite"))
        .ok_or("no D1 database file")?;
    Ok((server, Arc::new(Target { kind: Kind::Workers, base, state: persist, db_path, mail })))
}

pub fn start_spin() -> crate::Started {
    start_spin_in(&Setup::suite("spin"))
}

pub fn start_spin_in(setup: &Setup) -> crate::Started {
    let root = root();
    let state = fresh_dir(setup.dir);
    // Built by `make spin-host` with the host's own profile (Cargo.toml [profile.host]).
    let host = root.join("target/host/spin-host");
    if !host.exists() {
        return Err(format!("{} is missing: run `make spin-host` (or `make test-e2e`)", host.display()));
    }
    // The real manifest, with paths made absolute and the geo mount pointed
    // at MaxMind's test database.
    let manifest = std::fs::read_to_string(root.join("spin.toml")).map_err(|e| e.to_string())?;
    let manifest = manifest
        .replace("source = \"target/", &format!("source = \"{}/target/", root.display()))
        .replace("source = \"data/geo\"", &format!("source = \"{}/.cache/geo\"", root.display()))
        // Webhook receivers in the tests listen on loopback.
        .replace("\"https://*\"]", "\"https://*\", \"http://127.0.0.1:*\"]");
    let manifest_path = state.join("spin.toml");
    std::fs::write(&manifest_path, manifest).map_err(|e| e.to_string())?;
    let mail = Recorder::start().map_err(|e| format!("mail recorder: {e}"))?;
    let port = free_port();
    let mut cmd = Command::new(&host);
    for (name, value) in settings(&mail.url, &setup.overrides) {
        cmd.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
    }
    let mut child = cmd
        .current_dir(&root)
        .arg("--from")
        .arg(&manifest_path)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
        .arg(state.join("data"))
        .args(migrations(&root)?.iter().flat_map(|m| ["--sqlite".to_owned(), format!("@{m}")]))
        .args(["--sqlite", "@tests/e2e/fixtures.sql"])
        .env("SPIN_VARIABLE_CLIENT_IP_HEADER", "x-real-ip")
        .env("SPIN_VARIABLE_GEO_FILES", "/geo/GeoIP2-City-Test.mmdb")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(state.join("spin-host.log")).map_err(|e| e.to_string())?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("spin-host: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(180)).map_err(|_| format!("spin-host did not start; see {}", state.join("spin-host.log").display()))?;
    let base = format!("http://127.0.0.1:{port}");
    let db_path = state.join("data/sqlite_db.db");
    Ok((server, Arc::new(Target { kind: Kind::Spin, base, state: state.join("data"), db_path, mail })))
}

/// What a Spin deployment applies at start (README): `schema/spin/wal.sql`,
/// then `schema/*.sql` in order, as paths relative to the repo root.
fn migrations(root: &Path) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("schema"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    Ok(std::iter::once("schema/spin/wal.sql".to_owned()).chain(names.into_iter().map(|n| format!("schema/{n}"))).collect())
}

fn wait_ready(base: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        match get(&format!("{base}/s/e2e")) {
            Ok(res) if res.status() == 200 => return Ok(()),
            Ok(res) => last = format!("status {}", res.status()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("not ready after {limit:?}: {last}"))
}

fn get(url: &str) -> Result<http::Response<Vec<u8>>, String> {
    let req = http::Request::get(url).body(Vec::new()).map_err(|e| e.to_string())?;
    shared::adapters::native::http1_fetch(req).map_err(|e| e.to_string())
}

/// The header that carries the client address to each runtime in tests:
/// workerd passes `CF-Connecting-IP` through locally; the Spin host is
/// configured (client_ip_header) to trust `x-real-ip`.
impl Target {
    pub fn ip_header(&self) -> &'static str {
        match self.kind {
            Kind::Workers => "cf-connecting-ip",
            Kind::Spin => "x-real-ip",
        }
    }

    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<http::Response<Vec<u8>>, String> {
        let mut b = http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(body.to_vec()).map_err(|e| e.to_string())?;
        shared::adapters::native::http1_fetch(req).map_err(|e| format!("{method} {path}: {e}"))
    }

    /// Workers only: runs `worker`'s `scheduled` handler once, as a Cron
    /// Trigger does, on this runtime's state, and returns wrangler's answer
    /// (200 once the handler succeeded, 500 if it failed) and its log.
    /// wrangler dev's trigger endpoint reaches only the first Worker of a
    /// session (here the front door), so the Worker gets a short session
    /// of its own, on the same files, with its own dev registry.
    pub fn run_scheduled(&self, worker: &str) -> Result<(http::Response<Vec<u8>>, String), String> {
        let root = root();
        let dir = self.state.parent().ok_or("no state dir")?;
        let config = dir.join("config").join(worker).join("wrangler.toml");
        let log_path = dir.join(format!("scheduled-{worker}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let port = free_port();
        let child = wrangler(&root, &dir.join(format!("registry-{worker}")))
            .arg("dev")
            .arg("-c")
            .arg(&config)
            .args(["--ip", "127.0.0.1", "--port", &port.to_string(), "--show-interactive-dev-session=false", "--log-level", "log"])
            .arg("--persist-to")
            .arg(&self.state)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("wrangler dev ({worker}): {e}"))?;
        let server = Server(child);
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(120);
        while get(&format!("{base}/")).is_err() {
            if Instant::now() > deadline {
                return Err(format!("wrangler dev ({worker}) did not start; see {}", log_path.display()));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let res = get(&format!("{base}/cdn-cgi/handler/scheduled?cron=*+*+*+*+*"))?;
        // The handler's log line may trail the answer a little.
        std::thread::sleep(Duration::from_millis(500));
        drop(server);
        Ok((res, std::fs::read_to_string(&log_path).unwrap_or_default()))
    }

    /// Read-write, for cases that play the part of a job (e.g. erasure).
    pub fn db_rw(&self) -> Result<rusqlite::Connection, String> {
        let c = rusqlite::Connection::open(&self.db_path).map_err(|e| format!("open {}: {e}", self.db_path.display()))?;
        c.busy_timeout(Duration::from_secs(5)).map_err(|e| e.to_string())?;
        Ok(c)
    }

    pub fn db(&self) -> Result<rusqlite::Connection, String> {
        let c = rusqlite::Connection::open_with_flags(&self.db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("open {}: {e}", self.db_path.display()))?;
        c.busy_timeout(Duration::from_secs(5)).map_err(|e| e.to_string())?;
        Ok(c)
    }
}
