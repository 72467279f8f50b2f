//! Native tests of the retention jobs against the real SQLite engine: each
//! window removes exactly what is older than it, and nothing newer.

use shared::adapters::native::{block_on, NativeEnv};
use shared::http::{Method, Request as HttpRequest};
use shared::{Env, Response};

use crate::retention::{self, link_stats_cutoff, Report};

const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;

fn env() -> NativeEnv {
    let env = NativeEnv::memory().unwrap();
    env.db
        .conn()
        .execute_batch(
            "INSERT INTO artists VALUES ('a1', 'Nova', 0);
             INSERT INTO links (id, artist_id, slug, definition, created_at, updated_at) VALUES ('l1', 'a1', 'l1', '{}', 0, 0);
             INSERT INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES ('u1', 'a1', 'k1.x', 'uh1', 'owner', 0);
             INSERT INTO api_tokens (id, artist_id, token_hash, created_at, revoked_at) VALUES ('t-live', 'a1', 'h-live', 0, NULL), ('t-dead', 'a1', 'h-dead', 0, 1);",
        )
        .unwrap();
    env
}

fn count(env: &NativeEnv, sql: &str) -> i64 {
    env.db.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn ids(env: &NativeEnv, sql: &str) -> Vec<String> {
    let conn = env.db.conn();
    let mut stmt = conn.prepare(sql).unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    let mut v: Vec<String> = rows.map(Result::unwrap).collect();
    v.sort();
    v
}

fn run(env: &NativeEnv) -> Report {
    block_on(retention::run(env))
}

fn fan(env: &NativeEnv, id: &str, status: &str, created_at: i64) {
    env.db
        .conn()
        .execute_batch(&format!(
            "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, consent_version, created_at, updated_at)
               VALUES ('{id}', 'a1', 'k1.{id}', 'h-{id}', '{status}', 'v1', {created_at}, {created_at});
             INSERT INTO consent_events (id, fan_id, artist_id, kind, method, at) VALUES ('ce-{id}', '{id}', 'a1', 'request', 'double', {created_at});
             INSERT INTO mail_log (fan_id, artist_id, kind, at) VALUES ('{id}', 'a1', 'confirm', {created_at});"
        ))
        .unwrap();
}

#[test]
fn link_stats_cutoff_is_the_same_date_months_before() {
    // 2026-01-01T00:00Z and 12 months: 2025-01-01 is kept.
    assert_eq!(link_stats_cutoff(1_767_225_600_000, 12), "2025-01-01");
    // 2025-03-31 minus one month is the last day of February.
    assert_eq!(link_stats_cutoff(1_743_379_200_000, 1), "2025-02-28");
    // 2024-02-29 minus 12 months: 2023 has no 29 February.
    assert_eq!(link_stats_cutoff(1_709_164_800_000, 12), "2023-02-28");
    // Late in the day is still the same day.
    assert_eq!(link_stats_cutoff(1_767_225_600_000 + DAY - 1, 12), "2025-01-01");
}

#[test]
fn settings_have_the_policy_defaults_and_ignore_nonsense() {
    let mut env = env();
    let s = retention::Settings::from_env(&env);
    assert_eq!((s.link_stats_months, s.mail_log_days, s.pending_signup_days), (12, 90, 30));
    env.set_var("retention_mail_log_days", "7").set_var("retention_pending_signup_days", "-3").set_var("jobs_batch_rows", "lots");
    let s = retention::Settings::from_env(&env);
    assert_eq!((s.mail_log_days, s.pending_signup_days, s.batch_rows), (7, 30, 500));
}

#[test]
fn mail_log_older_than_90_days_goes_newer_stays() {
    let env = env();
    let now = env.now_ms();
    fan(&env, "f1", "subscribed", now - 400 * DAY);
    env.db
        .conn()
        .execute_batch(&format!(
            "DELETE FROM mail_log;
             INSERT INTO mail_log (id, fan_id, artist_id, kind, at) VALUES
               (1, 'f1', 'a1', 'confirm', {}), (2, 'f1', 'a1', 'confirm', {}), (3, 'f1', 'a1', 'confirm', {})",
            now - 90 * DAY - 1,
            now - 90 * DAY,
            now
        ))
        .unwrap();
    let r = run(&env);
    assert_eq!(r.removed("mail_log"), 1);
    assert_eq!(ids(&env, "SELECT CAST(id AS TEXT) FROM mail_log"), ["2", "3"]);
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 1, "the fan stays");
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events"), 1, "so does its consent");
}

