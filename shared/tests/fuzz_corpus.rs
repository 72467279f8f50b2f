//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! same checks the libFuzzer targets run (`fuzz/src/checks.rs`, included
//! below), on stable, so `make test` catches a regression on any input the
//! fuzzer ever found interesting, crashes included.

#![allow(clippy::panic)] // a replay fails by panicking, naming the input

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/checks.rs"]
mod checks;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn names_in(dir: &Path, ext: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| ext.is_none_or(|x| p.extension().is_some_and(|e| e == x)))
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    names.sort();
    names
}

#[test]
fn every_corpus_input_passes_its_check() {
    let mut failures = Vec::new();
    let mut total = 0;
    for &(target, check) in checks::TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten().map(|e| e.path()).collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no seeds", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if panic::catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failures.push(file.display().to_string());
            }
            total += 1;
        }
    }
    assert!(failures.is_empty(), "{} of {total} corpus inputs failed (the panic messages are above):\n{}", failures.len(), failures.join("\n"));
}

/// Targets, corpus directories and cargo-fuzz binaries name the same set.
#[test]
fn targets_corpora_and_binaries_agree() {
    // The function crates' targets are replayed by their own crates'
    // tests (functions/links/tests/, functions/dashboard/tests/).
    let targets: Vec<String> = {
        let mut t: Vec<String> = checks::TARGETS.iter().map(|(name, _)| (*name).to_owned()).chain(["links_json".into(), "dashboard_csv".into()]).collect();
        t.sort();
        t
    };
    assert_eq!(names_in(&fuzz_dir().join("corpus"), None), targets, "fuzz/corpus/ directories");
    assert_eq!(names_in(&fuzz_dir().join("fuzz_targets"), Some("rs")), targets, "fuzz/fuzz_targets/*.rs");
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for t in &targets {
        assert!(manifest.contains(&format!("name = \"{t}\"\npath = \"fuzz_targets/{t}.rs\"")), "fuzz/Cargo.toml has no [[bin]] {t}");
    }
}
