-- Demo data for local development: one artist with one capture page.
-- Idempotent, so `make dev` can run it on every start.
INSERT OR IGNORE INTO artists (id, name, created_at)
VALUES ('demo-artist', 'Nova & the Tides', 1767225600000);

INSERT OR IGNORE INTO capture_pages
  (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, thanks_text, redirect_url, created_at, updated_at)
VALUES
  ('demo-page', 'demo-artist', 'demo', 'Tour news from Nova & the Tides',
   'Yes, email me about new music and shows from Nova & the Tides. I can unsubscribe at any time.',
   '2026-01', 0, NULL, NULL, 1767225600000, 1767225600000);

-- A smart link for the same artist (functions/links), served at /l/demo.
-- The definition is what the links API would have stored.
INSERT OR IGNORE INTO links (id, artist_id, slug, definition, created_at, updated_at)
VALUES ('demo-link', 'demo-artist', 'demo',
  '{"slug":"demo","title":"Night Drive","artist":"Nova & the Tides","auto_redirect":false,"targets":[{"platform":"spotify","url":"https://open.spotify.com/album/demo"},{"platform":"apple-music","url":"https://music.apple.com/us/album/night-drive/1","countries":{"DE":"https://music.apple.com/de/album/night-drive/1"}},{"platform":"youtube-music","url":"https://music.youtube.com/playlist?list=demo"},{"platform":"bandcamp","url":"https://nova.bandcamp.com/album/night-drive"},{"platform":"tidal","url":"https://tidal.com/album/demo","hidden_in":["JP"]}]}',
  1767225600000, 1767225600000);
