//! `spin-host`: a minimal Spin-compatible HTTP host for Stagedoor's end-to-end tests.
//!
//! No Spin runtime can be installed where our tests run, so this serves the same
//! `spin.toml` with wasmtime: HTTP routing, Spin's request headers, key-value,
//! SQLite, variables and `files`. See README.md for what is left out.

mod host;
mod manifest;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Store, Strategy};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::WasiHttpView;

const USAGE: &str = "usage: spin-host --from <spin.toml> --listen <ip:port> --state-dir <dir> [--sqlite @<file.sql>]... [--cron <path>=<seconds>]... [--quiet]";

struct Args {
    from: PathBuf,
    listen: SocketAddr,
    state_dir: PathBuf,
    sqlite: Vec<PathBuf>,
    /// `--cron PATH=SECONDS`: POST to PATH every SECONDS (see [`cron`]).
    cron: Vec<(String, u64)>,
    quiet: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut from, mut listen, mut state_dir, mut sqlite, mut cron, mut quiet) = (None, None, None, Vec::new(), Vec::new(), false);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--from" | "-f" => from = Some(PathBuf::from(value()?)),
            "--listen" => listen = Some(value()?.parse().map_err(|e| format!("--listen: {e}"))?),
            "--state-dir" => state_dir = Some(PathBuf::from(value()?)),
            "--sqlite" => {
                let v = value()?;
                // Like `spin up`, only `@file` scripts; inline SQL is not needed by our tests.
                sqlite.push(PathBuf::from(v.strip_prefix('@').ok_or("--sqlite expects @<file.sql>")?));
            }
            "--cron" => {
                let v = value()?;
                let (path, secs) = v.split_once('=').ok_or("--cron expects <path>=<seconds>")?;
                let secs: u64 = secs.parse().ok().filter(|s| *s > 0).ok_or("--cron: seconds must be a positive whole number")?;
                if !path.starts_with('/') || path.contains(char::is_whitespace) {
                    return Err("--cron: the path must start with / and hold no spaces".into());
                }
                cron.push((path.to_owned(), secs));
            }
            "--quiet" => quiet = true,
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(Args {
        from: from.ok_or("--from is required")?,
        listen: listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 3000))), // `spin up`'s default
        state_dir: state_dir.ok_or("--state-dir is required")?,
        sqlite,
        cron,
        quiet,
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("spin-host: {e}");
            return ExitCode::from(2);
        }
    };
    // Tokio's defaults, as `spin up` (`#[tokio::main]`): one worker thread per
    // core. Guests run on them between host calls; SQLite and key-value work
    // goes to the blocking pool.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    match runtime.map_err(|e| e.to_string()).and_then(|rt| rt.block_on(run(args))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spin-host: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Server {
    app: manifest::App,
    components: Vec<(ProxyPre<host::GuestState>, Arc<host::ComponentConfig>)>,
    shared: Arc<host::Shared>,
}

async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    let app = manifest::load(&args.from, &|k| std::env::var(k).ok())?;
    let shared = Arc::new(host::Shared::open(&args.state_dir, args.quiet)?);
    for script in &args.sqlite {
        let sql = std::fs::read_to_string(script).map_err(|e| format!("reading {}: {e}", script.display()))?;
        shared.apply_sql(&sql).map_err(|e| format!("applying {}: {e}", script.display()))?;
    }

    let engine = engine()?;
    let mut linker = Linker::new(&engine);
    host::add_to_linker(&mut linker).map_err(|e| e.to_string())?;
    let mut components = Vec::new();
    let mut compiled: Vec<(PathBuf, Component)> = Vec::new();
    for c in &app.components {
        let component = match compiled.iter().find(|(p, _)| *p == c.source) {
            Some((_, component)) => component.clone(),
            None => {
                let component = Component::from_file(&engine, &c.source).map_err(|e| format!("component `{}` ({}): {e:?}", c.id, c.source.display()))?;
                compiled.push((c.source.clone(), component.clone()));
                component
            }
        };
        let pre = linker.instantiate_pre(&component).and_then(ProxyPre::new).map_err(|e| format!("component `{}`: {e:?}", c.id))?;
        let stage = args.state_dir.join("files").join(&c.id);
        let preopens = manifest::prepare_files(&app.dir, &c.files, &stage).map_err(|e| format!("component `{}`: {e}", c.id))?;
        components.push((pre, Arc::new(host::ComponentConfig::new(c.clone(), preopens))));
    }

    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| format!("binding {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    if !args.quiet {
        eprintln!("spin-host: {} component(s), {} route(s), ready in {:.2?}", components.len(), app.routes.len(), started.elapsed());
    }
    // Tests wait for exactly this line.
    println!("spin-host listening on http://{local}");
    let _ = std::io::stdout().flush();
    for (path, secs) in &args.cron {
        cron(local, path.clone(), *secs, args.quiet);
    }

    let server = Arc::new(Server { app, components, shared });
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("spin-host: accept: {e}");
                continue;
            }
        };
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| server.clone().handle(req, peer, local));
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                if !e.is_incomplete_message() {
                    eprintln!("spin-host: connection from {peer}: {e}");
                }
            }
        });
    }
}

