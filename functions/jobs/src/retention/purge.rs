//! The purge of deleted workspaces (job `deleted_workspaces`; README
//! "Deleting a workspace"). The dashboard's deletion already removed what
//! let anyone reach the workspace; once the deletion is older than its
//! window, this removes every row still naming the artist, children
//! first, in bounded statements, so a long fan list never becomes one huge
//! write. A run that stops half way leaves the deletion's record, and the
//! next run goes on where it stopped: the record goes last, in one batch
//! with the artist's own row.
//!
//! KV: the only keys naming a workspace are its links' copies
//! (`link:{slug}`), dropped by the deletion and expiring within an hour in
//! any case; a link row still here (written by a request racing the
//! deletion) has its copy dropped with it. Rate-limit windows are keyed by
//! capture page (`signup-page:{id}`) or by a keyed hash of the client's
//! address, which names no artist (and ends within its window).

use shared::sql::{Param, Stmt};
use shared::{Db, Env, Error, Kv};

use super::{Run, DAY_MS};

const JOB: &str = "deleted_workspaces";

/// The oldest deletion due: past the purge time recorded with it, or
/// older than the window set now, whichever comes first.
const DUE: &str = "SELECT artist_id FROM workspace_deletions WHERE purge_after <= ?1 OR requested_at <= ?2 ORDER BY requested_at, artist_id LIMIT 1";

/// A group of the artist's (`?1`) fans, at most `?2`: the same fans in
/// every statement of one atomic batch, so a fan goes with its children.
const FANS: &str = "SELECT id FROM fans WHERE artist_id = ?1 ORDER BY created_at, id LIMIT ?2";
/// Fans per group: each brings its consent events, mail and the rest.
const FANS_PER_GROUP: i64 = 100;

fn fan_stmts() -> [String; 9] {
    [
        format!("DELETE FROM fan_names WHERE fan_id IN ({FANS}) RETURNING 1"),
        format!("DELETE FROM consent_events WHERE fan_id IN ({FANS}) RETURNING 1"),
        format!("DELETE FROM mail_log WHERE fan_id IN ({FANS}) RETURNING 1"),
        format!("DELETE FROM mail_events WHERE fan_id IN ({FANS}) RETURNING 1"),
        format!("DELETE FROM fan_restrictions WHERE fan_id IN ({FANS}) RETURNING 1"),
        format!("DELETE FROM privacy_requests WHERE fan_id IN ({FANS}) RETURNING 1"),
        format!("DELETE FROM webhook_attempts WHERE message_id IN (SELECT id FROM webhook_messages WHERE fan_id IN ({FANS})) RETURNING 1"),
        format!("DELETE FROM webhook_messages WHERE fan_id IN ({FANS}) RETURNING 1"),
        format!("DELETE FROM fans WHERE id IN ({FANS}) RETURNING 1"),
    ]
}

/// The dashboard's counts (schema/0014), first and by artist: their
/// triggers then find nothing left to move as the counted rows go, so
/// every row removed is counted here. A fan's late unsubscribe can add one
/// back after this; it drops to 0, and goes, with the last row it counts.
const AGGREGATES: [&str; 6] = [
    "DELETE FROM agg_fan_status WHERE (artist_id, status) IN (SELECT artist_id, status FROM agg_fan_status WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM agg_fan_place WHERE (artist_id, country, region, city) IN \
     (SELECT artist_id, country, region, city FROM agg_fan_place WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM agg_fan_page WHERE (artist_id, page_id) IN (SELECT artist_id, page_id FROM agg_fan_page WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM agg_consent_daily WHERE (artist_id, day, page_id, kind) IN \
     (SELECT artist_id, day, page_id, kind FROM agg_consent_daily WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM agg_link_daily WHERE (link_id, day, kind, dim, value) IN \
     (SELECT link_id, day, kind, dim, value FROM agg_link_daily WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM agg_link_artist_daily WHERE (artist_id, day, kind, platform) IN \
     (SELECT artist_id, day, kind, platform FROM agg_link_artist_daily WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
];

/// The artist's links still here (their KV copies go first, see
/// [`Run::purge_links`]).
const LINKS: &str = "SELECT id, slug FROM links WHERE artist_id = ?1 LIMIT ?2";
const DELETE_LINKS: &str = "DELETE FROM links WHERE artist_id = ?1 AND id IN (SELECT value FROM json_each(?2))";

