//! Cases for the scheduled `jobs` function (README "Retention"): rows just
//! past each retention window and rows just inside it are written straight
//! into the runtime's database, the job is triggered the way the platform
//! triggers it (Workers: the jobs Worker's `scheduled` handler through
//! wrangler dev's trigger endpoint; Spin: `POST /jobs/run` with the
//! operator's secret), and exactly the old rows must be gone. The clock is
//! the runtime's own: rows are placed an hour (or two days) either side of
//! each window.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::cases::{body, Case, Res};
use crate::ensure;
use crate::runtime::{Kind, Target, JOBS_SECRET};

pub const ALL: &[(&str, Case)] = &[("jobs_retention_removes_exactly_the_old_rows", jobs_retention_removes_exactly_the_old_rows)];

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Old (`-old`) and new (`-new`) rows for every job, ids prefixed `jobs-`.
fn seed(t: &Target) -> Result<(), String> {
    let now = now_ms();
    let db = t.db_rw()?;
    let fan = |id: &str, status: &str, at: i64| {
        format!(
            "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, consent_version, created_at, updated_at)
               VALUES ('{id}', 'e2e-artist', 'k1.{id}', 'jobs-hash-{id}', '{status}', 'v1', {at}, {at});
             INSERT INTO consent_events (id, fan_id, artist_id, kind, method, at) VALUES ('ce-{id}', '{id}', 'e2e-artist', 'request', 'double', {at});
             INSERT INTO mail_log (fan_id, artist_id, kind, at) VALUES ('{id}', 'e2e-artist', 'confirm', {at});"
        )
    };
    let sql = format!(
        "{pending_old}{pending_new}{kept}
         INSERT INTO mail_log (fan_id, artist_id, kind, at) VALUES ('jobs-kept', 'e2e-artist', 'jobs-old', {mail_old}), ('jobs-kept', 'e2e-artist', 'jobs-new', {mail_new});
         INSERT INTO link_stats (link_id, artist_id, day, kind, platform, country, referrer, device, count) VALUES
           ('e2e-db-link', 'e2e-artist', date('now', '-12 months', '-2 days'), 'view', '', '', 'jobs-old.example', 'other', 1),
           ('e2e-db-link', 'e2e-artist', date('now', '-12 months', '+2 days'), 'view', '', '', 'jobs-new.example', 'other', 1);
         INSERT INTO sessions (id_hash, user_id, artist_id, created_at, last_seen_at) VALUES
           ('jobs-session-old', 'e2e-owner', 'e2e-artist', {now}, {idle_old}),
           ('jobs-session-new', 'e2e-owner', 'e2e-artist', {now}, {now});
         INSERT INTO sign_in_links (token_hash, user_id, email_hash, client_hash, created_at, expires_at) VALUES
           ('jobs-link-old', NULL, 'jobs-e', 'jobs-c', {link_old}, {link_old_exp}),
           ('jobs-link-new', NULL, 'jobs-e', 'jobs-c', {now}, {link_new_exp});
         INSERT INTO api_tokens (id, artist_id, token_hash, label, created_at, revoked_at) VALUES
           ('jobs-token-old', 'e2e-artist', 'jobs-token-hash-old', 'jobs', 0, {now}),
           ('jobs-token-new', 'e2e-artist', 'jobs-token-hash-new', 'jobs', 0, NULL);
         INSERT INTO api_token_use (token_id, last_used_at) VALUES ('jobs-token-old', {now}), ('jobs-token-new', {now});
         INSERT INTO rate_windows (key, slot, count, lim, expires_at) VALUES ('jobs-window', 1, 1, 5, {now} - 1000), ('jobs-window', 2, 1, 5, {now} + 600000);",
        pending_old = fan("jobs-pending-old", "pending", now - 30 * DAY - HOUR),
        pending_new = fan("jobs-pending-new", "pending", now - 30 * DAY + HOUR),
        kept = fan("jobs-kept", "subscribed", now - 400 * DAY),
        mail_old = now - 90 * DAY - HOUR,
        mail_new = now - 90 * DAY + HOUR,
        idle_old = now - 31 * MIN,
        link_old = now - 20 * MIN,
        link_old_exp = now - 10 * MIN,
        link_new_exp = now + 10 * MIN,
    );
    db.execute_batch(&sql).map_err(|e| format!("seeding: {e}"))
}

