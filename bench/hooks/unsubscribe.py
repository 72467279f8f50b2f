"""Bench hook for POST /u/{token}: a pool of subscribed fans, and one signed
unsubscribe link per fan, so every request unsubscribes someone new.

The token format is shared/src/token.rs (`{key_id}.{base64url(payload ‖ tag)}`,
payload = purpose 1 ‖ expiry u32 BE ‖ fan id 16 bytes ‖ artist id, tag = the
first 16 bytes of HMAC-SHA256(key, key_id ‖ "." ‖ payload)). If that format
changes, the bench's check of the first request fails loudly: fix it here.
"""

import base64
import hashlib
import hmac

POOL = 40000  # more than one run can use up on this kind of machine
ARTIST = "demo-artist"  # from tools/seed-demo.sql
UNSUBSCRIBE = 1


def fan_id(i):
    return f"be0c{i:028x}"


def seed_sql(ctx):
    """Fans straight into the table: unsubscribing never reads the address."""
    return f"""
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {POOL})
INSERT OR IGNORE INTO fans
  (id, artist_id, email_enc, email_hash, status, consent_version, created_at, subscribed_at, updated_at)
SELECT printf('be0c%028x', i), '{ARTIST}', 'bench-not-encrypted', printf('bench-%d', i),
       'subscribed', '2026-01', 1767225600000, 1767225600000, 1767225600000
FROM n;
"""


def paths(ctx):
    key_id, key = ctx["secrets"]["TOKEN_KEYS"].split(",")[0].strip().split(":", 1)
    key = base64.b64decode(key + "=" * (-len(key) % 4))
    out = []
    for i in range(1, POOL + 1):
        payload = bytes([UNSUBSCRIBE]) + (0).to_bytes(4, "big") + bytes.fromhex(fan_id(i)) + ARTIST.encode()
        tag = hmac.new(key, key_id.encode() + b"." + payload, hashlib.sha256).digest()[:16]
        token = base64.urlsafe_b64encode(payload + tag).rstrip(b"=").decode()
        out.append(f"/u/{key_id}.{token}")
    return out