/// A timer standing in for the platform's scheduler (`spin aka cron`, a
/// Kubernetes CronJob): every `secs` seconds, `POST path` on our own
/// listener with `Authorization: Bearer $SPIN_VARIABLE_JOBS_SECRET`, the
/// way an operator's scheduler calls the jobs route. The first call comes
/// after one interval. A plain thread and a blocking socket: one small
/// request a minute needs nothing more.
fn cron(local: SocketAddr, path: String, secs: u64, quiet: bool) {
    let secret = std::env::var("SPIN_VARIABLE_JOBS_SECRET").unwrap_or_default();
    let spawned = std::thread::Builder::new().name(format!("cron {path}")).spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_secs(secs));
        let status = post(local, &path, &secret);
        if !quiet {
            match status {
                Ok(line) => eprintln!("spin-host: cron POST {path}: {line}"),
                Err(e) => eprintln!("spin-host: cron POST {path}: {e}"),
            }
        }
    });
    if let Err(e) = spawned {
        eprintln!("spin-host: cron {e}");
    }
}

/// One `POST` with an empty body; the answer's status line.
fn post(local: SocketAddr, path: &str, secret: &str) -> std::io::Result<String> {
    use std::io::{BufRead, BufReader};
    let mut conn = std::net::TcpStream::connect(local)?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(600)))?;
    write!(conn, "POST {path} HTTP/1.1\r\nHost: {local}\r\nAuthorization: Bearer {secret}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

/// Epoch ticks, as Spin's engine builder: one every 10 ms from a helper thread.
const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// The wasmtime engine configured as `spin up` configures its own
/// (`spin-core`'s `Config::default` and `EngineBuilder`): Cranelift at
/// `OptLevel::Speed` with parallel compilation, epoch interruption with a
/// 10 ms ticker, and the pooling instance allocator sized from Spin's
/// `SPIN_MAX_INSTANCE_COUNT` (default 1000), with Spin's environment
/// overrides. Where the pool cannot be reserved (Spin probes for 42 bits of
/// address space and falls back the same way), the on-demand allocator.
fn engine() -> Result<Engine, String> {
    let mut config = Config::new();
    config.strategy(Strategy::Cranelift).cranelift_opt_level(OptLevel::Speed).parallel_compilation(true).epoch_interruption(true);
    let pooling = match std::env::var("SPIN_WASMTIME_POOLING").as_deref() {
        Ok("0") => None,
        _ => Some(pooling_config()?),
    };
    let engine = match pooling {
        Some(pool) => {
            let mut pooled = config.clone();
            pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            match Engine::new(&pooled) {
                Ok(engine) => engine,
                Err(e) => {
                    eprintln!("spin-host: pooling allocator unavailable ({e}); using the on-demand allocator, as Spin does in that case");
                    Engine::new(&config).map_err(|e| e.to_string())?
                }
            }
        }
        None => Engine::new(&config).map_err(|e| e.to_string())?,
    };
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .map_err(|e| format!("epoch ticker: {e}"))?;
    Ok(engine)
}

/// Spin's pooling limits (spin-core `Config::default`), same defaults and
/// same environment variables.
fn pooling_config() -> Result<PoolingAllocationConfig, String> {
    const MB: usize = 1 << 20;
    fn env<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
        match std::env::var(name) {
            Ok(v) => v.parse().map_err(|_| format!("{name}={v}: not a number")),
            Err(_) => Ok(default),
        }
    }
    let max = env("SPIN_MAX_INSTANCE_COUNT", 1_000u32)?;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(env("SPIN_WASMTIME_INSTANCE_COUNT", max)?)
        .total_memories(env("SPIN_WASMTIME_TOTAL_MEMORIES", max)?)
        .total_tables(env("SPIN_WASMTIME_TOTAL_TABLES", 2 * max)?)
        .total_stacks(env("SPIN_WASMTIME_TOTAL_STACKS", max)?)
        .total_core_instances(env("SPIN_WASMTIME_TOTAL_CORE_INSTANCES", 4 * max)?)
        .table_elements(env("SPIN_WASMTIME_INSTANCE_TABLE_ELEMENTS", 100_000)?)
        .max_component_instance_size(env("SPIN_WASMTIME_INSTANCE_SIZE", 10 * MB)?)
        .max_core_instance_size(env("SPIN_WASMTIME_CORE_INSTANCE_SIZE", 10 * MB)?)
        .max_core_instances_per_component(env("SPIN_WASMTIME_CORE_INSTANCE_COUNT", 200)?)
        .max_tables_per_component(env("SPIN_WASMTIME_INSTANCE_TABLES", 64)?)
        .max_memories_per_component(env("SPIN_WASMTIME_INSTANCE_MEMORIES", 32)?)
        .max_tables_per_module(env("SPIN_WASMTIME_MAX_TABLES_PER_MODULE", 2)?)
        .max_memories_per_module(env("SPIN_WASMTIME_MAX_MEMORIES_PER_MODULE", 2)?)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(env("SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT", 2 * MB)?)
        .table_keep_resident(env("SPIN_WASMTIME_TABLE_KEEP_RESIDENT", MB / 2)?);
    Ok(pool)
}