/// Every `jobs-` row left, as `table:id` (sorted).
fn left(t: &Target) -> Result<Vec<String>, String> {
    let db = t.db()?;
    let mut out = Vec::new();
    for (table, q) in [
        ("fans", "SELECT id FROM fans WHERE id LIKE 'jobs-%'"),
        ("consent_events", "SELECT fan_id FROM consent_events WHERE fan_id LIKE 'jobs-%'"),
        ("mail_log", "SELECT fan_id || '/' || kind FROM mail_log WHERE fan_id LIKE 'jobs-%'"),
        ("link_stats", "SELECT referrer FROM link_stats WHERE referrer LIKE 'jobs-%'"),
        ("sessions", "SELECT id_hash FROM sessions WHERE id_hash LIKE 'jobs-%'"),
        ("sign_in_links", "SELECT token_hash FROM sign_in_links WHERE token_hash LIKE 'jobs-%'"),
        ("api_token_use", "SELECT token_id FROM api_token_use WHERE token_id LIKE 'jobs-%'"),
        ("rate_windows", "SELECT 'slot' || slot FROM rate_windows WHERE key = 'jobs-window'"),
    ] {
        let mut stmt = db.prepare(q).map_err(|e| format!("{q}: {e}"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| format!("{q}: {e}"))?;
        for r in rows {
            out.push(format!("{table}:{}", r.map_err(|e| e.to_string())?));
        }
    }
    out.sort();
    Ok(out)
}

/// Runs the jobs as the platform does, and returns the answer and the
/// run's report (Workers: the JSON line the handler logged; Spin: the body).
pub(crate) fn trigger(t: &Target) -> Result<(Res, String), String> {
    match t.kind {
        // The jobs Worker's `scheduled` export, the handler a Cron Trigger
        // calls, through wrangler dev's trigger endpoint.
        Kind::Workers => {
            let (res, log) = t.run_scheduled("jobs")?;
            let line = log.lines().find_map(|l| l.find("{\"batches\"").map(|i| l[i..].trim_end().to_owned())).unwrap_or_default();
            Ok((res, line))
        }
        Kind::Spin => {
            let res = t.send("POST", "/jobs/run", &[("authorization", &format!("Bearer {JOBS_SECRET}"))], b"")?;
            let report = body(&res);
            Ok((res, report))
        }
    }
}

fn jobs_retention_removes_exactly_the_old_rows(t: &Target) -> Result<(), String> {
    seed(t)?;
    let all = left(t)?;
    ensure!(all.len() == 21, "seeded rows: {all:?}");
    if t.kind == Kind::Spin {
        // Without the secret, with a wrong one, or with it outside the
        // Bearer scheme: 401, the same answer, and nothing runs.
        let wrong = format!("Bearer {JOBS_SECRET}x");
        for auth in [None, Some("Bearer nope"), Some(wrong.as_str()), Some(JOBS_SECRET)] {
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
            let res = t.send("POST", "/jobs/run", &headers, b"")?;
            ensure!(res.status() == 401, "{auth:?}: {} {}", res.status(), body(&res));
            ensure!(!body(&res).to_lowercase().contains("secret"), "a refusal gives no hint: {}", body(&res));
        }
        let res = t.send("GET", "/jobs/run", &[("authorization", &format!("Bearer {JOBS_SECRET}"))], b"")?;
        ensure!(res.status() == 405, "GET with the secret: {} {}", res.status(), body(&res));
        ensure!(left(t)? == all, "a refused call removed rows");
    }
    let (res, report) = trigger(t)?;
    ensure!(res.status() == 200, "trigger: {} {} {report}", res.status(), body(&res));
    // The one structured line: job name → rows removed (at least ours:
    // earlier cases may have left expired rows of their own).
    let json = report.rfind('}').map_or("", |end| &report[..=end]);
    let report: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("report: {e}: {report}"))?;
    ensure!(report["job"] == "retention" && report["complete"] == true && report["elapsed_ms"].is_i64(), "report: {report}");
    for job in ["pending_signups", "mail_log", "link_stats", "sessions", "sign_in_links", "api_token_use", "rate_windows"] {
        ensure!(report["removed"][job].as_u64().is_some_and(|n| n >= 1), "{job} not counted: {report}");
    }
    let want = [
        "api_token_use:jobs-token-new",
        "consent_events:jobs-kept",
        "consent_events:jobs-pending-new",
        "fans:jobs-kept",
        "fans:jobs-pending-new",
        "link_stats:jobs-new.example",
        "mail_log:jobs-kept/jobs-new",
        "mail_log:jobs-pending-new/confirm",
        "rate_windows:slot2",
        "sessions:jobs-session-new",
        "sign_in_links:jobs-link-new",
    ];
    let got = left(t)?;
    ensure!(got == want, "left after the run:\n{got:#?}\nwanted:\n{want:#?}");
    Ok(())
}
