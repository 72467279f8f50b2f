-- Capture pages' look and fans' first names (README "Capture page").
--
-- Tables of their own, not columns on capture_pages and fans: Spin
-- applies every migration at each start, and `ALTER TABLE … ADD COLUMN`
-- is not idempotent. Same conventions as 0001_init.sql: idempotent,
-- times INTEGER ms since the epoch (UTC), every row names its artist (the
-- workspace purge finds rows by artist).

-- At most one per page; no row is the plain look. Colours are '#rrggbb'
-- (lower case), the image an https URL, the message plain text; all are
-- validated by shared/src/capture.rs when written and checked again when
-- signup reads them. signup reads this with the page in one query (a
-- LEFT JOIN on the primary key).
CREATE TABLE IF NOT EXISTS capture_page_looks (
  page_id           TEXT PRIMARY KEY REFERENCES capture_pages(id) ON DELETE CASCADE,
  artist_id         TEXT NOT NULL,
  artist_image_url  TEXT,
  background        TEXT,
  button            TEXT,
  message           TEXT,
  -- 1: the form asks for the fan's first name (optional for the fan).
  ask_first_name    INTEGER NOT NULL DEFAULT 0,
  updated_at        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS capture_page_looks_artist ON capture_page_looks(artist_id);

-- A fan's first name, when they gave one: encrypted like the address
-- (AES-256-GCM, key id in the value), bound to the artist and the fan's
-- address index (shared::crypto::fan_name_context). Written in the
-- signup's own batch; erasing the fan removes it with the fan (cascade).
CREATE TABLE IF NOT EXISTS fan_names (
  fan_id      TEXT PRIMARY KEY REFERENCES fans(id) ON DELETE CASCADE,
  artist_id   TEXT NOT NULL,
  name_enc    TEXT NOT NULL,
  updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fan_names_artist ON fan_names(artist_id);
