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
