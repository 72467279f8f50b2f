-- Stagedoor schema, first migration: artists, capture pages, fans, consent.
--
-- Applied by `wrangler d1 migrations apply` (which records it) and by the
-- Spin host / `spin up --sqlite @file` on every start, so every statement
-- is idempotent (IF NOT EXISTS). Never edit this file once released: add
-- 0002_*.sql instead.
--
-- Conventions: ids are random hex TEXT; times are INTEGER milliseconds since
-- the Unix epoch (UTC); every tenant-owned row carries artist_id.

CREATE TABLE IF NOT EXISTS artists (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS capture_pages (
  id               TEXT PRIMARY KEY,
  artist_id        TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
  slug             TEXT NOT NULL UNIQUE,
  title            TEXT NOT NULL,
  -- What the fan agrees to, shown verbatim next to the checkbox. A change
  -- of wording must come with a new version.
  consent_text     TEXT NOT NULL,
  consent_version  TEXT NOT NULL,
  double_opt_in    INTEGER NOT NULL DEFAULT 0,
  thanks_text      TEXT,
  redirect_url     TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS capture_pages_artist ON capture_pages(artist_id);

-- One row per artist + address. The address is stored only encrypted
-- (email_enc, AES-256-GCM) and found by its blind index (email_hash).
-- Location is approximate and derived from the IP, which is never stored.
CREATE TABLE IF NOT EXISTS fans (
  id               TEXT PRIMARY KEY,
  artist_id        TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
  email_enc        TEXT NOT NULL,
  email_hash       TEXT NOT NULL,
  -- pending (double opt-in not yet confirmed), subscribed, unsubscribed,
  -- bounced, complained
  status           TEXT NOT NULL CHECK (status IN ('pending','subscribed','unsubscribed','bounced','complained')),
  country          TEXT,
  region           TEXT,
  city             TEXT,
  eu               INTEGER NOT NULL DEFAULT 0,
  source_page_id   TEXT REFERENCES capture_pages(id) ON DELETE SET NULL,
  consent_version  TEXT NOT NULL,
  created_at       INTEGER NOT NULL,
  subscribed_at    INTEGER,
  confirmed_at     INTEGER,
  unsubscribed_at  INTEGER,
  updated_at       INTEGER NOT NULL,
  UNIQUE (artist_id, email_hash)
);
CREATE INDEX IF NOT EXISTS fans_artist_created ON fans(artist_id, created_at);

-- Append-only evidence of consent given and withdrawn: what the fan saw
-- (consent text version and SHA-256), where (page), when and how.
CREATE TABLE IF NOT EXISTS consent_events (
  id               TEXT PRIMARY KEY,
  fan_id           TEXT NOT NULL REFERENCES fans(id) ON DELETE CASCADE,
  artist_id        TEXT NOT NULL,
  -- subscribe (single opt-in), request (double opt-in, awaiting
  -- confirmation), confirm, unsubscribe
  kind             TEXT NOT NULL,
  page_id          TEXT,
  consent_version  TEXT,
  consent_hash     TEXT,
  -- single | double | one-click | link | api
  method           TEXT NOT NULL,
  at               INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS consent_events_fan ON consent_events(fan_id, at);

CREATE TRIGGER IF NOT EXISTS consent_events_append_only_update
BEFORE UPDATE ON consent_events
BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END;
