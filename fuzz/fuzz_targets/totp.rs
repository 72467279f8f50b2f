//! Fuzz target `totp`: `shared::auth::totp::{verify, base32_decode, normalize_recovery}`; the check is `stagedoor_fuzz::checks::totp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stagedoor_fuzz::checks::totp(data));
