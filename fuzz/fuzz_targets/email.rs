//! Fuzz target `email`: `shared::email::Email::parse`; the check is `stagedoor_fuzz::checks::email`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stagedoor_fuzz::checks::email(data));
