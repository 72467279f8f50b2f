//! Retention: deletes what the privacy policy says is kept no longer.
//!
//! Each job removes exactly the rows older than its window and nothing
//! newer, in statements of at most `jobs_batch_rows` rows (a `LIMIT`ed
//! sub-select on the primary key: SQLite's `DELETE … LIMIT` is a compile
//! option D1 lacks). A run stops at `jobs_max_batches` statements or after
//! `jobs_time_budget_ms`, whichever comes first, and says whether it got
//! through everything due (`"complete"`); the next run goes on.

use shared::sql::{Param, Stmt};
use shared::{Db, Env, Error};

mod purge;

const DAY_MS: i64 = 86_400_000;

/// The named settings, parsed once for every reader of them (the
/// dashboard's privacy page states them to fans).
pub use shared::retention::Settings;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Job name → rows removed, in the order the jobs ran.
    pub removed: Vec<(&'static str, u64)>,
    /// Statements run.
    pub batches: u32,
    pub elapsed_ms: i64,
    /// False when the budget ran out before every job was through.
    pub complete: bool,
    /// Jobs that failed (their error went to the error log).
    pub failed: Vec<&'static str>,
    /// What the outbound webhook delivery did first, in the same run.
    pub webhooks: Option<shared::outbox::Report>,
}

impl Report {
    pub fn removed(&self, job: &str) -> u64 {
        self.removed.iter().find(|(n, _)| *n == job).map_or(0, |(_, c)| *c)
    }

    /// `{"job":"retention","removed":{…},"batches":n,"elapsed_ms":n,"complete":b,"failed":[…],"webhooks":{…}}`
    pub fn to_json(&self) -> String {
        let removed: serde_json::Map<String, serde_json::Value> = self.removed.iter().map(|(n, c)| ((*n).to_owned(), (*c).into())).collect();
        let webhooks = self
            .webhooks
            .as_ref()
            .map(|w| serde_json::json!({"delivered": w.delivered, "retrying": w.retrying, "failed": w.failed, "disabled_endpoints": w.disabled_endpoints}));
        serde_json::json!({
            "job": "retention",
            "removed": removed,
            "batches": self.batches,
            "elapsed_ms": self.elapsed_ms,
            "complete": self.complete,
            "failed": self.failed,
            "webhooks": webhooks,
        })
        .to_string()
    }
}

/// The jobs, in the order they run.
pub const JOBS: &[&str] = &[
    "sessions",
    "sign_in_links",
    "api_token_use",
    "rate_windows",
    "pending_signups",
    "mail_log",
    "link_stats",
    "privacy_requests",
    "webhook_attempts",
    "webhook_messages",
    "inbound_webhooks",
    "deleted_workspaces",
];

// Each takes its cutoff(s) and, last, the row limit.
const SESSIONS: &str = "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE last_seen_at <= ?1 OR created_at <= ?2 LIMIT ?3)";
const SIGN_IN_LINKS: &str = "DELETE FROM sign_in_links WHERE rowid IN \
     (SELECT rowid FROM sign_in_links WHERE (expires_at <= ?1 OR used_at IS NOT NULL) AND created_at <= ?2 LIMIT ?3)";
// Fans' privacy links (schema/0012): nothing to keep once used or expired;
// their limits are counted in rate_windows, not here.
const PRIVACY_REQUESTS: &str =
    "DELETE FROM privacy_requests WHERE id IN (SELECT id FROM privacy_requests WHERE used_at IS NOT NULL OR expires_at <= ?1 LIMIT ?2)";
const API_TOKEN_USE: &str = "DELETE FROM api_token_use WHERE rowid IN \
     (SELECT u.rowid FROM api_token_use u JOIN api_tokens t ON t.id = u.token_id WHERE t.revoked_at IS NOT NULL AND t.revoked_at <= ?1 LIMIT ?2)";
