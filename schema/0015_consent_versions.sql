-- Every wording a capture page's consent checkbox has carried (README
-- "Capture pages"). A fan's consent events name the version and the
-- SHA-256 of the text they saw; this keeps the text itself, so a fan's
-- export shows exactly what they agreed to after the page has changed.
-- Written by the dashboard in the same batch as the page edit that makes
-- a new version; its text is never changed.
--
-- No foreign key to capture_pages: the evidence outlives the page (a
-- workspace deletion removes its pages at once and keeps this until the
-- purge, as it keeps consent_events). Same conventions as 0001_init.sql:
-- idempotent, times INTEGER ms since the epoch (UTC).
CREATE TABLE IF NOT EXISTS consent_versions (
  artist_id       TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
  page_id         TEXT NOT NULL,
  -- capture_pages.consent_version when this text was current ('v1', 'v2', …).
  version         TEXT NOT NULL,
  consent_text    TEXT NOT NULL,
  -- Lower-case hex, as consent_events.consent_hash; NULL on rows the
  -- migration wrote (see the backfill below).
  consent_sha256  TEXT,
  created_at      INTEGER NOT NULL,
  PRIMARY KEY (page_id, version)
) WITHOUT ROWID;
-- The purge and the workspace export find an artist's versions by artist.
CREATE INDEX IF NOT EXISTS consent_versions_artist ON consent_versions(artist_id);

-- The wording every page carries now, as its current version. SQLite
-- (D1, Spin) has no SHA-256 function, so these rows start without a hash;
-- the dashboard fills it when it next records the page's text, and the
-- fan export hashes every text it shows itself, whoever wrote the row.
INSERT OR IGNORE INTO consent_versions (artist_id, page_id, version, consent_text, consent_sha256, created_at)
SELECT artist_id, id, consent_version, consent_text, NULL, updated_at FROM capture_pages;
