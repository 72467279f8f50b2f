-- Fixtures for the end-to-end suite (applied after the migrations).
INSERT OR IGNORE INTO artists (id, name, created_at) VALUES ('e2e-artist', 'E2E Band', 0);
INSERT OR IGNORE INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
VALUES ('e2e-page', 'e2e-artist', 'e2e', 'E2E list', 'Email me news from E2E Band.', 'v1', 0, 0, 0);