#[test]
fn link_stats_before_the_cutoff_day_go_the_cutoff_day_stays() {
    let env = env();
    env.db
        .conn()
        .execute_batch(
            "INSERT INTO link_stats (link_id, artist_id, day, kind, platform, country, referrer, device, count) VALUES
               ('l1', 'a1', '2024-06-01', 'view', '', '', '', 'ios', 3),
               ('l1', 'a1', '2024-12-31', 'click', 'spotify', 'SE', '', 'ios', 1),
               ('l1', 'a1', '2025-01-01', 'click', 'spotify', 'SE', '', 'ios', 2),
               ('l1', 'a1', '2025-12-31', 'view', '', '', '', 'desktop', 4)",
        )
        .unwrap();
    let r = run(&env);
    assert_eq!(r.removed("link_stats"), 2);
    assert_eq!(ids(&env, "SELECT day FROM link_stats"), ["2025-01-01", "2025-12-31"]);
}

#[test]
fn unconfirmed_signups_older_than_30_days_go_with_their_consent_and_mail() {
    let env = env();
    let now = env.now_ms();
    fan(&env, "old-pending", "pending", now - 30 * DAY - 1);
    fan(&env, "edge-pending", "pending", now - 30 * DAY);
    fan(&env, "new-pending", "pending", now - DAY);
    fan(&env, "old-subscribed", "subscribed", now - 300 * DAY);
    env.db.conn().execute_batch("INSERT INTO fan_restrictions VALUES ('old-pending', 'a1', 0, 'u1')").unwrap();
    let r = run(&env);
    assert_eq!(r.removed("pending_signups"), 1);
    assert!(r.failed.is_empty(), "{r:?}");
    assert_eq!(ids(&env, "SELECT id FROM fans"), ["edge-pending", "new-pending", "old-subscribed"]);
    assert_eq!(ids(&env, "SELECT fan_id FROM consent_events"), ["edge-pending", "new-pending", "old-subscribed"]);
    // The old subscribed fan's mail is past 90 days: the mail job takes it.
    assert_eq!(ids(&env, "SELECT fan_id FROM mail_log"), ["edge-pending", "new-pending"]);
    assert_eq!(count(&env, "SELECT count(*) FROM fan_restrictions"), 0);
}

#[test]
fn expired_sessions_links_token_use_and_windows_go_live_ones_stay() {
    let env = env();
    let now = env.now_ms();
    let (idle, max) = (30 * MIN, 12 * 60 * MIN);
    let window = 900_000; // sign-in limits: 15 minutes
    env.db
        .conn()
        .execute_batch(&format!(
            "INSERT INTO sessions (id_hash, user_id, artist_id, created_at, last_seen_at) VALUES
               ('s-idle', 'u1', 'a1', {n}, {idle_gone}),
               ('s-idle-edge', 'u1', 'a1', {n}, {idle_kept}),
               ('s-old', 'u1', 'a1', {max_gone}, {n}),
               ('s-old-edge', 'u1', 'a1', {max_kept}, {n});
             INSERT INTO sign_in_links (token_hash, user_id, email_hash, client_hash, created_at, expires_at, used_at) VALUES
               ('l-expired', 'u1', 'e', 'c', {w_gone}, {w_gone_exp}, NULL),
               ('l-expired-counted', NULL, 'e', 'c', {w_kept}, {n}, NULL),
               ('l-used', 'u1', 'e', 'c', {w_gone}, {future}, 1),
               ('l-live', 'u1', 'e', 'c', {n}, {future}, NULL);
             INSERT INTO api_token_use VALUES ('t-live', {n}), ('t-dead', {n});
             INSERT INTO rate_windows (key, slot, count, lim, expires_at) VALUES ('k', 1, 1, 5, {n}), ('k', 2, 1, 5, {future});",
            n = now,
            idle_gone = now - idle,
            idle_kept = now - idle + 1,
            max_gone = now - max,
            max_kept = now - max + 1,
            w_gone = now - window,
            w_gone_exp = now - window + 600_000,
            w_kept = now - window + 1,
            future = now + 1,
        ))
        .unwrap();
    let r = run(&env);
    assert_eq!(ids(&env, "SELECT id_hash FROM sessions"), ["s-idle-edge", "s-old-edge"]);
    assert_eq!(ids(&env, "SELECT token_hash FROM sign_in_links"), ["l-expired-counted", "l-live"]);
    assert_eq!(ids(&env, "SELECT token_id FROM api_token_use"), ["t-live"]);
    assert_eq!(count(&env, "SELECT count(*) FROM api_tokens"), 2, "a revoked token stays listed");
    assert_eq!(ids(&env, "SELECT CAST(slot AS TEXT) FROM rate_windows"), ["2"]);
    let got: Vec<_> = ["sessions", "sign_in_links", "api_token_use", "rate_windows"].iter().map(|j| r.removed(j)).collect();
    assert_eq!(got, [2, 2, 1, 1]);
}

