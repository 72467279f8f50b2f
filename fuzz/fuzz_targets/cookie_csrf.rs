//! Fuzz target `cookie_csrf`: `shared::auth::{cookie, same_origin, check_csrf}`; the check is `stagedoor_fuzz::checks::cookie_csrf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stagedoor_fuzz::checks::cookie_csrf(data));
