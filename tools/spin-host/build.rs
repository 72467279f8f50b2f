//! Makes the WIT files shipped inside the spin-sdk crate visible to `bindgen!`.
//!
//! `bindgen!` only reads paths inside this crate, while the spin-sdk sources live
//! wherever Cargo unpacked them (registry cache, vendor dir, ...). So we ask
//! `cargo metadata` where spin-sdk is and build an ignored folder of symlinks,
//! `spin-sdk-wit/`, into its `wit/` tree: the interface definitions stay exactly
//! those of the SDK our components are built with, and no copy is committed.
//!
//! Layout: `fermyon:spin@2.0.0` at the root, the WASI packages under `deps/`.
//! The SDK's own root world and its WASI 0.3 release candidates are left out;
//! they use async WIT types, which would force wasmtime's `component-model-async`.

use std::path::{Path, PathBuf};
use std::process::Command;

const SDK_NAME: &str = "spin-sdk";
const SDK_VERSION: &str = "5.2.0";
const ROOT_PACKAGE: &str = "spin@2.0.0";
const WIT_DIR: &str = "spin-sdk-wit";

fn main() -> Result<(), String> {
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?);
    println!("cargo:rerun-if-changed=build.rs");
    // Deleting the folder, or a new lockfile, re-runs this script.
    println!("cargo:rerun-if-changed={WIT_DIR}");
    let (sdk_dir, workspace_root) = locate_sdk(&crate_dir)?;
    println!("cargo:rerun-if-changed={}", workspace_root.join("Cargo.lock").display());

    let sdk_wit = sdk_dir.join("wit");
    let root_pkg = sdk_wit.join("deps").join(ROOT_PACKAGE);
    let dest = crate_dir.join(WIT_DIR);
    let probe = "key-value.wit";
    if std::fs::read_link(dest.join(probe)).ok() == Some(root_pkg.join(probe)) {
        return Ok(()); // already current; rewriting it would only cause rebuilds
    }

    // Build beside the final place, then swap, so a half-made folder is never read.
    let tmp = crate_dir.join(format!(".{WIT_DIR}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("deps")).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    for (name, path) in read_dir(&root_pkg)? {
        symlink(&path, &tmp.join(name))?;
    }
    for (name, path) in read_dir(&sdk_wit.join("deps"))? {
        if name != ROOT_PACKAGE && !name.contains("0.3.0-rc") {
            symlink(&path, &tmp.join("deps").join(name))?;
        }
    }
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tmp, &dest).map_err(|e| format!("moving {} into place: {e}", dest.display()))
}

fn read_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    Ok(entries.flatten().map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())).collect())
}

fn symlink(target: &Path, link: &Path) -> Result<(), String> {
    std::os::unix::fs::symlink(target, link).map_err(|e| format!("symlink {}: {e}", link.display()))
}

/// Returns spin-sdk's source folder and the workspace root.
fn locate_sdk(crate_dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("parsing cargo metadata: {e}"))?;
    let packages = meta["packages"].as_array().ok_or("cargo metadata: no packages")?;
    let sdk = packages
        .iter()
        .find(|p| p["name"] == SDK_NAME && p["version"] == SDK_VERSION)
        .ok_or(format!("{SDK_NAME} {SDK_VERSION} is not in the dependency graph"))?;
    let manifest = Path::new(sdk["manifest_path"].as_str().ok_or("no manifest_path")?);
    let root = PathBuf::from(meta["workspace_root"].as_str().ok_or("no workspace_root")?);
    Ok((manifest.parent().ok_or("manifest_path has no parent")?.to_path_buf(), root))
}
