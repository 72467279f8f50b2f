//! Fuzz target `links_json`; the check is `stagedoor_fuzz::links_json::links_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stagedoor_fuzz::links_json::links_json(data));