#[test]
fn batches_are_bounded_and_a_spent_run_is_finished_by_the_next() {
    let mut env = env();
    let now = env.now_ms();
    let values: Vec<String> = (0..10).map(|i| format!("('f1', 'a1', 'confirm', {})", now - 100 * DAY - i)).collect();
    fan(&env, "f1", "subscribed", now);
    env.db.conn().execute_batch(&format!("INSERT INTO mail_log (fan_id, artist_id, kind, at) VALUES {}", values.join(","))).unwrap();
    // Three rows a statement; five statements go to the jobs before the
    // mail log (one each, nothing to do), two to the mail log.
    env.set_var("jobs_batch_rows", "3").set_var("jobs_max_batches", "7");
    let r = run(&env);
    assert_eq!((r.removed("mail_log"), r.batches, r.complete), (6, 7, false), "{r:?}");
    assert_eq!(r.removed("link_stats"), 0, "a job the budget did not reach reports 0");
    assert_eq!(count(&env, "SELECT count(*) FROM mail_log"), 5);
    env.set_var("jobs_max_batches", "20");
    let r = run(&env);
    // 4 left old: two statements of 3 and 1 (the short one ends the job).
    assert_eq!((r.removed("mail_log"), r.complete), (4, true), "{r:?}");
    assert_eq!(count(&env, "SELECT count(*) FROM mail_log"), 1, "the new row stays");
}

#[test]
fn pending_fans_go_in_whole_groups() {
    let mut env = env();
    let now = env.now_ms();
    for i in 0..5 {
        fan(&env, &format!("p{i}"), "pending", now - 40 * DAY + i);
    }
    env.set_var("jobs_batch_rows", "2");
    let r = run(&env);
    assert_eq!(r.removed("pending_signups"), 5);
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 0);
    assert_eq!(count(&env, "SELECT count(*) FROM consent_events"), 0);
    assert_eq!(count(&env, "SELECT count(*) FROM mail_log"), 0);
}

#[test]
fn the_report_is_one_json_line() {
    let env = env();
    let now = env.now_ms();
    fan(&env, "old", "pending", now - 31 * DAY);
    let r = run(&env);
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["job"], "retention");
    assert_eq!(v["removed"]["pending_signups"], 1);
    assert_eq!(v["removed"]["link_stats"], 0);
    assert_eq!(v["complete"], true);
    assert!(v["elapsed_ms"].is_i64());
    let keys: Vec<_> = v["removed"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), retention::JOBS.len());
}

fn send(env: &NativeEnv, method: Method, path: &str, auth: Option<&str>) -> Response {
    let mut b = HttpRequest::builder().method(method).uri(path);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    block_on(crate::handle(b.body(Vec::new()).unwrap(), env))
}

#[test]
fn the_route_answers_only_with_the_secret() {
    let mut env = env();
    let now = env.now_ms();
    fan(&env, "old", "pending", now - 31 * DAY);
    // No secret configured: the route does not exist.
    assert_eq!(send(&env, Method::POST, "/jobs/run", Some("Bearer ")).status(), 404);
    env.set_var("jobs_secret", "s3cret-for-tests-only");
    for auth in [None, Some("Bearer wrong"), Some("Bearer s3cret-for-tests-onl"), Some("s3cret-for-tests-only"), Some("Basic s3cret-for-tests-only")] {
        let res = send(&env, Method::POST, "/jobs/run", auth);
        assert_eq!(res.status(), 401, "{auth:?}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        assert!(!String::from_utf8_lossy(res.body()).contains("secret"), "no hint");
    }
    assert_eq!(send(&env, Method::POST, "/jobs/other", Some("Bearer s3cret-for-tests-only")).status(), 404);
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 1, "nothing ran");
    let res = send(&env, Method::GET, "/jobs/run", Some("Bearer s3cret-for-tests-only"));
    assert_eq!((res.status().as_u16(), &res.headers()["allow"]), (405, &"POST".parse::<shared::http::HeaderValue>().unwrap()));
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 1, "GET runs nothing");
    let res = send(&env, Method::POST, "/jobs/run", Some("Bearer s3cret-for-tests-only"));
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(v["removed"]["pending_signups"], 1);
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 0);
    assert_eq!(env.info.borrow().len(), 1, "one log line per run");
    assert!(env.errors.borrow().is_empty(), "{:?}", env.errors.borrow());
}

