-- Aggregate rows for the dashboard's overview and link analytics (README
-- "Aggregates"): counts per artist, status, place, page, day and link
-- dimension, so a chart reads a bounded number of rows however many fans
-- or counter rows sit behind it.
--
-- Exact, not estimated: the triggers below move them inside the statement
-- that changes fans, consent_events or link_stats, so every writer (signup
-- batches, confirmation, unsubscribe, bounces, dashboard edits and
-- erasure, retention, the workspace purge, the counters' upserts, foreign
-- key cascades and SET NULL) keeps them equal to a recount in the same
-- atomic batch. A row whose count reaches 0 is deleted, so nothing is left
-- about a fan once they are erased, and "equal to a recount" means equal
-- row for row. Retention prunes them with the rows they count (the window
-- is the same: they are performance data too).
--
-- Same conventions as 0001_init.sql: idempotent (Spin and the native
-- adapter apply every file at each start). Days are UTC 'YYYY-MM-DD';
-- unknown parts are '' so they collapse into one row under the key. No
-- foreign keys: a check per counter write would buy nothing, since the
-- rows go with what they count, and the workspace deletion and purge
-- delete them by artist.

CREATE TABLE IF NOT EXISTS agg_fan_status (
  artist_id  TEXT NOT NULL,
  status     TEXT NOT NULL,
  n          INTEGER NOT NULL,
  PRIMARY KEY (artist_id, status)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS agg_fan_place (
  artist_id  TEXT NOT NULL,
  country    TEXT NOT NULL,
  region     TEXT NOT NULL,
  city       TEXT NOT NULL,
  n          INTEGER NOT NULL,
  PRIMARY KEY (artist_id, country, region, city)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS agg_fan_page (
  artist_id  TEXT NOT NULL,
  page_id    TEXT NOT NULL,
  n          INTEGER NOT NULL,
  PRIMARY KEY (artist_id, page_id)
) WITHOUT ROWID;

-- consent_events per UTC day of `at`: signups per day are the kinds
-- subscribe + request, unsubscribes the kind unsubscribe.
CREATE TABLE IF NOT EXISTS agg_consent_daily (
  artist_id  TEXT NOT NULL,
  day        TEXT NOT NULL,
  page_id    TEXT NOT NULL,
  kind       TEXT NOT NULL,
  n          INTEGER NOT NULL,
  PRIMARY KEY (artist_id, day, page_id, kind)
) WITHOUT ROWID;

-- link_stats summed over every dimension but one: dim 'all' (value ''),
-- 'platform', 'country', 'referrer' or 'device'.
CREATE TABLE IF NOT EXISTS agg_link_daily (
  link_id    TEXT NOT NULL,
  artist_id  TEXT NOT NULL,
  day        TEXT NOT NULL,
  kind       TEXT NOT NULL,
  dim        TEXT NOT NULL,
  value      TEXT NOT NULL,
  n          INTEGER NOT NULL,
  PRIMARY KEY (link_id, day, kind, dim, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agg_link_daily_artist ON agg_link_daily(artist_id, day);

-- All of an artist's links together ('' platform for views).
CREATE TABLE IF NOT EXISTS agg_link_artist_daily (
  artist_id  TEXT NOT NULL,
  day        TEXT NOT NULL,
  kind       TEXT NOT NULL,
  platform   TEXT NOT NULL,
  n          INTEGER NOT NULL,
  PRIMARY KEY (artist_id, day, kind, platform)
) WITHOUT ROWID;

-- fans: one row in, one row out, and a move when a counted column
-- changes (confirmation, unsubscribe, bounce; a capture page deleted sets
-- source_page_id to NULL through its foreign key, which is an UPDATE too).
CREATE TRIGGER IF NOT EXISTS agg_fans_insert
AFTER INSERT ON fans
BEGIN
  INSERT INTO agg_fan_status (artist_id, status, n) VALUES (NEW.artist_id, NEW.status, 1)
    ON CONFLICT (artist_id, status) DO UPDATE SET n = n + 1;
  INSERT INTO agg_fan_place (artist_id, country, region, city, n)
    VALUES (NEW.artist_id, coalesce(NEW.country, ''), coalesce(NEW.region, ''), coalesce(NEW.city, ''), 1)
    ON CONFLICT (artist_id, country, region, city) DO UPDATE SET n = n + 1;
  INSERT INTO agg_fan_page (artist_id, page_id, n) VALUES (NEW.artist_id, coalesce(NEW.source_page_id, ''), 1)
    ON CONFLICT (artist_id, page_id) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS agg_fans_delete
AFTER DELETE ON fans
BEGIN
  UPDATE agg_fan_status SET n = n - 1 WHERE artist_id = OLD.artist_id AND status = OLD.status;
  DELETE FROM agg_fan_status WHERE artist_id = OLD.artist_id AND status = OLD.status AND n <= 0;
  UPDATE agg_fan_place SET n = n - 1
    WHERE artist_id = OLD.artist_id AND country = coalesce(OLD.country, '') AND region = coalesce(OLD.region, '') AND city = coalesce(OLD.city, '');
  DELETE FROM agg_fan_place
    WHERE artist_id = OLD.artist_id AND country = coalesce(OLD.country, '') AND region = coalesce(OLD.region, '') AND city = coalesce(OLD.city, '') AND n <= 0;
  UPDATE agg_fan_page SET n = n - 1 WHERE artist_id = OLD.artist_id AND page_id = coalesce(OLD.source_page_id, '');
  DELETE FROM agg_fan_page WHERE artist_id = OLD.artist_id AND page_id = coalesce(OLD.source_page_id, '') AND n <= 0;
END;

CREATE TRIGGER IF NOT EXISTS agg_fans_status
AFTER UPDATE OF artist_id, status ON fans
WHEN NEW.artist_id IS NOT OLD.artist_id OR NEW.status IS NOT OLD.status
BEGIN
  UPDATE agg_fan_status SET n = n - 1 WHERE artist_id = OLD.artist_id AND status = OLD.status;
  DELETE FROM agg_fan_status WHERE artist_id = OLD.artist_id AND status = OLD.status AND n <= 0;
  INSERT INTO agg_fan_status (artist_id, status, n) VALUES (NEW.artist_id, NEW.status, 1)
    ON CONFLICT (artist_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS agg_fans_place
AFTER UPDATE OF artist_id, country, region, city ON fans
WHEN NEW.artist_id IS NOT OLD.artist_id OR coalesce(NEW.country, '') IS NOT coalesce(OLD.country, '')
  OR coalesce(NEW.region, '') IS NOT coalesce(OLD.region, '') OR coalesce(NEW.city, '') IS NOT coalesce(OLD.city, '')
BEGIN
  UPDATE agg_fan_place SET n = n - 1
    WHERE artist_id = OLD.artist_id AND country = coalesce(OLD.country, '') AND region = coalesce(OLD.region, '') AND city = coalesce(OLD.city, '');
  DELETE FROM agg_fan_place
    WHERE artist_id = OLD.artist_id AND country = coalesce(OLD.country, '') AND region = coalesce(OLD.region, '') AND city = coalesce(OLD.city, '') AND n <= 0;
  INSERT INTO agg_fan_place (artist_id, country, region, city, n)
    VALUES (NEW.artist_id, coalesce(NEW.country, ''), coalesce(NEW.region, ''), coalesce(NEW.city, ''), 1)
    ON CONFLICT (artist_id, country, region, city) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS agg_fans_page
AFTER UPDATE OF artist_id, source_page_id ON fans
WHEN NEW.artist_id IS NOT OLD.artist_id OR coalesce(NEW.source_page_id, '') IS NOT coalesce(OLD.source_page_id, '')
BEGIN
  UPDATE agg_fan_page SET n = n - 1 WHERE artist_id = OLD.artist_id AND page_id = coalesce(OLD.source_page_id, '');
  DELETE FROM agg_fan_page WHERE artist_id = OLD.artist_id AND page_id = coalesce(OLD.source_page_id, '') AND n <= 0;
  INSERT INTO agg_fan_page (artist_id, page_id, n) VALUES (NEW.artist_id, coalesce(NEW.source_page_id, ''), 1)
    ON CONFLICT (artist_id, page_id) DO UPDATE SET n = n + 1;
END;

-- consent_events: append-only (0001 refuses every UPDATE), so rows only
-- arrive and, with their fan (erasure, retention, purge), leave.
CREATE TRIGGER IF NOT EXISTS agg_consent_insert
AFTER INSERT ON consent_events
BEGIN
  INSERT INTO agg_consent_daily (artist_id, day, page_id, kind, n)
    VALUES (NEW.artist_id, date(NEW.at / 1000, 'unixepoch'), coalesce(NEW.page_id, ''), NEW.kind, 1)
    ON CONFLICT (artist_id, day, page_id, kind) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS agg_consent_delete
AFTER DELETE ON consent_events
BEGIN
  UPDATE agg_consent_daily SET n = n - 1
    WHERE artist_id = OLD.artist_id AND day = date(OLD.at / 1000, 'unixepoch') AND page_id = coalesce(OLD.page_id, '') AND kind = OLD.kind;
  DELETE FROM agg_consent_daily
    WHERE artist_id = OLD.artist_id AND day = date(OLD.at / 1000, 'unixepoch') AND page_id = coalesce(OLD.page_id, '') AND kind = OLD.kind AND n <= 0;
END;

-- link_stats. The counters' upsert (functions/links) inserts a row the
-- first time a combination is seen in a day and then adds to it, which is
-- an UPDATE: both add the difference, five rows of agg_link_daily in one
-- statement and one of agg_link_artist_daily. The referrer cap (0007)
-- re-inserts a capped row as '(other)' and drops the original, so only
-- the '(other)' row is counted, as it is stored. Any other change (a
-- count lowered, a key rewritten, a row deleted) takes the old row out
-- and puts the new one in, and drops sums that reach 0.
CREATE TRIGGER IF NOT EXISTS agg_link_stats_insert
AFTER INSERT ON link_stats
BEGIN
  INSERT INTO agg_link_daily (link_id, artist_id, day, kind, dim, value, n)
    SELECT NEW.link_id, NEW.artist_id, NEW.day, NEW.kind, d.column1, d.column2, NEW.count
    FROM (VALUES ('all', ''), ('platform', NEW.platform), ('country', NEW.country), ('referrer', NEW.referrer), ('device', NEW.device)) AS d
    WHERE NEW.count <> 0
    ON CONFLICT (link_id, day, kind, dim, value) DO UPDATE SET n = n + excluded.n;
  INSERT INTO agg_link_artist_daily (artist_id, day, kind, platform, n)
    SELECT NEW.artist_id, NEW.day, NEW.kind, NEW.platform, NEW.count WHERE NEW.count <> 0
    ON CONFLICT (artist_id, day, kind, platform) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER IF NOT EXISTS agg_link_stats_add
AFTER UPDATE ON link_stats
WHEN NEW.count > OLD.count AND NEW.link_id = OLD.link_id AND NEW.artist_id = OLD.artist_id AND NEW.day = OLD.day AND NEW.kind = OLD.kind
  AND NEW.platform = OLD.platform AND NEW.country = OLD.country AND NEW.referrer = OLD.referrer AND NEW.device = OLD.device
BEGIN
  INSERT INTO agg_link_daily (link_id, artist_id, day, kind, dim, value, n)
    SELECT NEW.link_id, NEW.artist_id, NEW.day, NEW.kind, d.column1, d.column2, NEW.count - OLD.count
    FROM (VALUES ('all', ''), ('platform', NEW.platform), ('country', NEW.country), ('referrer', NEW.referrer), ('device', NEW.device)) AS d
    WHERE true
    ON CONFLICT (link_id, day, kind, dim, value) DO UPDATE SET n = n + excluded.n;
  INSERT INTO agg_link_artist_daily (artist_id, day, kind, platform, n)
    VALUES (NEW.artist_id, NEW.day, NEW.kind, NEW.platform, NEW.count - OLD.count)
    ON CONFLICT (artist_id, day, kind, platform) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER IF NOT EXISTS agg_link_stats_move
AFTER UPDATE ON link_stats
WHEN NOT (NEW.count >= OLD.count AND NEW.link_id = OLD.link_id AND NEW.artist_id = OLD.artist_id AND NEW.day = OLD.day AND NEW.kind = OLD.kind
  AND NEW.platform = OLD.platform AND NEW.country = OLD.country AND NEW.referrer = OLD.referrer AND NEW.device = OLD.device)
BEGIN
  UPDATE agg_link_daily SET n = n - OLD.count
    WHERE link_id = OLD.link_id AND day = OLD.day AND kind = OLD.kind
      AND (dim, value) IN (VALUES ('all', ''), ('platform', OLD.platform), ('country', OLD.country), ('referrer', OLD.referrer), ('device', OLD.device));
  DELETE FROM agg_link_daily
    WHERE link_id = OLD.link_id AND day = OLD.day AND kind = OLD.kind AND n <= 0
      AND (dim, value) IN (VALUES ('all', ''), ('platform', OLD.platform), ('country', OLD.country), ('referrer', OLD.referrer), ('device', OLD.device));
  UPDATE agg_link_artist_daily SET n = n - OLD.count WHERE artist_id = OLD.artist_id AND day = OLD.day AND kind = OLD.kind AND platform = OLD.platform;
  DELETE FROM agg_link_artist_daily WHERE artist_id = OLD.artist_id AND day = OLD.day AND kind = OLD.kind AND platform = OLD.platform AND n <= 0;
  INSERT INTO agg_link_daily (link_id, artist_id, day, kind, dim, value, n)
    SELECT NEW.link_id, NEW.artist_id, NEW.day, NEW.kind, d.column1, d.column2, NEW.count
    FROM (VALUES ('all', ''), ('platform', NEW.platform), ('country', NEW.country), ('referrer', NEW.referrer), ('device', NEW.device)) AS d
    WHERE NEW.count <> 0
    ON CONFLICT (link_id, day, kind, dim, value) DO UPDATE SET n = n + excluded.n;
  INSERT INTO agg_link_artist_daily (artist_id, day, kind, platform, n)
    SELECT NEW.artist_id, NEW.day, NEW.kind, NEW.platform, NEW.count WHERE NEW.count <> 0
    ON CONFLICT (artist_id, day, kind, platform) DO UPDATE SET n = n + excluded.n;
  DELETE FROM agg_link_daily
    WHERE link_id = NEW.link_id AND day = NEW.day AND kind = NEW.kind AND n <= 0
      AND (dim, value) IN (VALUES ('all', ''), ('platform', NEW.platform), ('country', NEW.country), ('referrer', NEW.referrer), ('device', NEW.device));
  DELETE FROM agg_link_artist_daily WHERE artist_id = NEW.artist_id AND day = NEW.day AND kind = NEW.kind AND platform = NEW.platform AND n <= 0;
END;

CREATE TRIGGER IF NOT EXISTS agg_link_stats_delete
AFTER DELETE ON link_stats
BEGIN
  UPDATE agg_link_daily SET n = n - OLD.count
    WHERE link_id = OLD.link_id AND day = OLD.day AND kind = OLD.kind
      AND (dim, value) IN (VALUES ('all', ''), ('platform', OLD.platform), ('country', OLD.country), ('referrer', OLD.referrer), ('device', OLD.device));
  DELETE FROM agg_link_daily
    WHERE link_id = OLD.link_id AND day = OLD.day AND kind = OLD.kind AND n <= 0
      AND (dim, value) IN (VALUES ('all', ''), ('platform', OLD.platform), ('country', OLD.country), ('referrer', OLD.referrer), ('device', OLD.device));
  UPDATE agg_link_artist_daily SET n = n - OLD.count WHERE artist_id = OLD.artist_id AND day = OLD.day AND kind = OLD.kind AND platform = OLD.platform;
  DELETE FROM agg_link_artist_daily WHERE artist_id = OLD.artist_id AND day = OLD.day AND kind = OLD.kind AND platform = OLD.platform AND n <= 0;
END;

-- Backfill: a full recount that replaces whatever is held, then drops
-- the keys nothing counts any more. After the triggers on purpose: each
-- statement is atomic, so a write landing between two of them (another
-- Spin instance serving while this one starts) is both counted by its
-- trigger and replaced by the recount, never lost or counted twice. (The
-- NOT IN lists are built once per statement: no per-row scan of fans.) The
-- first application counts what was there; every later one (Spin and the
-- native adapter apply every file at each start) finds what the triggers
-- already hold and changes nothing.
INSERT OR REPLACE INTO agg_fan_status (artist_id, status, n)
  SELECT artist_id, status, count(*) FROM fans GROUP BY artist_id, status;
DELETE FROM agg_fan_status WHERE (artist_id, status) NOT IN (SELECT artist_id, status FROM fans);

INSERT OR REPLACE INTO agg_fan_place (artist_id, country, region, city, n)
  SELECT artist_id, coalesce(country, ''), coalesce(region, ''), coalesce(city, ''), count(*) FROM fans
  GROUP BY artist_id, coalesce(country, ''), coalesce(region, ''), coalesce(city, '');
DELETE FROM agg_fan_place WHERE (artist_id, country, region, city) NOT IN
  (SELECT artist_id, coalesce(country, ''), coalesce(region, ''), coalesce(city, '') FROM fans);

INSERT OR REPLACE INTO agg_fan_page (artist_id, page_id, n)
  SELECT artist_id, coalesce(source_page_id, ''), count(*) FROM fans GROUP BY artist_id, coalesce(source_page_id, '');
DELETE FROM agg_fan_page WHERE (artist_id, page_id) NOT IN (SELECT artist_id, coalesce(source_page_id, '') FROM fans);

INSERT OR REPLACE INTO agg_consent_daily (artist_id, day, page_id, kind, n)
  SELECT artist_id, date(at / 1000, 'unixepoch'), coalesce(page_id, ''), kind, count(*) FROM consent_events
  GROUP BY artist_id, date(at / 1000, 'unixepoch'), coalesce(page_id, ''), kind;
DELETE FROM agg_consent_daily WHERE (artist_id, day, page_id, kind) NOT IN
  (SELECT artist_id, date(at / 1000, 'unixepoch'), coalesce(page_id, ''), kind FROM consent_events);

INSERT OR REPLACE INTO agg_link_daily (link_id, artist_id, day, kind, dim, value, n)
  SELECT link_id, artist_id, day, kind, dim, value, sum(count) FROM (
    SELECT link_id, artist_id, day, kind, 'all' AS dim, '' AS value, count FROM link_stats
    UNION ALL SELECT link_id, artist_id, day, kind, 'platform', platform, count FROM link_stats
    UNION ALL SELECT link_id, artist_id, day, kind, 'country', country, count FROM link_stats
    UNION ALL SELECT link_id, artist_id, day, kind, 'referrer', referrer, count FROM link_stats
    UNION ALL SELECT link_id, artist_id, day, kind, 'device', device, count FROM link_stats)
  GROUP BY link_id, day, kind, dim, value HAVING sum(count) > 0;
DELETE FROM agg_link_daily WHERE (link_id, day, kind, dim, value) NOT IN (
  SELECT link_id, day, kind, dim, value FROM (
    SELECT link_id, day, kind, 'all' AS dim, '' AS value, count FROM link_stats
    UNION ALL SELECT link_id, day, kind, 'platform', platform, count FROM link_stats
    UNION ALL SELECT link_id, day, kind, 'country', country, count FROM link_stats
    UNION ALL SELECT link_id, day, kind, 'referrer', referrer, count FROM link_stats
    UNION ALL SELECT link_id, day, kind, 'device', device, count FROM link_stats)
  GROUP BY link_id, day, kind, dim, value HAVING sum(count) > 0);

INSERT OR REPLACE INTO agg_link_artist_daily (artist_id, day, kind, platform, n)
  SELECT artist_id, day, kind, platform, sum(count) FROM link_stats GROUP BY artist_id, day, kind, platform HAVING sum(count) > 0;
DELETE FROM agg_link_artist_daily WHERE (artist_id, day, kind, platform) NOT IN
  (SELECT artist_id, day, kind, platform FROM link_stats GROUP BY artist_id, day, kind, platform HAVING sum(count) > 0);
