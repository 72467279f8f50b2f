-- Fan rights answered from the dashboard (README "Fan rights").
--
-- Restriction (GDPR art. 18 / objection, art. 21): a restricted fan is kept
-- but left out of exports, the JSON list and every mail until it is lifted.
-- A table of its own, not a column on `fans`: Spin applies every migration
-- at each start, and `ALTER TABLE … ADD COLUMN` is not idempotent. Placing
-- and lifting are also recorded in `consent_events` (kinds `restrict` and
-- `unrestrict`, method `artist`).
CREATE TABLE IF NOT EXISTS fan_restrictions (
  fan_id     TEXT PRIMARY KEY REFERENCES fans(id) ON DELETE CASCADE,
  artist_id  TEXT NOT NULL,
  since      INTEGER NOT NULL,  -- ms
  by_user    TEXT NOT NULL      -- users.id of who placed it
);
CREATE INDEX IF NOT EXISTS fan_restrictions_artist ON fan_restrictions(artist_id);

-- Proof that an erasure happened, naming no one: no fan id, no address
-- hash, nothing that could be matched back to the person erased.
CREATE TABLE IF NOT EXISTS erasures (
  id         TEXT PRIMARY KEY,
  artist_id  TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
  at         INTEGER NOT NULL,  -- ms
  by_user    TEXT NOT NULL,     -- users.id of who erased
  method     TEXT NOT NULL      -- 'artist' (dashboard)
);
CREATE INDEX IF NOT EXISTS erasures_artist ON erasures(artist_id, at);
