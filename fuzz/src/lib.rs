//! Stagedoor's fuzz targets live in `fuzz_targets/`, one libFuzzer binary
//! each; their bodies are in [`checks`], shared with the stable replay of the
//! corpus in `shared/tests/fuzz_corpus.rs`.

pub mod checks;
pub mod dashboard_csv;
pub mod links_json;
