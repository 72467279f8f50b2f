-- Click counters must not grow with whatever a visitor sends: every
-- dimension of link_stats is a short fixed list except the referrer host,
-- which comes from the Referer header or `?ref=`. Per link and day, the
-- first 50 distinct referrer hosts get rows of their own; later ones are
-- folded into one '(other)' row. So a day of any traffic adds a bounded
-- number of rows per link, and the busiest referrers, which arrive
-- early, keep their names. (A trigger, so every writer obeys it, and it
-- runs inside the counters' own upsert.)
CREATE TRIGGER IF NOT EXISTS link_stats_referrer_cap
BEFORE INSERT ON link_stats
WHEN NEW.referrer NOT IN ('', '(other)')
  AND NOT EXISTS (SELECT 1 FROM link_stats WHERE link_id = NEW.link_id AND day = NEW.day AND referrer = NEW.referrer)
  AND (SELECT count(DISTINCT referrer) FROM link_stats WHERE link_id = NEW.link_id AND day = NEW.day AND referrer NOT IN ('', '(other)')) >= 50
BEGIN
  INSERT INTO link_stats (link_id, artist_id, day, kind, platform, country, referrer, device, count)
  VALUES (NEW.link_id, NEW.artist_id, NEW.day, NEW.kind, NEW.platform, NEW.country, '(other)', NEW.device, NEW.count)
  ON CONFLICT (link_id, day, kind, platform, country, referrer, device) DO UPDATE SET count = count + excluded.count;
  SELECT RAISE(IGNORE);
END;