fn text(status: StatusCode, body: &'static str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(body.as_bytes())).map_err(|never| match never {}).boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp
}

impl Server {
    async fn handle(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Result<Response<HyperOutgoingBody>, std::convert::Infallible> {
        let path = req.uri().path().to_string();
        let Some((route, path_info)) = manifest::match_route(&self.app.routes, &path) else {
            return Ok(text(StatusCode::NOT_FOUND, "Not Found"));
        };
        let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).map_or_else(|| local.to_string(), str::to_string);
        let full_url = format!("http://{host}{}", req.uri().path_and_query().map_or("/", |p| p.as_str()));
        let headers = [
            ("spin-client-addr", peer.to_string()),
            ("spin-full-url", full_url),
            ("spin-path-info", path_info),
            ("spin-matched-route", route.raw.clone()),
            ("spin-raw-component-route", route.raw.clone()),
            ("spin-component-route", route.base.clone()),
            ("spin-base-path", "/".to_string()),
        ];
        for (name, value) in headers {
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                req.headers_mut().insert(name, v);
            }
        }
        let (pre, config) = &self.components[route.component];
        let failure = |what: String| {
            eprintln!("spin-host: component `{}` failed on {path}: {what}", config.manifest.id);
            text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        };
        let mut store = match host::GuestState::new(self.shared.clone(), config.clone()) {
            Ok(state) => Store::new(pre.engine(), state),
            Err(e) => return Ok(failure(e.to_string())),
        };
        // With epoch interruption on, a store needs a deadline or it traps at
        // once; Spin sets "practically never" (u64::MAX / 2 ticks) unless asked
        // for a timeout, and so does this host.
        store.set_epoch_deadline(u64::MAX / 2);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let resources =
            store.data_mut().http().new_incoming_request(Scheme::Http, req).and_then(|req| Ok((req, store.data_mut().http().new_response_outparam(sender)?)));
        let (req, out) = match resources {
            Ok(r) => r,
            Err(e) => return Ok(failure(e.to_string())),
        };
        // A fresh instance per request, as in Spin. It runs in its own task because
        // the guest may keep streaming the body after handing over the headers.
        // The route, not the path: paths carry tokens (unsubscribe,
        // confirmation and sign-in links) that must not reach logs.
        let (pre, id, task_path) = (pre.clone(), config.manifest.id.clone(), route.raw.clone());
        let task = tokio::spawn(async move {
            let result = match pre.instantiate_async(&mut store).await {
                Ok(proxy) => proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await,
                Err(e) => Err(e),
            };
            if let Err(e) = &result {
                // The root cause ("wasm trap: ...") next to the guest's own panic message
                // says enough; the anonymous wasm backtrace would only add noise.
                eprintln!("spin-host: component `{id}` failed on {task_path}: {}", e.root_cause());
            }
            result
        });
        Ok(match receiver.await {
            Ok(Ok(resp)) => resp,
            Ok(Err(code)) => failure(format!("guest responded with error {code:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => failure("guest never set a response".into()),
                Ok(Err(_)) => text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"), // logged above
                Err(e) => failure(e.to_string()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    fn args(s: &str) -> Result<super::Args, String> {
        parse_args(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn cron_takes_a_path_and_whole_seconds() {
        let a = args("--from s.toml --state-dir d --cron /jobs/run=60 --cron /other=1").expect("valid");
        assert_eq!(a.cron, [("/jobs/run".to_owned(), 60), ("/other".to_owned(), 1)]);
        assert!(args("--from s.toml --state-dir d").expect("valid").cron.is_empty());
        for bad in ["/jobs/run", "/jobs/run=0", "/jobs/run=-5", "/jobs/run=1.5", "jobs/run=60", "/jobs/run="] {
            assert!(args(&format!("--from s.toml --state-dir d --cron {bad}")).is_err(), "{bad}");
        }
    }
}
