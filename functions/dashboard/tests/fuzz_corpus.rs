//! Replays the committed corpus of fuzz target `dashboard_csv`
//! (`fuzz/corpus/dashboard_csv/`) through the target's own check, on stable,
//! so `make test` catches a regression on any input the fuzzer kept.

#![allow(clippy::panic)] // a replay fails by panicking, naming the input

#[path = "../../../fuzz/src/dashboard_csv.rs"]
mod check;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn dashboard_csv_corpus_replays() {
    replay::replay("dashboard_csv", check::dashboard_csv);
}
