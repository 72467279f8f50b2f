//! Stagedoor's shared crate: the platform-neutral core every function stands
//! on (domain rules, validation, crypto, geo, storage ports, HTTP helpers),
//! plus one adapter per platform behind a feature.
//!
//! Invariants:
//! - The core modules never name a platform; only `adapters::*` does, and each
//!   adapter compiles only with its feature (`cloudflare`, `spin`, `native`).
//! - Raw client IPs reach the core only as [`env::Client::ip`], are used for
//!   geo lookup and salted hashing, and are never stored or logged.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cache;
pub mod capture;
pub mod colour;
pub mod crypto;
pub mod date;
pub mod email;
pub mod env;
pub mod error;
pub mod geo;
pub mod html;
pub mod httpx;
pub mod mail;
pub mod outbox;
pub mod qr;
pub mod ratelimit;
pub mod retention;
pub mod sql;
pub mod token;
pub mod url;
pub mod webhook;

pub mod adapters;

pub use env::{Client, Db, Env, Kv};
pub use error::{Error, ErrorKind};
pub use sql::{Cell, Param, Row};

/// Re-exported so function crates and the export macro use one `http` version.
pub use http;

/// Request as a function sees it: `http` types with the body already read
/// (and capped at [`httpx::MAX_BODY`]).
pub type Request = http::Request<Vec<u8>>;
/// Response as a function returns it.
pub type Response = http::Response<Vec<u8>>;
