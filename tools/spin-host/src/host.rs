//! Per-request guest state and the host side of what Spin adds to plain WASI:
//! `fermyon:spin/{key-value,sqlite,variables}@2.0.0` and outbound-HTTP policy.
//!
//! Storage follows `spin up`'s defaults so state is laid out the same way and
//! locks the same way: `<state-dir>/sqlite_key_value.db` (one connection shared
//! by all requests) and `<state-dir>/sqlite_db.db` (one connection per guest
//! `open`), both in SQLite's default rollback-journal mode.

use crate::manifest;
use rusqlite::{Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime_wasi::{DirPerms, FilePerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, IncomingResponse, OutgoingRequestConfig};
use wasmtime_wasi_http::p2::{HttpResult, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};
use wasmtime_wasi_http::WasiHttpCtx;

wasmtime::component::bindgen!({
    // `spin-sdk-wit/` links into spin-sdk's own WIT files; build.rs makes it.
    path: "spin-sdk-wit",
    inline: "
        package stagedoor:spin-host;
        world host {
            import fermyon:spin/key-value@2.0.0;
            import fermyon:spin/sqlite@2.0.0;
            import fermyon:spin/variables@2.0.0;
        }
    ",
    world: "stagedoor:spin-host/host",
    // Async so that SQLite waits (busy timeout) run off the async worker threads.
    imports: { default: async },
    with: {
        "fermyon:spin/key-value.store": KvStore,
        "fermyon:spin/sqlite.connection": SqlConnection,
    },
});

use fermyon::spin2_0_0::{key_value, sqlite, variables};

/// rusqlite's default, hence Spin's.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by all requests.
pub struct Shared {
    sqlite_path: PathBuf,
    // Key-value operations are single statements, so one serialised connection suffices.
    kv: Arc<Mutex<Connection>>,
    pub quiet: bool,
}

impl Shared {
    pub fn open(state_dir: &Path, quiet: bool) -> Result<Self, String> {
        std::fs::create_dir_all(state_dir).map_err(|e| format!("creating {}: {e}", state_dir.display()))?;
        let kv = open_db(&state_dir.join("sqlite_key_value.db")).map_err(|e| format!("key-value database: {e}"))?;
        kv.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (store, key))",
        )
        .map_err(|e| format!("key-value database: {e}"))?;
        let sqlite_path = state_dir.join("sqlite_db.db");
        let db = open_db(&sqlite_path).map_err(|e| format!("SQLite database: {e}"))?;
        // Spin leaves both files in SQLite's default rollback-journal mode.
        // Earlier versions of this host switched them to WAL, which is stored
        // in the file: put a state dir they left behind back to the default,
        // and say so. (`--sqlite` scripts run after this, so an application
        // that chooses WAL itself still gets it.)
        for (what, conn) in [("key-value database", &kv), ("SQLite database", &db)] {
            let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).map_err(|e| format!("{what}: {e}"))?;
            if mode.eq_ignore_ascii_case("wal") {
                conn.pragma_update(None, "journal_mode", "DELETE").map_err(|e| format!("{what}: {e}"))?;
                eprintln!("spin-host: {what} in {} was in WAL mode (an earlier spin-host's default); back to Spin's rollback journal", state_dir.display());
            }
        }
        Ok(Shared { sqlite_path, kv: Arc::new(Mutex::new(kv)), quiet })
    }

    /// Runs a `--sqlite @file` script against the default database.
    pub fn apply_sql(&self, sql: &str) -> Result<(), String> {
        open_db(&self.sqlite_path).and_then(|c| c.execute_batch(sql)).map_err(|e| e.to_string())
    }
}

