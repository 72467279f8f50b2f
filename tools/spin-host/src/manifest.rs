//! The part of a Spin manifest (v2 `spin.toml`) this host understands, plus the
//! pure logic around it: route matching, variable templates and `files` mounts.
//!
//! Anything the manifest contains that is not read here is ignored on purpose,
//! so the same manifest keeps working with a real `spin up`.

use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct RawManifest {
    #[serde(default)]
    variables: HashMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: HashMap<String, RawComponent>,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    // A string, or a table such as `{ private = true }` (not routable).
    route: toml::Value,
    component: toml::Value,
}

#[derive(Deserialize, Default)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    files: Vec<FileMount>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: HashMap<String, String>,
    #[serde(default)]
    environment: HashMap<String, String>,
}

/// One entry of a component's `files` list.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum FileMount {
    /// A path or glob relative to the manifest; mounted at the same path.
    Pattern(String),
    /// A file or directory mounted at `destination`.
    Map { source: String, destination: String },
}

/// A component with everything resolved that can be resolved at start-up.
#[derive(Clone)]
pub struct Component {
    pub id: String,
    pub source: PathBuf,
    pub files: Vec<FileMount>,
    pub key_value_stores: Vec<String>,
    pub sqlite_databases: Vec<String>,
    pub allowed_outbound_hosts: Vec<String>,
    pub variables: HashMap<String, String>,
    pub environment: HashMap<String, String>,
}

#[derive(Debug, PartialEq)]
pub struct Route {
    /// The route as written in the manifest, e.g. `/s/...`.
    pub raw: String,
    /// The route without its `/...` suffix, e.g. `/s` (empty for `/...`).
    pub base: String,
    pub wildcard: bool,
    pub component: usize,
}

pub struct App {
    pub dir: PathBuf,
    pub components: Vec<Component>,
    pub routes: Vec<Route>,
}

type Result<T> = std::result::Result<T, String>;

/// Reads the manifest; `env` looks up `SPIN_VARIABLE_*` values (injected for tests).
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<App> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let raw: RawManifest = toml::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };

    // Application variables: environment first, then the default, like `spin up`'s env provider.
    let mut app_vars = HashMap::new();
    for (name, var) in &raw.variables {
        match env(&format!("SPIN_VARIABLE_{}", name.to_uppercase())).or_else(|| var.default.clone()) {
            Some(value) => {
                app_vars.insert(name.clone(), value);
            }
            None if var.required => return Err(format!("required variable `{name}` has no value (set SPIN_VARIABLE_{})", name.to_uppercase())),
            None => {}
        }
    }
    let lookup = |name: &str| app_vars.get(name).cloned();

    let mut ids: Vec<&String> = raw.component.keys().collect();
    ids.sort();
    let mut components = Vec::new();
    for id in ids {
        let c = &raw.component[id];
        let source = c.source.as_str().ok_or_else(|| format!("component `{id}`: only a local `source` path is supported"))?;
        for label in &c.key_value_stores {
            if label != "default" {
                return Err(format!("component `{id}`: key-value store `{label}` is not defined (only `default` exists)"));
            }
        }
        for label in &c.sqlite_databases {
            if label != "default" {
                return Err(format!("component `{id}`: SQLite database `{label}` is not defined (only `default` exists)"));
            }
        }
        let mut variables = HashMap::new();
        for (name, template) in &c.variables {
            let value = resolve_template(template, &lookup).map_err(|e| format!("component `{id}` variable `{name}`: {e}"))?;
            variables.insert(name.clone(), value);
        }
        let allowed_outbound_hosts = c
            .allowed_outbound_hosts
            .iter()
            .map(|h| resolve_template(h, &lookup).map_err(|e| format!("component `{id}` allowed_outbound_hosts: {e}")))
            .collect::<Result<_>>()?;
        components.push(Component {
            id: id.clone(),
            source: dir.join(source),
            files: c.files.clone(),
            key_value_stores: c.key_value_stores.clone(),
            sqlite_databases: c.sqlite_databases.clone(),
            allowed_outbound_hosts,
            variables,
            environment: c.environment.clone(),
        });
    }

    let mut routes = Vec::new();
    for t in &raw.trigger.http {
        let Some(route) = t.route.as_str() else { continue }; // private route
        let id = t.component.as_str().ok_or("inline trigger components are not supported")?;
        let component = components.iter().position(|c| c.id == id).ok_or_else(|| format!("route `{route}`: unknown component `{id}`"))?;
        let route = parse_route(route, component);
        if routes.iter().any(|r: &Route| r.base == route.base && r.wildcard == route.wildcard) {
            return Err(format!("duplicate route `{}`", route.raw));
        }
        routes.push(route);
    }
    Ok(App { dir, components, routes })
}

