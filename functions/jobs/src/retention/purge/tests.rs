//! The purge of deleted workspaces against the real SQLite engine: a
//! workspace with a row in every table that can name an artist is deleted
//! beside another that is kept; nothing goes before the window, after it
//! nothing of the deleted one is left in any table (every table of the
//! schema is read), the kept one is untouched, and a tiny row budget only
//! spreads the work over more runs.

use shared::adapters::native::{block_on, NativeEnv};
use shared::{Env, Kv};

use crate::retention::{self, Report};

const DAY: i64 = 86_400_000;
/// Tables that hold nothing naming an artist: provider message ids.
const NAME_NO_ARTIST: &[&str] = &["inbound_webhooks"];

/// Rows naming the artist `{p}-artist` in every table that can, with
/// `fans` fans; every id and key starts with `{p}-` (or holds it).
fn seed(env: &NativeEnv, p: &str, fans: usize) {
    let now = env.now_ms();
    let (soon, later) = (now + 600_000, now + DAY);
    let today = shared::date::civil_from_days(now.div_euclid(DAY));
    let today = format!("{:04}-{:02}-{:02}", today.0, today.1, today.2);
    let mut sql = format!(
        "INSERT INTO artists VALUES ('{p}-artist', '{p} band', 0);
         INSERT INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
           VALUES ('{p}-page', '{p}-artist', '{p}-page-slug', 'List', 'Send me news.', 'v1', 0, 0, 0);
         INSERT INTO consent_versions (artist_id, page_id, version, consent_text, consent_sha256, created_at)
           VALUES ('{p}-artist', '{p}-page', 'v1', 'Send me news.', NULL, 0);
         INSERT INTO capture_page_looks (page_id, artist_id, artist_image_url, background, button, message, ask_first_name, updated_at)
           VALUES ('{p}-page', '{p}-artist', 'https://{p}.example/a.jpg', '#1e1b4b', '#facc15', 'Hi', 1, 0);
         INSERT INTO links (id, artist_id, slug, definition, created_at, updated_at) VALUES ('{p}-link', '{p}-artist', '{p}-link-slug', '{{}}', 0, 0);
         INSERT INTO link_stats (link_id, artist_id, day, kind, platform, country, referrer, device, count)
           VALUES ('{p}-link', '{p}-artist', '{today}', 'view', '', '', '', 'ios', 1);
         INSERT INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES ('{p}-user', '{p}-artist', 'k1.{p}', '{p}-user-hash', 'owner', 0);
         INSERT INTO recovery_codes (user_id, code_hash) VALUES ('{p}-user', '{p}-code');
         INSERT INTO artist_settings (artist_id, require_totp) VALUES ('{p}-artist', 1);
         INSERT INTO sign_in_links (token_hash, user_id, email_hash, client_hash, created_at, expires_at)
           VALUES ('{p}-sign-in', '{p}-user', '{p}-user-hash', 'client', {now}, {soon});
         INSERT INTO sessions (id_hash, user_id, artist_id, created_at, last_seen_at) VALUES ('{p}-session', '{p}-user', '{p}-artist', {now}, {now});
         INSERT INTO api_tokens (id, artist_id, token_hash, created_at) VALUES ('{p}-token', '{p}-artist', '{p}-token-hash', 0);
         INSERT INTO api_token_use VALUES ('{p}-token', {now});
         INSERT INTO rate_windows (key, slot, count, lim, expires_at) VALUES ('signup-page:{p}-page', 1, 1, 5, {soon});
         INSERT INTO erasures VALUES ('{p}-erasure', '{p}-artist', 0, '{p}-user', 'artist');
         INSERT INTO webhook_endpoints (id, artist_id, url, events, secret_enc, created_at, updated_at)
           VALUES ('{p}-endpoint', '{p}-artist', 'https://{p}.example/hook', '*', 'x', 0, 0);
         INSERT INTO webhook_messages (id, artist_id, endpoint_id, event_id, type, payload, status, next_at, created_at)
           VALUES ('{p}-message', '{p}-artist', '{p}-endpoint', '{p}-event', 'link.created', '{{}}', 'pending', {later}, {now});
         INSERT INTO webhook_attempts (id, message_id, artist_id, at, status, latency_ms) VALUES ('{p}-attempt', '{p}-message', '{p}-artist', {now}, 500, 1);"
    );
    for i in 0..fans {
        sql.push_str(&format!(
            "INSERT INTO fans (id, artist_id, email_enc, email_hash, status, source_page_id, consent_version, created_at, updated_at)
               VALUES ('{p}-fan-{i}', '{p}-artist', 'k1.x', '{p}-fan-hash-{i}', 'subscribed', '{p}-page', 'v1', {now}, {now});
             INSERT INTO consent_events (id, fan_id, artist_id, kind, page_id, method, at) VALUES ('{p}-consent-{i}', '{p}-fan-{i}', '{p}-artist', 'subscribe', '{p}-page', 'single', {now});
             INSERT INTO mail_log (fan_id, artist_id, kind, at) VALUES ('{p}-fan-{i}', '{p}-artist', 'confirm', {now});
             INSERT INTO mail_events (id, fan_id, artist_id, kind, bounce_type, provider, provider_msg_id, at)
               VALUES ('{p}-mail-event-{i}', '{p}-fan-{i}', '{p}-artist', 'bounce', 'transient', 'resend', 'x', {now});
             INSERT INTO fan_restrictions VALUES ('{p}-fan-{i}', '{p}-artist', {now}, '{p}-user');
             INSERT INTO fan_names VALUES ('{p}-fan-{i}', '{p}-artist', 'k1.name', {now});
             INSERT INTO privacy_requests (id, artist_id, fan_id, kind, token_hash, created_at, expires_at)
               VALUES ('{p}-privacy-{i}', '{p}-artist', '{p}-fan-{i}', 'access', '{p}-privacy-hash-{i}', {now}, {later});
             INSERT INTO webhook_messages (id, artist_id, endpoint_id, event_id, type, fan_id, payload, status, next_at, created_at)
               VALUES ('{p}-fan-message-{i}', '{p}-artist', '{p}-endpoint', '{p}-fan-event-{i}', 'fan.subscribed', '{p}-fan-{i}', '{{}}', 'pending', {later}, {now});
             INSERT INTO webhook_attempts (id, message_id, artist_id, at, status, latency_ms)
               VALUES ('{p}-fan-attempt-{i}', '{p}-fan-message-{i}', '{p}-artist', {now}, 500, 1);"
        ));
    }
    env.db.conn().execute_batch(&sql).unwrap();
    block_on(env.kv().put(&format!("link:{p}-link-slug"), b"{}", Some(3600))).unwrap();
}

