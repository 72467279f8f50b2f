//! Fuzz target `client_addr`: `shared::env::parse_client_addr`; the check is `stagedoor_fuzz::checks::client_addr`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stagedoor_fuzz::checks::client_addr(data));
