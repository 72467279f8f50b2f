-- Mail sent to fans by Stagedoor itself (double opt-in confirmations), so
-- per-address caps are exact: the form can't be used to flood an inbox.
CREATE TABLE IF NOT EXISTS mail_log (
  id         INTEGER PRIMARY KEY,
  fan_id     TEXT NOT NULL REFERENCES fans(id) ON DELETE CASCADE,
  artist_id  TEXT NOT NULL,
  kind       TEXT NOT NULL,  -- confirm
  at         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mail_log_fan ON mail_log(fan_id, kind, at);
