//! Replays a function crate's fuzz corpus (`fuzz/corpus/<target>/`) through
//! its check, on stable: included by `functions/*/tests/fuzz_corpus.rs`.

/// Runs `check` on every file of the target's corpus; panics naming the
/// first input that fails, or if there is none.
pub fn replay(target: &str, check: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let data = std::fs::read(e.path()).unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{} fails its check", e.path().display());
        }
        n += 1;
    }
    assert!(n > 0, "no corpus in {}", dir.display());
}
