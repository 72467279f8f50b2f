-- Webhooks, both ways (README "Webhooks").

-- Inbound: provider message ids already handled. A repeated id answers
-- 200 and changes nothing. Kept 7 days (`retention_inbound_webhook_days`):
-- senders stop retrying long before, and the timestamp check refuses
-- anything older than 5 minutes anyway.
CREATE TABLE IF NOT EXISTS inbound_webhooks (
  provider     TEXT NOT NULL,
  msg_id       TEXT NOT NULL,
  received_at  INTEGER NOT NULL,  -- ms
  PRIMARY KEY (provider, msg_id)
);
CREATE INDEX IF NOT EXISTS inbound_webhooks_received ON inbound_webhooks(received_at);

-- Bounces and complaints as providers reported them: the fan's mail
-- history. Erased with the fan.
CREATE TABLE IF NOT EXISTS mail_events (
  id               TEXT PRIMARY KEY,
  fan_id           TEXT NOT NULL REFERENCES fans(id) ON DELETE CASCADE,
  artist_id        TEXT NOT NULL,
  kind             TEXT NOT NULL CHECK (kind IN ('bounce', 'complaint')),
  -- permanent | transient (bounces only)
  bounce_type      TEXT,
  provider         TEXT NOT NULL,
  -- The webhook message id (svix-id / webhook-id) and the provider's id
  -- of the mail it is about.
  provider_msg_id  TEXT NOT NULL,
  email_id         TEXT,
  at               INTEGER NOT NULL  -- ms
);
CREATE INDEX IF NOT EXISTS mail_events_fan ON mail_events(fan_id, at);

-- Outbound: the artist's endpoints. The secret is stored encrypted (data
-- key, context = endpoint id) and shown to the artist once. While a secret
-- is rotated the previous one also signs until `secret_prev_until`.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
  id                 TEXT PRIMARY KEY,
  artist_id          TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
  url                TEXT NOT NULL,
  -- Space-separated event types, or '*' for all.
  events             TEXT NOT NULL,
  enabled            INTEGER NOT NULL DEFAULT 1,
  -- Why it was switched off: 'artist', 'gone' (the endpoint answered 410),
  -- 'failing' (5 days without a success).
  disabled_reason    TEXT,
  secret_enc         TEXT NOT NULL,
  secret_prev_enc    TEXT,
  secret_prev_until  INTEGER,
  -- Start of the current run of failures; NULL after any success.
  failing_since      INTEGER,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_artist ON webhook_endpoints(artist_id);

-- The outbox: one row per event and endpoint, written in the same atomic
-- batch as the change it reports. `id` is the webhook-id, stable across
-- retries. The payload holds no address: the fan's email is read (and
-- decrypted) at delivery, so the outbox keeps no second copy of it, and
-- erasing the fan deletes the rows about them (fan_id cascade).
CREATE TABLE IF NOT EXISTS webhook_messages (
  id           TEXT PRIMARY KEY,
  artist_id    TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
  endpoint_id  TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  -- What caused it (a consent event's id, a link change's id): one
  -- message per cause and endpoint.
  event_id     TEXT NOT NULL,
  type         TEXT NOT NULL,
  fan_id       TEXT REFERENCES fans(id) ON DELETE CASCADE,
  payload      TEXT NOT NULL,
  status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts     INTEGER NOT NULL DEFAULT 0,
  next_at      INTEGER NOT NULL,  -- ms: when it is due
  -- A sender claims a message until this time (ms), so two runs never
  -- send one message at once.
  lease_until  INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL,
  delivered_at INTEGER,
  UNIQUE (endpoint_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_messages_due ON webhook_messages(next_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_messages_artist ON webhook_messages(artist_id, created_at);
CREATE INDEX IF NOT EXISTS webhook_messages_event ON webhook_messages(event_id);
CREATE INDEX IF NOT EXISTS webhook_messages_fan ON webhook_messages(fan_id) WHERE fan_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_messages_created ON webhook_messages(created_at) WHERE status <> 'pending';

-- Every delivery attempt. Kept 90 days (`retention_webhook_attempt_days`).
CREATE TABLE IF NOT EXISTS webhook_attempts (
  id          TEXT PRIMARY KEY,
  message_id  TEXT NOT NULL REFERENCES webhook_messages(id) ON DELETE CASCADE,
  artist_id   TEXT NOT NULL,
  at          INTEGER NOT NULL,  -- ms
  -- HTTP status, NULL when there was no answer (timeout, refused).
  status      INTEGER,
  latency_ms  INTEGER NOT NULL,
  -- The first 1 KB of the answer, or why there was none.
  answer      TEXT
);
CREATE INDEX IF NOT EXISTS webhook_attempts_message ON webhook_attempts(message_id, at);
CREATE INDEX IF NOT EXISTS webhook_attempts_at ON webhook_attempts(at);
