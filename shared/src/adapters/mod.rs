//! Platform adapters: the only code that names a platform. Each one turns
//! its platform's request into a [`crate::Request`], implements the ports in
//! [`crate::env`], and translates its SDK's errors in one place.
//!
//! [`crate::export!`] is the one-line entry point a function crate writes;
//! it expands to the glue of whichever platform feature is enabled.

#[cfg(feature = "cloudflare")]
pub mod cloudflare;
#[cfg(feature = "native")]
pub mod native;
#[cfg(feature = "spin")]
pub mod spin;

/// Exports `handler` (an `async fn(Request, &impl Env) -> Response`) as the
/// entry point of the platform this build is for.
///
/// Both SDKs' entry macros expand to code that names the SDK crate by its
/// absolute path, so a function crate lists `worker` / `spin-sdk` as optional
/// dependencies switched on by its `cloudflare` / `spin` features; its
/// source never names them.
///
/// The expansion is gated again on the *calling* crate's own feature (a
/// `cfg` in a macro's output is read in the crate it lands in): a
/// function's sources built as a plain library for another function
/// (`functions/links/lib`, for the dashboard) have no platform feature on,
/// so they neither name an SDK they don't depend on nor add a second
/// entry point.
#[cfg(feature = "cloudflare")]
#[macro_export]
macro_rules! export {
    ($handler:path) => {
        // The module's `fetch` export, which tools/worker-shim.js calls.
        #[cfg(feature = "cloudflare")]
        #[::worker::wasm_bindgen::prelude::wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen, js_name = fetch)]
        pub fn stagedoor_fetch(req: ::worker::web_sys::Request, env: ::worker::Env, ctx: ::worker::worker_sys::Context) -> ::worker::wasm_bindgen::JsValue {
            $crate::adapters::cloudflare::serve(req, env, ctx, |req, platform| async move { $handler(req, &platform).await })
        }
    };
}

#[cfg(all(feature = "spin", not(feature = "cloudflare")))]
#[macro_export]
macro_rules! export {
    ($handler:path) => {
        // The response goes out through the outparam before deferred work
        // runs: wasi-http lets the component keep running after it.
        #[cfg(feature = "spin")]
        #[::spin_sdk::http_component]
        async fn stagedoor_handle(req: ::spin_sdk::http::IncomingRequest, out: ::spin_sdk::http::ResponseOutparam) {
            match $crate::adapters::spin::Platform::prepare(req).await {
                ::std::result::Result::Ok((req, platform)) => {
                    let res = $handler(req, &platform).await;
                    platform.finish(res, out).await
                }
                ::std::result::Result::Err(res) => $crate::adapters::spin::respond(res, out).await,
            }
        }
    };
}

/// Without a platform feature (native builds, unit tests) there is nothing
/// to export: tests call the handler directly with the native adapter.
#[cfg(not(any(feature = "cloudflare", feature = "spin")))]
#[macro_export]
macro_rules! export {
    ($handler:path) => {};
}

/// Like [`crate::export!`], for a function that also runs on a schedule:
/// `scheduled` (an `async fn(&impl Env) -> Result<(), Error>`) becomes the
/// Worker's `scheduled` export, which tools/worker-shim.js hands Cron
/// Triggers to. Spin has no schedule of its own (the function's HTTP route
/// is called by the platform's scheduler), so there it is `export!`.
/// Functions without a schedule keep `export!`: their Workers have no
/// `scheduled` export at all.
#[cfg(feature = "cloudflare")]
#[macro_export]
macro_rules! export_scheduled {
    ($handler:path, $scheduled:path) => {
        $crate::export!($handler);

        // The module's `scheduled` export (tools/worker-shim.js).
        #[cfg(feature = "cloudflare")]
        #[::worker::wasm_bindgen::prelude::wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen, js_name = scheduled)]
        pub fn stagedoor_scheduled(
            _controller: ::worker::wasm_bindgen::JsValue,
            env: ::worker::Env,
            ctx: ::worker::worker_sys::Context,
        ) -> ::worker::wasm_bindgen::JsValue {
            $crate::adapters::cloudflare::serve_scheduled(env, ctx, |platform| async move { $scheduled(&platform).await })
        }
    };
}

#[cfg(not(feature = "cloudflare"))]
#[macro_export]
macro_rules! export_scheduled {
    ($handler:path, $scheduled:path) => {
        $crate::export!($handler);
    };
}

/// Set on every connection the native and Spin adapters open. SQLite
/// leaves foreign keys off per connection, so the schema's `ON DELETE
/// CASCADE` would otherwise do nothing (D1 turns them on itself), and
/// `secure_delete` overwrites freed content with zeros, so an erased fan's
/// ciphertext and blind index do not linger in free pages.
pub const CONNECTION_PRAGMAS: &[&str] = &["PRAGMA foreign_keys = ON", "PRAGMA secure_delete = ON"];
