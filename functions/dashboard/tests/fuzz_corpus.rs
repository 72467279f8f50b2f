//! Replays the committed corpus of fuzz target `dashboard_csv`
//! (`fuzz/corpus/dashboard_csv/`) through the target's own check, on stable,
//! so `make test` catches a regression on any input the fuzzer kept.

#![allow(clippy::panic)] // a replay fails by panicking, naming the input

#[path = "../../../fuzz/src/dashboard_csv.rs"]
mod check;

#[test]
fn dashboard_csv_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/dashboard_csv");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let data = std::fs::read(e.path()).unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
        if std::panic::catch_unwind(|| check::dashboard_csv(&data)).is_err() {
            panic!("{} fails its check", e.path().display());
        }
        n += 1;
    }
    assert!(n > 0, "no corpus in {}", dir.display());
}
