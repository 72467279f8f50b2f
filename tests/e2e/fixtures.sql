-- Fixtures for the end-to-end suite (applied after the migrations).
INSERT OR IGNORE INTO artists (id, name, created_at) VALUES ('e2e-artist', 'E2E Band', 0);
INSERT OR IGNORE INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
VALUES ('e2e-page', 'e2e-artist', 'e2e', 'E2E list', 'Email me news from E2E Band.', 'v1', 0, 0, 0);
INSERT OR IGNORE INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
VALUES ('e2e-doi-page', 'e2e-artist', 'e2e-doi', 'E2E confirmed list', 'Email me news from E2E Band (confirm by email).', 'v1', 1, 0, 0);

-- Smart links (tests/e2e/links.rs): an API token for the e2e artist and one
-- for a second artist (tokens sd_e2e_links_token_artist_one_3f9a and
-- sd_e2e_links_token_artist_two_7c1d; only their SHA-256 is stored), and a
-- link that exists only in the database, never written to KV, so its first
-- read has to fall back to the database.
INSERT OR IGNORE INTO artists (id, name, created_at) VALUES ('e2e-other-artist', 'Other E2E Artist', 0);
INSERT OR IGNORE INTO api_tokens (id, artist_id, token_hash, label, created_at)
VALUES ('e2e-token-1', 'e2e-artist', '67558ee38f9d0ae7cf07ee0c622fd92513556198e12df7cbd07e43adaf2b1fa4', 'e2e', 0),
       ('e2e-token-2', 'e2e-other-artist', '2223d306fab54ff0a9e51c9998ae53ef28abcf1c1ad12434ff184d3bcef68740', 'e2e', 0);
INSERT OR IGNORE INTO links (id, artist_id, slug, definition, created_at, updated_at)
VALUES ('e2e-db-link', 'e2e-artist', 'e2e-db-only',
        '{"slug":"e2e-db-only","title":"Only in the database","artist":"E2E Band","auto_redirect":false,"targets":[{"platform":"deezer","url":"https://www.deezer.com/album/302127"}]}',
        0, 0);

-- Dashboard users (tests/e2e/dashboard.rs, tests/browser/): addresses encrypted
-- under the suite's keys by `stagedoor-admin user`, ids fixed for the tests.
INSERT OR IGNORE INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES ('e2e-owner', 'e2e-artist', 'k1.BbPkPP9eFORRD4sfieMtwWH7aE64S1-l1BkFFTm7xhI5tMiix9fYkYMgLddT', 'dD2yUOlccCuBQJLEeoSygeY1uAZy3TFI_W0Z4KGSR1w', 'owner', 0);
INSERT OR IGNORE INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES ('e2e-member', 'e2e-artist', 'k1.uZzoWYu8MXmA1VN7c0zbNvItL4WLbPkJzBsKXKm1UC1BOrl63Wj0oj8sqeBWtA', 'MLZEYAw0-5S8AcDB_BXOgsKpwkKSYsn0d4-DHb9nRGM', 'member', 0);
INSERT OR IGNORE INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES ('e2e-other-owner', 'e2e-other-artist', 'k1.eldtWJ0kmtF1I_WpSVve_dznfLnbBlJGgkPtXh7jeFhOrgoBnNkN0AyUrNdRLEg', 'jjwz8KQE3WTsOPoaU2hFpqfxi4LcfGYprIzVLx4HR88', 'owner', 0);

-- The second artist's own capture page, so the tenancy cases have real
-- fans on both sides.
INSERT OR IGNORE INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
VALUES ('e2e-other-page', 'e2e-other-artist', 'e2e-other', 'Other list', 'Email me news from Other E2E Artist.', 'v1', 0, 0, 0);

-- A capture page that sends fans to the artist's own site after signing up
-- (tests/browser/: the redirect must survive the page's CSP in Chromium).
INSERT OR IGNORE INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, redirect_url, created_at, updated_at)
VALUES ('e2e-redirect-page', 'e2e-other-artist', 'e2e-redirect', 'Redirecting list', 'Email me news from Other E2E Artist.', 'v1', 0, 'https://thanks.e2e.example/done?from=stagedoor', 0, 0);