const RATE_WINDOWS: &str = "DELETE FROM rate_windows WHERE (key, slot) IN (SELECT key, slot FROM rate_windows WHERE expires_at <= ?1 LIMIT ?2)";
const MAIL_LOG: &str = "DELETE FROM mail_log WHERE id IN (SELECT id FROM mail_log WHERE at < ?1 LIMIT ?2)";
const WEBHOOK_ATTEMPTS: &str = "DELETE FROM webhook_attempts WHERE id IN (SELECT id FROM webhook_attempts WHERE at < ?1 LIMIT ?2)";
// Pending messages stay whatever their age: they are still being tried.
// Their attempts go with them (foreign key cascade, on on every engine).
const WEBHOOK_MESSAGES: &str =
    "DELETE FROM webhook_messages WHERE id IN (SELECT id FROM webhook_messages WHERE status <> 'pending' AND created_at < ?1 LIMIT ?2)";
const INBOUND_WEBHOOKS: &str = "DELETE FROM inbound_webhooks WHERE (provider, msg_id) IN \
     (SELECT provider, msg_id FROM inbound_webhooks WHERE received_at < ?1 LIMIT ?2)";
const LINK_STATS: &str = "DELETE FROM link_stats WHERE (link_id, day, kind, platform, country, referrer, device) IN \
     (SELECT link_id, day, kind, platform, country, referrer, device FROM link_stats WHERE day < ?1 LIMIT ?2)";

/// One group of unconfirmed signups: the same fans (the oldest first, at
/// most ?2) in every statement, children first, in one atomic batch, so a
/// fan is never left half deleted, and a fan who confirms meanwhile is not
/// in the group at all.
const PENDING_GROUP: &str = "SELECT id FROM fans WHERE status = 'pending' AND created_at < ?1 ORDER BY created_at, id LIMIT ?2";
fn pending_stmts() -> [String; 7] {
    [
        format!("DELETE FROM mail_log WHERE fan_id IN ({PENDING_GROUP}) RETURNING id AS gone_mail"),
        format!("DELETE FROM mail_events WHERE fan_id IN ({PENDING_GROUP}) RETURNING id AS gone_mail_event"),
        format!(
            "DELETE FROM webhook_attempts WHERE message_id IN (SELECT id FROM webhook_messages WHERE fan_id IN ({PENDING_GROUP})) RETURNING id AS gone_attempt"
        ),
        format!("DELETE FROM webhook_messages WHERE fan_id IN ({PENDING_GROUP}) RETURNING id AS gone_message"),
        format!("DELETE FROM consent_events WHERE fan_id IN ({PENDING_GROUP}) RETURNING id AS gone_event"),
        format!("DELETE FROM fan_restrictions WHERE fan_id IN ({PENDING_GROUP}) RETURNING fan_id AS gone_restriction"),
        format!("DELETE FROM fans WHERE id IN ({PENDING_GROUP}) RETURNING id AS gone_fan"),
    ]
}

/// Fans per group: their consent events and mail ride in the same batch.
const PENDING_FANS_PER_GROUP: i64 = 100;

/// The first day (`YYYY-MM-DD`, UTC) link counters are kept for: the same
/// date `months` calendar months before `now_ms` (the 31st becomes the
/// month's last day). Days before it are removed.
pub fn link_stats_cutoff(now_ms: i64, months: i64) -> String {
    let (y, m, d) = shared::date::civil_from_days(now_ms.div_euclid(DAY_MS));
    let (m, d) = (i64::from(m), i64::from(d));
    let total = y * 12 + (m - 1) - months;
    let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let d = d.min(month_len(y, m));
    format!("{y:04}-{m:02}-{d:02}")
}

fn month_len(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

struct Run<'e, E: Env> {
    env: &'e E,
    s: Settings,
    started: i64,
    report: Report,
}

