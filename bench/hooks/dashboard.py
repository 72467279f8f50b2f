"""Bench hook for the dashboard's fans list and CSV export: an artist with
100,000 fans, its owner, and a live, signed-in session whose cookie is the
bench-only constant in routes.json (the `cookie` header of the routes that
use this hook).

What the dashboard checks, and so what the seed must get right:
- the session (shared/src/auth/mod.rs `load_session`): `sessions.id_hash`
  is the lower-case hex SHA-256 of the cookie value, the user exists with
  the session's artist, `mfa = 1`; idle after 30 minutes and dead after
  12 hours, so created_at / last_seen_at are the time the seed is applied
  (SQL `now`, not the time this file runs);
- every fan shown or exported is decrypted (shared/src/crypto.rs):
  `email_enc` = `{key_id}.{base64url_nopad(nonce12 ‖ AES-256-GCM ciphertext
  ‖ tag16)}` under the first key of DATA_KEYS, associated data
  `fan.email:{artist_id}:{fan_id}` (crypto::fan_email_context). If that format changes, the bench's check of the
  first request fails (500): fix it here.

Everything is INSERT OR IGNORE, so applying it twice changes nothing.
"""

import base64
import hashlib
import os

ARTIST = "bench-big"
ARTIST_NAME = "Bench Big Artist"
USER = "bench-big-owner"
FANS = 100_000
CHUNK = 500  # rows per INSERT: ~48 KB of SQL each, under D1's 100 KB statement limit
FIRST_CREATED_AT = 1767225600000  # 2026-01-01 00:00 UTC; fan i signed up i seconds later
NOW_MS = "(CAST(strftime('%s','now') AS INTEGER) * 1000)"


def session_cookie(routes):
    """The cookie value the routes send (one constant, kept in routes.json)."""
    for spec in routes:
        for k, v in spec.get("headers", {}).items():
            if k.lower() == "cookie":
                for part in v.split(";"):
                    name, _, value = part.strip().partition("=")
                    if name == "__Host-sd_session" and value:
                        return value
    raise ValueError("bench/hooks/dashboard.py: no route sends a __Host-sd_session cookie (routes.json headers)")


def data_key(secrets):
    """The active (first) data key: `id:base64key[,…]`, standard or url-safe base64."""
    key_id, key = secrets["DATA_KEYS"].split(",")[0].strip().split(":", 1)
    key = key.strip()
    raw = base64.urlsafe_b64decode(key.replace("+", "-").replace("/", "_") + "=" * (-len(key) % 4))
    if len(raw) != 32:
        raise ValueError("DATA_KEYS: the first key is not 32 bytes")
    return key_id, raw


def fan_email(i):
    return f"fan{i}@bench-big.example"


def seed_sql(ctx):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # bench venv (bench/tools.sh)

    key_id, key = data_key(ctx["secrets"])
    aead = AESGCM(key)
    cookie = session_cookie(ctx["routes"])
    id_hash = hashlib.sha256(cookie.encode()).hexdigest()

    out = [f"""
INSERT OR IGNORE INTO artists (id, name, created_at) VALUES ('{ARTIST}', '{ARTIST_NAME}', {NOW_MS});
INSERT OR IGNORE INTO users (id, artist_id, email_enc, email_hash, role, created_at)
  VALUES ('{USER}', '{ARTIST}', 'bench-not-read', 'bench-big-owner', 'owner', {NOW_MS});
INSERT OR IGNORE INTO sessions (id_hash, user_id, artist_id, created_at, last_seen_at, mfa)
  VALUES ('{id_hash}', '{USER}', '{ARTIST}', {NOW_MS}, {NOW_MS}, 1);
"""]
    # Only what differs per fan travels in VALUES (number, ciphertext); the
    # rest is computed, which keeps the file at ~10 MB for 100,000 fans.
    for start in range(1, FANS + 1, CHUNK):
        values = []
        for i in range(start, min(start + CHUNK, FANS + 1)):
            nonce = os.urandom(12)
            aad = f"fan.email:{ARTIST}:b16b{i:028x}".encode()  # the fan's id, as in the INSERT below
            sealed = base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, fan_email(i).encode(), aad)).rstrip(b"=").decode()
            values.append(f"({i},'{key_id}.{sealed}')")
        out.append(f"""INSERT OR IGNORE INTO fans
  (id, artist_id, email_enc, email_hash, status, country, region, city, consent_version, created_at, subscribed_at, updated_at)
SELECT printf('b16b%028x', column1), '{ARTIST}', column2, 'bench-big-' || column1, 'subscribed', 'SE', 'Östergötland County', 'Linköping', 'v1',
       {FIRST_CREATED_AT} + column1 * 1000, {FIRST_CREATED_AT} + column1 * 1000, {FIRST_CREATED_AT} + column1 * 1000
FROM (VALUES {','.join(values)});
""")
    return "".join(out)