#[test]
fn scheduled_runs_and_logs_one_line() {
    let env = env();
    let now = env.now_ms();
    fan(&env, "old", "pending", now - 31 * DAY);
    block_on(crate::scheduled(&env)).unwrap();
    let info = env.info.borrow();
    assert_eq!(info.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&info[0]).unwrap();
    assert_eq!(v["removed"]["pending_signups"], 1);
}

/// The native environment with a clock that moves `step_ms` every time it
/// is read, as a slow database would make it move between statements.
struct Ticking<'a> {
    inner: &'a NativeEnv,
    step_ms: i64,
}

impl Env for Ticking<'_> {
    type Db = <NativeEnv as Env>::Db;
    type Kv = <NativeEnv as Env>::Kv;
    type Later = NativeEnv;
    fn db(&self) -> &Self::Db {
        self.inner.db()
    }
    fn kv(&self) -> &Self::Kv {
        self.inner.kv()
    }
    fn later(&self) -> NativeEnv {
        self.inner.later()
    }
    fn var(&self, name: &str) -> Option<String> {
        self.inner.var(name)
    }
    fn now_ms(&self) -> i64 {
        self.inner.advance_ms(self.step_ms);
        self.inner.now_ms()
    }
    fn random(&self, buf: &mut [u8]) -> Result<(), shared::Error> {
        self.inner.random(buf)
    }
    fn client(&self) -> &shared::Client {
        self.inner.client()
    }
    fn place(&self) -> shared::geo::Place {
        self.inner.place()
    }
    fn geo_attribution(&self) -> Option<(&'static str, &'static str)> {
        None
    }
    async fn fetch(&self, req: shared::Request) -> Result<Response, shared::Error> {
        self.inner.fetch(req).await
    }
    async fn fetch_untrusted(&self, req: shared::Request, timeout_ms: u32) -> Result<Response, shared::Error> {
        self.inner.fetch_untrusted(req, timeout_ms).await
    }
    async fn sleep_ms(&self, ms: u32) {
        self.inner.sleep_ms(ms).await
    }
    fn fetch_later(&self, req: shared::Request, on_failure: Vec<shared::sql::OwnedStmt>) {
        self.inner.fetch_later(req, on_failure)
    }
    fn defer(&self, work: impl std::future::Future<Output = ()> + 'static) {
        self.inner.defer(work)
    }
    fn defer_writes(&self, next: impl FnMut() -> Vec<shared::sql::OwnedStmt> + 'static) {
        self.inner.defer_writes(next)
    }
    fn log_error(&self, msg: &str) {
        self.inner.log_error(msg)
    }
}

#[test]
fn the_time_budget_stops_a_run() {
    let mut env = env();
    let now = env.now_ms();
    let values: Vec<String> = (0..10).map(|i| format!("('f1', 'a1', 'confirm', {})", now - 100 * DAY - i)).collect();
    fan(&env, "f1", "subscribed", now);
    env.db.conn().execute_batch(&format!("INSERT INTO mail_log (fan_id, artist_id, kind, at) VALUES {}", values.join(","))).unwrap();
    env.set_var("jobs_batch_rows", "1").set_var("jobs_max_batches", "1000").set_var("jobs_time_budget_ms", "1000");
    // Every read of the clock costs 100 ms: the budget is gone after a
    // handful of statements, long before the 10 old rows are.
    let r = block_on(retention::run(&Ticking { inner: &env, step_ms: 100 }));
    assert!(!r.complete, "{r:?}");
    assert!(r.batches < 10, "{r:?}");
    assert!(r.elapsed_ms >= 1000, "{r:?}");
    // Without the slow clock the next run finishes the work.
    let r = run(&env);
    assert!(r.complete, "{r:?}");
    assert_eq!(count(&env, &format!("SELECT count(*) FROM mail_log WHERE at < {now} - 90 * 86400000")), 0);
    assert_eq!(count(&env, "SELECT count(*) FROM mail_log"), 1, "the new row stays");
}

