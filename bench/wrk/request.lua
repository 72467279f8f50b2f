-- The one wrk script `make bench` uses. The request comes from the
-- environment (set per measurement by bench/bench.py):
--   BENCH_METHOD    GET, POST, …
--   BENCH_PATH      request path (default: the URL's); ignored when
--                   BENCH_PATHS_FILE is set
--   BENCH_PATHS_FILE  file with one path per line, cycled through from
--                   line BENCH_OFFSET (0-based), so runs don't reuse paths
--   BENCH_BODY      request body; every "{n}" becomes a value unique to this
--                   request (run tag, thread, counter), e.g. a new email
--   BENCH_HEADERS   "Name: value" lines
--   BENCH_TAG       unique per measurement, so "{n}" never repeats across runs
--   BENCH_THREADS   wrk's -t, to spread the paths over threads
-- At the end it prints one line: BENCH-RESULT {json}.

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH")
local body = os.getenv("BENCH_BODY")
local tag = os.getenv("BENCH_TAG") or "0"
local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
local paths_file = os.getenv("BENCH_PATHS_FILE")
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")

local headers = {}
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.-)%s*$")
  if name then headers[name] = value end
end
if path == "" then path = nil end -- wrk.format then uses the URL's path
if body == "" then body = nil end

-- Runs once per thread, in the main Lua state: number the threads and
-- keep them, so done() can ask how far each one got.
local all_threads = {}
function setup(thread)
  thread:set("thread_no", #all_threads)
  all_threads[#all_threads + 1] = thread
end

local paths = nil
counter = 0 -- global: done() reads it from each thread
local fixed = nil
local templated = body ~= nil and body:find("{n}", 1, true) ~= nil

function init(args)
  if paths_file and paths_file ~= "" then
    paths = {}
    for line in io.lines(paths_file) do
      if line ~= "" then paths[#paths + 1] = line end
    end
    assert(#paths > 0, "BENCH_PATHS_FILE is empty")
  end
  if not paths and not templated then
    -- Same bytes every time: build them once.
    fixed = wrk.format(method, path, headers, body)
  end
end

function request()
  if fixed then return fixed end
  counter = counter + 1
  local p = path
  if paths then
    -- Threads interleave so they do not send the same path at once.
    p = paths[(offset + (counter - 1) * threads + (thread_no or 0)) % #paths + 1]
  end
  local b = body
  if templated then
    local unique = tag .. "-" .. tostring(thread_no or 0) .. "-" .. counter
    b = body:gsub("{n}", unique)
  end
  return wrk.format(method, p, headers, b)
end

function done(summary, latency, requests)
  -- The first path index no thread has used yet: the next run starts there.
  local next_offset = offset
  for _, t in ipairs(all_threads) do
    local used = t:get("counter") or 0
    if used > 0 then
      next_offset = math.max(next_offset, offset + (used - 1) * threads + t:get("thread_no") + 1)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"next_offset":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, next_offset,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
