-- Deleting a workspace (an artist account; README "Deleting a workspace").
--
-- An owner's deletion removes at once everything that lets anyone reach
-- the workspace (users, sessions, tokens, sign-in links, capture pages,
-- links, webhook endpoints) and records it here. The fans and their
-- history stay, unreachable, until `purge_after`: the scheduled purge
-- (functions/jobs, job `deleted_workspaces`) then removes every row naming
-- the artist, this one last. Same conventions as 0001_init.sql: idempotent,
-- times INTEGER ms since the epoch (UTC).
--
-- No foreign key to artists: this row must outlive everything of the
-- artist's until the purge is through, and the purge deletes it itself.
-- The table holds one row per deleted workspace, so the purge's lookup
-- needs no index.
CREATE TABLE IF NOT EXISTS workspace_deletions (
  artist_id     TEXT PRIMARY KEY,
  requested_at  INTEGER NOT NULL,
  -- users.id of the owner who deleted it, kept as text: the user row goes
  -- at once.
  by_user       TEXT NOT NULL,
  -- requested_at + `retention_deleted_workspace_days` as set then; the
  -- purge runs at this time or once the current setting's window has
  -- passed, whichever comes first.
  purge_after   INTEGER NOT NULL
);

-- A deleted workspace takes no new fans, whoever writes. A capture page
-- cached by a Workers isolate (up to 30 s, functions/signup) can still
-- show its form after the deletion; its signup batch fails here, whole,
-- rate-limit counters included, and the signup function answers 404.
CREATE TRIGGER IF NOT EXISTS fans_of_deleted_workspace
BEFORE INSERT ON fans
WHEN EXISTS (SELECT 1 FROM workspace_deletions d WHERE d.artist_id = NEW.artist_id)
BEGIN SELECT RAISE(ABORT, 'workspace deleted'); END;
