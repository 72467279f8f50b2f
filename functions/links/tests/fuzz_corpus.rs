//! Replays the committed corpus of fuzz target `links_json`
//! (`fuzz/corpus/links_json/`) through the target's own check, on stable,
//! so `make test` catches a regression on any input the fuzzer kept.

#![allow(clippy::panic)] // a replay fails by panicking, naming the input

#[path = "../../../fuzz/src/links_json.rs"]
mod check;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn links_json_corpus_replays() {
    replay::replay("links_json", check::links_json);
}