fn parse_route(raw: &str, component: usize) -> Route {
    let (base, wildcard) = match raw.strip_suffix("/...") {
        Some(base) => (base, true),
        None => (raw, false),
    };
    Route { raw: raw.to_string(), base: base.trim_end_matches('/').to_string(), wildcard, component }
}

/// Finds the route for `path` and the path info (the part after a wildcard's base).
/// Exact routes win over wildcards; among wildcards the longest base wins.
pub fn match_route<'a>(routes: &'a [Route], path: &str) -> Option<(&'a Route, String)> {
    let trimmed = path.trim_end_matches('/');
    if let Some(r) = routes.iter().find(|r| !r.wildcard && r.base == trimmed) {
        return Some((r, String::new()));
    }
    routes
        .iter()
        .filter(|r| r.wildcard && (trimmed == r.base || path.starts_with(&format!("{}/", r.base))))
        .max_by_key(|r| r.base.len())
        .map(|r| (r, path[r.base.len()..].to_string()))
}

/// Expands `{{ name }}` references; text outside the braces is kept literally.
pub fn resolve_template(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").ok_or_else(|| format!("unclosed `{{{{` in `{template}`"))?;
        let name = rest[start + 2..start + end].trim();
        out.push_str(&lookup(name).ok_or_else(|| format!("application variable `{name}` is not defined or has no value"))?);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Turns a component's `files` into WASI preopens as (host dir, guest path).
///
/// Directory mappings are mounted directly. Single files and glob matches are
/// hard-linked (or copied) into `stage`, which is mounted at `/`; WASI libc picks
/// the longest matching preopen, so both kinds coexist.
pub fn prepare_files(app_dir: &Path, mounts: &[FileMount], stage: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut preopens = Vec::new();
    let mut staged: Vec<(PathBuf, String)> = Vec::new(); // (host file, guest path relative to /)
    for m in mounts {
        match m {
            FileMount::Map { source, destination } => {
                let src = app_dir.join(source);
                if src.is_dir() {
                    preopens.push((src, destination.clone()));
                } else if src.is_file() {
                    staged.push((src, destination.trim_start_matches('/').to_string()));
                } else {
                    return Err(format!("files: `{source}` does not exist"));
                }
            }
            FileMount::Pattern(pattern) => {
                let pattern = pattern.trim_start_matches("./");
                let pattern = if app_dir.join(pattern).is_dir() { format!("{}/**/*", pattern.trim_end_matches('/')) } else { pattern.to_string() };
                let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
                let mut found = Vec::new();
                expand_glob(app_dir, "", &segments, &mut found);
                found.sort();
                found.dedup();
                staged.extend(found.into_iter().map(|rel| (app_dir.join(&rel), rel)));
            }
        }
    }
    if !staged.is_empty() {
        let _ = std::fs::remove_dir_all(stage);
        for (src, rel) in &staged {
            let dst = stage.join(rel);
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("staging files: {e}"))?;
            }
            if std::fs::hard_link(src, &dst).is_err() {
                std::fs::copy(src, &dst).map_err(|e| format!("staging {}: {e}", src.display()))?;
            }
        }
        preopens.push((stage.to_path_buf(), "/".to_string()));
    }
    Ok(preopens)
}

/// Collects files under `dir` matching the remaining glob segments (`**`, `*`, `?`).
fn expand_glob(dir: &Path, rel: &str, pattern: &[&str], out: &mut Vec<String>) {
    let Some((&seg, rest)) = pattern.split_first() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let join = |name: &str| if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
    if seg == "**" {
        expand_glob(dir, rel, rest, out);
    }
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if seg == "**" {
            if path.is_dir() {
                expand_glob(&path, &join(&name), pattern, out);
            }
        } else if segment_matches(seg.as_bytes(), name.as_bytes()) {
            if rest.is_empty() && path.is_file() {
                out.push(join(&name));
            } else if path.is_dir() {
                expand_glob(&path, &join(&name), rest, out);
            }
        }
    }
}