/// A connection as Spin opens one (`rusqlite::Connection::open`): rollback
/// journal (`journal_mode=DELETE`), `synchronous=FULL`, both SQLite's
/// defaults, and rusqlite's 5 s busy timeout, set here explicitly so that
/// concurrent writers wait for each other instead of failing with
/// `SQLITE_BUSY`. No pragma runs per connection, as in Spin.
fn open_db(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// What one component is allowed to see, prepared once at start-up.
pub struct ComponentConfig {
    pub manifest: manifest::Component,
    allowed_hosts: Arc<Vec<AllowedHost>>,
    preopens: Vec<(PathBuf, String)>,
}

impl ComponentConfig {
    pub fn new(manifest: manifest::Component, preopens: Vec<(PathBuf, String)>) -> Self {
        let hosts = manifest.allowed_outbound_hosts.iter().filter_map(|h| AllowedHost::parse(h, &manifest.id)).collect();
        ComponentConfig { manifest, allowed_hosts: Arc::new(hosts), preopens }
    }
}

/// The data of one request's `Store`.
pub struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outbound: Outbound,
    shared: Arc<Shared>,
    config: Arc<ComponentConfig>,
}

pub struct KvStore {
    label: String,
}

pub struct SqlConnection {
    // Held for the resource's whole life so BEGIN/COMMIT across calls work.
    conn: Arc<Mutex<Connection>>,
}

impl GuestState {
    pub fn new(shared: Arc<Shared>, config: Arc<ComponentConfig>) -> wasmtime::Result<Self> {
        let mut wasi = WasiCtx::builder();
        if !shared.quiet {
            wasi.inherit_stdout().inherit_stderr();
        }
        for (key, value) in &config.manifest.environment {
            wasi.env(key, value);
        }
        for (host, guest) in &config.preopens {
            wasi.preopened_dir(host, guest, DirPerms::READ, FilePerms::READ)?;
        }
        Ok(GuestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound: Outbound { allowed: config.allowed_hosts.clone(), component: config.manifest.id.clone() },
            shared,
            config,
        })
    }
}

pub fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    Host_::add_to_linker::<_, HasSelf<GuestState>>(linker, |s| s)
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

/// Runs blocking SQLite work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    conn: &Arc<Mutex<Connection>>,
    f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, String> {
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap_or_else(|p| p.into_inner()))).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())
}

// ---- fermyon:spin/key-value ----

impl key_value::Host for GuestState {}

impl GuestState {
    fn kv_label(&self, store: &Resource<KvStore>) -> Result<String, key_value::Error> {
        self.table.get(store).map(|s| s.label.clone()).map_err(|e| key_value::Error::Other(e.to_string()))
    }
}

// Takes the connection, not `&self`: the future must be `Send` and `GuestState` isn't `Sync`.
async fn kv<T: Send + 'static>(
    conn: Arc<Mutex<Connection>>,
    f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, key_value::Error> {
    blocking(&conn, f).await.map_err(key_value::Error::Other)
}

impl key_value::HostStore for GuestState {
    async fn open(&mut self, label: String) -> Result<Resource<KvStore>, key_value::Error> {
        if label != "default" {
            return Err(key_value::Error::NoSuchStore);
        }
        if !self.config.manifest.key_value_stores.contains(&label) {
            return Err(key_value::Error::AccessDenied);
        }
        self.table.push(KvStore { label }).map_err(|e| key_value::Error::Other(e.to_string()))
    }

    async fn get(&mut self, store: Resource<KvStore>, key: String) -> Result<Option<Vec<u8>>, key_value::Error> {
        let label = self.kv_label(&store)?;
        kv(self.shared.kv.clone(), move |c| {
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?.query_row((label, key), |r| r.get(0)).optional()
        })
        .await
    }

    async fn set(&mut self, store: Resource<KvStore>, key: String, value: Vec<u8>) -> Result<(), key_value::Error> {
        let label = self.kv_label(&store)?;
        kv(self.shared.kv.clone(), move |c| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute((label, key, value))
            .map(drop)
        })
        .await
    }

    async fn delete(&mut self, store: Resource<KvStore>, key: String) -> Result<(), key_value::Error> {
        let label = self.kv_label(&store)?;
        kv(self.shared.kv.clone(), move |c| c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?.execute((label, key)).map(drop)).await
    }

    async fn exists(&mut self, store: Resource<KvStore>, key: String) -> Result<bool, key_value::Error> {
        Ok(self.get(store, key).await?.is_some())
    }

    async fn get_keys(&mut self, store: Resource<KvStore>) -> Result<Vec<String>, key_value::Error> {
        let label = self.kv_label(&store)?;
        kv(self.shared.kv.clone(), move |c| {
            let mut stmt = c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
            let keys = stmt.query_map([label], |r| r.get(0))?.collect();
            keys
        })
        .await
    }

    async fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

