//! The e2e suite lives in main.rs (a test target); this crate has no library code.
