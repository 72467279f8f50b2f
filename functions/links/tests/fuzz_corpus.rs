//! Replays the committed corpus of fuzz target `links_json`
//! (`fuzz/corpus/links_json/`) through the target's own check, on stable,
//! so `make test` catches a regression on any input the fuzzer kept.

#![allow(clippy::panic)] // a replay fails by panicking, naming the input

#[path = "../../../fuzz/src/links_json.rs"]
mod check;

#[test]
fn links_json_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/links_json");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let data = std::fs::read(e.path()).unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
        if std::panic::catch_unwind(|| check::links_json(&data)).is_err() {
            panic!("{} fails its check", e.path().display());
        }
        n += 1;
    }
    assert!(n > 0, "no corpus in {}", dir.display());
}