// ---- fermyon:spin/sqlite ----

impl sqlite::Host for GuestState {}

impl sqlite::HostConnection for GuestState {
    async fn open(&mut self, database: String) -> Result<Resource<SqlConnection>, sqlite::Error> {
        if database != "default" {
            return Err(sqlite::Error::NoSuchDatabase);
        }
        if !self.config.manifest.sqlite_databases.contains(&database) {
            return Err(sqlite::Error::AccessDenied);
        }
        let path = self.shared.sqlite_path.clone();
        let conn = tokio::task::spawn_blocking(move || open_db(&path))
            .await
            .map_err(|e| sqlite::Error::Io(e.to_string()))?
            .map_err(|e| sqlite::Error::Io(e.to_string()))?;
        let conn = SqlConnection { conn: Arc::new(Mutex::new(conn)) };
        self.table.push(conn).map_err(|e| sqlite::Error::Io(e.to_string()))
    }

    async fn execute(
        &mut self,
        conn: Resource<SqlConnection>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> Result<sqlite::QueryResult, sqlite::Error> {
        let conn = self.table.get(&conn).map_err(|_| sqlite::Error::InvalidConnection)?.conn.clone();
        blocking(&conn, move |c| run_statement(c, &statement, parameters)).await.map_err(sqlite::Error::Io)
    }

    async fn drop(&mut self, conn: Resource<SqlConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

fn run_statement(conn: &Connection, statement: &str, parameters: Vec<sqlite::Value>) -> rusqlite::Result<sqlite::QueryResult> {
    use rusqlite::types::{Value as V, ValueRef};
    let mut stmt = conn.prepare_cached(statement)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let params = parameters.into_iter().map(|p| match p {
        sqlite::Value::Integer(i) => V::Integer(i),
        sqlite::Value::Real(f) => V::Real(f),
        sqlite::Value::Text(s) => V::Text(s),
        sqlite::Value::Blob(b) => V::Blob(b),
        sqlite::Value::Null => V::Null,
    });
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Integer(i) => sqlite::Value::Integer(i),
                    ValueRef::Real(f) => sqlite::Value::Real(f),
                    ValueRef::Text(t) => sqlite::Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => sqlite::Value::Blob(b.to_vec()),
                    ValueRef::Null => sqlite::Value::Null,
                })
            })
            .collect::<rusqlite::Result<_>>()?;
        out.push(sqlite::RowResult { values });
    }
    Ok(sqlite::QueryResult { columns, rows: out })
}

// ---- fermyon:spin/variables ----

impl variables::Host for GuestState {
    async fn get(&mut self, name: String) -> Result<String, variables::Error> {
        // Same rule as Spin, so a bad name fails here too rather than only in production.
        let valid = name.starts_with(|c: char| c.is_ascii_lowercase()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(variables::Error::InvalidName(format!("invalid variable name `{name}`")));
        }
        self.config
            .manifest
            .variables
            .get(&name)
            .cloned()
            .ok_or_else(|| variables::Error::Undefined(format!("no variable `{name}` for component `{}`", self.config.manifest.id)))
    }
}

// ---- outbound HTTP ----

/// One `allowed_outbound_hosts` entry: `scheme://host[:port]`, each part may be `*`,
/// and the host may be `*.suffix`. A missing port means the scheme's default.
#[derive(Debug)]
pub struct AllowedHost {
    scheme: String,
    host: String,
    port: String,
}