/// Deletes `gone` as the dashboard records it, `age_ms` ago, with the
/// purge time the default window gives.
fn deleted(env: &NativeEnv, age_ms: i64) {
    let at = env.now_ms() - age_ms;
    env.db
        .conn()
        .execute(
            "INSERT INTO workspace_deletions (artist_id, requested_at, by_user, purge_after) VALUES ('gone-artist', ?1, 'gone-user', ?2)",
            [at, at + 30 * DAY],
        )
        .unwrap();
}

fn world(fans: usize) -> NativeEnv {
    let env = NativeEnv::memory().unwrap();
    seed(&env, "kept", 3);
    seed(&env, "gone", fans);
    env
}

fn naming<'a>(rows: &'a [String], needle: &str) -> Vec<&'a String> {
    rows.iter().filter(|r| r.contains(needle)).collect()
}

fn run(env: &NativeEnv) -> Report {
    let r = block_on(retention::run(env));
    assert!(r.failed.is_empty(), "{r:?}");
    r
}

fn kv(env: &NativeEnv, key: &str) -> bool {
    block_on(env.kv().get(key)).unwrap().is_some()
}

#[test]
fn the_seed_names_the_artist_in_every_table_that_can() {
    // A table added to the schema must be seeded here (and purged), or
    // listed as naming no artist.
    let env = world(2);
    deleted(&env, 0);
    for (table, rows) in env.db.every_row().unwrap() {
        if !NAME_NO_ARTIST.contains(&table.as_str()) {
            assert!(!naming(&rows, "gone-").is_empty(), "{table}: seed a row naming the deleted artist, and purge it");
        }
    }
}

