//! Fuzz target `form_query`: `shared::httpx::{parse_form, percent_decode, query_param}`; the check is `stagedoor_fuzz::checks::form_query`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stagedoor_fuzz::checks::form_query(data));
