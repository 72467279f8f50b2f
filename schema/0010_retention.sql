-- Indexes for the retention jobs (functions/jobs, README "Retention"), so
-- each bounded DELETE finds its rows without scanning the table. Same
-- conventions as 0001_init.sql: idempotent, applied by Spin at every start.
CREATE INDEX IF NOT EXISTS mail_log_at ON mail_log(at);
CREATE INDEX IF NOT EXISTS sign_in_links_expiry ON sign_in_links(expires_at);
-- Unconfirmed double opt-in signups, oldest first.
CREATE INDEX IF NOT EXISTS fans_pending_created ON fans(created_at, id) WHERE status = 'pending';
