//! Check of fuzz target `links_json`: the links function's own JSON reader
//! (`functions/links/src/json.rs`, which parses every API body). Compiled
//! by the fuzz crate and, through `#[path]`, by
//! `functions/links/tests/fuzz_corpus.rs`, which replays the corpus.

use links::json::{self, Json};

/// Never panics; a string it reads, written back, reads as the same string.
pub fn links_json(data: &[u8]) {
    if let Ok(Json::String(s)) = json::parse(data) {
        let mut out = String::new();
        json::write_str(&mut out, &s);
        assert_eq!(json::parse(out.as_bytes()), Ok(Json::String(s)), "a written string reads back");
    }
}
