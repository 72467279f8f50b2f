//! Scheduled work: outbound webhook delivery (retries, and link events'
//! first attempts; README "Webhooks"), then retention, the privacy
//! policy's promises on how long data is kept (README "Retention"). Every
//! run is bounded (rows per statement, statements per run, a time budget)
//! and logs one JSON line of what it did.
//!
//! How it is started:
//! - Workers: a Cron Trigger every minute (`functions/jobs/wrangler.toml`)
//!   calls [`scheduled`]; the Worker has no public route.
//! - Spin: `POST /jobs/run` with `Authorization: Bearer <jobs_secret>`,
//!   called by the platform's scheduler (README). Without the secret the
//!   route answers 401, and 404 while no secret is configured; neither
//!   says more.
//!
//! The clock is the platform's: no request can move it.

pub mod retention;

use shared::http::{header, HeaderValue, Method, StatusCode};
use shared::httpx::{self, JSON};
use shared::{Env, Error, ErrorKind, Request, Response};

shared::export_scheduled!(handle, scheduled);

/// The one route: `POST /jobs/run`.
pub const RUN_PATH: &str = "/jobs/run";

/// The HTTP entry point (Spin's scheduler; on Workers only reachable if an
/// operator routes to it).
pub async fn handle(req: Request, env: &impl Env) -> Response {
    let (parts, _) = req.into_parts();
    let secret = env.var("jobs_secret").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    // No secret configured: the route does not exist.
    let Some(secret) = secret else { return not_found() };
    if parts.uri.path().trim_end_matches('/') != RUN_PATH {
        return not_found();
    }
    let given = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    if !given.is_some_and(|g| shared::crypto::ct_eq(g.as_bytes(), secret.as_bytes())) {
        let mut res = httpx::json_error(&Error::new(ErrorKind::Unauthorized, "Unauthorized."));
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return res;
    }
    if parts.method != Method::POST {
        let mut res = httpx::json_error(&Error::new(ErrorKind::MethodNotAllowed, "Use POST to run the jobs."));
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
    let report = run(env).await;
    let line = report.to_json();
    log(env, &report, &line);
    let status = if report.failed.is_empty() { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR };
    httpx::respond(status, JSON, line)
}

/// The Cron Trigger's entry point (Workers). A failed job makes the run
/// fail, so the platform's cron history shows it.
pub async fn scheduled(env: &impl Env) -> Result<(), Error> {
    let report = run(env).await;
    let line = report.to_json();
    log(env, &report, &line);
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(Error::unavailable(format_args!("jobs failed: {}", report.failed.join(", "))))
    }
}

/// Delivery first (fans' and artists' systems wait on it), with half the
/// time budget; retention gets the rest.
async fn run(env: &impl Env) -> retention::Report {
    let budget = retention::Settings::from_env(env).time_budget_ms;
    let delivery = shared::outbox::deliver(env, None, budget / 2).await;
    let mut report = retention::run(env).await;
    match delivery {
        Ok(d) => report.webhooks = Some(d),
        Err(e) => {
            env.log_error(&format!("jobs: webhooks: {e}"));
            report.failed.insert(0, "webhooks");
        }
    }
    report
}

/// The run's one structured line (counts only: never personal data).
fn log(env: &impl Env, report: &retention::Report, line: &str) {
    if report.failed.is_empty() {
        env.log_info(line);
    } else {
        env.log_error(line);
    }
}

fn not_found() -> Response {
    httpx::json_error(&Error::new(ErrorKind::NotFound, "Not found."))
}

#[cfg(test)]
mod tests;
