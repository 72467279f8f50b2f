-- Rate-limit windows that carry their own limit, so the database itself
-- refuses the request that would go past it: the CHECK fails, and with it
-- the whole batch the counter is part of. A signup's limits can then ride
-- in the same atomic batch as the signup (one round trip), and a refused
-- request changes nothing at all, not even another window's counter.
-- Replaces `rate_limits` (0005), whose guarded upsert needed a round trip
-- of its own per limit. Windows are dropped after they end (swept as new
-- ones are written).
CREATE TABLE IF NOT EXISTS rate_windows (
  key         TEXT NOT NULL,
  slot        INTEGER NOT NULL,  -- window number: seconds since the epoch / window length
  count       INTEGER NOT NULL,
  lim         INTEGER NOT NULL,  -- the limit in force, refreshed on every hit
  expires_at  INTEGER NOT NULL,  -- ms; when the window ends
  PRIMARY KEY (key, slot),
  CONSTRAINT rate_limited CHECK (count <= lim)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rate_windows_expiry ON rate_windows(expires_at);
DROP TABLE IF EXISTS rate_limits;
