-- The artists' dashboard: users, passwordless sign-in, sessions, second
-- factor, and the indexes behind the fans list. Same conventions as
-- 0001_init.sql: every statement idempotent (Spin applies the files on
-- every start), ids random hex TEXT, times INTEGER ms since the epoch (UTC).

-- A person who signs in to one artist's workspace. The address is stored
-- encrypted (shown in the team list) and found by a blind index scoped to
-- 'users', not to an artist: sign-in looks the user up before it knows
-- the artist, so an address belongs to at most one workspace.
CREATE TABLE IF NOT EXISTS users (
  id                TEXT PRIMARY KEY,
  artist_id         TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
  email_enc         TEXT NOT NULL,
  email_hash        TEXT NOT NULL UNIQUE,
  role              TEXT NOT NULL CHECK (role IN ('owner', 'member')),
  -- TOTP secret (encrypted like emails) once enrolment is confirmed, and
  -- the one being enrolled until then.
  totp_enc          TEXT,
  totp_pending_enc  TEXT,
  -- The last time step a code was accepted for: each code works once.
  totp_last_step    INTEGER,
  created_at        INTEGER NOT NULL,
  last_sign_in_at   INTEGER
);
CREATE INDEX IF NOT EXISTS users_artist ON users(artist_id);

-- Ten one-time codes per user, kept only as keyed hashes.
CREATE TABLE IF NOT EXISTS recovery_codes (
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  code_hash  TEXT NOT NULL,
  used_at    INTEGER,
  PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

-- Workspace-wide security settings (a table of its own: SQLite's ALTER
-- TABLE … ADD COLUMN is not idempotent, and Spin re-applies every file).
CREATE TABLE IF NOT EXISTS artist_settings (
  artist_id     TEXT PRIMARY KEY REFERENCES artists(id) ON DELETE CASCADE,
  require_totp  INTEGER NOT NULL DEFAULT 0
);

-- Emailed sign-in links. Only the SHA-256 of the link's token is kept. A
-- request for an address without an account writes a row too (user_id
-- NULL, never redeemable), so both answers cost the same and the limits
-- count both. browser_hash binds the link to the browser that asked.
CREATE TABLE IF NOT EXISTS sign_in_links (
  token_hash    TEXT PRIMARY KEY,
  user_id       TEXT REFERENCES users(id) ON DELETE CASCADE,
  email_hash    TEXT NOT NULL,
  client_hash   TEXT NOT NULL,
  browser_hash  TEXT,
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  used_at       INTEGER
);
CREATE INDEX IF NOT EXISTS sign_in_links_email ON sign_in_links(email_hash, created_at);
CREATE INDEX IF NOT EXISTS sign_in_links_client ON sign_in_links(client_hash, created_at);

-- Server-side sessions; the cookie holds the id, the table its SHA-256.
-- mfa = 1 once the second factor passed (or none is needed).
CREATE TABLE IF NOT EXISTS sessions (
  id_hash        TEXT PRIMARY KEY,
  user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  artist_id      TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  last_seen_at   INTEGER NOT NULL,
  mfa            INTEGER NOT NULL DEFAULT 0,
  totp_failures  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);

-- When each API token was last used (shown in the dashboard).
CREATE TABLE IF NOT EXISTS api_token_use (
  token_id      TEXT PRIMARY KEY REFERENCES api_tokens(id) ON DELETE CASCADE,
  last_used_at  INTEGER NOT NULL
);

-- The fans list: newest first, optionally by status, country or page.
CREATE INDEX IF NOT EXISTS fans_artist_status ON fans(artist_id, status, created_at);
CREATE INDEX IF NOT EXISTS fans_artist_country ON fans(artist_id, country, created_at);
CREATE INDEX IF NOT EXISTS fans_artist_page ON fans(artist_id, source_page_id, created_at);
