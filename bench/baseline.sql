-- Bench only: the table the "single database insert" baselines write to,
-- created in the bench's own throwaway database, never in a real one.
CREATE TABLE IF NOT EXISTS bench_rows (
  id    INTEGER PRIMARY KEY,
  body  TEXT NOT NULL,
  at    INTEGER NOT NULL
);
