-- Fans' own privacy requests (README "Fan rights"): a fan asks at
-- /privacy/{artist} for a copy of their data or its erasure, and gets a
-- single-use link by mail. Only the SHA-256 of the link's token is kept.
-- A row exists only for an address that is a fan of that artist (nothing
-- is stored about unknown addresses), and goes with the fan. The jobs
-- function removes used and expired rows at once (`privacy_requests`).
CREATE TABLE IF NOT EXISTS privacy_requests (
  id          TEXT PRIMARY KEY,
  artist_id   TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
  fan_id      TEXT NOT NULL REFERENCES fans(id) ON DELETE CASCADE,
  kind        TEXT NOT NULL CHECK (kind IN ('access', 'erase')),
  token_hash  TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL,  -- ms
  expires_at  INTEGER NOT NULL,  -- ms
  used_at     INTEGER            -- ms; set once, by the confirming POST
);
CREATE INDEX IF NOT EXISTS privacy_requests_fan ON privacy_requests(fan_id);
CREATE INDEX IF NOT EXISTS privacy_requests_expiry ON privacy_requests(expires_at);
