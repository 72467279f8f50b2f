//! Fuzz target `token`: `shared::token::TokenKeys::verify` and sign/verify round trips; the check is `stagedoor_fuzz::checks::token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stagedoor_fuzz::checks::token(data));
