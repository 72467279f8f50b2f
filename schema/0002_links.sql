-- Smart links: their definitions, the artist API tokens that manage them,
-- and aggregate click counters. Same conventions as 0001_init.sql: every
-- statement idempotent, ids random hex TEXT, times INTEGER milliseconds
-- (UTC), every tenant-owned row carries artist_id.

-- Bearer tokens for /api/v1/app/links until the dashboard has sessions.
-- Only the SHA-256 of a token is kept: the token itself is printed once
-- when it is issued (`make api-token`, see README) and cannot be recovered.
CREATE TABLE IF NOT EXISTS api_tokens (
  id          TEXT PRIMARY KEY,
  artist_id   TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
  token_hash  TEXT NOT NULL UNIQUE,  -- lower-case hex SHA-256 of the token
  label       TEXT,
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);
CREATE INDEX IF NOT EXISTS api_tokens_artist ON api_tokens(artist_id);

-- The source of truth for links. KV holds a copy of each definition under
-- `link:{slug}`, written through on every change and refilled from here on
-- a miss. Slugs are unique across the deployment: they are public URLs.
CREATE TABLE IF NOT EXISTS links (
  id          TEXT PRIMARY KEY,
  artist_id   TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
  slug        TEXT NOT NULL UNIQUE,
  -- The validated definition as JSON: title, artist, artwork_url,
  -- auto_redirect, targets (see functions/links/src/link.rs).
  definition  TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS links_artist ON links(artist_id, slug);

-- Counters, nothing else: no IP address, no user agent, no cookie or
-- visitor id ever reaches this table. Unknown dimensions are '' rather
-- than NULL so they collapse into one row under the primary key.
CREATE TABLE IF NOT EXISTS link_stats (
  link_id    TEXT NOT NULL REFERENCES links(id) ON DELETE CASCADE,
  artist_id  TEXT NOT NULL,
  day        TEXT NOT NULL,  -- UTC, YYYY-MM-DD
  kind       TEXT NOT NULL CHECK (kind IN ('view', 'click')),
  platform   TEXT NOT NULL,  -- '' for page views
  country    TEXT NOT NULL,  -- ISO 3166-1 alpha-2, '' when unknown
  referrer   TEXT NOT NULL,  -- host name only, '' when none
  device     TEXT NOT NULL CHECK (device IN ('ios', 'android', 'desktop', 'other')),
  count      INTEGER NOT NULL,
  PRIMARY KEY (link_id, day, kind, platform, country, referrer, device)
) WITHOUT ROWID;
-- For the retention job (performance data is kept 12 months).
CREATE INDEX IF NOT EXISTS link_stats_day ON link_stats(day);