impl AllowedHost {
    fn parse(entry: &str, component: &str) -> Option<Self> {
        let Some((scheme, rest)) = entry.split_once("://") else {
            eprintln!("spin-host: component `{component}`: ignoring allowed_outbound_hosts entry `{entry}` (no scheme)");
            return None;
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = split_host_port(authority);
        let port = port.map(str::to_string).or_else(|| default_port(scheme).map(|p| p.to_string())).unwrap_or_else(|| "*".into());
        Some(AllowedHost { scheme: scheme.to_string(), host: host.to_string(), port })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host_ok =
            self.host == "*" || self.host.eq_ignore_ascii_case(host) || self.host.strip_prefix("*.").is_some_and(|s| host.ends_with(&format!(".{s}")));
        (self.scheme == "*" || self.scheme == scheme) && host_ok && (self.port == "*" || self.port == port.to_string())
    }
}

fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    // Bracketed IPv6 literals contain colons of their own.
    let colon = if authority.starts_with('[') { authority.find("]:").map(|i| i + 1) } else { authority.rfind(':') };
    match colon {
        Some(i) => (&authority[..i], Some(&authority[i + 1..])),
        None => (authority, None),
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `wasi:http` hooks: enforces `allowed_outbound_hosts` and sends plain-HTTP requests.
struct Outbound {
    allowed: Arc<Vec<AllowedHost>>,
    component: String,
}

impl WasiHttpHooks for Outbound {
    fn send_request(&mut self, request: hyper::Request<HyperOutgoingBody>, config: OutgoingRequestConfig) -> HttpResult<HostFutureIncomingResponse> {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("http");
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().or_else(|| default_port(scheme)).unwrap_or(0);
        if !self.allowed.iter().any(|a| a.allows(scheme, host, port)) {
            eprintln!("spin-host: component `{}`: outbound request to {scheme}://{host}:{port} denied (not in allowed_outbound_hosts)", self.component);
            return Err(ErrorCode::HttpRequestDenied.into());
        }
        if config.use_tls {
            eprintln!("spin-host: outbound https is not supported by this test host ({uri})");
            return Err(ErrorCode::InternalError(Some("spin-host supports only plain http outbound".into())).into());
        }
        let task = wasmtime_wasi::runtime::spawn(async move { Ok(send_plain_http(request, config).await) });
        Ok(HostFutureIncomingResponse::pending(task))
    }
}

async fn send_plain_http(mut request: hyper::Request<HyperOutgoingBody>, config: OutgoingRequestConfig) -> Result<IncomingResponse, ErrorCode> {
    use http_body_util::BodyExt;
    use tokio::time::timeout;
    use wasmtime_wasi_http::io::TokioIo;
    use wasmtime_wasi_http::p2::hyper_request_error;

    let authority = request.uri().authority().ok_or(ErrorCode::HttpRequestUriInvalid)?.clone();
    let addr = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
    let tcp = timeout(config.connect_timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| ErrorCode::ConnectionTimeout)?
        .map_err(|_| ErrorCode::ConnectionRefused)?;
    let (mut sender, conn) = timeout(config.connect_timeout, hyper::client::conn::http1::handshake(TokioIo::new(tcp)))
        .await
        .map_err(|_| ErrorCode::ConnectionTimeout)?
        .map_err(hyper_request_error)?;
    let worker = wasmtime_wasi::runtime::spawn(async move {
        let _ = conn.await;
    });
    if let Ok(host) = http::HeaderValue::from_str(authority.as_str()) {
        request.headers_mut().entry(http::header::HOST).or_insert(host);
    }
    // The request line must carry only path and query when not talking to a proxy.
    let path = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    *request.uri_mut() = path.parse().map_err(|_| ErrorCode::HttpRequestUriInvalid)?;
    let resp = timeout(config.first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| ErrorCode::ConnectionReadTimeout)?
        .map_err(hyper_request_error)?
        .map(|body| body.map_err(hyper_request_error).boxed_unsync());
    Ok(IncomingResponse { resp, worker: Some(worker), between_bytes_timeout: config.between_bytes_timeout })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts() {
        let a = |e| AllowedHost::parse(e, "t").unwrap();
        assert!(a("http://127.0.0.1:8025").allows("http", "127.0.0.1", 8025));
        assert!(!a("http://127.0.0.1:8025").allows("http", "127.0.0.1", 8026));
        assert!(a("https://api.example.com").allows("https", "api.example.com", 443));
        assert!(a("https://*.example.com").allows("https", "eu.api.example.com", 443));
        assert!(!a("https://*.example.com").allows("http", "eu.api.example.com", 80));
        assert!(a("*://*:*").allows("http", "localhost", 1234));
        assert!(a("http://[::1]:9000/path").allows("http", "[::1]", 9000));
    }
}
