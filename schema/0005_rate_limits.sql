-- Exact rate limits: one row per key and fixed window, incremented by a
-- single guarded upsert, so parallel requests can't all read the same
-- count and pass (KV could not do this: no atomic increment, one write a
-- second per key on Workers). Keys hold no address: clients are keyed by a
-- keyed hash. Rows are useless once their window has passed; expired ones
-- are swept as new ones are written.
CREATE TABLE IF NOT EXISTS rate_limits (
  key         TEXT NOT NULL,
  slot        INTEGER NOT NULL,  -- window number: seconds since the epoch / window length
  count       INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,  -- ms; when the window ends
  PRIMARY KEY (key, slot)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rate_limits_expiry ON rate_limits(expires_at);
