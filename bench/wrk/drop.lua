-- The simulated drop (`drop` in routes.json): request.lua's requests (every
-- "{n}" in the body unique, hence a new email per signup), but a fixed
-- number of them, BENCH_TOTAL, shared out between wrk's threads, instead of
-- as many as fit in a duration. wrk has no request count, so:
--   - delay() holds a connection back once its thread has sent or granted
--     its share, so no request beyond the share is sent while answers are
--     still coming;
--   - response() counts answers by status; when a thread has all of its
--     share answered it prints BENCH-THREAD-DONE and stops. bench.py stops
--     wrk (SIGINT) once every thread has said so, and wrk's own duration is
--     then the time the drop took.
-- Some answers may never come (local workerd at 64 connections sometimes
-- resets connections: wrk counts read errors, and the requests on them are
-- neither answered nor stored). So the first connection a thread holds back
-- wakes after STANDBY_MS: if the thread is still short of answers by then,
-- long after any request should have been answered, it gives up on them,
-- says so (BENCH-THREAD-DONE stalled) and stops. That wake-up sends one more
-- request (wrk cannot skip one), counted in `sent`; a thread that finishes
-- first never sends it.
-- Extra environment: BENCH_TOTAL (requests in all), BENCH_LUA_DIR (this
-- directory). At the end, besides request.lua's BENCH-RESULT line, one line
-- BENCH-DROP {"sent":…,"answered":…,"statuses":{"200":…}}.

dofile(os.getenv("BENCH_LUA_DIR") .. "/request.lua")

local base_setup, base_init, base_request, base_done = setup, init, request, done
local total = tonumber(os.getenv("BENCH_TOTAL") or "0")
local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
local drop_threads = {}
local share = 0
local dry_run = false
local standby = 0
local waking = false
local standby_since = 0
-- Longer than a request takes to be answered, even a slow one (the Spin
-- host's SQLite busy timeout is 5 s), shorter than wrk's --timeout (10 s).
local STANDBY_MS = 8000

-- Globals: done() reads them from each thread.
sent, answered, granted = 0, 0, 0
statuses = {}

function setup(thread)
  base_setup(thread)
  drop_threads[#drop_threads + 1] = thread
end

function init(args)
  base_init(args)
  local no = thread_no or 0
  share = math.floor(total / threads) + ((no < total % threads) and 1 or 0)
  -- wrk calls request() once on its first thread before the run, to check
  -- the request (script_verify_request); that one is never sent.
  dry_run = (no == 0)
end

function delay()
  if sent + granted >= share then
    standby = standby + 1
    if standby == 1 then
      waking = true
      standby_since = os.time()
      return STANDBY_MS
    end
    return 3600000
  end
  granted = granted + 1
  return 0
end

function request()
  if dry_run then
    dry_run = false
    return base_request()
  end
  if granted > 0 then
    granted = granted - 1
  elseif waking and sent >= share and os.difftime(os.time(), standby_since) >= STANDBY_MS / 1000 - 1 then
    -- The held-back connection woke up (not a connection wrk reopened after
    -- an error, which sends again at once): the thread's answers stopped coming.
    waking = false
    if answered < share then
      io.write("BENCH-THREAD-DONE stalled\n")
      io.flush()
      wrk.thread:stop()
    end
  end
  sent = sent + 1
  return base_request()
end

function response(status, headers, body)
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  if answered == share then
    io.write("BENCH-THREAD-DONE\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  base_done(summary, latency, requests)
  local all, s, a = {}, 0, 0
  for _, t in ipairs(drop_threads) do
    s = s + (t:get("sent") or 0)
    a = a + (t:get("answered") or 0)
    for status, n in pairs(t:get("statuses") or {}) do
      all[status] = (all[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(all) do
    parts[#parts + 1] = string.format('"%d":%d', status, n)
  end
  io.write(string.format('BENCH-DROP {"sent":%d,"answered":%d,"statuses":{%s}}\n', s, a, table.concat(parts, ",")))
end