/// Everything else, children first, in one batch repeated until each
/// statement removes fewer than `?2` rows of artist `?1` (one statement of
/// the run's budget per round, so a small budget still gets through).
/// Most of it went at the deletion; what is left was written by a request
/// racing it, or kept until now on purpose (erasure notes, the consent
/// texts fans agreed to).
const REST: [&str; 16] = [
    "DELETE FROM link_stats WHERE (link_id, day, kind, platform, country, referrer, device) IN \
     (SELECT s.link_id, s.day, s.kind, s.platform, s.country, s.referrer, s.device FROM links l JOIN link_stats s ON s.link_id = l.id \
     WHERE l.artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM erasures WHERE rowid IN (SELECT rowid FROM erasures WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM consent_versions WHERE (page_id, version) IN \
     (SELECT page_id, version FROM consent_versions WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM webhook_attempts WHERE rowid IN \
     (SELECT a.rowid FROM webhook_messages m JOIN webhook_attempts a ON a.message_id = m.id WHERE m.artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM webhook_messages WHERE rowid IN (SELECT rowid FROM webhook_messages WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM webhook_endpoints WHERE rowid IN (SELECT rowid FROM webhook_endpoints WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    // Keyed as functions/signup/src/input.rs keys a page's window.
    "DELETE FROM rate_windows WHERE (key, slot) IN \
     (SELECT w.key, w.slot FROM capture_pages p JOIN rate_windows w ON w.key = 'signup-page:' || p.id WHERE p.artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM capture_page_looks WHERE page_id IN (SELECT page_id FROM capture_page_looks WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM capture_pages WHERE rowid IN (SELECT rowid FROM capture_pages WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM sessions WHERE rowid IN (SELECT s.rowid FROM users u JOIN sessions s ON s.user_id = u.id WHERE u.artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM recovery_codes WHERE (user_id, code_hash) IN \
     (SELECT c.user_id, c.code_hash FROM users u JOIN recovery_codes c ON c.user_id = u.id WHERE u.artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM sign_in_links WHERE rowid IN \
     (SELECT l.rowid FROM users u JOIN sign_in_links l ON l.user_id = u.id WHERE u.artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM users WHERE rowid IN (SELECT rowid FROM users WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM api_token_use WHERE rowid IN \
     (SELECT u.rowid FROM api_tokens t JOIN api_token_use u ON u.token_id = t.id WHERE t.artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM api_tokens WHERE rowid IN (SELECT rowid FROM api_tokens WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
    "DELETE FROM artist_settings WHERE rowid IN (SELECT rowid FROM artist_settings WHERE artist_id = ?1 LIMIT ?2) RETURNING 1",
];

impl<E: Env> Run<'_, E> {
    /// Purges the deletions that are due, oldest first, until none is
    /// left or the run is spent.
    pub(super) async fn deleted_workspaces(&mut self, now: i64) -> Result<(), Error> {
        self.count(JOB, 0);
        let due = [Param::Int(now), Param::Int(now - self.s.deleted_workspace_days * DAY_MS)];
        loop {
            if self.spent() {
                self.report.complete = false;
                return Ok(());
            }
            self.report.batches += 1;
            let rows = self.env.db().query(DUE, &due).await?;
            let Some(artist) = rows.into_iter().next().and_then(|mut r| r.take_text(0)) else { return Ok(()) };
            if !self.purge(&artist).await? {
                return Ok(());
            }
        }
    }

    /// One workspace; false when the run was spent before it was through.
    /// Every step is repeatable, so the next run simply starts again.
    async fn purge(&mut self, artist: &str) -> Result<bool, Error> {
        if !self.rounds(&AGGREGATES, [Param::Text(artist), Param::Int(self.s.batch_rows)], false).await? {
            return Ok(false);
        }
        let group = FANS_PER_GROUP.min(self.s.batch_rows);
        let fans = fan_stmts();
        if !self.rounds(&fans.each_ref().map(String::as_str), [Param::Text(artist), Param::Int(group)], true).await? {
            return Ok(false);
        }
        if !self.rounds(&REST, [Param::Text(artist), Param::Int(self.s.batch_rows)], false).await? || !self.purge_links(artist).await? {
            return Ok(false);
        }
        if self.spent() {
            self.report.complete = false;
            return Ok(false);
        }
        self.report.batches += 1;
        let one = [Param::Text(artist)];
        let last = self
            .env
            .db()
            .batch(&[
                Stmt::new("DELETE FROM artists WHERE id = ?1 RETURNING 1", &one),
                Stmt::new("DELETE FROM workspace_deletions WHERE artist_id = ?1 RETURNING 1", &one),
            ])
            .await?;
        self.count(JOB, last.iter().map(Vec::len).sum::<usize>() as u64);
        Ok(true)
    }

    /// Runs `stmts` as one atomic batch until a round removes fewer than
    /// the limit (`params[1]`): in the last statement when `by_last` (a
    /// group of fans), else in every one. False when the run was spent.
    async fn rounds(&mut self, stmts: &[&str], params: [Param<'_>; 2], by_last: bool) -> Result<bool, Error> {
        let limit = match params[1] {
            Param::Int(n) => n as usize,
            _ => 0,
        };
        loop {
            if self.spent() {
                self.report.complete = false;
                return Ok(false);
            }
            self.report.batches += 1;
            let batch: Vec<Stmt<'_>> = stmts.iter().map(|sql| Stmt::new(sql, &params)).collect();
            let out = self.env.db().batch(&batch).await?;
            self.count(JOB, out.iter().map(Vec::len).sum::<usize>() as u64);
            let full = if by_last { out.last().is_some_and(|r| r.len() >= limit) } else { out.iter().any(|r| r.len() >= limit) };
            if !full {
                return Ok(true);
            }
        }
    }

    /// The artist's links still here, their KV copies first: a KV failure
    /// fails the job with the rows kept (the operator sees it, and the next
    /// run tries again).
    async fn purge_links(&mut self, artist: &str) -> Result<bool, Error> {
        let params = [Param::Text(artist), Param::Int(self.s.batch_rows)];
        loop {
            if self.spent() {
                self.report.complete = false;
                return Ok(false);
            }
            self.report.batches += 2;
            let rows = self.env.db().query(LINKS, &params).await?;
            for slug in rows.iter().filter_map(|r| r.text(1)) {
                // The key of functions/links/src/store.rs `kv_key`.
                self.env.kv().delete(&format!("link:{slug}")).await?;
            }
            let ids = serde_json::Value::from(rows.iter().filter_map(|r| r.text(0)).collect::<Vec<_>>()).to_string();
            let n = self.env.db().execute(DELETE_LINKS, &[Param::Text(artist), Param::Text(&ids)]).await?;
            self.count(JOB, n);
            if (rows.len() as i64) < self.s.batch_rows {
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests;
