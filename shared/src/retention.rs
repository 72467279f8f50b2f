//! The retention windows the privacy policy promises, as named settings:
//! one parser for the `jobs` function that enforces them and the privacy
//! page (`functions/dashboard`) that tells fans about them, so what fans
//! read is what is done.

use crate::Env;

/// The named settings (Spin variables / Worker vars, upper-cased there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `retention_link_stats_months`: click counters (`link_stats.day`).
    pub link_stats_months: i64,
    /// `retention_mail_log_days`: mail sent to fans (`mail_log.at`).
    pub mail_log_days: i64,
    /// `retention_pending_signup_days`: unconfirmed double opt-in signups.
    pub pending_signup_days: i64,
    /// `retention_webhook_days`: outbound webhook attempts, and messages
    /// that are delivered or failed (`webhook_attempts.at`,
    /// `webhook_messages.created_at`).
    pub webhook_days: i64,
    /// `retention_inbound_webhook_days`: provider message ids kept to
    /// answer replays (`inbound_webhooks.received_at`).
    pub inbound_webhook_days: i64,
    /// `retention_deleted_workspace_days`: how long a deleted workspace's
    /// remaining data (fans, their history, counters) is kept before the
    /// purge removes everything naming the artist.
    pub deleted_workspace_days: i64,
    /// `jobs_batch_rows`: rows per DELETE statement.
    pub batch_rows: i64,
    /// `jobs_max_batches`: statements per run (D1 counts queries per
    /// invocation: 50 on the free plan, 1,000 on paid ones).
    pub max_batches: u32,
    /// `jobs_time_budget_ms`: no new statement starts after this long.
    pub time_budget_ms: i64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            link_stats_months: 12,
            mail_log_days: 90,
            pending_signup_days: 30,
            webhook_days: 90,
            inbound_webhook_days: 7,
            deleted_workspace_days: 30,
            batch_rows: 500,
            max_batches: 40,
            time_budget_ms: 20_000,
        }
    }
}

impl Settings {
    /// Each setting from the environment; a missing, unparsable or
    /// non-positive value keeps the default.
    pub fn from_env(env: &impl Env) -> Settings {
        let d = Settings::default();
        let num = |name: &str, default: i64| env.var(name).and_then(|v| v.trim().parse::<i64>().ok()).filter(|v| *v > 0).unwrap_or(default);
        Settings {
            link_stats_months: num("retention_link_stats_months", d.link_stats_months).min(12 * 1000),
            mail_log_days: num("retention_mail_log_days", d.mail_log_days).min(365 * 1000),
            pending_signup_days: num("retention_pending_signup_days", d.pending_signup_days).min(365 * 1000),
            webhook_days: num("retention_webhook_days", d.webhook_days).min(365 * 1000),
            inbound_webhook_days: num("retention_inbound_webhook_days", d.inbound_webhook_days).min(365 * 1000),
            deleted_workspace_days: num("retention_deleted_workspace_days", d.deleted_workspace_days).min(365 * 1000),
            batch_rows: num("jobs_batch_rows", d.batch_rows).min(10_000),
            max_batches: u32::try_from(num("jobs_max_batches", i64::from(d.max_batches)).min(10_000)).unwrap_or(d.max_batches),
            time_budget_ms: num("jobs_time_budget_ms", d.time_budget_ms).min(15 * 60 * 1000),
        }
    }
}
