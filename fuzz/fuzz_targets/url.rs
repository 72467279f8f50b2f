//! Fuzz target `url`: `shared::url::{check_https, origin}`; the check is `stagedoor_fuzz::checks::url`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stagedoor_fuzz::checks::url(data));