#[test]
fn nothing_goes_before_the_window() {
    let mut env = world(2);
    deleted(&env, 30 * DAY - 60_000);
    let before = env.db.every_row().unwrap();
    let r = run(&env);
    assert_eq!(r.removed("deleted_workspaces"), 0, "{r:?}");
    assert_eq!(env.db.every_row().unwrap(), before);
    // A longer window set later does not postpone the time promised.
    env.set_var("retention_deleted_workspace_days", "60");
    env.advance_ms(60_000);
    assert!(run(&env).removed("deleted_workspaces") > 0);
}

#[test]
fn a_shorter_window_set_now_applies_to_earlier_deletions() {
    let mut env = world(2);
    deleted(&env, 8 * DAY);
    assert_eq!(run(&env).removed("deleted_workspaces"), 0);
    env.set_var("retention_deleted_workspace_days", "7");
    assert!(run(&env).removed("deleted_workspaces") > 0);
    assert_eq!(env.db.conn().query_row("SELECT count(*) FROM artists WHERE id = 'gone-artist'", [], |r| r.get::<_, i64>(0)).unwrap(), 0);
}

#[test]
fn after_the_window_nothing_of_the_workspace_is_left_and_the_other_is_untouched() {
    let env = world(3);
    deleted(&env, 30 * DAY);
    let before = env.db.every_row().unwrap();
    assert!(kv(&env, "link:gone-link-slug") && kv(&env, "link:kept-link-slug"));
    let r = run(&env);
    assert!(r.complete, "{r:?}");
    let after = env.db.every_row().unwrap();
    for (table, rows) in &after {
        assert!(naming(rows, "gone").is_empty(), "{table} still names the deleted workspace: {:?}", naming(rows, "gone"));
        let kept: Vec<&String> = before[table].iter().filter(|r| !r.contains("gone")).collect();
        assert_eq!(rows.iter().collect::<Vec<_>>(), kept, "{table}: the other artist's rows changed");
    }
    assert!(!kv(&env, "link:gone-link-slug"), "the KV copy of a link left behind goes with it");
    assert!(kv(&env, "link:kept-link-slug"));
    let removed: usize = before.values().map(|rows| naming(rows, "gone").len()).sum();
    // Every row named the workspace once in this seed, except the link's
    // KV copy, which is no row but counts as removed.
    assert_eq!(r.removed("deleted_workspaces"), removed as u64, "{r:?}");
    let report: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(report["removed"]["deleted_workspaces"], removed as u64);
    // Nothing more to do.
    assert_eq!(run(&env).removed("deleted_workspaces"), 0);
}

#[test]
fn a_tiny_budget_spreads_the_purge_over_runs_that_finish_it() {
    let mut env = world(25);
    deleted(&env, 31 * DAY);
    env.set_var("jobs_batch_rows", "2").set_var("jobs_max_batches", "20");
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 40, "the purge never finished");
        let r = run(&env);
        assert!(r.batches <= 20, "{r:?}");
        if r.complete {
            break;
        }
        assert_eq!(
            env.db.conn().query_row("SELECT count(*) FROM workspace_deletions", [], |r| r.get::<_, i64>(0)).unwrap(),
            1,
            "the record stays until the purge is through"
        );
    }
    assert!(runs > 1, "25 fans two at a time can't fit in one run of 20 statements ({runs} runs)");
    for (table, rows) in env.db.every_row().unwrap() {
        assert!(naming(&rows, "gone").is_empty(), "{table}: {:?}", naming(&rows, "gone"));
        if !NAME_NO_ARTIST.contains(&table.as_str()) && table != "workspace_deletions" {
            assert!(!naming(&rows, "kept-").is_empty(), "{table}: the kept artist's rows went too");
        }
    }
}
