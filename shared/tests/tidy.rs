//! Invariants of the repository, checked as tests (after rust-analyzer's
//! tidy): platform code stays in adapters, every function is wired on both
//! platforms, pinned tool versions agree, migrations stay idempotent.

#![allow(clippy::panic)] // a tidy check fails by panicking, naming the file

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(p: impl AsRef<Path>) -> String {
    let p = root().join(p);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let p = entry.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() && !matches!(name, "target" | "build" | "node_modules" | ".wrangler") {
            rust_files(&p, out);
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

fn functions() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A function's lib.rs: its own `src/lib.rs`, or the sources its
/// Cargo.toml's `[lib] path` names (functions/studio builds the
/// dashboard's).
fn lib_rs(f: &str) -> String {
    let manifest = read(format!("functions/{f}/Cargo.toml"));
    let path = manifest.split("\n[").find(|s| s.starts_with("lib]")).and_then(|s| s.lines().find_map(|l| l.strip_prefix("path = \"")));
    match path {
        Some(p) => format!("functions/{f}/{}", p.trim_end_matches('"')),
        None => format!("functions/{f}/src/lib.rs"),
    }
}

#[test]
fn functions_name_no_platform() {
    // A function whose sources are another's has no src/ of its own.
    for f in functions().into_iter().filter(|f| root().join("functions").join(f).join("src").exists()) {
        let mut files = Vec::new();
        rust_files(&root().join("functions").join(&f).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            for banned in ["cfg(feature", "cfg(target", "worker::", "spin_sdk", "wasm_bindgen", "rusqlite"] {
                assert!(!text.contains(banned), "{} mentions {banned:?}: platform code belongs in shared/src/adapters", file.display());
            }
        }
    }
}

#[test]
fn core_modules_name_no_platform() {
    let mut files = Vec::new();
    rust_files(&root().join("shared/src"), &mut files);
    for file in files.iter().filter(|f| !f.components().any(|c| c.as_os_str() == "adapters")) {
        let text = std::fs::read_to_string(file).expect("read");
        for banned in ["worker::", "spin_sdk::", "rusqlite::"] {
            assert!(!text.contains(banned), "{} mentions {banned:?}", file.display());
        }
    }
}

#[test]
fn every_function_is_wired_on_both_platforms() {
    let spin = read("spin.toml");
    let makefile = read("Makefile");
    let router = read("router/index.js");
    let root_wrangler = read("wrangler.toml");
    for f in functions() {
        let dir = format!("functions/{f}");
        let lib = read(lib_rs(&f));
        let scheduled = lib.contains("shared::export_scheduled!(");
        assert!(scheduled || lib.contains("shared::export!("), "{dir}: no shared::export! entry point");
        let wrangler = read(format!("{dir}/wrangler.toml"));
        assert!(wrangler.contains(&format!("name = \"stagedoor-{f}\"")), "{dir}/wrangler.toml: name");
        if scheduled {
            // Scheduled work (functions/jobs): a Cron Trigger, and no
            // public route through the front door.
            assert!(wrangler.contains("[triggers]\ncrons = ["), "{dir}/wrangler.toml: a scheduled function needs [triggers] crons");
            assert!(!root_wrangler.contains(&format!("service = \"stagedoor-{f}\"")), "wrangler.toml: {f} is scheduled, not routed");
            assert!(!router.contains(&format!("\"{}\"", f.to_uppercase())), "router/index.js: {f} is scheduled, not routed");
        } else {
            assert!(root_wrangler.contains(&format!("service = \"stagedoor-{f}\"")), "wrangler.toml: no service binding for {f}");
            assert!(router.contains(&format!("\"{}\"", f.to_uppercase())), "router/index.js: no route to {f}");
        }
        assert!(spin.contains(&format!("[component.{f}]")), "spin.toml: no component {f}");
        assert!(spin.contains(&format!("target/wasm32-wasip2/release/{f}.wasm")), "spin.toml: source for {f}");
        let listed = makefile.lines().find(|l| l.starts_with("FUNCTIONS :=")).unwrap_or("");
        assert!(listed.split_whitespace().any(|w| w == f), "Makefile FUNCTIONS lacks {f}");
    }
}

#[test]
fn wasm_bindgen_cli_pin_matches_the_lockfile() {
    let makefile = read("Makefile");
    let pinned = makefile.lines().find_map(|l| l.strip_prefix("WASM_BINDGEN_VERSION := ")).expect("Makefile pins WASM_BINDGEN_VERSION").trim().to_owned();
    let lock = read("Cargo.lock");
    let locked = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasm-bindgen\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned())
        .expect("wasm-bindgen in Cargo.lock");
    assert_eq!(pinned, locked, "the wasm-bindgen CLI must equal the library version");
}

#[test]
fn migrations_are_listed_and_idempotent() {
    let native = read("shared/src/adapters/native.rs");
    let mut names: Vec<String> = std::fs::read_dir(root().join("schema"))
        .expect("schema/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for (i, name) in names.iter().enumerate() {
        assert!(name.starts_with(&format!("{:04}_", i + 1)), "{name}: migrations are numbered 0001_, 0002_, … without gaps");
        assert!(native.contains(&format!("(\"{name}\", include_str!(\"../../../schema/{name}\"))")), "{name} not in native MIGRATIONS");
        let sql = read(format!("schema/{name}"));
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty() && !s.lines().all(|l| l.trim_start().starts_with("--"))) {
            let code: String = stmt.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join(" ");
            let upper = code.to_uppercase();
            if upper.starts_with("CREATE") {
                assert!(upper.contains("IF NOT EXISTS"), "{name}: `{}` must be idempotent (Spin applies it on every start)", &code[..code.len().min(60)]);
            }
        }
    }
}

#[test]
fn every_rust_file_says_what_it_is_for() {
    let mut files = Vec::new();
    for dir in ["shared", "functions", "tests", "tools"] {
        if root().join(dir).exists() {
            rust_files(&root().join(dir), &mut files);
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        assert!(text.starts_with("//!"), "{} must start with a //! line", f.display());
    }
}

/// Dashboard code reaches tenant data only through `shared::auth::Tenant`,
/// which binds the session's artist to every statement.
#[test]
fn dashboard_never_touches_the_raw_database() {
    let mut files = Vec::new();
    rust_files(&root().join("functions/dashboard/src"), &mut files);
    for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(file).expect("read");
        for banned in [".db()", "Db,", "Db}", "shared::Db"] {
            assert!(!text.contains(banned), "{} uses {banned:?}: go through Ctx::db (auth::Tenant)", file.display());
        }
    }
}

/// URLs carry tokens (unsubscribe, confirmation, sign-in links): no
/// Worker may keep Workers Logs' invocation logs, which record them.
#[test]
fn no_worker_logs_request_urls() {
    let mut configs = vec![root().join("wrangler.toml")];
    configs.extend(functions().iter().map(|f| root().join("functions").join(f).join("wrangler.toml")));
    for path in configs {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.contains("[observability.logs]\ninvocation_logs = false"), "{} must set [observability.logs] invocation_logs = false", path.display());
    }
}