impl<E: Env> Run<'_, E> {
    fn spent(&self) -> bool {
        self.report.batches >= self.s.max_batches || self.env.now_ms() - self.started >= self.s.time_budget_ms
    }

    fn count(&mut self, job: &'static str, n: u64) {
        match self.report.removed.iter_mut().find(|(name, _)| *name == job) {
            Some((_, c)) => *c += n,
            None => self.report.removed.push((job, n)),
        }
    }

    /// Runs `sql` (its last parameter the row limit) until it removes fewer
    /// rows than the limit, or the run is spent.
    async fn drain(&mut self, job: &'static str, sql: &str, cutoffs: &[Param<'_>]) -> Result<(), Error> {
        self.count(job, 0);
        let mut params = cutoffs.to_vec();
        params.push(Param::Int(self.s.batch_rows));
        loop {
            if self.spent() {
                self.report.complete = false;
                return Ok(());
            }
            self.report.batches += 1;
            let n = self.env.db().execute(sql, &params).await?;
            self.count(job, n);
            if n < self.s.batch_rows as u64 {
                return Ok(());
            }
        }
    }

    async fn pending_signups(&mut self, cutoff: i64) -> Result<(), Error> {
        self.count("pending_signups", 0);
        let stmts = pending_stmts();
        let group = PENDING_FANS_PER_GROUP.min(self.s.batch_rows);
        let params = [Param::Int(cutoff), Param::Int(group)];
        loop {
            if self.spent() {
                self.report.complete = false;
                return Ok(());
            }
            self.report.batches += 1;
            let batch: Vec<Stmt<'_>> = stmts.iter().map(|sql| Stmt::new(sql, &params)).collect();
            let out = self.env.db().batch(&batch).await?;
            let fans = out.last().map_or(0, Vec::len) as u64;
            self.count("pending_signups", fans);
            if fans < group as u64 {
                return Ok(());
            }
        }
    }

    async fn job(&mut self, job: &'static str) -> Result<(), Error> {
        let now = self.env.now_ms();
        match job {
            "sessions" => {
                // Exactly what `shared::auth::load_session` refuses.
                let a = shared::auth::Settings::from_env(self.env);
                self.drain(job, SESSIONS, &[Param::Int(now - a.idle_ms), Param::Int(now - a.absolute_ms)]).await
            }
            "sign_in_links" => {
                // Expired or used, and no longer counted by the sign-in
                // limits (which count rows created within their window).
                let a = shared::auth::Settings::from_env(self.env);
                let window_ms = i64::from(a.address_limit.window_secs.max(a.client_limit.window_secs)) * 1000;
                self.drain(job, SIGN_IN_LINKS, &[Param::Int(now), Param::Int(now - window_ms)]).await
            }
            "privacy_requests" => self.drain(job, PRIVACY_REQUESTS, &[Param::Int(now)]).await,
            "api_token_use" => self.drain(job, API_TOKEN_USE, &[Param::Int(now)]).await,
            "rate_windows" => self.drain(job, RATE_WINDOWS, &[Param::Int(now)]).await,
            "pending_signups" => self.pending_signups(now - self.s.pending_signup_days * DAY_MS).await,
            "mail_log" => self.drain(job, MAIL_LOG, &[Param::Int(now - self.s.mail_log_days * DAY_MS)]).await,
            "link_stats" => {
                let cutoff = link_stats_cutoff(now, self.s.link_stats_months);
                self.drain(job, LINK_STATS, &[Param::Text(&cutoff)]).await
            }
            "webhook_attempts" => self.drain(job, WEBHOOK_ATTEMPTS, &[Param::Int(now - self.s.webhook_days * DAY_MS)]).await,
            "webhook_messages" => self.drain(job, WEBHOOK_MESSAGES, &[Param::Int(now - self.s.webhook_days * DAY_MS)]).await,
            "inbound_webhooks" => self.drain(job, INBOUND_WEBHOOKS, &[Param::Int(now - self.s.inbound_webhook_days * DAY_MS)]).await,
            "deleted_workspaces" => self.deleted_workspaces(now).await,
            _ => Ok(()),
        }
    }
}

/// Runs every retention job once. Never fails as a whole: a job that
/// fails is logged and listed in [`Report::failed`], and the others run.
pub async fn run(env: &impl Env) -> Report {
    let s = Settings::from_env(env);
    let started = env.now_ms();
    let mut run = Run { env, s, started, report: Report { complete: true, ..Report::default() } };
    for &job in JOBS {
        if let Err(e) = run.job(job).await {
            env.log_error(&format!("jobs: retention {job}: {e}"));
            run.report.failed.push(job);
        }
    }
    run.report.elapsed_ms = env.now_ms() - started;
    run.report
}
