"""Bench hook for the dashboard's overview and a link's analytics: the
fans-list artist (bench/hooks/dashboard.py: same artist, owner, session
cookie and fan ids) with 100,000 fans spread over 3,000 cities in 40
countries, three capture pages and four statuses, a consent event per fan
over the last year (plus the unsubscribes), and one smart link with a
year of counters: 200 rows a day (40 view rows over country × referrer,
160 click rows over service × country × referrer), four devices, 73,000
link_stats rows in all.

The aggregate tables (schema/0014) are filled by the schema's own
triggers as these rows go in, exactly as in production, so the seed
exercises the same write path the numbers come from.

The fans are inserted with INSERT OR IGNORE and the same ids as the
fans-list hook, whose seed comes first when both run (routes.json order):
then these rows change only place, status and page (so fans-list still
decrypts every address). Run alone, the fans carry a placeholder
`email_enc`, which the overview never reads. Applying it twice changes
nothing (INSERT OR IGNORE; the UPDATE sets the same values again, which
the aggregate triggers skip).
"""

import hashlib
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("dashboard_hook_for_analytics", Path(__file__).with_name("dashboard.py"))
dashboard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dashboard)

ARTIST = dashboard.ARTIST
FANS = dashboard.FANS
FIRST = dashboard.FIRST_CREATED_AT
NOW_MS = dashboard.NOW_MS
LINK = "bench-big-link"
SLUG = "bench-big-night"
DAYS = 365
PLACES = 3000
COUNTRIES = "SE US GB DE FR NL NO DK FI ES IT PT PL CZ AT CH BE IE CA MX BR AR CL CO AU NZ JP KR IN ID PH TH VN ZA NG KE EG TR GR RO".split()
PLATFORMS = ["spotify", "apple-music", "youtube-music", "deezer", "tidal", "bandcamp"]
REFERRERS = ["", "instagram.com", "tiktok.com", "t.co", "news.example"]
DEVICES = ["ios", "android", "desktop", "other"]


def _list(values):
    return ", ".join(f"({i}, '{v}')" for i, v in enumerate(values))


def seed_sql(ctx):
    cookie = dashboard.session_cookie(ctx["routes"])
    id_hash = hashlib.sha256(cookie.encode()).hexdigest()
    fan_i = f"((created_at - {FIRST}) / 1000)"  # the fan's number, from its sign-up time (dashboard.py)
    place = f"({fan_i} % {PLACES})"  # a city, which decides its region and country
    targets = ",".join(f'{{"platform":"{p}","url":"https://example.com/{p}"}}' for p in PLATFORMS)
    definition = f'{{"slug":"{SLUG}","title":"Bench Night","artist":"{dashboard.ARTIST_NAME}","auto_redirect":false,"targets":[{targets}]}}'
    return f"""
INSERT OR IGNORE INTO artists (id, name, created_at) VALUES ('{ARTIST}', '{dashboard.ARTIST_NAME}', {NOW_MS});
INSERT OR IGNORE INTO users (id, artist_id, email_enc, email_hash, role, created_at)
  VALUES ('{dashboard.USER}', '{ARTIST}', 'bench-not-read', 'bench-big-owner', 'owner', {NOW_MS});
INSERT OR IGNORE INTO sessions (id_hash, user_id, artist_id, created_at, last_seen_at, mfa)
  VALUES ('{id_hash}', '{dashboard.USER}', '{ARTIST}', {NOW_MS}, {NOW_MS}, 1);
INSERT OR IGNORE INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at) VALUES
  ('bench-big-page-0', '{ARTIST}', 'bench-big-tour', 'Tour news', 'Email me tour news.', 'v1', 0, 0, 0),
  ('bench-big-page-1', '{ARTIST}', 'bench-big-album', 'Album pre-save', 'Email me about the album.', 'v1', 1, 0, 0),
  ('bench-big-page-2', '{ARTIST}', 'bench-big-merch', 'Merch drops', 'Email me merch drops.', 'v1', 0, 0, 0);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {FANS})
INSERT OR IGNORE INTO fans (id, artist_id, email_enc, email_hash, status, country, region, city, consent_version, created_at, subscribed_at, updated_at)
  SELECT printf('b16b%028x', i), '{ARTIST}', 'bench-not-read', 'bench-big-' || i, 'subscribed', 'SE', 'Östergötland County', 'Linköping', 'v1',
         {FIRST} + i * 1000, {FIRST} + i * 1000, {FIRST} + i * 1000 FROM n;
UPDATE fans SET
  status = CASE {fan_i} % 50 WHEN 0 THEN 'unsubscribed' WHEN 1 THEN 'unsubscribed' WHEN 2 THEN 'pending' WHEN 3 THEN 'bounced' ELSE 'subscribed' END,
  country = (SELECT column2 FROM (VALUES {_list(COUNTRIES)}) WHERE column1 = {place} * {place} % 97 % {len(COUNTRIES)}),
  region = 'Region ' || ({place} % 25),
  city = 'City ' || {place},
  source_page_id = 'bench-big-page-' || ({fan_i} % 3)
  WHERE artist_id = '{ARTIST}';
INSERT OR IGNORE INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at)
  SELECT 'bench-in-' || id, id, artist_id, CASE status WHEN 'pending' THEN 'request' ELSE 'subscribe' END, source_page_id, 'v1', 'bench', 'single',
         {NOW_MS} - ({fan_i} * 7919 % {DAYS}) * 86400000
  FROM fans WHERE artist_id = '{ARTIST}';
INSERT OR IGNORE INTO consent_events (id, fan_id, artist_id, kind, page_id, consent_version, consent_hash, method, at)
  SELECT 'bench-out-' || id, id, artist_id, 'unsubscribe', NULL, 'v1', NULL, 'one-click', {NOW_MS} - ({fan_i} * 7919 % {DAYS}) * 43200000
  FROM fans WHERE artist_id = '{ARTIST}' AND status = 'unsubscribed';
INSERT OR IGNORE INTO links (id, artist_id, slug, definition, created_at, updated_at)
  VALUES ('{LINK}', '{ARTIST}', '{SLUG}', '{definition}', {NOW_MS}, {NOW_MS});
WITH RECURSIVE d(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM d WHERE k < {DAYS - 1}),
  r(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM r WHERE j < 199),
  c(x, name) AS (VALUES {_list(COUNTRIES[:10])}),
  p(x, name) AS (VALUES {_list(PLATFORMS)}),
  f(x, name) AS (VALUES {_list(REFERRERS)}),
  dv(x, name) AS (VALUES {_list(DEVICES)})
INSERT OR IGNORE INTO link_stats (link_id, artist_id, day, kind, platform, country, referrer, device, count)
  SELECT '{LINK}', '{ARTIST}', date({NOW_MS} / 1000 - k * 86400, 'unixepoch'),
         CASE WHEN j < 40 THEN 'view' ELSE 'click' END,
         CASE WHEN j < 40 THEN '' ELSE (SELECT name FROM p WHERE x = (j - 40) % 6) END,
         (SELECT name FROM c WHERE x = CASE WHEN j < 40 THEN j % 10 ELSE (j - 40) / 6 % 10 END),
         (SELECT name FROM f WHERE x = CASE WHEN j < 40 THEN j / 10 % 5 ELSE (j - 40) / 60 % 5 END),
         (SELECT name FROM dv WHERE x = j % 4),
         1 + (k * 31 + j * 7) % 13
  FROM d, r;
"""