#[test]
fn webhook_attempts_and_finished_messages_older_than_90_days_go_pending_ones_stay() {
    let env = env();
    let now = env.now_ms();
    let (old, edge) = (now - 90 * DAY - 1, now - 90 * DAY);
    env.db
        .conn()
        .execute_batch(&format!(
            "INSERT INTO webhook_endpoints (id, artist_id, url, events, secret_enc, created_at, updated_at) VALUES ('e1', 'a1', 'https://h.example.com/', '*', 'x', 0, 0);
             INSERT INTO webhook_messages (id, artist_id, endpoint_id, event_id, type, payload, status, next_at, created_at) VALUES
               ('m-old-done', 'a1', 'e1', 'c1', 'test', '{{}}', 'delivered', 0, {old}),
               ('m-old-failed', 'a1', 'e1', 'c2', 'test', '{{}}', 'failed', 0, {old}),
               ('m-old-pending', 'a1', 'e1', 'c3', 'test', '{{}}', 'pending', {later}, {old}),
               ('m-edge-done', 'a1', 'e1', 'c4', 'test', '{{}}', 'delivered', 0, {edge});
             INSERT INTO webhook_attempts (id, message_id, artist_id, at, status, latency_ms) VALUES
               ('a-old', 'm-old-pending', 'a1', {old}, 500, 1), ('a-edge', 'm-old-pending', 'a1', {edge}, 500, 1),
               ('a-of-old-done', 'm-old-done', 'a1', {edge}, 200, 1);
             INSERT INTO inbound_webhooks (provider, msg_id, received_at) VALUES
               ('resend', 'in-old', {in_old}), ('resend', 'in-edge', {in_edge});",
            later = now + DAY,
            in_old = now - 7 * DAY - 1,
            in_edge = now - 7 * DAY,
        ))
        .unwrap();
    let r = run(&env);
    assert_eq!((r.removed("webhook_attempts"), r.removed("webhook_messages"), r.removed("inbound_webhooks")), (1, 2, 1), "{r:?}");
    assert_eq!(ids(&env, "SELECT id FROM webhook_messages"), ["m-edge-done", "m-old-pending"], "still being tried, or not old enough");
    assert_eq!(ids(&env, "SELECT id FROM webhook_attempts"), ["a-edge"], "a deleted message's attempts go with it");
    assert_eq!(ids(&env, "SELECT msg_id FROM inbound_webhooks"), ["in-edge"]);
}

#[test]
fn unconfirmed_signups_take_their_webhook_messages_and_mail_events_with_them() {
    let env = env();
    let now = env.now_ms();
    fan(&env, "old-pending", "pending", now - 31 * DAY);
    env.db
        .conn()
        .execute_batch(
            "INSERT INTO webhook_endpoints (id, artist_id, url, events, secret_enc, created_at, updated_at) VALUES ('e1', 'a1', 'https://h.example.com/', '*', 'x', 0, 0);
             INSERT INTO webhook_messages (id, artist_id, endpoint_id, event_id, type, fan_id, payload, status, next_at, created_at)
               VALUES ('m1', 'a1', 'e1', 'c1', 'fan.subscribed', 'old-pending', '{}', 'failed', 0, 0);
             INSERT INTO webhook_attempts (id, message_id, artist_id, at, status, latency_ms) VALUES ('a1', 'm1', 'a1', 0, 500, 1);
             INSERT INTO mail_events (id, fan_id, artist_id, kind, bounce_type, provider, provider_msg_id, at)
               VALUES ('me1', 'old-pending', 'a1', 'bounce', 'transient', 'resend', 'x', 0);",
        )
        .unwrap();
    let r = run(&env);
    assert_eq!(r.removed("pending_signups"), 1);
    for table in ["fans", "webhook_messages", "webhook_attempts", "mail_events"] {
        assert_eq!(count(&env, &format!("SELECT count(*) FROM {table}")), 0, "{table}");
    }
}

#[test]
fn used_or_expired_privacy_requests_go_at_once_live_ones_stay() {
    let env = env();
    let now = env.now_ms();
    fan(&env, "f1", "subscribed", now);
    env.db
        .conn()
        .execute_batch(&format!(
            "INSERT INTO privacy_requests (id, artist_id, fan_id, kind, token_hash, created_at, expires_at, used_at) VALUES
               ('r-used', 'a1', 'f1', 'erase', 'h1', {n}, {later}, {n}),
               ('r-expired', 'a1', 'f1', 'access', 'h2', {n}, {n}, NULL),
               ('r-live', 'a1', 'f1', 'access', 'h3', {n}, {later}, NULL);",
            n = now,
            later = now + 1,
        ))
        .unwrap();
    let r = run(&env);
    assert_eq!(ids(&env, "SELECT id FROM privacy_requests"), ["r-live"]);
    assert_eq!(r.removed("privacy_requests"), 2);
    assert_eq!(count(&env, "SELECT count(*) FROM fans"), 1, "the fan stays");
}
