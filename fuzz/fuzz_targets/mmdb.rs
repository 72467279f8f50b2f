//! Fuzz target `mmdb`: `shared::geo::mmdb::Mmdb` (open over the input, then lookups); the check is `stagedoor_fuzz::checks::mmdb`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stagedoor_fuzz::checks::mmdb(data));
