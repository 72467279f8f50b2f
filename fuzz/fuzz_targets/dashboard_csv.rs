//! Fuzz target `dashboard_csv`; the check is `stagedoor_fuzz::dashboard_csv::dashboard_csv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stagedoor_fuzz::dashboard_csv::dashboard_csv(data));