fn segment_matches(pat: &[u8], name: &[u8]) -> bool {
    match pat.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| segment_matches(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && segment_matches(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && segment_matches(rest, &name[1..]),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn routes(raw: &[&str]) -> Vec<Route> {
        raw.iter().enumerate().map(|(i, r)| parse_route(r, i)).collect()
    }

    fn matched(routes: &[Route], path: &str) -> Option<(String, String)> {
        match_route(routes, path).map(|(r, info)| (r.raw.clone(), info))
    }

    #[test]
    fn exact_beats_wildcard_and_longest_wildcard_wins() {
        let r = routes(&["/...", "/s/...", "/api/v1/signup", "/api/..."]);
        let m = |p| matched(&r, p);
        assert_eq!(m("/api/v1/signup"), Some(("/api/v1/signup".into(), "".into())));
        assert_eq!(m("/api/v1/signup/"), Some(("/api/v1/signup".into(), "".into())));
        assert_eq!(m("/api/v1/other"), Some(("/api/...".into(), "/v1/other".into())));
        assert_eq!(m("/s"), Some(("/s/...".into(), "".into())));
        assert_eq!(m("/s/abc/d"), Some(("/s/...".into(), "/abc/d".into())));
        assert_eq!(m("/sx"), Some(("/...".into(), "/sx".into())));
        assert_eq!(m("/"), Some(("/...".into(), "/".into())));
    }

    #[test]
    fn no_catch_all_means_no_match() {
        let r = routes(&["/s/...", "/hello"]);
        assert_eq!(matched(&r, "/hello/x"), None);
        assert_eq!(matched(&r, "/"), None);
        assert_eq!(matched(&r, "/hello"), Some(("/hello".into(), "".into())));
    }

    #[test]
    fn templates_resolve_from_variables() {
        let vars: HashMap<&str, &str> = [("data_keys", "k1,k2"), ("host", "127.0.0.1:9")].into();
        let lookup = |n: &str| vars.get(n).map(|v| v.to_string());
        assert_eq!(resolve_template("{{ data_keys }}", &lookup).unwrap(), "k1,k2");
        assert_eq!(resolve_template("http://{{host}}/v3", &lookup).unwrap(), "http://127.0.0.1:9/v3");
        assert_eq!(resolve_template("literal", &lookup).unwrap(), "literal");
        assert!(resolve_template("{{ missing }}", &lookup).is_err());
        assert!(resolve_template("{{ data_keys", &lookup).is_err());
    }

    #[test]
    fn glob_segments() {
        assert!(segment_matches(b"*.mmdb", b"city.mmdb"));
        assert!(segment_matches(b"a?c", b"abc"));
        assert!(!segment_matches(b"*.mmdb", b"city.mmdb.gz"));
    }

    #[test]
    fn manifest_variables_and_routes() {
        let dir = std::env::temp_dir().join(format!("spin-host-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spin.toml");
        std::fs::write(
            &path,
            r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
data_keys = { required = true }
greeting = { default = "hi" }
[[trigger.http]]
route = "/s/..."
component = "web"
[[trigger.http]]
route = { private = true }
component = "web"
[component.web]
source = "web.wasm"
key_value_stores = ["default"]
[component.web.variables]
keys = "{{ data_keys }}"
hello = "{{ greeting }}, world"
plain = "as-is"
"#,
        )
        .unwrap();
        let env = |k: &str| (k == "SPIN_VARIABLE_DATA_KEYS").then(|| "secret".to_string());
        let app = load(&path, &env).unwrap();
        let web = &app.components[0];
        assert_eq!(web.source, dir.join("web.wasm"));
        assert_eq!(web.variables["keys"], "secret");
        assert_eq!(web.variables["hello"], "hi, world");
        assert_eq!(web.variables["plain"], "as-is");
        assert_eq!(app.routes.len(), 1);
        assert!(load(&path, &|_| None).is_err(), "required variable without value must fail");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
